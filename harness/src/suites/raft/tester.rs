//! The Raft tester: 6.5840's `config.go` over the harness. It drives a cluster of
//! node processes through the Raft test interface (`specs::raft_protocol`), cuts and
//! heals links the way 6.5840's `disconnect`/`connect` do, and checks safety on every
//! report the nodes send, not only when a test asks:
//!
//! - at most one node becomes leader in any term (`leader` reports);
//! - every node applies indices 1, 2, 3... in order, and no two nodes ever apply
//!   different commands at one index (`applied` reports);
//! - a snapshot a node installs holds exactly the commands committed at its indices
//!   (`snapshot` reports), and the node applies on from the index after it.
//!
//! With [`Tester::snapshot_every`] the tester is also the service of 6.5840's 3D:
//! it asks each node to snapshot every few applied entries, with the list of commands
//! applied so far as the service state. Its links are reliable (see
//! `specs::raft_protocol`), whatever the network does between nodes.
//!
//! The first violation stops the test with a typed failure naming its property
//! ([`super::ELECTION_SAFETY`], [`super::STATE_MACHINE_SAFETY`]...); a test that
//! waits for something that never happens (no leader, no agreement, no answer) fails
//! for [`property::PROGRESS`]. A tester dropped while its test fails leaves the
//! network's journal and the nodes' logs in the run's evidence.
//!
//! Time is the cluster's clock: virtual in simulated time (the default), so the
//! tests' seconds of waiting cost milliseconds; the wall clock with `--time real`
//! (`HARNESS_TIME=real`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use specs::node_protocol::{Body, Message};
use specs::raft_protocol::{self, TESTER};

use super::{
    require, APPLY_ORDER, ELECTION_SAFETY, LEADER_ELECTION, LOG_COMPACTION, PERSISTENCE, SNAPSHOT,
    STATE_MACHINE_SAFETY,
};
use crate::cluster::{Cluster, ClusterConfig, Driver, Durability, TimeMode};
use crate::implementation::Implementation;
use crate::nemesis::Fault;
use crate::network::{NetConfig, Partition};
use crate::suite::{fail, property, Context, Evidence, TestStats};

thread_local! {
    /// What the testers of the test running on this thread did, for its row of the
    /// summary table (see [`take_stats`]).
    static STATS: std::cell::Cell<Option<TestStats>> = const { std::cell::Cell::new(None) };
}

/// The counts of every tester dropped on this thread since the last call: the
/// tester's requests (`start`, `get_state`, `persisted_size`) as operations, answered
/// (ok), refused with an error (fail) or unanswered within 1 s (info); the messages
/// routed; time on the clusters' clocks and lockstep steps, summed over testers.
pub fn take_stats() -> Option<TestStats> {
    STATS.with(|s| s.take())
}

pub const MS: u64 = 1_000_000;
/// 6.5840's `RaftElectionTimeout`: how long tests wait for things to settle.
pub const ELECTION_TIMEOUT: u64 = 1_000 * MS;

/// A safety violation the tester saw, and the property it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub property: &'static str,
    pub message: String,
}

/// What the tester endpoint hears: answers to its requests and the nodes' reports.
struct Observer {
    names: Vec<String>,
    /// Per node, what it applied in this process run, by index.
    logs: Vec<BTreeMap<u64, Value>>,
    /// The command first applied at each index by any node.
    committed: BTreeMap<u64, Value>,
    leaders: BTreeMap<u64, String>,
    /// Nodes restarted at least once: a new process applies its log again from index
    /// 1, so an index 1 from them starts a new sequence. (Reports of a killed process
    /// still in flight arrive before the new process's, links being FIFO on the
    /// reliable network, so they cannot be mistaken for its.)
    restarted: Vec<bool>,
    violations: Vec<Violation>,
    awaiting: Vec<u64>,
    replies: BTreeMap<u64, Body>,
    /// What ends the current run early, if anything but its answers.
    until: Option<Until>,
    now: u64,
    next_id: u64,
    /// Act as a service that snapshots after every this many entries (0: never).
    snapshot_every: u64,
    /// Requests whose answers nobody waits for (snapshots): the node asked, and how
    /// many commands the snapshot holds.
    unawaited: BTreeMap<u64, (usize, u64)>,
    /// Per node, the snapshots it reported installing (from a leader, or at restart).
    installed: Vec<u64>,
    /// The largest snapshot each node could hold, in bytes of its data as JSON: the
    /// largest the tester asked it to take or it reported installing.
    snapshot_bytes: Vec<u64>,
    /// What each node must hold on disk, for the floor of its `persisted_size`.
    held: Vec<Held>,
}

/// An event that ends a run before its time limit.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// This node has applied this index.
    Applied(usize, u64),
    /// This node has reported more snapshots installed than this.
    Installed(usize, u64),
}

/// What one node must keep on disk, as far as the tester can tell: the floor under
/// what it may report to `persisted_size`. A report is the tester's only view of a
/// node's Raft state (6.5840's tester reads its persister directly), so a node that
/// reports less than it holds makes the log-size bound pass unseen.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    /// Commands in the largest snapshot the node acknowledged taking or reported
    /// installing: a snapshot is durable before the node says so, and later ones
    /// only grow.
    snapshot: u64,
    /// The highest index the node may have compacted its log to: the last one the
    /// tester asked it to snapshot at or it installed a snapshot through.
    log_start: u64,
    /// The highest index the node applied since its disk was last wiped (a restart
    /// keeps what its log or snapshot holds): an entry a node reports applied is in
    /// its log, which a step makes durable before its messages leave.
    applied: u64,
    /// Wiped, and not yet started over (its last process's reports may still be on
    /// their way): nothing to require of its log.
    wiped: bool,
}

impl Held {
    /// The entries the node's log must still hold: applied, not compacted.
    fn log_entries(&self) -> u64 {
        if self.wiped {
            return 0;
        }
        self.applied.saturating_sub(self.log_start)
    }
}

