//! The checker agrees with brute force on small random histories, for the register
//! and for both key/value models (whose reads the checker prunes with
//! `Model::could_accept_later`).
//!
//! Outputs here are random, not derived from an execution, so both verdicts occur
//! often. The brute-force oracle tries every subset of the unknown operations and
//! every order of the chosen operations that respects real time (a before b when a
//! returned strictly before b was called), which is the definition itself. Failed
//! operations never take effect. Any disagreement is a bug in the search or one of its
//! prunings.

use checkers::{check, CheckOptions, History, Operation, Outcome, Verdict};
use proptest::prelude::*;
use specs::kv::{KvInput, KvOutput};
use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::register::{CasInput, RegisterOutput};
use specs::{CasRegister, Kv, KvFetchAppend, Model};

fn linearizable_by_brute_force<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
) -> bool {
    let ops: Vec<&Operation<M::Input, M::Output>> = history
        .operations
        .iter()
        .filter(|o| !o.is_failed())
        .collect();
    let unknown: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    for mask in 0..(1u32 << unknown.len()) {
        let chosen: Vec<usize> = (0..ops.len())
            .filter(|&i| match unknown.iter().position(|&u| u == i) {
                Some(k) => mask & (1 << k) != 0,
                None => true,
            })
            .collect();
        if some_order_works(model, &ops, &chosen, model.init()) {
            return true;
        }
    }
    false
}

fn some_order_works<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    left: &[usize],
    state: M::State,
) -> bool {
    if left.is_empty() {
        return true;
    }
    for (k, &i) in left.iter().enumerate() {
        // i may go next only if no other remaining operation returned before i was called.
        let blocked = left
            .iter()
            .any(|&j| j != i && ops[j].ret.is_some_and(|r| r < ops[i].call));
        if blocked {
            continue;
        }
        if let Some(next) = model.step(&state, &ops[i].input, ops[i].output()) {
            let rest: Vec<usize> = left
                .iter()
                .enumerate()
                .filter(|&(m, _)| m != k)
                .map(|(_, &j)| j)
                .collect();
            if some_order_works(model, ops, &rest, next) {
                return true;
            }
        }
    }
    false
}

/// An operation called at `call` that, by `fate`, has an unknown outcome (0), failed
/// (1) or returned `output` (otherwise) `len` later.
fn operation<I, O>(
    client: u64,
    call: u64,
    len: u64,
    fate: u8,
    input: I,
    output: O,
) -> Operation<I, O> {
    let (outcome, ret) = match fate {
        0 => (Outcome::Unknown, None),
        1 => (Outcome::Failed, Some(call + len)),
        _ => (Outcome::Ok(output), Some(call + len)),
    };
    Operation {
        client,
        input,
        outcome,
        call,
        ret,
    }
}

fn small_history() -> impl Strategy<Value = History<CasInput, RegisterOutput>> {
    let op = (
        0u64..3,
        0u64..12,
        0u64..6,
        0u8..3,
        0i64..3,
        0i64..3,
        any::<bool>(),
        0u8..4,
    );
    proptest::collection::vec(op, 1..9).prop_map(|raw| {
        let operations = raw
            .into_iter()
            .map(|(client, call, len, kind, a, b, flag, fate)| {
                let input = match kind {
                    0 => CasInput::Read,
                    1 => CasInput::Write { value: a },
                    _ => CasInput::Cas { from: a, to: b },
                };
                let output = match input {
                    CasInput::Read => RegisterOutput::read(if flag { Some(a) } else { None }),
                    CasInput::Write { .. } => RegisterOutput::done(),
                    CasInput::Cas { .. } => RegisterOutput::cas(flag),
                };
                operation(client, call, len, fate, input, output)
            })
            .collect();
        History {
            operations,
            annotations: Vec::new(),
        }
    })
}

