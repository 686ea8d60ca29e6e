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
use std::sync::LazyLock;

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
        '\u{100}'..='\u{24F}' => EXTENDED_LOWER[c as usize - 0x100],
        _ => c.to_lowercase().next().unwrap_or(c),
    }
}

/// The simple lowercase mapping of U+0100..=U+024F (Latin Extended-A and -B), where
/// capitals and small letters alternate irregularly: looked up in a small table
/// instead of searched for in Unicode's tables at every character.
static EXTENDED_LOWER: LazyLock<[char; 0x150]> = LazyLock::new(|| {
    std::array::from_fn(|k| {
        let c = char::from_u32(0x100 + k as u32).expect("no surrogate below U+0250");
        c.to_lowercase().next().unwrap_or(c)
    })
});

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

/// Eight bytes of `b` from `i` as a little-endian number, zero-padded past the end
/// (a zero byte separates words, so padding never extends one).
#[inline(always)]
fn load8(b: &[u8], i: usize) -> u64 {
    match b.get(i..i + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
        None => load(b.get(i..).unwrap_or_default()),
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
#[cfg(any(not(target_arch = "x86_64"), test))]
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `x` that is an ASCII letter, found for eight bytes at
/// once: a byte is a letter when, with bit 5 set (`A` becomes `a`), it lies in
/// `a..=z` and it is below 0x80. The additions cannot carry between bytes: each byte
/// is at most 0x7f before them.
#[cfg(any(not(target_arch = "x86_64"), test))]
#[inline(always)]
fn ascii_letters(x: u64) -> u64 {
    let folded = (x | (0x20 * ONES)) & (0x7f * ONES);
    let at_least_a = folded + (0x80 - u64::from(b'a')) * ONES;
    let above_z = folded + (0x7f - u64::from(b'z')) * ONES;
    at_least_a & !above_z & !x & HIGH_BITS
}

/// A word found by [`tokenize`], with its hash (see [`hash`]) and its first sixteen
/// bytes, lowercased, as two zero-padded numbers, computed on the way.
enum Token<'t> {
    /// An ASCII word of the input, `input[start..start + len]`. Up to sixteen bytes
    /// long it may hold capitals, and its lowercase form is `head`'s bytes; longer, it
    /// is lowercase already (a longer one with capitals comes as a copy).
    Ascii {
        start: usize,
        len: usize,
        hash: u64,
        head: [u64; 2],
    },
    /// A lowercased copy, valid until the next word.
    Copy {
        word: &'t [u8],
        hash: u64,
        head: [u64; 2],
    },
}

/// The bytes of a [`head`], in order.
#[inline(always)]
fn head_bytes(head: [u64; 2]) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&head[0].to_le_bytes());
    bytes[8..].copy_from_slice(&head[1].to_le_bytes());
    bytes
}

/// The lowercase bytes of a [`Token::Ascii`] of `input`: up to sixteen bytes its
/// head's, put in `short` (the word in the input may hold capitals), beyond that the
/// input's own.
#[inline(always)]
fn ascii_bytes<'a>(
    input: &'a [u8],
    (start, len): (usize, usize),
    head: [u64; 2],
    short: &'a mut [u8; 16],
) -> &'a [u8] {
    if len <= 16 {
        *short = head_bytes(head);
        &short[..len]
    } else {
        &input[start..start + len]
    }
}

/// Calls `f` with every word of `bytes`, in order, lowercased.
pub fn for_each_word(bytes: &[u8], mut f: impl FnMut(&str)) {
    tokenize(bytes, |t| {
        let mut short = [0u8; 16];
        let w = match t {
            Token::Ascii {
                start, len, head, ..
            } => ascii_bytes(bytes, (start, len), head, &mut short),
            Token::Copy { word, .. } => word,
        };
        // SAFETY: an ASCII word and its lowercase form are ASCII, and a copy holds
        // whole UTF-8 encodings of chars: both are valid UTF-8.
        f(unsafe { std::str::from_utf8_unchecked(w) })
    });
}

/// How many bytes the tokenizer classifies at once: one bit of a `u64` each.
const WINDOW: usize = 64;

/// `LOW_BYTES[k]`: the low `k` bytes of a `u64` set, the rest clear.
const LOW_BYTES: [u64; 9] = {
    let mut masks = [0u64; 9];
    let mut k = 1;
    while k < 9 {
        masks[k] = u64::MAX >> (64 - 8 * k);
        k += 1;
    }
    masks
};

