//! Our history format: JSON lines, one event per line, written as things happen.
//!
//! ```text
//! {"type":"call","id":7,"client":3,"time":1000,"input":{"f":"append","key":"x","value":"a"}}
//! {"type":"nemesis","time":1800,"what":"partition {n1} {n2 n3}"}
//! {"type":"return","id":7,"time":2500,"outcome":"ok","output":{"value":"prev"}}
//! {"type":"return","id":8,"time":2600,"outcome":"fail"}
//! {"type":"return","id":9,"time":2700,"outcome":"info"}
//! ```
//!
//! - `call`: `id` names the call until it returns (unique among open calls), `client`
//!   is any integer, `input` is the model's input type (tagged by `"f"`).
//! - `return`: `outcome` is `ok` (with the model's `output`), `fail` (a definite
//!   error: it did not take effect) or `info` (unknown: it may have taken effect at
//!   any time after its call, or never). A call with no return is `info`.
//! - `nemesis`: a fault or other system event, drawn on the timeline.
//! - `time`: an integer (nanoseconds since the run began, by convention); when it is
//!   absent the line number is used, so a hand-written history may omit it.
//!
//! [`Writer`] writes this format; it is what the harness records.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use specs::Model;

use super::{Events, ParseError, RawOutcome};
use crate::history::{History, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeName {
    Ok,
    Fail,
    Info,
}

/// One line of the format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Line {
    Call {
        id: u64,
        client: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<u64>,
        input: Value,
    },
    Return {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<u64>,
        outcome: OutcomeName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
    },
    Nemesis {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<u64>,
        what: String,
    },
}

/// A line as read: every field of every kind, checked against its kind afterwards.
/// [`Line`] says the same, but serde reads an internally tagged enum by buffering
/// the whole line first, which made reading a harness's history cost more than
/// checking it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    id: Option<u64>,
    client: Option<u64>,
    time: Option<u64>,
    input: Option<Value>,
    outcome: Option<OutcomeName>,
    output: Option<Value>,
    what: Option<String>,
}

impl RawLine<'_> {
    /// The line as a [`Line`], or what is wrong with it.
    fn into_line(self) -> Result<Line, String> {
        let kind = &*self.kind;
        let present = [
            ("id", self.id.is_some()),
            ("client", self.client.is_some()),
            ("input", self.input.is_some()),
            ("outcome", self.outcome.is_some()),
            ("output", self.output.is_some()),
            ("what", self.what.is_some()),
        ];
        let allowed: &[&str] = match kind {
            "call" => &["id", "client", "input"],
            "return" => &["id", "outcome", "output"],
            "nemesis" => &["what"],
            other => {
                return Err(format!(
                    "unknown variant `{other}`, expected one of `call`, `return`, `nemesis`"
                ))
            }
        };
        if let Some((field, _)) = present
            .iter()
            .find(|(field, here)| *here && !allowed.contains(field))
        {
            return Err(format!("unknown field `{field}` in a {kind} line"));
        }
        let missing = |field: &str| format!("missing field `{field}`");
        Ok(match kind {
            "call" => Line::Call {
                id: self.id.ok_or_else(|| missing("id"))?,
                client: self.client.ok_or_else(|| missing("client"))?,
                time: self.time,
                input: self.input.ok_or_else(|| missing("input"))?,
            },
            "return" => Line::Return {
                id: self.id.ok_or_else(|| missing("id"))?,
                time: self.time,
                outcome: self.outcome.ok_or_else(|| missing("outcome"))?,
                output: self.output,
            },
            _ => Line::Nemesis {
                time: self.time,
                what: self.what.ok_or_else(|| missing("what"))?,
            },
        })
    }
}

/// Parses a whole file.
pub fn parse<M: Model>(model: &M, text: &str) -> Result<History<M::Input, M::Output>, ParseError> {
    let mut events = Events::new(model);
    for (index, raw) in super::records(text) {
        let line = index + 1;
        let parsed = serde_json::from_str::<RawLine>(raw)
            .map_err(|e| e.to_string())
            .and_then(RawLine::into_line)
            .map_err(|e| ParseError::new(line, e))?;
        let at = |time: Option<u64>| time.unwrap_or(index as u64);
        match parsed {
            Line::Call {
                id,
                client,
                time,
                input,
            } => events.call(line, id, client, input, at(time))?,
            Line::Return {
                id,
                time,
                outcome,
                output,
            } => {
                let outcome = match (outcome, output) {
                    (OutcomeName::Ok, Some(output)) => RawOutcome::Ok(output),
                    (OutcomeName::Ok, None) => RawOutcome::Ok(Value::Object(Default::default())),
                    (OutcomeName::Fail, _) => RawOutcome::Failed,
                    (OutcomeName::Info, _) => RawOutcome::Unknown,
                };
                events.ret(line, id, outcome, at(time))?;
            }
            Line::Nemesis { time, what } => events.annotate(at(time), what),
        }
    }
    Ok(events.finish())
}

