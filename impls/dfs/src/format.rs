//! The on-disk image, byte by byte. All integers are little-endian; an "address" is a
//! byte offset from the start of the image file (a `u32`, so an image stops growing at
//! 4 GiB: a change that would pass it fails with -1).
//!
//! ```text
//! offset 0     checkpoint region (CR), 4096 bytes
//! offset 4096  log: record, record, record, ... (never overwritten, only appended)
//! ```
//!
//! **Checkpoint region** (the rest of its 4096 bytes are zero):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"MFSC"` |
//! | 4 | 4 | format version, 1 |
//! | 8 | 8 | end of the log: address just past the last record the CR covers |
//! | 16 | 8 | sequence number of that record |
//! | 24 | 4 | CRC-32 of bytes 0..1048 with this field taken as zero |
//! | 28 | 1024 | 256 addresses of inode-map pieces; piece `p` maps inodes `16p..16p+16`; 0 = no piece yet (all 16 free) |
//!
//! **Record**: one change (one Write, Creat or Unlink; the first record makes the root).
//! A 32-byte header, then data blocks, then inodes, then inode-map pieces:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"MFSR"` |
//! | 4 | 8 | sequence number: 1 for the first record, then +1 |
//! | 12 | 2 | `nblocks`: data blocks in the record |
//! | 14 | 2 | `ninodes` |
//! | 16 | 2 | `npieces` |
//! | 18 | 2 | `batch_index`: the record's place in the batch written (and synced) with it, 0 for the first |
//! | 20 | 4 | payload length: `nblocks*4096 + ninodes*68 + npieces*68` |
//! | 24 | 4 | CRC-32 of header and payload with this field taken as zero |
//! | 28 | 4 | zero |
//! | 32 | 4096 each | data blocks (file data, or 128 directory entries of 32 bytes) |
//! | .. | 68 each | inode: `inum: u32`, then the 64-byte inode |
//! | .. | 68 each | inode-map piece: `piece: u32`, then 16 inode addresses (`u32`, 0 = free) |
//!
//! **Inode** (64 bytes): `type: u32` (0 directory, 1 regular file), `size: u32`, 14
//! direct block addresses (`u32`, 0 = no block). An inode-map entry and a block pointer
//! point at the first byte of the 64-byte inode or 4096-byte block inside a record.
//!
//! **Directory entry** (32 bytes): a 28-byte name, NUL-padded (so at most 27 bytes), and
//! `inum: i32`, -1 for an unused entry (whose name bytes are zero).
//!
//! **Why the log is safe at any instant.** A change is a self-checking record appended
//! past the end; only then is the CR rewritten to cover it. A server's one `fdatasync`
//! per batch covers the records of the batch and the previous CR write, and the reply
//! goes out after it. On boot the CR is read and trusted (it only ever covers durable
//! records), then the log is rolled forward from its end over every whole record with
//! the next sequence number. What follows the last such record is the *tail*;
//! [`scan_log`] decides whether it may be cut (see there). A CR that fails its CRC (its
//! own write was torn) is replaced by an empty one, and the whole log is rolled forward
//! from its first record.

use crate::crc::Crc;
use crate::disk::Disk;
use specs::mfs::{BLOCK_SIZE, DIRECT_BLOCKS, MAX_INODES};

pub const CR_SIZE: usize = 4096;
pub const CR_MAGIC: [u8; 4] = *b"MFSC";
pub const RECORD_MAGIC: [u8; 4] = *b"MFSR";
pub const FORMAT_VERSION: u32 = 1;
pub const PIECE_ENTRIES: usize = 16;
pub const PIECES: usize = MAX_INODES as usize / PIECE_ENTRIES;
pub const CR_PIECES_AT: usize = 28;
pub const CR_CHECKED_LEN: usize = CR_PIECES_AT + 4 * PIECES;
pub const RECORD_HEADER: usize = 32;
pub const INODE_SIZE: usize = 64;
/// An inode or a piece in a record: a 4-byte number then its 64 bytes.
pub const ENTRY_SIZE: usize = 4 + INODE_SIZE;
pub const LOG_START: u64 = CR_SIZE as u64;

pub const KIND_DIRECTORY: u32 = 0;
pub const KIND_FILE: u32 = 1;

/// An inode as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inode {
    pub kind: u32,
    pub size: u32,
    pub blocks: [u32; DIRECT_BLOCKS],
}

