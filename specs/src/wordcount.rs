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

use std::collections::BTreeMap;

/// True for the characters that make up words (see the module doc).
pub fn is_word_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{24F}'
        | '\u{1E00}'..='\u{1EFF}')
}

/// The simple lowercase mapping of one character.
#[inline]
pub fn lower(c: char) -> char {
    match c {
        // Latin-1 capitals are their small letters less 0x20 (× is not a letter).
        '\u{C0}'..='\u{DE}' if c != '\u{D7}' => char::from_u32(c as u32 + 0x20).unwrap_or(c),
        '\u{DF}'..='\u{FF}' => c,
        _ => c.to_lowercase().next().unwrap_or(c),
    }
}

/// What a byte is to the tokenizer: ASCII separator, lowercase or uppercase ASCII
/// letter, or the first byte of something non-ASCII.
const SEP: u8 = 0;
const LOWER: u8 = 1;
const UPPER: u8 = 2;
const HIGH: u8 = 3;

const CLASS: [u8; 256] = {
    let mut t = [SEP; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'a'..=b'z' => LOWER,
            b'A'..=b'Z' => UPPER,
            0x80..=0xff => HIGH,
            _ => SEP,
        };
        b += 1;
    }
    t
};

/// Decodes the UTF-8 sequence at the start of `b` (whose first byte is >= 0x80):
/// the character and its length, or `None` if the first byte does not start a valid
/// sequence. Each byte of an invalid sequence then separates words on its own, which
/// gives the same words as the maximal-subpart rule: the bytes after an invalid lead
/// are continuation bytes, which never start a character either.
#[inline]
fn decode(b: &[u8]) -> Option<(char, usize)> {
    let cont = |i: usize| b.get(i).copied().filter(|c| (0x80..=0xbf).contains(c));
    let lead = b[0];
    let (cp, len) = match lead {
        0xc2..=0xdf => {
            let c1 = cont(1)?;
            ((u32::from(lead & 0x1f) << 6) | u32::from(c1 & 0x3f), 2)
        }
        0xe0..=0xef => {
            let c1 = cont(1)?;
            // Overlong forms and UTF-16 surrogates are not UTF-8.
            if (lead == 0xe0 && c1 < 0xa0) || (lead == 0xed && c1 > 0x9f) {
                return None;
            }
            let c2 = cont(2)?;
            (
                (u32::from(lead & 0x0f) << 12) | (u32::from(c1 & 0x3f) << 6) | u32::from(c2 & 0x3f),
                3,
            )
        }
        0xf0..=0xf4 => {
            let c1 = cont(1)?;
            if (lead == 0xf0 && c1 < 0x90) || (lead == 0xf4 && c1 > 0x8f) {
                return None;
            }
            let c2 = cont(2)?;
            let c3 = cont(3)?;
            (
                (u32::from(lead & 0x07) << 18)
                    | (u32::from(c1 & 0x3f) << 12)
                    | (u32::from(c2 & 0x3f) << 6)
                    | u32::from(c3 & 0x3f),
                4,
            )
        }
        _ => return None,
    };
    char::from_u32(cp).map(|c| (c, len))
}

/// A word found by [`tokenize`]: a range of the input that is the word as it is,
/// or a lowercased copy that lives until the next word.
enum Token<'t> {
    Input(usize, usize),
    Copy(&'t str),
}

/// Calls `f` with every word of `bytes`, in order, lowercased.
pub fn for_each_word(bytes: &[u8], mut f: impl FnMut(&str)) {
    tokenize(bytes, |t| match t {
        // SAFETY: an input range is a run of ASCII letters, valid UTF-8.
        Token::Input(s, e) => f(unsafe { std::str::from_utf8_unchecked(&bytes[s..e]) }),
        Token::Copy(w) => f(w),
    });
}

