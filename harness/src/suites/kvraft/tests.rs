//! The kvraft tests: workloads and faults; progress and linearizability are judged
//! for all by [`Test::run`] and [`Test::finish`].

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::FetchAppendInput;

use super::run::{self, Test};
use crate::client::Workload;
use crate::nemesis::Fault;
use crate::network::{NetConfig, Partition};
use crate::suite::Context;

/// Runs `body` against a fresh cluster and judges the run.
pub(super) fn with_cluster(cx: &mut Context, body: impl FnOnce(&mut Test)) {
    if let Some(mut t) = run::start(cx) {
        body(&mut t);
        t.finish();
    }
}

/// `ops` random operations per client over `keys` keys: reads, writes, appends of
/// unique pieces (naming client and position) and cas.
pub(super) fn mixed(keys: usize, ops: usize) -> impl Workload<FetchAppendInput> {
    let mut issued: HashMap<usize, usize> = HashMap::new();
    move |client: usize, rng: &mut StdRng| {
        let n = issued.entry(client).or_insert(0);
        if *n >= ops {
            return None;
        }
        *n += 1;
        let key = format!("k{}", rng.gen_range(0..keys));
        let small = |rng: &mut StdRng| format!("v{}", rng.gen_range(0..3));
        Some(match rng.gen_range(0..4) {
            0 => FetchAppendInput::Get { key },
            1 => FetchAppendInput::Put {
                key,
                value: small(rng),
            },
            2 => FetchAppendInput::Append {
                key,
                value: format!("{client}.{n};"),
            },
            _ => FetchAppendInput::Cas {
                key,
                from: small(rng),
                to: small(rng),
            },
        })
    }
}

/// Every client appends to one key and reads it: each append is an observation
/// of all before it, which the checker holds to the order the log gave them.
pub(super) fn unreliable_one_key_appends(t: &mut Test) {
    t.fault(Fault::Net(NetConfig::unreliable()));
    let mut issued: HashMap<usize, usize> = HashMap::new();
    let workload = move |client: usize, _: &mut StdRng| {
        let n = issued.entry(client).or_insert(0);
        *n += 1;
        match *n {
            1..=10 => Some(FetchAppendInput::Append {
                key: "k".into(),
                value: format!("{client}.{n};"),
            }),
            11 => Some(FetchAppendInput::Get { key: "k".into() }),
            _ => None,
        }
    };
    t.run_requiring(5, workload, 75);
}

/// The leader is cut off from the others (a minority of one) while clients keep
/// sending to every node: the majority elects a new leader and serves them; the old
/// leader must not serve anything it cannot commit, reads included. Then the
/// partition heals and clients must make progress again. Three rounds, each with
/// the leader of the moment.
pub(super) fn partition_leader_in_minority(t: &mut Test) {
    let nodes = t.cluster.node_names().to_vec();
    for _ in 0..3 {
        let Some(leader) = t.leader() else {
            return;
        };
        t.fault(Fault::Partition(Partition::isolate(&leader, &nodes)));
        t.run_requiring(3, mixed(3, 40), 50);
        t.fault(Fault::Heal);
        t.run_requiring(3, mixed(3, 10), 90);
        if !t.cx.passing() {
            return;
        }
    }
}

/// Five clients of mixed operations on a lossy, duplicating, reordering network.
pub(super) fn unreliable_mixed(t: &mut Test) {
    t.fault(Fault::Net(NetConfig::unreliable()));
    t.run_requiring(5, mixed(3, 30), 75);
}