impl Inode {
    pub fn encode(&self) -> [u8; INODE_SIZE] {
        let mut out = [0u8; INODE_SIZE];
        out[0..4].copy_from_slice(&self.kind.to_le_bytes());
        out[4..8].copy_from_slice(&self.size.to_le_bytes());
        for (i, b) in self.blocks.iter().enumerate() {
            out[8 + 4 * i..12 + 4 * i].copy_from_slice(&b.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Inode {
        let mut blocks = [0u32; DIRECT_BLOCKS];
        for (i, b) in blocks.iter_mut().enumerate() {
            *b = le32(&bytes[8 + 4 * i..]);
        }
        Inode {
            kind: le32(bytes),
            size: le32(&bytes[4..]),
            blocks,
        }
    }

    /// Blocks the inode's size spans.
    pub fn block_count(&self) -> usize {
        self.size as usize / BLOCK_SIZE
    }
}

pub fn le32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().unwrap())
}

pub fn le64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

/// The entries of the inode-map piece stored at the start of `bytes`.
pub fn decode_piece(bytes: &[u8]) -> [u32; PIECE_ENTRIES] {
    let mut entries = [0u32; PIECE_ENTRIES];
    for (i, e) in entries.iter_mut().enumerate() {
        *e = le32(&bytes[4 * i..]);
    }
    entries
}

/// The checkpoint region's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_end: u64,
    pub seq: u64,
    pub pieces: [u32; PIECES],
}

impl Checkpoint {
    /// The CR of an image whose CR is lost: it covers nothing, so boot rebuilds the
    /// whole state by rolling the log forward from its first record.
    pub fn empty() -> Checkpoint {
        Checkpoint {
            log_end: LOG_START,
            seq: 0,
            pieces: [0; PIECES],
        }
    }

    /// Whether `decode`'s error means a torn CR write (right magic and version, wrong
    /// CRC) rather than a file that is not an MFS image.
    pub fn is_torn(error: &str) -> bool {
        error.contains("CRC")
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; CR_SIZE];
        out[0..4].copy_from_slice(&CR_MAGIC);
        out[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[8..16].copy_from_slice(&self.log_end.to_le_bytes());
        out[16..24].copy_from_slice(&self.seq.to_le_bytes());
        for (i, p) in self.pieces.iter().enumerate() {
            let at = CR_PIECES_AT + 4 * i;
            out[at..at + 4].copy_from_slice(&p.to_le_bytes());
        }
        let crc = crate::crc::crc32(&out[..CR_CHECKED_LEN]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and checks a CR, saying what is wrong with a bad one.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
        if bytes.len() < CR_SIZE {
            return Err(format!(
                "image is {} bytes, shorter than its {CR_SIZE}-byte checkpoint region",
                bytes.len()
            ));
        }
        if bytes[0..4] != CR_MAGIC {
            return Err(format!(
                "checkpoint region: magic {:02x?} at offset 0 is not \"MFSC\" (not an MFS image?)",
                &bytes[0..4]
            ));
        }
        let version = le32(&bytes[4..]);
        if version != FORMAT_VERSION {
            return Err(format!(
                "checkpoint region: format version {version} at offset 4, expected {FORMAT_VERSION}"
            ));
        }
        let mut copy = bytes[..CR_CHECKED_LEN].to_vec();
        copy[24..28].fill(0);
        let want = le32(&bytes[24..]);
        let got = crate::crc::crc32(&copy);
        if want != got {
            return Err(format!(
                "checkpoint region: CRC {got:08x} does not match the stored {want:08x} (offset 24)"
            ));
        }
        let mut pieces = [0u32; PIECES];
        for (i, p) in pieces.iter_mut().enumerate() {
            *p = le32(&bytes[CR_PIECES_AT + 4 * i..]);
        }
        Ok(Checkpoint {
            log_end: le64(&bytes[8..]),
            seq: le64(&bytes[16..]),
            pieces,
        })
    }
}

/// A record's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub seq: u64,
    pub nblocks: u16,
    pub ninodes: u16,
    pub npieces: u16,
    pub batch_index: u16,
    pub payload_len: u32,
}

impl RecordHeader {
    pub fn expected_payload(&self) -> usize {
        self.nblocks as usize * BLOCK_SIZE
            + (self.ninodes as usize + self.npieces as usize) * ENTRY_SIZE
    }

    pub fn total_len(&self) -> u64 {
        RECORD_HEADER as u64 + u64::from(self.payload_len)
    }
}

/// A record being built: the caller adds blocks first (their addresses are known at
/// once), then inodes and pieces, and gets the bytes.
#[derive(Debug)]
pub struct RecordWriter {
    pub start: u64,
    blocks: Vec<Vec<u8>>,
    inodes: Vec<(u32, [u8; INODE_SIZE])>,
    pieces: Vec<(u32, [u32; PIECE_ENTRIES])>,
    nblocks_planned: usize,
}