#[inline(always)]
fn tokenize(b: &[u8], mut f: impl FnMut(Token<'_>)) {
    // Holds a word that needed lowercasing or has non-ASCII letters, as UTF-8 bytes
    // pushed one by one (a copy call per character would cost more than the byte).
    let mut word: Vec<u8> = Vec::with_capacity(64);
    fn as_str(w: &[u8]) -> &str {
        // SAFETY: `word` only ever holds whole UTF-8 encodings of chars.
        unsafe { std::str::from_utf8_unchecked(w) }
    }
    let mut i = 0;
    while i < b.len() {
        match CLASS[b[i] as usize] {
            SEP => {
                if !word.is_empty() {
                    f(Token::Copy(as_str(&word)));
                    word.clear();
                }
                i += 1;
            }
            HIGH => match decode(&b[i..]) {
                Some((ch, len)) if is_word_char(ch) => {
                    let mut utf8 = [0u8; 4];
                    for &x in lower(ch).encode_utf8(&mut utf8).as_bytes() {
                        word.push(x);
                    }
                    i += len;
                }
                other => {
                    if !word.is_empty() {
                        f(Token::Copy(as_str(&word)));
                        word.clear();
                    }
                    i += other.map_or(1, |(_, len)| len);
                }
            },
            first => {
                // A run of ASCII letters: handed out without copying when it is a
                // whole word and already lowercase.
                let start = i;
                let mut upper = first == UPPER;
                i += 1;
                while i < b.len() {
                    match CLASS[b[i] as usize] {
                        LOWER => {}
                        UPPER => upper = true,
                        _ => break,
                    }
                    i += 1;
                }
                let continues = i < b.len() && CLASS[b[i] as usize] == HIGH;
                if word.is_empty() && !upper && !continues {
                    f(Token::Input(start, i));
                } else {
                    for &c in &b[start..i] {
                        word.push(c.to_ascii_lowercase());
                    }
                }
            }
        }
    }
    if !word.is_empty() {
        f(Token::Copy(as_str(&word)));
    }
}

/// The words of `bytes`, lowercased, in order.
pub fn words(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(bytes, |w| out.push(w.to_string()));
    out
}

/// Word counts, built for speed: the benchmark's single-thread baseline and the
/// word-count mapper both count with it.
///
/// An open-addressing table (linear probing) whose buckets hold the hash, the count
/// and the first eight bytes of the word, with every word's bytes in one arena. Most
/// lookups touch one bucket and nothing else: a word of up to eight bytes is compared
/// without leaving the bucket, and no word is allocated on its own.
#[derive(Debug, Clone)]
pub struct Counts {
    buckets: Vec<Bucket>,
    arena: Vec<u8>,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    hash: u64,
    count: u64,
    /// The word's first eight bytes, zero-padded.
    head: u64,
    start: u32,
    /// [`EMPTY`] for a free bucket.
    len: u32,
}

const EMPTY: u32 = u32::MAX;
const FREE: Bucket = Bucket {
    hash: 0,
    count: 0,
    head: 0,
    start: 0,
    len: EMPTY,
};

impl Bucket {
    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// Up to the first eight bytes of `bytes` as a little-endian number, zero-padded.
/// A byte loop: for these lengths a call to `memcpy` costs more than the copy.
#[inline]
fn load(bytes: &[u8]) -> u64 {
    if let Some(eight) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*eight);
    }
    let mut x = 0u64;
    for (k, &b) in bytes.iter().enumerate() {
        x |= u64::from(b) << (8 * k);
    }
    x
}

#[inline]
fn head(word: &[u8]) -> u64 {
    load(word)
}

/// Byte equality inlined for short words, where a call to `memcmp` costs more than
/// the comparison.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("8 bytes"));
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        if word(x) != word(y) {
            return false;
        }
    }
    ca.remainder()
        .iter()
        .zip(cb.remainder())
        .all(|(x, y)| x == y)
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn hash(word: &[u8]) -> u64 {
    let mut h = word.len() as u64;
    let mut chunks = word.chunks_exact(8);
    for c in &mut chunks {
        h = (h.rotate_left(5) ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = (h.rotate_left(5) ^ load(rest)).wrapping_mul(K);
    }
    // Fold the well-mixed high bits into the low ones the table indexes by.
    h ^ (h >> 29)
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            buckets: vec![FREE; 1024],
            arena: Vec::new(),
            len: 0,
        }
    }
}