/// The tokenizer. It classifies the input [`WINDOW`] bytes at a time into two masks
/// (ASCII letters; bytes of non-ASCII characters) and finds each word's start and end
/// with counts of trailing zeros on them, so neither a word's length nor a
/// separator's costs a branch per byte (a loop that tests byte by byte mispredicts at
/// most word ends). A run of ASCII letters is a word whose lowercase form and hash
/// come from one or two eight-byte loads (see [`ascii_word`]); a run with a
/// non-ASCII byte in it goes through [`rest_of_word`], character by character. A
/// run that reaches the window's end is looked at again from its start.
#[inline(always)]
fn tokenize(b: &[u8], mut f: impl FnMut(Token<'_>)) {
    // Words with non-ASCII letters, or long ones with capitals, as UTF-8 bytes.
    let mut word: Vec<u8> = Vec::with_capacity(64);
    let n = b.len();
    let mut base = 0;
    while base < n {
        let (letters, high) = classify(b, base);
        let any = letters | high;
        let mut rest = any;
        let mut next = base + WINDOW;
        while rest != 0 {
            let s = rest.trailing_zeros() as usize;
            let len = (!(any >> s)).trailing_zeros() as usize;
            if s + len == WINDOW {
                // The run may go on past the window: the next window starts with it,
                // or, for a run that fills this one, it is followed to its end.
                next = if s > 0 {
                    base + s
                } else {
                    long_run(b, base, &mut word, &mut f)
                };
                break;
            }
            // `len` < 64 here: a run reaching the window's end was handled above.
            if (high >> s) & ((1u64 << len) - 1) == 0 {
                ascii_word(b, base + s, len, &mut word, &mut f);
                rest &= u64::MAX << (s + len);
            } else {
                let j = slow_word(b, base + s, &mut word, &mut f);
                if j - base >= WINDOW {
                    next = j;
                    break;
                }
                rest &= u64::MAX << (j - base);
            }
        }
        base = next;
    }
}

/// Hands `f` the ASCII word `b[start..start + len]` (letters only), lowercased by
/// setting bit 5 of its bytes and hashed from the same loads: one or two eight-byte
/// loads for a word of up to sixteen bytes, whatever its length, without a loop.
#[inline(always)]
fn ascii_word(
    b: &[u8],
    start: usize,
    len: usize,
    word: &mut Vec<u8>,
    f: &mut impl FnMut(Token<'_>),
) {
    const CASE: u64 = 0x20 * ONES;
    if len <= 16 {
        let (m0, m1) = (LOW_BYTES[len.min(8)], LOW_BYTES[len.saturating_sub(8)]);
        let head = [
            (load8(b, start) | CASE) & m0,
            (load8(b, start + 8) | CASE) & m1,
        ];
        let one = mix(0, head[0]);
        // Both hashes, one kept: word lengths vary too much for a branch.
        let two = mix(one, head[1]);
        let hash = if len > 8 { two } else { one };
        f(Token::Ascii {
            start,
            len,
            hash,
            head,
        });
        return;
    }
    let (mut hash, mut head, mut capitals) = (0u64, [0u64; 2], 0u64);
    for (k, at) in (start..start + len).step_by(8).enumerate() {
        let m = LOW_BYTES[(start + len - at).min(8)];
        let x = load8(b, at);
        let lowered = (x | CASE) & m;
        capitals |= !x & CASE & m;
        if k < 2 {
            head[k] = lowered;
        }
        hash = mix(hash, lowered);
    }
    if capitals == 0 {
        f(Token::Ascii {
            start,
            len,
            hash,
            head,
        });
    } else {
        word.clear();
        word.extend(b[start..start + len].iter().map(u8::to_ascii_lowercase));
        f(Token::Copy { word, hash, head });
    }
}

/// Hands `f` the word that starts at `start` with a non-ASCII byte in it or right
/// after its ASCII letters, read character by character; returns where the scan
/// stopped (see [`rest_of_word`]).
fn slow_word(b: &[u8], start: usize, word: &mut Vec<u8>, f: &mut impl FnMut(Token<'_>)) -> usize {
    word.clear();
    let j = rest_of_word(b, start, word);
    if !word.is_empty() {
        f(Token::Copy {
            word,
            hash: hash(word),
            head: head(word),
        });
    }
    j
}

/// A run of letters and non-ASCII bytes that fills a whole window from `start`:
/// followed window by window while it holds only ASCII letters, then handed on as one
/// ASCII word, or, at its first non-ASCII byte, read character by character from its
/// start. Returns where the tokenizer goes on. (Following a run to its end before
/// reading it would read a long run of non-ASCII bytes, which splits into many words
/// and separators, once for each of them.)
#[cold]
fn long_run(b: &[u8], start: usize, word: &mut Vec<u8>, f: &mut impl FnMut(Token<'_>)) -> usize {
    let mut end = start;
    loop {
        let (letters, _) = classify(b, end);
        let len = (!letters).trailing_zeros() as usize;
        end += len;
        if len < WINDOW {
            break;
        }
    }
    if b.get(end).is_some_and(|&c| c >= 0x80) {
        slow_word(b, start, word, f)
    } else {
        ascii_word(b, start, end - start, word, f);
        end
    }
}

/// Bit `j` of the two masks: byte `p + j` of `b` is an ASCII letter; it is 0x80 or
/// above (a byte of a non-ASCII character, or invalid). Past the end of `b` bytes
/// count as zero, a separator.
#[inline(always)]
fn classify(b: &[u8], p: usize) -> (u64, u64) {
    match b.get(p..p + WINDOW) {
        Some(window) => classify_window(window.try_into().expect("a window")),
        None => {
            let mut window = [0u8; WINDOW];
            let rest = b.get(p..).unwrap_or_default();
            window[..rest.len()].copy_from_slice(rest);
            classify_window(&window)
        }
    }
}

/// [`classify`] with SSE2, which every x86-64 CPU has: sixteen bytes a step, each
/// mask from one `movemask`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classify_window(window: &[u8; WINDOW]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let (mut letters, mut high) = (0u64, 0u64);
    for k in 0..WINDOW / 16 {
        // SAFETY: SSE2 is part of x86-64; the load reads sixteen bytes of `window`.
        let (l, h) = unsafe {
            let v = _mm_loadu_si128(window.as_ptr().add(16 * k).cast::<__m128i>());
            // Bit 5 set makes capitals small; adding 0x1f then takes `a..=z` to
            // -128..=-103 as signed bytes, and nothing else there (bytes of 0x80 and
            // above land in -65..=-1 or 0..=30).
            let shifted = _mm_add_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8(0x1f));
            let is_letter = _mm_cmplt_epi8(shifted, _mm_set1_epi8(-102));
            (_mm_movemask_epi8(is_letter), _mm_movemask_epi8(v))
        };
        letters |= u64::from(l as u16) << (16 * k);
        high |= u64::from(h as u16) << (16 * k);
    }
    (letters, high)
}

/// [`classify`] eight bytes at a time with integer arithmetic, for other CPUs.
#[cfg(any(not(target_arch = "x86_64"), test))]
fn classify_window_portable(window: &[u8; WINDOW]) -> (u64, u64) {
    /// The high bits of `x`'s eight bytes gathered into bits 0..8: each lands on its
    /// own bit of the top byte of the product.
    fn gather(x: u64) -> u64 {
        ((x & HIGH_BITS) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
    }
    let (mut letters, mut high) = (0u64, 0u64);
    for (k, eight) in window.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
        letters |= gather(ascii_letters(x)) << (8 * k);
        high |= gather(x) << (8 * k);
    }
    (letters, high)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn classify_window(window: &[u8; WINDOW]) -> (u64, u64) {
    classify_window_portable(window)
}

/// Appends the word characters from `i` on to `word`, lowercased, and returns where
/// the scan stopped: at an ASCII separator, or just after a non-ASCII character that
/// is not a word character (an invalid byte counts as one character), so a call that
/// starts on a non-ASCII byte always moves on.
fn rest_of_word(b: &[u8], mut i: usize, word: &mut Vec<u8>) -> usize {
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            // A run of ASCII letters, copied in one go (bit 5 set lowercases a letter).
            let run = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            if run == 0 {
                return i;
            }
            word.extend(b[i..i + run].iter().map(|c| c | 0x20));
            i += run;
            continue;
        }
        if c == 0xc3 {
            if let Some(&c1) = b.get(i + 1) {
                if (0x80..=0xbf).contains(&c1) && c1 != 0x97 && c1 != 0xb7 {
                    // U+00C0..=U+00FF but × and ÷: a Latin-1 letter, the commonest
                    // non-ASCII ones in Latin-script text. Capitals (up to U+00DE)
                    // are their small letters less 0x20.
                    word.extend_from_slice(&[0xc3, if c1 <= 0x9e { c1 | 0x20 } else { c1 }]);
                    i += 2;
                    continue;
                }
            }
        }
        match decode(&b[i..]) {
            Some((ch, len)) if is_word_char(ch) => {
                let mut utf8 = [0u8; 4];
                word.extend_from_slice(lower(ch).encode_utf8(&mut utf8).as_bytes());
                i += len;
            }
            other => return i + other.map_or(1, |(_, len)| len),
        }
    }
    i
}

/// The words of `bytes`, lowercased, in order.
pub fn words(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(bytes, |w| out.push(w.to_string()));
    out
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

/// The first sixteen bytes of a word as two numbers, zero-padded.
#[inline]
fn head(word: &[u8]) -> [u64; 2] {
    [load(word), load(word.get(8..).unwrap_or_default())]
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

/// One step of the word hash: eight bytes (the last ones zero-padded) into the state.
#[inline(always)]
fn mix(h: u64, eight: u64) -> u64 {
    (h.rotate_left(5) ^ eight).wrapping_mul(K)
}

/// The hash of a word: [`mix`] over its eight-byte pieces from the start, the last
/// piece zero-padded. No word holds a zero byte, so the pieces alone tell words
/// apart. The tokenizer computes the same value from the loads it finds the word
/// with; this is for the words it copies. The table indexes by the top bits, where a
/// multiplication leaves every bit of its input mixed in.
///
/// Why not a hash crate (`foldhash`, `ahash`, `rustc-hash`): they are as fast per
/// byte, but take the bytes through `Hasher::write` and so read every word a second
/// time, where this one is a multiplication per eight letters already in a register.
#[inline]
fn hash(word: &[u8]) -> u64 {
    let mut h = 0;
    let mut chunks = word.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = mix(h, load(rest));
    }
    h
}

/// Word counts, built for speed: the benchmark's single-thread baseline and the
/// word-count mapper both count with it.
///
/// An open-addressing table (linear probing) whose buckets hold the count and the
/// first sixteen bytes of the word, with every word's bytes in one arena. Most
/// lookups touch one bucket and nothing else: a word of up to sixteen bytes (nearly
/// every word of a text) is compared without leaving the bucket, and no word is
/// allocated on its own. The hash is not kept: it only picks the first bucket, and
/// the sixteen bytes and the length reject another word as fast.
#[derive(Debug, Clone)]
pub struct Counts {
    buckets: Vec<Bucket>,
    /// 64 less log2 of the number of buckets: a hash's top bits pick its bucket.
    shift: u32,
    arena: Vec<u8>,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// The word's first sixteen bytes, zero-padded.
    head: [u64; 2],
    count: u64,
    start: u32,
    /// [`EMPTY`] for a free bucket.
    len: u32,
}

const EMPTY: u32 = u32::MAX;
const FREE: Bucket = Bucket {
    head: [0; 2],
    count: 0,
    start: 0,
    len: EMPTY,
};
const INITIAL_BUCKETS: usize = 1024;

impl Bucket {
    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            buckets: vec![FREE; INITIAL_BUCKETS],
            shift: 64 - INITIAL_BUCKETS.trailing_zeros(),
            arena: Vec::new(),
            len: 0,
        }
    }
}

