//! The file system core: MFS requests over the log-structured image, without I/O of its
//! own beyond reading blocks through [`Disk`].
//!
//! Every change becomes one record (see [`crate::format`]) appended to `pending`; the
//! runtime takes the pending bytes, writes and syncs them, and only then stores
//! [`Fs::checkpoint`]. Until the bytes are on disk their blocks are served from
//! `cache`, so a batch of requests can build on each other before one fsync.

use std::collections::{BTreeSet, HashMap};
use std::io;

use specs::mfs::spec::valid_name;
use specs::mfs::wire::{zero_block, Block, Reply, Request};
use specs::mfs::{
    BLOCK_SIZE, DIRECT_BLOCKS, DIRENTS_PER_BLOCK, DIRENT_SIZE, MAX_INODES, NAME_FIELD,
    TYPE_DIRECTORY, TYPE_REGULAR_FILE,
};

use crate::disk::Disk;
use crate::format::{
    scan_log, Checkpoint, Inode, RecordWriter, CR_SIZE, INODE_SIZE, KIND_DIRECTORY, KIND_FILE,
    LOG_START, PIECES, PIECE_ENTRIES, RECORD_HEADER,
};

/// What boot found beyond the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Whole records past the checkpoint that were rolled forward.
    pub rolled_forward: u64,
    /// Where the log really ends: the next record goes here.
    pub log_end: u64,
    /// Bytes after the last whole record that are not all zero (a torn write), to be
    /// cut off.
    pub torn_bytes: u64,
    /// Zeros after the last whole record: space written ahead of the log, kept.
    pub written_ahead: u64,
}

#[derive(Debug)]
pub struct Fs {
    imap: Vec<u32>,
    inodes: Vec<Option<Inode>>,
    pieces: [u32; PIECES],
    end: u64,
    seq: u64,
    pending_start: u64,
    pending: Vec<u8>,
    /// Records in `pending`: the next one's `batch_index`.
    pending_records: u16,
    cache: HashMap<u64, Block>,
}

/// A directory entry's name and inode number, `None` if unused.
fn entry(block: &[u8], slot: usize) -> Option<(&[u8], i32)> {
    let e = &block[slot * DIRENT_SIZE..(slot + 1) * DIRENT_SIZE];
    let inum = i32::from_le_bytes(e[NAME_FIELD..].try_into().unwrap());
    if inum < 0 {
        return None;
    }
    let len = e[..NAME_FIELD]
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(NAME_FIELD);
    Some((&e[..len], inum))
}

fn set_entry(block: &mut [u8], slot: usize, value: Option<(&[u8], i32)>) {
    let e = &mut block[slot * DIRENT_SIZE..(slot + 1) * DIRENT_SIZE];
    e.fill(0);
    let inum = match value {
        Some((name, inum)) => {
            e[..name.len()].copy_from_slice(name);
            inum
        }
        None => -1,
    };
    e[NAME_FIELD..].copy_from_slice(&inum.to_le_bytes());
}

fn empty_dir_block() -> Block {
    let mut b = zero_block();
    for slot in 0..DIRENTS_PER_BLOCK {
        set_entry(&mut b[..], slot, None);
    }
    b
}

fn new_dir_block(inum: i32, parent: i32) -> Block {
    let mut b = empty_dir_block();
    set_entry(&mut b[..], 0, Some((b".", inum)));
    set_entry(&mut b[..], 1, Some((b"..", parent)));
    b
}

/// One change being assembled: blocks, then the inodes it rewrites or frees.
struct Change {
    blocks: Vec<Block>,
    /// Inode `inum` becomes `Some(inode)` or free; block pointers that name
    /// [`Change::block_ref`] values are resolved to addresses when written.
    inodes: Vec<(u32, Option<Inode>)>,
}

/// Block pointer placeholder: the `i`-th block of the change, before addresses exist.
/// Real addresses are >= 4096, so values below that cannot be mistaken for them.
const fn block_ref(i: usize) -> u32 {
    i as u32 + 1
}

