//! Which reduce partition a key belongs to.

/// FNV-1a (32-bit) of the key, modulo the number of partitions, as 6.5840's `ihash`.
/// Only our own workers need to agree on it: the suite checks outputs, not partitions.
pub fn partition(key: &str, nreduce: usize) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x7fff_ffff) as usize % nreduce.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_in_range_and_spread() {
        let mut seen = [0usize; 10];
        for i in 0..1000 {
            seen[partition(&format!("w{i}"), 10)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(partition("anything", 1), 0);
    }
}
