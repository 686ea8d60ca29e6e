//! The distributed file server (OSTEP's "MFS"): its wire protocol and its sequential
//! specification.
//!
//! A client sends one UDP datagram per request and waits for the reply; the server
//! applies each request once and makes it durable before it answers. The protocol is
//! byte-exact and versioned ([`wire`]); what each request must do, including every
//! failure, is [`spec::FsSpec`], a plain in-memory file system that the conformance
//! tests run beside the server under test and compare reply by reply.
//!
//! The limits below are part of the contract, as in the seed's `mfs.h`.

pub mod spec;
pub mod wire;

pub use spec::FsSpec;
pub use wire::{Reply, Request};

/// Bytes in a block: the unit of `Write` and `Read`.
pub const BLOCK_SIZE: usize = 4096;
/// Inode numbers are `0..MAX_INODES`; inode 0 is the root directory.
pub const MAX_INODES: i32 = 4096;
/// Direct block pointers per inode, so a file holds at most 14 blocks (56 KiB).
pub const DIRECT_BLOCKS: usize = 14;
/// A directory entry: a 28-byte NUL-padded name and a little-endian `i32` inode number.
pub const DIRENT_SIZE: usize = 32;
/// Bytes of the name field; a name must leave room for its NUL, so at most 27 bytes.
pub const NAME_FIELD: usize = 28;
/// Longest name a `Creat` accepts.
pub const NAME_MAX: usize = NAME_FIELD - 1;
/// Directory entries per block.
pub const DIRENTS_PER_BLOCK: usize = BLOCK_SIZE / DIRENT_SIZE;
/// The root directory's inode number.
pub const ROOT_INUM: i32 = 0;

/// `MFS_DIRECTORY` in `mfs.h`.
pub const TYPE_DIRECTORY: i32 = 0;
/// `MFS_REGULAR_FILE` in `mfs.h`.
pub const TYPE_REGULAR_FILE: i32 = 1;
