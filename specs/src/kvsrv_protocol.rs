//! The key/value server's requests and replies on the [node protocol](crate::node_protocol).
//!
//! Operations are Maelstrom's `lin-kv` (read, write, cas), so a Maelstrom lin-kv node
//! can be plugged in, plus `append`, which returns the value before it. The sequential
//! specification is [`KvFetchAppend`](crate::KvFetchAppend); values are strings.
//!
//! | request | reply | errors |
//! |---|---|---|
//! | `{"type":"read","key":k}` | `{"type":"read_ok","value":v}` | 20 if `k` is absent |
//! | `{"type":"write","key":k,"value":v}` | `{"type":"write_ok"}` | |
//! | `{"type":"cas","key":k,"from":a,"to":b}` | `{"type":"cas_ok"}` | 20 if absent, 22 if the value is not `a` |
//! | `{"type":"append","key":k,"value":v}` | `{"type":"append_ok","value":old}` (`null` if absent) | |
//!
//! # Exactly once
//!
//! Requests from the harness's clients also carry `"client"` (an integer naming the
//! client) and `"seq"` (1, 2, 3... per client). A client has one request outstanding
//! and resends it, with the same `seq`, until it gets a reply, so the network may
//! deliver it any number of times. The server must make each `(client, seq)` take
//! effect once and answer every copy with the first answer. Sending `seq + 1` tells
//! the server the client has the answer to `seq`, so the server needs to remember only
//! the last answer of each client, and must keep that small: an append's answer is a
//! prefix of a value the server already holds, so it must not be copied per request.
//! A copy with a `seq` older than the client's latest is a stale duplicate and may be
//! ignored. Requests without `client` (Maelstrom's own clients) are simply executed.
//!
//! ```text
//! -> {"src":"c1","dest":"n1","body":{"type":"append","msg_id":4,"key":"x","value":"b","client":1,"seq":2}}
//! <- {"src":"n1","dest":"c1","body":{"type":"append_ok","in_reply_to":4,"value":"a"}}
//! -> {"src":"c1","dest":"n1","body":{"type":"append","msg_id":5,"key":"x","value":"b","client":1,"seq":2}}
//! <- {"src":"n1","dest":"c1","body":{"type":"append_ok","in_reply_to":5,"value":"a"}}
//! ```
//!
//! (the resent append is not applied again, and gets the same answer: `"a"`).

use serde_json::Value;

use crate::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use crate::node_protocol::{Body, ErrorCode};

/// Who sent a request, for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    pub client: u64,
    pub seq: u64,
}

/// The body of a request for `input`, tagged with `id` when given.
pub fn request_body(input: &FetchAppendInput, id: Option<RequestId>) -> Body {
    let body = match input {
        FetchAppendInput::Get { key } => Body::new("read").with("key", key.as_str()),
        FetchAppendInput::Put { key, value } => Body::new("write")
            .with("key", key.as_str())
            .with("value", value.as_str()),
        FetchAppendInput::Append { key, value } => Body::new("append")
            .with("key", key.as_str())
            .with("value", value.as_str()),
        FetchAppendInput::Cas { key, from, to } => Body::new("cas")
            .with("key", key.as_str())
            .with("from", from.as_str())
            .with("to", to.as_str()),
    };
    match id {
        Some(id) => body.with("client", id.client).with("seq", id.seq),
        None => body,
    }
}

/// Reads a request: the operation and its id, or the error to answer with.
pub fn parse_request(body: &Body) -> Result<(FetchAppendInput, Option<RequestId>), Body> {
    let field = |name: &str| -> Result<String, Body> {
        match body.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(Body::error(
                ErrorCode::MalformedRequest,
                format!(
                    "{}: field {name:?} must be a string, got {other}",
                    body.kind
                ),
            )),
            None => Err(Body::error(
                ErrorCode::MalformedRequest,
                format!("{}: missing field {name:?}", body.kind),
            )),
        }
    };
    let input = match body.kind.as_str() {
        "read" => FetchAppendInput::Get { key: field("key")? },
        "write" => FetchAppendInput::Put {
            key: field("key")?,
            value: field("value")?,
        },
        "append" => FetchAppendInput::Append {
            key: field("key")?,
            value: field("value")?,
        },
        "cas" => FetchAppendInput::Cas {
            key: field("key")?,
            from: field("from")?,
            to: field("to")?,
        },
        other => {
            return Err(Body::error(
                ErrorCode::NotSupported,
                format!("unknown request type {other:?}"),
            ))
        }
    };
    let id = match (body.get("client"), body.get("seq")) {
        (None, None) => None,
        (Some(c), Some(s)) => match (c.as_u64(), s.as_u64()) {
            (Some(client), Some(seq)) => Some(RequestId { client, seq }),
            _ => {
                return Err(Body::error(
                    ErrorCode::MalformedRequest,
                    "\"client\" and \"seq\" must be non-negative integers",
                ))
            }
        },
        _ => {
            return Err(Body::error(
                ErrorCode::MalformedRequest,
                "\"client\" and \"seq\" come together",
            ))
        }
    };
    Ok((input, id))
}

/// The reply to a read of `key`, which is absent (error 20).
pub fn no_such_key(key: &str) -> Body {
    Body::error(ErrorCode::KeyDoesNotExist, format!("no key {key:?}"))
}

/// The reply to a cas that did not swap: `code` is 20 (the key is absent) or 22 (its
/// value is not `from`). The text is free-form; only the code is read.
pub fn cas_refused(code: ErrorCode) -> Body {
    let text = match code {
        ErrorCode::KeyDoesNotExist => "no such key",
        _ => "current value is not \"from\"",
    };
    Body::error(code, text)
}

