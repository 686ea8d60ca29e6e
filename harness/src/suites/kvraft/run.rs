//! One kvraft test's run: three nodes behind the simulated network, client phases
//! that must make progress, the leader found by asking, and the judgement every test
//! ends with.

use std::time::Duration;

use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::node_protocol::{Body, ErrorCode, Message};
use specs::KvFetchAppend;

use crate::client::{ClientConfig, Clients, Done, Workload};
use crate::cluster::{Cluster, ClusterConfig, Driver};
use crate::history::Completion;
use crate::nemesis::Fault;
use crate::network::{Latency, NetConfig};
use crate::suite::{property, Context, TestStats};
use crate::suites::kvsrv::KvProtocol;
use crate::verdict::judge;

pub(super) type Ops = Vec<Done<FetchAppendInput, FetchAppendOutput>>;

/// Nodes in a cluster.
pub(super) const NODES: usize = 3;
/// Virtual (or real) time one phase of clients may take before it is cut off.
const PHASE_LIMIT: u64 = 120_000_000_000;
/// An operation is abandoned (recorded as unknown) after this long: several
/// elections.
const OP_TIMEOUT: u64 = 5_000_000_000;
/// Clients stop issuing operations when none has succeeded for this long.
const STALL_TIMEOUT: u64 = 2 * OP_TIMEOUT;
/// How long finding a leader may take: many election timeouts.
const LEADER_LIMIT: u64 = 10_000_000_000;

/// What a finished run recorded.
pub(super) struct Finished {
    pub journal: String,
    pub history: String,
}

/// A test's cluster.
pub(super) struct Test<'a> {
    pub cx: &'a mut Context,
    pub cluster: Cluster,
}

