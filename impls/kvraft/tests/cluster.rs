//! Three `kvraft` processes behind the harness's simulated network, with harness
//! clients: the history must be linearizable and most operations must succeed,
//! also across a partitioned leader and crash-restarts from snapshots.
//!
//! Each run takes a fresh seed unless `SEED=<n>` replays one (a failure prints the
//! command); `HARNESS_TIME=real` runs on the wall clock.

use std::time::Duration;

use harness::client::{ClientConfig, Clients};
use harness::cluster::{Cluster, ClusterConfig, TimeMode};
use harness::history::Completion;
use harness::implementation::Implementation;
use harness::nemesis::{Fault, Schedule};
use harness::network::{Latency, NetConfig, Partition};
use harness::suites::kvraft::LeaderProbe;
use harness::suites::kvsrv::KvProtocol;
use harness::testdir::TestDir;
use harness::verdict::judge;
use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::FetchAppendInput;
use specs::KvFetchAppend;

const SECOND: u64 = 1_000_000_000;

fn seed() -> u64 {
    match std::env::var("SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("SEED={s:?} is not an unsigned 64-bit integer")),
        // A fresh seed each run, printed in every failure's replay line.
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos() as u64,
    }
}

/// `ops` operations per client on three keys: reads, writes, appends of unique
/// values, and cas.
fn workload(ops: usize) -> impl FnMut(usize, &mut StdRng) -> Option<FetchAppendInput> {
    let mut issued = vec![0usize; 64];
    move |client, rng| {
        if issued[client] == ops {
            return None;
        }
        issued[client] += 1;
        let key = format!("k{}", rng.gen_range(0..3));
        let unique = format!("{client}.{} ", issued[client]);
        Some(match rng.gen_range(0..10) {
            0..=2 => FetchAppendInput::Get { key },
            3..=4 => FetchAppendInput::Put { key, value: unique },
            5..=8 => FetchAppendInput::Append { key, value: unique },
            _ => FetchAppendInput::Cas {
                key,
                from: String::new(),
                to: unique,
            },
        })
    }
}

/// What a run recorded.
struct Run {
    replay: String,
    judgement: harness::verdict::Judgement,
    ok: usize,
    total: usize,
    /// Operations the workload had.
    expected: usize,
    /// When the clients gave up for lack of progress, if they did.
    stalled: Option<u64>,
    history: String,
    /// Kept (with the node logs and data dirs) when the test fails.
    dir: TestDir,
}

struct Options<'a> {
    name: &'a str,
    env: &'a [(&'a str, &'a str)],
    schedule: Schedule,
    ops: usize,
    /// Longest pause between one client's operations, so a run lasts as long as its
    /// schedule.
    think: u64,
}

