//! Temporary directories that survive a failing test.

use std::path::{Path, PathBuf};

/// A temp dir removed when the test passes and kept, with its path printed, when the
/// test panics, so the images, logs and histories of a failure can be inspected.
#[derive(Debug)]
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
}

impl TestDir {
    /// Creates a directory whose name starts with `label`.
    pub fn new(label: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{label}-"))
            .tempdir()
            .expect("cannot create a temp dir");
        TestDir { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("dir present until drop").path()
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path().join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() {
                let kept = dir.keep();
                eprintln!("test failed; its files are kept in {}", kept.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_after_success() {
        let dir = TestDir::new("ok");
        let path = dir.path().to_path_buf();
        std::fs::write(dir.join("f"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn kept_after_a_panic() {
        let (tx, rx) = std::sync::mpsc::channel();
        let result = std::thread::spawn(move || {
            let dir = TestDir::new("kept");
            tx.send(dir.path().to_path_buf()).unwrap();
            panic!("deliberate");
        })
        .join();
        assert!(result.is_err());
        let path = rx.recv().unwrap();
        assert!(path.exists());
        std::fs::remove_dir_all(path).unwrap();
    }
}
