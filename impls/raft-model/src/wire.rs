//! Peer messages as stateright messages. Stateright keeps the network as a set, so a
//! message must be `Eq + Hash`; the core's `PeerMessage` carries JSON commands, which
//! are neither.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use raft::PeerMessage;
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
        // Its JSON (what the node would send) stands for it: equal messages have equal
        // JSON, and this happens once a message.
        let mut h = DefaultHasher::new();
        serde_json::to_vec(&message)
            .expect("peer messages serialise")
            .hash(&mut h);
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
