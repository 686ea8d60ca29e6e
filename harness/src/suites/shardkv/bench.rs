//! Measurements, not tests (`cargo bench -p harness --bench shardkv`): throughput
//! of 1, 2 and 3 groups under one closed-loop load, and how long moving one shard
//! takes. Each runs through the suite's runner like a test and reports its figures
//! as notes; a run in which an operation fails reports nothing (`progress`).

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::FetchAppendInput;

use super::run::{self, key2shard, key_in, Test, FIRST_GID, NSHARDS};
use crate::client::Workload;
use crate::history::Completion;
use crate::suite::{property, Context, TestCase};

/// Clients of the throughput load, and appends each.
const CLIENTS: usize = 20;
const APPENDS: usize = 50;

/// The measurements, by name.
pub static BENCHES: &[TestCase] = &[
    TestCase {
        name: "bench::throughput_1_group",
        after: None,
        run: |cx| throughput(cx, 1),
    },
    TestCase {
        name: "bench::throughput_2_groups",
        after: None,
        run: |cx| throughput(cx, 2),
    },
    TestCase {
        name: "bench::throughput_3_groups",
        after: None,
        run: |cx| throughput(cx, 3),
    },
    TestCase {
        name: "bench::move_one_shard",
        after: None,
        run: move_one_shard,
    },
];

fn keys() -> Vec<String> {
    (0..NSHARDS).map(|s| key_in(s, 0)).collect()
}

/// Appends of 100 bytes to the ten shards' keys, `per_client` per client.
fn appends(per_client: usize) -> impl Workload<FetchAppendInput> {
    let keys = keys();
    let mut issued: HashMap<usize, usize> = HashMap::new();
    move |client: usize, rng: &mut StdRng| {
        let n = issued.entry(client).or_insert(0);
        *n += 1;
        (*n <= per_client).then(|| FetchAppendInput::Append {
            key: keys[rng.gen_range(0..keys.len())].clone(),
            value: format!("{client:02}.{n:04};").repeat(13)[..100].to_string(),
        })
    }
}

fn all_ok(
    t: &mut Test,
    ops: &[crate::client::Done<FetchAppendInput, specs::kv_fetch_append::FetchAppendOutput>],
) -> bool {
    t.kv.all_ok(&ops.to_vec(), "the measured load")
}

/// Every group joined and serving, then [`CLIENTS`] clients append as fast as they
/// are answered (think time up to 20 ms, as in the suite).
fn throughput(cx: &mut Context, groups: usize) {
    let Some(mut t) = run::start(cx, groups, "-1") else {
        return;
    };
    let gids: Vec<u64> = (0..groups as u64).map(|g| FIRST_GID + g).collect();
    if t.join(&gids).is_some() && t.query(-1).is_some() {
        let keys = keys();
        let warm = t.run(keys.len(), reads(keys), 100);
        let start = t.kv.cluster.now();
        let ops = t.run(CLIENTS, appends(APPENDS), 100);
        let elapsed = t.kv.cluster.now() - start;
        if all_ok(&mut t, &warm) && all_ok(&mut t, &ops) {
            let note = format!(
                "{groups} group(s): {} appends by {CLIENTS} clients in {:.3} s: {:.0} ops/s",
                ops.len(),
                elapsed as f64 / 1e9,
                ops.len() as f64 / (elapsed as f64 / 1e9)
            );
            t.kv.cx.note(note);
        }
    }
    t.kv.finish();
}

fn reads(keys: Vec<String>) -> impl Workload<FetchAppendInput> {
    let mut done = vec![false; keys.len()];
    move |client: usize, _: &mut StdRng| {
        (!std::mem::replace(&mut done[client], true)).then(|| FetchAppendInput::Get {
            key: keys[client].clone(),
        })
    }
}

/// Two groups; one shard holding 10 keys of 1000 bytes moves from one to the
/// other: the time from the `move` request to the first read of its key answered
/// by the new owner (the controller's commit, the receiver's poll, the pull, its
/// commit, and one read), five times.
fn move_one_shard(cx: &mut Context) {
    let Some(mut t) = run::start(cx, 2, "-1") else {
        return;
    };
    let shard = 3;
    let keys: Vec<String> = (0..10).map(|n| key_in(shard, n)).collect();
    let big = "m".repeat(1000);
    let writes = {
        let keys = keys.clone();
        let mut done = vec![false; keys.len()];
        move |client: usize, _: &mut StdRng| {
            (!std::mem::replace(&mut done[client], true)).then(|| FetchAppendInput::Put {
                key: keys[client].clone(),
                value: big.clone(),
            })
        }
    };
    let mut times = Vec::new();
    if t.join(&[FIRST_GID, FIRST_GID + 1]).is_some() && t.query(-1).is_some() {
        t.run(keys.len(), writes, 100);
        for round in 0..5u64 {
            let to = FIRST_GID + (round % 2);
            let start = t.kv.cluster.now();
            if t.call(run::move_shard(shard, to)).is_none() || t.query(-1).is_none() {
                break;
            }
            let read = vec![keys[0].clone()];
            assert_eq!(key2shard(&read[0]), shard);
            let ops = t.run(1, reads(read), 100);
            if !matches!(ops.first().map(|d| &d.completion), Some(Completion::Ok(_))) {
                t.kv.cx.fail(
                    property::PROGRESS,
                    "no progress: the moved shard was not served",
                );
                break;
            }
            times.push(t.kv.cluster.now() - start);
        }
    }
    if times.len() == 5 {
        times.sort_unstable();
        let note = format!(
            "moving one shard (10 keys of 1000 bytes): median {:.1} ms, min {:.1} ms, max {:.1} ms over 5 moves",
            times[2] as f64 / 1e6,
            times[0] as f64 / 1e6,
            times[4] as f64 / 1e6
        );
        t.kv.cx.note(note);
    }
    t.kv.finish();
}
