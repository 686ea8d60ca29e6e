//! The suite's own word-count oracle: the word definition of docs/mapreduce.md written
//! again, as plainly as possible, and checked against `specs::wordcount`.
//!
//! The implementation under test (ours) counts with `specs::wordcount::count_into`;
//! an oracle that called the same code would share its bugs and never see them. This
//! one shares nothing with it but the standard library: it decodes with
//! `String::from_utf8_lossy` (every invalid subpart becomes U+FFFD, which is not a
//! letter, so it separates words as the definition says), walks characters one by
//! one, tests the letter ranges as the documentation lists them, lowercases with
//! `char::to_lowercase`, and counts in a `BTreeMap`.

use std::collections::{BTreeMap, BTreeSet};

/// The documented Latin letters: ASCII letters, U+00C0..=U+024F except `×` (U+00D7)
/// and `÷` (U+00F7), and U+1E00..=U+1EFF.
pub fn is_latin_letter(c: char) -> bool {
    if c.is_ascii_alphabetic() {
        return true;
    }
    if c == '×' || c == '÷' {
        return false;
    }
    let u = u32::from(c);
    (0xC0..=0x24F).contains(&u) || (0x1E00..=0x1EFF).contains(&u)
}

/// Unicode's simple lowercase mapping of a Latin letter. `to_lowercase` gives the full
/// mapping, which differs from the simple one in these ranges for `İ` alone (full:
/// `i` + U+0307; simple: `i`).
pub fn lowercase(c: char) -> char {
    if c == 'İ' {
        return 'i';
    }
    let mut lower = c.to_lowercase();
    let first = lower.next().expect("a lowercase mapping is never empty");
    assert!(
        lower.next().is_none(),
        "{c:?} has a multi-character lowercase the oracle does not know"
    );
    first
}

