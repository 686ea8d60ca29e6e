//! The word-count front end's last step: `output.txt` from the reduce outputs.

use std::cmp::Ordering;
use std::fs;
use std::path::Path;

use anyhow::Context;

use crate::apps::wordcount::Decimal;
use crate::bug::Bug;
use crate::output::{write_file, Durability};

/// Reads `word count` lines from every reduce output and writes them, ranked by count
/// descending then word ascending, to `output`.
///
/// The merge runs after the last reduce, when the workers have nothing left to do, so
/// it is the job's only running step: the parts are parsed and ranked in groups, one
/// thread a core, and the ranked groups merged. On 128 MiB of text (86,000 distinct
/// words) that took the merge from 14 ms to about 8 (docs/mapreduce.md, Performance).
pub fn merge_counts(
    parts: &[impl AsRef<Path>],
    output: &Path,
    bug: Option<Bug>,
) -> anyhow::Result<()> {
    let mut texts = Vec::with_capacity(parts.len());
    for part in parts {
        let part = part.as_ref();
        let text = fs::read_to_string(part).with_context(|| format!("read {}", part.display()))?;
        texts.push((part, text));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_group = texts.len().div_ceil(cores).max(1);
    let groups: Vec<Vec<(&str, u64)>> = std::thread::scope(|s| {
        let threads: Vec<_> = texts
            .chunks(per_group)
            .map(|group| s.spawn(move || parse_ranked(group)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a merge thread panicked"))
            .collect::<anyhow::Result<_>>()
    })?;
    let counts = groups.into_iter().reduce(merge_ranked).unwrap_or_default();
    let mut text = Vec::with_capacity(texts.iter().map(|(_, t)| t.len()).sum());
    let mut digits = Decimal::default();
    for (word, n) in &counts {
        text.extend_from_slice(word.as_bytes());
        text.push(b' ');
        text.extend_from_slice(digits.format(*n).as_bytes());
        text.push(b'\n');
    }
    write_file(output, &text, Durability::Synced, bug)
}

/// `output.txt`'s order: count descending, then word ascending in byte order.
fn rank(a: &(&str, u64), b: &(&str, u64)) -> Ordering {
    b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0))
}

/// The `word count` lines of some parts, ranked. Words are borrowed from the parts'
/// text: an allocation per part, not per word.
fn parse_ranked<'a>(parts: &'a [(&Path, String)]) -> anyhow::Result<Vec<(&'a str, u64)>> {
    let mut counts = Vec::new();
    for (part, text) in parts {
        for line in text.lines() {
            let (word, n) = line
                .rsplit_once(' ')
                .with_context(|| format!("{}: bad line {line:?}", part.display()))?;
            let n: u64 = n
                .parse()
                .with_context(|| format!("{}: bad count in {line:?}", part.display()))?;
            counts.push((word, n));
        }
    }
    counts.sort_unstable_by(rank);
    Ok(counts)
}

/// Two ranked lists as one.
fn merge_ranked<'a>(a: Vec<(&'a str, u64)>, b: Vec<(&'a str, u64)>) -> Vec<(&'a str, u64)> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        let next = if rank(x, y) == Ordering::Greater {
            b.next()
        } else {
            a.next()
        };
        merged.extend(next);
    }
    merged.extend(a);
    merged.extend(b);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts whose counts tie across parts and within them, as a Zipf text's tail
    /// does: the merged file is the whole ranked in one sort, whatever the grouping.
    #[test]
    fn merged_parts_are_ranked_by_count_then_word() {
        let dir = tempfile::tempdir().unwrap();
        let mut all: Vec<(String, u64)> = Vec::new();
        let mut parts = Vec::new();
        for p in 0..5u64 {
            let mut words: Vec<(String, u64)> = (0..40u64)
                .map(|i| (format!("w{:03}", i * 5 + p), (i * 7 + p) % 6 + 1))
                .collect();
            words.sort();
            let text: String = words.iter().map(|(w, n)| format!("{w} {n}\n")).collect();
            let path = dir.path().join(format!("reduce.part-{p}.txt"));
            fs::write(&path, text).unwrap();
            parts.push(path);
            all.extend(words);
        }
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let want: String = all.iter().map(|(w, n)| format!("{w} {n}\n")).collect();
        let output = dir.path().join("output.txt");
        merge_counts(&parts, &output, None).unwrap();
        assert_eq!(fs::read_to_string(&output).unwrap(), want);
    }

    #[test]
    fn a_bad_line_names_its_part() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("reduce.part-0.txt");
        fs::write(&part, "ok 1\nnocount\n").unwrap();
        let err = merge_counts(&[&part], &dir.path().join("output.txt"), None).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("reduce.part-0.txt") && message.contains("nocount"),
            "{message}"
        );
    }
}