impl<'a> Test<'a> {
    /// Starts the nodes (`None`, with the failure recorded, if they cannot start).
    /// Snapshots are off (`KVRAFT_MAXRAFTSTATE=-1`), as in 6.5840's part A.
    pub fn start(cx: &'a mut Context) -> Option<Test<'a>> {
        Test::start_with(cx, "-1")
    }

    /// [`Test::start`] with `KVRAFT_MAXRAFTSTATE=max_raft_state` (bytes of Raft state
    /// at which a node snapshots; `-1` for never).
    pub fn start_with(cx: &'a mut Context, max_raft_state: &str) -> Option<Test<'a>> {
        let implementation = cx.implementation();
        let config = ClusterConfig {
            nodes: NODES,
            implementation: implementation.clone(),
            env: vec![("KVRAFT_MAXRAFTSTATE".into(), max_raft_state.into())],
            mode: cx.mode,
            seed: cx.seed,
            net: NetConfig::reliable(),
            dir: cx.fresh_dir("cluster"),
            step_timeout: Duration::from_secs(10),
        };
        match Cluster::start(config) {
            Ok(cluster) => Some(Test { cx, cluster }),
            Err(e) => {
                cx.fail(
                    property::SETUP,
                    format!(
                        "cannot start the nodes ({}): {e}",
                        implementation.describe()
                    ),
                );
                None
            }
        }
    }

    /// Runs `count` clients until the workload is done, sending to every node in
    /// turn (a node that does not lead redirects with error 11), and requires
    /// progress: at least `min_percent` of the operations succeed and every client
    /// has one succeed.
    pub fn run<W: Workload<FetchAppendInput>>(
        &mut self,
        count: usize,
        workload: W,
        min_percent: u64,
    ) -> Ops {
        let config = ClientConfig {
            attempt_timeout: 50_000_000,
            op_timeout: OP_TIMEOUT,
            think: Latency::Uniform {
                min: 0,
                max: 60_000_000,
            },
            targets: self.cluster.node_names().to_vec(),
            stall_timeout: STALL_TIMEOUT,
        };
        let seed = self.cluster.seed() ^ self.cluster.new_client_ids(0).start;
        let mut clients = Clients::new(KvProtocol, workload, config, count, seed);
        let limit = self.cluster.now() + PHASE_LIMIT;
        self.cluster.run(&mut clients, limit);
        let stalled = clients.stalled_at();
        if stalled.is_none() && !clients.done() {
            self.cx.fail(
                property::PROGRESS,
                "no progress: clients did not finish their operations in time",
            );
        }
        let done = clients.done;
        let ok = done
            .iter()
            .filter(|d| matches!(d.completion, Completion::Ok(_)))
            .count() as u64;
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
                    "no progress: {ok} of {total} operations succeeded (at least {min} must){stop}"
                ),
            );
        }
        if self.cx.passing() {
            for c in 0..count {
                let mut mine = done.iter().filter(|d| d.client == c).peekable();
                if mine.peek().is_some() && !mine.any(|d| matches!(d.completion, Completion::Ok(_)))
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

    /// The current leader, found by asking every node (outside the history) until
    /// one answers a read or names the leader in its "not the leader" error. `None`,
    /// with a progress failure recorded, if none is found in time.
    pub fn leader(&mut self) -> Option<String> {
        let mut probe = LeaderProbe {
            name: String::new(),
            nodes: self.cluster.node_names().to_vec(),
            leader: None,
            next_msg_id: 0,
        };
        let limit = self.cluster.now() + LEADER_LIMIT;
        self.cluster.run(&mut probe, limit);
        if probe.leader.is_none() {
            self.cx.fail(
                property::PROGRESS,
                format!(
                    "no progress: no node served a read or named a leader within {} s",
                    LEADER_LIMIT / 1_000_000_000
                ),
            );
        }
        probe.leader
    }

    pub fn fault(&mut self, fault: Fault) {
        if let Err(e) = self.cluster.fault(fault) {
            self.cx.fail(property::HARNESS, e.to_string());
        }
    }

    /// The judgement every test ends with: protocol errors, linearizability of the
    /// whole history, counts for the table, and the evidence of a failing run.
    pub fn finish(self) -> Finished {
        let Test { cx, mut cluster } = self;
        for e in &cluster.errors {
            cx.fail(property::PROTOCOL, format!("protocol error: {e}"));
        }
        let title = format!("kvraft::{} seed {}", cx.test, cx.seed);
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
            evidence.file("journal.jsonl", cluster.journal.text());
            evidence.file("history.jsonl", cluster.history.text());
            for n in cluster.node_names().to_vec() {
                if let Some(log) = cluster.log_path(&n) {
                    evidence.copy(log);
                }
            }
        }
        Finished {
            journal: std::mem::take(&mut cluster.journal).into_text(),
            history: std::mem::take(&mut cluster.history).into_text(),
        }
    }
}

/// Asks every node for a read until one serves it or names the leader.
struct LeaderProbe {
    name: String,
    nodes: Vec<String>,
    leader: Option<String>,
    next_msg_id: u64,
}

impl LeaderProbe {
    fn ask(&mut self, cluster: &mut Cluster) {
        for node in self.nodes.clone() {
            self.next_msg_id += 1;
            let mut body = Body::new("read").with("key", "leader-probe");
            body.msg_id = Some(self.next_msg_id);
            cluster.send(Message {
                src: self.name.clone(),
                dest: node,
                now: None,
                body,
            });
        }
        let now = cluster.now();
        cluster.wake(now + 100_000_000, 0);
    }
}

impl Driver for LeaderProbe {
    fn start(&mut self, cluster: &mut Cluster) {
        self.name = format!("c{}", cluster.new_client_ids(1).start);
        self.ask(cluster);
    }

    fn on_message(&mut self, _: &mut Cluster, message: Message) {
        let body = &message.body;
        match body.error_code() {
            Some(ErrorCode::TemporarilyUnavailable) => {
                if let Some(l) = body.str("leader") {
                    self.leader = Some(l.to_string());
                }
            }
            // Served: a read of the probe key, present or not.
            Some(ErrorCode::KeyDoesNotExist) => self.leader = Some(message.src),
            None if body.kind == "read_ok" => self.leader = Some(message.src),
            _ => {}
        }
    }

    fn on_wake(&mut self, cluster: &mut Cluster, _: u64) {
        if self.leader.is_none() {
            self.ask(cluster);
        }
    }

    fn done(&self) -> bool {
        self.leader.is_some()
    }
}