impl Counts {
    pub fn new() -> Counts {
        Counts::default()
    }

    /// Forgets every word but keeps the memory: a table that counts one input after
    /// another (a worker's map tasks) then grows only once.
    pub fn clear(&mut self) {
        self.buckets.fill(FREE);
        self.arena.clear();
        self.len = 0;
    }

    /// Adds `n` to the count of `word`.
    #[inline]
    pub fn add(&mut self, word: &str, n: u64) {
        let w = word.as_bytes();
        self.add_hashed(w, hash(w), head(w), n);
    }

    #[inline(always)]
    fn index(&self, h: u64) -> usize {
        (h >> self.shift) as usize
    }

    /// Asks the CPU to start loading the bucket where a word with hash `h` would
    /// start its probe, so the lookup a few words later does not wait for memory.
    #[inline]
    fn prefetch(&self, h: u64) {
        let i = self.index(h);
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

    /// `add` for the UTF-8 bytes `w` of a word whose hash and [`head`] are already
    /// known.
    #[inline]
    fn add_hashed(&mut self, w: &[u8], h: u64, hd: [u64; 2], n: u64) {
        let len = u32::try_from(w.len()).expect("a word under 4 GiB");
        let mask = self.buckets.len() - 1;
        let mut i = self.index(h);
        loop {
            let b = &mut self.buckets[i];
            if b.len == EMPTY {
                break;
            }
            if b.len == len
                && b.head == hd
                && (len <= 16
                    || same(
                        &self.arena[b.start as usize + 16..][..w.len() - 16],
                        &w[16..],
                    ))
            {
                b.count += n;
                return;
            }
            i = (i + 1) & mask;
        }
        let start = u32::try_from(self.arena.len()).expect("words fit in 4 GiB");
        self.arena.extend_from_slice(w);
        self.buckets[i] = Bucket {
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
        let bigger = vec![FREE; self.buckets.len() * 2];
        let old = std::mem::replace(&mut self.buckets, bigger);
        self.shift -= 1;
        let mask = self.buckets.len() - 1;
        for b in old.iter().filter(|b| b.len != EMPTY) {
            let mut i = self.index(hash(&self.arena[b.range()]));
            while self.buckets[i].len != EMPTY {
                i = (i + 1) & mask;
            }
            self.buckets[i] = *b;
        }
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
/// Words go through a ring: each word's bucket is prefetched when the word is found
/// and looked up `AHEAD` (32) words later, so the table's cache misses overlap with
/// tokenizing instead of stalling one after another (most of the time of counting a
/// large vocabulary is otherwise spent waiting for those misses). A ring keeps every
/// word the same distance ahead, where a batch looked its last words up right after
/// prefetching them.
pub fn count_into(bytes: &[u8], counts: &mut Counts) {
    // ASCII words: where they are, their lengths, hashes and heads.
    let mut ring = [(0usize, 0usize, 0u64, [0u64; 2]); AHEAD];
    let mut found = 0usize;
    // Read from the ring in place: a copy of the entry on the stack, read back in
    // other sizes than it was written in, stalls the load.
    let add = |counts: &mut Counts, &(start, len, hash, head): &(usize, usize, u64, [u64; 2])| {
        let mut short = [0u8; 16];
        let word = ascii_bytes(bytes, (start, len), head, &mut short);
        counts.add_hashed(word, hash, head, 1);
    };
    tokenize(bytes, |t| match t {
        Token::Ascii {
            start,
            len,
            hash,
            head,
        } => {
            counts.prefetch(hash);
            let slot = found % AHEAD;
            if found >= AHEAD {
                add(counts, &ring[slot]);
            }
            ring[slot] = (start, len, hash, head);
            found += 1;
        }
        // A lowercased copy lives only until the next word: count it now. Order
        // does not matter to a count.
        Token::Copy { word, hash, head } => counts.add_hashed(word, hash, head, 1),
    });
    for k in found.saturating_sub(AHEAD)..found {
        add(counts, &ring[k % AHEAD]);
    }
}

/// How many words ahead of its lookup a word's bucket is prefetched: enough words
/// to cover a miss to memory at a few nanoseconds a word.
const AHEAD: usize = 32;

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
        let pieces: [&[u8]; 19] = [
            "×".as_bytes(),
            "÷".as_bytes(),
            "ÿ".as_bytes(),
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

    /// Every path of the tokenizer (a lowercase word counted in place, a word with
    /// capitals lowercased from its eight-byte loads, a word with non-ASCII letters
    /// copied character by character) must give one word one hash and one head, or
    /// the table would count one word in two buckets. Word lengths cross the eight-byte
    /// steps and the end of the input.
    #[test]
    fn counts_agree_with_the_definition_whatever_the_path() {
        let pieces: [&[u8]; 12] = [
            b"abcdefgh",
            b"ABCDEFGH",
            b"abcdefg",
            b"Ab",
            b"a",
            b"Q",
            "é".as_bytes(),
            "Ⱥ".as_bytes(),
            b" ",
            b"--",
            "東".as_bytes(),
            b"\xff",
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5_000 {
            let input = pieces_at_random(&mut rng, &pieces, 40);
            counts_are_the_definitions(&input);
        }
    }

    /// Up to `most` of `pieces`, drawn at random, one after another.
    fn pieces_at_random(rng: &mut XorShift, pieces: &[&[u8]], most: u64) -> Vec<u8> {
        let mut input = Vec::new();
        for _ in 0..rng.next() % most {
            input.extend_from_slice(pieces[rng.next() as usize % pieces.len()]);
        }
        input
    }

    /// `count_into` counts `input` as the plain definition does.
    fn counts_are_the_definitions(input: &[u8]) {
        let mut plain = BTreeMap::new();
        for w in simple_words(input) {
            *plain.entry(w).or_insert(0u64) += 1;
        }
        let mut counts = Counts::new();
        count_into(input, &mut counts);
        assert_eq!(counts.len(), plain.len(), "input {input:?}");
        assert_eq!(counts.to_map(), plain, "input {input:?}");
    }

    /// Words that reach past the tokenizer's 64-byte window, or fill it and the next
    /// ones, with capitals or non-ASCII letters among them or at either end, must come
    /// out as the definition says, and count as one word whatever path found them.
    #[test]
    fn words_across_and_beyond_a_window_agree_with_the_definition() {
        let long = "abcdefghijklmnopqrstuvwxyz".repeat(3);
        let long_upper = long.to_uppercase();
        let long_accented = format!("{}é{}", &long[..40], &long[..30]);
        let pieces: [&[u8]; 10] = [
            long.as_bytes(),
            &long.as_bytes()[..17],
            long_upper.as_bytes(),
            &long_upper.as_bytes()[..9],
            long_accented.as_bytes(),
            b"Ab",
            b" ",
            "é".as_bytes(),
            "東".as_bytes(),
            b"\xff",
        ];
        let mut rng = XorShift(0x5851_f42d_4c95_7f2d);
        for _ in 0..3_000 {
            let input = pieces_at_random(&mut rng, &pieces, 16);
            // Start the input anywhere in a window.
            let input = &input[(rng.next() as usize % 64).min(input.len())..];
            assert_eq!(words(input), simple_words(input), "input {input:?}");
            counts_are_the_definitions(input);
        }
    }

    /// Megabytes of non-ASCII bytes and letters without a space are many words and
    /// separators, each looked at once: read again from each word to the run's end,
    /// this input would take hours.
    #[test]
    fn a_long_run_of_non_ascii_bytes_is_read_once() {
        let mut input = "é東x東".repeat(1 << 18).into_bytes();
        input.extend_from_slice(&[0xff; 1 << 18]);
        let mut counts = Counts::new();
        count_into(&input, &mut counts);
        let each = 1 << 18;
        assert_eq!(
            counts.to_map(),
            BTreeMap::from([("é".into(), each), ("x".into(), each)])
        );
        assert_eq!(words(&input[..9 * 2]), ["é", "x", "é", "x"]);
    }

    /// The SSE2 classifier and the portable one agree on every kind of byte.
    #[test]
    fn both_classifiers_agree() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let all: Vec<u8> = (0..=255).collect();
        let mut windows: Vec<[u8; WINDOW]> = all
            .chunks(WINDOW)
            .map(|c| c.try_into().expect("a window"))
            .collect();
        for _ in 0..1_000 {
            windows.push(std::array::from_fn(|_| rng.next() as u8));
        }
        for window in &windows {
            let (letters, high) = classify_window_portable(window);
            for (j, &c) in window.iter().enumerate() {
                assert_eq!(
                    letters >> j & 1 == 1,
                    c.is_ascii_alphabetic(),
                    "byte {c:#x}"
                );
                assert_eq!(high >> j & 1 == 1, c >= 0x80, "byte {c:#x}");
            }
            assert_eq!(
                classify_window(window),
                (letters, high),
                "window {window:?}"
            );
        }
    }

    #[test]
    fn a_cleared_table_counts_afresh() {
        let mut counts = Counts::new();
        for i in 0..5_000 {
            counts.add(&format!("w{i}"), 1);
        }
        counts.clear();
        assert!(counts.is_empty());
        count_into(b"b a B", &mut counts);
        assert_eq!(
            counts.to_map(),
            BTreeMap::from([("a".into(), 1), ("b".into(), 2)])
        );
    }

    #[test]
    fn the_latin_shortcuts_are_the_unicode_mapping() {
        for c in '\u{C0}'..='\u{24F}' {
            assert_eq!(lower(c), c.to_lowercase().next().unwrap(), "{c:?}");
        }
    }

    #[test]
    fn counts_match_a_plain_map_through_growth() {
        let mut rng = XorShift(99);
        let mut counts = Counts::new();
        let mut plain = BTreeMap::new();
        for i in 0..50_000 {
            // Short words, and long ones that share their first eight or sixteen
            // bytes (what a bucket holds of a word).
            let w = match i % 3 {
                0 => format!("w{}", rng.next() % 5_000),
                1 => format!("samehead{}", rng.next() % 5_000),
                _ => format!("sixteen-byte-hd{}", rng.next() % 5_000),
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
