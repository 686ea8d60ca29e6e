//! The reference MFS distributed file server (OSTEP's "distributed file server"
//! project, item 2 of the suite), made crash-safe.
//!
//! | module | what it holds |
//! |---|---|
//! | [`format`](mod@format) | the image, byte by byte: checkpoint region, log records, inodes |
//! | [`core`] | the core: requests over the image, pure except for block reads |
//! | [`disk`] | where the core reads blocks from (the image file, or memory in tests) |
//! | [`server`] | the runtime: UDP socket, batching, append + fsync, then replies |
//! | [`client`] | the Rust client: timeout, retry, replies matched to requests |
//! | [`ffi`] | `libmfs.so`, the seed's `mfs.h` C interface (`include/mfs.h`) |
//! | [`fsck`] | `mfsck`'s checks |
//! | [`crc`] | CRC-32 for records and the checkpoint |
//!
//! The wire protocol and the meaning of each request are not here: they are the
//! contract in `specs::mfs`, which the conformance tests also use.

pub mod client;
pub mod core;
pub mod crc;
pub mod disk;
pub mod ffi;
pub mod format;
pub mod fsck;
pub mod server;
