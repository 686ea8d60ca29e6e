//! The Raft test interface: what a Raft node must speak so the conformance suite can
//! test it (the equivalent of 6.5840's `Make`/`Start`/`GetState`/`applyCh`).
//!
//! A Raft node is a node-protocol process ([`crate::node_protocol`]): the harness
//! starts `n1..nN`, sends `init` (with `data_dir`, `seed` and, in simulated time,
//! `lockstep`) and routes every message between nodes, so messages between peers are
//! the implementation's own business and may have any `type` not listed here. The
//! suite drives the nodes from one endpoint, [`TESTER`].
//!
//! # Requests (tester -> node; the node answers the request's `src`)
//!
//! `start`: append `command` (any JSON value) to the log if this node is leader.
//! Answered at once, before the command commits; `index` and `term` are where it will
//! commit if it ever does, and are meaningless when `is_leader` is false.
//!
//! ```text
//! -> {"src":"tester","dest":"n1","body":{"type":"start","msg_id":4,"command":101}}
//! <- {"src":"n1","dest":"tester","body":{"type":"start_ok","in_reply_to":4,"index":1,"term":1,"is_leader":true}}
//! ```
//!
//! `get_state`: the node's current term and whether it believes it is leader.
//!
//! ```text
//! -> {"src":"tester","dest":"n2","body":{"type":"get_state","msg_id":5}}
//! <- {"src":"n2","dest":"tester","body":{"type":"get_state_ok","in_reply_to":5,"term":1,"is_leader":false}}
//! ```
//!
//! # Reports (node -> tester, unsolicited)
//!
//! `applied`: entries this node applied (committed, in index order, each index once per
//! process run; a restarted node applies again from its first entry). Several may
//! come in one message.
//!
//! ```text
//! <- {"src":"n1","dest":"tester","body":{"type":"applied","entries":[{"index":1,"term":1,"command":101}]}}
//! ```
//!
//! `leader`: this node has just become leader of `term`. The suite uses it to check
//! "at most one leader per term" continuously, not only when it asks.
//!
//! ```text
//! <- {"src":"n1","dest":"tester","body":{"type":"leader","term":1}}
//! ```
//!
//! `snapshot`: this node's service state was replaced by a snapshot: one installed
//! from the leader, or, right after start-up, the one this node restarts from (the
//! tester cannot read the node's data dir, whose format is the implementation's own,
//! so a restarted node must say where it stands before it applies anything). `data`
//! is exactly what the tester sent in a `snapshot` request (below), to some node;
//! entries applied afterwards continue from `index + 1`.
//!
//! ```text
//! <- {"src":"n3","dest":"tester","body":{"type":"snapshot","index":9,"term":1,"data":[101,102,103,104,105,106,107,108,109]}}
//! ```
//!
//! # Log compaction (6.5840's 3D)
//!
//! A test that compacts acts as the service: when a node reports it applied an index
//! `i` with `(i + 1) % 10 == 0`, the tester sends that node `snapshot` with `index` and
//! the service state through `i` as `data` (any JSON value; the tester's is the list
//! of commands applied at indices 1..=i). The node must discard its log through
//! `index`, keep `data`, and persist both; it may answer `snapshot_ok` once both are
//! durable (6.5840's `Snapshot` returns after `persister.Save`), or an error with code
//! 22 (precondition failed) if it has not applied `index` in this process run. The
//! tester does not wait for the answer.
//!
//! ```text
//! -> {"src":"tester","dest":"n1","body":{"type":"snapshot","msg_id":31,"index":9,"data":[101,102,103,104,105,106,107,108,109]}}
//! <- {"src":"n1","dest":"tester","body":{"type":"snapshot_ok","in_reply_to":31}}
//! ```
//!
//! `persisted_size`: how many bytes of Raft state (term, vote, log: everything but the
//! snapshot) and of snapshot the node last made durable. 6.5840 bounds the Raft state
//! at 2,000 bytes while snapshots are taken every 10 entries. The tester reads the
//! sizes only from this answer, so it also holds each answer to a floor: at least a
//! byte of Raft state for each entry the log must still hold (applied, and past every
//! index the node was asked to snapshot at or installed a snapshot through), and at
//! least a byte of snapshot for each command of the largest snapshot it confirmed
//! (`snapshot_ok`, or a `snapshot` report). However a node encodes them, it cannot
//! keep them in less.
//!
//! ```text
//! -> {"src":"tester","dest":"n1","body":{"type":"persisted_size","msg_id":32}}
//! <- {"src":"n1","dest":"tester","body":{"type":"persisted_size_ok","in_reply_to":32,"raft_state":412,"snapshot":88}}
//! ```
//!
//! # The tester's links
//!
//! The tester stands for the service running beside each node (6.5840's `applyCh` is
//! a channel in the same process), so its links are exempt from the network's loss,
//! duplication, reordering and variable delay: requests and reports arrive once, in
//! order. Links between nodes get every fault.
//!
//! # Timing expectations (from 6.5840)
//!
//! A leader is elected within 5 s of a majority being able to talk, and a command
//! started on a connected leader commits within 2 s. A leader sends at most ten
//! heartbeats a second, so an idle 3-node cluster exchanges at most 60 requests per
//! second. Time is virtual in simulated runs, so these bounds cost no wall time.

