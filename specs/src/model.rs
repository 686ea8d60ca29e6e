//! The shape of a sequential specification.

use std::fmt::Debug;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Asks whether some operation that may still come first has an input satisfying the
/// predicate (see [`Model::could_accept_later`]).
pub type MayIntervene<'a, I> = dyn FnMut(&dyn Fn(&I) -> bool) -> bool + 'a;

/// A sequential specification: what a single correct copy of the object would do.
///
/// The checker explores orders of concurrent operations and asks the model, one step at
/// a time, whether an operation with this input could have returned this output in
/// this state. `State` must be cheap to clone and hash: the checker caches every
/// (set of operations done, state) pair it has seen.
pub trait Model: Sync {
    /// What a client asked for (serialised with a `"f"` tag in histories).
    type Input: Debug + Clone + Send + Sync + Serialize + DeserializeOwned;
    /// What it was told. Fields that do not apply to an operation are absent.
    type Output: Debug + Clone + Send + Sync + Serialize + DeserializeOwned;
    type State: Debug + Clone + Eq + Hash + Send;

    /// The name used on the command line and in reports.
    fn name(&self) -> &'static str;

    fn init(&self) -> Self::State;

    /// The state after `input` returned `output` in `state`, or `None` if that output
    /// is impossible there. `output` is `None` when the outcome is unknown (a timeout):
    /// then any output is acceptable and the operation is taken to have had its effect.
    /// (That it may also have had no effect is the checker's business: such an
    /// operation may be placed after every other one.)
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Rejects an output that cannot belong to this input at all (a read without a
    /// value, say), so a malformed history is reported as such and not as a violation.
    fn validate(&self, _input: &Self::Input, _output: &Self::Output) -> Result<(), String> {
        Ok(())
    }

    /// True if this operation leaves the state unchanged in every state that accepts
    /// it (a read, a compare-and-set known to have failed). The checker linearizes such
    /// an operation as soon as the model accepts it, without trying alternatives,
    /// which is sound only if this holds in every state: answer false when unsure.
    fn is_read_only(&self, _input: &Self::Input, _output: Option<&Self::Output>) -> bool {
        false
    }

    /// Whether [`Model::could_accept_later`] can ever answer false; the checker skips
    /// asking when it cannot.
    const PRUNES_READS: bool = false;

    /// For a read-only operation the model refuses in `state`: false only if no
    /// sequence of operations can lead from `state` to one that accepts it, given that
    /// the operations that may still come before it are those for which
    /// `may_intervene(pred)` finds an input satisfying `pred`. The checker then gives up
    /// on the configuration at once instead of exploring it until the read's return.
    /// Answer true when unsure; true is always sound.
    fn could_accept_later(
        &self,
        _state: &Self::State,
        _input: &Self::Input,
        _output: Option<&Self::Output>,
        _may_intervene: &mut MayIntervene<'_, Self::Input>,
    ) -> bool {
        true
    }

    /// Splits a history into independent parts (P-compositionality): each inner vector
    /// lists the indices of `inputs` that form one part, checked on its own from
    /// `init`. `None` means the history is one part.
    fn partition(&self, _inputs: &[&Self::Input]) -> Option<Vec<Vec<usize>>> {
        None
    }

    /// One line for an operation, as drawn on a timeline.
    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String;

    /// One line for a state, shown when hovering over an operation.
    fn describe_state(&self, state: &Self::State) -> String;
}

/// Groups indices by key, in order of first appearance; shared by the key/value models.
pub(crate) fn partition_by_key<'a, I, F>(inputs: &[&'a I], key: F) -> Vec<Vec<usize>>
where
    F: Fn(&'a I) -> &'a str,
{
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut parts: Vec<Vec<usize>> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let part = *index.entry(key(input)).or_insert_with(|| {
            parts.push(Vec::new());
            parts.len() - 1
        });
        parts[part].push(i);
    }
    parts
}
