//! Word count: what a word is and what a word-count job must output.
//!
//! This is the sequential reference both MapReduce front ends are judged against
//! (`mapreduce --input ... --output ...` and the `wc` application of
//! `mrworker`). It is plain code on bytes, so it is also the single-thread baseline of
//! the benchmark.
//!
//! # What a word is
//!
//! A word is a maximal run of *Latin letters*, lowercased character by character with
//! Unicode's simple lowercase mapping. A Latin letter is one of:
//!
//! - an ASCII letter `A`-`Z`, `a`-`z`;
//! - U+00C0..=U+00FF except U+00D7 `×` and U+00F7 `÷` (Latin-1 letters: `é`, `ß`, `ø`);
//! - U+0100..=U+024F (Latin Extended-A and -B: `ł`, `ő`, `ș`);
//! - U+1E00..=U+1EFF (Latin Extended Additional: `ạ`, `ẞ`).
//!
//! Every other character separates words: digits, punctuation, spaces, letters of other
//! scripts (Greek, Cyrillic, CJK...), combining marks (so a decomposed `e` + U+0301 is
//! the word `e` followed by a separator) and the apostrophe (`don't` is `don` and `t`).
//! A byte sequence that is not valid UTF-8 is a separator too, never an error: the
//! input is decoded with the maximal-subpart rule of Unicode §3.9 (Rust's
//! `utf8_chunks`), and each invalid subpart splits words as a space would.
//!
//! Lowercasing may leave the ranges above (`Ⱥ` U+023A lowercases to `ⱥ` U+2C65); a word
//! is found first and lowercased after, so that is still one word. `İ` (U+0130), whose
//! full lowercase is two characters, maps to `i` by the simple mapping.
//!
//! # Output order
//!
//! A job's final `output.txt` holds one `word count` line per distinct word (a single
//! space between, a `\n` after), by count descending and, among equal counts, by word
//! ascending in byte order (which for UTF-8 is code-point order). See [`ranked`] and
//! [`render_ranked`].

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// True for the characters that make up words (see the module doc).
pub fn is_word_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{24F}'
        | '\u{1E00}'..='\u{1EFF}')
}

/// The simple lowercase mapping of one character.
pub fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// Calls `f` with every word of `bytes`, in order, lowercased.
pub fn for_each_word(bytes: &[u8], mut f: impl FnMut(&str)) {
    let mut word = String::new();
    for chunk in bytes.utf8_chunks() {
        let text = chunk.valid();
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_alphabetic() {
                // Fast path: a run of ASCII letters that is the whole word and already
                // lowercase is handed out without copying.
                let mut j = i + 1;
                let mut upper = c.is_ascii_uppercase();
                while j < b.len() && b[j].is_ascii_alphabetic() {
                    upper |= b[j].is_ascii_uppercase();
                    j += 1;
                }
                let continues = j < b.len() && b[j] >= 0x80;
                if word.is_empty() && !upper && !continues {
                    f(&text[i..j]);
                } else {
                    word.extend(b[i..j].iter().map(|&c| c.to_ascii_lowercase() as char));
                }
                i = j;
            } else if c < 0x80 {
                if !word.is_empty() {
                    f(&word);
                    word.clear();
                }
                i += 1;
            } else {
                let ch = text[i..].chars().next().expect("i is a char boundary");
                if is_word_char(ch) {
                    word.push(lower(ch));
                } else if !word.is_empty() {
                    f(&word);
                    word.clear();
                }
                i += ch.len_utf8();
            }
        }
        if !chunk.invalid().is_empty() && !word.is_empty() {
            f(&word);
            word.clear();
        }
    }
    if !word.is_empty() {
        f(&word);
    }
}

/// The words of `bytes`, lowercased, in order.
pub fn words(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(bytes, |w| out.push(w.to_string()));
    out
}

/// A map from word to count with a fast, non-cryptographic hash: the inputs are
/// trusted text and the benchmark measures this map.
pub type Counts = HashMap<String, u64, BuildHasherDefault<WordHasher>>;

/// FNV-1a over the key's bytes, mixed at the end so short keys spread over the table.
#[derive(Default)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

