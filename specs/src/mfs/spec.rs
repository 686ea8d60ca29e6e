//! What every MFS request must do: the sequential specification.
//!
//! [`FsSpec`] is a whole file system in memory, written for clarity and nothing else.
//! The conformance tests apply each request to it and to the server under test and
//! compare the replies; after a crash they compare the trees. The choices the seed
//! README leaves open are fixed here, so that two correct servers answer alike:
//!
//! - A name is 1 to 27 bytes without NUL (it must fit the 28-byte field with its NUL).
//!   Any other name makes Lookup, Creat and Unlink fail (-1).
//! - Creat takes the lowest free inode number and the lowest free entry slot of the
//!   directory; a new directory gets `.` (itself) in slot 0 and `..` (its parent) in
//!   slot 1. Creat of a name that exists succeeds and changes nothing, whatever its type.
//! - A directory owns whole blocks of 128 entries; a new directory has one. When every
//!   slot is taken Creat adds a block (up to 14, so 1792 entries with `.` and `..`);
//!   blocks are never given back. A directory's size is 4096 times its blocks. An
//!   unused entry is 28 zero bytes and inode number -1.
//! - A regular file's size is 4096 times (its highest written block + 1). Reading a
//!   block below the size that was never written (a hole) gives zeros; reading at or
//!   past the size fails. Write takes blocks 0..=13 of a regular file only.
//! - Unlink of a missing name succeeds; of `.` or `..` fails; of a directory that holds
//!   anything besides `.` and `..` fails. The unlinked inode number is free again.
//! - An inode number outside `0..4096` or not in use makes every operation fail.
//! - Shutdown succeeds; the server then exits.

use super::wire::{zero_block, Block, Reply, Request};
use super::{
    BLOCK_SIZE, DIRECT_BLOCKS, DIRENTS_PER_BLOCK, DIRENT_SIZE, MAX_INODES, NAME_FIELD, NAME_MAX,
    ROOT_INUM, TYPE_DIRECTORY, TYPE_REGULAR_FILE,
};

/// A directory's entry slots, 128 a block; `None` is an unused entry.
type Slots = Vec<Option<(Vec<u8>, i32)>>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir(Slots),
    File {
        blocks: Vec<Option<Block>>,
        size: i32,
    },
}

/// The reference file system: apply requests, get the replies a correct server gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsSpec {
    nodes: Vec<Option<Node>>,
}

impl Default for FsSpec {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `name` may name a directory entry.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && !name.contains(&0)
}

fn new_dir(inum: i32, parent: i32) -> Node {
    let mut slots = vec![None; DIRENTS_PER_BLOCK];
    slots[0] = Some((b".".to_vec(), inum));
    slots[1] = Some((b"..".to_vec(), parent));
    Node::Dir(slots)
}

/// The bytes of directory block `block` holding `slots` (128 of them).
pub fn encode_dir_block(slots: &[Option<(Vec<u8>, i32)>]) -> Block {
    let mut out = zero_block();
    for (i, slot) in slots.iter().enumerate() {
        let entry = &mut out[i * DIRENT_SIZE..(i + 1) * DIRENT_SIZE];
        let inum = match slot {
            Some((name, inum)) => {
                entry[..name.len()].copy_from_slice(name);
                *inum
            }
            None => -1,
        };
        entry[NAME_FIELD..].copy_from_slice(&inum.to_le_bytes());
    }
    out
}

impl FsSpec {
    /// A fresh file system: the root directory alone, whose `..` is itself.
    pub fn new() -> FsSpec {
        let mut nodes = vec![None; MAX_INODES as usize];
        nodes[ROOT_INUM as usize] = Some(new_dir(ROOT_INUM, ROOT_INUM));
        FsSpec { nodes }
    }

    fn node(&self, inum: i32) -> Option<&Node> {
        if (0..MAX_INODES).contains(&inum) {
            self.nodes[inum as usize].as_ref()
        } else {
            None
        }
    }

    fn dir(&self, inum: i32) -> Option<&Slots> {
        match self.node(inum) {
            Some(Node::Dir(slots)) => Some(slots),
            _ => None,
        }
    }

    fn find(&self, pinum: i32, name: &[u8]) -> Option<(usize, i32)> {
        self.dir(pinum)?
            .iter()
            .enumerate()
            .find_map(|(i, s)| match s {
                Some((n, inum)) if n == name => Some((i, *inum)),
                _ => None,
            })
    }

