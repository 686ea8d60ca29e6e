//! The node protocol: how the harness talks to a node of a message-passing system.
//!
//! It is Maelstrom's protocol, so a node written for Maelstrom runs unchanged, plus a few
//! opt-in extensions in `init`. A node is a process; the harness is its whole network.
//!
//! # Framing
//!
//! One JSON object per line on the node's stdin (messages to it) and stdout (messages
//! from it). stderr is the node's log: the harness saves it and never parses it.
//! Every message is an envelope `{"src", "dest", "body"}`; the body has a `type`, an
//! optional `msg_id` (unique per sender) and, in a reply, `in_reply_to` (the `msg_id`
//! of the request). Node ids are `n1, n2, ...`; harness-owned clients are
//! `c1, c2, ...`; the harness itself is [`HARNESS`].
//!
//! # Start-up
//!
//! The first line a node receives is `init`; it answers `init_ok`:
//!
//! ```text
//! -> {"src":"harness","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n2","n3"]}}
//! <- {"src":"n1","dest":"harness","body":{"type":"init_ok","in_reply_to":1}}
//! ```
//!
//! Optional fields of `init` (a node that does not know them ignores them):
//! - `data_dir`: a directory that survives a crash and restart of this node (and is
//!   wiped for an amnesia restart); the node's durable state goes there.
//! - `seed`: an integer the node should seed its random choices from, so a run replays.
//! - `lockstep`: `true` to run in simulated time, below.
//!
//! # Errors
//!
//! An error reply is `{"type":"error","in_reply_to":..,"code":..,"text":..}` with one
//! of Maelstrom's codes ([`ErrorCode`]). A *definite* error means the operation did not
//! take effect; an *indefinite* one (timeout, crash) means it may or may not have.
//!
//! # Lockstep time (the `lockstep` extension)
//!
//! In lockstep mode the node never reads its own clock. Every line the harness sends
//! carries a top-level `"now"`: the virtual time in nanoseconds. The node handles the
//! line, writes any messages it sends, and then ends the step with a `step_done`
//! message to the harness saying when it next wants to be woken (`wake_at`, virtual
//! nanoseconds, or absent/null for "only when a message comes"). When that time comes
//! the harness sends a `tick`. The node must write nothing outside a step. Because the
//! harness delivers one line at a time to one node and waits for `step_done`, a whole
//! cluster runs as one deterministic sequence of steps: the same seed replays it.
//!
//! ```text
//! -> {"src":"harness","dest":"n1","now":0,"body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"],"lockstep":true,"seed":7}}
//! <- {"src":"n1","dest":"harness","body":{"type":"init_ok","in_reply_to":1}}
//! <- {"src":"n1","dest":"harness","body":{"type":"step_done","wake_at":null}}
//! -> {"src":"c1","dest":"n1","now":1500000,"body":{"type":"write","msg_id":1,"key":"x","value":"a"}}
//! <- {"src":"n1","dest":"c1","body":{"type":"write_ok","in_reply_to":1,"msg_id":1}}
//! <- {"src":"n1","dest":"harness","body":{"type":"step_done","wake_at":101500000}}
//! -> {"src":"harness","dest":"n1","now":101500000,"body":{"type":"tick"}}
//! <- {"src":"n1","dest":"harness","body":{"type":"step_done","wake_at":null}}
//! ```
//!
//! A lockstep node may also say, with `"pipeline": true` in its `init_ok`, that it
//! reads its stdin as a stream: it takes each line as its own step, in order, whether
//! or not more lines have arrived behind it (any buffered line reader does). The
//! harness may then write several lines to it at once, deliveries due at the same
//! virtual time, before it reads their `step_done`s; the node answers them exactly as
//! above, one step after another, and the run is the same as line by line, only with
//! fewer process switches. Without the field, lines come one at a time.
//!
//! ```text
//! <- {"src":"n1","dest":"harness","body":{"type":"init_ok","in_reply_to":1,"pipeline":true}}
//! ```
//!
//! Without `lockstep` the node runs on its own clock and timers, exactly as under
//! Maelstrom, and the harness delivers messages when their simulated delay has passed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::json;

/// The address of the harness itself (init, ticks, step_done).
pub const HARNESS: &str = "harness";

/// One line of the protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub src: String,
    pub dest: String,
    /// Virtual time in nanoseconds, present only on lines to a node in lockstep mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<u64>,
    pub body: Body,
}

