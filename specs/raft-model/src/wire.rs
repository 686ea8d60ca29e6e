//! Peer messages as stateright messages. Stateright keeps the network as a set, so a
//! message must be `Eq + Hash`; the core's `PeerMessage` carries JSON commands, which
//! are neither. The model's commands and snapshots are strings and arrays of strings,
//! so hashing them by their structure is enough.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use raft::{Entry, PeerMessage};
use serde_json::Value;
use stateright::actor::Id;
use stateright::{Rewrite, RewritePlan};

/// A peer message, shared (the network clones its set on every step) and hashed
/// once, when it is sent.
#[derive(Clone)]
pub struct Wire {
    pub message: Arc<PeerMessage>,
    hash: u64,
}

impl Wire {
    pub fn new(message: PeerMessage) -> Wire {
        let mut h = DefaultHasher::new();
        hash_message(&message, &mut h);
        Wire {
            message: Arc::new(message),
            hash: h.finish(),
        }
    }
}

impl PartialEq for Wire {
    fn eq(&self, other: &Wire) -> bool {
        self.hash == other.hash && self.message == other.message
    }
}

// JSON values without floats (none in the model) compare as an equivalence.
impl Eq for Wire {}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The variant and its fields, without the wrapper: traces read as the protocol.
        write!(f, "{:?}", self.message)
    }
}

/// Peer messages name no servers (the envelope does), so renaming leaves them alone.
impl Rewrite<Id> for Wire {
    fn rewrite<S>(&self, _: &RewritePlan<Id, S>) -> Wire {
        self.clone()
    }
}

impl Hash for Wire {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.hash.hash(h);
    }
}

fn hash_message<H: Hasher>(message: &PeerMessage, h: &mut H) {
    std::mem::discriminant(message).hash(h);
    match message {
        PeerMessage::RequestVote {
            term,
            last_log_index,
            last_log_term,
        } => (term, last_log_index, last_log_term).hash(h),
        PeerMessage::RequestVoteReply { term, granted } => (term, granted).hash(h),
        PeerMessage::AppendEntries {
            term,
            prev_index,
            prev_term,
            entries,
            commit,
        } => {
            (term, prev_index, prev_term, commit).hash(h);
            hash_entries(entries, h);
        }
        PeerMessage::AppendEntriesReply {
            term,
            success,
            match_index,
            rejected,
            conflict_index,
            conflict_term,
        } => (
            term,
            success,
            match_index,
            rejected,
            conflict_index,
            conflict_term,
        )
            .hash(h),
        PeerMessage::InstallSnapshot {
            term,
            last_index,
            last_term,
            data,
        } => {
            (term, last_index, last_term).hash(h);
            hash_value(data, h);
        }
        PeerMessage::InstallSnapshotReply { term, last_index } => (term, last_index).hash(h),
    }
}

fn hash_entries<H: Hasher>(entries: &[Entry], h: &mut H) {
    entries.len().hash(h);
    for e in entries {
        e.term.hash(h);
        hash_value(&e.command, h);
    }
}

/// Hashes a JSON value by its structure (equal values hash equally).
fn hash_value<H: Hasher>(v: &Value, h: &mut H) {
    std::mem::discriminant(v).hash(h);
    match v {
        Value::Null => {}
        Value::Bool(b) => b.hash(h),
        Value::Number(n) => n.to_string().hash(h),
        Value::String(s) => s.hash(h),
        Value::Array(items) => {
            items.len().hash(h);
            items.iter().for_each(|i| hash_value(i, h));
        }
        Value::Object(map) => {
            map.len().hash(h);
            for (k, v) in map {
                k.hash(h);
                hash_value(v, h);
            }
        }
    }
}
