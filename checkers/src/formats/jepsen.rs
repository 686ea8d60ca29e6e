//! Jepsen's log lines for a single register, as in its etcd tests:
//!
//! ```text
//! INFO  jepsen.util - 3<TAB>:invoke<TAB>:cas<TAB>[1 2]
//! INFO  jepsen.util - 3<TAB>:fail<TAB>:cas<TAB>[1 2]
//! ```
//!
//! Fields are separated by tabs (or, in some logs, spaces): the logger prefix ending in the process number, the type
//! (`:invoke`, `:ok`, `:fail`, `:info`), the function (`:read`, `:write`, `:cas`) and
//! the value (`nil`, an integer, `[from to]`, or `:timed-out` on an `:info`).
//!
//! Meaning, as in Jepsen's etcd test: a `:fail` of a cas is a comparison that failed,
//! an observation that the value was not `from` (output `{"ok": false}`); a `:fail` of a
//! read or write did not take effect; `:info` is unknown. Times are line numbers.

use serde_json::{json, Value};
use specs::Model;

use super::{Events, ParseError, RawOutcome};
use crate::history::History;

const KINDS: [&str; 4] = [":invoke", ":ok", ":fail", ":info"];

/// Splits a line into (process, type, function, value): the type is the first
/// `:invoke`/`:ok`/`:fail`/`:info` token, the process the number just before it, the
/// function the token after it and the value the rest. Fields are separated by tabs
/// in most logs and by spaces in some, so any whitespace separates them.
fn fields(line: &str) -> Option<(u64, &str, &str, String)> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let k = tokens.iter().position(|t| KINDS.contains(t))?;
    let process = tokens.get(k.checked_sub(1)?)?.parse().ok()?;
    let f = tokens.get(k + 1)?;
    let value = tokens[k + 2..].join(" ");
    Some((process, tokens[k], f, value))
}

/// Whether a line has the shape of a Jepsen log line.
pub fn looks_like(line: &str) -> bool {
    fields(line).is_some()
}

fn value(line: usize, text: &str) -> Result<Value, ParseError> {
    let text = text.trim();
    if text == "nil" {
        return Ok(Value::Null);
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let parts: Vec<&str> = inner.split_whitespace().collect();
        let [from, to] = parts[..] else {
            return Err(ParseError::new(
                line,
                format!("expected [from to], found {text}"),
            ));
        };
        return Ok(json!([int(line, from)?, int(line, to)?]));
    }
    if text.starts_with(':') {
        // A keyword such as :timed-out carries no value.
        return Ok(Value::Null);
    }
    Ok(json!(int(line, text)?))
}

fn int(line: usize, text: &str) -> Result<i64, ParseError> {
    text.parse()
        .map_err(|_| ParseError::new(line, format!("expected an integer, found {text:?}")))
}

/// Parses a whole log.
pub fn parse<M: Model>(model: &M, text: &str) -> Result<History<M::Input, M::Output>, ParseError> {
    let mut events = Events::new(model);
    for (index, raw) in super::records(text) {
        let line = index + 1;
        let (process, kind, f, v) = fields(raw).ok_or_else(|| {
            ParseError::new(line, "expected a Jepsen log line: <prefix> <process> <:invoke|:ok|:fail|:info> <:function> <value>")
        })?;
        let f = f.strip_prefix(':').ok_or_else(|| {
            ParseError::new(line, format!("expected a function like :read, found {f:?}"))
        })?;
        let v = value(line, if v.is_empty() { "nil" } else { &v })?;
        let time = index as u64;
        match kind {
            ":invoke" => {
                let input = match (f, &v) {
                    ("read", _) => json!({"f": "read"}),
                    ("write", v) => json!({"f": "write", "value": v}),
                    ("cas", Value::Array(a)) => json!({"f": "cas", "from": a[0], "to": a[1]}),
                    _ => {
                        return Err(ParseError::new(
                            line,
                            format!("cannot invoke :{f} with {v}"),
                        ))
                    }
                };
                events.process_call(line, process, input, time)?;
            }
            ":ok" => {
                let output = match f {
                    "read" => json!({"value": v}),
                    "cas" => json!({"ok": true}),
                    _ => json!({}),
                };
                events.process_return(line, process, RawOutcome::Ok(output), time)?;
            }
            ":fail" if f == "cas" => {
                events.process_return(line, process, RawOutcome::Ok(json!({"ok": false})), time)?;
            }
            ":fail" => events.process_return(line, process, RawOutcome::Failed, time)?,
            ":info" => events.process_return(line, process, RawOutcome::Unknown, time)?,
            other => {
                return Err(ParseError::new(
                    line,
                    format!("expected :invoke, :ok, :fail or :info, found {other:?}"),
                ))
            }
        }
    }
    Ok(events.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use specs::register::{CasInput, RegisterOutput};
    use specs::CasRegister;

    #[test]
    fn reads_every_kind_of_line() {
        let log = "INFO  jepsen.util - 0\t:invoke\t:write\t3\n\
                   INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\n\
                   INFO  jepsen.util - 0\t:ok\t:write\t3\n\
                   INFO  jepsen.util - 1\t:fail\t:cas\t[3 4]\n\
                   INFO  jepsen.util - 2\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 2\t:ok\t:read\t3\n\
                   INFO  jepsen.util - 3\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 3\t:fail\t:read\t:timed-out\n\
                   INFO  jepsen.util - 4\t:invoke\t:write\t9\n\
                   INFO  jepsen.util - 4\t:info\t:write\t:timed-out\n";
        let h = parse(&CasRegister, log).unwrap();
        assert_eq!(h.len(), 5);
        assert_eq!(h.operations[1].input, CasInput::Cas { from: 3, to: 4 });
        assert_eq!(
            h.operations[1].outcome,
            Outcome::Ok(RegisterOutput::cas(false))
        );
        assert_eq!(
            h.operations[2].outcome,
            Outcome::Ok(RegisterOutput::read(Some(3)))
        );
        assert_eq!(h.operations[3].outcome, Outcome::Failed);
        assert_eq!(h.operations[4].outcome, Outcome::Unknown);
        assert_eq!(h.operations[4].ret, None);
    }

    #[test]
    fn errors_name_the_line() {
        let log = "INFO  jepsen.util - 0\t:invoke\t:write\t3\nINFO  jepsen.util - 0\t:invoke\t:write\tx\n";
        let e = parse(&CasRegister, log).unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse(&CasRegister, "INFO  jepsen.util - 0\t:ok\t:write\t3\n").unwrap_err();
        assert!(e.message.contains("never invoked"), "{e}");
    }
}
