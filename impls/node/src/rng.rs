//! The generator a node's own randomness comes from (Raft's election timeouts,
//! gossip's choice of peers): seeded from `Context::seed`, so a run replays from its
//! seed. SplitMix64: one `u64` of state, the same stream on every platform, and a
//! dependency for it is not worth it.

#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; modulo bias is irrelevant at the sizes used).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `min..=max`; `min` when `max <= min`.
    pub fn range(&mut self, min: u64, max: u64) -> u64 {
        if max <= min {
            return min;
        }
        min + self.next_u64() % (max - min + 1)
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed replays only if the stream never changes: these are SplitMix64's
    /// published first outputs for seed 0, so a change to the generator (which would
    /// make every recorded seed replay another run) fails here.
    #[test]
    fn the_stream_is_splitmix64() {
        let mut rng = SplitMix::new(0);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ]
        );
    }

    #[test]
    fn range_and_below_stay_in_bounds() {
        let mut rng = SplitMix::new(7);
        for _ in 0..10_000 {
            let r = rng.range(150, 300);
            assert!((150..=300).contains(&r), "{r}");
            assert!(rng.below(3) < 3);
        }
        assert_eq!(rng.range(5, 5), 5);
        assert_eq!(rng.range(9, 2), 9);
    }
}