/// Runs three clients for `ops` operations each against three nodes, with the faults
/// of `schedule`, and judges the history. Panics (with the replay line) if a node
/// broke the protocol or an operation never ran.
fn run(o: Options) -> Run {
    let seed = seed();
    let replay = format!(
        "SEED={seed} cargo nextest run -p kvraft --test cluster -E 'test(={})'",
        o.name
    );
    let dir = TestDir::new("kvraft-cluster");
    let config = ClusterConfig {
        nodes: 3,
        implementation: Implementation::ours("kvraft"),
        env: (o.env.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        mode: TimeMode::from_env(),
        seed,
        net: NetConfig::reliable(),
        dir: dir.path().to_path_buf(),
        step_timeout: Duration::from_secs(10),
    };
    let mut cluster = Cluster::start(config).unwrap_or_else(|e| panic!("{e}\nreplay: {replay}"));
    cluster.schedule(&o.schedule);
    let clients_config = ClientConfig {
        attempt_timeout: 50_000_000,
        op_timeout: 5 * SECOND,
        think: Latency::Uniform {
            min: 0,
            max: o.think,
        },
        targets: cluster.node_names().to_vec(),
        stall_timeout: 10 * SECOND,
    };
    let mut clients = Clients::new(KvProtocol, workload(o.ops), clients_config, 3, seed);
    let limit = cluster.now() + 120 * SECOND;
    cluster.run(&mut clients, limit);
    assert!(
        cluster.errors.is_empty(),
        "protocol errors: {:?}\nreplay: {replay}",
        cluster.errors
    );
    let judgement = judge(
        &KvFetchAppend,
        cluster.history.text(),
        Duration::from_secs(60),
        o.name,
        false,
    );
    // Evidence for a failing run (the dir is kept when the test panics).
    std::fs::write(dir.join("history.jsonl"), cluster.history.text()).expect("write history");
    std::fs::write(dir.join("journal.jsonl"), cluster.journal.text()).expect("write journal");
    let total = clients.done.len();
    let stalled = clients.stalled_at();
    let ok = (clients.done.iter())
        .filter(|d| matches!(d.completion, Completion::Ok(_)))
        .count();
    Run {
        replay,
        judgement,
        ok,
        total,
        expected: 3 * o.ops,
        stalled,
        history: cluster.history.text().to_string(),
        dir,
    }
}

impl Run {
    /// Linearizable, and at least `min_ok` of the operations succeeded.
    fn require_good(&self, min_ok: f64) {
        assert!(
            self.stalled.is_none() && self.total == self.expected,
            "no progress: {} of {} operations ran (clients stalled at {:?} ns)\nreplay: {}",
            self.total,
            self.expected,
            self.stalled,
            self.replay
        );
        assert!(
            self.judgement.passed(),
            "not linearizable: {}\nhistory and node logs in {}\nreplay: {}",
            self.judgement.summary,
            self.dir.path().display(),
            self.replay
        );
        assert!(
            self.ok as f64 >= min_ok * self.total as f64,
            "no progress: {} of {} operations succeeded\nreplay: {}",
            self.ok,
            self.total,
            self.replay
        );
    }
}

fn nemesis_lines(history: &str) -> usize {
    history
        .lines()
        .filter(|l| l.contains("\"type\":\"nemesis\""))
        .count()
}

#[test]
fn clients_of_three_nodes_see_a_linearizable_store() {
    run(Options {
        name: "clients_of_three_nodes_see_a_linearizable_store",
        env: &[],
        schedule: Schedule::new(),
        ops: 40,
        think: 5_000_000,
    })
    .require_good(0.9);
}

/// Each node cut off in turn (one of them the leader), healed, then crashed and
/// restarted from its data dir.
fn isolations_and_restarts() -> Schedule {
    let all: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
    let mut schedule = Schedule::new();
    for (k, node) in all.iter().enumerate() {
        let t = (1 + 3 * k as u64) * SECOND;
        schedule = schedule
            .at(t, Fault::Partition(Partition::isolate(node, &all)))
            .at(t + SECOND, Fault::Heal)
            .at(t + 2 * SECOND, Fault::Crash(node.clone()))
            .at(t + 2 * SECOND + SECOND / 2, Fault::Restart(node.clone()));
    }
    schedule
}

#[test]
fn partitions_and_restarts_from_snapshots_keep_it_linearizable() {
    let run = run(Options {
        name: "partitions_and_restarts_from_snapshots_keep_it_linearizable",
        // Small, so every node snapshots many times and restarts read one.
        env: &[("KVRAFT_MAXRAFTSTATE", "1000")],
        schedule: isolations_and_restarts(),
        ops: 150,
        think: 150_000_000,
    });
    run.require_good(0.5);
    assert_eq!(
        nemesis_lines(&run.history),
        12,
        "the run outlasted its schedule\nreplay: {}",
        run.replay
    );
    for n in ["n1", "n2", "n3"] {
        let snapshot = run.dir.join(format!("{n}.data")).join("snapshot");
        assert!(
            snapshot.exists(),
            "{n} took no snapshot\nreplay: {}",
            run.replay
        );
    }
}

/// The known-bad `stale-read`: the leader, found by asking, is cut off from the
/// others; clients of the majority write through its new leader, then a client of
/// the cut-off leader reads every key, which it answers from its own state. Three
/// rounds; the checker must find the history illegal. (The reads come after the
/// writes, and only to the old leader: clients that choose their node themselves
/// would follow the new leader's name and might never read stale.)
#[test]
fn the_stale_read_variant_is_not_linearizable() {
    let seed = seed();
    let name = "the_stale_read_variant_is_not_linearizable";
    let replay =
        format!("SEED={seed} cargo nextest run -p kvraft --test cluster -E 'test(={name})'");
    let dir = TestDir::new("kvraft-stale-read");
    let config = ClusterConfig {
        nodes: 3,
        implementation: Implementation::ours("kvraft").with_env("KVRAFT_BUG", "stale-read"),
        env: Vec::new(),
        mode: TimeMode::from_env(),
        seed,
        net: NetConfig::reliable(),
        dir: dir.path().to_path_buf(),
        step_timeout: Duration::from_secs(10),
    };
    let mut cluster = Cluster::start(config).unwrap_or_else(|e| panic!("{e}\nreplay: {replay}"));
    let all = cluster.node_names().to_vec();
    for round in 0..3 {
        let leader = LeaderProbe::find(&mut cluster, 30 * SECOND)
            .unwrap_or_else(|| panic!("no leader found in round {round}\nreplay: {replay}"));
        cluster
            .fault(Fault::Partition(Partition::isolate(&leader, &all)))
            .expect("a partition applies");
        let config = |targets: Vec<String>| ClientConfig {
            attempt_timeout: 50_000_000,
            op_timeout: 5 * SECOND,
            think: Latency::Uniform {
                min: 0,
                max: 60_000_000,
            },
            targets,
            stall_timeout: 10 * SECOND,
        };
        let majority: Vec<String> = all.iter().filter(|n| **n != leader).cloned().collect();
        let mut written = [false; 3];
        let writes = move |client: usize, _: &mut StdRng| {
            let first = !std::mem::replace(&mut written[client], true);
            first.then(|| FetchAppendInput::Put {
                key: format!("k{client}"),
                value: format!("round {round}"),
            })
        };
        let mut writers = Clients::new(KvProtocol, writes, config(majority), 3, seed ^ round);
        let limit = cluster.now() + 60 * SECOND;
        cluster.run(&mut writers, limit);
        let mut read = 0;
        let reads = move |_: usize, _: &mut StdRng| {
            read += 1;
            (read <= 3).then(|| FetchAppendInput::Get {
                key: format!("k{}", read - 1),
            })
        };
        let reader_seed = seed ^ round ^ 0x5eed;
        let mut reader = Clients::new(KvProtocol, reads, config(vec![leader]), 1, reader_seed);
        let limit = cluster.now() + 60 * SECOND;
        cluster.run(&mut reader, limit);
        cluster.fault(Fault::Heal).expect("a heal applies");
    }
    let judgement = judge(
        &KvFetchAppend,
        cluster.history.text(),
        Duration::from_secs(60),
        name,
        false,
    );
    assert_eq!(
        judgement.verdict,
        checkers::Verdict::Illegal,
        "stale-read passed the checker: {}\nreplay: {replay}",
        judgement.summary
    );
}
