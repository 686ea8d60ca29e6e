//! A fault-tolerant key/value service (6.5840 lab 4): the operations of
//! `specs::kvsrv_protocol` (read, write, cas, append, exactly once per client
//! request) replicated on a cluster with Raft.
//!
//! - [`core`]: the service's state machine without Raft or IO: applying a committed
//!   command to the store and the duplicate table, the answer, what a snapshot holds,
//!   when to take one, and how waiting requests are answered.
//! - [`integers`]: Maelstrom lin-kv's integer keys and values, stored as text.
//! - [`replica`]: one Raft member running a state machine: the Raft core of the
//!   `raft` crate, persisting through `raft::disk`, snapshots at `maxraftstate`, and
//!   the requests waiting for their entries. Any machine: shardkv's controller and
//!   groups run on it too.
//! - [`node`]: the service's machine on a [`replica::Replica`], as a `node::Node`.
//!
//! # Why the service is linearizable
//!
//! Every operation, reads included, is a command in the Raft log, and a client is
//! answered only when that command's entry is *committed and applied*: the reply is
//! computed from the state after exactly the commands before it in the log. Each
//! operation thus takes effect at one point, its entry's place in the log order,
//! which every replica applies identically. That point lies inside the operation's
//! interval: the entry was proposed after the request arrived (after the call) and
//! applied before the reply left (before the return). A total order consistent with
//! real time in which each reply is the sequential answer is linearizability.
//!
//! Reads must go through the log too: a node that merely *believes* it leads may have
//! been deposed by a partition, and a newer leader may have committed writes it has
//! not seen; answering from its own state would return a stale value. Committing the
//! read entry needs a majority in the leader's current term, which proves the
//! leadership at a moment inside the read's interval. (The known-bad `stale-read`
//! skips this.)
//!
//! A retry of a request already in the log is a second entry with the same
//! `(client, seq)`; the duplicate table, part of the replicated state and of every
//! snapshot, makes the second one return the first one's answer without applying
//! again. A read's retry is executed again at its own entry, which is still inside
//! the read's interval.
//!
//! # Answers
//!
//! - Not the leader: error 11 (temporarily unavailable, definite: nothing was
//!   proposed) with `"leader"` naming the leader when known.
//! - The request's index committed with another term's entry: error 11 (definite: an
//!   index commits once, so this proposal never will).
//! - Leadership lost before the entry applied, or not applied within
//!   [`core::PENDING_TIMEOUT`]: error 0 (timeout, indefinite: the entry may still
//!   commit under another leader, so the client must retry, and the duplicate table
//!   keeps the retry from applying twice).

pub mod bug;
pub mod core;
pub mod integers;
pub mod node;
pub mod replica;

pub use crate::bug::Bug;
pub use crate::core::KvState;
pub use crate::node::{KvRaftNode, Settings};

#[cfg(test)]
mod tests;
