//! CRC-32 (IEEE 802.3, the zlib polynomial) over log records and the checkpoint region.
//!
//! A torn record at the end of the log must be told apart from a whole one; a checksum
//! is the only way. Twenty lines do not justify a dependency.

/// Slicing-by-8 tables: `TABLES[0]` is the classic byte-at-a-time table, `TABLES[k]`
/// advances a byte's contribution by `k` more zero bytes, so eight bytes are folded in
/// with eight independent lookups instead of eight dependent ones. Every Write's record
/// (a whole block) goes through here before its sync, and the byte-at-a-time loop was
/// most of the server's CPU time per Write.
const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = tables();

/// Running CRC-32: feed pieces with [`Crc::update`], read it with [`Crc::finish`].
#[derive(Debug, Clone, Copy)]
pub struct Crc(u32);

impl Default for Crc {
    fn default() -> Self {
        Crc(0xFFFF_FFFF)
    }
}

impl Crc {
    pub fn update(&mut self, bytes: &[u8]) {
        let t = &TABLES;
        let mut c = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for w in &mut chunks {
            let lo = c ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            c = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][w[4] as usize]
                ^ t[2][w[5] as usize]
                ^ t[1][w[6] as usize]
                ^ t[0][w[7] as usize];
        }
        for &b in chunks.remainder() {
            c = t[0][((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    pub fn finish(self) -> u32 {
        !self.0
    }
}

pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc::default();
    crc.update(bytes);
    crc.finish()
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

    /// Eight bytes at a time gives the same CRC as the definition for every length (the
    /// tail shorter than eight included), every start alignment, and pieces fed in any
    /// split, so existing images still check.
    #[test]
    fn matches_the_bitwise_definition_for_any_length_alignment_and_split() {
        let data: Vec<u8> = (0..4400u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for start in 0..8 {
            for len in (0..80).chain([4096, 4264, 4391]) {
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
