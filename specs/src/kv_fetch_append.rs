//! Key/value store whose append returns the value before it (fetch-and-append), with
//! compare-and-set; a missing key reads as null.
//!
//! This is the key/value server's contract. An append that reports the old value lets
//! a client tell, after a retry, whether its first attempt was applied; it also makes
//! every append an observation, which the checker uses.

use serde::{Deserialize, Serialize};

use crate::kv::KvState;
use crate::model::{partition_by_key, MayIntervene};
use crate::{Model, Text};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum FetchAppendInput {
    /// Also accepted as `"read"`, Maelstrom's name.
    #[serde(alias = "read")]
    Get {
        key: String,
    },
    /// Also accepted as `"write"`, Maelstrom's name.
    #[serde(alias = "write")]
    Put {
        key: String,
        value: String,
    },
    Append {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        from: String,
        to: String,
    },
}

impl FetchAppendInput {
    pub fn key(&self) -> &str {
        match self {
            FetchAppendInput::Get { key }
            | FetchAppendInput::Put { key, .. }
            | FetchAppendInput::Append { key, .. }
            | FetchAppendInput::Cas { key, .. } => key,
        }
    }
}

/// `value`: what a get returned, or the value an append replaced (null: none);
/// `ok`: whether a cas swapped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FetchAppendOutput {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct KvFetchAppend;

fn same(current: Option<&Text>, seen: Option<&str>) -> bool {
    current.map(Text::as_str) == seen
}

impl Model for KvFetchAppend {
    type Input = FetchAppendInput;
    type Output = FetchAppendOutput;
    type State = KvState;

    fn name(&self) -> &'static str {
        "kv-fetch-append"
    }

    fn init(&self) -> KvState {
        KvState::default()
    }

    fn step(
        &self,
        state: &KvState,
        input: &FetchAppendInput,
        output: Option<&FetchAppendOutput>,
    ) -> Option<KvState> {
        let current = state.get(input.key());
        match input {
            FetchAppendInput::Get { .. } => match output {
                Some(out) if !same(current, out.value.as_deref()) => None,
                _ => Some(state.clone()),
            },
            FetchAppendInput::Put { key, value } => {
                Some(state.with(key, Text::new(value.as_str())))
            }
            FetchAppendInput::Append { key, value } => {
                if let Some(out) = output {
                    if !same(current, out.value.as_deref()) {
                        return None;
                    }
                }
                let new = match current {
                    Some(old) => old.concat(value),
                    None => Text::new(value.as_str()),
                };
                Some(state.with(key, new))
            }
            FetchAppendInput::Cas { key, from, to } => {
                let swaps = same(current, Some(from));
                match output.and_then(|o| o.ok) {
                    None if swaps => Some(state.with(key, Text::new(to.as_str()))),
                    None => Some(state.clone()),
                    Some(true) => swaps.then(|| state.with(key, Text::new(to.as_str()))),
                    Some(false) => (!swaps).then(|| state.clone()),
                }
            }
        }
    }

    fn validate(&self, input: &FetchAppendInput, output: &FetchAppendOutput) -> Result<(), String> {
        match input {
            FetchAppendInput::Cas { .. } if output.ok.is_none() => {
                Err("a completed cas needs \"ok\": true or false".into())
            }
            _ => Ok(()),
        }
    }

    fn is_read_only(&self, input: &FetchAppendInput, output: Option<&FetchAppendOutput>) -> bool {
        match input {
            FetchAppendInput::Get { .. } => true,
            FetchAppendInput::Cas { .. } => output.and_then(|o| o.ok) == Some(false),
            _ => false,
        }
    }

    const PRUNES_READS: bool = true;

    /// No operation removes a key, and values only grow by appends until a put or a
    /// successful cas: a get that saw nothing where there is a value never succeeds,
    /// and one that saw a value not starting with the current one needs a put or cas
    /// on its key first.
    fn could_accept_later(
        &self,
        state: &KvState,
        input: &FetchAppendInput,
        output: Option<&FetchAppendOutput>,
        may_intervene: &mut MayIntervene<'_, FetchAppendInput>,
    ) -> bool {
        let (FetchAppendInput::Get { key }, Some(out)) = (input, output) else {
            return true;
        };
        match (state.get(key), out.value.as_deref()) {
            (Some(_), None) => false,
            (None, _) => true,
            (Some(current), Some(seen)) => {
                seen.starts_with(current.as_str())
                    || may_intervene(
                        &|i| matches!(i, FetchAppendInput::Put { key: k, .. } | FetchAppendInput::Cas { key: k, .. } if k == key),
                    )
            }
        }
    }

    fn partition(&self, inputs: &[&FetchAppendInput]) -> Option<Vec<Vec<usize>>> {
        Some(partition_by_key(inputs, FetchAppendInput::key))
    }

    fn describe_operation(
        &self,
        input: &FetchAppendInput,
        output: Option<&FetchAppendOutput>,
    ) -> String {
        let value = |o: Option<&FetchAppendOutput>| match o {
            None => "?".to_string(),
            Some(o) => o.value.as_ref().map_or("null".into(), |v| format!("{v:?}")),
        };
        match input {
            FetchAppendInput::Get { key } => format!("get({key:?}) -> {}", value(output)),
            FetchAppendInput::Put { key, value } => format!("put({key:?}, {value:?})"),
            FetchAppendInput::Append { key, value: v } => {
                format!("append({key:?}, {v:?}) -> {}", value(output))
            }
            FetchAppendInput::Cas { key, from, to } => {
                let result = match output.and_then(|o| o.ok) {
                    Some(true) => "ok",
                    Some(false) => "fail",
                    None => "?",
                };
                format!("cas({key:?}, {from:?}, {to:?}) -> {result}")
            }
        }
    }

    fn describe_state(&self, state: &KvState) -> String {
        state.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(value: Option<&str>) -> FetchAppendOutput {
        FetchAppendOutput {
            value: value.map(String::from),
            ok: None,
        }
    }

    #[test]
    fn append_returns_the_old_value() {
        let m = KvFetchAppend;
        let append = |v: &str| FetchAppendInput::Append {
            key: "k".into(),
            value: v.into(),
        };
        let s = m.step(&m.init(), &append("a"), Some(&out(None))).unwrap();
        assert!(m.step(&s, &append("b"), Some(&out(None))).is_none());
        let s = m.step(&s, &append("b"), Some(&out(Some("a")))).unwrap();
        let get = FetchAppendInput::Get { key: "k".into() };
        assert!(m.step(&s, &get, Some(&out(Some("ab")))).is_some());
        assert!(m.step(&m.init(), &get, Some(&out(None))).is_some());
        assert!(m.step(&m.init(), &get, Some(&out(Some("")))).is_none());
    }

    #[test]
    fn cas_swaps_only_on_match() {
        let m = KvFetchAppend;
        let put = FetchAppendInput::Put {
            key: "k".into(),
            value: "1".into(),
        };
        let s = m.step(&m.init(), &put, None).unwrap();
        let cas = FetchAppendInput::Cas {
            key: "k".into(),
            from: "1".into(),
            to: "2".into(),
        };
        let ok = |b| FetchAppendOutput {
            value: None,
            ok: Some(b),
        };
        assert!(m.step(&s, &cas, Some(&ok(false))).is_none());
        let s2 = m.step(&s, &cas, Some(&ok(true))).unwrap();
        assert_eq!(s2.get("k").unwrap().as_str(), "2");
        assert!(m.step(&s2, &cas, Some(&ok(false))).is_some());
    }
}