impl Observer {
    fn new(names: Vec<String>) -> Observer {
        let n = names.len();
        Observer {
            logs: vec![BTreeMap::new(); n],
            names,
            committed: BTreeMap::new(),
            leaders: BTreeMap::new(),
            restarted: vec![false; n],
            violations: Vec::new(),
            awaiting: Vec::new(),
            replies: BTreeMap::new(),
            until: None,
            now: 0,
            next_id: 1,
            snapshot_every: 0,
            unawaited: Default::default(),
            installed: vec![0; n],
            snapshot_bytes: vec![0; n],
            held: vec![Held::default(); n],
        }
    }

    fn node(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn violation(&mut self, property: &'static str, message: String) {
        self.violations.push(Violation { property, message });
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Node `i` starts over with an empty disk: nothing it held before counts.
    fn wiped(&mut self, i: usize) {
        // An answer still on its way from the wiped process would raise the new
        // one's floor to a snapshot its empty disk never held.
        self.unawaited.retain(|_, &mut (node, _)| node != i);
        self.held[i] = Held {
            wiped: true,
            ..Held::default()
        };
    }

    /// An answer to the tester's request `id`.
    fn on_reply(&mut self, id: u64, src: &str, body: Body) {
        match self.unawaited.remove(&id) {
            Some(asked) => self.on_unawaited(asked, src, &body),
            None => {
                self.replies.insert(id, body);
            }
        }
    }

    /// The answer to a request nobody waits for: only an unexpected error matters.
    fn on_unawaited(&mut self, (i, commands): (usize, u64), src: &str, body: &Body) {
        if body.kind == "snapshot_ok" {
            let held = &mut self.held[i];
            held.snapshot = held.snapshot.max(commands);
        }
        let refused = body.kind == "error" && body.u64("code") == Some(22);
        if body.kind != "snapshot_ok" && !refused {
            self.violation(
                SNAPSHOT,
                format!("{src} answered a snapshot request with {body:?}"),
            );
        }
    }

    /// A node's service state is now the snapshot's: check it against what was
    /// committed, and continue that node's log from it.
    fn on_snapshot(&mut self, i: usize, src: &str, body: &Body, at: f64) {
        let report = match raft_protocol::parse_snapshot_report(body) {
            Ok(r) => r,
            Err(e) => return self.violation(property::PROTOCOL, format!("{src}: {e}")),
        };
        let commands = match report.data.as_array() {
            Some(c) if c.len() as u64 == report.index => c,
            _ => {
                let message = format!(
                    "{src} installed a snapshot through {} whose data the tester never made: {}",
                    report.index, report.data
                );
                return self.violation(SNAPSHOT, message);
            }
        };
        let mut log = BTreeMap::new();
        for (k, command) in commands.iter().enumerate() {
            let index = k as u64 + 1;
            let first = self.committed.entry(index).or_insert(command.clone());
            if first != command {
                let message = format!(
                    "state machine safety: {src} installed a snapshot with {command} at index {index} where another node applied {first} (at {at:.3}s)"
                );
                self.violation(STATE_MACHINE_SAFETY, message);
            }
            log.insert(index, command.clone());
        }
        self.logs[i] = log;
        self.installed[i] += 1;
        let held = &mut self.held[i];
        held.snapshot = held.snapshot.max(report.index);
        held.log_start = held.log_start.max(report.index);
        held.applied = held.applied.max(report.index);
        held.wiped = false;
        let bytes = report.data.to_string().len() as u64;
        self.snapshot_bytes[i] = self.snapshot_bytes[i].max(bytes);
    }

    /// As the service, asks node `i` to snapshot once it has applied `index`.
    fn maybe_snapshot(&mut self, cluster: &mut Cluster, i: usize, index: u64) {
        if self.snapshot_every == 0 || (index + 1) % self.snapshot_every != 0 {
            return;
        }
        let data: Vec<Value> = self.logs[i]
            .range(1..=index)
            .map(|(_, c)| c.clone())
            .collect();
        if data.len() as u64 != index {
            return;
        }
        let data = Value::from(data);
        let bytes = data.to_string().len() as u64;
        self.snapshot_bytes[i] = self.snapshot_bytes[i].max(bytes);
        self.held[i].log_start = self.held[i].log_start.max(index);
        let id = self.fresh_id();
        self.unawaited.insert(id, (i, index));
        cluster.send(Message {
            src: TESTER.into(),
            dest: self.names[i].clone(),
            now: None,
            body: raft_protocol::snapshot_request(id, index, data),
        });
    }

    fn on_report(&mut self, cluster: &mut Cluster, src: &str, body: &Body) {
        let Some(i) = self.node(src) else {
            self.violation(
                property::PROTOCOL,
                format!("report from unknown endpoint {src}: {body:?}"),
            );
            return;
        };
        let at = self.now as f64 / 1e9;
        match body.kind.as_str() {
            "leader" => match body.u64("term") {
                Some(term) => {
                    if let Some(other) = self.leaders.insert(term, src.to_string()) {
                        if other != src {
                            self.violation(
                                ELECTION_SAFETY,
                                format!(
                                    "election safety: {other} and {src} both became leader of term {term} (at {at:.3}s)"
                                ),
                            );
                        }
                    }
                }
                None => self.violation(
                    property::PROTOCOL,
                    format!("{src}: leader report without a term"),
                ),
            },
            "snapshot" => self.on_snapshot(i, src, body, at),
            "applied" => match raft_protocol::parse_applied(body) {
                Ok(entries) => {
                    for e in entries {
                        if e.index == 1 && self.restarted[i] {
                            self.logs[i].clear();
                            self.held[i].wiped = false;
                        }
                        self.held[i].applied = self.held[i].applied.max(e.index);
                        let expected = self.logs[i].keys().next_back().map_or(1, |k| k + 1);
                        if e.index != expected {
                            self.violation(
                                APPLY_ORDER,
                                format!(
                                    "{src} applied index {} but its next should be {expected} (at {at:.3}s)",
                                    e.index
                                ),
                            );
                        }
                        self.logs[i].insert(e.index, e.command.clone());
                        let first = self.committed.entry(e.index).or_insert(e.command.clone());
                        if *first != e.command {
                            let message = format!(
                                "state machine safety: {src} applied {} at index {} where another node applied {first} (at {at:.3}s)",
                                e.command, e.index
                            );
                            self.violation(STATE_MACHINE_SAFETY, message);
                        }
                        self.maybe_snapshot(cluster, i, e.index);
                    }
                }
                Err(e) => self.violation(property::PROTOCOL, format!("{src}: {e}")),
            },
            other => self.violation(
                property::PROTOCOL,
                format!("{src} sent the tester an unexpected {other:?}"),
            ),
        }
    }
}

impl Driver for Observer {
    fn start(&mut self, cluster: &mut Cluster) {
        self.now = cluster.now();
    }

    fn on_message(&mut self, cluster: &mut Cluster, message: Message) {
        self.now = cluster.now();
        match message.body.in_reply_to {
            Some(id) => self.on_reply(id, &message.src, message.body),
            None => self.on_report(cluster, &message.src, &message.body),
        }
    }

    fn on_wake(&mut self, _: &mut Cluster, _: u64) {}

    fn done(&self) -> bool {
        match self.until {
            Some(Until::Applied(i, index)) => {
                self.logs[i].keys().next_back().is_some_and(|&k| k >= index)
            }
            Some(Until::Installed(i, count)) => self.installed[i] > count,
            None => {
                !self.awaiting.is_empty()
                    && self.awaiting.iter().all(|id| self.replies.contains_key(id))
            }
        }
    }
}

/// Where and how a tester runs its cluster, for callers without a [`Context`] (the
/// benchmark); tests use [`Tester::new`] and its variants.
#[derive(Debug, Clone)]
pub struct Setup {
    pub implementation: Implementation,
    pub seed: u64,
    pub mode: TimeMode,
    /// The cluster's directory (node logs and data dirs); created if missing.
    pub dir: PathBuf,
    pub durability: Durability,
    /// Where a failing run's journal and node logs go.
    pub evidence: Option<Evidence>,
}

impl Setup {
    /// What a test's context gives: its implementation (our binary with `RAFT_BUG`
    /// set in a known-bad run), seed, clock, a fresh scratch subdirectory and the
    /// evidence of the run.
    pub fn of(cx: &Context) -> Setup {
        Setup {
            implementation: cx.implementation(),
            seed: cx.seed,
            mode: cx.mode,
            dir: cx.fresh_dir("cluster"),
            durability: Durability::Disk,
            evidence: Some(cx.evidence()),
        }
    }
}

/// A Raft cluster under test.
pub struct Tester {
    // Dropped first: nodes are killed before their directory goes.
    cluster: Cluster,
    obs: Observer,
    pub n: usize,
    connected: Vec<bool>,
    alive: Vec<bool>,
    paused: Vec<bool>,
    /// How links between nodes behave now.
    net: NetConfig,
    /// One-way cuts in force, as (from, to).
    cuts: Vec<(usize, usize)>,
    /// A named partition shape in force (majority/minority, bridge...).
    shape: Option<Partition>,
    /// Whether a link is slow (`slow_link`), for `heal` to make it fast again.
    slowed: bool,
    pub rng: StdRng,
    evidence: Option<Evidence>,
    /// Requests to the nodes: sent, answered, refused, unanswered.
    requests: TestStats,
}

impl Tester {
    /// `n` nodes of the context's implementation, on its clock and seed.
    pub fn new(cx: &Context, n: usize) -> Tester {
        Tester::with_setup(n, Setup::of(cx))
    }

    /// Like [`Tester::new`], with the seed of one run of a sweep.
    pub fn with_seed(cx: &Context, n: usize, seed: u64) -> Tester {
        Tester::with_setup(
            n,
            Setup {
                seed,
                ..Setup::of(cx)
            },
        )
    }

    /// A tester whose nodes keep their data dirs on the power-loss filesystem
    /// (`harness::lazyfs`), so [`Tester::power_loss`] can strike.
    pub fn on_lazyfs(cx: &Context, n: usize) -> Tester {
        Tester::on_lazyfs_with_seed(cx, n, cx.seed)
    }

    /// Like [`Tester::on_lazyfs`], with the seed of one run of a sweep.
    pub fn on_lazyfs_with_seed(cx: &Context, n: usize, seed: u64) -> Tester {
        Tester::with_setup(
            n,
            Setup {
                seed,
                durability: Durability::LazyFs,
                ..Setup::of(cx)
            },
        )
    }

    /// A tester on the wall clock whose links have no added delay (the benchmark).
    pub fn real_time_zero_latency(
        n: usize,
        implementation: Implementation,
        dir: PathBuf,
    ) -> Tester {
        let mut t = Tester::with_setup(
            n,
            Setup {
                implementation,
                seed: rand::random(),
                mode: TimeMode::Real,
                dir,
                durability: Durability::Disk,
                evidence: None,
            },
        );
        t.net = NetConfig {
            latency: crate::network::Latency::Fixed(0),
            ..NetConfig::reliable()
        };
        t.cluster.fault(Fault::Net(t.net)).expect("network change");
        t
    }

    /// Starts the cluster; a failure to start is a failure of the test.
    pub fn with_setup(n: usize, setup: Setup) -> Tester {
        let config = ClusterConfig {
            nodes: n,
            implementation: setup.implementation.clone(),
            env: Vec::new(),
            mode: setup.mode,
            seed: setup.seed,
            net: NetConfig::reliable(),
            dir: setup.dir.clone(),
            // A hang detector, not a deadline: fsyncs on a loaded machine take seconds.
            step_timeout: Duration::from_secs(10),
        };
        let mut cluster = Cluster::start_with(config, setup.durability).unwrap_or_else(|e| {
            fail(
                property::SETUP,
                format!(
                    "cannot start {n} nodes of {}: {e}",
                    setup.implementation.describe()
                ),
            )
        });
        cluster.make_reliable(TESTER);
        let names = cluster.node_names().to_vec();
        Tester {
            obs: Observer::new(names),
            cluster,
            n,
            connected: vec![true; n],
            alive: vec![true; n],
            paused: vec![false; n],
            net: NetConfig::reliable(),
            cuts: Vec::new(),
            shape: None,
            slowed: false,
            rng: rand::SeedableRng::seed_from_u64(setup.seed ^ 0x7465_7374_6572),
            evidence: setup.evidence,
            requests: TestStats::default(),
        }
    }

    /// What the safety checks found so far (the first one also stopped the test).
    pub fn violations(&self) -> &[Violation] {
        &self.obs.violations
    }

    pub fn now(&self) -> u64 {
        self.cluster.now()
    }

    fn name(&self, i: usize) -> String {
        self.cluster.node_names()[i].clone()
    }

    /// Stops the test on the first safety violation or node error seen so far, with
    /// the violation's property (the message lists every violation seen).
    fn check_safety(&self) {
        if let Some(first) = self.obs.violations.first() {
            let all: Vec<&str> = self
                .obs
                .violations
                .iter()
                .map(|v| v.message.as_str())
                .collect();
            fail(first.property, all.join("\n"));
        }
        if !self.cluster.errors.is_empty() {
            fail(
                property::PROTOCOL,
                format!("node errors: {}", self.cluster.errors.join("\n")),
            );
        }
    }

    /// The answer of node `i` to a `what` request, parsed: no answer, or a refusal,
    /// is a lack of progress; an answer that does not parse breaks the protocol.
    fn answer<T>(
        &self,
        i: usize,
        what: &str,
        reply: Option<Body>,
        parse: impl FnOnce(&Body) -> Result<T, String>,
    ) -> T {
        let name = self.name(i);
        let Some(body) = reply else {
            fail(
                property::PROGRESS,
                format!("no progress: {name} did not answer {what} within 1 s"),
            );
        };
        if body.kind == "error" {
            fail(
                property::PROGRESS,
                format!(
                    "no progress: {name} refused {what}: error {} ({})",
                    body.u64("code")
                        .map_or("without a code".into(), |c| c.to_string()),
                    body.get("text").and_then(Value::as_str).unwrap_or("")
                ),
            );
        }
        parse(&body).unwrap_or_else(|e| fail(property::PROTOCOL, format!("{name}: {e}")))
    }

    /// Lets the cluster run for `ns` nanoseconds.
    pub fn sleep(&mut self, ns: u64) {
        self.obs.awaiting.clear();
        let limit = self.cluster.now() + ns;
        // The virtual clock moves only with events: one at the limit makes it get there.
        self.cluster.wake(limit, 0);
        self.run(limit);
        self.check_safety();
    }

    /// Runs the cluster until `limit`, then takes note of the nodes whose power a
    /// [`Tester::power_loss_at_sync`] cut in the meantime: down and disconnected, as
    /// after [`Tester::power_loss`], until `restart`.
    fn run(&mut self, limit: u64) {
        self.cluster.run(&mut self.obs, limit);
        for i in 0..self.n {
            if self.alive[i] && !self.cluster.is_up(&self.name(i)) {
                self.alive[i] = false;
                self.disconnect(i);
            }
        }
    }

    /// Sends each (node, body) at once and waits for all answers (or 1 s).
    fn ask_all(&mut self, requests: Vec<(usize, Body)>) -> Vec<Option<Body>> {
        let mut ids = Vec::new();
        for (i, mut body) in requests {
            let id = self.obs.fresh_id();
            body.msg_id = Some(id);
            let dest = self.name(i);
            self.cluster.send(Message {
                src: TESTER.into(),
                dest,
                now: None,
                body,
            });
            ids.push(id);
        }
        self.obs.awaiting = ids.clone();
        let limit = self.cluster.now() + 1_000 * MS;
        self.cluster.wake(limit, 0);
        self.run(limit);
        self.obs.awaiting.clear();
        let replies: Vec<Option<Body>> = ids.iter().map(|id| self.obs.replies.remove(id)).collect();
        for reply in &replies {
            self.requests.ops += 1;
            match reply {
                None => self.requests.info += 1,
                Some(body) if body.kind == "error" => self.requests.fail += 1,
                Some(_) => self.requests.ok += 1,
            }
        }
        self.check_safety();
        replies
    }

    /// `GetState()`: (term, is_leader).
    pub fn get_state(&mut self, i: usize) -> (u64, bool) {
        let reply = self
            .ask_all(vec![(i, raft_protocol::get_state(0))])
            .remove(0);
        if reply.is_none() && !self.alive[i] {
            // Its power went while it was asked (`power_loss_at_sync`).
            return (0, false);
        }
        self.answer(i, "get_state", reply, raft_protocol::parse_get_state_ok)
    }

    /// `count` random commands started at node `i` at once (see [`Tester::start_many`]).
    pub fn start_random(&mut self, i: usize, count: u64) -> Vec<(u64, u64, bool)> {
        let requests = (0..count).map(|_| (i, self.random_command())).collect();
        self.start_many(requests)
    }

    /// `Start(command)` on each of `nodes`' commands at once: (index, term, is_leader).
    pub fn start_many(&mut self, requests: Vec<(usize, Value)>) -> Vec<(u64, u64, bool)> {
        let nodes: Vec<usize> = requests.iter().map(|r| r.0).collect();
        let bodies = requests
            .into_iter()
            .map(|(i, c)| (i, raft_protocol::start(0, c)))
            .collect();
        let replies = self.ask_all(bodies);
        nodes
            .into_iter()
            .zip(replies)
            .map(|(i, reply)| match reply {
                // Its power went in the sync of this very entry (`power_loss_at_sync`):
                // as 6.5840's Start on a crashed server, not a leader.
                None if !self.alive[i] => (0, 0, false),
                reply => self.answer(i, "start", reply, raft_protocol::parse_start_ok),
            })
            .collect()
    }

    pub fn start(&mut self, i: usize, command: Value) -> (u64, u64, bool) {
        self.start_many(vec![(i, command)]).remove(0)
    }

    /// Cuts node `i` off from every other node (the tester still reaches it).
    pub fn disconnect(&mut self, i: usize) {
        self.connected[i] = false;
        self.apply_partition();
    }

    pub fn connect(&mut self, i: usize) {
        self.connected[i] = true;
        self.apply_partition();
    }

    /// Puts the `disconnect`s and one-way cuts in force into the network.
    fn apply_partition(&mut self) {
        let all = self.cluster.node_names().to_vec();
        let isolated = (0..self.n)
            .filter(|&i| !self.connected[i])
            .map(|i| Partition::isolate(&all[i], &all));
        let cuts = self
            .cuts
            .iter()
            .map(|&(a, b)| Partition::one_way(&all[a], &all[b]));
        let fault = isolated
            .chain(cuts)
            .chain(self.shape.clone())
            .reduce(Partition::and)
            .map_or(Fault::Heal, Fault::Partition);
        self.cluster.fault(fault).expect("partitions apply");
    }

    /// 6.5840's `crash1`: kills node `i` (SIGKILL) and leaves it disconnected.
    pub fn crash(&mut self, i: usize) {
        self.disconnect(i);
        let name = self.name(i);
        self.cluster.fault(Fault::Crash(name)).expect("crash");
        self.alive[i] = false;
    }

    /// 6.5840's `start1`: kills node `i` if it runs and starts it again on its data
    /// dir, still disconnected (`connect` it after).
    pub fn restart(&mut self, i: usize) {
        self.boot_again(i, Fault::Restart);
    }

    /// Power failure of node `i` (on a tester `on_lazyfs`): killed, and every write
    /// it had not fsynced is lost; left disconnected and down until `restart`.
    pub fn power_loss(&mut self, i: usize) {
        self.disconnect(i);
        let name = self.name(i);
        self.cluster
            .fault(Fault::PowerLoss(name))
            .unwrap_or_else(|e| panic!("power loss on n{}: {e}", i + 1));
        self.alive[i] = false;
    }

    /// Arms a power failure of node `i` (on a tester `on_lazyfs`) in the middle of its
    /// `sync`-th sync from now (`Fault::PowerLossAtSync`). When it strikes, the node
    /// is down and disconnected until `restart`, as after [`Tester::power_loss`].
    pub fn power_loss_at_sync(&mut self, i: usize, sync: u64) {
        let name = self.name(i);
        self.cluster
            .fault(Fault::PowerLossAtSync(name, sync))
            .unwrap_or_else(|e| panic!("power loss at a sync of n{}: {e}", i + 1));
    }

    /// How many power cuts armed with [`Tester::power_loss_at_sync`] struck so far.
    pub fn power_cuts_struck(&self) -> u64 {
        self.cluster.power_cuts_struck_anywhere()
    }

    /// Amnesia: kills node `i` and starts it again with its data dir wiped, still
    /// disconnected. It comes back as a brand-new node that remembers no vote and no
    /// entry, which Raft does not tolerate on a majority.
    pub fn restart_wiped(&mut self, i: usize) {
        self.boot_again(i, Fault::RestartWiped);
        self.obs.wiped(i);
    }

    /// Crashes node `i` and starts a new process with `fault` (a restart kind).
    fn boot_again(&mut self, i: usize, fault: fn(String) -> Fault) {
        self.crash(i);
        let fault = fault(self.name(i));
        let what = fault.describe();
        if let Err(e) = self.cluster.fault(fault) {
            // A node must start again from whatever its own writes left on its disk.
            fail(
                PERSISTENCE,
                format!("n{} did not start again ({what}): {e}", i + 1),
            );
        }
        self.alive[i] = true;
        self.obs.restarted[i] = true;
    }

    pub fn is_alive(&self, i: usize) -> bool {
        self.alive[i]
    }

    pub fn is_connected(&self, i: usize) -> bool {
        self.connected[i]
    }

    pub fn is_paused(&self, i: usize) -> bool {
        self.paused[i]
    }

    /// From now on, act as 6.5840's snapshotting service: ask each node to snapshot
    /// after every `every` applied entries (6.5840 uses 10).
    pub fn snapshot_every(&mut self, every: u64) {
        self.obs.snapshot_every = every;
    }

    /// Snapshots the nodes reported installing (from a leader, or at restart).
    pub fn snapshots_installed(&self) -> u64 {
        self.obs.installed.iter().sum()
    }

    /// 6.5840's `setunreliable`: links between nodes lose, duplicate, delay and
    /// reorder messages (the tester's links stay reliable).
    pub fn set_unreliable(&mut self, unreliable: bool) {
        self.net = if unreliable {
            NetConfig::unreliable()
        } else {
            NetConfig::reliable()
        };
        self.cluster
            .fault(Fault::Net(self.net))
            .expect("network change");
    }

    /// 6.5840's `setlongreordering`: on top of the current network, most messages are
    /// held back for up to about 2 s.
    pub fn set_long_reordering(&mut self) {
        self.net = self.net.long_reordering();
        self.cluster
            .fault(Fault::Net(self.net))
            .expect("network change");
    }

    /// Duplicates messages between nodes with probability `p`, on top of the
    /// current network.
    pub fn set_duplication(&mut self, p: f64) {
        self.net = NetConfig {
            duplicate: p,
            ..self.net
        };
        self.cluster
            .fault(Fault::Net(self.net))
            .expect("network change");
    }

    /// From now on the network keeps a copy of every message between nodes, delivered
    /// or not (`Fault::Record`), for [`Tester::replay_peer_messages`].
    pub fn record_peer_messages(&mut self) {
        self.cluster.fault(Fault::Record).expect("recording");
    }

    /// From now on no new message between nodes is kept: a later
    /// [`Tester::replay_peer_messages`] sends those of the window since
    /// [`Tester::record_peer_messages`] alone (`Fault::StopRecording`).
    pub fn stop_recording_peer_messages(&mut self) {
        self.cluster
            .fault(Fault::StopRecording)
            .expect("stop recording");
    }

    /// Sends again every message between nodes kept since
    /// [`Tester::record_peer_messages`], each arriving within `span` ns from now
    /// unless a partition in force cuts its link (`Fault::Replay`). Returns how many
    /// it sent.
    pub fn replay_peer_messages(&mut self, span: u64) -> u64 {
        let before = self.cluster.replayed();
        self.cluster.fault(Fault::Replay(span)).expect("replay");
        self.cluster.replayed() - before
    }

    /// What the nodes keep on disk, measured by the harness rather than taken from
    /// their `persisted_size` reports: each node's data dir must hold at most twice
    /// `max_raft_state` bytes of Raft state and the largest snapshot the node could
    /// hold (twice: room for an old and a new file while one replaces the other). A
    /// node that trims its log in memory but keeps it on disk, or keeps every old
    /// snapshot, grows past it whatever it reports. Fails for `log-compaction`.
    pub fn require_disk_compacted(&mut self, max_raft_state: u64) {
        for i in 0..self.n {
            let name = self.name(i);
            let bytes = match self.cluster.data_bytes(&name) {
                Ok(bytes) => bytes,
                Err(e) => fail(
                    property::HARNESS,
                    format!("cannot measure {name}'s data dir: {e}"),
                ),
            };
            let snapshot = self.obs.snapshot_bytes[i];
            let limit = 2 * (max_raft_state + snapshot);
            require(bytes <= limit, LOG_COMPACTION, || {
                format!(
                    "logs were not trimmed on disk: {name}'s data dir holds {bytes} bytes, more than \
                     twice {max_raft_state} bytes of Raft state and the {snapshot} bytes of the \
                     largest snapshot it could hold ({limit}), whatever it reports to persisted_size"
                )
            });
        }
    }

    /// 6.5840's `LogSize`: the largest Raft state (everything but the snapshot) a
    /// running node last persisted, in bytes. Each report must also cover what the
    /// node is known to hold (`Tester::require_honest_size`).
    pub fn log_size(&mut self) -> u64 {
        let nodes: Vec<usize> = (0..self.n)
            .filter(|&i| self.alive[i] && !self.paused[i])
            .collect();
        let requests = nodes
            .iter()
            .map(|&i| (i, raft_protocol::persisted_size(0)))
            .collect();
        // What each node held when asked: reports after the question may be of work
        // the node did after answering it.
        let held: Vec<Held> = nodes.iter().map(|&i| self.obs.held[i]).collect();
        let replies = self.ask_all(requests);
        nodes
            .into_iter()
            .zip(held)
            .zip(replies)
            .map(|((i, held), reply)| {
                let (raft_state, snapshot) = self.answer(
                    i,
                    "persisted_size",
                    reply,
                    raft_protocol::parse_persisted_size_ok,
                );
                self.require_honest_size(i, held, raft_state, snapshot);
                raft_state
            })
            .max()
            .unwrap_or(0)
    }

    /// A `persisted_size` answer of node `i` must count at least a byte for each
    /// entry its log must hold (applied and not compacted) and for each command of
    /// the largest snapshot it confirmed, as of when it was asked (`held`): however
    /// a node encodes them, it cannot keep them in less. A node that reports less
    /// makes 6.5840's log-size bound, which reads the report, pass without seeing the
    /// log. Fails for `protocol`.
    fn require_honest_size(&self, i: usize, held: Held, raft_state: u64, snapshot: u64) {
        let name = self.name(i);
        let entries = held.log_entries();
        require(raft_state >= entries, property::PROTOCOL, || {
            format!(
                "{name} reports {raft_state} bytes of Raft state, less than a byte for each \
                 entry its log must hold: {entries} (applied through {}, compacted at most \
                 through {})",
                held.applied, held.log_start
            )
        });
        require(snapshot >= held.snapshot, property::PROTOCOL, || {
            format!(
                "{name} reports {snapshot} bytes of snapshot, less than a byte for each \
                 command of the snapshot it confirmed: {}",
                held.snapshot
            )
        });
    }

    /// SIGSTOP: node `i` keeps its state and its links but does nothing; messages to
    /// it wait. The tester stops asking it until `resume`.
    pub fn pause(&mut self, i: usize) {
        let name = self.name(i);
        self.cluster.fault(Fault::Pause(name)).expect("pause");
        self.paused[i] = true;
    }

    pub fn resume(&mut self, i: usize) {
        let name = self.name(i);
        self.cluster.fault(Fault::Resume(name)).expect("resume");
        self.paused[i] = false;
    }

    /// Cuts only what node `i` sends to the other nodes; it still hears them.
    pub fn cut_outgoing(&mut self, i: usize) {
        for j in (0..self.n).filter(|&j| j != i) {
            self.cuts.push((i, j));
        }
        self.apply_partition();
    }

    /// Cuts the one-way link from node `from` to node `to`.
    pub fn cut(&mut self, from: usize, to: usize) {
        self.cuts.push((from, to));
        self.apply_partition();
    }

    /// Restores the one-way link from `from` to `to`.
    pub fn uncut(&mut self, from: usize, to: usize) {
        self.cuts.retain(|&c| c != (from, to));
        self.apply_partition();
    }

    /// Puts a partition of a named shape in force (`None` lifts it); `disconnect`s
    /// and cuts stay as they are.
    pub fn set_shape(&mut self, shape: Option<Partition>) {
        self.shape = shape;
        self.apply_partition();
    }

    /// The nodes' names, for building partition shapes.
    pub fn names(&self) -> Vec<String> {
        self.cluster.node_names().to_vec()
    }

    /// Undoes every one-way cut, shape and slow link (the `disconnect`s stay in
    /// force).
    pub fn heal(&mut self) {
        self.cuts.clear();
        self.shape = None;
        self.apply_partition();
        if std::mem::take(&mut self.slowed) {
            self.cluster
                .fault(Fault::SlowLinks(Partition::none(), 0))
                .expect("links made fast");
        }
    }

    /// Every message from node `from` to node `to` sent from now on takes `delay` ns
    /// longer (`Fault::SlowLinks`; one slow link at a time, until `heal`).
    pub fn slow_link(&mut self, from: usize, to: usize, delay: u64) {
        let link = Partition::one_way(&self.name(from), &self.name(to));
        self.cluster
            .fault(Fault::SlowLinks(link, delay))
            .expect("slow link");
        self.slowed = true;
    }

    /// Messages node `from` has sent node `to` so far.
    pub fn link_sent(&self, from: usize, to: usize) -> u64 {
        let names = self.cluster.node_names();
        self.cluster
            .network()
            .links()
            .get(&(names[from].clone(), names[to].clone()))
            .map_or(0, |l| l.sent)
    }

    /// Connected and answering: the nodes the tester asks.
    fn reachable(&self, i: usize) -> bool {
        self.connected[i] && !self.paused[i]
    }

    /// Everything the network did, in order: identical for one seed in simulated time.
    pub fn journal(&self) -> String {
        self.cluster.journal.text().to_string()
    }

    /// 6.5840's `checkOneLeader`: a single leader among the connected nodes within
    /// about 5 s, and never two in one term.
    pub fn check_one_leader(&mut self) -> usize {
        for _ in 0..10 {
            let ms = self.rng.gen_range(450..=550);
            self.sleep(ms * MS);
            let mut leaders: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
            for i in 0..self.n {
                if self.reachable(i) {
                    let (term, is_leader) = self.get_state(i);
                    if is_leader {
                        leaders.entry(term).or_default().push(i);
                    }
                }
            }
            for (term, ls) in &leaders {
                if ls.len() > 1 {
                    let names: Vec<String> = ls.iter().map(|&i| self.name(i)).collect();
                    fail(
                        ELECTION_SAFETY,
                        format!(
                            "election safety: term {term} has {} leaders: {}",
                            ls.len(),
                            names.join(", ")
                        ),
                    );
                }
            }
            if let Some((_, ls)) = leaders.iter().next_back() {
                return ls[0];
            }
        }
        fail(
            property::PROGRESS,
            "no progress: no leader among the connected nodes in 10 checks over about 5 s",
        );
    }

    /// 6.5840's `checkTerms`: the connected nodes agree on the term.
    pub fn check_terms(&mut self) -> u64 {
        let mut term = None;
        for i in 0..self.n {
            if self.reachable(i) {
                let (t, _) = self.get_state(i);
                match term {
                    None => term = Some(t),
                    Some(x) if x != t => fail(
                        LEADER_ELECTION,
                        format!(
                            "connected servers disagree on the term: {x} and {t} ({})",
                            self.name(i)
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        term.expect("checkTerms with no connected node")
    }

    /// 6.5840's `checkNoLeader`.
    pub fn check_no_leader(&mut self) {
        for i in 0..self.n {
            if self.reachable(i) {
                let (term, is_leader) = self.get_state(i);
                if is_leader {
                    fail(
                        LEADER_ELECTION,
                        format!(
                            "expected no leader among connected servers (no majority), but {} claims to lead term {term}",
                            self.name(i)
                        ),
                    );
                }
            }
        }
    }

    /// The highest index any node has applied (so committed); 0 before any.
    pub fn last_applied_anywhere(&self) -> u64 {
        self.obs.committed.keys().next_back().copied().unwrap_or(0)
    }

    /// How many nodes applied `index`, and what (they agree: checked on every report).
    pub fn n_committed(&self, index: u64) -> (usize, Option<Value>) {
        let count = self
            .obs
            .logs
            .iter()
            .filter(|l| l.contains_key(&index))
            .count();
        (count, self.obs.committed.get(&index).cloned())
    }

    /// 6.5840's `one`: gets `command` committed on at least `expected` nodes within
    /// 10 s, trying each connected node as leader; without `retry`, one leader gets
    /// one chance of 2 s.
    pub fn one(&mut self, command: Value, expected: usize, retry: bool) -> u64 {
        let t0 = self.now();
        let mut starts = 0;
        while self.now() - t0 < 10_000 * MS {
            let mut index = None;
            for _ in 0..self.n {
                starts = (starts + 1) % self.n;
                if self.reachable(starts) {
                    let (i, _, is_leader) = self.start(starts, command.clone());
                    if is_leader {
                        index = Some(i);
                        break;
                    }
                }
            }
            if let Some(index) = index {
                let t1 = self.now();
                while self.now() - t1 < 2_000 * MS {
                    let (nd, cmd) = self.n_committed(index);
                    if nd > 0 && nd >= expected && cmd.as_ref() == Some(&command) {
                        return index;
                    }
                    self.sleep(20 * MS);
                }
                if !retry {
                    fail(
                        property::PROGRESS,
                        format!(
                            "no progress: one({command}) failed to reach agreement on {expected} nodes in 2 s with one leader"
                        ),
                    );
                }
            } else {
                self.sleep(50 * MS);
            }
        }
        fail(
            property::PROGRESS,
            format!(
                "no progress: one({command}) failed to reach agreement on {expected} nodes in 10 s"
            ),
        );
    }

    /// [`Tester::one`] of a random command, retried: committed on `expected` nodes.
    pub fn one_random(&mut self, expected: usize) -> u64 {
        let c = self.random_command();
        self.one(c, expected, true)
    }

    /// 6.5840's `one` for several commands at once, as its tests do from concurrent
    /// goroutines: every command gets committed on at least `expected` nodes within
    /// 10 s, each one retried on whichever node leads when its 2 s run out.
    pub fn one_concurrently(&mut self, commands: Vec<Value>, expected: usize) {
        struct Pending {
            command: Value,
            /// The index and time of the latest start on a leader.
            attempt: Option<(u64, u64)>,
        }
        let mut pending: Vec<Pending> = commands
            .into_iter()
            .map(|command| Pending {
                command,
                attempt: None,
            })
            .collect();
        let t0 = self.now();
        let mut starts = 0;
        while !pending.is_empty() {
            if self.now() - t0 >= 10_000 * MS {
                fail(
                    property::PROGRESS,
                    format!(
                        "no progress: {} of the concurrent commands not committed on {expected} nodes in 10 s",
                        pending.len()
                    ),
                );
            }
            let now = self.now();
            let stale: Vec<usize> = (0..pending.len())
                .filter(|&k| {
                    pending[k]
                        .attempt
                        .is_none_or(|(_, at)| now - at >= 2_000 * MS)
                })
                .collect();
            if !stale.is_empty() {
                for _ in 0..self.n {
                    starts = (starts + 1) % self.n;
                    if !self.reachable(starts) {
                        continue;
                    }
                    let requests = stale
                        .iter()
                        .map(|&k| (starts, pending[k].command.clone()))
                        .collect();
                    let answers = self.start_many(requests);
                    if answers.iter().any(|a| a.2) {
                        for (&k, (index, _, ok)) in stale.iter().zip(answers) {
                            if ok {
                                pending[k].attempt = Some((index, now));
                            }
                        }
                        break;
                    }
                }
            }
            self.sleep(20 * MS);
            pending.retain(|p| {
                let Some((index, _)) = p.attempt else {
                    return true;
                };
                let (nd, cmd) = self.n_committed(index);
                !(nd >= expected && cmd.as_ref() == Some(&p.command))
            });
        }
    }

    /// Runs until node `i` has applied `index` or `timeout` ns pass; true if it did.
    pub fn run_until_applied(&mut self, i: usize, index: u64, timeout: u64) -> bool {
        self.run_until(Until::Applied(i, index), timeout)
    }

    /// Runs until node `i` reports a snapshot installed (from a leader, or at restart)
    /// or `timeout` ns pass; true if it did. Returns at the event that brought the
    /// report, so a fault applied next lands right after the install.
    pub fn run_until_installed(&mut self, i: usize, timeout: u64) -> bool {
        let count = self.obs.installed[i];
        self.run_until(Until::Installed(i, count), timeout)
    }

    fn run_until(&mut self, until: Until, timeout: u64) -> bool {
        self.obs.until = Some(until);
        let limit = self.cluster.now() + timeout;
        self.cluster.wake(limit, 0);
        self.run(limit);
        let done = self.obs.done();
        self.obs.until = None;
        self.check_safety();
        done
    }

    /// 6.5840's `wait`: the command at `index` once `n` nodes applied it, or `None` if
    /// some node moved past `start_term` (the leader changed; the caller retries).
    pub fn wait(&mut self, index: u64, n: usize, start_term: Option<u64>) -> Option<Value> {
        let mut to = 10 * MS;
        for _ in 0..30 {
            let (nd, _) = self.n_committed(index);
            if nd >= n {
                break;
            }
            self.sleep(to);
            if to < 1_000 * MS {
                to *= 2;
            }
            if let Some(term) = start_term {
                for i in 0..self.n {
                    if self.alive[i] && !self.paused[i] && self.get_state(i).0 > term {
                        return None;
                    }
                }
            }
        }
        let (nd, cmd) = self.n_committed(index);
        if nd < n {
            fail(
                property::PROGRESS,
                format!("no progress: only {nd} nodes applied index {index}; wanted {n}"),
            );
        }
        cmd
    }

    /// Messages and body bytes between nodes so far (each RPC is a request and a reply).
    pub fn peer_traffic(&self) -> (u64, u64) {
        let names = self.cluster.node_names();
        self.cluster
            .network()
            .links()
            .iter()
            .filter(|((a, b), _)| names.contains(a) && names.contains(b))
            .fold((0, 0), |(m, b), (_, s)| (m + s.sent, b + s.bytes))
    }

    /// A command no other call returns: 6.5840 uses random integers.
    pub fn random_command(&mut self) -> Value {
        Value::from(self.rng.gen::<u32>())
    }
}

impl Drop for Tester {
    /// A failing test's evidence: the journal of every message and fault, and the
    /// nodes' logs (copied when the run ends, after the nodes are gone).
    fn drop(&mut self) {
        let run = self.cluster.stats();
        let mut stats = STATS.with(|s| s.take()).unwrap_or_default();
        stats.ops += self.requests.ops;
        stats.ok += self.requests.ok;
        stats.fail += self.requests.fail;
        stats.info += self.requests.info;
        stats.messages += run.routed;
        stats.steps += run.steps;
        stats.clock_ns += self.cluster.now();
        STATS.with(|s| s.set(Some(stats)));
        let Some(evidence) = &self.evidence else {
            return;
        };
        if !std::thread::panicking() && self.obs.violations.is_empty() {
            return;
        }
        evidence.file("journal.jsonl", self.cluster.journal.text());
        if !self.obs.violations.is_empty() {
            let text: String = self
                .obs
                .violations
                .iter()
                .map(|v| format!("[{}] {}\n", v.property, v.message))
                .collect();
            evidence.file("violations.txt", text);
        }
        for name in self.cluster.node_names() {
            if let Some(log) = self.cluster.log_path(name) {
                evidence.copy(log);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor under a node's `persisted_size` counts the snapshots it confirmed;
    /// a confirmation from the process before a wipe must not count for the empty
    /// disk after it.
    #[test]
    fn a_late_answer_from_a_wiped_process_sets_no_floor() {
        let mut obs = Observer::new(vec!["n1".into(), "n2".into()]);
        // Both nodes were asked to snapshot 9 commands; n2 is wiped before it answers.
        obs.unawaited.insert(7, (0, 9));
        obs.unawaited.insert(8, (1, 9));
        obs.wiped(1);
        let ok = |id| {
            let mut body = Body::new("snapshot_ok");
            body.in_reply_to = Some(id);
            body
        };
        obs.on_reply(7, "n1", ok(7));
        obs.on_reply(8, "n2", ok(8));
        assert_eq!(
            obs.held[0].snapshot, 9,
            "a confirmed snapshot raises the floor"
        );
        assert_eq!(
            obs.held[1].snapshot, 0,
            "the wiped node's floor stays empty"
        );
        assert!(obs.held[1].wiped);
        assert!(obs.violations.is_empty(), "{:?}", obs.violations);
    }
}
