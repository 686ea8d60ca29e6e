//! Lowe's memo, with dominance: the configurations the search has explored and found
//! to lead nowhere.
//!
//! A configuration is (the operations with a known outcome linearized so far `K`, the
//! operations with an unknown outcome applied so far `U`, the model state). Two with
//! the same `K` and state differ only in `U`, and the one with fewer unknown
//! operations applied can do everything the other can: an unknown operation not yet
//! applied may still be applied later, or never. So a configuration is dead if one
//! with the same `K` and state and a subset of its `U` is dead. With no unknown
//! operations this is Lowe's exact-match memo.
//!
//! Failures are recorded when the search backs out of a configuration, which is when
//! it knows the configuration is dead (an ancestor still being explored must not
//! prune its descendants). Most lookups are hits, so they must touch little memory:
//! the table holds the full hash beside each group's index, and sets are stored back
//! to back in flat vectors, so recording allocates nothing per entry.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use crate::bitset::Bitset;

const NONE: u32 = u32::MAX;

pub struct Cache<S> {
    /// (hash of K and state, group index)
    table: HashTable<(u64, u32)>,
    /// Per group: its state, and the head of its list of dead `U` sets.
    states: Vec<S>,
    heads: Vec<u32>,
    /// Per group, `known_stride` words: its `K`.
    known: Vec<u64>,
    known_stride: usize,
    /// Per dead `U`: `unknown_stride` words, and the next `U` of the same group.
    unknown: Vec<u64>,
    next: Vec<u32>,
    unknown_stride: usize,
    hasher: hashbrown::DefaultHashBuilder,
}

impl<S: Hash + Eq + Clone> Cache<S> {
    pub fn new(known_stride: usize, unknown_stride: usize) -> Cache<S> {
        Cache {
            table: HashTable::new(),
            states: Vec::new(),
            heads: Vec::new(),
            known: Vec::new(),
            known_stride,
            unknown: Vec::new(),
            next: Vec::new(),
            unknown_stride,
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    /// How many dead configurations are recorded.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        if self.unknown_stride == 0 {
            self.states.len()
        } else {
            self.next.len()
        }
    }

    /// The key under which a configuration is filed; pass it back to the other calls.
    pub fn hash(&self, known: &Bitset, state: &S) -> u64 {
        known.hash() ^ self.hasher.hash_one(state).rotate_left(17)
    }

    fn group(&self, hash: u64, known: &Bitset, state: &S) -> Option<u32> {
        let (words, stride, states) = (&self.known, self.known_stride, &self.states);
        self.table
            .find(hash, |&(h, g)| {
                let g = g as usize;
                h == hash
                    && words[g * stride..(g + 1) * stride] == *known.words()
                    && states[g] == *state
            })
            .map(|&(_, g)| g)
    }

    /// Whether a configuration with this `K` and state and a subset of `unknown` is
    /// dead; `hash` is [`Cache::hash`] of `known` and `state`.
    pub fn is_dead(&self, hash: u64, known: &Bitset, unknown: &Bitset, state: &S) -> bool {
        let Some(group) = self.group(hash, known, state) else {
            return false;
        };
        let stride = self.unknown_stride;
        if stride == 0 {
            // No unknown operations: a group exists only for a dead configuration.
            return true;
        }
        let mine = unknown.words();
        let mut at = self.heads[group as usize];
        while at != NONE {
            let dead = &self.unknown[at as usize * stride..(at as usize + 1) * stride];
            if dead.iter().zip(mine).all(|(d, m)| d & !m == 0) {
                return true;
            }
            at = self.next[at as usize];
        }
        false
    }

    /// Records a configuration as dead; `hash` is [`Cache::hash`] of `known` and `state`.
    pub fn record_dead(&mut self, hash: u64, known: &Bitset, unknown: &Bitset, state: &S) {
        let group = match self.group(hash, known, state) {
            Some(_) if self.unknown_stride == 0 => return,
            Some(g) => g,
            None => {
                let g = self.states.len() as u32;
                self.states.push(state.clone());
                self.heads.push(NONE);
                self.known.extend_from_slice(known.words());
                self.table.insert_unique(hash, (hash, g), |&(h, _)| h);
                if self.unknown_stride == 0 {
                    return;
                }
                g
            }
        };
        let entry = self.next.len() as u32;
        self.unknown.extend_from_slice(unknown.words());
        self.next.push(self.heads[group as usize]);
        self.heads[group as usize] = entry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitset::Zobrist;

    #[test]
    fn exact_match_without_unknown_operations() {
        let keys = Zobrist::new(70);
        let mut cache = Cache::new(2, 0);
        let mut known = Bitset::new(70);
        let none = Bitset::new(0);
        let h = |c: &Cache<i32>, k: &Bitset, s: i32| c.hash(k, &s);
        assert!(!cache.is_dead(h(&cache, &known, 1), &known, &none, &1));
        cache.record_dead(h(&cache, &known, 1), &known, &none, &1);
        cache.record_dead(h(&cache, &known, 1), &known, &none, &1);
        assert!(cache.is_dead(h(&cache, &known, 1), &known, &none, &1));
        assert!(!cache.is_dead(h(&cache, &known, 2), &known, &none, &2));
        known.insert(65, &keys);
        assert!(!cache.is_dead(h(&cache, &known, 1), &known, &none, &1));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn fewer_unknown_operations_dominate() {
        let keys = Zobrist::new(4);
        let known = Bitset::new(4);
        let mut applied = Bitset::new(4);
        applied.insert(1, &keys);
        let mut cache = Cache::new(1, 1);
        let (hs, ht) = (cache.hash(&known, &"s"), cache.hash(&known, &"t"));
        cache.record_dead(hs, &known, &applied, &"s");
        // Same K and state, more unknown operations applied: dead too.
        let mut more = applied.clone();
        more.insert(3, &keys);
        assert!(cache.is_dead(hs, &known, &more, &"s"));
        // Fewer applied: may still live.
        assert!(!cache.is_dead(hs, &known, &Bitset::new(4), &"s"));
        assert!(!cache.is_dead(ht, &known, &more, &"t"));
    }
}
