//! Key/value store with get, put and append, where a missing key reads as "".
//!
//! The model of porcupine's kv histories and of 6.5840's key/value services. Keys are
//! independent, so the history can be checked one key at a time.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{partition_by_key, MayIntervene};
use crate::{Model, Text};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum KvInput {
    Get { key: String },
    Put { key: String, value: String },
    Append { key: String, value: String },
}

impl KvInput {
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Append { key, .. } => key,
        }
    }
}

/// `value` is what a get returned (absent or null: ""); put and append return nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The store: (key, value) pairs sorted by key. Shared behind an `Arc` because the
/// checker clones a state at every step and most steps (reads) do not change it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KvState(Arc<Vec<(Text, Text)>>);

impl KvState {
    pub fn get(&self, key: &str) -> Option<&Text> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// A copy with `key` set to `value`.
    pub fn with(&self, key: &str, value: Text) -> KvState {
        let mut pairs: Vec<(Text, Text)> = Vec::clone(&self.0);
        match self.find(key) {
            Ok(i) => pairs[i].1 = value,
            Err(i) => pairs.insert(i, (Text::new(key), value)),
        }
        KvState(Arc::new(pairs))
    }

    pub fn describe(&self) -> String {
        let pairs: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{k:?}: {v:?}"))
            .collect();
        format!("{{{}}}", pairs.join(", "))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Kv;

impl Model for Kv {
    type Input = KvInput;
    type Output = KvOutput;
    type State = KvState;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn init(&self) -> KvState {
        KvState::default()
    }

    fn step(&self, state: &KvState, input: &KvInput, output: Option<&KvOutput>) -> Option<KvState> {
        match input {
            KvInput::Get { key } => {
                let Some(out) = output else {
                    return Some(state.clone());
                };
                // A get that returned nothing read a missing key, which reads as "".
                let seen = out.value.as_deref().unwrap_or("");
                let current = state.get(key).map_or("", Text::as_str);
                (current == seen).then(|| state.clone())
            }
            KvInput::Put { key, value } => Some(state.with(key, Text::new(value.as_str()))),
            KvInput::Append { key, value } => {
                let new = match state.get(key) {
                    Some(old) => old.concat(value),
                    None => Text::new(value.as_str()),
                };
                Some(state.with(key, new))
            }
        }
    }

    fn is_read_only(&self, input: &KvInput, _output: Option<&KvOutput>) -> bool {
        matches!(input, KvInput::Get { .. })
    }

    const PRUNES_READS: bool = true;

    /// Values only grow by appends until a put: a get that saw a value not starting
    /// with the current one needs a put on its key first.
    fn could_accept_later(
        &self,
        state: &KvState,
        input: &KvInput,
        output: Option<&KvOutput>,
        may_intervene: &mut MayIntervene<'_, KvInput>,
    ) -> bool {
        let (KvInput::Get { key }, Some(out)) = (input, output) else {
            return true;
        };
        let seen = out.value.as_deref().unwrap_or("");
        let current = state.get(key).map_or("", Text::as_str);
        seen.starts_with(current)
            || may_intervene(&|i| matches!(i, KvInput::Put { key: k, .. } if k == key))
    }

    fn partition(&self, inputs: &[&KvInput]) -> Option<Vec<Vec<usize>>> {
        Some(partition_by_key(inputs, KvInput::key))
    }

    fn describe_operation(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        match input {
            KvInput::Get { key } => match output {
                Some(o) => format!("get({key:?}) -> {:?}", o.value.as_deref().unwrap_or("")),
                None => format!("get({key:?}) -> ?"),
            },
            KvInput::Put { key, value } => format!("put({key:?}, {value:?})"),
            KvInput::Append { key, value } => format!("append({key:?}, {value:?})"),
        }
    }

    fn describe_state(&self, state: &KvState) -> String {
        state.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(v: &str) -> KvOutput {
        KvOutput {
            value: Some(v.into()),
        }
    }

    #[test]
    fn append_concatenates_and_missing_reads_empty() {
        let m = Kv;
        let s = m.init();
        let k = |key: &str| KvInput::Get { key: key.into() };
        assert!(m.step(&s, &k("a"), Some(&get(""))).is_some());
        let s = m
            .step(
                &s,
                &KvInput::Append {
                    key: "a".into(),
                    value: "x".into(),
                },
                None,
            )
            .unwrap();
        let s = m
            .step(
                &s,
                &KvInput::Append {
                    key: "a".into(),
                    value: "y".into(),
                },
                None,
            )
            .unwrap();
        assert!(m.step(&s, &k("a"), Some(&get("xy"))).is_some());
        assert!(m.step(&s, &k("a"), Some(&get("x"))).is_none());
        assert!(m.step(&s, &k("b"), Some(&get(""))).is_some());
    }

    #[test]
    fn partitions_by_key_in_order() {
        let ops = [
            KvInput::Get { key: "b".into() },
            KvInput::Get { key: "a".into() },
            KvInput::Put {
                key: "b".into(),
                value: "1".into(),
            },
        ];
        let refs: Vec<&KvInput> = ops.iter().collect();
        assert_eq!(Kv.partition(&refs), Some(vec![vec![0, 2], vec![1]]));
    }
}