/// Two keys, values built from "a" and "b", reads of short strings: puts, appends and
/// gets that can contradict each other in few operations.
fn small_kv_history() -> impl Strategy<Value = History<KvInput, KvOutput>> {
    let op = (0u64..3, 0u64..12, 0u64..6, 0u8..4, 0u8..2, 0u8..6, 0u8..4);
    proptest::collection::vec(op, 1..9).prop_map(|raw| {
        const SEEN: [&str; 6] = ["", "a", "b", "ab", "ba", "aa"];
        let operations = raw
            .into_iter()
            .map(|(client, call, len, kind, key, v, fate)| {
                let key = format!("k{key}");
                let value = if v % 2 == 0 { "a" } else { "b" }.to_string();
                let (input, output) = match kind {
                    0 | 1 => (
                        KvInput::Get { key },
                        KvOutput {
                            value: Some(SEEN[v as usize].to_string()),
                        },
                    ),
                    2 => (KvInput::Put { key, value }, KvOutput::default()),
                    _ => (KvInput::Append { key, value }, KvOutput::default()),
                };
                operation(client, call, len, fate, input, output)
            })
            .collect();
        History {
            operations,
            annotations: Vec::new(),
        }
    })
}

/// The key/value server's model: gets and appends report values, cas may fail.
fn small_fetch_append_history(
) -> impl Strategy<Value = History<FetchAppendInput, FetchAppendOutput>> {
    let op = (0u64..3, 0u64..12, 0u64..6, 0u8..5, 0u8..2, 0u8..7, 0u8..4);
    proptest::collection::vec(op, 1..8).prop_map(|raw| {
        const SEEN: [Option<&str>; 7] = [
            None,
            Some(""),
            Some("a"),
            Some("b"),
            Some("ab"),
            Some("ba"),
            Some("aa"),
        ];
        let operations = raw
            .into_iter()
            .map(|(client, call, len, kind, key, v, fate)| {
                let key = format!("k{key}");
                let value = if v % 2 == 0 { "a" } else { "b" }.to_string();
                let seen = FetchAppendOutput {
                    value: SEEN[v as usize].map(String::from),
                    ok: None,
                };
                let (input, output) = match kind {
                    0 | 1 => (FetchAppendInput::Get { key }, seen),
                    2 => (
                        FetchAppendInput::Put { key, value },
                        FetchAppendOutput::default(),
                    ),
                    3 => (FetchAppendInput::Append { key, value }, seen),
                    _ => (
                        FetchAppendInput::Cas {
                            key,
                            from: value,
                            to: "b".into(),
                        },
                        FetchAppendOutput {
                            value: None,
                            ok: Some(v % 3 == 0),
                        },
                    ),
                };
                operation(client, call, len, fate, input, output)
            })
            .collect();
        History {
            operations,
            annotations: Vec::new(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_checker_agrees_with_brute_force(history in small_history()) {
        let expected = if linearizable_by_brute_force(&CasRegister, &history) { Verdict::Ok } else { Verdict::Illegal };
        let got = check(&CasRegister, &history, &CheckOptions::default()).verdict;
        prop_assert_eq!(got, expected, "history: {:?}", history.operations);
    }

    #[test]
    fn the_fetch_append_checker_agrees_with_brute_force(history in small_fetch_append_history(), partition in any::<bool>()) {
        let expected = if linearizable_by_brute_force(&KvFetchAppend, &history) { Verdict::Ok } else { Verdict::Illegal };
        let options = CheckOptions { partition, ..CheckOptions::default() };
        let got = check(&KvFetchAppend, &history, &options).verdict;
        prop_assert_eq!(got, expected, "history: {:?}", history.operations);
    }

    #[test]
    fn the_kv_checker_agrees_with_brute_force(history in small_kv_history(), partition in any::<bool>()) {
        let expected = if linearizable_by_brute_force(&Kv, &history) { Verdict::Ok } else { Verdict::Illegal };
        let options = CheckOptions { partition, ..CheckOptions::default() };
        let got = check(&Kv, &history, &options).verdict;
        prop_assert_eq!(got, expected, "history: {:?}", history.operations);
    }
}
