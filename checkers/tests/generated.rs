//! Property tests on generated histories.
//!
//! Histories are linearizable by construction: every operation takes effect at a
//! random instant inside its interval, and outputs come from applying operations in
//! the order of those instants. Such histories must always be Ok; changing one read
//! to a value never written must always make them Illegal. Operations with unknown
//! outcomes are generated both ways (took effect at their instant, or never), and
//! failed ones never take effect, so reading what one wrote is a violation.

use std::collections::HashMap;

use checkers::{check, CheckOptions, History, Operation, Outcome, Verdict};
use proptest::prelude::*;
use specs::kv::{KvInput, KvOutput};
use specs::register::{CasInput, RegisterOutput};

/// What the generator decides about one operation, before outputs are computed.
#[derive(Debug, Clone)]
struct Plan {
    client: u64,
    call: u64,
    effect: u64,
    ret: u64,
    /// 0: completes; 1: unknown, took effect; 2: unknown, never took effect;
    /// 3: failed (never took effect).
    fate: u8,
    kind: u8,
    key: u8,
    arg: u8,
}

/// Per client, a sequence of operations with increasing, non-overlapping intervals.
fn plans(
    max_clients: usize,
    max_ops: usize,
    with_unknown: bool,
) -> impl Strategy<Value = Vec<Plan>> {
    let op = (
        1u64..20,
        0u64..20,
        1u64..20,
        0u8..10,
        0u8..3,
        0u8..2,
        any::<u8>(),
    );
    proptest::collection::vec(proptest::collection::vec(op, 1..max_ops), 1..=max_clients).prop_map(
        move |clients| {
            let mut plans = Vec::new();
            for (c, ops) in clients.into_iter().enumerate() {
                let mut t = 0u64;
                for (gap, before, after, fate, kind, key, arg) in ops {
                    // Distinct instants everywhere: the client's number in the low digits.
                    let call = (t + gap) * 100 + c as u64;
                    let effect = call + before * 100;
                    let ret = effect + after * 100;
                    let fate = match fate {
                        0 if with_unknown => 1,
                        1 if with_unknown => 2,
                        2 => 3,
                        _ => 0,
                    };
                    plans.push(Plan {
                        client: c as u64,
                        call,
                        effect,
                        ret,
                        fate,
                        kind,
                        key,
                        arg,
                    });
                    t = ret / 100 + 1;
                }
            }
            plans
        },
    )
}

/// Builds the operation from its plan and, if it took effect, the output.
fn finish<I, O>(plan: &Plan, input: I, output: Option<O>) -> Operation<I, O> {
    let (outcome, ret) = match plan.fate {
        0 => (
            Outcome::Ok(output.expect("completed operations have an output")),
            Some(plan.ret),
        ),
        1 | 2 => (Outcome::Unknown, None),
        _ => (Outcome::Failed, Some(plan.ret)),
    };
    Operation {
        client: plan.client,
        input,
        outcome,
        call: plan.call,
        ret,
    }
}

fn took_effect(plan: &Plan) -> bool {
    plan.fate <= 1
}

/// A key/value history over a few keys: gets, puts and appends of unique values.
fn kv_history(plans: &[Plan]) -> History<KvInput, KvOutput> {
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|&i| plans[i].effect);
    let mut store: HashMap<String, String> = HashMap::new();
    let mut ops: Vec<Option<Operation<KvInput, KvOutput>>> = vec![None; plans.len()];
    for i in order {
        let p = &plans[i];
        let key = format!("k{}", p.key);
        let value = format!("<{}.{}>", p.client, i);
        let (input, output) = match p.kind {
            0 => {
                let seen = store.get(&key).cloned().unwrap_or_default();
                (KvInput::Get { key }, KvOutput { value: Some(seen) })
            }
            1 => {
                if took_effect(p) {
                    store.insert(key.clone(), value.clone());
                }
                (KvInput::Put { key, value }, KvOutput::default())
            }
            _ => {
                if took_effect(p) {
                    store.entry(key.clone()).or_default().push_str(&value);
                }
                (KvInput::Append { key, value }, KvOutput::default())
            }
        };
        ops[i] = Some(finish(p, input, Some(output)));
    }
    History {
        operations: ops.into_iter().map(Option::unwrap).collect(),
        annotations: Vec::new(),
    }
}

/// A compare-and-set register history with unique written values.
fn register_history(plans: &[Plan]) -> History<CasInput, RegisterOutput> {
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|&i| plans[i].effect);
    let mut value: Option<i64> = None;
    let mut ops = vec![None; plans.len()];
    for i in order {
        let p = &plans[i];
        let (input, output) = match p.kind {
            0 => (CasInput::Read, RegisterOutput::read(value)),
            1 => {
                let v = 1000 + i as i64;
                if took_effect(p) {
                    value = Some(v);
                }
                (CasInput::Write { value: v }, RegisterOutput::done())
            }
            _ => {
                // Compare against the current value half the time, so both outcomes occur.
                let from = if p.arg % 2 == 0 {
                    value.unwrap_or(-1)
                } else {
                    i64::from(p.arg)
                };
                let to = 1000 + i as i64;
                let swapped = value == Some(from);
                if swapped && took_effect(p) {
                    value = Some(to);
                }
                (CasInput::Cas { from, to }, RegisterOutput::cas(swapped))
            }
        };
        ops[i] = Some(finish(p, input, Some(output)));
    }
    History {
        operations: ops.into_iter().map(Option::unwrap).collect(),
        annotations: Vec::new(),
    }
}

