//! The message journal: everything the harness did and saw, one JSON object a line.
//!
//! In simulated time the journal is a pure function of the seed and the
//! implementation, so two runs with one seed must produce the same bytes; a test
//! checks exactly that. It therefore holds virtual times and message contents only,
//! never wall-clock times, process ids or paths.

use std::fmt::{Display, Write};

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

    /// A message the network routed: `{"dest","ev":"send","fate","id","src","t","body"}`
    /// (the fields in [`Journal::record`]'s order, then the body). `body` must be JSON
    /// already (serialised once for both counting and recording). Bodies over
    /// [`MAX_RAW`] bytes are recorded as their length and a hash, which still tells
    /// two runs apart but keeps megabyte values out of the journal.
    ///
    /// Written straight into the text: there is one per message, and building a map
    /// for each cost more than routing the message.
    pub fn record_send(
        &mut self,
        time: u64,
        id: u64,
        src: &str,
        dest: &str,
        fate: impl Display,
        body: &str,
    ) {
        let t = &mut self.text;
        t.push_str("{\"dest\":");
        push_str_json(t, dest);
        t.push_str(",\"ev\":\"send\",\"fate\":");
        push_str_json(t, &fate.to_string());
        let _ = write!(t, ",\"id\":{id},\"src\":");
        push_str_json(t, src);
        let _ = write!(t, ",\"t\":{time},\"body\":");
        if body.len() <= MAX_RAW {
            t.push_str(body);
        } else {
            let _ = write!(
                t,
                "{{\"bytes\":{},\"digest\":\"{:016x}\"}}",
                body.len(),
                digest(body.as_bytes())
            );
        }
        t.push_str("}\n");
        self.entries += 1;
    }

    /// A copy of message `id` reached its destination: `{"ev":"recv","id","t"}`.
    pub fn record_recv(&mut self, time: u64, id: u64) {
        let _ = writeln!(self.text, "{{\"ev\":\"recv\",\"id\":{id},\"t\":{time}}}");
        self.entries += 1;
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }
}

/// Appends `s` as a JSON string, escaped exactly as serde_json does (quote,
/// backslash and control characters); names and fates rarely need it.
fn push_str_json(out: &mut String, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(&Value::from(s).to_string());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// FNV-1a over 8-byte words, in four interleaved lanes folded together at the end:
/// a stable fingerprint (unlike std's hashers, the same in every build). One lane's
/// multiplications wait for each other; four overlap, so a 128 KiB body costs a
/// quarter of the time.
fn digest(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x100_0000_01b3;
    let basis = 0xcbf2_9ce4_8422_2325u64;
    let mut lanes = [basis, basis ^ 1, basis ^ 2, basis ^ 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            *lane = (*lane ^ word).wrapping_mul(PRIME);
        }
    }
    let mut h = lanes
        .iter()
        .fold(basis, |h, &lane| (h ^ lane).wrapping_mul(PRIME));
    for &b in blocks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
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
        j.record_send(9, 1, "c1", "n1", "delay [5]", r#"{"type":"x"}"#);
        let big = format!("{{\"v\":\"{}\"}}", "a".repeat(MAX_RAW));
        j.record_send(9, 2, "c\"1\n", "n1", "lost", &big);
        j.record_recv(10, 1);
        let lines: Vec<Value> = j
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[2],
            json!({"t": 9, "ev": "send", "id": 1, "src": "c1", "dest": "n1",
                   "fate": "delay [5]", "body": {"type": "x"}})
        );
        assert_eq!(lines[3]["src"], "c\"1\n");
        assert_eq!(lines[3]["body"]["bytes"], big.len());
        assert_eq!(lines[4], json!({"t": 10, "ev": "recv", "id": 1}));
        // The same bytes as the general form (its keys in order), then the body.
        let mut general = Journal::new();
        general.record(
            9,
            "send",
            json!({"id": 1, "src": "c1", "dest": "n1", "fate": "delay [5]"}),
        );
        general.record(10, "recv", json!({"id": 1}));
        let (send, recv) = (
            j.text().lines().nth(2).unwrap(),
            j.text().lines().nth(4).unwrap(),
        );
        let general: Vec<&str> = general.text().lines().collect();
        assert_eq!(
            send,
            format!(
                "{},\"body\":{{\"type\":\"x\"}}}}",
                general[0].trim_end_matches('}')
            )
        );
        assert_eq!(recv, general[1]);
        assert_eq!(j.entries(), 5);
        assert_ne!(digest(b"abcdefgh1"), digest(b"abcdefgh2"));
        assert_ne!(digest(b"a"), digest(b"a\0"));
        // Every lane and the tail count, and so does where a byte is.
        let block: Vec<u8> = (0..100u8).collect();
        for at in 0..block.len() {
            let mut changed = block.clone();
            changed[at] ^= 1;
            assert_ne!(digest(&block), digest(&changed), "byte {at}");
        }
        let mut swapped = block.clone();
        swapped.swap(0, 8);
        assert_ne!(digest(&block), digest(&swapped));
    }
}