impl Fs {
    /// A new file system: the root directory, as the first (pending) record.
    pub fn fresh() -> Fs {
        let mut fs = Fs {
            imap: vec![0; MAX_INODES as usize],
            inodes: vec![None; MAX_INODES as usize],
            pieces: [0; PIECES],
            end: LOG_START,
            seq: 0,
            pending_start: LOG_START,
            pending: Vec::new(),
            pending_records: 0,
            cache: HashMap::new(),
        };
        let mut root = Inode {
            kind: KIND_DIRECTORY,
            size: BLOCK_SIZE as u32,
            blocks: [0; DIRECT_BLOCKS],
        };
        root.blocks[0] = block_ref(0);
        let reply = fs.commit(Change {
            blocks: vec![new_dir_block(0, 0)],
            inodes: vec![(0, Some(root))],
        });
        assert_eq!(reply, Reply::Ok(0), "an empty image has room for the root");
        fs
    }

    /// Boots from an image: trusts the checkpoint region, loads the inode map and the
    /// inodes, and rolls the log forward over whole records past the checkpoint. Every
    /// record is read and checked by [`scan_log`], which refuses an image whose tail
    /// could hold an acknowledged record; `Recovery` says what may be cut.
    pub fn recover(disk: &(impl Disk + ?Sized)) -> Result<(Fs, Recovery), String> {
        let len = disk
            .size()
            .map_err(|e| format!("cannot size the image: {e}"))?;
        let read = |addr: u64, n: usize, what: &str| -> Result<Vec<u8>, String> {
            let mut buf = vec![0u8; n];
            disk.read_at(addr, &mut buf)
                .map_err(|e| format!("cannot read {what} ({n} bytes at {addr}): {e}"))?;
            Ok(buf)
        };
        if len < CR_SIZE as u64 {
            return Err(format!(
                "image is {len} bytes, shorter than its {CR_SIZE}-byte checkpoint region"
            ));
        }
        let cr = match Checkpoint::decode(&read(0, CR_SIZE, "the checkpoint region")?) {
            Ok(cr) => cr,
            // A torn CR write: the log still holds every change, so rebuild from it.
            Err(e) if Checkpoint::is_torn(&e) => {
                eprintln!("mfs-server: {e}; rebuilding the state from the whole log");
                Checkpoint::empty()
            }
            Err(e) => return Err(e),
        };
        if cr.log_end < LOG_START || cr.log_end > len {
            return Err(format!(
                "checkpoint region says the log ends at byte {} but the image has {len} bytes: \
                 the checkpoint was written before the log it points to",
                cr.log_end
            ));
        }
        let in_log = |addr: u32, n: usize| {
            u64::from(addr) >= LOG_START + RECORD_HEADER as u64
                && u64::from(addr) + n as u64 <= cr.log_end
        };
        let mut fs = Fs {
            imap: vec![0; MAX_INODES as usize],
            inodes: vec![None; MAX_INODES as usize],
            pieces: cr.pieces,
            end: cr.log_end,
            seq: cr.seq,
            pending_start: cr.log_end,
            pending: Vec::new(),
            pending_records: 0,
            cache: HashMap::new(),
        };
        for (p, &addr) in cr.pieces.iter().enumerate() {
            if addr == 0 {
                continue;
            }
            if !in_log(addr, 4 * PIECE_ENTRIES) {
                return Err(format!(
                    "checkpoint region: inode-map piece {p} at {addr} lies outside the log \
                     (4096..{})",
                    cr.log_end
                ));
            }
            let bytes = read(u64::from(addr), 4 * PIECE_ENTRIES, "an inode-map piece")?;
            fs.imap[p * PIECE_ENTRIES..(p + 1) * PIECE_ENTRIES]
                .copy_from_slice(&crate::format::decode_piece(&bytes));
        }
        let mut touched: BTreeSet<usize> = (0..PIECES).collect();
        // Roll forward: every whole record past the checkpoint is part of the file
        // system even if the checkpoint was not rewritten before a crash. Which bytes
        // may be cut is `scan_log`'s decision, the same one mfsck makes.
        let scan = scan_log(disk, &cr)?;
        let mut rolled = 0;
        for record in scan.records.iter().filter(|r| r.start >= cr.log_end) {
            for (p, addr, entries) in &record.pieces {
                let p = *p as usize;
                if p >= PIECES {
                    return Err(format!(
                        "record at {} names inode-map piece {p}",
                        record.start
                    ));
                }
                fs.pieces[p] = *addr as u32;
                fs.imap[p * PIECE_ENTRIES..(p + 1) * PIECE_ENTRIES].copy_from_slice(entries);
                touched.insert(p);
            }
            rolled += 1;
        }
        fs.seq = scan.seq;
        let (torn_bytes, written_ahead) = match &scan.tail {
            Some(tail) if tail.zeroed => (0, tail.len),
            Some(tail) => (tail.len, 0),
            None => (0, 0),
        };
        let pos = scan.end;
        fs.end = pos;
        fs.pending_start = pos;
        let log_end = pos;
        for p in touched {
            for inum in p * PIECE_ENTRIES..(p + 1) * PIECE_ENTRIES {
                let addr = fs.imap[inum];
                if addr == 0 {
                    fs.inodes[inum] = None;
                    continue;
                }
                if u64::from(addr) < LOG_START || u64::from(addr) + INODE_SIZE as u64 > log_end {
                    return Err(format!(
                        "inode map: inode {inum} at {addr} lies outside the log (4096..{log_end})"
                    ));
                }
                let inode = Inode::decode(&read(u64::from(addr), INODE_SIZE, "an inode")?);
                if inode.kind != KIND_DIRECTORY && inode.kind != KIND_FILE {
                    return Err(format!(
                        "inode {inum} at {addr} has type {}, neither 0 nor 1",
                        inode.kind
                    ));
                }
                fs.inodes[inum] = Some(inode);
            }
        }
        if !matches!(fs.inodes[0], Some(i) if i.kind == KIND_DIRECTORY) {
            return Err("inode 0 (the root) is not a directory".into());
        }
        Ok((
            fs,
            Recovery {
                rolled_forward: rolled,
                log_end,
                torn_bytes,
                written_ahead,
            },
        ))
    }

