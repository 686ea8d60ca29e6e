//! Lowe's memo: every (set of linearized operations, model state) the search has
//! reached. Reaching a pair again means everything after it was already explored.
//!
//! Sets are stored back to back in one vector and the table holds indices, so an
//! insertion allocates nothing per entry.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use crate::bitset::Bitset;

pub struct Cache<S> {
    table: HashTable<u32>,
    hashes: Vec<u64>,
    words: Vec<u64>,
    states: Vec<S>,
    stride: usize,
    hasher: hashbrown::DefaultHashBuilder,
}

impl<S: Hash + Eq + Clone> Cache<S> {
    pub fn new(stride: usize) -> Cache<S> {
        Cache {
            table: HashTable::new(),
            hashes: Vec::new(),
            words: Vec::new(),
            states: Vec::new(),
            stride,
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Adds the pair; false if it was there already.
    pub fn insert(&mut self, set: &Bitset, state: &S) -> bool {
        let hash = set.hash() ^ self.hasher.hash_one(state).rotate_left(17);
        let (words, states, stride) = (&self.words, &self.states, self.stride);
        let found = self
            .table
            .find(hash, |&i| {
                let i = i as usize;
                words[i * stride..(i + 1) * stride] == *set.words() && states[i] == *state
            })
            .is_some();
        if found {
            return false;
        }
        let index = self.states.len() as u32;
        self.words.extend_from_slice(set.words());
        self.states.push(state.clone());
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.table
            .insert_unique(hash, index, |&i| hashes[i as usize]);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitset::Zobrist;

    #[test]
    fn a_pair_is_new_once() {
        let keys = Zobrist::new(70);
        let mut cache = Cache::new(2);
        let mut set = Bitset::new(70);
        assert!(cache.insert(&set, &1));
        assert!(!cache.insert(&set, &1));
        assert!(cache.insert(&set, &2));
        set.insert(65, &keys);
        assert!(cache.insert(&set, &1));
        assert!(!cache.insert(&set, &1));
        assert_eq!(cache.len(), 3);
    }
}
