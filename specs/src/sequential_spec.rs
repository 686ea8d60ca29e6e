//! A [`Model`] as stateright's `SequentialSpec`, so one specification serves both the
//! history checker (in `checkers`) and stateright's linearizability tester (in the
//! protocol models here).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use stateright::semantics::SequentialSpec;

use crate::Model;

/// The reference object: a model's state, stepped by the model.
///
/// Returns are `Option<Output>`: `Some` for what a client was told; `None` is what
/// [`SequentialSpec::invoke`] gives for an operation still in flight, whose effect
/// counts but whose answer nobody saw.
pub struct Spec<M: Model> {
    pub state: M::State,
    model: PhantomData<M>,
}

impl<M: Model + Default> Default for Spec<M> {
    fn default() -> Self {
        Spec {
            state: M::default().init(),
            model: PhantomData,
        }
    }
}

impl<M: Model + Default> SequentialSpec for Spec<M>
where
    M::Output: PartialEq,
{
    type Op = M::Input;
    type Ret = Option<M::Output>;

    fn invoke(&mut self, op: &M::Input) -> Option<M::Output> {
        // An unknown output: the model takes the operation to have had its effect.
        if let Some(next) = M::default().step(&self.state, op, None) {
            self.state = next;
        }
        None
    }

    fn is_valid_step(&mut self, op: &M::Input, ret: &Option<M::Output>) -> bool {
        match M::default().step(&self.state, op, ret.as_ref()) {
            Some(next) => {
                self.state = next;
                true
            }
            None => false,
        }
    }
}

impl<M: Model> Clone for Spec<M> {
    fn clone(&self) -> Self {
        Spec {
            state: self.state.clone(),
            model: PhantomData,
        }
    }
}

impl<M: Model> fmt::Debug for Spec<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.state.fmt(f)
    }
}

impl<M: Model> PartialEq for Spec<M> {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state
    }
}

impl<M: Model> Eq for Spec<M> {}

impl<M: Model> Hash for Spec<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.state.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
    use crate::KvFetchAppend;
    use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

    fn append(v: &str) -> FetchAppendInput {
        FetchAppendInput::Append {
            key: "k".into(),
            value: v.into(),
        }
    }

    fn old(v: Option<&str>) -> Option<FetchAppendOutput> {
        Some(FetchAppendOutput {
            value: v.map(String::from),
            ok: None,
        })
    }

    #[test]
    fn the_tester_accepts_and_rejects_by_the_model() {
        let mut t = LinearizabilityTester::new(Spec::<KvFetchAppend>::default());
        t.on_invoke(1, append("a")).unwrap();
        t.on_invoke(2, append("b")).unwrap();
        t.on_return(2, old(None)).unwrap();
        t.on_return(1, old(Some("b"))).unwrap();
        assert!(t.is_consistent());
        let mut bad = t.clone();
        bad.on_invoke(1, append("c")).unwrap();
        bad.on_return(1, old(Some("a"))).unwrap();
        assert!(!bad.is_consistent());
        // An operation in flight may have happened.
        t.on_invoke(2, append("c")).unwrap();
        t.on_invoke(1, FetchAppendInput::Get { key: "k".into() })
            .unwrap();
        t.on_return(1, old(Some("bac"))).unwrap();
        assert!(t.is_consistent());
    }
}
