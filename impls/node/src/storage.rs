//! The node's durable files in its `data_dir`.
//!
//! Files hold text: no byte written may be zero. A file that grows by
//! [`Storage::append`] is written ahead with zeros, because on a journaling file
//! system (ext4) an `fdatasync` after an append must also commit the file's new size,
//! while after writing over bytes the file already holds it flushes only the data: a
//! 64-byte append and sync took 150-158 us where the same write over zeros took
//! 101-115 (docs/raft.md). So an append that passes the file's end writes zeros after
//! its bytes, half as many again as the file then holds, and the next appends land
//! in them. Reading a file back stops at its first zero byte.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Zeros written ahead are at least this many bytes (and half the file's content
/// when that is more): small, since the suites bound a node's data dir by a few
/// times what it reports (`persisted_size`), which counts no zeros.
const AHEAD_MIN: u64 = 256;

/// Files a node persisted, read back at start-up, and the writer of new versions.
/// Without a `data_dir` nothing survives the process: writes are kept in memory only.
#[derive(Debug, Default)]
pub struct Storage {
    dir: Option<PathBuf>,
    files: BTreeMap<String, Vec<u8>>,
    /// Files appended to since the start, kept open, with their length on disk
    /// (content and the zeros written ahead of it).
    appending: HashMap<String, (File, u64)>,
    /// Off only in known-bad variants that show the suite notices a missing fsync.
    no_fsync: bool,
}

impl Storage {
    /// Opens `dir` (created if missing) and reads every file a previous run persisted,
    /// each up to its first zero byte (see the module doc).
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
                let mut bytes = fs::read(entry.path())?;
                if let Some(end) = memchr::memchr(0, &bytes) {
                    // An append under way when the power went can have landed some of
                    // its sectors and not an earlier one: bytes after a zero. The
                    // append was never synced, so they are nothing; cut them, or a
                    // later append could end just before them and make them content.
                    if bytes[end..].iter().any(|&b| b != 0) {
                        let file = fs::OpenOptions::new().write(true).open(entry.path())?;
                        file.set_len(end as u64)?;
                        file.sync_all()?;
                    }
                    bytes.truncate(end);
                }
                files.insert(name, bytes);
            }
        }
        Ok(Storage {
            dir: dir.map(Path::to_path_buf),
            files,
            appending: HashMap::new(),
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
        check_text(name, &bytes)?;
        // The file appended to is replaced: the next append opens the new one.
        self.appending.remove(name);
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
        check_text(name, bytes)?;
        let created = !self.files.contains_key(name);
        if let Some(dir) = &self.dir {
            let (file, len) = match self.appending.entry(name.to_string()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let file = fs::OpenOptions::new()
                        .create(true)
                        .write(true)
                        .truncate(false)
                        .open(dir.join(name))?;
                    let len = file.metadata()?.len();
                    e.insert((file, len))
                }
            };
            let at = self.files.get(name).map_or(0, Vec::len) as u64;
            let end = at + bytes.len() as u64;
            if end <= *len {
                file.write_all_at(bytes, at)?;
            } else {
                // One write: the bytes, then the zeros the next appends land in.
                let ahead = (end / 2).max(AHEAD_MIN);
                let mut grown = Vec::with_capacity((end - at + ahead) as usize);
                grown.extend_from_slice(bytes);
                grown.resize(grown.len() + ahead as usize, 0);
                file.write_all_at(&grown, at)?;
                *len = end + ahead;
            }
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

/// Bytes for a file: text, without the zero byte that ends a file read back.
fn check_text(name: &str, bytes: &[u8]) -> io::Result<()> {
    match memchr::memchr(0, bytes) {
        None => Ok(()),
        Some(at) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a zero byte at offset {at} of what is written to {name:?}: a file read back \
                 ends at its first zero byte (zeros are the space written ahead of appends)"
            ),
        )),
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

    fn scratch(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("node-storage-{what}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn appends_land_in_zeros_written_ahead_and_read_back_without_them() {
        let dir = scratch("ahead");
        let mut storage = Storage::open(Some(&dir)).unwrap();
        let mut content = Vec::new();
        let mut lengths = Vec::new();
        for i in 0..200 {
            let line = format!("entry {i}\n");
            storage.append("log", line.as_bytes()).unwrap();
            content.extend_from_slice(line.as_bytes());
            lengths.push(fs::metadata(dir.join("log")).unwrap().len());
        }
        let on_disk = fs::read(dir.join("log")).unwrap();
        assert_eq!(&on_disk[..content.len()], &content[..]);
        assert!(on_disk[content.len()..].iter().all(|&b| b == 0));
        // The file grows by half again, not at every append: few size changes.
        lengths.dedup();
        assert!(lengths.len() < 12, "the file grew {} times", lengths.len());
        assert!(
            on_disk.len() as u64 <= (content.len() as u64 * 3 / 2).max(AHEAD_MIN) + 16,
            "{} bytes on disk for {} of content",
            on_disk.len(),
            content.len()
        );
        // A later run reads the content alone and appends after it.
        let mut again = Storage::open(Some(&dir)).unwrap();
        assert_eq!(again.get("log"), Some(&content[..]));
        again.append("log", b"after\n").unwrap();
        content.extend_from_slice(b"after\n");
        assert_eq!(
            Storage::open(Some(&dir)).unwrap().get("log"),
            Some(&content[..])
        );
        // Replaced, the file starts again without zeros, and appends follow the new one.
        again.write("log", b"new\n".to_vec()).unwrap();
        again.append("log", b"more\n").unwrap();
        assert_eq!(
            Storage::open(Some(&dir)).unwrap().get("log"),
            Some(&b"new\nmore\n"[..])
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bytes_after_a_zero_are_cut_at_open() {
        let dir = scratch("torn");
        fs::create_dir_all(&dir).unwrap();
        // An unsynced append whose later sector landed and its first did not.
        fs::write(dir.join("log"), b"a\nb\n\0\0\0\0d\ne\n\0\0").unwrap();
        let mut storage = Storage::open(Some(&dir)).unwrap();
        assert_eq!(storage.get("log"), Some(&b"a\nb\n"[..]));
        assert_eq!(fs::read(dir.join("log")).unwrap(), b"a\nb\n");
        // An append as long as the gap must not make the old bytes after it content.
        storage.append("log", b"cc\n").unwrap();
        assert_eq!(
            Storage::open(Some(&dir)).unwrap().get("log"),
            Some(&b"a\nb\ncc\n"[..])
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_zero_byte_is_refused_with_where_it_is() {
        let mut storage = Storage::open(None).unwrap();
        let e = storage.append("log", b"ab\0c").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("offset 2"), "{e}");
        assert!(e.to_string().contains("\"log\""), "{e}");
        assert!(storage.write("state", vec![b'x', 0]).is_err());
        assert_eq!(storage.get("log"), None);
        assert_eq!(storage.get("state"), None);
    }
}
