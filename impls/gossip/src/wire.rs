//! The gossip messages as JSON: `{"type":"rumor","rumors":[{"origin","seq","text"}]}`
//! and `{"type":"status","status":{origin: seq}}`. The harness node carries them as
//! node-protocol bodies, the chat servers as lines on their TCP links.

use serde_json::{Map, Value};

use crate::core::{Rumor, Status, Wire};

/// The message type and fields of `wire`.
pub fn encode(wire: &Wire) -> (&'static str, Map<String, Value>) {
    let mut fields = Map::new();
    match wire {
        Wire::Rumors(rumors) => {
            let list = rumors
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("origin".into(), r.origin.clone().into());
                    m.insert("seq".into(), r.seq.into());
                    m.insert("text".into(), r.text.clone().into());
                    Value::Object(m)
                })
                .collect();
            fields.insert("rumors".into(), Value::Array(list));
            ("rumor", fields)
        }
        Wire::Status(status) => {
            let map = status
                .iter()
                .map(|(o, s)| (o.clone(), Value::from(*s)))
                .collect();
            fields.insert("status".into(), Value::Object(map));
            ("status", fields)
        }
    }
}

/// The gossip message of type `kind` with `fields`: `None` if `kind` is not one;
/// `Some(Err)` saying what is wrong if its fields are.
pub fn decode(kind: &str, fields: &Map<String, Value>) -> Option<Result<Wire, String>> {
    match kind {
        "rumor" => Some(decode_rumors(fields)),
        "status" => Some(decode_status(fields)),
        _ => None,
    }
}

fn decode_rumors(fields: &Map<String, Value>) -> Result<Wire, String> {
    let list = fields
        .get("rumors")
        .and_then(Value::as_array)
        .ok_or("a rumor without a \"rumors\" array")?;
    let mut rumors = Vec::with_capacity(list.len());
    for r in list {
        let origin = r.get("origin").and_then(Value::as_str);
        let seq = r.get("seq").and_then(Value::as_u64);
        let text = r.get("text").and_then(Value::as_str);
        match (origin, seq, text) {
            (Some(origin), Some(seq), Some(text)) => rumors.push(Rumor {
                origin: origin.to_string(),
                seq,
                text: text.to_string(),
            }),
            _ => return Err(format!("a rumor without origin, seq and text: {r}")),
        }
    }
    Ok(Wire::Rumors(rumors))
}

fn decode_status(fields: &Map<String, Value>) -> Result<Wire, String> {
    let map = fields
        .get("status")
        .and_then(Value::as_object)
        .ok_or("a status without a \"status\" object")?;
    let mut status = Status::new();
    for (origin, seq) in map {
        let seq = seq
            .as_u64()
            .ok_or_else(|| format!("a status with seq {seq} for {origin:?}"))?;
        status.insert(origin.clone(), seq);
    }
    Ok(Wire::Status(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_fields() {
        let wires = [
            Wire::Rumors(vec![Rumor {
                origin: "n1#0".into(),
                seq: 3,
                text: "hi, there".into(),
            }]),
            Wire::Status([("n1#0".to_string(), 3), ("n2#1".to_string(), 0)].into()),
        ];
        for w in wires {
            let (kind, fields) = encode(&w);
            assert_eq!(decode(kind, &fields), Some(Ok(w)));
        }
        let bad: Map<String, Value> = serde_json::from_str(r#"{"status":{"n1":-1}}"#).unwrap();
        assert!(matches!(decode("status", &bad), Some(Err(_))));
        let bad: Map<String, Value> =
            serde_json::from_str(r#"{"rumors":[{"origin":"n1","seq":1}]}"#).unwrap();
        assert!(matches!(decode("rumor", &bad), Some(Err(_))));
        assert_eq!(decode("read", &Map::new()), None);
    }
}
