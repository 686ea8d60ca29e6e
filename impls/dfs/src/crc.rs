//! CRC-32 (IEEE 802.3, the zlib polynomial) over log records and the checkpoint region.
//!
//! A torn record at the end of the log must be told apart from a whole one; a checksum
//! is the only way. Every Write's record (a whole block) goes through here before its
//! sync, so the checksum is on the path of every reply: `crc32fast` folds 64 bytes a
//! step with the CPU's carry-less multiply (PCLMULQDQ) where there is one, about a
//! tenth of the instructions of a table-driven loop, and falls back to tables where
//! there is not. The values are the definition's (tests below), so images written by
//! earlier builds still check.

/// Running CRC-32: feed pieces with [`Crc::update`], read it with [`Crc::finish`].
#[derive(Debug, Clone, Default)]
pub struct Crc(crc32fast::Hasher);

impl Crc {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> u32 {
        self.0.finalize()
    }
}

pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::Crc;

    #[test]
    fn known_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }

    /// The definition, one bit at a time: what images on disk were written with.
    fn bitwise(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    /// The fast CRC gives the definition's value for every length (short tails and
    /// the 64-byte steps alike), every start alignment, and pieces fed in any split, so
    /// existing images still check.
    #[test]
    fn matches_the_bitwise_definition_for_any_length_alignment_and_split() {
        let data: Vec<u8> = (0..4400u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for start in 0..8 {
            for len in (0..200).chain([4096, 4264, 4391]) {
                let bytes = &data[start..start + len];
                assert_eq!(
                    super::crc32(bytes),
                    bitwise(bytes),
                    "start {start} len {len}"
                );
                for split in [0, 1, 3, 8, 13, len / 2, len] {
                    let split = split.min(len);
                    let mut crc = Crc::default();
                    crc.update(&bytes[..split]);
                    crc.update(&bytes[split..]);
                    assert_eq!(
                        crc.finish(),
                        bitwise(bytes),
                        "start {start} len {len} split {split}"
                    );
                }
            }
        }
    }
}
