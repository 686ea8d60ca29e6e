//! An immutable string value that is cheap to clone, hash and compare.
//!
//! Key/value states are cloned at every step of a linearizability search and hashed
//! into its cache. Values only grow by appends, so they get long; sharing them behind
//! an `Arc` with the hash computed once makes a state clone a few reference-count
//! increments and a state hash a few word mixes, while equality stays exact.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

#[derive(Clone)]
pub struct Text(Arc<Inner>);

struct Inner {
    text: String,
    hash: u64,
}

impl Text {
    pub fn new(text: impl Into<String>) -> Text {
        let text = text.into();
        let hash = fnv1a(text.as_bytes());
        Text(Arc::new(Inner { text, hash }))
    }

    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// This text followed by `suffix`.
    pub fn concat(&self, suffix: &str) -> Text {
        if suffix.is_empty() {
            return self.clone();
        }
        let mut text = String::with_capacity(self.0.text.len() + suffix.len());
        text.push_str(&self.0.text);
        text.push_str(suffix);
        // FNV-1a runs left to right, so the hash of the whole continues the prefix's.
        let hash = fnv1a_from(self.0.hash, suffix.as_bytes());
        Text(Arc::new(Inner { text, hash }))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, bytes)
}

fn fnv1a_from(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.text == other.0.text)
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0.text == other
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_content_is_equal_whatever_its_history() {
        let a = Text::new("ab");
        let b = Text::new("a").concat("b");
        assert_eq!(a, b);
        assert_ne!(a, Text::new("abc"));
        assert!(a == *"ab");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        a.hash(&mut h);
        let mut g = std::collections::hash_map::DefaultHasher::new();
        b.hash(&mut g);
        assert_eq!(h.finish(), g.finish(), "equal texts hash alike");
    }
}
