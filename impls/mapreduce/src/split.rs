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

/// Reads `[start, end)` of a file.
pub fn read_range(path: &Path, start: u64, end: u64) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    read_range_into(path, start, end, &mut data)?;
    Ok(data)
}

/// Reads `[start, end)` of a file into `data`, replacing its contents. A worker
/// reuses one buffer for all its map tasks: a fresh one costs a page fault per 4 KiB.
pub fn read_range_into(
    path: &Path,
    start: u64,
    end: u64,
    data: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    file.seek(SeekFrom::Start(start))?;
    data.clear();
    data.reserve((end - start) as usize);
    file.take(end - start).read_to_end(data)?;
    anyhow::ensure!(
        data.len() as u64 == end - start,
        "{} is shorter than expected ({} bytes at {start})",
        path.display(),
        data.len()
    );
    Ok(())
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
            .map(|(s, e)| read_range(&path, s, e).unwrap())
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
}