/// The words of `bytes`, lowercased, in order.
pub fn words(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if is_latin_letter(c) {
            word.push(lowercase(c));
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Word counts over every input: what a word-count job must produce.
pub fn word_count<'a>(inputs: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for input in inputs {
        for w in words(input) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    counts
}

/// The `indexer` application's expected output: word -> `N doc1,doc2,...`.
pub fn inverted_index<'a>(
    documents: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> BTreeMap<String, String> {
    let mut docs: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (name, contents) in documents {
        for w in words(contents) {
            docs.entry(w).or_default().insert(name);
        }
    }
    docs.into_iter()
        .map(|(w, names)| {
            let list: Vec<&str> = names.iter().copied().collect();
            (w, format!("{} {}", names.len(), list.join(",")))
        })
        .collect()
}

// The two cross-checks over every character and over the suite's generated texts
// are checks of the suite (`mapreduce::self_check::oracle_*`), run with it.
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(bytes: &[u8]) -> Vec<String> {
        words(bytes)
    }

    /// Known answers, each worked out by hand from the documented definition.
    #[test]
    fn known_answers() {
        let cases: &[(&[u8], &[&str])] = &[
            (b"", &[]),
            (b"  42 ... \n\t", &[]),
            (b"Hello, World! hello", &["hello", "world", "hello"]),
            (b"don't stop-me now", &["don", "t", "stop", "me", "now"]),
            (b"abc123def_ghi", &["abc", "def", "ghi"]),
            ("Café CAFÉ café".as_bytes(), &["café", "café", "café"]),
            ("Straße STRAẞE".as_bytes(), &["straße", "straße"]),
            ("Łódź Ærø ĐẠI".as_bytes(), &["łódź", "ærø", "đại"]),
            ("a×b÷c".as_bytes(), &["a", "b", "c"]),
            ("καλημέρα world".as_bytes(), &["world"]),
            ("abcпривет def".as_bytes(), &["abc", "def"]),
            ("東京tokyo大阪".as_bytes(), &["tokyo"]),
            ("cafe\u{301}s".as_bytes(), &["cafe", "s"]),
            ("x²y".as_bytes(), &["x", "y"]),
            ("İstanbul".as_bytes(), &["istanbul"]),
            ("Ⱥb".as_bytes(), &["ⱥb"]),
            // The edges of the ranges: U+00BF, U+0250 and U+1F00 are not letters.
            ("a¿bɏcɐdḀeỿfἀg".as_bytes(), &["a", "bɏc", "dḁeỿf", "g"]),
            (b"ab\xffcd", &["ab", "cd"]),
            (b"caf\xc3 x", &["caf", "x"]),
            (b"\xe2\x82", &[]),
            (b"\xc3\xa9t\xc3\xa9\xc3", &["été"]),
            // An overlong `/`, a UTF-16 surrogate and a code point past U+10FFFF.
            (
                b"a\xc0\xafb\xed\xa0\x80c\xf4\x90\x80\x80d",
                &["a", "b", "c", "d"],
            ),
            // A truncated é between letters, then a whole one.
            (b"x\xc3y\xc3\xa9", &["x", "yé"]),
        ];
        for (input, expected) in cases {
            assert_eq!(w(input), *expected, "input {input:?}");
            assert_eq!(
                specs::wordcount::words(input),
                *expected,
                "specs::wordcount on {input:?}"
            );
        }
    }

    #[test]
    fn known_counts_and_index() {
        let counts = word_count([&b"b a c b a d"[..], b"A", b"\xff"]);
        let expected: BTreeMap<String, u64> = [("a", 3), ("b", 2), ("c", 1), ("d", 1)]
            .iter()
            .map(|(w, n)| (w.to_string(), *n))
            .collect();
        assert_eq!(counts, expected);
        let index = inverted_index([("y.txt", &b"Tom tom sam"[..]), ("x.txt", b"tom")]);
        assert_eq!(index["tom"], "2 x.txt,y.txt");
        assert_eq!(index["sam"], "1 y.txt");
        assert_eq!(index.len(), 2);
    }

    /// Pieces that sit on the edges of the definition.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        let edges: Vec<&'static [u8]> = vec![
            b"a",
            b"Z",
            b"q",
            b"ABC",
            b"word",
            b"samehead",
            b"sameheadx",
            b" ",
            b"\n",
            b"'",
            b"-",
            b"_",
            b"1",
            "é".as_bytes(),
            "É".as_bytes(),
            "ß".as_bytes(),
            "ẞ".as_bytes(),
            "İ".as_bytes(),
            "Ⱥ".as_bytes(),
            "×".as_bytes(),
            "÷".as_bytes(),
            "ÿ".as_bytes(),
            "ɏ".as_bytes(),
            "ɐ".as_bytes(),
            "Ḁ".as_bytes(),
            "ỿ".as_bytes(),
            "ἀ".as_bytes(),
            "п".as_bytes(),
            "東".as_bytes(),
            "\u{301}".as_bytes(),
            "😀".as_bytes(),
            "\u{FFFD}".as_bytes(),
            b"\xff",
            b"\xc3",
            b"\xe2\x82",
            b"\xed\xa0\x80",
            b"\xc0\xaf",
            b"\xf4\x90\x80\x80",
            b"\xf8",
            b"\x80",
        ];
        prop_oneof![
            4 => proptest::sample::select(edges).prop_map(|p| p.to_vec()),
            2 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
            1 => any::<u8>().prop_map(|b| vec![b]),
            // A word long enough to leave any short-word fast path.
            1 => "[a-zA-ZÀ-ÿ]{9,30}".prop_map(String::into_bytes),
        ]
    }

    fn text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(piece(), 0..60).prop_map(|ps| ps.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The oracle and `specs::wordcount` (the tokenizer and the counting table
        /// the implementation uses) agree on words and on counts over several inputs.
        #[test]
        fn the_oracle_agrees_with_specs(inputs in proptest::collection::vec(text(), 1..4)) {
            for input in &inputs {
                prop_assert_eq!(words(input), specs::wordcount::words(input));
            }
            let slices = || inputs.iter().map(Vec::as_slice);
            prop_assert_eq!(word_count(slices()), specs::wordcount::word_count(slices()));
        }
    }
}