impl Counts {
    pub fn new() -> Counts {
        Counts::default()
    }

    /// Adds `n` to the count of `word`.
    #[inline]
    pub fn add(&mut self, word: &str, n: u64) {
        self.add_hashed(word.as_bytes(), hash(word.as_bytes()), n);
    }

    /// Asks the CPU to start loading the bucket where a word with hash `h` would
    /// start its probe, so the lookup a few words later does not wait for memory.
    #[inline]
    fn prefetch(&self, h: u64) {
        let i = h as usize & (self.buckets.len() - 1);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint; it never faults or reads into a
        // register, and the address is inside the bucket array anyway.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.buckets.as_ptr().add(i) as *const i8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    /// `add` for the UTF-8 bytes `w` of a word whose hash is already known.
    #[inline]
    fn add_hashed(&mut self, w: &[u8], h: u64, n: u64) {
        let hd = head(w);
        let len = u32::try_from(w.len()).expect("a word under 4 GiB");
        let mask = self.buckets.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let b = &mut self.buckets[i];
            if b.len == EMPTY {
                break;
            }
            if b.hash == h
                && b.len == len
                && b.head == hd
                && (len <= 8 || same(&self.arena[b.start as usize + 8..][..w.len() - 8], &w[8..]))
            {
                b.count += n;
                return;
            }
            i = (i + 1) & mask;
        }
        let start = u32::try_from(self.arena.len()).expect("words fit in 4 GiB");
        self.arena.extend_from_slice(w);
        self.buckets[i] = Bucket {
            hash: h,
            count: n,
            head: hd,
            start,
            len,
        };
        self.len += 1;
        // Linear probing stays short below 70% full.
        if self.len * 10 > self.buckets.len() * 7 {
            self.grow();
        }
    }

    fn grow(&mut self) {
        let mut buckets = vec![FREE; self.buckets.len() * 2];
        let mask = buckets.len() - 1;
        for b in self.buckets.iter().filter(|b| b.len != EMPTY) {
            let mut i = b.hash as usize & mask;
            while buckets[i].len != EMPTY {
                i = (i + 1) & mask;
            }
            buckets[i] = *b;
        }
        self.buckets = buckets;
    }

    /// The count of `word` (0 if never seen).
    pub fn get(&self, word: &str) -> u64 {
        self.iter().find(|(w, _)| *w == word).map_or(0, |(_, n)| n)
    }

    /// Number of distinct words.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every word and its count, in an order that depends only on the words added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.buckets.iter().filter(|b| b.len != EMPTY).map(|b| {
            let w = &self.arena[b.range()];
            // SAFETY: the arena holds only bytes copied from `&str`s, whole.
            (unsafe { std::str::from_utf8_unchecked(w) }, b.count)
        })
    }

    pub fn to_map(&self) -> BTreeMap<String, u64> {
        self.iter().map(|(w, n)| (w.to_string(), n)).collect()
    }
}

/// Adds the words of `bytes` to `counts`.
///
/// Words go through a small batch: each word's bucket is prefetched when the word
/// is found and looked up a batch later, so the table's cache misses overlap with
/// tokenizing instead of stalling one after another (most of the time of counting a
/// large vocabulary is otherwise spent waiting for those misses).
pub fn count_into(bytes: &[u8], counts: &mut Counts) {
    const BATCH: usize = 16;
    // Ranges of the input with their hashes.
    let mut pending: Vec<(usize, usize, u64)> = Vec::with_capacity(BATCH);
    let flush = |pending: &mut Vec<(usize, usize, u64)>, counts: &mut Counts| {
        for &(start, end, h) in pending.iter() {
            counts.add_hashed(&bytes[start..end], h, 1);
        }
        pending.clear();
    };
    tokenize(bytes, |t| match t {
        Token::Input(start, end) => {
            let h = hash(&bytes[start..end]);
            counts.prefetch(h);
            pending.push((start, end, h));
            if pending.len() == BATCH {
                flush(&mut pending, counts);
            }
        }
        // A lowercased copy lives only until the next word: count it now. Order
        // does not matter to a count.
        Token::Copy(w) => counts.add(w, 1),
    });
    flush(&mut pending, counts);
}

