//! One kvsrv test's run: the server behind the simulated network, client phases that
//! must make progress, and the judgement every test ends with.

use std::time::Duration;

use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::kvsrv_protocol::{reply_outcome, request_body, ReplyOutcome, RequestId};
use specs::node_protocol::Body;
use specs::KvFetchAppend;

use crate::client::{ClientConfig, Clients, Done, Protocol, Reply, Workload};
use crate::cluster::{Cluster, ClusterConfig, Driver};
use crate::history::Completion;
use crate::nemesis::Fault;
use crate::network::{Latency, NetConfig};
use crate::suite::{property, Context, TestStats};
use crate::verdict::judge;

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
            ReplyOutcome::Retry(e) => Reply::Retry(e),
            ReplyOutcome::Unknown(e) => Reply::Unknown(e),
            ReplyOutcome::Invalid(e) => Reply::Invalid(e),
        }
    }
}

pub(super) type Ops = Vec<Done<FetchAppendInput, FetchAppendOutput>>;

/// Virtual (or real) time one phase of clients may take before it is cut off.
const PHASE_LIMIT: u64 = 120_000_000_000;
/// An operation is abandoned (recorded as unknown) after this long: longer than a
/// node may take to become available (a node that answers 11 for its first 2 s is
/// served).
const OP_TIMEOUT: u64 = 5_000_000_000;
/// Clients stop issuing operations when none has succeeded for this long.
const STALL_TIMEOUT: u64 = 2 * OP_TIMEOUT;

/// What a finished run recorded.
pub(super) struct Finished {
    pub journal: String,
    pub history: String,
}

/// A test's server and clients.
pub(super) struct Test<'a> {
    pub cx: &'a mut Context,
    pub cluster: Cluster,
}

impl<'a> Test<'a> {
    /// Starts the server under test (`None`, with the failure recorded, if it cannot
    /// be started).
    pub fn start(cx: &'a mut Context) -> Option<Test<'a>> {
        let implementation = cx.implementation();
        let config = ClusterConfig {
            nodes: 1,
            implementation: implementation.clone(),
            env: Vec::new(),
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
                        "cannot start the server ({}): {e}",
                        implementation.describe()
                    ),
                );
                None
            }
        }
    }

    fn clients(&self) -> ClientConfig {
        ClientConfig {
            attempt_timeout: 25_000_000,
            op_timeout: OP_TIMEOUT,
            think: Latency::Uniform {
                min: 0,
                max: 1_000_000,
            },
            targets: vec!["n1".into()],
            stall_timeout: STALL_TIMEOUT,
        }
    }

    /// Runs `count` clients until the workload is done, and requires progress: at
    /// least three quarters of the operations succeed, and every client has one
    /// succeed.
    pub fn run<W: Workload<FetchAppendInput>>(&mut self, count: usize, workload: W) -> Ops {
        let config = self.clients();
        let seed = self.cluster.seed() ^ self.cluster.new_client_ids(0).start;
        let mut clients = Clients::new(KvProtocol, workload, config, count, seed);
        let limit = self.cluster.now() + PHASE_LIMIT;
        self.cluster.run(&mut clients, limit);
        let stalled = clients.stalled_at();
        if stalled.is_none() && !clients.done() {
            self.cx.fail(
                property::PROGRESS,
                "clients did not finish their operations in time",
            );
        }
        let done = clients.done;
        let count_of = |f: fn(&Completion<FetchAppendOutput>) -> bool| {
            done.iter().filter(|d| f(&d.completion)).count() as u64
        };
        let ok = count_of(|c| matches!(c, Completion::Ok(_)));
        let failed = count_of(|c| matches!(c, Completion::Fail));
        let total = done.len() as u64;
        let min = (total * 3).div_ceil(4).max(1);
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

    pub fn net(&mut self, config: NetConfig) {
        if let Err(e) = self.cluster.fault(Fault::Net(config)) {
            self.cx.fail(property::HARNESS, e.to_string());
        }
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
        let Test { cx, mut cluster } = self;
        for e in &cluster.errors {
            cx.fail(property::PROTOCOL, format!("protocol error: {e}"));
        }
        let title = format!("kvsrv::{} seed {}", cx.test, cx.seed);
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
        Finished {
            journal: std::mem::take(&mut cluster.journal).into_text(),
            history: std::mem::take(&mut cluster.history).into_text(),
        }
    }
}
