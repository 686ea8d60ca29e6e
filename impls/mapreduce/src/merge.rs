//! The word-count front end's last step: `output.txt` from the reduce outputs.

use std::cmp::Ordering;
use std::fs;
use std::path::Path;

use anyhow::Context;

use crate::apps::wordcount::{plain_count, sort_prefix, Decimal};
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
    let groups: Vec<Vec<Ranked>> = std::thread::scope(|s| {
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
    for (n, _, word) in &counts {
        text.extend_from_slice(word.as_bytes());
        text.push(b' ');
        text.extend_from_slice(digits.format(*n).as_bytes());
        text.push(b'\n');
    }
    write_file(output, &text, Durability::Synced, bug)
}

/// One line of a part: its count, the word's [`sort_prefix`] and the word, borrowed
/// from the part's text.
type Ranked<'a> = (u64, u64, &'a str);

/// `output.txt`'s order: count descending, then word ascending in byte order (the
/// prefix decides unless two words share their first eight bytes).
fn rank(a: &Ranked, b: &Ranked) -> Ordering {
    b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then_with(|| a.2.cmp(b.2))
}

/// The `word count` lines of some parts, ranked. Words are borrowed from the parts'
/// text: an allocation per part, not per word.
fn parse_ranked<'a>(parts: &'a [(&Path, String)]) -> anyhow::Result<Vec<Ranked<'a>>> {
    let mut counts = Vec::new();
    for (part, text) in parts {
        for line in text.lines() {
            let (word, n) = line
                .rsplit_once(' ')
                .with_context(|| format!("{}: bad line {line:?}", part.display()))?;
            let n: u64 = match plain_count(n) {
                Some(n) => n,
                None => n
                    .parse()
                    .with_context(|| format!("{}: bad count in {line:?}", part.display()))?,
            };
            counts.push((n, sort_prefix(word), word));
        }
    }
    counts.sort_unstable_by(rank);
    Ok(counts)
}

/// Two ranked lists as one.
fn merge_ranked<'a>(a: Vec<Ranked<'a>>, b: Vec<Ranked<'a>>) -> Vec<Ranked<'a>> {
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
                .map(|i| {
                    // Half the words share their first eight bytes, where the rank's
                    // prefix cannot decide a tie.
                    let stem = if i % 2 == 0 { "w" } else { "longstem" };
                    (format!("{stem}{:03}", i * 5 + p), (i * 7 + p) % 6 + 1)
                })
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
    fn plain_counts_read_as_str_parse_reads_them() {
        let max = u64::MAX.to_string();
        for digits in ["0", "7", "0012", "123456789", max.as_str()] {
            assert_eq!(plain_count(digits), digits.parse().ok(), "{digits}");
        }
        // Left to `str::parse`, which accepts the first and refuses the others.
        for other in ["+5", "", "18446744073709551616", "1x", "-1", " 1"] {
            assert_eq!(plain_count(other), None, "{other}");
        }
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