/// Adds the words of `bytes` to `counts`.
pub fn count_into(bytes: &[u8], counts: &mut Counts) {
    for_each_word(bytes, |w| {
        if let Some(n) = counts.get_mut(w) {
            *n += 1;
        } else {
            counts.insert(w.to_string(), 1);
        }
    });
}

/// The word counts of a whole input: the reference result of a word-count job.
pub fn word_count<'a>(inputs: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<String, u64> {
    let mut counts = Counts::default();
    for input in inputs {
        count_into(input, &mut counts);
    }
    counts.into_iter().collect()
}

/// Counts in the order of `output.txt`: count descending, then word ascending.
pub fn ranked<'a>(counts: impl IntoIterator<Item = (&'a String, &'a u64)>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = counts.into_iter().map(|(w, &n)| (w.clone(), n)).collect();
    out.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The exact text of `output.txt` for these counts.
pub fn render_ranked(ranked: &[(String, u64)]) -> String {
    let mut out = String::new();
    for (word, n) in ranked {
        out.push_str(word);
        out.push(' ');
        out.push_str(&n.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        words(s.as_bytes())
    }

    #[test]
    fn ascii_words_are_lowercased_runs_of_letters() {
        assert_eq!(w("Hello, World! hello"), ["hello", "world", "hello"]);
        assert_eq!(w("don't stop-me now"), ["don", "t", "stop", "me", "now"]);
        assert_eq!(w("abc123def_ghi"), ["abc", "def", "ghi"]);
        assert!(w("  42 ... \n\t").is_empty());
    }

    #[test]
    fn accented_latin_letters_are_part_of_words() {
        assert_eq!(w("Café CRÈME"), ["café", "crème"]);
        assert_eq!(w("Straße STRAẞE"), ["straße", "straße"]);
        assert_eq!(w("Łódź Ærø"), ["łódź", "ærø"]);
        assert_eq!(w("ĐẠI"), ["đại"]);
    }

    #[test]
    fn multiplication_and_division_signs_separate() {
        assert_eq!(w("a×b÷c"), ["a", "b", "c"]);
    }

    #[test]
    fn other_scripts_digits_and_marks_separate() {
        assert_eq!(w("καλημέρα world"), ["world"]);
        assert_eq!(w("abcпривет def"), ["abc", "def"]);
        assert_eq!(w("東京tokyo大阪"), ["tokyo"]);
        // A combining acute accent is not a Latin letter.
        assert_eq!(w("cafe\u{301}s"), ["cafe", "s"]);
        assert_eq!(w("x²y"), ["x", "y"]);
    }

    #[test]
    fn invalid_utf8_is_a_separator() {
        assert_eq!(words(b"ab\xffcd"), ["ab", "cd"]);
        // A truncated two-byte sequence between letters.
        assert_eq!(words(b"caf\xc3 x"), ["caf", "x"]);
        assert_eq!(words(b"\xe2\x82"), Vec::<String>::new());
        assert_eq!(words(b"\xc3\xa9t\xc3\xa9\xc3"), ["été"]);
    }

    #[test]
    fn lowercasing_follows_the_simple_mapping() {
        assert_eq!(w("İstanbul"), ["istanbul"]);
        assert_eq!(w("Ⱥb"), ["ⱥb"]);
    }

    #[test]
    fn fast_path_and_slow_path_agree() {
        // Mixed case, ASCII followed by accented letters, accented then ASCII.
        assert_eq!(w("ABCé éabc AbC"), ["abcé", "éabc", "abc"]);
    }

    #[test]
    fn ranked_is_by_count_then_word() {
        let counts = word_count([&b"b a c b a d"[..], b"A"]);
        let r = ranked(&counts);
        assert_eq!(render_ranked(&r), "a 3\nb 2\nc 1\nd 1\n");
    }

    #[test]
    fn word_count_sums_over_inputs() {
        let counts = word_count([&b"x y"[..], b"", b"y\xffy"]);
        assert_eq!(counts.get("y"), Some(&3));
        assert_eq!(counts.get("x"), Some(&1));
        assert_eq!(counts.len(), 2);
    }
}
