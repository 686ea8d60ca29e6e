//! The inverted index of `specs::index`: `word N doc1,doc2,...`.

use std::collections::{BTreeSet, HashSet};

use specs::wordcount::for_each_word;

use crate::app::App;

pub struct Indexer;

impl App for Indexer {
    fn map(
        &self,
        name: &str,
        contents: &[u8],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()> {
        let mut seen = HashSet::new();
        for_each_word(contents, |w| {
            if !seen.contains(w) {
                seen.insert(w.to_string());
            }
        });
        for word in seen {
            emit(&word, name);
        }
        Ok(())
    }

    fn reduce(&self, _key: &str, values: &[&str]) -> anyhow::Result<String> {
        let docs: BTreeSet<&str> = values.iter().copied().collect();
        let names: Vec<&str> = docs.into_iter().collect();
        Ok(format!("{} {}", names.len(), names.join(",")))
    }
}
