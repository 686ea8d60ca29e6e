//! What happened: operations with their intervals and outcomes.
//!
//! Histories are recorded as a stream of events (a call, later its return) and checked
//! as a list of operations. [`HistoryBuilder`] turns the first into the second and is
//! shared by every parser, so all formats mean the same thing by an outcome.

use std::collections::HashMap;

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<O> {
    /// It completed and returned this output.
    Ok(O),
    /// It failed with a definite error (Jepsen's `:fail`): it did not take effect.
    Failed,
    /// Nobody knows (a timeout, an indefinite error, Jepsen's `:info`, or no return was
    /// recorded): it may have taken effect at any instant after its call, or never.
    Unknown,
}

/// One operation by one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    pub client: u64,
    pub input: I,
    pub outcome: Outcome<O>,
    /// When it was invoked.
    pub call: u64,
    /// When it returned; `None` for an unknown outcome, whose interval never closes.
    pub ret: Option<u64>,
}

impl<I, O> Operation<I, O> {
    /// The output it returned, if it completed.
    pub fn output(&self) -> Option<&O> {
        match &self.outcome {
            Outcome::Ok(o) => Some(o),
            _ => None,
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed)
    }
}

/// Something that happened to the system rather than a client (a partition, a
/// crash), drawn on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub time: u64,
    pub text: String,
}

/// The history of operations on a model's object.
pub type ModelHistory<M> = History<<M as specs::Model>::Input, <M as specs::Model>::Output>;

/// A whole history, in call order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History<I, O> {
    pub operations: Vec<Operation<I, O>>,
    pub annotations: Vec<Annotation>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        History {
            operations: Vec::new(),
            annotations: Vec::new(),
        }
    }
}

impl<I, O> History<I, O> {
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}

/// Why a stream of events does not form a history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("call {0} was already made")]
    DuplicateCall(u64),
    #[error("return for {0}, which was never called or has already returned")]
    ReturnWithoutCall(u64),
    #[error("operation {id} returns at {ret}, before its call at {call}")]
    ReturnBeforeCall { id: u64, call: u64, ret: u64 },
}

/// Builds a [`History`] from events; calls left open at the end become unknown.
#[derive(Debug)]
pub struct HistoryBuilder<I, O> {
    history: History<I, O>,
    open: HashMap<u64, usize>,
}

impl<I, O> Default for HistoryBuilder<I, O> {
    fn default() -> Self {
        HistoryBuilder {
            history: History::default(),
            open: HashMap::new(),
        }
    }
}

impl<I, O> HistoryBuilder<I, O> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the invocation `id` (unique among open calls) by `client`.
    pub fn call(&mut self, id: u64, client: u64, input: I, time: u64) -> Result<(), EventError> {
        if self.open.contains_key(&id) {
            return Err(EventError::DuplicateCall(id));
        }
        self.open.insert(id, self.history.operations.len());
        self.history.operations.push(Operation {
            client,
            input,
            outcome: Outcome::Unknown,
            call: time,
            ret: None,
        });
        Ok(())
    }

    /// Records how call `id` ended. An unknown outcome leaves the interval open.
    pub fn ret(&mut self, id: u64, outcome: Outcome<O>, time: u64) -> Result<(), EventError> {
        let index = self
            .open
            .remove(&id)
            .ok_or(EventError::ReturnWithoutCall(id))?;
        let op = &mut self.history.operations[index];
        if time < op.call {
            return Err(EventError::ReturnBeforeCall {
                id,
                call: op.call,
                ret: time,
            });
        }
        if !matches!(outcome, Outcome::Unknown) {
            op.ret = Some(time);
        }
        op.outcome = outcome;
        Ok(())
    }

    /// The input of open call `id`.
    pub fn pending_input(&self, id: u64) -> Option<&I> {
        self.open
            .get(&id)
            .map(|&index| &self.history.operations[index].input)
    }

    pub fn annotate(&mut self, time: u64, text: impl Into<String>) {
        self.history.annotations.push(Annotation {
            time,
            text: text.into(),
        });
    }

    /// The history; calls that never returned are unknown.
    pub fn finish(self) -> History<I, O> {
        self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_pairs_calls_and_returns() {
        let mut b = HistoryBuilder::<&str, i32>::new();
        b.call(1, 0, "a", 0).unwrap();
        b.call(2, 1, "b", 1).unwrap();
        b.ret(2, Outcome::Ok(5), 2).unwrap();
        b.call(3, 1, "c", 3).unwrap();
        b.ret(3, Outcome::Unknown, 4).unwrap();
        assert_eq!(
            b.ret(2, Outcome::Failed, 5),
            Err(EventError::ReturnWithoutCall(2))
        );
        let h = b.finish();
        assert_eq!(h.operations[0].outcome, Outcome::Unknown);
        assert_eq!(h.operations[0].ret, None);
        assert_eq!(h.operations[1].ret, Some(2));
        assert_eq!(h.operations[2].ret, None);
    }

    #[test]
    fn return_before_call_is_rejected() {
        let mut b = HistoryBuilder::<(), ()>::new();
        b.call(1, 0, (), 10).unwrap();
        assert!(matches!(
            b.ret(1, Outcome::Ok(()), 5),
            Err(EventError::ReturnBeforeCall { .. })
        ));
    }
}
