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
//! Reports travel through the harness's network like every message, so a test that
//! loses messages may lose reports too; the tests of this slice run the tester's
//! links reliable.
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
}