/// Writes events as they happen, one line each, flushed so a crash loses nothing
/// already written.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer { out }
    }

    pub fn write(&mut self, line: &Line) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    pub fn call<I: Serialize>(
        &mut self,
        id: u64,
        client: u64,
        time: u64,
        input: &I,
    ) -> io::Result<()> {
        self.write(&Line::Call {
            id,
            client,
            time: Some(time),
            input: serde_json::to_value(input)?,
        })
    }

    pub fn ret<O: Serialize>(
        &mut self,
        id: u64,
        time: u64,
        outcome: &Outcome<O>,
    ) -> io::Result<()> {
        let (outcome, output) = match outcome {
            Outcome::Ok(o) => (OutcomeName::Ok, Some(serde_json::to_value(o)?)),
            Outcome::Failed => (OutcomeName::Fail, None),
            Outcome::Unknown => (OutcomeName::Info, None),
        };
        self.write(&Line::Return {
            id,
            time: Some(time),
            outcome,
            output,
        })
    }

    pub fn nemesis(&mut self, time: u64, what: &str) -> io::Result<()> {
        self.write(&Line::Nemesis {
            time: Some(time),
            what: what.to_string(),
        })
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A whole history in this format, events in time order (calls before returns at
/// equal times), for saving a history built in memory.
pub fn to_string<I: Serialize, O: Serialize>(history: &History<I, O>) -> String {
    enum E<'a, I, O> {
        Call(usize, &'a crate::history::Operation<I, O>),
        Ret(usize, &'a crate::history::Operation<I, O>),
        Note(&'a crate::history::Annotation),
    }
    let mut events: Vec<(u64, u8, usize, E<I, O>)> = Vec::new();
    for (i, op) in history.operations.iter().enumerate() {
        events.push((op.call, 1, i, E::Call(i, op)));
        if let Some(ret) = op.ret {
            events.push((ret, 2, i, E::Ret(i, op)));
        } else if !matches!(op.outcome, Outcome::Unknown) {
            events.push((op.call, 2, i, E::Ret(i, op)));
        }
    }
    for (i, note) in history.annotations.iter().enumerate() {
        events.push((note.time, 0, i, E::Note(note)));
    }
    events.sort_by_key(|(t, kind, i, _)| (*t, *kind, *i));
    let mut writer = Writer::new(Vec::new());
    for (_, _, _, event) in &events {
        match event {
            E::Call(i, op) => writer.call(*i as u64, op.client, op.call, &op.input),
            E::Ret(i, op) => writer.ret(*i as u64, op.ret.unwrap_or(op.call), &op.outcome),
            E::Note(note) => writer.nemesis(note.time, &note.text),
        }
        .expect("writing to memory cannot fail");
    }
    String::from_utf8(writer.into_inner()).expect("JSON is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
    use specs::KvFetchAppend;

    #[test]
    fn round_trip() {
        let text = r#"{"type":"call","id":1,"client":0,"time":10,"input":{"f":"append","key":"k","value":"a"}}
{"type":"call","id":2,"client":1,"time":11,"input":{"f":"read","key":"k"}}
{"type":"nemesis","time":12,"what":"partition {n1} {n2 n3}"}
{"type":"return","id":1,"time":20,"outcome":"ok","output":{"value":null}}
{"type":"return","id":2,"time":21,"outcome":"info"}
{"type":"call","id":3,"client":0,"time":22,"input":{"f":"put","key":"k","value":"b"}}
{"type":"return","id":3,"time":23,"outcome":"fail"}
"#;
        let h = parse(&KvFetchAppend, text).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(
            h.operations[1].input,
            FetchAppendInput::Get { key: "k".into() }
        );
        assert_eq!(
            h.operations[0].outcome,
            Outcome::Ok(FetchAppendOutput {
                value: None,
                ok: None
            })
        );
        assert_eq!(h.annotations[0].text, "partition {n1} {n2 n3}");
        let again = parse(&KvFetchAppend, &to_string(&h)).unwrap();
        assert_eq!(again, h);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let text = "{\"type\":\"call\",\"id\":1,\"client\":0,\"input\":{\"f\":\"get\",\"key\":\"k\"}}\n{\"type\":\"return\",\"id\":1,\"outcome\":\"maybe\"}\n";
        let e = parse(&KvFetchAppend, text).unwrap_err();
        assert_eq!(e.line, 2);
        let text = "{\"type\":\"call\",\"id\":1,\"client\":0,\"input\":{\"f\":\"fly\"}}\n";
        let e = parse(&KvFetchAppend, text).unwrap_err();
        assert!(e.message.contains("kv-fetch-append"), "{e}");
    }

    #[test]
    fn lines_are_read_as_their_kind_allows() {
        let bad = [
            (
                r#"{"type":"call","id":1,"input":{"f":"get","key":"k"}}"#,
                "missing field `client`",
            ),
            (r#"{"type":"return","id":1}"#, "missing field `outcome`"),
            (r#"{"type":"nemesis","time":3}"#, "missing field `what`"),
            (
                r#"{"type":"nemesis","what":"x","id":2}"#,
                "unknown field `id`",
            ),
            (
                r#"{"type":"return","id":1,"outcome":"ok","client":3}"#,
                "unknown field `client`",
            ),
            (
                r#"{"type":"call","id":1,"client":0,"input":{},"outcome":"ok"}"#,
                "unknown field `outcome`",
            ),
            (
                r#"{"type":"call","id":1,"client":0,"input":{},"colour":"red"}"#,
                "unknown field `colour`",
            ),
            (r#"{"type":"crash","what":"x"}"#, "unknown variant `crash`"),
            (r#"{"id":1,"outcome":"ok"}"#, "missing field `type`"),
            (
                r#"{"type":"return","id":1,"outcome":"ok","output":{"value":null}} x"#,
                "trailing",
            ),
        ];
        for (line, expect) in bad {
            let e = parse(&KvFetchAppend, line).unwrap_err();
            assert!(e.message.contains(expect), "{line}: {e}");
            assert_eq!(e.line, 1);
        }
        // Escapes in the type and a null output are fine, fields in any order.
        let good = r#"{"id":1,"time":5,"client":0,"input":{"f":"get","key":"k"},"type":"c\u0061ll"}
{"type":"return","output":null,"outcome":"info","id":1,"time":6}"#;
        let h = parse(&KvFetchAppend, good).unwrap();
        assert_eq!(h.operations[0].outcome, Outcome::Unknown);
        assert_eq!(h.operations[0].call, 5);
    }
}
