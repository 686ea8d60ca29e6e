//! The set of operations linearized so far, with a hash kept up to date in O(1).
//!
//! The search flips one bit per step and looks the set up in its cache at every step,
//! so the hash is Zobrist's: a random word per operation, XORed in and out.

#[derive(Debug, Clone)]
pub struct Bitset {
    words: Vec<u64>,
    hash: u64,
}

/// Random words, one per operation, drawn from a fixed seed so runs are repeatable.
#[derive(Debug)]
pub struct Zobrist(Vec<u64>);

impl Zobrist {
    pub fn new(n: usize) -> Zobrist {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let keys = (0..n)
            .map(|_| {
                // splitmix64
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            })
            .collect();
        Zobrist(keys)
    }
}

impl Bitset {
    pub fn new(n: usize) -> Bitset {
        Bitset {
            words: vec![0; n.div_ceil(64)],
            hash: 0,
        }
    }

    pub fn words(&self) -> &[u64] {
        &self.words
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Adds `i`, which must be absent.
    pub fn insert(&mut self, i: usize, keys: &Zobrist) {
        debug_assert!(!self.contains(i));
        self.words[i / 64] |= 1 << (i % 64);
        self.hash ^= keys.0[i];
    }

    /// Removes `i`, which must be present.
    pub fn remove(&mut self, i: usize, keys: &Zobrist) {
        debug_assert!(self.contains(i));
        self.words[i / 64] &= !(1 << (i % 64));
        self.hash ^= keys.0[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_members_not_order() {
        let keys = Zobrist::new(130);
        let mut a = Bitset::new(130);
        let mut b = Bitset::new(130);
        a.insert(3, &keys);
        a.insert(129, &keys);
        b.insert(129, &keys);
        b.insert(3, &keys);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.words(), b.words());
        a.remove(3, &keys);
        assert!(!a.contains(3) && a.contains(129));
        assert_ne!(a.hash(), b.hash());
    }
}
