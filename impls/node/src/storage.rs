//! The node's durable files in its `data_dir`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Files a node persisted, read back at start-up, and the writer of new versions.
/// Without a `data_dir` nothing survives the process: writes are kept in memory only.
#[derive(Debug, Default)]
pub struct Storage {
    dir: Option<PathBuf>,
    files: BTreeMap<String, Vec<u8>>,
}

impl Storage {
    /// Opens `dir` (created if missing) and reads every file a previous run persisted.
    pub fn open(dir: Option<&Path>) -> io::Result<Storage> {
        let mut files = BTreeMap::new();
        if let Some(dir) = dir {
            fs::create_dir_all(dir)?;
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                // A crash between write and rename leaves a temporary file: not state.
                if name.ends_with(".tmp") || !entry.file_type()?.is_file() {
                    continue;
                }
                files.insert(name, fs::read(entry.path())?);
            }
        }
        Ok(Storage {
            dir: dir.map(Path::to_path_buf),
            files,
        })
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// The files read back or written so far, by name.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(n, b)| (n.as_str(), b.as_slice()))
    }

    /// The data dir, if the node has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Replaces `name` atomically and durably: write a temporary file, fsync it,
    /// rename it over the old one, fsync the directory.
    pub fn write(&mut self, name: &str, bytes: Vec<u8>) -> io::Result<()> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad storage file name {name:?}"),
            ));
        }
        if let Some(dir) = &self.dir {
            let tmp = dir.join(format!("{name}.tmp"));
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, dir.join(name))?;
            File::open(dir)?.sync_all()?;
        }
        self.files.insert(name.to_string(), bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_read_back_by_the_next_run() {
        let dir = std::env::temp_dir().join(format!("node-storage-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut storage = Storage::open(Some(&dir)).unwrap();
        storage.write("state", b"one".to_vec()).unwrap();
        storage.write("state", b"two".to_vec()).unwrap();
        fs::write(dir.join("log.tmp"), b"torn").unwrap();
        let again = Storage::open(Some(&dir)).unwrap();
        assert_eq!(again.get("state"), Some(&b"two"[..]));
        assert_eq!(again.get("log.tmp"), None);
        assert!(storage.write("../escape", vec![]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
