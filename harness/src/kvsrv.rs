//! The key/value server's conformance suite, shared by `tests/kvsrv.rs` and the
//! `harness test kvsrv` command.
//!
//! Each test starts one server node (`n1`) behind the simulated network, runs
//! harness clients against it, and judges the run: no protocol errors, the test's own
//! property (every append present once, memory bounds...) and, always, the whole
//! history checked for linearizability against `specs::KvFetchAppend`. A failing
//! run leaves its history, journal, node log, verdict and HTML timeline under
//! `target/harness-runs/kvsrv/`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use checkers::Verdict;
use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::kvsrv_protocol::{reply_outcome, request_body, ReplyOutcome, RequestId};
use specs::node_protocol::Body;
use specs::KvFetchAppend;

use crate::artifacts;
use crate::client::{ClientConfig, Clients, Done, Protocol, Reply, Workload};
use crate::cluster::{Cluster, ClusterConfig, RunStats, TimeMode};
use crate::history::Completion;
use crate::implementation::Implementation;
use crate::nemesis::{Fault, Schedule};
use crate::network::{Latency, NetConfig, Partition};
use crate::verdict::judge;

/// The environment variable naming another implementation.
pub const IMPL_VAR: &str = "KVSRV_IMPL";
/// Our binary.
pub const BIN: &str = "kvsrv";
/// Our binary's switch for known-bad variants.
pub const BUG_VAR: &str = "KVSRV_BUG";

/// Every test of the suite, by name.
pub const TESTS: &[&str] = &[
    "basic::one_client",
    "basic::lin_kv_ops",
    "concurrent::many_clients",
    "unreliable::lossy_duplicating",
    "unreliable::partitions",
    "unreliable::server_paused",
    "append::one_key_many_appenders",
    "memory::append_answers_not_copied",
    "memory::many_clients_cost_bytes",
];

/// The operations over the wire (`specs::kvsrv_protocol`).
#[derive(Debug, Clone, Copy)]
pub struct KvProtocol;

impl Protocol for KvProtocol {
    type Input = FetchAppendInput;
    type Output = FetchAppendOutput;

    fn request(&self, input: &FetchAppendInput, client: u64, seq: u64) -> Body {
        request_body(input, Some(RequestId { client, seq }))
    }

    fn reply(&self, input: &FetchAppendInput, reply: &Body) -> Reply<FetchAppendOutput> {
        match reply_outcome(input, reply) {
            ReplyOutcome::Ok(o) => Reply::Ok(o),
            ReplyOutcome::Fail(e) => Reply::Fail(e),
            ReplyOutcome::Unknown(e) => Reply::Unknown(e),
        }
    }
}

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    pub implementation: Implementation,
    pub mode: TimeMode,
    pub seed: u64,
    /// A known-bad variant of our binary (`KVSRV_BUG`), to show the suite rejects it.
    pub bug: Option<String>,
    /// Scratch space for node logs and data dirs.
    pub dir: PathBuf,
    /// Copy the evidence of a failing run to `target/harness-runs/kvsrv/`.
    pub save_artifacts: bool,
}

