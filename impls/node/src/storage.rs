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
    /// Off only in known-bad variants that show the suite notices a missing fsync.
    no_fsync: bool,
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
            no_fsync: false,
        })
    }

    /// Stops fsyncing: writes stay atomic against a process crash (rename) but not
    /// against a power failure. Only for known-bad variants.
    pub fn skip_fsync(&mut self) {
        self.no_fsync = true;
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
        check_name(name)?;
        if let Some(dir) = &self.dir {
            let tmp = dir.join(format!("{name}.tmp"));
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            if !self.no_fsync {
                file.sync_all()?;
            }
            fs::rename(&tmp, dir.join(name))?;
            if !self.no_fsync {
                File::open(dir)?.sync_all()?;
            }
        }
        self.files.insert(name.to_string(), bytes);
        Ok(())
    }

    /// Adds `bytes` at the end of `name` and fdatasyncs it (and the directory, when
    /// this creates the file). A crash in the middle can leave a torn tail, which the
    /// reader must recognise (a last line without its newline, say).
    pub fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        check_name(name)?;
        let created = !self.files.contains_key(name);
        if let Some(dir) = &self.dir {
            let mut file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))?;
            file.write_all(bytes)?;
            if !self.no_fsync {
                file.sync_data()?;
                if created {
                    File::open(dir)?.sync_all()?;
                }
            }
        }
        self.files
            .entry(name.to_string())
            .or_default()
            .extend_from_slice(bytes);
        Ok(())
    }
}

/// A plain file name inside the data dir: no paths, no hidden or temporary files.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') || name.ends_with(".tmp") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad storage file name {name:?}"),
        ));
    }
    Ok(())
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
        storage.append("log", b"a\n").unwrap();
        storage.append("log", b"b\n").unwrap();
        let again = Storage::open(Some(&dir)).unwrap();
        assert_eq!(again.get("state"), Some(&b"two"[..]));
        assert_eq!(again.get("log"), Some(&b"a\nb\n"[..]));
        assert_eq!(again.get("log.tmp"), None);
        assert!(storage.write("../escape", vec![]).is_err());
        assert!(storage.append("x.tmp", b"").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
