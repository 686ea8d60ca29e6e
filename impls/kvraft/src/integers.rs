//! Maelstrom's lin-kv clients name keys and values with integers
//! (`{"type":"write","key":0,"value":3}`), where kvsrv's protocol has strings. A
//! request whose key is an integer is in that form: its `value`, `from` and `to`
//! must be integers too, it is stored as their decimal text, and a read in that form
//! gets the value back as an integer. So the integer key 0 and the string key "0"
//! are one key; a client never mixes the two forms.

use serde_json::Value;
use specs::node_protocol::{Body, ErrorCode};

/// True when `request` names its key with an integer.
fn integer_form(request: &Body) -> bool {
    matches!(request.get("key"), Some(Value::Number(_)))
}

/// The request in kvsrv's string form (a copy when it was in the integer form), or
/// the error to answer: integer keys take integer values, and lin-kv has no append.
pub fn as_text(request: &Body) -> Result<Body, Body> {
    if !integer_form(request) {
        return Ok(request.clone());
    }
    if request.kind == "append" {
        return Err(Body::error(
            ErrorCode::MalformedRequest,
            "append takes a string key and value; integer keys are lin-kv's (read, write, cas)",
        ));
    }
    let mut text = request.clone();
    for field in ["key", "value", "from", "to"] {
        match request.get(field) {
            None => {}
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                text.fields
                    .insert(field.into(), Value::String(n.to_string()));
            }
            Some(other) => {
                return Err(Body::error(
                    ErrorCode::MalformedRequest,
                    format!(
                        "{}: with an integer key, {field:?} must be an integer too, got {other}",
                        request.kind
                    ),
                ))
            }
        }
    }
    Ok(text)
}

/// `reply` as the client that sent `request` expects it: a read in the integer form
/// gets its value as an integer (as it was written; a value written as a string,
/// which only a client mixing the forms could do, is answered as one).
pub fn answer(request: &Body, mut reply: Body) -> Body {
    if !integer_form(request) || reply.kind != "read_ok" {
        return reply;
    }
    let number = match reply.get("value") {
        Some(Value::String(s)) => (s.parse::<i64>().map(Value::from))
            .or_else(|_| s.parse::<u64>().map(Value::from))
            .ok(),
        _ => None,
    };
    if let Some(n) = number {
        reply.fields.insert("value".into(), n);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_requests_become_text_and_reads_come_back_as_integers() {
        let write = Body::new("write").with("key", 0).with("value", -3);
        let text = as_text(&write).unwrap();
        assert_eq!(text.str("key"), Some("0"));
        assert_eq!(text.str("value"), Some("-3"));
        let cas = Body::new("cas")
            .with("key", 1)
            .with("from", 2)
            .with("to", 3);
        let text = as_text(&cas).unwrap();
        assert_eq!((text.str("from"), text.str("to")), (Some("2"), Some("3")));

        let read = Body::new("read").with("key", 0);
        let reply = answer(&read, Body::new("read_ok").with("value", "-3"));
        assert_eq!(reply.get("value"), Some(&Value::from(-3)));
        let big = Body::new("write").with("key", 0).with("value", u64::MAX);
        let stored = as_text(&big).unwrap();
        let reply = answer(
            &read,
            Body::new("read_ok").with("value", stored.str("value").unwrap()),
        );
        assert_eq!(reply.get("value"), Some(&Value::from(u64::MAX)));
        // The string form is left alone.
        let read = Body::new("read").with("key", "0");
        assert_eq!(as_text(&read).unwrap(), read);
        let reply = answer(&read, Body::new("read_ok").with("value", "-3"));
        assert_eq!(reply.str("value"), Some("-3"));
    }

    #[test]
    fn mixed_or_unsupported_integer_requests_are_refused() {
        let bad = Body::new("write").with("key", 0).with("value", "a");
        let err = as_text(&bad).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::MalformedRequest));
        assert!(err.str("text").unwrap().contains("\"value\""));
        let bad = Body::new("write").with("key", 0).with("value", 1.5);
        assert!(as_text(&bad).is_err());
        let append = Body::new("append").with("key", 0).with("value", 1);
        assert!(as_text(&append).is_err());
    }
}