    /// The checkpoint region describing every record made so far, written or not.
    pub fn checkpoint(&self) -> Vec<u8> {
        Checkpoint {
            log_end: self.end,
            seq: self.seq,
            pieces: self.pieces,
        }
        .encode()
    }

    /// Records made since the last call, and the address they go at.
    pub fn take_pending(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.pending.is_empty() {
            return None;
        }
        let start = self.pending_start;
        self.pending_start = self.end;
        self.pending_records = 0;
        self.cache.clear();
        Some((start, std::mem::take(&mut self.pending)))
    }

    fn inode(&self, inum: i32) -> Option<Inode> {
        if (0..MAX_INODES).contains(&inum) {
            self.inodes[inum as usize]
        } else {
            None
        }
    }

    fn block(&self, disk: &impl Disk, addr: u32) -> io::Result<Block> {
        if let Some(b) = self.cache.get(&u64::from(addr)) {
            return Ok(b.clone());
        }
        let mut b = zero_block();
        disk.read_at(u64::from(addr), &mut b[..])?;
        Ok(b)
    }

    /// Finds `name` in directory `dir`: (block index, slot, inum).
    fn find(
        &self,
        disk: &impl Disk,
        dir: &Inode,
        name: &[u8],
    ) -> io::Result<Option<(usize, usize, i32)>> {
        for b in 0..dir.block_count() {
            let block = self.block(disk, dir.blocks[b])?;
            for slot in 0..DIRENTS_PER_BLOCK {
                if let Some((n, inum)) = entry(&block[..], slot) {
                    if n == name {
                        return Ok(Some((b, slot, inum)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Applies a request. An I/O error reading the image fails the request.
    pub fn apply(&mut self, disk: &impl Disk, request: &Request) -> Reply {
        match self.try_apply(disk, request) {
            Ok(reply) => reply,
            Err(e) => {
                eprintln!("mfs-server: {request:?} failed reading the image: {e}");
                Reply::Failed
            }
        }
    }

    fn try_apply(&mut self, disk: &impl Disk, request: &Request) -> io::Result<Reply> {
        Ok(match request {
            Request::Lookup { pinum, name } => match self.inode(*pinum) {
                Some(dir) if dir.kind == KIND_DIRECTORY && valid_name(name) => {
                    match self.find(disk, &dir, name)? {
                        Some((_, _, inum)) => Reply::Ok(inum),
                        None => Reply::Failed,
                    }
                }
                _ => Reply::Failed,
            },
            Request::Stat { inum } => match self.inode(*inum) {
                Some(i) => Reply::Stat {
                    kind: if i.kind == KIND_DIRECTORY {
                        TYPE_DIRECTORY
                    } else {
                        TYPE_REGULAR_FILE
                    },
                    size: i.size as i32,
                },
                None => Reply::Failed,
            },
            Request::Read { inum, block } => match self.inode(*inum) {
                Some(i) if *block >= 0 && (*block as usize) < i.block_count() => {
                    match i.blocks[*block as usize] {
                        0 => Reply::Data(zero_block()),
                        addr => Reply::Data(self.block(disk, addr)?),
                    }
                }
                _ => Reply::Failed,
            },
            Request::Write { inum, block, data } => match self.inode(*inum) {
                Some(mut i) if i.kind == KIND_FILE && (0..DIRECT_BLOCKS as i32).contains(block) => {
                    let b = *block as usize;
                    i.blocks[b] = block_ref(0);
                    i.size = i.size.max(((b + 1) * BLOCK_SIZE) as u32);
                    self.commit(Change {
                        blocks: vec![data.clone()],
                        inodes: vec![(*inum as u32, Some(i))],
                    })
                }
                _ => Reply::Failed,
            },
            Request::Creat { pinum, kind, name } => self.creat(disk, *pinum, *kind, name)?,
            Request::Unlink { pinum, name } => self.unlink(disk, *pinum, name)?,
            Request::Shutdown => Reply::Ok(0),
        })
    }

    fn creat(&mut self, disk: &impl Disk, pinum: i32, kind: i32, name: &[u8]) -> io::Result<Reply> {
        let Some(mut parent) = self.inode(pinum).filter(|i| i.kind == KIND_DIRECTORY) else {
            return Ok(Reply::Failed);
        };
        if !valid_name(name) {
            return Ok(Reply::Failed);
        }
        if self.find(disk, &parent, name)?.is_some() {
            return Ok(Reply::Ok(0));
        }
        if kind != TYPE_DIRECTORY && kind != TYPE_REGULAR_FILE {
            return Ok(Reply::Failed);
        }
        let Some(inum) = self.inodes.iter().position(Option::is_none) else {
            return Ok(Reply::Failed);
        };
        let inum = inum as i32;
        let mut free = None;
        'blocks: for b in 0..parent.block_count() {
            let block = self.block(disk, parent.blocks[b])?;
            for slot in 0..DIRENTS_PER_BLOCK {
                if entry(&block[..], slot).is_none() {
                    free = Some((b, slot, block));
                    break 'blocks;
                }
            }
        }
        let (b, slot, mut block) = match free {
            Some(f) => f,
            None if parent.block_count() < DIRECT_BLOCKS => {
                parent.size += BLOCK_SIZE as u32;
                (parent.block_count() - 1, 0, empty_dir_block())
            }
            None => return Ok(Reply::Failed),
        };
        set_entry(&mut block[..], slot, Some((name, inum)));
        parent.blocks[b] = block_ref(0);
        let mut blocks = vec![block];
        let child = if kind == TYPE_DIRECTORY {
            blocks.push(new_dir_block(inum, pinum));
            let mut blocks = [0; DIRECT_BLOCKS];
            blocks[0] = block_ref(1);
            Inode {
                kind: KIND_DIRECTORY,
                size: BLOCK_SIZE as u32,
                blocks,
            }
        } else {
            Inode {
                kind: KIND_FILE,
                size: 0,
                blocks: [0; DIRECT_BLOCKS],
            }
        };
        Ok(self.commit(Change {
            blocks,
            inodes: vec![(pinum as u32, Some(parent)), (inum as u32, Some(child))],
        }))
    }

    fn unlink(&mut self, disk: &impl Disk, pinum: i32, name: &[u8]) -> io::Result<Reply> {
        let Some(mut parent) = self.inode(pinum).filter(|i| i.kind == KIND_DIRECTORY) else {
            return Ok(Reply::Failed);
        };
        if !valid_name(name) || name == b"." || name == b".." {
            return Ok(Reply::Failed);
        }
        let Some((b, slot, inum)) = self.find(disk, &parent, name)? else {
            return Ok(Reply::Ok(0));
        };
        if let Some(child) = self.inode(inum).filter(|i| i.kind == KIND_DIRECTORY) {
            for cb in 0..child.block_count() {
                let block = self.block(disk, child.blocks[cb])?;
                let first = if cb == 0 { 2 } else { 0 };
                if (first..DIRENTS_PER_BLOCK).any(|s| entry(&block[..], s).is_some()) {
                    return Ok(Reply::Failed);
                }
            }
        }
        let mut block = self.block(disk, parent.blocks[b])?;
        set_entry(&mut block[..], slot, None);
        parent.blocks[b] = block_ref(0);
        Ok(self.commit(Change {
            blocks: vec![block],
            inodes: vec![(pinum as u32, Some(parent)), (inum as u32, None)],
        }))
    }

    /// Turns a change into a pending record and makes it the current state.
    fn commit(&mut self, change: Change) -> Reply {
        let mut w = RecordWriter::new(self.end, change.blocks.len());
        let addrs: Vec<u32> = change
            .blocks
            .iter()
            .map(|b| w.add_block(&b[..]) as u32)
            .collect();
        let mut imap_updates = Vec::new();
        let mut new_inodes = Vec::new();
        for (inum, inode) in &change.inodes {
            match inode {
                Some(inode) => {
                    let mut inode = *inode;
                    for ptr in inode.blocks.iter_mut() {
                        if *ptr != 0 && (*ptr as u64) < LOG_START {
                            *ptr = addrs[*ptr as usize - 1];
                        }
                    }
                    let addr = w.add_inode(*inum, &inode);
                    imap_updates.push((*inum as usize, addr as u32));
                    new_inodes.push((*inum as usize, Some(inode)));
                }
                None => {
                    imap_updates.push((*inum as usize, 0));
                    new_inodes.push((*inum as usize, None));
                }
            }
        }
        let touched: BTreeSet<usize> = imap_updates
            .iter()
            .map(|(i, _)| i / PIECE_ENTRIES)
            .collect();
        let mut piece_addrs = Vec::new();
        for p in touched {
            let mut entries = [0u32; PIECE_ENTRIES];
            entries.copy_from_slice(&self.imap[p * PIECE_ENTRIES..(p + 1) * PIECE_ENTRIES]);
            for (inum, addr) in &imap_updates {
                if inum / PIECE_ENTRIES == p {
                    entries[inum % PIECE_ENTRIES] = *addr;
                }
            }
            piece_addrs.push((p, w.add_piece(p as u32, entries) as u32));
        }
        if self.end + w.byte_len() > u64::from(u32::MAX) {
            return Reply::Failed;
        }
        let bytes = w.finish(self.seq + 1, self.pending_records);
        self.pending_records += 1;
        for (i, addr) in addrs.iter().enumerate() {
            let mut b = zero_block();
            let at = RECORD_HEADER + i * BLOCK_SIZE;
            b.copy_from_slice(&bytes[at..at + BLOCK_SIZE]);
            self.cache.insert(u64::from(*addr), b);
        }
        for (inum, addr) in imap_updates {
            self.imap[inum] = addr;
        }
        for (inum, inode) in new_inodes {
            self.inodes[inum] = inode;
        }
        for (p, addr) in piece_addrs {
            self.pieces[p] = addr;
        }
        self.end += bytes.len() as u64;
        self.seq += 1;
        self.pending.extend_from_slice(&bytes);
        Reply::Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use specs::mfs::FsSpec;

    /// An image in memory: what the server would have on disk after each batch.
    fn flush(fs: &mut Fs, image: &mut Vec<u8>) {
        if let Some((start, bytes)) = fs.take_pending() {
            assert_eq!(start as usize, image.len());
            image.extend_from_slice(&bytes);
        }
        let cr = fs.checkpoint();
        image[..CR_SIZE].copy_from_slice(&cr);
    }

    fn new_image() -> (Fs, Vec<u8>) {
        let mut fs = Fs::fresh();
        let mut image = vec![0u8; CR_SIZE];
        flush(&mut fs, &mut image);
        (fs, image)
    }

    fn script() -> Vec<Request> {
        let name = |s: &str| s.as_bytes().to_vec();
        let mut data = zero_block();
        data[10] = 42;
        vec![
            Request::Creat {
                pinum: 0,
                kind: 0,
                name: name("d"),
            },
            Request::Creat {
                pinum: 1,
                kind: 1,
                name: name("f"),
            },
            Request::Write {
                inum: 2,
                block: 5,
                data: data.clone(),
            },
            Request::Read { inum: 2, block: 5 },
            Request::Read { inum: 2, block: 0 },
            Request::Read { inum: 2, block: 6 },
            Request::Stat { inum: 2 },
            Request::Unlink {
                pinum: 0,
                name: name("d"),
            },
            Request::Lookup {
                pinum: 1,
                name: name("f"),
            },
            Request::Write {
                inum: 1,
                block: 0,
                data,
            },
            Request::Unlink {
                pinum: 1,
                name: name("f"),
            },
            Request::Unlink {
                pinum: 0,
                name: name("d"),
            },
            Request::Stat { inum: 1 },
            Request::Creat {
                pinum: 0,
                kind: 1,
                name: name("again"),
            },
            Request::Lookup {
                pinum: 0,
                name: name("again"),
            },
            Request::Read { inum: 0, block: 0 },
        ]
    }

    #[test]
    fn core_agrees_with_the_spec_request_by_request() {
        let (mut fs, mut image) = new_image();
        let mut spec = FsSpec::new();
        for (i, r) in script().iter().enumerate() {
            assert_eq!(fs.apply(&image, r), spec.apply(r), "request {i}: {r:?}");
            if i % 3 == 0 {
                flush(&mut fs, &mut image);
            }
        }
    }

    #[test]
    fn recovery_rolls_forward_past_a_stale_checkpoint_and_cuts_a_torn_tail() {
        let (mut fs, mut image) = new_image();
        let stale_cr = image[..CR_SIZE].to_vec();
        let mut spec = FsSpec::new();
        for r in script() {
            fs.apply(&image, &r);
            spec.apply(&r);
        }
        flush(&mut fs, &mut image);
        // The checkpoint write of the batch never happened, and half a record follows.
        image[..CR_SIZE].copy_from_slice(&stale_cr);
        let whole = image.len() as u64;
        image.extend_from_slice(&[b'M', b'F', b'S', b'R', 9, 9, 9]);
        let (mut back, rec) = Fs::recover(&image).unwrap();
        assert_eq!(rec.log_end, whole);
        assert_eq!(rec.torn_bytes, 7);
        assert!(rec.rolled_forward > 5);
        for inum in 0..4 {
            for block in 0..2 {
                let r = Request::Read { inum, block };
                assert_eq!(back.apply(&image, &r), spec.apply(&r), "{r:?}");
            }
            let r = Request::Stat { inum };
            assert_eq!(back.apply(&image, &r), spec.apply(&r), "{r:?}");
        }
    }

    #[test]
    fn a_torn_checkpoint_is_rebuilt_from_the_log() {
        let (mut fs, mut image) = new_image();
        let mut spec = FsSpec::new();
        for r in script() {
            fs.apply(&image, &r);
            spec.apply(&r);
        }
        flush(&mut fs, &mut image);
        image[40] ^= 0xFF;
        let (mut back, rec) = Fs::recover(&image).unwrap();
        assert!(rec.rolled_forward > 5);
        for inum in 0..4 {
            let r = Request::Stat { inum };
            assert_eq!(back.apply(&image, &r), spec.apply(&r), "{r:?}");
        }
        let mut junk = vec![0u8; CR_SIZE];
        junk[..4].copy_from_slice(b"MFSC");
        junk[4] = 1;
        let err = Fs::recover(&junk).unwrap_err();
        assert!(err.contains("root"), "{err}");
    }

    /// A fresh image and a file system that has created `/x`, its record still
    /// pending (not yet in the image).
    fn fs_with_a_file() -> (Fs, Vec<u8>) {
        let (mut fs, image) = new_image();
        fs.apply(
            &image,
            &Request::Creat {
                pinum: 0,
                kind: 1,
                name: b"x".to_vec(),
            },
        );
        (fs, image)
    }

    #[test]
    fn a_checkpoint_ahead_of_the_log_is_refused_with_a_reason() {
        let (fs, mut image) = fs_with_a_file();
        let cr = fs.checkpoint();
        image[..CR_SIZE].copy_from_slice(&cr);
        let err = Fs::recover(&image).unwrap_err();
        assert!(err.contains("written before the log"), "{err}");
    }

    /// An image holding one file, `/x`, with its checkpoint written.
    fn image_with_a_file() -> Vec<u8> {
        let (mut fs, mut image) = fs_with_a_file();
        flush(&mut fs, &mut image);
        image
    }

    #[test]
    fn a_file_that_is_not_an_image_is_refused_not_rebuilt() {
        // Text where the checkpoint region should be: not a torn checkpoint write,
        // so boot must not rebuild (and later overwrite) it as an empty log.
        let image = b"not a file system image\n".repeat(1000);
        let err = Fs::recover(&image[..]).unwrap_err();
        assert!(err.contains("not an MFS image"), "{err}");
    }

    #[test]
    fn an_inode_past_the_log_is_refused_with_a_reason() {
        let mut image = image_with_a_file();
        // A whole record past the checkpoint whose inode-map piece puts inode 1
        // beyond the end of the log.
        let cr = Checkpoint::decode(&image).unwrap();
        let mut entries = crate::format::decode_piece(&image[cr.pieces[0] as usize..]);
        entries[1] = image.len() as u32 + 10_000;
        let mut w = crate::format::RecordWriter::new(image.len() as u64, 0);
        w.add_piece(0, entries);
        image.extend_from_slice(&w.finish(cr.seq + 1, 0));
        let err = Fs::recover(&image).unwrap_err();
        assert!(
            err.contains("inode 1 at") && err.contains("lies outside the log"),
            "{err}"
        );
    }

    /// An inode the inode map puts inside the checkpoint region, or starting inside
    /// the log but running past its end, is refused as lying outside the log (not
    /// read, nor refused for what those bytes happen to hold).
    #[test]
    fn an_inode_before_the_log_or_across_its_end_is_refused_with_a_reason() {
        let base = image_with_a_file();
        let cr = Checkpoint::decode(&base).unwrap();
        let entries = crate::format::decode_piece(&base[cr.pieces[0] as usize..]);
        let record_len = {
            let mut sized = crate::format::RecordWriter::new(base.len() as u64, 0);
            sized.add_piece(0, entries);
            sized.byte_len()
        };
        let log_end = base.len() as u64 + record_len;
        for addr in [100, log_end - INODE_SIZE as u64 + 10] {
            let mut image = base.clone();
            let mut entries = entries;
            entries[1] = addr as u32;
            let mut w = crate::format::RecordWriter::new(image.len() as u64, 0);
            w.add_piece(0, entries);
            image.extend_from_slice(&w.finish(cr.seq + 1, 0));
            assert_eq!(image.len() as u64, log_end);
            let err = Fs::recover(&image).unwrap_err();
            assert!(
                err.contains(&format!("inode 1 at {addr} lies outside the log")),
                "{addr}: {err}"
            );
        }
    }

    /// The bound of the check above is the log's end itself: an inode whose last byte
    /// is the log's last byte lies inside the log. No sound image has one there (a
    /// record puts its inode-map pieces after its inodes), so the image is built by
    /// hand: a record whose piece points inode 1 into the next record, which holds
    /// only that inode and ends the log.
    #[test]
    fn an_inode_ending_at_the_log_end_is_inside_the_log() {
        let mut image = image_with_a_file();
        let cr = Checkpoint::decode(&image).unwrap();
        let mut entries = crate::format::decode_piece(&image[cr.pieces[0] as usize..]);
        let mut with_piece = crate::format::RecordWriter::new(image.len() as u64, 0);
        let next_start = image.len() as u64 + {
            let mut sized = crate::format::RecordWriter::new(image.len() as u64, 0);
            sized.add_piece(0, entries);
            sized.byte_len()
        };
        let mut with_inode = crate::format::RecordWriter::new(next_start, 0);
        let inode = Inode {
            kind: KIND_FILE,
            size: 0,
            blocks: [0; DIRECT_BLOCKS],
        };
        entries[1] = with_inode.add_inode(1, &inode) as u32;
        with_piece.add_piece(0, entries);
        image.extend_from_slice(&with_piece.finish(cr.seq + 1, 0));
        assert_eq!(image.len() as u64, next_start);
        image.extend_from_slice(&with_inode.finish(cr.seq + 2, 0));
        assert_eq!(
            u64::from(entries[1]) + INODE_SIZE as u64,
            image.len() as u64,
            "the inode should end the log"
        );
        let (fs, _) = Fs::recover(&image).unwrap_or_else(|e| panic!("refused: {e}"));
        assert_eq!(fs.inodes[1], Some(inode));
    }

    #[test]
    fn an_inode_map_piece_running_past_the_log_is_refused_with_a_reason() {
        let mut image = image_with_a_file();
        let mut cr = Checkpoint::decode(&image).unwrap();
        // The piece starts inside the log but its entries run past the log's end,
        // into bytes no record wrote (here a zeroed tail, as a crash may leave).
        cr.pieces[0] = (cr.log_end - 8) as u32;
        image[..CR_SIZE].copy_from_slice(&cr.encode());
        image.resize(image.len() + 4 * PIECE_ENTRIES, 0);
        let err = Fs::recover(&image).unwrap_err();
        assert!(err.contains("lies outside the log"), "{err}");
        // Nor one that starts a few entries before the end: the bound is the
        // piece's whole length, four bytes an entry.
        cr.pieces[0] = (cr.log_end - 4 * PIECE_ENTRIES as u64 + 4) as u32;
        image[..CR_SIZE].copy_from_slice(&cr.encode());
        let err = Fs::recover(&image).unwrap_err();
        assert!(err.contains("lies outside the log"), "{err}");
        // Nor can a piece start inside the first record's header.
        cr.pieces[0] = LOG_START as u32;
        image[..CR_SIZE].copy_from_slice(&cr.encode());
        let err = Fs::recover(&image).unwrap_err();
        assert!(
            err.contains("inode-map piece 0 at 4096 lies outside the log"),
            "{err}"
        );
    }

    /// Random requests over a tiny tree, so names collide and directories fill.
    fn random_request(rng: &mut rand::rngs::StdRng, spec: &mut FsSpec) -> Request {
        use rand::Rng;
        let names = ["a", "b", "c", "d"];
        let dir = match spec.apply(&Request::Lookup {
            pinum: 0,
            name: b"d".to_vec(),
        }) {
            Reply::Ok(d) if rng.gen_bool(0.5) => d,
            _ => 0,
        };
        let name = names[rng.gen_range(0..names.len())].as_bytes().to_vec();
        match rng.gen_range(0..10) {
            0..=3 => {
                let inum = match spec.apply(&Request::Lookup {
                    pinum: dir,
                    name: name.clone(),
                }) {
                    Reply::Ok(i) => i,
                    _ => rng.gen_range(0..6),
                };
                let mut data = zero_block();
                data.fill(rng.gen());
                Request::Write {
                    inum,
                    block: rng.gen_range(0..15),
                    data,
                }
            }
            4..=6 => Request::Creat {
                pinum: dir,
                kind: rng.gen_range(0..2),
                name,
            },
            _ => Request::Unlink { pinum: dir, name },
        }
    }

    /// Everything a client can observe about inodes 0..8.
    fn observe(fs: &mut Fs, image: &Vec<u8>) -> Vec<Reply> {
        let mut out = Vec::new();
        for inum in 0..8 {
            out.push(fs.apply(image, &Request::Stat { inum }));
            for block in 0..14 {
                out.push(fs.apply(image, &Request::Read { inum, block }));
            }
        }
        out
    }

    fn observe_spec(spec: &FsSpec) -> Vec<Reply> {
        let mut spec = spec.clone();
        let mut out = Vec::new();
        for inum in 0..8 {
            out.push(spec.apply(&Request::Stat { inum }));
            for block in 0..14 {
                out.push(spec.apply(&Request::Read { inum, block }));
            }
        }
        out
    }

    /// A crash can leave any prefix of a batch's bytes on disk, with the old or the new
    /// checkpoint. Boot must then give exactly the state after some whole number of the
    /// batch's requests: never a half-applied one, never one from a later batch.
    #[test]
    fn every_torn_prefix_of_a_batch_boots_into_a_prefix_of_its_requests() {
        use rand::{Rng, SeedableRng};
        for seed in 0..20u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let (mut fs, mut image) = new_image();
            let mut spec = FsSpec::new();
            for batch in 0..15 {
                let old_cr = image[..CR_SIZE].to_vec();
                let mut states = vec![observe_spec(&spec)];
                for _ in 0..rng.gen_range(1..5) {
                    let r = random_request(&mut rng, &mut spec);
                    assert_eq!(fs.apply(&image, &r), spec.apply(&r), "seed {seed}: {r:?}");
                    states.push(observe_spec(&spec));
                }
                let before = image.len();
                flush(&mut fs, &mut image);
                let new_cr = image[..CR_SIZE].to_vec();
                for _ in 0..6 {
                    let cut = rng.gen_range(before..=image.len());
                    let mut torn = image[..cut].to_vec();
                    let cr = if cut == image.len() && rng.gen_bool(0.5) {
                        &new_cr
                    } else {
                        &old_cr
                    };
                    torn[..CR_SIZE].copy_from_slice(cr);
                    let (mut back, _) = Fs::recover(&torn)
                        .unwrap_or_else(|e| panic!("seed {seed} batch {batch} cut {cut}: {e}"));
                    let seen = observe(&mut back, &torn);
                    assert!(
                        states.contains(&seen),
                        "seed {seed} batch {batch}: a cut at {cut} of {}..{} booted into a state \
                         that is no prefix of the batch",
                        before,
                        image.len()
                    );
                    if cut == image.len() {
                        assert_eq!(
                            &seen,
                            states.last().unwrap(),
                            "the whole batch must survive"
                        );
                    }
                }
            }
        }
    }
}
