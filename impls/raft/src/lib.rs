//! Raft (system 7): a sans-IO core and the node that binds it to the harness.
//!
//! - [`core`]: the protocol and nothing else. Events go in (`tick`, `step`,
//!   `propose`, `snapshot`); a [`core::Ready`] comes out with the snapshot and state
//!   to persist, the messages to send and the snapshot and entries to apply, in that
//!   order of obligation.
//! - [`wire`]: peer messages as node-protocol bodies.
//! - [`disk`]: the files in the data dir and how they are read back.
//! - [`raft_node`]: the core as a `node::Node` speaking `specs::raft_protocol`.

pub mod bug;
pub mod core;
pub mod disk;
pub mod raft_node;
pub mod wire;

pub use crate::bug::Bug;
pub use crate::core::{
    Config, Entry, HardState, LogWrite, Raft, Ready, Restored, Role, Snapshot, TermVote,
};
pub use crate::wire::PeerMessage;

#[cfg(test)]
mod tests;