impl Message {
    /// The message as one line of the protocol (without the newline): the bytes
    /// `serde_json::to_string` gives, written faster (see [`crate::json`]).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("{\"src\":");
        json::push_str(&mut out, &self.src);
        out.push_str(",\"dest\":");
        json::push_str(&mut out, &self.dest);
        if let Some(now) = self.now {
            out.push_str(",\"now\":");
            json::push_u64(&mut out, now);
        }
        out.push_str(",\"body\":");
        self.body.push_json(&mut out);
        out.push('}');
        out
    }
}

/// A message body: its `type`, the ids that pair requests with replies, and the
/// type's own fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Body {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<u64>,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Body {
    pub fn new(kind: impl Into<String>) -> Body {
        Body {
            kind: kind.into(),
            ..Body::default()
        }
    }

    /// Adds a field (builder style).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Body {
        self.fields.insert(name.to_string(), value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    pub fn u64(&self, name: &str) -> Option<u64> {
        self.fields.get(name).and_then(Value::as_u64)
    }

    /// The body as JSON: the bytes `serde_json::to_string` gives, written faster
    /// (see [`crate::json`]).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        self.push_json(&mut out);
        out
    }

    fn push_json(&self, out: &mut String) {
        out.push_str("{\"type\":");
        json::push_str(out, &self.kind);
        if let Some(id) = self.msg_id {
            out.push_str(",\"msg_id\":");
            json::push_u64(out, id);
        }
        if let Some(id) = self.in_reply_to {
            out.push_str(",\"in_reply_to\":");
            json::push_u64(out, id);
        }
        for (name, value) in &self.fields {
            out.push(',');
            json::push_str(out, name);
            out.push(':');
            json::push_value(out, value);
        }
        out.push('}');
    }

    /// An `error` body with `code` and `text`; the sender adds `in_reply_to`, as to any
    /// reply.
    pub fn error(code: ErrorCode, text: impl Into<String>) -> Body {
        Body::new("error")
            .with("code", code.code())
            .with("text", text.into())
    }

    /// The error code of an `error` body, if this is one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        if self.kind != "error" {
            return None;
        }
        self.u64("code").map(ErrorCode::from_code)
    }
}

/// The `init` message's fields, including the opt-in extensions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Init {
    pub node_id: String,
    pub node_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// A seed for the node's own randomness (election timeouts, peers to gossip
    /// with): the harness draws one for each node from the run's seed, unrelated to
    /// the other nodes', and gives it to every process of that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lockstep: bool,
}

impl Init {
    /// Reads an `init` body; `None` if it lacks `node_id` or `node_ids`.
    pub fn from_body(body: &Body) -> Result<Init, String> {
        if body.kind != "init" {
            return Err(format!("expected an init message, got {:?}", body.kind));
        }
        serde_json::from_value(Value::Object(body.fields.clone()))
            .map_err(|e| format!("malformed init: {e}"))
    }

    /// The `init` body the harness sends.
    pub fn to_body(&self, msg_id: u64) -> Body {
        let Value::Object(fields) = serde_json::to_value(self).expect("init serialises") else {
            unreachable!("a struct serialises to an object")
        };
        Body {
            kind: "init".into(),
            msg_id: Some(msg_id),
            in_reply_to: None,
            fields,
        }
    }
}

/// Maelstrom's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: the request timed out; it may have taken effect (indefinite).
    Timeout,
    /// 1: the destination node does not exist.
    NodeNotFound,
    /// 10: the request type is not supported.
    NotSupported,
    /// 11: the operation could not be done now but may be later; it did not happen.
    TemporarilyUnavailable,
    /// 12: the request is malformed.
    MalformedRequest,
    /// 13: the node crashed while handling it; it may have taken effect (indefinite).
    Crash,
    /// 14: the operation was aborted and did not happen.
    Abort,
    /// 20: the key does not exist.
    KeyDoesNotExist,
    /// 21: the key already exists.
    KeyAlreadyExists,
    /// 22: a precondition (a cas's `from`) did not hold.
    PreconditionFailed,
    /// 30: a transaction conflicted and was aborted.
    TxnConflict,
    /// Any other code; Maelstrom leaves codes >= 1000 to applications, and treats them
    /// as indefinite.
    Other(u64),
}