/// What one test run found.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub name: String,
    pub seed: u64,
    pub mode: TimeMode,
    pub failures: Vec<String>,
    /// Measurements worth showing even when they pass (memory per client...).
    pub notes: Vec<String>,
    pub verdict: Option<Verdict>,
    pub stats: RunStats,
    /// (calls, ok, fail, info)
    pub counts: (u64, u64, u64, u64),
    pub journal: String,
    pub history: String,
    pub artifacts: Option<PathBuf>,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// A readable account: what failed, the seed and where the evidence is.
    pub fn report(&self) -> String {
        let mut s = format!(
            "kvsrv::{} ({} time, seed {}): {}\n",
            self.name,
            self.mode.name(),
            self.seed,
            if self.passed() { "passed" } else { "FAILED" }
        );
        for f in &self.failures {
            s.push_str(&format!("  - {f}\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("  {n}\n"));
        }
        let (calls, ok, fail, info) = self.counts;
        s.push_str(&format!(
            "  {calls} operations ({ok} ok, {fail} failed, {info} unknown), {} messages routed, {:.3} s on the run's clock, {:.3} s wall\n",
            self.stats.routed,
            self.stats.elapsed_ns as f64 / 1e9,
            self.stats.wall.as_secs_f64()
        ));
        if let Some(dir) = &self.artifacts {
            s.push_str(&format!(
                "  history, journal, node log, verdict and timeline: {}\n",
                dir.display()
            ));
        }
        s
    }
}

/// Runs test `name` of the suite.
pub fn run_test(name: &str, config: &SuiteConfig) -> TestOutcome {
    let mut env = Vec::new();
    if let Some(bug) = &config.bug {
        env.push((BUG_VAR.to_string(), bug.clone()));
    }
    let cluster_config = ClusterConfig {
        nodes: 1,
        implementation: config.implementation.clone(),
        env,
        mode: config.mode,
        seed: config.seed,
        net: NetConfig::reliable(),
        dir: config.dir.join(name.replace("::", "-")),
        step_timeout: Duration::from_secs(10),
    };
    let mut outcome = TestOutcome {
        name: name.to_string(),
        seed: config.seed,
        mode: config.mode,
        failures: Vec::new(),
        notes: Vec::new(),
        verdict: None,
        stats: RunStats::default(),
        counts: (0, 0, 0, 0),
        journal: String::new(),
        history: String::new(),
        artifacts: None,
    };
    let cluster = match Cluster::start(cluster_config) {
        Ok(c) => c,
        Err(e) => {
            outcome.failures.push(format!(
                "cannot start the server ({}): {e}",
                config.implementation.describe()
            ));
            return outcome;
        }
    };
    let mut t = Test {
        cluster,
        failures: Vec::new(),
        notes: Vec::new(),
    };
    match name {
        "basic::one_client" => basic_one_client(&mut t),
        "basic::lin_kv_ops" => basic_lin_kv_ops(&mut t),
        "concurrent::many_clients" => concurrent_many_clients(&mut t),
        "unreliable::lossy_duplicating" => unreliable_lossy_duplicating(&mut t),
        "unreliable::partitions" => unreliable_partitions(&mut t),
        "unreliable::server_paused" => unreliable_server_paused(&mut t),
        "append::one_key_many_appenders" => append_one_key_many_appenders(&mut t),
        "memory::append_answers_not_copied" => memory_append_answers_not_copied(&mut t),
        "memory::many_clients_cost_bytes" => memory_many_clients_cost_bytes(&mut t),
        other => panic!("no kvsrv test named {other:?}; known: {TESTS:?}"),
    }
    let Test {
        mut cluster,
        mut failures,
        notes,
    } = t;
    outcome.notes = notes;
    failures.extend(
        cluster
            .errors
            .iter()
            .map(|e| format!("protocol error: {e}")),
    );
    let title = format!("kvsrv::{name} seed {}", config.seed);
    let mut judgement = judge(
        &KvFetchAppend,
        cluster.history.text(),
        Duration::from_secs(30),
        &title,
        false,
    );
    if !judgement.passed() {
        failures.push(format!("linearizability: {}", judgement.summary));
    }
    if !failures.is_empty() && config.save_artifacts {
        judgement = judge(
            &KvFetchAppend,
            cluster.history.text(),
            Duration::from_secs(30),
            &title,
            true,
        );
    }
    outcome.verdict = Some(judgement.verdict);
    outcome.failures = failures;
    outcome.stats = cluster.stats();
    outcome.counts = cluster.history.counts();
    // Moved out, not copied: with large values the history runs to megabytes.
    outcome.journal = std::mem::take(&mut cluster.journal).into_text();
    outcome.history = std::mem::take(&mut cluster.history).into_text();
    if !outcome.passed() && config.save_artifacts {
        let dir = artifacts::run_dir("kvsrv", name, config.seed);
        // Only what the seed determines (no wall times), so a replay can be compared.
        let verdict = format!(
            "kvsrv::{name} seed {} ({} time)\n{}\n\nchecker: {}\n",
            config.seed,
            config.mode.name(),
            outcome.failures.join("\n"),
            judgement.summary
        );
        let links: String = cluster
            .network()
            .links()
            .iter()
            .map(|((a, b), s)| format!("{a} -> {b}: {s:?}\n"))
            .collect();
        let files = [
            ("history.jsonl", outcome.history.as_str()),
            ("journal.jsonl", outcome.journal.as_str()),
            ("verdict.txt", verdict.as_str()),
            (
                "timeline.html",
                judgement.html.as_deref().unwrap_or_default(),
            ),
            ("links.txt", links.as_str()),
        ];
        let logs: Vec<PathBuf> = cluster
            .node_names()
            .iter()
            .filter_map(|n| cluster.log_path(n))
            .collect();
        match artifacts::save(&dir, &files, &logs) {
            Ok(()) => outcome.artifacts = Some(dir),
            Err(e) => outcome.failures.push(format!(
                "could not save artifacts in {}: {e}",
                dir.display()
            )),
        }
    }
    outcome
}

struct Test {
    cluster: Cluster,
    failures: Vec<String>,
    notes: Vec<String>,
}

type Ops = Vec<Done<FetchAppendInput, FetchAppendOutput>>;

/// Virtual (or real) time one phase of clients may take before it is cut off.
const PHASE_LIMIT: u64 = 120_000_000_000;

impl Test {
    fn clients(&self) -> ClientConfig {
        ClientConfig {
            attempt_timeout: 25_000_000,
            op_timeout: 2_000_000_000,
            think: Latency::Uniform {
                min: 0,
                max: 1_000_000,
            },
            targets: vec!["n1".into()],
        }
    }

    fn run<W: Workload<FetchAppendInput>>(&mut self, count: usize, workload: W) -> Ops {
        let config = self.clients();
        let seed = self.cluster.seed() ^ self.cluster.new_client_ids(0).start;
        let mut clients = Clients::new(KvProtocol, workload, config, count, seed);
        let limit = self.cluster.now() + PHASE_LIMIT;
        self.cluster.run(&mut clients, limit);
        if !crate::cluster::Driver::done(&clients) {
            self.failures
                .push("clients did not finish their operations in time".into());
        }
        clients.done
    }

    fn net(&mut self, config: NetConfig) {
        if let Err(e) = self.cluster.fault(Fault::Net(config)) {
            self.failures.push(e);
        }
    }

    fn rss(&mut self) -> Option<u64> {
        match self.cluster.rss_bytes("n1") {
            Ok(r) => Some(r),
            Err(e) => {
                self.failures.push(format!("cannot measure memory: {e}"));
                None
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Get,
    Put,
    Append,
    Cas,
}

const ALL: &[Kind] = &[Kind::Get, Kind::Put, Kind::Append, Kind::Cas];
const LIN_KV: &[Kind] = &[Kind::Get, Kind::Put, Kind::Cas];

/// `ops` random operations per client over `keys` keys. Appended pieces name their
/// client and position, so they are unique.
fn mixed(keys: usize, ops: usize, kinds: &'static [Kind]) -> impl Workload<FetchAppendInput> {
    let mut issued: HashMap<usize, usize> = HashMap::new();
    move |client: usize, rng: &mut StdRng| {
        let n = issued.entry(client).or_insert(0);
        if *n >= ops {
            return None;
        }
        *n += 1;
        let key = format!("k{}", rng.gen_range(0..keys));
        let small = |rng: &mut StdRng| format!("v{}", rng.gen_range(0..3));
        Some(match kinds[rng.gen_range(0..kinds.len())] {
            Kind::Get => FetchAppendInput::Get { key },
            Kind::Put => FetchAppendInput::Put {
                key,
                value: small(rng),
            },
            Kind::Append => FetchAppendInput::Append {
                key,
                value: format!("{client}.{n};"),
            },
            Kind::Cas => FetchAppendInput::Cas {
                key,
                from: small(rng),
                to: small(rng),
            },
        })
    }
}

/// Each client runs `ops` in order.
fn scripted(ops: Vec<Vec<FetchAppendInput>>) -> impl Workload<FetchAppendInput> {
    let mut queues: Vec<std::collections::VecDeque<FetchAppendInput>> =
        ops.into_iter().map(Into::into).collect();
    move |client: usize, _: &mut StdRng| queues.get_mut(client).and_then(|q| q.pop_front())
}

fn basic_one_client(t: &mut Test) {
    t.run(1, mixed(3, 150, ALL));
}

/// Only Maelstrom lin-kv's operations, so a lin-kv node can be tested too.
fn basic_lin_kv_ops(t: &mut Test) {
    t.run(1, mixed(2, 150, LIN_KV));
}

fn concurrent_many_clients(t: &mut Test) {
    t.net(NetConfig {
        latency: Latency::Uniform {
            min: 100_000,
            max: 3_000_000,
        },
        ..NetConfig::reliable()
    });
    t.run(10, mixed(3, 40, ALL));
}

fn unreliable_lossy_duplicating(t: &mut Test) {
    t.net(NetConfig::unreliable());
    let done = t.run(5, mixed(3, 40, ALL));
    let retried = done.iter().filter(|d| d.ret - d.call > 20_000_000).count();
    if retried == 0 {
        t.failures
            .push("no operation needed a retry: the network was not unreliable".into());
    }
}

/// Clients lose the server in both directions, then only its answers (a one-way
/// cut), while the network also loses and duplicates.
fn unreliable_partitions(t: &mut Test) {
    let clients: Vec<String> = (0..5).map(|i| format!("c{}", i + 1)).collect();
    let mut all = clients.clone();
    all.push("n1".into());
    let start = t.cluster.now();
    let replies_cut = clients
        .iter()
        .map(|c| Partition::one_way("n1", c))
        .reduce(Partition::and)
        .expect("clients");
    let schedule = Schedule::new()
        .at(
            start + 30_000_000,
            Fault::Partition(Partition::isolate("n1", &all)),
        )
        .at(start + 130_000_000, Fault::Heal)
        .at(start + 200_000_000, Fault::Partition(replies_cut))
        .at(start + 300_000_000, Fault::Heal)
        .at(
            start + 350_000_000,
            Fault::Partition(Partition::isolate("n1", &all)),
        )
        .at(start + 500_000_000, Fault::Heal);
    t.cluster.schedule(&schedule);
    t.net(NetConfig {
        loss: 0.1,
        duplicate: 0.1,
        ..NetConfig::unreliable()
    });
    t.run(5, mixed(2, 40, ALL));
}

/// The server is stopped (SIGSTOP) twice while clients keep resending; requests queue
/// up and every copy reaches it on resume.
fn unreliable_server_paused(t: &mut Test) {
    let start = t.cluster.now();
    let schedule = Schedule::new()
        .at(start + 20_000_000, Fault::Pause("n1".into()))
        .at(start + 220_000_000, Fault::Resume("n1".into()))
        .at(start + 300_000_000, Fault::Pause("n1".into()))
        .at(start + 400_000_000, Fault::Resume("n1".into()));
    t.cluster.schedule(&schedule);
    t.net(NetConfig {
        loss: 0.1,
        duplicate: 0.1,
        ..NetConfig::unreliable()
    });
    let done = t.run(4, mixed(2, 40, ALL));
    let waited = done
        .iter()
        .filter(|d| d.ret - d.call >= 100_000_000)
        .count();
    if waited == 0 {
        t.failures
            .push("no operation spanned a pause: the pause had no effect".into());
    }
}

/// 6.5840's "one key, many appenders": every append lands exactly once and each
/// client's appends appear in the order it made them.
fn append_one_key_many_appenders(t: &mut Test) {
    let (clients, per_client) = (8, 15);
    t.net(NetConfig::unreliable());
    let appends = (0..clients)
        .map(|c| {
            (0..per_client)
                .map(|i| FetchAppendInput::Append {
                    key: "log".into(),
                    value: format!("{c}.{i};"),
                })
                .collect()
        })
        .collect();
    let done = t.run(clients, scripted(appends));
    t.net(NetConfig::reliable());
    let read = t.run(
        1,
        scripted(vec![vec![FetchAppendInput::Get { key: "log".into() }]]),
    );
    let Some(Completion::Ok(out)) = read.first().map(|d| &d.completion) else {
        t.failures.push("the final read did not complete".into());
        return;
    };
    let value = out.value.clone().unwrap_or_default();
    let pieces: Vec<&str> = value.split(';').filter(|p| !p.is_empty()).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for p in &pieces {
        *seen.entry(p).or_default() += 1;
    }
    for (piece, n) in &seen {
        if *n > 1 {
            t.failures.push(format!(
                "append {piece:?} is present {n} times in the final value"
            ));
        }
    }
    for d in &done {
        let FetchAppendInput::Append { value, .. } = &d.input else {
            continue;
        };
        let piece = value.trim_end_matches(';');
        let present = seen.contains_key(piece);
        match d.completion {
            Completion::Ok(_) if !present => t
                .failures
                .push(format!("append {piece:?} was acknowledged but is missing")),
            Completion::Fail if present => t
                .failures
                .push(format!("append {piece:?} failed definitely but is present")),
            _ => {}
        }
    }
    for c in 0..clients {
        let order: Vec<usize> = pieces
            .iter()
            .filter_map(|p| p.split_once('.'))
            .filter(|(client, _)| client.parse() == Ok(c))
            .filter_map(|(_, i)| i.parse().ok())
            .collect();
        if order.windows(2).any(|w| w[0] >= w[1]) {
            t.failures.push(format!(
                "client {c}'s appends are out of order in the final value: {order:?}"
            ));
        }
    }
}

/// Answers to appends are prefixes of a value the server holds: remembering them for
/// retries must not copy the value. 40 clients append to a 128 KiB value; copies
/// would cost 5 MiB (our server's RSS does not grow measurably).
fn memory_append_answers_not_copied(t: &mut Test) {
    const MIB: usize = 1 << 20;
    let big = "a".repeat(MIB / 8);
    let warm = vec![
        FetchAppendInput::Put {
            key: "big".into(),
            value: big,
        },
        FetchAppendInput::Get { key: "big".into() },
        FetchAppendInput::Append {
            key: "big".into(),
            value: "w".into(),
        },
    ];
    t.run(1, scripted(vec![warm]));
    let Some(before) = t.rss() else { return };
    let clients = 40;
    // One after another: concurrent appends to a megabyte value would make the
    // linearizability search copy it for every order it tries.
    for c in 0..clients {
        let append = FetchAppendInput::Append {
            key: "big".into(),
            value: format!("{c};"),
        };
        t.run(1, scripted(vec![vec![append]]));
    }
    let Some(after) = t.rss() else { return };
    let grew = after.saturating_sub(before);
    t.notes.push(format!(
        "server RSS grew by {:.2} MiB over {clients} appends",
        grew as f64 / MIB as f64
    ));
    if grew > 2 * MIB as u64 {
        t.failures.push(format!(
            "the server's memory grew by {:.1} MiB after {clients} appends to a 128 KiB value: \
             the answers remembered for retries seem to be copies of the old value \
             (at most 2 MiB allowed)",
            grew as f64 / MIB as f64
        ));
    }
}

/// Duplicate detection costs a few hundred bytes per client at most.
fn memory_many_clients_cost_bytes(t: &mut Test) {
    let one_put = |n: usize| {
        (0..n)
            .map(|c| {
                vec![FetchAppendInput::Put {
                    key: "k".into(),
                    value: format!("{}", c % 10),
                }]
            })
            .collect::<Vec<_>>()
    };
    t.run(200, scripted(one_put(200)));
    let Some(before) = t.rss() else { return };
    let clients = 2000;
    t.run(clients, scripted(one_put(clients)));
    let Some(after) = t.rss() else { return };
    let per_client = after.saturating_sub(before) / clients as u64;
    t.notes
        .push(format!("{per_client} bytes of server RSS per client"));
    if per_client > 300 {
        t.failures.push(format!(
            "each client costs the server {per_client} bytes (at most 300 allowed): \
             {} KiB for {clients} clients",
            after.saturating_sub(before) / 1024
        ));
    }
}
