//! The history clients record, in the checker's JSON-lines format.
//!
//! One line per event: `call` when a client invokes an operation, `return` with
//! outcome `ok` (and the output), `fail` (a definite error: it did not happen) or
//! `info` (unknown: timed out or an indefinite error), and `nemesis` for faults, which
//! the timeline draws. Times are nanoseconds since the start of the run.

use serde::Serialize;
use serde_json::json;

/// How an operation ended, as the history says it.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion<O> {
    Ok(O),
    Fail,
    Info,
}

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
        self.line(
            json!({"type": "call", "id": id, "client": client, "time": time, "input": input}),
        );
        id
    }

    pub fn complete<O: Serialize>(&mut self, id: u64, time: u64, completion: &Completion<O>) {
        let line = match completion {
            Completion::Ok(output) => {
                self.ok += 1;
                json!({"type": "return", "id": id, "time": time, "outcome": "ok", "output": output})
            }
            Completion::Fail => {
                self.fail += 1;
                json!({"type": "return", "id": id, "time": time, "outcome": "fail"})
            }
            Completion::Info => {
                self.info += 1;
                json!({"type": "return", "id": id, "time": time, "outcome": "info"})
            }
        };
        self.line(line);
    }

    pub fn nemesis(&mut self, time: u64, what: &str) {
        self.line(json!({"type": "nemesis", "time": time, "what": what}));
    }

    fn line(&mut self, value: serde_json::Value) {
        // An append's output can be a large value: the fast writer, same bytes.
        specs::json::push_value(&mut self.text, &value);
        self.text.push('\n');
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
    }
}