    /// Inode numbers in use, in order.
    pub fn inodes_in_use(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_some()).count()
    }

    /// The reply a correct server gives to `request`, after which `self` is the state
    /// the server must be in.
    pub fn apply(&mut self, request: &Request) -> Reply {
        match request {
            Request::Lookup { pinum, name } => {
                if !valid_name(name) {
                    return Reply::Failed;
                }
                match self.find(*pinum, name) {
                    Some((_, inum)) => Reply::Ok(inum),
                    None => Reply::Failed,
                }
            }
            Request::Stat { inum } => match self.node(*inum) {
                Some(Node::Dir(slots)) => Reply::Stat {
                    kind: TYPE_DIRECTORY,
                    size: (slots.len() * DIRENT_SIZE) as i32,
                },
                Some(Node::File { size, .. }) => Reply::Stat {
                    kind: TYPE_REGULAR_FILE,
                    size: *size,
                },
                None => Reply::Failed,
            },
            Request::Write { inum, block, data } => {
                if !(0..DIRECT_BLOCKS as i32).contains(block) {
                    return Reply::Failed;
                }
                match self.nodes.get_mut(*inum as usize) {
                    Some(Some(Node::File { blocks, size })) if *inum >= 0 => {
                        blocks[*block as usize] = Some(data.clone());
                        *size = (*size).max((*block + 1) * BLOCK_SIZE as i32);
                        Reply::Ok(0)
                    }
                    _ => Reply::Failed,
                }
            }
            Request::Read { inum, block } => {
                let b = *block;
                match self.node(*inum) {
                    Some(Node::Dir(slots)) => {
                        let blocks = (slots.len() / DIRENTS_PER_BLOCK) as i32;
                        if !(0..blocks).contains(&b) {
                            return Reply::Failed;
                        }
                        let b = b as usize;
                        Reply::Data(encode_dir_block(
                            &slots[b * DIRENTS_PER_BLOCK..(b + 1) * DIRENTS_PER_BLOCK],
                        ))
                    }
                    Some(Node::File { blocks, size }) => {
                        if b < 0 || b >= size / BLOCK_SIZE as i32 {
                            return Reply::Failed;
                        }
                        Reply::Data(blocks[b as usize].clone().unwrap_or_else(zero_block))
                    }
                    None => Reply::Failed,
                }
            }
            Request::Creat { pinum, kind, name } => {
                if !valid_name(name) || self.dir(*pinum).is_none() {
                    return Reply::Failed;
                }
                if self.find(*pinum, name).is_some() {
                    return Reply::Ok(0);
                }
                if *kind != TYPE_DIRECTORY && *kind != TYPE_REGULAR_FILE {
                    return Reply::Failed;
                }
                let Some(inum) = self.nodes.iter().position(Option::is_none) else {
                    return Reply::Failed;
                };
                let inum = inum as i32;
                let Some(Some(Node::Dir(slots))) = self.nodes.get_mut(*pinum as usize) else {
                    unreachable!("checked above that pinum is a directory");
                };
                let slot = match slots.iter().position(Option::is_none) {
                    Some(i) => i,
                    None if slots.len() < DIRECT_BLOCKS * DIRENTS_PER_BLOCK => {
                        let i = slots.len();
                        slots.resize(i + DIRENTS_PER_BLOCK, None);
                        i
                    }
                    None => return Reply::Failed,
                };
                slots[slot] = Some((name.clone(), inum));
                self.nodes[inum as usize] = Some(if *kind == TYPE_DIRECTORY {
                    new_dir(inum, *pinum)
                } else {
                    Node::File {
                        blocks: vec![None; DIRECT_BLOCKS],
                        size: 0,
                    }
                });
                Reply::Ok(0)
            }
            Request::Unlink { pinum, name } => {
                if !valid_name(name) || name == b"." || name == b".." {
                    return Reply::Failed;
                }
                if self.dir(*pinum).is_none() {
                    return Reply::Failed;
                }
                let Some((slot, inum)) = self.find(*pinum, name) else {
                    return Reply::Ok(0);
                };
                if let Some(Node::Dir(child)) = self.node(inum) {
                    if child.iter().filter(|s| s.is_some()).count() > 2 {
                        return Reply::Failed;
                    }
                }
                if let Some(Some(Node::Dir(slots))) = self.nodes.get_mut(*pinum as usize) {
                    slots[slot] = None;
                }
                self.nodes[inum as usize] = None;
                Reply::Ok(0)
            }
            Request::Shutdown => Reply::Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creat(fs: &mut FsSpec, pinum: i32, kind: i32, name: &str) -> Reply {
        fs.apply(&Request::Creat {
            pinum,
            kind,
            name: name.as_bytes().to_vec(),
        })
    }

    fn lookup(fs: &mut FsSpec, pinum: i32, name: &str) -> Reply {
        fs.apply(&Request::Lookup {
            pinum,
            name: name.as_bytes().to_vec(),
        })
    }

    #[test]
    fn root_is_a_one_block_directory_with_dot_entries() {
        let mut fs = FsSpec::new();
        assert_eq!(
            fs.apply(&Request::Stat { inum: 0 }),
            Reply::Stat {
                kind: TYPE_DIRECTORY,
                size: 4096
            }
        );
        assert_eq!(lookup(&mut fs, 0, "."), Reply::Ok(0));
        assert_eq!(lookup(&mut fs, 0, ".."), Reply::Ok(0));
        let Reply::Data(block) = fs.apply(&Request::Read { inum: 0, block: 0 }) else {
            panic!()
        };
        assert_eq!(&block[..2], b".\0");
        assert_eq!(&block[28..32], &0i32.to_le_bytes());
        assert_eq!(&block[64 + 28..96], &(-1i32).to_le_bytes());
    }

    #[test]
    fn creat_takes_lowest_free_inode_and_reuses_freed_ones() {
        let mut fs = FsSpec::new();
        creat(&mut fs, 0, 1, "a");
        creat(&mut fs, 0, 0, "d");
        assert_eq!(lookup(&mut fs, 0, "a"), Reply::Ok(1));
        assert_eq!(lookup(&mut fs, 0, "d"), Reply::Ok(2));
        assert_eq!(lookup(&mut fs, 2, ".."), Reply::Ok(0));
        fs.apply(&Request::Unlink {
            pinum: 0,
            name: b"a".to_vec(),
        });
        creat(&mut fs, 2, 1, "b");
        assert_eq!(lookup(&mut fs, 2, "b"), Reply::Ok(1));
    }

    #[test]
    fn names_of_27_bytes_work_and_28_fail() {
        let mut fs = FsSpec::new();
        assert_eq!(creat(&mut fs, 0, 1, &"x".repeat(27)), Reply::Ok(0));
        assert_eq!(creat(&mut fs, 0, 1, &"y".repeat(28)), Reply::Failed);
        assert_eq!(lookup(&mut fs, 0, &"x".repeat(27)), Reply::Ok(1));
    }

    #[test]
    fn holes_read_as_zeros_and_past_the_end_fails() {
        let mut fs = FsSpec::new();
        creat(&mut fs, 0, 1, "f");
        let mut data = zero_block();
        data[0] = 1;
        assert_eq!(
            fs.apply(&Request::Write {
                inum: 1,
                block: 3,
                data
            }),
            Reply::Ok(0)
        );
        assert_eq!(
            fs.apply(&Request::Read { inum: 1, block: 1 }),
            Reply::Data(zero_block())
        );
        assert_eq!(
            fs.apply(&Request::Read { inum: 1, block: 4 }),
            Reply::Failed
        );
        assert_eq!(
            fs.apply(&Request::Stat { inum: 1 }),
            Reply::Stat {
                kind: 1,
                size: 4 * 4096
            }
        );
    }

    #[test]
    fn unlink_refuses_non_empty_directories() {
        let mut fs = FsSpec::new();
        creat(&mut fs, 0, 0, "d");
        creat(&mut fs, 1, 1, "f");
        let unlink_d = Request::Unlink {
            pinum: 0,
            name: b"d".to_vec(),
        };
        assert_eq!(fs.apply(&unlink_d), Reply::Failed);
        fs.apply(&Request::Unlink {
            pinum: 1,
            name: b"f".to_vec(),
        });
        assert_eq!(fs.apply(&unlink_d), Reply::Ok(0));
        assert_eq!(fs.apply(&unlink_d), Reply::Ok(0), "missing name succeeds");
        assert_eq!(fs.inodes_in_use(), 1);
    }

    #[test]
    fn directories_grow_to_fourteen_blocks_then_refuse() {
        let mut fs = FsSpec::new();
        for i in 0..(14 * 128 - 2) {
            assert_eq!(creat(&mut fs, 0, 1, &format!("f{i}")), Reply::Ok(0), "{i}");
        }
        assert_eq!(creat(&mut fs, 0, 1, "one-more"), Reply::Failed);
        assert_eq!(
            fs.apply(&Request::Stat { inum: 0 }),
            Reply::Stat {
                kind: 0,
                size: 14 * 4096
            }
        );
    }
}