impl RecordWriter {
    /// A record at `start` that will hold exactly `nblocks` blocks.
    pub fn new(start: u64, nblocks: usize) -> RecordWriter {
        RecordWriter {
            start,
            blocks: Vec::new(),
            inodes: Vec::new(),
            pieces: Vec::new(),
            nblocks_planned: nblocks,
        }
    }

    /// Address the `i`-th block of this record will have.
    pub fn block_addr(&self, i: usize) -> u64 {
        self.start + RECORD_HEADER as u64 + (i * BLOCK_SIZE) as u64
    }

    pub fn add_block(&mut self, block: &[u8]) -> u64 {
        assert!(
            self.blocks.len() < self.nblocks_planned,
            "more blocks than planned"
        );
        let addr = self.block_addr(self.blocks.len());
        self.blocks.push(block.to_vec());
        addr
    }

    /// Address the `j`-th inode of this record will have.
    pub fn inode_addr(&self, j: usize) -> u64 {
        self.block_addr(self.nblocks_planned) + (j * ENTRY_SIZE + 4) as u64
    }

    pub fn add_inode(&mut self, inum: u32, inode: &Inode) -> u64 {
        assert_eq!(self.blocks.len(), self.nblocks_planned, "blocks come first");
        let addr = self.inode_addr(self.inodes.len());
        self.inodes.push((inum, inode.encode()));
        addr
    }

    /// Address the `k`-th piece will have, once all inodes are added.
    pub fn piece_addr(&self, k: usize) -> u64 {
        self.block_addr(self.nblocks_planned)
            + (self.inodes.len() * ENTRY_SIZE + k * ENTRY_SIZE + 4) as u64
    }

    pub fn add_piece(&mut self, piece: u32, entries: [u32; PIECE_ENTRIES]) -> u64 {
        let addr = self.piece_addr(self.pieces.len());
        self.pieces.push((piece, entries));
        addr
    }

    /// Bytes the finished record will take.
    pub fn byte_len(&self) -> u64 {
        (RECORD_HEADER
            + self.nblocks_planned * BLOCK_SIZE
            + (self.inodes.len() + self.pieces.len()) * ENTRY_SIZE) as u64
    }

