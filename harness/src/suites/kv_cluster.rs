//! A key/value cluster under test, shared by the suites of the services that speak
//! kvsrv's operations (kvsrv: one server; kvraft: a replicated group): the nodes
//! behind the simulated network, client phases that must make progress, and the
//! judgement every test ends with (protocol errors, linearizability of the whole
//! history, counts, and the evidence of a failing run).

use std::time::Duration;

use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::KvFetchAppend;

use crate::client::{ClientConfig, Clients, Done, Workload};
use crate::cluster::{Cluster, ClusterConfig, Driver, Durability};
use crate::error::HarnessError;
use crate::history::Completion;
use crate::nemesis::Fault;
use crate::network::{Latency, NetConfig};
use crate::suite::{property, Context, TestStats};
use crate::suites::kvsrv::KvProtocol;
use crate::verdict::judge;

/// How a suite's clusters and clients are made.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub nodes: usize,
    /// Extra environment of the nodes.
    pub env: Vec<(String, String)>,
    /// A client resends after this long without an answer.
    pub attempt_timeout: u64,
    /// A client pauses up to this long between operations.
    pub think_max: u64,
    /// The share of a phase's operations that must succeed, in percent.
    pub min_percent: u64,
}

pub(crate) type Ops = Vec<Done<FetchAppendInput, FetchAppendOutput>>;

/// Virtual (or real) time one phase of clients may take before it is cut off.
pub(crate) const PHASE_LIMIT: u64 = 120_000_000_000;
/// An operation is abandoned (recorded as unknown) after this long: longer than a
/// node may take to become available (a node that answers 11 for its first 2 s is
/// served).
const OP_TIMEOUT: u64 = 5_000_000_000;
/// Clients stop issuing operations when none has succeeded for this long.
const STALL_TIMEOUT: u64 = 2 * OP_TIMEOUT;

/// Copies the files of `from` and below to a new directory `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// No nemesis: the clients run alone.
struct NoNemesis;

impl Nemesis for NoNemesis {
    fn act(&mut self, _: &mut Cluster, _: &Ops) -> Option<u64> {
        None
    }
}

/// What a finished run recorded.
pub(crate) struct Finished {
    pub journal: String,
    pub history: String,
}

impl Finished {
    /// The self-check that simulated time is a function of the seed: `run` twice with
    /// `cx`'s seed must record the same journal (every message, fate and delivery,
    /// at least `min_lines` of them) and the same history.
    pub fn require_replay(
        cx: &mut Context,
        min_lines: usize,
        run: impl Fn(&mut Context) -> Finished,
    ) {
        cx.mode = crate::cluster::TimeMode::Sim;
        let a = run(cx);
        let b = run(cx);
        assert!(cx.passing(), "the runs failed");
        assert!(
            a.journal.lines().count() > min_lines,
            "the journal recorded the run"
        );
        let same = crate::suite::self_check::require_same_record;
        same(cx.seed, "journal", &a.journal, &b.journal);
        same(cx.seed, "history", &a.history, &b.history);
    }
}

/// A test's nodes and clients.
pub(crate) struct KvCluster<'a> {
    pub cx: &'a mut Context,
    pub cluster: Cluster,
    shape: Shape,
    /// Where the nodes' logs and data dirs (`<node>.data`) are.
    pub dir: std::path::PathBuf,
    /// The nodes' data dirs when they are in memory (see [`KvCluster::start_in_memory`]);
    /// declared after `cluster`, so the nodes are gone before their files.
    memory: Option<tempfile::TempDir>,
    /// How long a client tries an operation before it records it as unknown.
    pub op_timeout: u64,
}

/// Acts on the cluster while a phase's clients run (partitions, crashes, checks at
/// given times), through [`KvCluster::run_with`].
pub(crate) trait Nemesis {
    /// Called when the phase starts and then at each time it asked for, with the
    /// operations finished so far; returns when to be called next (`None`: never).
    fn act(&mut self, cluster: &mut Cluster, done: &Ops) -> Option<u64>;
}

/// The clients of a phase and the nemesis acting beside them.
struct WithNemesis<'n, D> {
    clients: D,
    nemesis: &'n mut dyn Nemesis,
}

