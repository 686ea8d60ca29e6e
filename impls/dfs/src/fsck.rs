//! `mfsck`: checks an image's structure offline and draws its tree.
//!
//! It trusts nothing: it parses every record of the log from the start, so it knows
//! where every block, inode and inode-map piece really is, and then checks that the
//! checkpoint region and the inode map point only at those, that every inode is sound,
//! and that the directories form one tree with each inode named exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use specs::mfs::spec::valid_name;
use specs::mfs::{
    BLOCK_SIZE, DIRECT_BLOCKS, DIRENTS_PER_BLOCK, DIRENT_SIZE, MAX_INODES, NAME_FIELD,
};

use crate::format::{
    decode_piece, scan_log, Checkpoint, Inode, KIND_DIRECTORY, KIND_FILE, LOG_START, PIECES,
    PIECE_ENTRIES,
};

/// What `mfsck` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Structural damage: the image is not consistent.
    pub errors: Vec<String>,
    /// Harmless findings (a torn tail boot will cut, records boot will roll forward).
    pub notes: Vec<String>,
    /// The tree, one line per entry.
    pub tree: String,
    pub inodes: usize,
    pub records: u64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

fn show(name: &[u8]) -> String {
    name.iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

pub fn check(image: &[u8]) -> Report {
    let mut r = Report::default();
    let cr = match Checkpoint::decode(image) {
        Ok(cr) => cr,
        Err(e) if Checkpoint::is_torn(&e) => {
            r.notes.push(format!(
                "{e}: a torn checkpoint write; boot rebuilds the state from the whole log"
            ));
            Checkpoint::empty()
        }
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    let len = image.len() as u64;
    if cr.log_end < LOG_START || cr.log_end > len {
        r.errors.push(format!(
            "checkpoint region: log end {} is outside the image (4096..={len}): it points at a log that was never written",
            cr.log_end
        ));
        return r;
    }

    // Every record, from the start, and what lives where.
    let mut blocks: HashSet<u64> = HashSet::new();
    let mut inode_at: HashMap<u64, u32> = HashMap::new();
    let mut piece_at: HashMap<u64, u32> = HashMap::new();
    let mut pieces = cr.pieces;
    // The same scan boot makes: what it calls damaged, boot refuses.
    let scan = match scan_log(image, &cr) {
        Ok(scan) => scan,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    for rec in &scan.records {
        if rec.start >= cr.log_end {
            // Past the checkpoint: boot rolls it forward.
            for (p, addr, _) in &rec.pieces {
                if (*p as usize) < PIECES {
                    pieces[*p as usize] = *addr as u32;
                }
            }
            if rec.start == cr.log_end {
                r.notes.push(format!(
                    "records from {} are past the checkpoint; boot rolls them forward",
                    rec.start
                ));
            }
        }
        blocks.extend(rec.block_addrs());
        for (inum, addr, _) in &rec.inodes {
            inode_at.insert(*addr, *inum);
        }
        for (p, addr, _) in &rec.pieces {
            piece_at.insert(*addr, *p);
        }
        r.records += 1;
    }
    match &scan.tail {
        Some(tail) if tail.zeroed => r.notes.push(format!(
            "{} byte(s) of zeros after the last whole record at {}: space written ahead of \
             the log, which boot keeps and the next records overwrite",
            tail.len, tail.start
        )),
        Some(tail) => r.notes.push(format!(
            "{} byte(s) after the last whole record at {}, the torn write of a batch never \
             synced nor acknowledged; boot cuts them ({})",
            tail.len, tail.start, tail.why
        )),
        None => {}
    }

    // The inode map, through the pieces.
    let mut imap = vec![0u32; MAX_INODES as usize];
    for (p, &addr) in pieces.iter().enumerate() {
        if addr == 0 {
            continue;
        }
        match piece_at.get(&u64::from(addr)) {
            Some(&q) if q as usize == p => {
                imap[p * PIECE_ENTRIES..(p + 1) * PIECE_ENTRIES]
                    .copy_from_slice(&decode_piece(&image[addr as usize..]));
            }
            Some(&q) => r.errors.push(format!(
                "checkpoint region: piece {p} points at {addr}, which holds piece {q}"
            )),
            None => r.errors.push(format!(
                "checkpoint region: piece {p} points at {addr}, where no inode-map piece was written"
            )),
        }
    }
    let mut inodes: BTreeMap<u32, Inode> = BTreeMap::new();
    for (inum, &addr) in imap.iter().enumerate() {
        if addr == 0 {
            continue;
        }
        let inum = inum as u32;
        match inode_at.get(&u64::from(addr)) {
            Some(&i) if i == inum => {
                let inode = Inode::decode(&image[addr as usize..]);
                if check_inode(inum, &inode, &blocks, &mut r.errors) {
                    inodes.insert(inum, inode);
                }
            }
            Some(&i) => r.errors.push(format!(
                "inode map: inode {inum} points at {addr}, which holds inode {i}"
            )),
            None => r.errors.push(format!(
                "inode map: inode {inum} points at {addr}, where no inode was written"
            )),
        }
    }
    r.inodes = inodes.len();
    match inodes.get(&0) {
        Some(root) if root.kind == KIND_DIRECTORY => {}
        _ => {
            r.errors
                .push("inode 0 (the root) is missing or not a directory".into());
            return r;
        }
    }

    // The tree.
    let mut named: HashMap<u32, usize> = HashMap::new();
    let _ = writeln!(r.tree, "/ (inode 0, directory, {} bytes)", inodes[&0].size);
    walk(image, &inodes, 0, 0, "/", 1, &mut named, &mut r);
    for inum in inodes.keys() {
        if *inum != 0 && !named.contains_key(inum) {
            r.errors.push(format!(
                "inode {inum} is allocated but no directory names it"
            ));
        }
    }
    r
}

fn check_inode(inum: u32, inode: &Inode, blocks: &HashSet<u64>, errors: &mut Vec<String>) -> bool {
    let before = errors.len();
    if inode.kind != KIND_DIRECTORY && inode.kind != KIND_FILE {
        errors.push(format!(
            "inode {inum}: type {} is neither 0 nor 1",
            inode.kind
        ));
        return false;
    }
    let size = inode.size as usize;
    if size % BLOCK_SIZE != 0 || size > DIRECT_BLOCKS * BLOCK_SIZE {
        errors.push(format!(
            "inode {inum}: size {size} is not a whole number of blocks up to 14"
        ));
        return false;
    }
    if inode.kind == KIND_DIRECTORY && size == 0 {
        errors.push(format!("inode {inum}: a directory without blocks"));
    }
    for (b, &addr) in inode.blocks.iter().enumerate() {
        if b >= inode.block_count() {
            if addr != 0 {
                errors.push(format!(
                    "inode {inum}: block {b} is set past the size {size}"
                ));
            }
        } else if addr == 0 {
            if inode.kind == KIND_DIRECTORY {
                errors.push(format!("inode {inum}: directory block {b} is missing"));
            }
        } else if !blocks.contains(&u64::from(addr)) {
            errors.push(format!(
                "inode {inum}: block {b} points at {addr}, where no data block was written"
            ));
        }
    }
    errors.len() == before
}

#[allow(clippy::too_many_arguments)]
fn walk(
    image: &[u8],
    inodes: &BTreeMap<u32, Inode>,
    dir: u32,
    parent: u32,
    path: &str,
    depth: usize,
    named: &mut HashMap<u32, usize>,
    r: &mut Report,
) {
    let inode = inodes[&dir];
    let mut names = HashSet::new();
    let mut children = Vec::new();
    for b in 0..inode.block_count() {
        let addr = inode.blocks[b] as usize;
        if addr == 0 {
            continue;
        }
        let block = &image[addr..addr + BLOCK_SIZE];
        for slot in 0..DIRENTS_PER_BLOCK {
            let e = &block[slot * DIRENT_SIZE..(slot + 1) * DIRENT_SIZE];
            let inum = i32::from_le_bytes(e[NAME_FIELD..].try_into().unwrap());
            let nlen = e[..NAME_FIELD].iter().position(|&c| c == 0);
            let at = format!("{path}: block {b} entry {slot}");
            if inum == -1 {
                if e[..NAME_FIELD].iter().any(|&c| c != 0) {
                    r.errors.push(format!("{at}: unused entry with name bytes"));
                }
                if b == 0 && slot < 2 {
                    r.errors.push(format!("{at}: `.`/`..` missing"));
                }
                continue;
            }
            let Some(nlen) = nlen else {
                r.errors.push(format!("{at}: name has no NUL in 28 bytes"));
                continue;
            };
            let name = &e[..nlen];
            if e[nlen..NAME_FIELD].iter().any(|&c| c != 0) {
                r.errors.push(format!("{at}: bytes after the name's NUL"));
            }
            if !(0..MAX_INODES).contains(&inum) || !inodes.contains_key(&(inum as u32)) {
                r.errors.push(format!(
                    "{at}: {:?} names inode {inum}, which is not allocated",
                    show(name)
                ));
                continue;
            }
            let inum = inum as u32;
            if b == 0 && slot == 0 {
                if name != b"." || inum != dir {
                    r.errors.push(format!(
                        "{at}: expected `.` -> {dir}, found {:?} -> {inum}",
                        show(name)
                    ));
                }
                continue;
            }
            if b == 0 && slot == 1 {
                if name != b".." || inum != parent {
                    r.errors.push(format!(
                        "{at}: expected `..` -> {parent}, found {:?} -> {inum}",
                        show(name)
                    ));
                }
                continue;
            }
            if !valid_name(name) || name == b"." || name == b".." {
                r.errors
                    .push(format!("{at}: invalid name {:?}", show(name)));
            }
            if !names.insert(name.to_vec()) {
                r.errors
                    .push(format!("{at}: name {:?} appears twice", show(name)));
            }
            let count = named.entry(inum).or_insert(0);
            *count += 1;
            if *count > 1 || inum == 0 {
                r.errors
                    .push(format!("{at}: inode {inum} is named more than once"));
                continue;
            }
            children.push((name.to_vec(), inum));
        }
    }
    for (name, inum) in children {
        let child = inodes[&inum];
        let indent = "  ".repeat(depth);
        if child.kind == KIND_DIRECTORY {
            let _ = writeln!(
                r.tree,
                "{indent}{}/ (inode {inum}, directory, {} bytes)",
                show(&name),
                child.size
            );
            let sub = format!("{path}{}/", show(&name));
            walk(image, inodes, inum, dir, &sub, depth + 1, named, r);
        } else {
            let holes = (0..child.block_count())
                .filter(|&b| child.blocks[b] == 0)
                .count();
            let _ = writeln!(
                r.tree,
                "{indent}{} (inode {inum}, file, {} bytes{})",
                show(&name),
                child.size,
                if holes > 0 {
                    format!(", {holes} hole(s)")
                } else {
                    String::new()
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Fs;
    use crate::format::CR_SIZE;
    use specs::mfs::wire::{zero_block, Request};

    fn image_with_tree() -> Vec<u8> {
        let mut fs = Fs::fresh();
        let mut image = vec![0u8; CR_SIZE];
        let flush = |fs: &mut Fs, image: &mut Vec<u8>| {
            if let Some((_, b)) = fs.take_pending() {
                image.extend_from_slice(&b);
            }
            image[..CR_SIZE].copy_from_slice(&fs.checkpoint());
        };
        flush(&mut fs, &mut image);
        for r in [
            Request::Creat {
                pinum: 0,
                kind: 0,
                name: b"dir".to_vec(),
            },
            Request::Creat {
                pinum: 1,
                kind: 1,
                name: b"file".to_vec(),
            },
            Request::Write {
                inum: 2,
                block: 2,
                data: zero_block(),
            },
        ] {
            fs.apply(&image, &r);
            flush(&mut fs, &mut image);
        }
        image
    }

    #[test]
    fn a_sound_image_passes_and_shows_its_tree() {
        let report = check(&image_with_tree());
        assert!(report.ok(), "{:?}", report.errors);
        assert!(report.tree.contains("dir/ (inode 1"), "{}", report.tree);
        assert!(
            report
                .tree
                .contains("    file (inode 2, file, 12288 bytes, 2 hole(s))"),
            "{}",
            report.tree
        );
        assert_eq!(report.records, 4);
    }

    #[test]
    fn a_torn_checkpoint_is_a_note_when_the_log_is_whole() {
        let mut image = image_with_tree();
        image[30] ^= 0xFF;
        let report = check(&image);
        assert!(report.ok(), "{:?}", report.errors);
        assert!(
            report.notes.iter().any(|n| n.contains("torn checkpoint")),
            "{:?}",
            report.notes
        );
        assert!(report.tree.contains("dir/ (inode 1"), "{}", report.tree);
    }

    #[test]
    fn a_checkpoint_past_the_log_is_an_error() {
        let mut image = image_with_tree();
        image.truncate(image.len() - 100);
        let report = check(&image);
        assert!(!report.ok());
        assert!(
            report.errors[0].contains("never written"),
            "{:?}",
            report.errors
        );
    }

    /// The first inode-map piece of `image`'s checkpoint, decoded.
    fn first_piece(image: &[u8]) -> [u32; PIECE_ENTRIES] {
        let cr = Checkpoint::decode(image).unwrap();
        decode_piece(&image[cr.pieces[0] as usize..])
    }

    /// Appends one well-formed record, which `write` fills (`nblocks` blocks) and
    /// whose returned first inode-map piece replaces the old one, and points the
    /// checkpoint at it: a damaged image whose every record parses.
    fn append_record(
        image: &mut Vec<u8>,
        nblocks: usize,
        write: impl FnOnce(
            &mut crate::format::RecordWriter,
            [u32; PIECE_ENTRIES],
        ) -> [u32; PIECE_ENTRIES],
    ) {
        let cr = Checkpoint::decode(image).unwrap();
        let mut w = crate::format::RecordWriter::new(image.len() as u64, nblocks);
        let entries = write(&mut w, first_piece(image));
        let mut pieces = cr.pieces;
        pieces[0] = w.add_piece(0, entries) as u32;
        image.extend_from_slice(&w.finish(cr.seq + 1, 0));
        let cr = Checkpoint {
            log_end: image.len() as u64,
            seq: cr.seq + 1,
            pieces,
        };
        image[..CR_SIZE].copy_from_slice(&cr.encode());
    }

    fn has_error(report: &Report, text: &str) -> bool {
        report.errors.iter().any(|e| e.contains(text))
    }

    /// Appends a record holding inode `inum` as `edit` leaves it.
    fn rewrite_inode(image: &mut Vec<u8>, inum: usize, edit: impl FnOnce(&mut Inode)) {
        let old = image.clone();
        append_record(image, 0, |w, mut entries| {
            let mut inode = Inode::decode(&old[entries[inum] as usize..]);
            edit(&mut inode);
            entries[inum] = w.add_inode(inum as u32, &inode) as u32;
            entries
        });
    }

    /// Appends a record holding directory `inum`'s first block as `edit` leaves it.
    fn rewrite_dir_block(image: &mut Vec<u8>, inum: usize, edit: impl FnOnce(&mut [u8])) {
        let old = image.clone();
        append_record(image, 1, |w, mut entries| {
            let mut dir = Inode::decode(&old[entries[inum] as usize..]);
            let mut block = old[dir.blocks[0] as usize..][..BLOCK_SIZE].to_vec();
            edit(&mut block);
            dir.blocks[0] = w.add_block(&block) as u32;
            entries[inum] = w.add_inode(inum as u32, &dir) as u32;
            entries
        });
    }

    /// Sets a directory block's entry `slot` to `name` -> `inum`.
    fn set_entry(block: &mut [u8], slot: usize, name: &[u8], inum: i32) {
        let entry = &mut block[slot * DIRENT_SIZE..(slot + 1) * DIRENT_SIZE];
        entry.fill(0);
        entry[..name.len()].copy_from_slice(name);
        entry[NAME_FIELD..].copy_from_slice(&inum.to_le_bytes());
    }

    #[test]
    fn a_dangling_directory_entry_is_an_error() {
        let mut image = image_with_tree();
        // A new root block that names an unallocated inode.
        rewrite_dir_block(&mut image, 0, |block| set_entry(block, 2, b"dir", 77));
        let report = check(&image);
        assert!(
            has_error(&report, "inode 77, which is not allocated"),
            "{:?}",
            report.errors
        );
        assert!(
            has_error(&report, "inode 1 is allocated but no directory names it"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn an_inode_map_entry_naming_another_inode_is_an_error() {
        let mut image = image_with_tree();
        // Inode 1's entry points at the record of inode 2, a sound inode of its own.
        append_record(&mut image, 0, |_, mut entries| {
            entries[1] = entries[2];
            entries
        });
        let report = check(&image);
        assert!(
            has_error(&report, "inode map: inode 1 points at"),
            "{:?}",
            report.errors
        );
        assert!(
            has_error(&report, "which holds inode 2"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_checkpoint_naming_one_piece_for_another_is_an_error() {
        let mut image = image_with_tree();
        // Piece 1 (inodes 16-31, none in use) pointed at piece 0's address.
        let mut cr = Checkpoint::decode(&image).unwrap();
        cr.pieces[1] = cr.pieces[0];
        image[..CR_SIZE].copy_from_slice(&cr.encode());
        let report = check(&image);
        assert!(
            has_error(
                &report,
                &format!(
                    "checkpoint region: piece 1 points at {}, which holds piece 0",
                    cr.pieces[0]
                )
            ),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_root_that_is_not_a_directory_is_an_error() {
        let mut image = image_with_tree();
        // A sound inode 0 of kind file: the tree has no root to hang from.
        rewrite_inode(&mut image, 0, |root| root.kind = KIND_FILE);
        let report = check(&image);
        assert!(
            has_error(&report, "inode 0 (the root) is missing or not a directory"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn an_inode_whose_size_is_not_whole_blocks_is_an_error() {
        let mut image = image_with_tree();
        // The file's size within its 14 blocks but not a multiple of a block.
        rewrite_inode(&mut image, 2, |file| file.size -= 1);
        let report = check(&image);
        assert!(
            has_error(
                &report,
                "inode 2: size 12287 is not a whole number of blocks"
            ),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_checkpoint_ending_the_log_before_it_starts_is_an_error() {
        let mut image = image_with_tree();
        let mut cr = Checkpoint::decode(&image).unwrap();
        cr.log_end = LOG_START - 1;
        image[..CR_SIZE].copy_from_slice(&cr.encode());
        let report = check(&image);
        assert!(
            has_error(&report, "log end 4095 is outside the image"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_parent_entry_naming_the_wrong_directory_is_an_error() {
        let mut image = image_with_tree();
        // Directory 1's `..` (its second entry) names itself instead of the root.
        rewrite_dir_block(&mut image, 1, |block| set_entry(block, 1, b"..", 1));
        let report = check(&image);
        assert!(
            has_error(&report, "expected `..` -> 0, found \"..\" -> 1"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_second_name_for_the_root_is_an_error() {
        let mut image = image_with_tree();
        // Directory 1 gets a third entry, `up`, naming the root.
        rewrite_dir_block(&mut image, 1, |block| set_entry(block, 3, b"up", 0));
        let report = check(&image);
        // Flagged where it is, not only once the walk has gone round through it.
        assert_eq!(
            report.errors,
            ["/dir/: block 0 entry 3: inode 0 is named more than once"]
        );
    }

    #[test]
    fn a_file_that_is_not_an_image_is_an_error() {
        let report = check(&b"not a file system image\n".repeat(1000));
        assert!(
            has_error(&report, "not an MFS image"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_dot_entry_naming_another_directory_is_an_error() {
        let mut image = image_with_tree();
        // Directory 1's `.` (its first entry) names the root.
        rewrite_dir_block(&mut image, 1, |block| set_entry(block, 0, b".", 0));
        let report = check(&image);
        assert!(
            has_error(&report, "expected `.` -> 1, found \".\" -> 0"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_dot_or_dotdot_name_past_the_first_two_entries_is_an_error() {
        for name in [&b"."[..], b".."] {
            let mut image = image_with_tree();
            // The root gets a fourth entry named `.` or `..`, naming the file.
            rewrite_dir_block(&mut image, 0, |block| set_entry(block, 3, name, 2));
            let report = check(&image);
            let shown = show(name);
            assert!(
                has_error(&report, &format!("invalid name \"{shown}\"")),
                "{shown}: {:?}",
                report.errors
            );
        }
    }

    #[test]
    fn a_file_named_in_two_directories_is_an_error() {
        let mut image = image_with_tree();
        // The root gets a fourth entry, `again`, naming the file already in /dir.
        rewrite_dir_block(&mut image, 0, |block| set_entry(block, 3, b"again", 2));
        let report = check(&image);
        assert!(
            has_error(&report, "inode 2 is named more than once"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_rolled_forward_record_naming_a_piece_past_the_last_is_not_a_crash() {
        let mut image = image_with_tree();
        // A whole record past the checkpoint whose inode-map piece has number
        // PIECES: nothing can point at it, and reading it must not index past the
        // table of pieces.
        let cr = Checkpoint::decode(&image).unwrap();
        let entries = first_piece(&image);
        let mut w = crate::format::RecordWriter::new(image.len() as u64, 0);
        w.add_piece(PIECES as u32, entries);
        image.extend_from_slice(&w.finish(cr.seq + 1, 0));
        let report = check(&image);
        assert!(report.tree.contains("dir/ (inode 1"), "{}", report.tree);
    }
}
