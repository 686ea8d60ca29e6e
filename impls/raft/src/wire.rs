//! Messages between Raft peers. They are our implementation's own business (another
//! implementation may use any messages it likes between its nodes); they travel as
//! node-protocol bodies so the harness can route, drop, delay and count them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use specs::node_protocol::Body;

use crate::core::Entry;

/// A peer message. Replies carry what the sender needs to use them out of order
/// (the harness's network reorders and duplicates), so no request/reply pairing by
/// `msg_id` is needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMessage {
    RequestVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    },
    RequestVoteReply {
        term: u64,
        granted: bool,
    },
    AppendEntries {
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    AppendEntriesReply {
        term: u64,
        success: bool,
        /// On success, the last index known to match the leader's log.
        match_index: u64,
        /// On failure, the `prev_index` that did not match, and the follower's hint
        /// for the leader's fast back-up: the first index of the conflicting term
        /// (`conflict_term`), or one past the follower's log when it is too short.
        rejected: u64,
        conflict_index: u64,
        conflict_term: Option<u64>,
    },
    /// The leader's snapshot, for a follower that needs entries it has compacted.
    /// Sent whole: snapshots here are small, and 6.5840 does not chunk them either.
    InstallSnapshot {
        term: u64,
        last_index: u64,
        last_term: u64,
        data: Value,
    },
    InstallSnapshotReply {
        term: u64,
        /// The follower now stores the leader's log up to here.
        last_index: u64,
    },
}

/// The body `type`s of peer messages, so a node can tell them from client requests.
pub const TYPES: [&str; 6] = [
    "request_vote",
    "request_vote_reply",
    "append_entries",
    "append_entries_reply",
    "install_snapshot",
    "install_snapshot_reply",
];

impl PeerMessage {
    /// The sender's term, which every peer message carries.
    pub fn term(&self) -> u64 {
        match self {
            PeerMessage::RequestVote { term, .. }
            | PeerMessage::RequestVoteReply { term, .. }
            | PeerMessage::AppendEntries { term, .. }
            | PeerMessage::AppendEntriesReply { term, .. }
            | PeerMessage::InstallSnapshot { term, .. }
            | PeerMessage::InstallSnapshotReply { term, .. } => *term,
        }
    }

    pub fn to_body(&self) -> Body {
        let Value::Object(mut fields) = serde_json::to_value(self).expect("messages serialise")
        else {
            unreachable!("a tagged enum serialises to an object")
        };
        let kind = match fields.remove("type") {
            Some(Value::String(s)) => s,
            _ => unreachable!("tagged"),
        };
        Body {
            kind,
            msg_id: None,
            in_reply_to: None,
            fields,
        }
    }

    pub fn from_body(body: &Body) -> Result<PeerMessage, String> {
        let mut fields = body.fields.clone();
        fields.insert("type".into(), Value::String(body.kind.clone()));
        serde_json::from_value(Value::Object(fields))
            .map_err(|e| format!("bad {} message: {e}", body.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip() {
        let m = PeerMessage::AppendEntries {
            term: 3,
            prev_index: 1,
            prev_term: 2,
            entries: vec![Entry {
                term: 3,
                command: serde_json::json!(7),
            }],
            commit: 1,
        };
        let body = m.to_body();
        assert_eq!(body.kind, "append_entries");
        assert_eq!(PeerMessage::from_body(&body).unwrap(), m);
        let bad = Body::new("request_vote").with("term", "x");
        assert!(PeerMessage::from_body(&bad)
            .unwrap_err()
            .contains("request_vote"));
    }
}
