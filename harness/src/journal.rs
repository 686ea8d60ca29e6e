//! The message journal: everything the harness did and saw, one JSON object a line.
//!
//! In simulated time the journal is a pure function of the seed and the
//! implementation, so two runs with one seed must produce the same bytes; a test
//! checks exactly that. It therefore holds virtual times and message contents only,
//! never wall-clock times, process ids or paths.

use serde_json::{json, Value};

/// Longest message body recorded in full.
pub const MAX_RAW: usize = 4096;

#[derive(Debug, Default)]
pub struct Journal {
    text: String,
    entries: u64,
}

impl Journal {
    pub fn new() -> Journal {
        Journal::default()
    }

    /// Appends `{"t": time, "ev": event, ...fields}`.
    pub fn record(&mut self, time: u64, event: &str, fields: Value) {
        let mut entry = json!({ "t": time, "ev": event });
        if let (Value::Object(entry), Value::Object(fields)) = (&mut entry, fields) {
            entry.extend(fields);
        }
        self.text.push_str(&entry.to_string());
        self.text.push('\n');
        self.entries += 1;
    }

    /// Like [`Journal::record`], plus a field `name` holding `raw`, which must be JSON
    /// already (a message body serialised once for both counting and recording).
    /// Bodies over [`MAX_RAW`] bytes are recorded as their length and a hash, which
    /// still tells two runs apart but keeps megabyte values out of the journal.
    pub fn record_raw(&mut self, time: u64, event: &str, fields: Value, name: &str, raw: &str) {
        let mut entry = json!({ "t": time, "ev": event });
        if let (Value::Object(entry), Value::Object(fields)) = (&mut entry, fields) {
            entry.extend(fields);
        }
        let mut line = entry.to_string();
        line.pop();
        line.push_str(&format!(",{}:", Value::from(name)));
        if raw.len() <= MAX_RAW {
            line.push_str(raw);
        } else {
            let digest = format!("{:016x}", digest(raw.as_bytes()));
            line.push_str(&json!({"bytes": raw.len(), "digest": digest}).to_string());
        }
        line.push('}');
        self.text.push_str(&line);
        self.text.push('\n');
        self.entries += 1;
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }
}

/// FNV-1a over 8-byte words: a stable fingerprint (unlike std's hashers, the same
/// in every build), fast enough for megabyte bodies.
fn digest(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        h = (h ^ word).wrapping_mul(0x100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h ^ bytes.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_lines_of_json() {
        let mut j = Journal::new();
        j.record(5, "send", json!({"src": "c1", "dest": "n1"}));
        j.record(7, "nemesis", json!({"what": "isolate n1"}));
        let lines: Vec<Value> = j
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["t"], 5);
        assert_eq!(lines[1]["what"], "isolate n1");
        assert_eq!(j.entries(), 2);
        j.record_raw(9, "send", json!({"id": 1}), "body", r#"{"type":"x"}"#);
        let big = format!("{{\"v\":\"{}\"}}", "a".repeat(MAX_RAW));
        j.record_raw(9, "send", json!({"id": 2}), "body", &big);
        let lines: Vec<Value> = j
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[2]["body"]["type"], "x");
        assert_eq!(lines[2]["id"], 1);
        assert_eq!(lines[3]["body"]["bytes"], big.len());
        assert_ne!(digest(b"abcdefgh1"), digest(b"abcdefgh2"));
        assert_ne!(digest(b"a"), digest(b"a\0"));
    }
}
