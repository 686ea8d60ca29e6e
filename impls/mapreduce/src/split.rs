//! Cutting input files into map tasks at line boundaries.
//!
//! One large file must still keep every worker busy, so files larger than the split
//! size are cut into pieces of about that size. A cut is moved forward to just after
//! the next `\n`, so no line (hence no word, and no UTF-8 sequence: `\n` never occurs
//! inside one) is split between two tasks.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Context;

/// Byte ranges `[start, end)` covering the file, each ending just after a `\n` or at
/// the end of the file. An empty file is one empty range, so it is still a map task.
pub fn line_splits(path: &Path, size: u64, target: u64) -> anyhow::Result<Vec<(u64, u64)>> {
    let target = target.max(1);
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while start < size {
        let cut = start + target;
        if cut >= size {
            ranges.push((start, size));
            break;
        }
        // Scan from the byte before the cut, so a cut just after a newline stays put.
        file.seek(SeekFrom::Start(cut - 1))?;
        let mut pos = cut - 1;
        let mut found = None;
        while found.is_none() {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
                found = Some(pos + i as u64 + 1);
            }
            pos += n as u64;
        }
        let end = found.unwrap_or(size).min(size);
        ranges.push((start, end));
        start = end;
    }
    if ranges.is_empty() {
        ranges.push((0, 0));
    }
    Ok(ranges)
}

/// `[start, end)` of a file, mapped into memory.
///
/// A map task reads its split once, front to back, so it is mapped rather than read:
/// the worker counts straight from the page cache, without copying the split into a
/// buffer of its own and without a page fault for every 4 KiB of a fresh buffer
/// (the pages are mapped when the range is, `MAP_POPULATE`). A job's input must not
/// change while the job runs: a file cut short under a mapping ends the worker with
/// SIGBUS, and its task is handed to another worker, which finds the file short. A
/// file its filesystem will not map (FUSE with direct I/O, for one) is read instead.
pub struct Mapped {
    bytes: Bytes,
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl Mapped {
    pub fn open(path: &Path, start: u64, end: u64) -> anyhow::Result<Mapped> {
        let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        let size = file
            .metadata()
            .with_context(|| format!("stat {}", path.display()))?
            .len();
        anyhow::ensure!(
            size >= end,
            "{} is shorter than expected ({size} bytes, the task reads up to {end})",
            path.display()
        );
        if start == end {
            // Nothing to map (a mapping cannot be empty), nor to allocate.
            return Ok(Mapped {
                bytes: Bytes::Read(Vec::new()),
            });
        }
        // SAFETY: the mapping is read-only and private; the job's contract is that its
        // input does not change while it runs (see above).
        let mapped = unsafe {
            memmap2::MmapOptions::new()
                .offset(start)
                .len((end - start) as usize)
                .populate()
                .map(&file)
        };
        let bytes = match mapped {
            Ok(map) => Bytes::Mapped(map),
            Err(_) => Bytes::Read(
                read_range(&mut file, start, end)
                    .with_context(|| format!("read {} ({start}..{end})", path.display()))?,
            ),
        };
        Ok(Mapped { bytes })
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(map) => map,
            Bytes::Read(data) => data,
        }
    }
}

/// `[start, end)` of an open file, read.
fn read_range(file: &mut File, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(start))?;
    let mut data = vec![0; (end - start) as usize];
    file.read_exact(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splits(text: &[u8], target: u64) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, text).unwrap();
        line_splits(&path, text.len() as u64, target)
            .unwrap()
            .into_iter()
            .map(|(s, e)| Mapped::open(&path, s, e).unwrap().bytes().to_vec())
            .collect()
    }

    #[test]
    fn cuts_fall_after_newlines_and_cover_everything() {
        let parts = splits(b"aa bb\ncc\ndd ee ff\ng", 4);
        // The second cut (at 10) moves to the newline ending "dd ee ff".
        assert_eq!(parts, [&b"aa bb\n"[..], b"cc\ndd ee ff\n", b"g"]);
    }

    #[test]
    fn a_file_without_newlines_is_one_split() {
        assert_eq!(splits(b"abcdefgh", 2), [b"abcdefgh"]);
    }

    #[test]
    fn a_cut_on_a_newline_keeps_it_in_the_first_part() {
        assert_eq!(splits(b"abc\ndef\n", 4), [&b"abc\n"[..], b"def\n"]);
    }

    #[test]
    fn an_empty_file_is_one_empty_split() {
        assert_eq!(splits(b"", 10), [b""]);
    }

    #[test]
    fn a_range_read_instead_of_mapped_is_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc\ndef\nghi\n").unwrap();
        let mut file = File::open(&path).unwrap();
        for (start, end) in [(0, 12), (4, 8), (5, 12), (11, 12)] {
            let read = read_range(&mut file, start, end).unwrap();
            assert_eq!(
                read,
                Mapped::open(&path, start, end).unwrap().bytes(),
                "{start}..{end}"
            );
        }
        assert!(read_range(&mut file, 8, 20).is_err(), "past the end");
    }

    #[test]
    fn a_file_shorter_than_its_split_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc\n").unwrap();
        let e = Mapped::open(&path, 2, 9).err().unwrap().to_string();
        assert!(
            e.contains("is shorter than expected (4 bytes, the task reads up to 9)"),
            "{e}"
        );
        assert!(e.contains(&path.display().to_string()), "{e}");
        let missing = Mapped::open(&dir.path().join("gone"), 0, 1).err().unwrap();
        assert!(format!("{missing:#}").contains("open "), "{missing:#}");
    }
}
