//! porcupine's kv logs: one flat EDN map per line.
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}
//! {:process 1, :type :ok, :f :get, :key "9", :value "x 5 0 y"}
//! ```
//!
//! `:f` is `:get`, `:put` or `:append`; an `:ok` get carries the value read (`nil`
//! reads as ""). `:fail` did not take effect, `:info` is unknown. Times are line
//! numbers.

use serde_json::{json, Value};
use specs::Model;

use super::{Events, ParseError, RawOutcome};
use crate::history::History;

#[derive(Debug, Clone, PartialEq)]
enum Edn {
    Keyword(String),
    Str(String),
    Int(i64),
    Nil,
}

/// Reads `{:k v, :k v}` into (key, value) pairs.
fn parse_map(line: usize, text: &str) -> Result<Vec<(String, Edn)>, ParseError> {
    let err = |m: String| ParseError::new(line, m);
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| err("expected a map {...}".into()))?;
    let mut chars = inner.chars().peekable();
    let mut tokens = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let token = match c {
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(err("unterminated string".into())),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(other) => s.push(other),
                            None => return Err(err("unterminated string".into())),
                        },
                        Some(other) => s.push(other),
                    }
                }
                Edn::Str(s)
            }
            _ => {
                let mut word = String::new();
                while chars
                    .peek()
                    .is_some_and(|c| !c.is_whitespace() && *c != ',')
                {
                    word.push(chars.next().unwrap());
                }
                if let Some(k) = word.strip_prefix(':') {
                    Edn::Keyword(k.to_string())
                } else if word == "nil" {
                    Edn::Nil
                } else {
                    Edn::Int(
                        word.parse()
                            .map_err(|_| err(format!("unexpected token {word:?}")))?,
                    )
                }
            }
        };
        tokens.push(token);
    }
    if tokens.len() % 2 != 0 {
        return Err(err("a map needs an even number of forms".into()));
    }
    tokens
        .chunks(2)
        .map(|pair| match &pair[0] {
            Edn::Keyword(k) => Ok((k.clone(), pair[1].clone())),
            other => Err(err(format!("map keys must be keywords, found {other:?}"))),
        })
        .collect()
}

fn field<'a>(line: usize, map: &'a [(String, Edn)], name: &str) -> Result<&'a Edn, ParseError> {
    map.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .ok_or_else(|| ParseError::new(line, format!("missing :{name}")))
}

fn json_of(v: &Edn) -> Value {
    match v {
        Edn::Str(s) | Edn::Keyword(s) => json!(s),
        Edn::Int(i) => json!(i),
        Edn::Nil => Value::Null,
    }
}

/// Parses a whole log.
pub fn parse<M: Model>(model: &M, text: &str) -> Result<History<M::Input, M::Output>, ParseError> {
    let mut events = Events::new(model);
    for (index, raw) in super::records(text) {
        let line = index + 1;
        let map = parse_map(line, raw)?;
        let process = match field(line, &map, "process")? {
            Edn::Int(p) if *p >= 0 => *p as u64,
            other => {
                return Err(ParseError::new(
                    line,
                    format!(":process must be a number, found {other:?}"),
                ))
            }
        };
        let keyword = |name: &str| match field(line, &map, name)? {
            Edn::Keyword(k) => Ok(k.as_str()),
            other => Err(ParseError::new(
                line,
                format!(":{name} must be a keyword, found {other:?}"),
            )),
        };
        let (kind, f) = (keyword("type")?, keyword("f")?);
        let key = json_of(field(line, &map, "key")?);
        let value = map
            .iter()
            .find(|(k, _)| k == "value")
            .map_or(Value::Null, |(_, v)| json_of(v));
        let time = index as u64;
        match kind {
            "invoke" => {
                let input = match f {
                    "get" => json!({"f": "get", "key": key}),
                    _ => json!({"f": f, "key": key, "value": value}),
                };
                events.process_call(line, process, input, time)?;
            }
            "ok" => {
                let output = match f {
                    "get" => json!({"value": value}),
                    _ => json!({}),
                };
                events.process_return(line, process, RawOutcome::Ok(output), time)?;
            }
            "fail" => events.process_return(line, process, RawOutcome::Failed, time)?,
            "info" => events.process_return(line, process, RawOutcome::Unknown, time)?,
            other => {
                return Err(ParseError::new(
                    line,
                    format!(":type must be :invoke, :ok, :fail or :info, found :{other}"),
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
    use specs::kv::{KvInput, KvOutput};
    use specs::Kv;

    #[test]
    fn reads_gets_and_appends() {
        let log = r#"{:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}
{:process 1, :type :invoke, :f :get, :key "4", :value nil}
{:process 0, :type :ok, :f :append, :key "4", :value "x 0 1 y"}
{:process 1, :type :ok, :f :get, :key "4", :value "x \"q\" y"}
"#;
        let h = parse(&Kv, log).unwrap();
        assert_eq!(
            h.operations[0].input,
            KvInput::Append {
                key: "4".into(),
                value: "x 0 1 y".into()
            }
        );
        assert_eq!(
            h.operations[1].outcome,
            Outcome::Ok(KvOutput {
                value: Some("x \"q\" y".into())
            })
        );
        assert_eq!((h.operations[1].call, h.operations[1].ret), (1, Some(3)));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(
            &Kv,
            "{:process 0, :type :invoke, :f :get, :key \"1\"}\n{:process 0 :type}\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
    }
}