use serde_json::Value;

use crate::node_protocol::Body;

/// The endpoint that sends requests and receives reports.
pub const TESTER: &str = "tester";

/// A `start` request.
pub fn start(msg_id: u64, command: Value) -> Body {
    Body {
        msg_id: Some(msg_id),
        ..Body::new("start").with("command", command)
    }
}

/// A `get_state` request.
pub fn get_state(msg_id: u64) -> Body {
    Body {
        msg_id: Some(msg_id),
        ..Body::new("get_state")
    }
}

/// An answer to `start`: `(index, term, is_leader)`.
pub fn parse_start_ok(body: &Body) -> Result<(u64, u64, bool), String> {
    if body.kind != "start_ok" {
        return Err(format!("expected start_ok, got {:?}", body.kind));
    }
    let is_leader = body
        .get("is_leader")
        .and_then(Value::as_bool)
        .ok_or("start_ok without a boolean is_leader")?;
    let index = body.u64("index").unwrap_or(0);
    let term = body.u64("term").unwrap_or(0);
    if is_leader && (index == 0 || term == 0) {
        return Err(format!(
            "start_ok from a leader needs index and term >= 1: {body:?}"
        ));
    }
    Ok((index, term, is_leader))
}

/// An answer to `get_state`: `(term, is_leader)`.
pub fn parse_get_state_ok(body: &Body) -> Result<(u64, bool), String> {
    if body.kind != "get_state_ok" {
        return Err(format!("expected get_state_ok, got {:?}", body.kind));
    }
    let term = body.u64("term").ok_or("get_state_ok without a term")?;
    let is_leader = body
        .get("is_leader")
        .and_then(Value::as_bool)
        .ok_or("get_state_ok without a boolean is_leader")?;
    Ok((term, is_leader))
}

/// One applied entry from an `applied` report.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub index: u64,
    pub term: u64,
    pub command: Value,
}

/// The entries of an `applied` report.
pub fn parse_applied(body: &Body) -> Result<Vec<Applied>, String> {
    let entries = body
        .get("entries")
        .and_then(Value::as_array)
        .ok_or("applied without an entries array")?;
    entries
        .iter()
        .map(|e| {
            let index = e.get("index").and_then(Value::as_u64);
            let term = e.get("term").and_then(Value::as_u64);
            match (index, term, e.get("command")) {
                (Some(index), Some(term), Some(command)) if index > 0 => Ok(Applied {
                    index,
                    term,
                    command: command.clone(),
                }),
                _ => Err(format!(
                    "applied entry needs index >= 1, term and command: {e}"
                )),
            }
        })
        .collect()
}

/// An `applied` report body (for implementations in Rust).
pub fn applied(entries: &[Applied]) -> Body {
    let list: Vec<Value> = entries
        .iter()
        .map(|a| serde_json::json!({"index": a.index, "term": a.term, "command": a.command}))
        .collect();
    Body::new("applied").with("entries", list)
}

/// A `leader` report body.
pub fn leader(term: u64) -> Body {
    Body::new("leader").with("term", term)
}

