//! Single registers of integers, initially nil (`None`).
//!
//! [`Register`] has read and write; [`CasRegister`] adds compare-and-set and is the
//! model of Jepsen's etcd histories, where a cas whose comparison fails is reported as
//! `:fail` and is an observation (the value was not `from`), not a no-op.

use serde::{Deserialize, Serialize};

use crate::Model;

/// A register value; `None` is nil, the initial value.
pub type Value = Option<i64>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum RegisterInput {
    Read,
    Write { value: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum CasInput {
    Read,
    Write { value: i64 },
    Cas { from: i64, to: i64 },
}

/// `value` is what a read returned (absent or null: nil); `ok` whether a cas swapped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
}

impl RegisterOutput {
    pub fn read(value: Value) -> RegisterOutput {
        RegisterOutput { value, ok: None }
    }
    pub fn done() -> RegisterOutput {
        RegisterOutput::default()
    }
    pub fn cas(ok: bool) -> RegisterOutput {
        RegisterOutput {
            value: None,
            ok: Some(ok),
        }
    }
}

fn show(value: Value) -> String {
    value.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

/// Read/write register.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

impl Model for Register {
    type Input = RegisterInput;
    type Output = RegisterOutput;
    type State = Value;

    fn name(&self) -> &'static str {
        "register"
    }

    fn init(&self) -> Value {
        None
    }

    fn step(
        &self,
        state: &Value,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
    ) -> Option<Value> {
        CasRegister.step(state, &widen(input), output)
    }

    fn describe_operation(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> String {
        CasRegister.describe_operation(&widen(input), output)
    }

    fn is_read_only(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> bool {
        CasRegister.is_read_only(&widen(input), output)
    }

    fn describe_state(&self, state: &Value) -> String {
        show(*state)
    }
}

fn widen(input: &RegisterInput) -> CasInput {
    match *input {
        RegisterInput::Read => CasInput::Read,
        RegisterInput::Write { value } => CasInput::Write { value },
    }
}

/// Read/write/compare-and-set register.
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegister;

impl Model for CasRegister {
    type Input = CasInput;
    type Output = RegisterOutput;
    type State = Value;

    fn name(&self) -> &'static str {
        "cas-register"
    }

    fn init(&self) -> Value {
        None
    }

    fn step(
        &self,
        state: &Value,
        input: &CasInput,
        output: Option<&RegisterOutput>,
    ) -> Option<Value> {
        match *input {
            CasInput::Read => match output {
                None => Some(*state),
                Some(out) => (out.value == *state).then_some(*state),
            },
            CasInput::Write { value } => Some(Some(value)),
            CasInput::Cas { from, to } => {
                let swaps = *state == Some(from);
                match output.and_then(|o| o.ok) {
                    // Unknown outcome: it took effect if it could.
                    None => Some(if swaps { Some(to) } else { *state }),
                    Some(true) => swaps.then_some(Some(to)),
                    Some(false) => (!swaps).then_some(*state),
                }
            }
        }
    }

    fn is_read_only(&self, input: &CasInput, output: Option<&RegisterOutput>) -> bool {
        match input {
            CasInput::Read => true,
            CasInput::Write { .. } => false,
            CasInput::Cas { .. } => output.and_then(|o| o.ok) == Some(false),
        }
    }

    fn validate(&self, input: &CasInput, output: &RegisterOutput) -> Result<(), String> {
        match input {
            CasInput::Cas { .. } if output.ok.is_none() => {
                Err("a completed cas needs \"ok\": true or false".into())
            }
            _ => Ok(()),
        }
    }

    fn describe_operation(&self, input: &CasInput, output: Option<&RegisterOutput>) -> String {
        match (input, output) {
            (CasInput::Read, Some(out)) => format!("read() -> {}", show(out.value)),
            (CasInput::Read, None) => "read() -> ?".into(),
            (CasInput::Write { value }, _) => format!("write({value})"),
            (CasInput::Cas { from, to }, out) => {
                let result = match out.and_then(|o| o.ok) {
                    Some(true) => "ok",
                    Some(false) => "fail",
                    None => "?",
                };
                format!("cas({from}, {to}) -> {result}")
            }
        }
    }

    fn describe_state(&self, state: &Value) -> String {
        show(*state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_must_see_the_current_value() {
        let m = Register;
        let s = m.step(
            &None,
            &RegisterInput::Write { value: 3 },
            Some(&RegisterOutput::done()),
        );
        assert_eq!(s, Some(Some(3)));
        assert!(m
            .step(
                &Some(3),
                &RegisterInput::Read,
                Some(&RegisterOutput::read(Some(3)))
            )
            .is_some());
        assert!(m
            .step(
                &Some(3),
                &RegisterInput::Read,
                Some(&RegisterOutput::read(None))
            )
            .is_none());
    }

    #[test]
    fn cas_outcomes() {
        let m = CasRegister;
        let cas = CasInput::Cas { from: 1, to: 2 };
        assert_eq!(
            m.step(&Some(1), &cas, Some(&RegisterOutput::cas(true))),
            Some(Some(2))
        );
        assert_eq!(
            m.step(&Some(1), &cas, Some(&RegisterOutput::cas(false))),
            None
        );
        assert_eq!(
            m.step(&Some(5), &cas, Some(&RegisterOutput::cas(false))),
            Some(Some(5))
        );
        assert_eq!(
            m.step(&Some(5), &cas, Some(&RegisterOutput::cas(true))),
            None
        );
        assert_eq!(m.step(&Some(1), &cas, None), Some(Some(2)));
        assert_eq!(m.step(&None, &cas, None), Some(None));
        assert!(m.validate(&cas, &RegisterOutput::done()).is_err());
    }
}