/// The word counts of a whole input: the reference result of a word-count job.
pub fn word_count<'a>(inputs: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<String, u64> {
    let mut counts = Counts::default();
    for input in inputs {
        count_into(input, &mut counts);
    }
    counts.to_map()
}

/// Counts in the order of `output.txt`: count descending, then word ascending.
pub fn ranked<S: AsRef<str>>(counts: impl IntoIterator<Item = (S, u64)>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(w, n)| (w.as_ref().to_string(), n))
        .collect();
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
        let r = ranked(counts.iter().map(|(w, n)| (w, *n)));
        assert_eq!(render_ranked(&r), "a 3\nb 2\nc 1\nd 1\n");
    }

    /// The definition, written the obvious way: decode with the maximal-subpart rule,
    /// keep runs of word characters.
    fn simple_words(bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                if is_word_char(c) {
                    word.push(lower(c));
                } else if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            if !chunk.invalid().is_empty() && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
        out
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn the_fast_tokenizer_agrees_with_the_definition_on_random_bytes() {
        let pieces: [&[u8]; 16] = [
            b"a",
            b"Z",
            b"q",
            b" ",
            b"1",
            "é".as_bytes(),
            "É".as_bytes(),
            "ß".as_bytes(),
            "İ".as_bytes(),
            "Ⱥ".as_bytes(),
            "ẞ".as_bytes(),
            "п".as_bytes(),
            "東".as_bytes(),
            "\u{301}".as_bytes(),
            "😀".as_bytes(),
            b"\n",
        ];
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let mut input = Vec::new();
            for _ in 0..rng.next() % 24 {
                match rng.next() % 4 {
                    // Arbitrary bytes, mostly invalid UTF-8 around valid text.
                    0 => input.push(rng.next() as u8),
                    // A valid sequence cut short.
                    1 => {
                        let p = pieces[rng.next() as usize % pieces.len()];
                        input.extend_from_slice(&p[..p.len().div_ceil(2)]);
                    }
                    _ => input.extend_from_slice(pieces[rng.next() as usize % pieces.len()]),
                }
            }
            assert_eq!(words(&input), simple_words(&input), "input {input:?}");
        }
    }

    #[test]
    fn the_latin1_shortcut_is_the_unicode_mapping() {
        for c in '\u{C0}'..='\u{FF}' {
            assert_eq!(lower(c), c.to_lowercase().next().unwrap(), "{c:?}");
        }
    }

    #[test]
    fn counts_match_a_plain_map_through_growth() {
        let mut rng = XorShift(99);
        let mut counts = Counts::new();
        let mut plain = BTreeMap::new();
        for i in 0..50_000 {
            // Short words, and long ones that share their first eight bytes.
            let w = if i % 2 == 0 {
                format!("w{}", rng.next() % 5_000)
            } else {
                format!("samehead{}", rng.next() % 5_000)
            };
            counts.add(&w, 2);
            *plain.entry(w).or_insert(0) += 2;
        }
        assert_eq!(counts.len(), plain.len());
        assert_eq!(counts.to_map(), plain);
        assert_eq!(counts.get("nope"), 0);
    }

    #[test]
    fn word_count_sums_over_inputs() {
        let counts = word_count([&b"x y"[..], b"", b"y\xffy"]);
        assert_eq!(counts.get("y"), Some(&3));
        assert_eq!(counts.get("x"), Some(&1));
        assert_eq!(counts.len(), 2);
    }
}