/// What a reply says about the operation.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyOutcome {
    /// It happened, with this output.
    Ok(FetchAppendOutput),
    /// A definite error: it did not happen.
    Fail(String),
    /// A definite error that says to try again (11, temporarily unavailable).
    Retry(String),
    /// An indefinite error: it may have happened.
    Unknown(String),
    /// Not an answer the protocol allows (a reply of the wrong type, a value of the
    /// wrong kind): a protocol error of the node, whatever happened to the operation.
    Invalid(String),
}

/// Interprets `reply` to a request for `input`. Maelstrom's "key does not exist" on a
/// read is a read of null, and on a cas (like "precondition failed") a cas that did not
/// swap: both are outputs of the spec, not failures.
pub fn reply_outcome(input: &FetchAppendInput, reply: &Body) -> ReplyOutcome {
    let value = || -> Result<Option<String>, String> {
        match reply.get("value") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("reply value must be a string or null, got {other}")),
        }
    };
    let ok = |value, ok| ReplyOutcome::Ok(FetchAppendOutput { value, ok });
    if let Some(code) = reply.error_code() {
        let text = format!(
            "error {} {}",
            code.code(),
            reply.str("text").unwrap_or_default()
        );
        return match (input, code) {
            (FetchAppendInput::Get { .. }, ErrorCode::KeyDoesNotExist) => ok(None, None),
            (
                FetchAppendInput::Cas { .. },
                ErrorCode::KeyDoesNotExist | ErrorCode::PreconditionFailed,
            ) => ok(None, Some(false)),
            (_, code) if code.is_retryable() => ReplyOutcome::Retry(text),
            (_, code) if code.is_definite() => ReplyOutcome::Fail(text),
            _ => ReplyOutcome::Unknown(text),
        };
    }
    let expected = match input {
        FetchAppendInput::Get { .. } => "read_ok",
        FetchAppendInput::Put { .. } => "write_ok",
        FetchAppendInput::Append { .. } => "append_ok",
        FetchAppendInput::Cas { .. } => "cas_ok",
    };
    if reply.kind != expected {
        return ReplyOutcome::Invalid(format!(
            "expected {expected} or error, got {:?}",
            reply.kind
        ));
    }
    match input {
        FetchAppendInput::Get { .. } | FetchAppendInput::Append { .. } => match value() {
            Ok(v) => ok(v, None),
            Err(e) => ReplyOutcome::Invalid(e),
        },
        FetchAppendInput::Put { .. } => ok(None, None),
        FetchAppendInput::Cas { .. } => ok(None, Some(true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let inputs = [
            FetchAppendInput::Get { key: "k".into() },
            FetchAppendInput::Put {
                key: "k".into(),
                value: "v".into(),
            },
            FetchAppendInput::Append {
                key: "k".into(),
                value: "v".into(),
            },
            FetchAppendInput::Cas {
                key: "k".into(),
                from: "a".into(),
                to: "b".into(),
            },
        ];
        let id = RequestId { client: 3, seq: 9 };
        for input in inputs {
            assert_eq!(
                parse_request(&request_body(&input, Some(id))).unwrap(),
                (input.clone(), Some(id))
            );
            assert_eq!(
                parse_request(&request_body(&input, None)).unwrap(),
                (input, None)
            );
        }
    }

    #[test]
    fn bad_requests_get_clear_errors() {
        let err = parse_request(&Body::new("write").with("key", "k")).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::MalformedRequest));
        assert!(err.str("text").unwrap().contains("value"));
        let err = parse_request(&Body::new("frob")).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::NotSupported));
        let err = parse_request(&Body::new("read").with("key", "k").with("client", 1)).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::MalformedRequest));
    }

    #[test]
    fn maelstrom_errors_map_to_outputs() {
        let get = FetchAppendInput::Get { key: "k".into() };
        let missing = Body::error(ErrorCode::KeyDoesNotExist, "");
        assert_eq!(
            reply_outcome(&get, &missing),
            ReplyOutcome::Ok(FetchAppendOutput::default())
        );
        let cas = FetchAppendInput::Cas {
            key: "k".into(),
            from: "a".into(),
            to: "b".into(),
        };
        let failed = Body::error(ErrorCode::PreconditionFailed, "");
        assert!(matches!(reply_outcome(&cas, &failed), ReplyOutcome::Ok(o) if o.ok == Some(false)));
        assert!(matches!(
            reply_outcome(&get, &Body::error(ErrorCode::Crash, "")),
            ReplyOutcome::Unknown(_)
        ));
        assert!(matches!(
            reply_outcome(&get, &Body::error(ErrorCode::Abort, "")),
            ReplyOutcome::Fail(_)
        ));
        let read_ok = Body::new("read_ok").with("value", "x");
        assert!(
            matches!(reply_outcome(&get, &read_ok), ReplyOutcome::Ok(o) if o.value.as_deref() == Some("x"))
        );
        assert!(matches!(
            reply_outcome(&get, &Body::error(ErrorCode::TemporarilyUnavailable, "")),
            ReplyOutcome::Retry(_)
        ));
    }

    /// A reply of the wrong type, or with a value of the wrong kind, is the node
    /// breaking the protocol, not an operation of unknown outcome.
    #[test]
    fn wrong_replies_are_protocol_errors() {
        let get = FetchAppendInput::Get { key: "k".into() };
        assert!(matches!(
            reply_outcome(&get, &Body::new("write_ok")),
            ReplyOutcome::Invalid(e) if e.contains("read_ok")
        ));
        assert!(matches!(
            reply_outcome(&get, &Body::new("read_ok").with("value", 3)),
            ReplyOutcome::Invalid(_)
        ));
    }
}