fn verdict<M: specs::Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    partition: bool,
) -> Verdict {
    let options = CheckOptions {
        partition,
        ..CheckOptions::default()
    };
    check(model, history, &options).verdict
}

/// Indices of completed reads.
fn completed_reads<I, O>(history: &History<I, O>, is_read: impl Fn(&I) -> bool) -> Vec<usize> {
    (0..history.len())
        .filter(|&i| {
            is_read(&history.operations[i].input) && history.operations[i].output().is_some()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn generated_kv_histories_are_linearizable(plans in plans(5, 12, false), partition in any::<bool>()) {
        let history = kv_history(&plans);
        prop_assert_eq!(verdict(&specs::Kv, &history, partition), Verdict::Ok);
    }

    #[test]
    fn generated_register_histories_are_linearizable(plans in plans(5, 12, false)) {
        let history = register_history(&plans);
        prop_assert_eq!(verdict(&specs::CasRegister, &history, true), Verdict::Ok);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_illegal(plans in plans(5, 12, true), pick in any::<prop::sample::Index>(), partition in any::<bool>()) {
        let mut history = kv_history(&plans);
        let reads = completed_reads(&history, |i| matches!(i, KvInput::Get { .. }));
        prop_assume!(!reads.is_empty());
        let i = reads[pick.index(reads.len())];
        history.operations[i].outcome = Outcome::Ok(KvOutput { value: Some("never written".into()) });
        prop_assert_eq!(verdict(&specs::Kv, &history, partition), Verdict::Illegal);
    }

    #[test]
    fn a_register_read_of_a_value_never_written_is_illegal(plans in plans(5, 12, true), pick in any::<prop::sample::Index>()) {
        let mut history = register_history(&plans);
        let reads = completed_reads(&history, |i| matches!(i, CasInput::Read));
        prop_assume!(!reads.is_empty());
        let i = reads[pick.index(reads.len())];
        history.operations[i].outcome = Outcome::Ok(RegisterOutput::read(Some(-7)));
        prop_assert_eq!(verdict(&specs::CasRegister, &history, true), Verdict::Illegal);
    }

    /// Unknown operations that took effect and unknown ones that never did, and failed
    /// ones, in the same history: still linearizable.
    #[test]
    fn unknown_outcomes_are_accepted_either_way(plans in plans(5, 12, true), partition in any::<bool>()) {
        let history = kv_history(&plans);
        prop_assert_eq!(verdict(&specs::Kv, &history, partition), Verdict::Ok);
        let history = register_history(&plans);
        prop_assert_eq!(verdict(&specs::CasRegister, &history, true), Verdict::Ok);
    }

    /// A write that failed did not take effect: a read that saw its value is illegal,
    /// while the same write with an unknown outcome makes that read legal.
    #[test]
    fn failed_writes_did_not_happen_unknown_ones_may_have(plans in plans(4, 10, false), pick in any::<prop::sample::Index>()) {
        let mut history = register_history(&plans);
        let writes: Vec<usize> = (0..history.len())
            .filter(|&i| matches!(history.operations[i].input, CasInput::Write { .. }))
            .collect();
        prop_assume!(!writes.is_empty());
        let w = writes[pick.index(writes.len())];
        let CasInput::Write { value } = history.operations[w].input else { unreachable!() };
        // A new client reads the write's value after everything else has returned.
        let end = history.operations.iter().filter_map(|o| o.ret).max().unwrap_or(0) + 1000;
        history.operations.push(Operation {
            client: 99,
            input: CasInput::Read,
            outcome: Outcome::Ok(RegisterOutput::read(Some(value))),
            call: end,
            ret: Some(end + 1),
        });
        // Make every other write and cas fail so nothing overwrites the value.
        for (i, op) in history.operations.iter_mut().enumerate() {
            if i != w && !matches!(op.input, CasInput::Read) {
                op.outcome = Outcome::Failed;
            }
        }
        // Reads before the write saw nil or other values; drop them to keep it simple.
        history.operations.retain(|o| !matches!(o.input, CasInput::Read) || o.client == 99);
        let w = history.operations.iter().position(|o| o.input == (CasInput::Write { value })).unwrap();
        history.operations[w].outcome = Outcome::Failed;
        prop_assert_eq!(verdict(&specs::CasRegister, &history, true), Verdict::Illegal);
        history.operations[w].outcome = Outcome::Unknown;
        history.operations[w].ret = None;
        prop_assert_eq!(verdict(&specs::CasRegister, &history, true), Verdict::Ok);
    }
}