/// The nemesis's wake-up token: no client's (a client's token is its index in the
/// high half).
const NEMESIS_TOKEN: u64 = u64::MAX;

impl<W: Workload<FetchAppendInput>> Driver for WithNemesis<'_, Clients<KvProtocol, W>> {
    fn start(&mut self, cluster: &mut Cluster) {
        self.clients.start(cluster);
        if let Some(at) = self.nemesis.act(cluster, &self.clients.done) {
            cluster.wake(at, NEMESIS_TOKEN);
        }
    }

    fn on_message(&mut self, cluster: &mut Cluster, message: specs::node_protocol::Message) {
        self.clients.on_message(cluster, message);
    }

    fn on_wake(&mut self, cluster: &mut Cluster, token: u64) {
        if token != NEMESIS_TOKEN {
            return self.clients.on_wake(cluster, token);
        }
        if let Some(at) = self.nemesis.act(cluster, &self.clients.done) {
            cluster.wake(at, NEMESIS_TOKEN);
        }
    }

    fn done(&self) -> bool {
        self.clients.done()
    }
}

impl<'a> KvCluster<'a> {
    /// Starts the nodes under test (`None`, with the failure recorded, if they cannot
    /// be started).
    pub fn start(cx: &'a mut Context, shape: Shape) -> Option<KvCluster<'a>> {
        KvCluster::start_on(cx, shape, Durability::Disk)
    }

    /// [`KvCluster::start`] with the nodes' data dirs on `durability`
    /// ([`Durability::LazyFs`] for power losses).
    pub fn start_on(
        cx: &'a mut Context,
        shape: Shape,
        durability: Durability,
    ) -> Option<KvCluster<'a>> {
        let dir = cx.fresh_dir("cluster");
        KvCluster::launch(cx, shape, durability, dir)
    }

