//! The history clients record, in the checker's JSON-lines format.
//!
//! One line per event: `call` when a client invokes an operation, `return` with
//! outcome `ok` (and the output), `fail` (a definite error: it did not happen) or
//! `info` (unknown: timed out or an indefinite error), and `nemesis` for faults, which
//! the timeline draws. Times are nanoseconds since the start of the run.

use serde::Serialize;
use specs::json::{push_str, push_u64, push_value};

/// How an operation ended, as the history says it.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion<O> {
    Ok(O),
    Fail,
    Info,
}

/// The lines are written field by field, in the order of a JSON map's keys (as they
/// always were), with [`specs::json`]: a map built for every line cost more than the
/// rest of recording, and an append's output can be a large value.
#[derive(Debug, Default)]
pub struct HistoryLog {
    text: String,
    next_id: u64,
    calls: u64,
    ok: u64,
    fail: u64,
    info: u64,
}

impl HistoryLog {
    pub fn new() -> HistoryLog {
        HistoryLog::default()
    }

    /// Records an invocation; returns the operation id to complete it with.
    pub fn call<I: Serialize>(&mut self, client: u64, time: u64, input: &I) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.calls += 1;
        let input = serde_json::to_value(input).expect("operation inputs serialise");
        let t = &mut self.text;
        t.push_str("{\"client\":");
        push_u64(t, client);
        t.push_str(",\"id\":");
        push_u64(t, id);
        t.push_str(",\"input\":");
        push_value(t, &input);
        t.push_str(",\"time\":");
        push_u64(t, time);
        t.push_str(",\"type\":\"call\"}\n");
        id
    }

    pub fn complete<O: Serialize>(&mut self, id: u64, time: u64, completion: &Completion<O>) {
        let (outcome, output) = match completion {
            Completion::Ok(output) => {
                self.ok += 1;
                let output = serde_json::to_value(output).expect("operation outputs serialise");
                ("ok", Some(output))
            }
            Completion::Fail => {
                self.fail += 1;
                ("fail", None)
            }
            Completion::Info => {
                self.info += 1;
                ("info", None)
            }
        };
        let t = &mut self.text;
        t.push_str("{\"id\":");
        push_u64(t, id);
        t.push_str(",\"outcome\":\"");
        t.push_str(outcome);
        t.push('"');
        if let Some(output) = output {
            t.push_str(",\"output\":");
            push_value(t, &output);
        }
        t.push_str(",\"time\":");
        push_u64(t, time);
        t.push_str(",\"type\":\"return\"}\n");
    }

    pub fn nemesis(&mut self, time: u64, what: &str) {
        let t = &mut self.text;
        t.push_str("{\"time\":");
        push_u64(t, time);
        t.push_str(",\"type\":\"nemesis\",\"what\":");
        push_str(t, what);
        t.push_str("}\n");
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }

    /// (calls, ok, fail, info) so far.
    pub fn counts(&self) -> (u64, u64, u64, u64) {
        (self.calls, self.ok, self.fail, self.info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_follow_the_checker_format() {
        let mut h = HistoryLog::new();
        let a = h.call(3, 1000, &json!({"f": "append", "key": "x", "value": "a"}));
        let b = h.call(4, 1100, &json!({"f": "get", "key": "x"}));
        h.nemesis(1800, "isolate n1");
        h.complete(a, 2500, &Completion::Ok(json!({"value": null})));
        h.complete::<()>(b, 2600, &Completion::Info);
        let lines: Vec<serde_json::Value> = h
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["type"], "call");
        assert_eq!(lines[0]["input"]["f"], "append");
        assert_eq!(lines[2]["type"], "nemesis");
        assert_eq!(lines[3]["outcome"], "ok");
        assert_eq!(lines[3]["output"]["value"], serde_json::Value::Null);
        assert_eq!(lines[4]["outcome"], "info");
        assert_ne!(a, b);
        assert_eq!(h.counts(), (2, 1, 0, 1));
        // Byte for byte the lines of sorted maps.
        h.complete::<()>(a, 2700, &Completion::Fail);
        h.nemesis(2800, "say \"hi\"\n");
        let want = [
            json!({"type": "call", "id": a, "client": 3, "time": 1000,
                   "input": {"f": "append", "key": "x", "value": "a"}}),
            json!({"type": "call", "id": b, "client": 4, "time": 1100,
                   "input": {"f": "get", "key": "x"}}),
            json!({"type": "nemesis", "time": 1800, "what": "isolate n1"}),
            json!({"type": "return", "id": a, "time": 2500, "outcome": "ok",
                   "output": {"value": null}}),
            json!({"type": "return", "id": b, "time": 2600, "outcome": "info"}),
            json!({"type": "return", "id": a, "time": 2700, "outcome": "fail"}),
            json!({"type": "nemesis", "time": 2800, "what": "say \"hi\"\n"}),
        ];
        let want: String = want.iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(h.text(), want);
    }
}
