//! A stateright model of the key/value server's exactly-once protocol: clients that
//! resend their one outstanding request (same `seq`) over a network that loses,
//! duplicates and reorders every message, and a server with a duplicate table keyed
//! by client (see [`kvsrv_protocol`](crate::kvsrv_protocol)).
//!
//! The property is the one the conformance tests check on real runs, with the same
//! specification: `always "linearizable"`, the clients' history judged against
//! [`KvFetchAppend`] through [`Spec`]. `sometimes "every operation done"` shows
//! the check is not vacuous. With `forget_duplicates` the server executes every copy
//! it receives, and the checker finds the history where a resent append lands twice.

use std::collections::{BTreeMap, BTreeSet};

use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::{Model, Property};

use crate::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use crate::sequential_spec::Spec;
use crate::KvFetchAppend;

/// The model: what each client does, and whether the server keeps its duplicate table.
#[derive(Debug, Clone)]
pub struct KvsrvModel {
    pub scripts: Vec<Vec<FetchAppendInput>>,
    pub forget_duplicates: bool,
}

impl KvsrvModel {
    /// Two clients appending to one key, one of them reading it back: small enough to
    /// explore fully, rich enough that a doubled append is visible.
    pub fn two_appenders(forget_duplicates: bool) -> KvsrvModel {
        let append = |v: &str| FetchAppendInput::Append {
            key: "k".into(),
            value: v.into(),
        };
        KvsrvModel {
            scripts: vec![
                vec![append("a"), FetchAppendInput::Get { key: "k".into() }],
                vec![append("b")],
            ],
            forget_duplicates,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    Request {
        client: usize,
        seq: u64,
        op: Op,
    },
    Reply {
        client: usize,
        seq: u64,
        value: Option<String>,
        ok: Option<bool>,
    },
}

/// An operation, ordered so messages can live in a set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Op(pub usize, pub usize);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Client {
    /// Index of the next operation in the script.
    next: usize,
    /// The seq of the request in flight.
    pending: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    store: BTreeMap<String, String>,
    /// client -> (last seq, its answer)
    table: BTreeMap<usize, (u64, Option<String>, Option<bool>)>,
    /// In flight; delivering a message leaves it here, so it may arrive again.
    network: BTreeSet<Msg>,
    clients: Vec<Client>,
    history: LinearizabilityTester<usize, Spec<KvFetchAppend>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Invoke(usize),
    Resend(usize),
    Deliver(Msg),
    Drop(Msg),
}

impl KvsrvModel {
    fn op(&self, op: &Op) -> &FetchAppendInput {
        &self.scripts[op.0][op.1]
    }

    /// The server executing `op` (independently of the spec: this is the design
    /// under test).
    fn execute(
        store: &mut BTreeMap<String, String>,
        op: &FetchAppendInput,
    ) -> (Option<String>, Option<bool>) {
        match op {
            FetchAppendInput::Get { key } => (store.get(key).cloned(), None),
            FetchAppendInput::Put { key, value } => {
                store.insert(key.clone(), value.clone());
                (None, None)
            }
            FetchAppendInput::Append { key, value } => {
                let old = store.get(key).cloned();
                store.insert(key.clone(), old.clone().unwrap_or_default() + value);
                (old, None)
            }
            FetchAppendInput::Cas { key, from, to } => {
                let swaps = store.get(key) == Some(from);
                if swaps {
                    store.insert(key.clone(), to.clone());
                }
                (None, Some(swaps))
            }
        }
    }
}

impl Model for KvsrvModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            store: BTreeMap::new(),
            table: BTreeMap::new(),
            network: BTreeSet::new(),
            clients: vec![
                Client {
                    next: 0,
                    pending: None
                };
                self.scripts.len()
            ],
            history: LinearizabilityTester::new(Spec::default()),
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for (c, client) in state.clients.iter().enumerate() {
            match client.pending {
                None if client.next < self.scripts[c].len() => actions.push(Action::Invoke(c)),
                Some(_) => actions.push(Action::Resend(c)),
                None => {}
            }
        }
        for msg in &state.network {
            actions.push(Action::Deliver(msg.clone()));
            actions.push(Action::Drop(msg.clone()));
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Invoke(c) => {
                let next = s.clients[c].next;
                let seq = next as u64 + 1;
                s.clients[c].pending = Some(seq);
                s.history.on_invoke(c, self.scripts[c][next].clone()).ok()?;
                s.network.insert(Msg::Request {
                    client: c,
                    seq,
                    op: Op(c, next),
                });
            }
            Action::Resend(c) => {
                let seq = s.clients[c].pending?;
                let op = Op(c, s.clients[c].next);
                if !s.network.insert(Msg::Request { client: c, seq, op }) {
                    return None;
                }
            }
            Action::Drop(msg) => {
                s.network.remove(&msg);
            }
            Action::Deliver(Msg::Request { client, seq, op }) => {
                let answer = match s.table.get(&client) {
                    Some(&(last, _, _)) if seq < last => return None,
                    Some((last, value, ok)) if seq == *last && !self.forget_duplicates => {
                        (value.clone(), *ok)
                    }
                    _ => {
                        let answer = Self::execute(&mut s.store, self.op(&op));
                        s.table.insert(client, (seq, answer.0.clone(), answer.1));
                        answer
                    }
                };
                s.network.insert(Msg::Reply {
                    client,
                    seq,
                    value: answer.0,
                    ok: answer.1,
                });
            }
            Action::Deliver(Msg::Reply {
                client,
                seq,
                value,
                ok,
            }) => {
                if s.clients[client].pending != Some(seq) {
                    return None;
                }
                s.clients[client].pending = None;
                s.clients[client].next += 1;
                s.history
                    .on_return(client, Some(FetchAppendOutput { value, ok }))
                    .ok()?;
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("linearizable", |_, s: &State| {
                s.history.serialized_history().is_some()
            }),
            Property::sometimes("every operation done", |m: &KvsrvModel, s: &State| {
                s.clients
                    .iter()
                    .zip(&m.scripts)
                    .all(|(c, script)| c.next == script.len())
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::Checker;

    #[test]
    fn the_protocol_is_linearizable_under_loss_and_duplication() {
        let checker = KvsrvModel::two_appenders(false)
            .checker()
            .spawn_bfs()
            .join();
        checker.assert_properties();
        eprintln!("{} states explored", checker.unique_state_count());
        assert!(checker.unique_state_count() > 100);
    }

    #[test]
    fn forgetting_the_duplicate_table_is_caught() {
        let checker = KvsrvModel::two_appenders(true).checker().spawn_bfs().join();
        let path = checker.assert_any_discovery("linearizable");
        let value = path
            .last_state()
            .store
            .get("k")
            .cloned()
            .unwrap_or_default();
        assert!(
            value.matches('a').count() >= 2 || value.matches('b').count() >= 2,
            "the counterexample applies an append twice: {value:?}"
        );
    }
}
