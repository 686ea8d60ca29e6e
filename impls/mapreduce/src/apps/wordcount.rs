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
        _name: &str,
        contents: &[u8],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()> {
        TABLE.with_borrow_mut(|counts| {
            counts.clear();
            count_into(contents, counts);
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
                kvfile::try_for_each_pair(text, |key, value| {
                    counts.add(&key, parse_count(&key, &value)?);
                    Ok(())
                })
                .with_context(|| format!("in {}", path.display()))?;
            }
            let mut sorted: Vec<(&str, u64)> = counts.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut digits = Decimal::default();
            for (word, n) in sorted {
                emit(word, digits.format(n))?;
            }
            Ok(())
        }))
    }
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
