//! The word-count front end's last step: `output.txt` from the reduce outputs.

use std::fs;
use std::path::Path;

use anyhow::Context;

use crate::apps::wordcount::Decimal;
use crate::bug::Bug;
use crate::output::{write_file, Durability};

/// Reads `word count` lines from every reduce output and writes them, ranked by count
/// descending then word ascending, to `output`.
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
    // Words borrowed from the parts' text: an allocation per part, not per word.
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for (part, text) in &texts {
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
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
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