    /// The record's bytes, numbered `seq`, the `batch_index`-th of its batch.
    pub fn finish(self, seq: u64, batch_index: u16) -> Vec<u8> {
        assert_eq!(self.blocks.len(), self.nblocks_planned);
        let mut out = Vec::with_capacity(self.byte_len() as usize);
        out.extend_from_slice(&RECORD_MAGIC);
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(self.blocks.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.inodes.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.pieces.len() as u16).to_le_bytes());
        out.extend_from_slice(&batch_index.to_le_bytes());
        let payload = self.byte_len() as usize - RECORD_HEADER;
        out.extend_from_slice(&(payload as u32).to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        for b in &self.blocks {
            out.extend_from_slice(b);
        }
        for (inum, bytes) in &self.inodes {
            out.extend_from_slice(&inum.to_le_bytes());
            out.extend_from_slice(bytes);
        }
        for (piece, entries) in &self.pieces {
            out.extend_from_slice(&piece.to_le_bytes());
            for e in entries {
                out.extend_from_slice(&e.to_le_bytes());
            }
        }
        let mut crc = Crc::default();
        crc.update(&out);
        let crc = crc.finish();
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

/// A whole, checked record found in an image.
#[derive(Debug, Clone)]
pub struct Record {
    pub start: u64,
    pub header: RecordHeader,
    /// (inum, address of its 64-byte inode, inode)
    pub inodes: Vec<(u32, u64, Inode)>,
    /// (piece, address of its 64-byte body, entries)
    pub pieces: Vec<(u32, u64, [u32; PIECE_ENTRIES])>,
}

impl Record {
    pub fn end(&self) -> u64 {
        self.start + self.header.total_len()
    }

    pub fn block_addrs(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.header.nblocks as u64)
            .map(|i| self.start + RECORD_HEADER as u64 + i * BLOCK_SIZE as u64)
    }
}

/// Parses the record at the start of `bytes` (which sit at address `start`), or says
/// why there is no whole record there.
pub fn parse_record(start: u64, bytes: &[u8]) -> Result<Record, String> {
    if bytes.len() < RECORD_HEADER {
        return Err(format!(
            "{} bytes at {start}, too few for a record header",
            bytes.len()
        ));
    }
    if bytes[0..4] != RECORD_MAGIC {
        return Err(format!("no record magic at {start}"));
    }
    let header = RecordHeader {
        seq: le64(&bytes[4..]),
        nblocks: u16::from_le_bytes([bytes[12], bytes[13]]),
        ninodes: u16::from_le_bytes([bytes[14], bytes[15]]),
        npieces: u16::from_le_bytes([bytes[16], bytes[17]]),
        batch_index: u16::from_le_bytes([bytes[18], bytes[19]]),
        payload_len: le32(&bytes[20..]),
    };
    if header.payload_len as usize != header.expected_payload() {
        return Err(format!(
            "record at {start}: payload length {} does not match its counts ({})",
            header.payload_len,
            header.expected_payload()
        ));
    }
    let total = header.total_len() as usize;
    if bytes.len() < total {
        return Err(format!(
            "record at {start} needs {total} bytes, only {} remain (torn)",
            bytes.len()
        ));
    }
    let mut crc = Crc::default();
    crc.update(&bytes[..24]);
    crc.update(&[0; 4]);
    crc.update(&bytes[28..total]);
    let stored = le32(&bytes[24..]);
    if crc.finish() != stored {
        return Err(format!("record at {start}: CRC mismatch (torn or corrupt)"));
    }
    let mut at = RECORD_HEADER + header.nblocks as usize * BLOCK_SIZE;
    let mut inodes = Vec::new();
    for _ in 0..header.ninodes {
        let inum = le32(&bytes[at..]);
        inodes.push((
            inum,
            start + at as u64 + 4,
            Inode::decode(&bytes[at + 4..at + ENTRY_SIZE]),
        ));
        at += ENTRY_SIZE;
    }
    let mut pieces = Vec::new();
    for _ in 0..header.npieces {
        let piece = le32(&bytes[at..]);
        let entries = decode_piece(&bytes[at + 4..]);
        pieces.push((piece, start + at as u64 + 4, entries));
        at += ENTRY_SIZE;
    }
    Ok(Record {
        start,
        header,
        inodes,
        pieces,
    })
}

/// The log as boot and `mfsck` both see it: [`scan_log`]'s result.
#[derive(Debug, Clone)]
pub struct LogScan {
    /// Every whole record in sequence, from the first.
    pub records: Vec<Record>,
    /// Where the last of them ends: the image's valid length.
    pub end: u64,
    /// The sequence number of the last of them (0 if none).
    pub seq: u64,
    /// Bytes past `end` that boot cuts off, if any.
    pub tail: Option<Tail>,
}

/// Bytes after the last whole record that can only be the torn write of a batch that
/// was never synced, hence never acknowledged, or space the server wrote ahead of the
/// log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    pub start: u64,
    pub len: u64,
    /// Why the log ends at `start`.
    pub why: String,
    /// Every byte of the tail is zero: the space the server writes ahead of the log
    /// (so that a batch's sync need not record a new file size), or a torn write that
    /// left none of its bytes. Boot keeps it and writes the next records over it.
    pub zeroed: bool,
}

