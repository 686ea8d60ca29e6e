//! Output files that appear whole or not at all.
//!
//! Every file a task produces is written to `<final>.tmp-<pid>-<n>` in the same
//! directory, fsynced, and renamed to its final name, so a reader (or the checker)
//! never sees a partial file under a final name, and a second attempt at the same task
//! only replaces a complete file with an identical one. A worker killed mid-write
//! leaves a temp file behind; the coordinator removes those at the end of the job
//! ([`remove_temp_files`]).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use crate::bug::Bug;

/// The marker in temp file names.
pub const TEMP_MARK: &str = ".tmp-";

enum Sink {
    Temp {
        file: BufWriter<File>,
        temp: PathBuf,
    },
    /// Known-bad variant: the final file, written as lines are produced.
    InPlace(File),
}

/// Whether a file must survive a machine crash once renamed into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory before and after the rename: a job's results.
    Synced,
    /// Atomic but not synced: intermediate files, which a machine crash loses
    /// together with the coordinator's memory of them, so the job would redo them
    /// anyway. Skipping ~nmap*nreduce fsyncs is most of a small job's time.
    Atomic,
}

pub struct OutputFile {
    sink: Sink,
    path: PathBuf,
    durability: Durability,
}

impl OutputFile {
    pub fn create(
        path: &Path,
        durability: Durability,
        bug: Option<Bug>,
    ) -> anyhow::Result<OutputFile> {
        let sink = if bug == Some(Bug::InPlace) {
            let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
            Sink::InPlace(file)
        } else {
            static N: AtomicU64 = AtomicU64::new(0);
            let mut name = path
                .file_name()
                .context("output has no file name")?
                .to_os_string();
            name.push(format!(
                "{TEMP_MARK}{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let temp = path.with_file_name(name);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .with_context(|| format!("create {}", temp.display()))?;
            Sink::Temp {
                file: BufWriter::with_capacity(1 << 16, file),
                temp,
            }
        };
        Ok(OutputFile {
            sink,
            path: path.to_path_buf(),
            durability,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match &mut self.sink {
            Sink::Temp { file, .. } => file.write_all(bytes)?,
            Sink::InPlace(file) => file.write_all(bytes)?,
        }
        Ok(())
    }

    /// Makes the file durable and gives it its final name.
    pub fn commit(self) -> anyhow::Result<()> {
        match self.sink {
            Sink::Temp { file, temp } => {
                let file = file.into_inner().map_err(|e| e.into_error())?;
                if self.durability == Durability::Synced {
                    file.sync_all()?;
                }
                drop(file);
                fs::rename(&temp, &self.path).with_context(|| {
                    format!("rename {} to {}", temp.display(), self.path.display())
                })?;
                if let Some(dir) = self
                    .path
                    .parent()
                    .filter(|_| self.durability == Durability::Synced)
                {
                    let dir = if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir
                    };
                    // The rename is durable once the directory is.
                    File::open(dir)?.sync_all()?;
                }
            }
            Sink::InPlace(file) => {
                if self.durability == Durability::Synced {
                    file.sync_all()?;
                }
            }
        }
        Ok(())
    }
}

/// Writes a whole file at once, atomically.
pub fn write_file(
    path: &Path,
    bytes: &[u8],
    durability: Durability,
    bug: Option<Bug>,
) -> anyhow::Result<()> {
    let mut out = OutputFile::create(path, durability, bug)?;
    out.write(bytes)?;
    out.commit()
}

/// Removes the temp files that killed workers left in `dir`: those whose name starts
/// with `prefix` and has the temp mark.
pub fn remove_temp_files(dir: &Path, prefix: &str) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.contains(TEMP_MARK) {
            // Another late attempt may rename it away first; that is fine.
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_has_the_final_name_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mr-out-0");
        let mut out = OutputFile::create(&path, Durability::Synced, None).unwrap();
        out.write(b"a 1\n").unwrap();
        assert!(!path.exists());
        out.commit().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a 1\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn leftover_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputFile::create(&dir.path().join("x"), Durability::Atomic, None).unwrap();
        std::mem::forget(out);
        fs::write(dir.path().join("keep"), b"").unwrap();
        remove_temp_files(dir.path(), "").unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["keep"]);
    }
}
