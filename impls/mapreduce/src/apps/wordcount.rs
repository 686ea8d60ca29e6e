//! Word count, with the word definition of `specs::wordcount`.
//!
//! The map counts its split's words itself and emits one `(word, count)` pair per
//! distinct word (a combiner inside the mapper): intermediate files then grow with the
//! vocabulary, not with the text, which is what makes the job fast.

use std::fmt::Write as _;

use specs::wordcount::{count_into, Counts};

use crate::app::App;

pub struct WordCount;

impl App for WordCount {
    fn map(
        &self,
        _name: &str,
        contents: &[u8],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()> {
        let mut counts = Counts::default();
        count_into(contents, &mut counts);
        let mut n_text = String::new();
        for (word, n) in counts.iter() {
            n_text.clear();
            let _ = write!(n_text, "{n}");
            emit(word, &n_text);
        }
        Ok(())
    }

    fn reduce(&self, key: &str, values: &[&str]) -> anyhow::Result<String> {
        let mut total = 0u64;
        for v in values {
            let n: u64 = v
                .parse()
                .map_err(|e| anyhow::anyhow!("count {v:?} of {key:?} is not a number: {e}"))?;
            total += n;
        }
        Ok(total.to_string())
    }
}