/// A `snapshot` request: the service's state through `index` is `data`.
pub fn snapshot_request(msg_id: u64, index: u64, data: Value) -> Body {
    Body {
        msg_id: Some(msg_id),
        ..Body::new("snapshot")
            .with("index", index)
            .with("data", data)
    }
}

/// The fields of a `snapshot` request: `(index, data)`.
pub fn parse_snapshot_request(body: &Body) -> Result<(u64, Value), String> {
    match (body.u64("index"), body.get("data")) {
        (Some(index), Some(data)) if index > 0 => Ok((index, data.clone())),
        _ => Err("snapshot needs an index >= 1 and a data field".into()),
    }
}

/// A `snapshot` report: the node's service state is now `data`, through `index`.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotReport {
    pub index: u64,
    pub term: u64,
    pub data: Value,
}

/// A `snapshot` report body (for implementations in Rust).
pub fn snapshot_report(report: &SnapshotReport) -> Body {
    Body::new("snapshot")
        .with("index", report.index)
        .with("term", report.term)
        .with("data", report.data.clone())
}

pub fn parse_snapshot_report(body: &Body) -> Result<SnapshotReport, String> {
    match (body.u64("index"), body.u64("term"), body.get("data")) {
        (Some(index), Some(term), Some(data)) if index > 0 => Ok(SnapshotReport {
            index,
            term,
            data: data.clone(),
        }),
        _ => Err(format!(
            "a snapshot report needs index >= 1, term and data: {body:?}"
        )),
    }
}

/// A `persisted_size` request.
pub fn persisted_size(msg_id: u64) -> Body {
    Body {
        msg_id: Some(msg_id),
        ..Body::new("persisted_size")
    }
}

/// An answer to `persisted_size`: `(raft_state, snapshot)` bytes.
pub fn parse_persisted_size_ok(body: &Body) -> Result<(u64, u64), String> {
    if body.kind != "persisted_size_ok" {
        return Err(format!("expected persisted_size_ok, got {body:?}"));
    }
    match (body.u64("raft_state"), body.u64("snapshot")) {
        (Some(r), Some(s)) => Ok((r, s)),
        _ => Err(format!(
            "persisted_size_ok needs integer raft_state and snapshot: {body:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_round_trip_and_bad_ones_are_named() {
        let a = Applied {
            index: 3,
            term: 2,
            command: json!("x"),
        };
        assert_eq!(
            parse_applied(&applied(std::slice::from_ref(&a))).unwrap(),
            vec![a]
        );
        let bad =
            Body::new("applied").with("entries", json!([{"index": 0, "term": 1, "command": 1}]));
        assert!(parse_applied(&bad).unwrap_err().contains("index >= 1"));
        let ok = Body::new("start_ok")
            .with("index", 0)
            .with("term", 0)
            .with("is_leader", true);
        assert!(parse_start_ok(&ok).is_err());
        let not = Body::new("start_ok").with("is_leader", false);
        assert_eq!(parse_start_ok(&not).unwrap(), (0, 0, false));
        let state = Body::new("get_state_ok")
            .with("term", 4)
            .with("is_leader", true);
        assert_eq!(parse_get_state_ok(&state).unwrap(), (4, true));
    }

    #[test]
    fn snapshot_messages_round_trip_and_bad_ones_are_named() {
        let report = SnapshotReport {
            index: 9,
            term: 2,
            data: json!([1, 2]),
        };
        assert_eq!(
            parse_snapshot_report(&snapshot_report(&report)).unwrap(),
            report
        );
        let no_data = Body::new("snapshot").with("index", 3).with("term", 1);
        assert!(parse_snapshot_report(&no_data)
            .unwrap_err()
            .contains("data"));
        let request = snapshot_request(4, 9, json!("s"));
        assert_eq!(parse_snapshot_request(&request).unwrap(), (9, json!("s")));
        assert!(parse_snapshot_request(&Body::new("snapshot").with("index", 0)).is_err());
        let size = Body::new("persisted_size_ok")
            .with("raft_state", 10)
            .with("snapshot", 0);
        assert_eq!(parse_persisted_size_ok(&size).unwrap(), (10, 0));
        assert!(parse_persisted_size_ok(&Body::new("persisted_size_ok")).is_err());
    }
}