impl ErrorCode {
    pub fn code(self) -> u64 {
        match self {
            ErrorCode::Timeout => 0,
            ErrorCode::NodeNotFound => 1,
            ErrorCode::NotSupported => 10,
            ErrorCode::TemporarilyUnavailable => 11,
            ErrorCode::MalformedRequest => 12,
            ErrorCode::Crash => 13,
            ErrorCode::Abort => 14,
            ErrorCode::KeyDoesNotExist => 20,
            ErrorCode::KeyAlreadyExists => 21,
            ErrorCode::PreconditionFailed => 22,
            ErrorCode::TxnConflict => 30,
            ErrorCode::Other(code) => code,
        }
    }

    pub fn from_code(code: u64) -> ErrorCode {
        match code {
            0 => ErrorCode::Timeout,
            1 => ErrorCode::NodeNotFound,
            10 => ErrorCode::NotSupported,
            11 => ErrorCode::TemporarilyUnavailable,
            12 => ErrorCode::MalformedRequest,
            13 => ErrorCode::Crash,
            14 => ErrorCode::Abort,
            20 => ErrorCode::KeyDoesNotExist,
            21 => ErrorCode::KeyAlreadyExists,
            22 => ErrorCode::PreconditionFailed,
            30 => ErrorCode::TxnConflict,
            other => ErrorCode::Other(other),
        }
    }

    /// True when the same request may succeed later (11, temporarily unavailable: a
    /// node still electing a leader, say): clients retry it with backoff instead of
    /// recording a failure.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::TemporarilyUnavailable)
    }

    /// True when the error guarantees the operation did not take effect.
    pub fn is_definite(self) -> bool {
        !matches!(
            self,
            ErrorCode::Timeout | ErrorCode::Crash | ErrorCode::Other(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_with_extra_fields() {
        let line =
            r#"{"src":"c1","dest":"n1","body":{"type":"write","msg_id":3,"key":"x","value":"a"}}"#;
        let msg: Message = serde_json::from_str(line).unwrap();
        assert_eq!(msg.body.kind, "write");
        assert_eq!(msg.body.msg_id, Some(3));
        assert_eq!(msg.body.str("key"), Some("x"));
        assert_eq!(msg.now, None);
        let back: Value = serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(line).unwrap());
    }

    #[test]
    fn to_json_writes_what_serde_json_writes() {
        let mut reply = Message {
            src: "n1".into(),
            dest: "c\"7".into(),
            now: None,
            body: Body {
                in_reply_to: Some(4),
                ..Body::new("append_ok")
                    .with("value", "a\nb\u{1}é".repeat(100))
                    .with("list", serde_json::json!([1, -2, 0.5, null, {"k": true}]))
            },
        };
        for now in [None, Some(0), Some(u64::MAX)] {
            reply.now = now;
            reply.body.msg_id = now;
            assert_eq!(reply.to_json(), serde_json::to_string(&reply).unwrap());
            assert_eq!(
                reply.body.to_json(),
                serde_json::to_string(&reply.body).unwrap()
            );
        }
        let plain = Body::new("tick");
        assert_eq!(plain.to_json(), r#"{"type":"tick"}"#);
    }

    #[test]
    fn init_extensions_are_optional() {
        let plain: Message = serde_json::from_str(
            r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n2"]}}"#,
        )
        .unwrap();
        let init = Init::from_body(&plain.body).unwrap();
        assert_eq!(init.node_ids, ["n1", "n2"]);
        assert!(!init.lockstep && init.seed.is_none() && init.data_dir.is_none());
        let ext = Init {
            lockstep: true,
            seed: Some(9),
            ..init
        };
        assert_eq!(Init::from_body(&ext.to_body(1)).unwrap(), ext);
        assert!(Init::from_body(&Body::new("init").with("node_id", "n1")).is_err());
    }

    #[test]
    fn definite_and_indefinite_codes() {
        for code in [0, 1, 10, 11, 12, 13, 14, 20, 21, 22, 30, 1005] {
            assert_eq!(ErrorCode::from_code(code).code(), code);
        }
        assert!(!ErrorCode::Timeout.is_definite());
        assert!(!ErrorCode::Crash.is_definite());
        assert!(!ErrorCode::Other(1000).is_definite());
        assert!(ErrorCode::PreconditionFailed.is_definite());
        assert!(ErrorCode::TemporarilyUnavailable.is_definite());
        assert!(ErrorCode::TemporarilyUnavailable.is_retryable());
        assert!(!ErrorCode::PreconditionFailed.is_retryable());
        assert!(!ErrorCode::Timeout.is_retryable());
        let err = Body::error(ErrorCode::KeyDoesNotExist, "no such key");
        assert_eq!(err.error_code(), Some(ErrorCode::KeyDoesNotExist));
    }
}