    fn launch(
        cx: &'a mut Context,
        shape: Shape,
        durability: Durability,
        dir: std::path::PathBuf,
    ) -> Option<KvCluster<'a>> {
        let implementation = cx.implementation();
        let config = ClusterConfig {
            nodes: shape.nodes,
            implementation: implementation.clone(),
            env: shape.env.clone(),
            mode: cx.mode,
            seed: cx.seed,
            net: NetConfig::reliable(),
            dir: dir.clone(),
            step_timeout: Duration::from_secs(10),
        };
        match Cluster::start_with(config, durability) {
            Ok(cluster) => Some(KvCluster {
                cx,
                cluster,
                shape,
                dir,
                memory: None,
                op_timeout: OP_TIMEOUT,
            }),
            Err(e) => {
                let what = if shape.nodes == 1 { "server" } else { "nodes" };
                cx.fail(
                    property::SETUP,
                    format!(
                        "cannot start the {what} ({}): {e}",
                        implementation.describe()
                    ),
                );
                None
            }
        }
    }

    /// [`KvCluster::start`] with the nodes' data dirs in memory (`/dev/shm`, where
    /// there is one), linked from the cluster's directory: a crash (SIGKILL) loses
    /// exactly what it loses on a disk (the page cache survives a process either
    /// way), while each fsync costs nothing instead of a disk flush. Power losses
    /// need [`crate::cluster::Durability::LazyFs`] and do not use this. A failing run
    /// keeps a copy of the files in its scratch directory, in place of the links.
    pub fn start_in_memory(cx: &'a mut Context, shape: Shape) -> Option<KvCluster<'a>> {
        let memory = std::path::Path::new("/dev/shm")
            .is_dir()
            .then(|| {
                tempfile::Builder::new()
                    .prefix("dsconf-data-")
                    .tempdir_in("/dev/shm")
                    .ok()
            })
            .flatten();
        let dir = cx.fresh_dir("cluster");
        if let Some(memory) = &memory {
            let linked = std::fs::create_dir_all(&dir).is_ok()
                && (1..=shape.nodes).all(|i| {
                    let name = format!("n{i}.data");
                    std::fs::create_dir(memory.path().join(&name)).is_ok()
                        && std::os::unix::fs::symlink(memory.path().join(&name), dir.join(&name))
                            .is_ok()
                });
            if !linked {
                cx.fail(
                    property::HARNESS,
                    format!(
                        "cannot link data dirs in {} from {}",
                        memory.path().display(),
                        dir.display()
                    ),
                );
                return None;
            }
        }
        let mut kv = KvCluster::launch(cx, shape, Durability::Disk, dir)?;
        kv.memory = memory;
        Some(kv)
    }

    /// Clients that send to every node in turn (a node that does not lead
    /// redirects with error 11).
    pub fn clients(&self) -> ClientConfig {
        ClientConfig {
            attempt_timeout: self.shape.attempt_timeout,
            op_timeout: self.op_timeout,
            think: Latency::Uniform {
                min: 0,
                max: self.shape.think_max,
            },
            targets: self.cluster.node_names().to_vec(),
            stall_timeout: STALL_TIMEOUT,
        }
    }

    /// Runs `count` clients until the workload is done, and requires progress: the
    /// shape's share of the operations succeed, and every client has one succeed.
    pub fn run<W: Workload<FetchAppendInput>>(&mut self, count: usize, workload: W) -> Ops {
        let min_percent = self.shape.min_percent;
        self.run_requiring(count, workload, min_percent)
    }

    /// [`KvCluster::run`], requiring `min_percent` of the operations to succeed.
    pub fn run_requiring<W: Workload<FetchAppendInput>>(
        &mut self,
        count: usize,
        workload: W,
        min_percent: u64,
    ) -> Ops {
        self.run_with(count, workload, min_percent, &mut NoNemesis)
    }

    /// [`KvCluster::run_requiring`] with `nemesis` acting while the clients run.
    pub fn run_with<W: Workload<FetchAppendInput>>(
        &mut self,
        count: usize,
        workload: W,
        min_percent: u64,
        nemesis: &mut dyn Nemesis,
    ) -> Ops {
        let config = self.clients();
        let seed = self.cluster.seed() ^ self.cluster.new_client_ids(0).start;
        let clients = Clients::new(KvProtocol, workload, config, count, seed);
        let mut driver = WithNemesis { clients, nemesis };
        let limit = self.cluster.now() + PHASE_LIMIT;
        self.cluster.run(&mut driver, limit);
        let clients = driver.clients;
        let (stalled, finished) = (clients.stalled_at(), clients.done());
        self.judge_phase(clients.done, stalled, finished, count, min_percent)
    }

    /// The progress a phase of `count` clients must show: they finished (or stopped
    /// at `stalled` for lack of progress, a failure), `min_percent` of their
    /// operations succeeded, and each client had one succeed. For suites that drive
    /// their own clients (a sharded service's, routed through its controller).
    pub fn judge_phase(
        &mut self,
        done: Ops,
        stalled: Option<u64>,
        finished: bool,
        count: usize,
        min_percent: u64,
    ) -> Ops {
        if stalled.is_none() && !finished {
            self.cx.fail(
                property::PROGRESS,
                "no progress: clients did not finish their operations in time",
            );
        }
        let count_of = |f: fn(&Completion<FetchAppendOutput>) -> bool| {
            done.iter().filter(|d| f(&d.completion)).count() as u64
        };
        let ok = count_of(|c| matches!(c, Completion::Ok(_)));
        let failed = count_of(|c| matches!(c, Completion::Fail));
        let total = done.len() as u64;
        let min = (total * min_percent).div_ceil(100).max(1);
        if ok < min || stalled.is_some() {
            let stop = match stalled {
                Some(at) => format!(
                    "; the clients stopped at {:.3} s after {} s without a successful operation",
                    at as f64 / 1e9,
                    STALL_TIMEOUT / 1_000_000_000
                ),
                None => String::new(),
            };
            self.cx.fail(
                property::PROGRESS,
                format!(
                    "no progress: {ok} of {total} operations succeeded ({failed} failed, {} unknown; \
                     at least {min} must succeed){stop}",
                    total - ok - failed
                ),
            );
        }
        if self.cx.passing() {
            for c in 0..count {
                let mine = done.iter().filter(|d| d.client == c);
                if mine.clone().count() > 0
                    && !mine
                        .clone()
                        .any(|d| matches!(d.completion, Completion::Ok(_)))
                {
                    self.cx.fail(
                        property::PROGRESS,
                        format!("no progress: client {c} had none of its operations succeed"),
                    );
                }
            }
        }
        done
    }

    /// True when every operation of a phase succeeded (what a measurement needs).
    pub fn all_ok(&mut self, ops: &Ops, what: &str) -> bool {
        let ok = ops
            .iter()
            .filter(|d| matches!(d.completion, Completion::Ok(_)))
            .count();
        if ok < ops.len() {
            self.cx.fail(
                property::PROGRESS,
                format!(
                    "no progress: {ok} of {} operations of {what} succeeded; nothing to measure",
                    ops.len()
                ),
            );
            return false;
        }
        true
    }

    pub fn fault(&mut self, fault: Fault) {
        let restart = matches!(fault, Fault::Restart(_));
        match self.cluster.fault(fault) {
            Ok(()) => {}
            // A node that cannot start again on its own data dir lost what it kept.
            Err(e @ HarnessError::NodeStart { .. }) if restart => self.cx.fail(
                property::PERSISTENCE,
                format!("a node did not start again on its data dir: {e}"),
            ),
            Err(e) => self.cx.fail(property::HARNESS, e.to_string()),
        }
    }

    pub fn net(&mut self, config: NetConfig) {
        self.fault(Fault::Net(config));
    }

    pub fn rss(&mut self) -> Option<u64> {
        match self.cluster.rss_bytes("n1") {
            Ok(r) => Some(r),
            Err(e) => {
                self.cx
                    .fail(property::HARNESS, format!("cannot measure memory: {e}"));
                None
            }
        }
    }

    /// The judgement every test ends with: protocol errors, linearizability of the
    /// whole history, counts for the table, and the evidence of a failing run.
    pub fn finish(self) -> Finished {
        let KvCluster {
            cx,
            mut cluster,
            memory,
            dir,
            ..
        } = self;
        for e in &cluster.errors {
            cx.fail(property::PROTOCOL, format!("protocol error: {e}"));
        }
        let title = format!("{}::{} seed {}", cx.suite.name, cx.test, cx.seed);
        let judgement = judge(
            &KvFetchAppend,
            cluster.history.text(),
            Duration::from_secs(30),
            &title,
            false,
        );
        if !judgement.passed() {
            cx.fail(
                property::LINEARIZABLE,
                format!("linearizability: {}", judgement.summary),
            );
        }
        let (ops, ok, fail, info) = cluster.history.counts();
        let stats = cluster.stats();
        cx.stats = Some(TestStats {
            ops,
            ok,
            fail,
            info,
            messages: stats.routed,
            clock_ns: stats.elapsed_ns,
            steps: stats.steps,
        });
        if !cx.passing() {
            let evidence = cx.evidence();
            let timeline = judge(
                &KvFetchAppend,
                cluster.history.text(),
                Duration::from_secs(30),
                &title,
                true,
            );
            evidence.file("checker.txt", format!("{}\n", judgement.summary));
            if let Some(html) = timeline.html {
                evidence.file("timeline.html", html);
            }
            let links: String = cluster
                .network()
                .links()
                .iter()
                .map(|((a, b), s)| format!("{a} -> {b}: {s:?}\n"))
                .collect();
            evidence.file("links.txt", links);
            evidence.file("journal.jsonl", cluster.journal.text());
            evidence.file("history.jsonl", cluster.history.text());
            for n in cluster.node_names().to_vec() {
                if let Some(log) = cluster.log_path(&n) {
                    evidence.copy(log);
                }
            }
        }
        // Moved out, not copied: with large values the history runs to megabytes.
        let finished = Finished {
            journal: std::mem::take(&mut cluster.journal).into_text(),
            history: std::mem::take(&mut cluster.history).into_text(),
        };
        // The nodes go before their files; a failing run keeps a copy of them in
        // its scratch directory, where the links were (and goes when it goes).
        let nodes = cluster.node_names().to_vec();
        drop(cluster);
        if let Some(memory) = memory.filter(|_| !cx.passing()) {
            for n in nodes {
                let name = format!("{n}.data");
                let link = dir.join(&name);
                let copied = std::fs::remove_file(&link)
                    .and_then(|()| copy_dir(&memory.path().join(&name), &link));
                if let Err(e) = copied {
                    cx.note(format!("could not keep {}: {e}", link.display()));
                }
            }
        }
        finished
    }
}
