//! Word count, with the word definition of `specs::wordcount`.
//!
//! The map counts its split's words itself and emits one `(word, count)` pair per
//! distinct word (a combiner inside the mapper): intermediate files then grow with the
//! vocabulary, not with the text, which is what makes the job fast. The reduce adds a
//! partition's counts up in the same kind of table, straight from the intermediate
//! files' text, and sorts only the distinct words.

use std::cell::RefCell;
use std::path::Path;

use anyhow::Context;
use specs::wordcount::{count_into, Counts};

use crate::app::App;
use crate::kvfile;

thread_local! {
    /// One table for every task of a worker process: cleared, not dropped, so after
    /// the first task it has the size the vocabulary needs and grows no more.
    static TABLE: RefCell<Counts> = RefCell::new(Counts::new());
}

pub struct WordCount;

fn parse_count(key: &str, value: &str) -> anyhow::Result<u64> {
    value
        .parse()
        .map_err(|e| anyhow::anyhow!("count {value:?} of {key:?} is not a number: {e}"))
}

impl App for WordCount {
    fn map(
        &self,
        name: &str,
        contents: &[u8],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()> {
        self.map_pieces(&[(name, contents)], emit)
    }

    /// Counts every piece in one table and emits it once: a word of several pieces
    /// is one pair.
    fn map_pieces(
        &self,
        pieces: &[(&str, &[u8])],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()> {
        TABLE.with_borrow_mut(|counts| {
            counts.clear();
            for (_, contents) in pieces {
                count_into(contents, counts);
            }
            let mut digits = Decimal::default();
            for (word, n) in counts.iter() {
                emit(word, digits.format(n));
            }
        });
        Ok(())
    }

    fn reduce(&self, key: &str, values: &[&str]) -> anyhow::Result<String> {
        let mut total = 0u64;
        for v in values {
            total += parse_count(key, v)?;
        }
        Ok(total.to_string())
    }

    fn reduce_texts(
        &self,
        texts: &[(&Path, &str)],
        emit: &mut dyn FnMut(&str, &str) -> anyhow::Result<()>,
    ) -> Option<anyhow::Result<()>> {
        Some(TABLE.with_borrow_mut(|counts| {
            counts.clear();
            for (path, text) in texts {
                add_text(text, counts).with_context(|| format!("in {}", path.display()))?;
            }
            let mut sorted: Vec<(u64, &str, u64)> = counts
                .iter()
                .map(|(word, n)| (sort_prefix(word), word, n))
                .collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            let mut digits = Decimal::default();
            for (_, word, n) in sorted {
                emit(word, digits.format(n))?;
            }
            Ok(())
        }))
    }
}

/// Adds the pairs of an intermediate file's text to `counts`: plain lines through
/// [`add_plain_lines`], the rest (from the first line it does not take) through the
/// general reader.
fn add_text(text: &str, counts: &mut Counts) -> anyhow::Result<()> {
    let (done, lines) = add_plain_lines(text, counts);
    kvfile::try_for_each_pair_from(&text[done..], lines + 1, |key, value| {
        counts.add(&key, parse_count(&key, &value)?);
        Ok(())
    })
}

/// Adds the pairs of an intermediate file's text to `counts` for as long as its lines
/// are plain `word<TAB>digits` (every line our mappers write), and returns where it
/// stopped and how many lines it read. The reducers' inner loop: it finds each line's
/// tab (or an escape) in one search and its end in another, and reads the digits
/// with [`plain_count`], where the general reader ([`kvfile`]) searches each line
/// four times (its end, its tab, an escape in key and value) and parses the count
/// with `str::parse`. Anything else (an
/// escape, a line without a tab, a count that is not plain digits or overflows) ends
/// it at the start of that line, and the general reader takes the rest, so the
/// result and the errors are the general reader's.
fn add_plain_lines(text: &str, counts: &mut Counts) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut lines = 0;
    while at < bytes.len() {
        let Some(tab) = memchr::memchr3(b'\t', b'\n', b'\\', &bytes[at..]).map(|i| at + i) else {
            break;
        };
        if bytes[tab] != b'\t' {
            break;
        }
        let end = memchr::memchr(b'\n', &bytes[tab..]).map_or(bytes.len(), |i| tab + i);
        let Some(n) = plain_count(&text[tab + 1..end]) else {
            break;
        };
        counts.add(&text[at..tab], n);
        lines += 1;
        at = end + 1;
    }
    (at.min(bytes.len()), lines)
}

/// A count of plain decimal digits that fits in a `u64`, read without `str::parse`
/// (whose error handling costs more than the digits); `None` for anything else, which
/// `str::parse` then decides.
pub(crate) fn plain_count(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}

/// The first eight bytes of a word as a big-endian number, zero-padded: numbers
/// compare as the words' starts do in byte order, and no word holds a zero byte, so a
/// word sorts before its own extensions. Sorting by it first leaves a string
/// comparison only to words that share their first eight bytes.
pub(crate) fn sort_prefix(word: &str) -> u64 {
    let mut eight = [0u8; 8];
    let n = word.len().min(8);
    eight[..n].copy_from_slice(&word.as_bytes()[..n]);
    u64::from_be_bytes(eight)
}

/// A count in decimal without the formatting machinery, which costs more than the
/// digits when it runs once per distinct word of every task.
#[derive(Default)]
pub(crate) struct Decimal([u8; 20]);

impl Decimal {
    pub(crate) fn format(&mut self, mut n: u64) -> &str {
        let mut i = self.0.len();
        loop {
            i -= 1;
            self.0[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        std::str::from_utf8(&self.0[i..]).expect("ASCII digits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_display() {
        let mut d = Decimal::default();
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            assert_eq!(d.format(n), n.to_string());
        }
    }

    fn reduced(texts: &[(&Path, &str)]) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        WordCount
            .reduce_texts(texts, &mut |k, v| {
                out.push((k.to_string(), v.to_string()));
                Ok(())
            })
            .expect("word count reduces whole texts")?;
        Ok(out)
    }

    /// The partition path gives what the pair-by-pair path gives: sums, in key order.
    #[test]
    fn reducing_texts_sums_counts_in_key_order() {
        let mut first = Vec::new();
        let mut second = Vec::new();
        WordCount
            .map("a", "b a c b été".as_bytes(), &mut |k, v| {
                kvfile::push(&mut first, k, v)
            })
            .unwrap();
        WordCount
            .map("b", b"c B z", &mut |k, v| kvfile::push(&mut second, k, v))
            .unwrap();
        let texts = [
            (Path::new("m0"), std::str::from_utf8(&first).unwrap()),
            (Path::new("m1"), std::str::from_utf8(&second).unwrap()),
        ];
        let pairs: Vec<(String, String)> =
            [("a", "1"), ("b", "3"), ("c", "2"), ("z", "1"), ("été", "1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(reduced(&texts).unwrap(), pairs);
    }

    /// The reducers' fast path changes nothing: on plain lines, on lines it leaves to
    /// the general reader (escapes, a `+`, a count past `u64`, a line without a tab,
    /// an empty count) and on a last line without its newline, the sums and the errors
    /// are those of the general reader alone.
    #[test]
    fn the_fast_path_sums_and_fails_as_the_general_reader() {
        /// The sums `add` makes of `text`, by word, or its error.
        fn sums(
            text: &str,
            add: fn(&str, &mut Counts) -> anyhow::Result<()>,
        ) -> Result<Vec<(String, u64)>, String> {
            let mut counts = Counts::new();
            add(text, &mut counts).map_err(|e| format!("{e:#}"))?;
            let mut all: Vec<(String, u64)> =
                counts.iter().map(|(w, n)| (w.to_string(), n)).collect();
            all.sort();
            Ok(all)
        }
        fn general(text: &str, counts: &mut Counts) -> anyhow::Result<()> {
            kvfile::try_for_each_pair(text, |k, v| {
                counts.add(&k, parse_count(&k, &v)?);
                Ok(())
            })
        }
        let max = u64::MAX.to_string();
        let past = "18446744073709551616";
        let texts = [
            String::new(),
            "a\t1\nb\t22\na\t3\n".to_string(),
            "a\t1\nb\t2".to_string(),
            "été\t4\n\t5\nété\t6\n".to_string(),
            format!("a\t{max}\nb\t1\n"),
            format!("a\t1\nb\t{past}\n"),
            "a\t1\nb\t+2\nc\t3\n".to_string(),
            "a\t1\nb\\tc\t2\nb\\tc\t5\n".to_string(),
            "a\t1\nbroken\nc\t2\n".to_string(),
            "a\t1\nb\t\nc\t2\n".to_string(),
            "a\t1\nb\t2x\n".to_string(),
            "a\t1\n\n".to_string(),
        ];
        for text in &texts {
            assert_eq!(sums(text, add_text), sums(text, general), "{text:?}");
        }
        assert!(sums("a\t1\nbroken\nc\t2\n", add_text)
            .unwrap_err()
            .contains("line 2"));
    }

    #[test]
    fn prefixes_sort_as_the_words() {
        let mut words = vec![
            "b",
            "a",
            "ab",
            "abcdefgh",
            "abcdefghi",
            "abcdefgg",
            "é",
            "z",
            "abc",
            "",
        ];
        let mut by_prefix = words.clone();
        by_prefix.sort_by(|a, b| sort_prefix(a).cmp(&sort_prefix(b)).then_with(|| a.cmp(b)));
        words.sort();
        assert_eq!(by_prefix, words);
    }

    #[test]
    fn a_bad_count_is_an_error_naming_the_file_and_the_word() {
        let err = reduced(&[(Path::new("mr-3-1"), "a\t1\nb\tx\n")]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("mr-3-1") && msg.contains("\"x\" of \"b\""),
            "{msg}"
        );
    }
}
