//! Raft (system 7): a sans-IO core and the node that binds it to the harness.
//!
//! - [`core`]: the protocol and nothing else. Events go in (`tick`, `step`,
//!   `propose`); a [`core::Ready`] comes out with the state to persist, the messages
//!   to send and the entries to apply, in that order of obligation.
//! - [`wire`]: peer messages as node-protocol bodies.
//! - [`raft_node`]: the core as a `node::Node` speaking `specs::raft_protocol`.

pub mod bug;
pub mod core;
pub mod raft_node;
pub mod rng;
pub mod wire;

pub use crate::bug::Bug;
pub use crate::core::{Config, Entry, HardState, Raft, Ready};
pub use crate::wire::PeerMessage;

#[cfg(test)]
mod tests;