/// The one definition of a valid log, used by boot ([`crate::core::Fs::recover`]) and by
/// `mfsck`, so that the server boots exactly the images `mfsck` accepts.
///
/// Every record from the start of the log is parsed and its CRC checked. The log is the
/// longest run of whole records numbered 1, 2, 3, ... The image is **damaged** (an
/// `Err`), and nothing may be cut, when that run would lose a record that was
/// acknowledged:
///
/// - it stops before the end the checkpoint region names, or does not pass exactly
///   through it, or holds fewer records than the CR counts: the CR is only ever written
///   after the records it covers were synced, so those records were acknowledged;
/// - the bytes after it hold a whole record of a *later* batch: record `s` with
///   `batch_index` `i` was written in a batch starting at `s - i`, and a server writes a
///   batch only after the previous one was synced and answered; if `s - i` is past the
///   first missing record, the batch that held the missing record was synced, so the
///   missing record was acknowledged and is damaged, not torn.
///
/// Anything else after the run is a torn tail: bytes of the one batch whose write was
/// under way, never synced, never answered (and possibly some of its whole records, which
/// boot drops too, since the batch was not acknowledged). Boot cuts it off.
pub fn scan_log(disk: &(impl Disk + ?Sized), cr: &Checkpoint) -> Result<LogScan, String> {
    let len = disk
        .size()
        .map_err(|e| format!("cannot size the image: {e}"))?;
    let read = |addr: u64, n: u64| -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n as usize];
        disk.read_at(addr, &mut buf)
            .map_err(|e| format!("cannot read {n} bytes at {addr}: {e}"))?;
        Ok(buf)
    };
    let mut records = Vec::new();
    let mut pos = LOG_START;
    let mut seq = 0u64;
    let mut why = None;
    while pos < len {
        let header = read(pos, (RECORD_HEADER as u64).min(len - pos))?;
        let total = if header.len() == RECORD_HEADER {
            RECORD_HEADER as u64 + u64::from(le32(&header[20..]))
        } else {
            header.len() as u64
        };
        let bytes = if total <= len - pos && header.len() == RECORD_HEADER {
            read(pos, total)?
        } else {
            header
        };
        match parse_record(pos, &bytes) {
            Ok(rec) if rec.header.seq == seq + 1 => {
                if pos < cr.log_end && rec.end() > cr.log_end {
                    return Err(format!(
                        "checkpoint region: the log end {} it names falls inside the record at \
                         {pos} (which ends at {})",
                        cr.log_end,
                        rec.end()
                    ));
                }
                seq = rec.header.seq;
                pos = rec.end();
                records.push(rec);
            }
            Ok(rec) => {
                why = Some(format!(
                    "record at {pos} has sequence number {}, expected {}",
                    rec.header.seq,
                    seq + 1
                ));
                break;
            }
            Err(e) => {
                why = Some(e);
                break;
            }
        }
    }
    let why = why.unwrap_or_default();
    if pos < cr.log_end {
        return Err(format!(
            "the checkpoint region covers the log up to byte {} but its records stop at {pos} \
             ({why}): records the checkpoint covers were synced and acknowledged, and are damaged",
            cr.log_end
        ));
    }
    if seq < cr.seq {
        return Err(format!(
            "checkpoint region says record {} is the last it covers, but the log has only {seq}",
            cr.seq
        ));
    }
    let tail = if pos < len {
        let bytes = read(pos, len - pos)?;
        let missing = seq + 1;
        let mut at = 0;
        while let Some(off) = find(&bytes[at..], &RECORD_MAGIC) {
            let q = at + off;
            if let Ok(rec) = parse_record(pos + q as u64, &bytes[q..]) {
                let batch_start = rec
                    .header
                    .seq
                    .saturating_sub(u64::from(rec.header.batch_index));
                if rec.header.seq >= missing && batch_start > missing {
                    return Err(format!(
                        "the log stops at byte {pos} ({why}), but a whole record {} (batch \
                         index {}) follows at {}: its batch began at record {batch_start}, after \
                         the batch holding record {missing} had been synced and acknowledged, so \
                         record {missing} is damaged, not torn; cutting the log here would lose \
                         acknowledged changes",
                        rec.header.seq,
                        rec.header.batch_index,
                        pos + q as u64
                    ));
                }
            }
            at = q + 1;
        }
        Some(Tail {
            start: pos,
            len: len - pos,
            why,
            zeroed: bytes.iter().all(|&b| b == 0),
        })
    } else {
        None
    };
    Ok(LogScan {
        records,
        end: pos,
        seq,
        tail,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_detects_damage() {
        let mut pieces = [0u32; PIECES];
        pieces[3] = 9000;
        let cr = Checkpoint {
            log_end: 123_456,
            seq: 77,
            pieces,
        };
        let mut bytes = cr.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), cr);
        bytes[CR_PIECES_AT + 12] ^= 1;
        let err = Checkpoint::decode(&bytes).unwrap_err();
        assert!(err.contains("CRC"), "{err}");
    }

    #[test]
    fn record_round_trips_and_torn_records_are_refused() {
        let mut w = RecordWriter::new(LOG_START, 1);
        let baddr = w.add_block(&[5u8; BLOCK_SIZE]);
        let mut inode = Inode {
            kind: KIND_FILE,
            size: 4096,
            blocks: [0; DIRECT_BLOCKS],
        };
        inode.blocks[0] = baddr as u32;
        let iaddr = w.add_inode(1, &inode);
        let mut entries = [0u32; PIECE_ENTRIES];
        entries[1] = iaddr as u32;
        let paddr = w.add_piece(0, entries);
        let bytes = w.finish(1, 0);
        let rec = parse_record(LOG_START, &bytes).unwrap();
        assert_eq!(rec.inodes, vec![(1, iaddr, inode)]);
        assert_eq!(rec.pieces, vec![(0, paddr, entries)]);
        assert_eq!(rec.end(), LOG_START + bytes.len() as u64);
        let at = (iaddr - LOG_START) as usize;
        assert_eq!(Inode::decode(&bytes[at..at + INODE_SIZE]), inode);
        for cut in [0, 10, 40, bytes.len() - 1] {
            assert!(parse_record(LOG_START, &bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[100] ^= 0x80;
        assert!(parse_record(LOG_START, &flipped).is_err());
    }
}
