//! Inverted index: for each word, the documents it occurs in.
//!
//! The reference result of the `indexer` MapReduce application (6.5840's indexer, with
//! the word definition of [`crate::wordcount`]). Each output line is
//! `word N doc1,doc2,...`: the number of distinct documents containing the word, then
//! their names in ascending byte order, joined by commas.

use std::collections::{BTreeMap, BTreeSet};

use crate::wordcount::for_each_word;

/// Word -> the set of document names that contain it.
pub fn inverted_index<'a>(
    documents: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut index: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, contents) in documents {
        for_each_word(contents, |word| {
            if let Some(docs) = index.get_mut(word) {
                if !docs.contains(name) {
                    docs.insert(name.to_string());
                }
            } else {
                index.insert(word.to_string(), BTreeSet::from([name.to_string()]));
            }
        });
    }
    index
}

/// The value part of an index line: `N doc1,doc2,...`.
pub fn render_entry(docs: &BTreeSet<String>) -> String {
    let names: Vec<&str> = docs.iter().map(String::as_str).collect();
    format!("{} {}", docs.len(), names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_map_to_the_sorted_documents_that_hold_them() {
        let index = inverted_index([("b.txt", &b"the cat, THE hat"[..]), ("a.txt", b"the dog")]);
        assert_eq!(render_entry(&index["the"]), "2 a.txt,b.txt");
        assert_eq!(render_entry(&index["cat"]), "1 b.txt");
        assert_eq!(index.len(), 4);
    }
}
