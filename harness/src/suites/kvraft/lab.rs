//! 6.5840's lab 4 tests (2024 numbering, 4A and 4B) with their thresholds, in
//! simulated time: the generic test (rounds of clients, with any of an unreliable
//! network, many partitions, restarts of every node and snapshots), the speed test,
//! one partition, and the snapshot tests.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::node_protocol::{Body, Message};

use super::run::{self, Setup, Test};
use super::{LOG_COMPACTION, MINORITY, SPEED};
use crate::client::Workload;
use crate::cluster::{Cluster, Driver};
use crate::history::Completion;
use crate::nemesis::Fault;
use crate::network::{NetConfig, Partition};
use crate::suite::{property, Context};
use crate::suites::kv_cluster::{Nemesis, Ops};

/// 6.5840's tester allows an election a second.
pub(super) const ELECTION_TIMEOUT: u64 = 1_000_000_000;
/// How long the clients of one round of the generic test run (6.5840: 5 s).
const ROUND: u64 = 5_000_000_000;
const MS: u64 = 1_000_000;
/// How long a client of the generic test with partitions tries an operation: the
/// round (5 s) and as long again after the heal.
const PARTITIONED_OP_TIMEOUT: u64 = 2 * ROUND;
/// The longest pause of a generic test's client between operations (6.5840's have
/// none), for each five clients: the rounds keep 6.5840's length, and this keeps
/// them to a few hundred operations, so that the suite stays quick on two cores.
const THINK_MAX: u64 = 250 * MS;

/// The parameters of 6.5840's `GenericTest`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Generic {
    pub clients: usize,
    pub nodes: usize,
    pub unreliable: bool,
    pub crash: bool,
    pub partitions: bool,
    /// `-1`: no snapshots.
    pub max_raft_state: i64,
    pub random_keys: bool,
}

impl Generic {
    pub const fn new(clients: usize, nodes: usize) -> Generic {
        Generic {
            clients,
            nodes,
            unreliable: false,
            crash: false,
            partitions: false,
            max_raft_state: -1,
            random_keys: false,
        }
    }
    pub const fn unreliable(self) -> Generic {
        Generic {
            unreliable: true,
            ..self
        }
    }
    pub const fn crash(self) -> Generic {
        Generic {
            crash: true,
            ..self
        }
    }
    pub const fn partitions(self) -> Generic {
        Generic {
            partitions: true,
            ..self
        }
    }
    pub const fn snapshots(self) -> Generic {
        Generic {
            max_raft_state: 1000,
            ..self
        }
    }
    pub const fn random_keys(self) -> Generic {
        Generic {
            random_keys: true,
            ..self
        }
    }
}

/// One round's clock and, with `partitions`, 6.5840's partitioner: after a second
/// of calm, every node is put on a random side of a cut, again every election
/// timeout plus up to 200 ms. At the end of the round the clients are told to stop
/// (they finish the operation they have in flight).
pub(super) struct Round {
    stop: Rc<Cell<bool>>,
    partitions: bool,
    nodes: Vec<String>,
    rng: StdRng,
    end: Option<u64>,
    next_partition: u64,
    pub errors: Vec<String>,
}

impl Round {
    pub fn new(stop: Rc<Cell<bool>>, partitions: bool, nodes: Vec<String>, rng: StdRng) -> Round {
        Round {
            stop,
            partitions,
            nodes,
            rng,
            end: None,
            next_partition: u64::MAX,
            errors: Vec::new(),
        }
    }
}

impl Nemesis for Round {
    fn act(&mut self, cluster: &mut Cluster, _: &Ops) -> Option<u64> {
        let now = cluster.now();
        let end = *self.end.get_or_insert(now + ROUND);
        if self.partitions && self.next_partition == u64::MAX {
            self.next_partition = now + ELECTION_TIMEOUT;
        }
        if now >= end {
            // As 6.5840: the partitions heal while the clients finish what they
            // have in flight (a request in a minority completes after the heal).
            self.stop.set(true);
            if self.partitions {
                if let Err(e) = cluster.fault(Fault::Heal) {
                    self.errors.push(e.to_string());
                }
            }
            return None;
        }
        if now >= self.next_partition {
            let mut sides = [Vec::new(), Vec::new()];
            for n in &self.nodes {
                sides[self.rng.gen_range(0..2)].push(n.clone());
            }
            let name = format!("random halves {:?} | {:?}", sides[0], sides[1]);
            if let Err(e) = cluster.fault(Fault::Partition(Partition::groups(name, &sides))) {
                self.errors.push(e.to_string());
            }
            self.next_partition = now + ELECTION_TIMEOUT + self.rng.gen_range(0..200) * MS;
        }
        Some(end.min(self.next_partition))
    }
}

/// 6.5840's generic clients: each appends `x <client> <n> y` to its own key (or, with
/// random keys, to any client's, with some puts) half the time and reads it
/// otherwise, until told to stop; with their own keys, each first resets its key.
fn generic_workload(
    stop: Rc<Cell<bool>>,
    clients: usize,
    random_keys: bool,
    round: usize,
) -> impl Workload<FetchAppendInput> {
    let mut issued: HashMap<usize, usize> = HashMap::new();
    move |client: usize, rng: &mut StdRng| {
        if stop.get() {
            return None;
        }
        let n = issued.entry(client).or_insert(0);
        *n += 1;
        let key = if random_keys {
            rng.gen_range(0..clients).to_string()
        } else {
            client.to_string()
        };
        if !random_keys && *n == 1 {
            return Some(FetchAppendInput::Put {
                key,
                value: String::new(),
            });
        }
        let value = format!("x {client} {round}.{n} y");
        Some(if rng.gen_range(0..1000) < 500 {
            FetchAppendInput::Append { key, value }
        } else if random_keys && rng.gen_range(0..1000) < 100 {
            FetchAppendInput::Put { key, value }
        } else {
            FetchAppendInput::Get { key }
        })
    }
}

/// Reads of the given keys by one client.
fn reads(keys: Vec<String>) -> impl Workload<FetchAppendInput> {
    let mut keys = keys.into_iter();
    move |_: usize, _: &mut StdRng| keys.next().map(|key| FetchAppendInput::Get { key })
}

/// The given operations, one client each (`ops[i]` for client `i`), in order.
fn scripted(ops: Vec<Vec<FetchAppendInput>>) -> impl Workload<FetchAppendInput> {
    let mut ops: Vec<std::vec::IntoIter<FetchAppendInput>> =
        ops.into_iter().map(Vec::into_iter).collect();
    move |client: usize, _: &mut StdRng| ops.get_mut(client).and_then(Iterator::next)
}

fn put(key: &str, value: &str) -> FetchAppendInput {
    FetchAppendInput::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn get(key: &str) -> FetchAppendInput {
    FetchAppendInput::Get { key: key.into() }
}

/// 6.5840's `GenericTest`: three rounds of clients for 5 s each (with the network,
/// partitions and snapshots `g` asks for); after each, the partitions heal, with
/// `crash` every node crashes and restarts, and one client reads every client's key.
/// The whole history must be linearizable: every acknowledged append present once,
/// in its client's order, and every read the latest value.
pub(super) fn generic(cx: &mut Context, g: Generic) {
    let setup = Setup {
        think_max: THINK_MAX * g.clients.div_ceil(5) as u64,
        ..Setup::nodes(g.nodes).snapshots(g.max_raft_state)
    };
    let Some(mut t) = run::start_with(cx, setup) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    if g.unreliable {
        t.net(NetConfig::unreliable());
    }
    if g.partitions {
        // 6.5840's clerks retry until the round's partitions heal; a round's
        // partitions can leave no majority able to elect for its whole length.
        t.op_timeout = PARTITIONED_OP_TIMEOUT;
    }
    let min_percent = if g.unreliable || g.partitions { 75 } else { 90 };
    for round in 0..3 {
        let stop = Rc::new(Cell::new(false));
        let rng = t.cx.rng(round as u64 + 1);
        let mut nemesis = Round::new(stop.clone(), g.partitions, nodes.clone(), rng);
        let workload = generic_workload(stop, g.clients, g.random_keys, round);
        t.run_with(g.clients, workload, min_percent, &mut nemesis);
        for e in nemesis.errors {
            t.cx.fail(property::HARNESS, e);
        }
        if !t.cx.passing() {
            break;
        }
        if g.partitions {
            t.fault(Fault::Heal);
        }
        if g.crash {
            for n in &nodes {
                t.fault(Fault::Crash(n.clone()));
            }
            for n in &nodes {
                t.fault(Fault::Restart(n.clone()));
            }
        }
        let keys = (0..g.clients).map(|c| c.to_string()).collect();
        t.run_requiring(1, reads(keys), 100);
        if !t.cx.passing() {
            break;
        }
        require_generic_sizes(&mut t, &nodes, g.max_raft_state);
    }
    t.finish();
}

/// 6.5840's `GenericTestSpeed`: after a first read (a leader is serving), one client
/// appends 1,000 times to one key; the mean latency, in simulated time, must be
/// under a third of a 100 ms heartbeat interval, so a leader must not wait for its
/// next heartbeat to replicate.
pub(super) fn speed(cx: &mut Context, max_raft_state: i64) {
    const OPS: usize = 1000;
    const PER_OP: u64 = 100 * MS / 3;
    let setup = Setup {
        think_max: 0,
        ..Setup::nodes(3).snapshots(max_raft_state)
    };
    let Some(mut t) = run::start_with(cx, setup) else {
        return;
    };
    t.run_requiring(1, reads(vec!["x".into()]), 100);
    let appends = (0..OPS)
        .map(|i| FetchAppendInput::Append {
            key: "x".into(),
            value: format!("x 0 {i} y"),
        })
        .collect();
    let ops = t.run_requiring(1, scripted(vec![appends]), 100);
    if t.cx.passing() && t.all_ok(&ops, "the 1,000 appends") {
        let total: u64 = ops.iter().map(|d| d.ret - d.call).sum();
        let mean = total / OPS as u64;
        t.cx.note(format!(
            "mean append latency {:.2} ms (simulated; at most {:.2})",
            mean as f64 / 1e6,
            PER_OP as f64 / 1e6
        ));
        t.cx.check(mean <= PER_OP, SPEED, || {
            format!(
                "operations completed too slowly: {:.2} ms per operation in simulated time \
                 (at most {:.2}: three per 100 ms heartbeat)",
                mean as f64 / 1e6,
                PER_OP as f64 / 1e6
            )
        });
    }
    t.run_requiring(1, reads(vec!["x".into()]), 100);
    t.finish();
}

/// Heals 6.5840's one partition once a second has passed and the majority's client
/// is done.
struct OnePartition {
    /// The majority's client and how many operations it has.
    majority: (usize, usize),
    started: u64,
    healed: Option<u64>,
    errors: Vec<String>,
}

impl Nemesis for OnePartition {
    fn act(&mut self, cluster: &mut Cluster, done: &Ops) -> Option<u64> {
        let now = cluster.now();
        if self.started == u64::MAX {
            self.started = now;
            return Some(now + ELECTION_TIMEOUT);
        }
        let (client, count) = self.majority;
        if done.iter().filter(|d| d.client == client).count() >= count {
            if let Err(e) = cluster.fault(Fault::Heal) {
                self.errors.push(e.to_string());
            }
            self.healed = Some(now);
            return None;
        }
        Some(now + 10 * MS)
    }
}

/// 6.5840's TestOnePartition4A on five nodes: the leader and one other node are
/// cut from the other three. A client of the majority writes and reads; two clients
/// that reach only the minority write and read, and must not complete while the
/// partition stands; after it heals they must complete within an election timeout
/// and 3 s, and the minority's write is the last one.
pub(super) fn one_partition(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(5)) else {
        return;
    };
    t.run_requiring(1, scripted(vec![vec![put("1", "13")]]), 100);
    let Some(leader) = t.leader() else {
        t.finish();
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    let others: Vec<String> = nodes.iter().filter(|n| **n != leader).cloned().collect();
    let mut majority = others[..3].to_vec();
    let mut minority = vec![others[3].clone(), leader];
    // Clients of the next phase are named after the ids it will reserve.
    let first = t.cluster.new_client_ids(0).start;
    majority.push(format!("c{first}"));
    minority.extend([format!("c{}", first + 1), format!("c{}", first + 2)]);
    let shape = format!("majority {:?} | minority {:?}", majority, minority);
    t.fault(Fault::Partition(Partition::groups(
        shape,
        &[majority, minority],
    )));
    let majority_ops = vec![put("1", "14"), get("1"), get("1"), put("1", "16"), get("1")];
    let mut nemesis = OnePartition {
        majority: (0, majority_ops.len()),
        started: u64::MAX,
        healed: None,
        errors: Vec::new(),
    };
    let workload = scripted(vec![majority_ops, vec![put("1", "15")], vec![get("1")]]);
    let ops = t.run_with(3, workload, 100, &mut nemesis);
    for e in nemesis.errors {
        t.cx.fail(property::HARNESS, e);
    }
    // A reply before the heal (or with no heal: every client finished while the
    // partition stood) is a minority serving.
    for d in ops.iter().filter(|d| d.client != 0) {
        let answered = !matches!(d.completion, Completion::Info);
        if answered && nemesis.healed.is_none_or(|h| d.ret < h) {
            t.cx.fail(
                MINORITY,
                format!(
                    "{:?} sent only to the minority completed ({:?}) at {:.3} s, during the \
                     partition",
                    d.input,
                    d.completion,
                    d.ret as f64 / 1e9
                ),
            );
        }
    }
    if let Some(healed) = nemesis.healed.filter(|_| t.cx.passing()) {
        let limit = healed + ELECTION_TIMEOUT + 3_000_000_000;
        for d in ops.iter().filter(|d| d.client != 0) {
            let in_time = matches!(d.completion, Completion::Ok(_)) && d.ret <= limit;
            t.cx.check(in_time, MINORITY, || {
                format!(
                    "{:?}, sent during the partition, did not complete within {} s of the heal \
                     ({:?} at {:.3} s, healed at {:.3} s)",
                    d.input,
                    (limit - healed) / 1_000_000_000,
                    d.completion,
                    d.ret as f64 / 1e9,
                    healed as f64 / 1e9
                )
            });
        }
    }
    if t.cx.passing() {
        let last = t.run_requiring(1, reads(vec!["1".into()]), 100);
        let value = last.first().and_then(|d| match &d.completion {
            Completion::Ok(FetchAppendOutput { value, .. }) => Some(value.clone()),
            _ => None,
        });
        if let Some(value) = value {
            t.cx.check(value.as_deref() == Some("15"), MINORITY, || {
                format!(
                    "after the heal key \"1\" holds {value:?}: the minority's write of \"15\" \
                     should be the last, since it cannot have committed before the heal"
                )
            });
        }
    }
    t.finish();
}

/// Advances the cluster's clock by `ns` with no client running.
pub(super) fn sleep(t: &mut Test, ns: u64) {
    struct Sleep {
        until: u64,
        done: bool,
    }
    impl Driver for Sleep {
        fn start(&mut self, cluster: &mut Cluster) {
            cluster.wake(self.until, 0);
        }
        fn on_message(&mut self, _: &mut Cluster, _: Message) {}
        fn on_wake(&mut self, _: &mut Cluster, _: u64) {
            self.done = true;
        }
        fn done(&self) -> bool {
            self.done
        }
    }
    let until = t.cluster.now() + ns;
    t.cluster.run(&mut Sleep { until, done: false }, until);
}

/// What a node answered to `persisted_size` (an optional extension: our node's
/// Raft state and snapshot in bytes).
struct SizeProbe {
    nodes: Vec<String>,
    name: String,
    answers: HashMap<String, (u64, u64)>,
    asked_until: u64,
    over: bool,
}

impl Driver for SizeProbe {
    fn start(&mut self, cluster: &mut Cluster) {
        self.name = format!("c{}", cluster.new_client_ids(1).start);
        for (i, node) in self.nodes.iter().enumerate() {
            let mut body = Body::new("persisted_size");
            body.msg_id = Some(i as u64 + 1);
            cluster.send(Message {
                src: self.name.clone(),
                dest: node.clone(),
                now: None,
                body,
            });
        }
        self.asked_until = cluster.now() + 200 * MS;
        cluster.wake(self.asked_until, 0);
    }
    fn on_message(&mut self, _: &mut Cluster, message: Message) {
        let b = &message.body;
        if b.kind == "persisted_size_ok" {
            let field = |f| b.get(f).and_then(serde_json::Value::as_u64);
            if let (Some(r), Some(s)) = (field("raft_state"), field("snapshot")) {
                self.answers.insert(message.src, (r, s));
            }
        }
    }
    fn on_wake(&mut self, _: &mut Cluster, _: u64) {
        self.over = true;
    }
    fn done(&self) -> bool {
        self.over || self.answers.len() == self.nodes.len()
    }
}

/// What `nodes` answer to `persisted_size` (our extension; a node that does not
/// answer within 300 ms of simulated time is left out): `(raft_state, snapshot)`.
fn reported_sizes(t: &mut Test, nodes: &[String]) -> HashMap<String, (u64, u64)> {
    let mut probe = SizeProbe {
        nodes: nodes.to_vec(),
        name: String::new(),
        answers: HashMap::new(),
        asked_until: 0,
        over: false,
    };
    let limit = t.cluster.now() + 300 * MS;
    t.cluster.run(&mut probe, limit);
    probe.answers
}

/// The end of each round of 6.5840's `GenericTest`: with snapshots on, the Raft state
/// at most 8 x `maxraftstate`; with them off (`-1`), no snapshot at all. Both as the
/// nodes report them to `persisted_size` (the data dir cannot say what a file is):
/// a node that does not answer is named in a note, so the skipped check shows.
fn require_generic_sizes(t: &mut Test, nodes: &[String], max_raft_state: i64) {
    let answers = reported_sizes(t, nodes);
    for n in nodes {
        let Some(&(state, snapshot)) = answers.get(n) else {
            t.cx.note(format!(
                "{n} did not answer persisted_size: 6.5840's size checks of GenericTest \
                 were not made on it"
            ));
            continue;
        };
        if max_raft_state > 0 {
            check_reported_state(t, n, state, max_raft_state as u64);
        } else if max_raft_state < 0 {
            t.cx.check(snapshot == 0, LOG_COMPACTION, || {
                format!(
                    "snapshot taken though snapshots are off: {n} reports {snapshot} bytes of \
                     snapshot with KVRAFT_MAXRAFTSTATE={max_raft_state}"
                )
            });
        }
    }
}

/// 6.5840's bound on the Raft state a node reports: at most 8 x `maxraftstate`.
fn check_reported_state(t: &mut Test, n: &str, state: u64, max_raft_state: u64) {
    t.cx.check(state <= 8 * max_raft_state, LOG_COMPACTION, || {
        format!(
            "logs were not trimmed: {n} reports {state} bytes of Raft state (at most \
             8 x {max_raft_state})"
        )
    });
}

/// 6.5840's bounds of compaction, on `nodes`: the Raft state at most 8 times
/// `maxraftstate` and, if `snapshot_bound`, the snapshot at most `snapshot_limit`. A
/// node's whole data dir, which the harness owns and measures, must stay within the
/// sum of the two limits (state and snapshot are all a node keeps); a node that also
/// answers `persisted_size` (our extension) is held to each bound on its own.
pub(super) fn require_compacted(
    t: &mut Test,
    nodes: &[String],
    max_raft_state: u64,
    snapshot_limit: u64,
    snapshot_bound: bool,
) {
    let answers = reported_sizes(t, nodes);
    let state_limit = 8 * max_raft_state;
    for n in nodes {
        match t.cluster.data_bytes(n) {
            Ok(bytes) => t.cx.check(
                bytes <= state_limit + snapshot_limit,
                LOG_COMPACTION,
                || {
                    format!(
                        "logs were not trimmed: {n}'s data dir holds {bytes} bytes (at most \
                     8 x {max_raft_state} of Raft state + {snapshot_limit} of snapshot)"
                    )
                },
            ),
            Err(e) => t.cx.fail(
                property::HARNESS,
                format!("cannot measure {n}'s data dir: {e}"),
            ),
        }
        if let Some(&(state, snapshot)) = answers.get(n) {
            check_reported_state(t, n, state, max_raft_state);
            t.cx.check(
                !snapshot_bound || snapshot <= snapshot_limit,
                LOG_COMPACTION,
                || {
                    format!(
                    "snapshot too large: {n} reports {snapshot} bytes (at most {snapshot_limit})"
                )
                },
            );
        }
    }
}

/// 6.5840's TestSnapshotSize4B: with `maxraftstate` 1000, 200 times a put of "0",
/// a read, a put of "1" and a read of one key; then the Raft state must be at most
/// 8 x 1000 bytes and the snapshot at most 500.
pub(super) fn snapshot_size(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(3).snapshots(1000)) else {
        return;
    };
    let ops = (0..200)
        .flat_map(|_| [put("x", "0"), get("x"), put("x", "1"), get("x")])
        .collect();
    t.run_requiring(1, scripted(vec![ops]), 100);
    if t.cx.passing() {
        let nodes = t.cluster.node_names().to_vec();
        require_compacted(&mut t, &nodes, 1000, 500, true);
    }
    t.finish();
}

/// 6.5840's TestSnapshotRPC4B: 50 writes in a majority of two while the third node
/// is cut off (their logs must be compacted), then a majority that needs the lagging
/// node, which can only catch up from a snapshot, then everyone.
pub(super) fn snapshot_rpc(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(3).snapshots(1000)) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    t.run_requiring(1, scripted(vec![vec![put("a", "A"), get("a")]]), 100);
    let client = |t: &mut Test| format!("c{}", t.cluster.new_client_ids(0).start);
    let c = client(&mut t);
    let groups = [
        vec![nodes[0].clone(), nodes[1].clone(), c],
        vec![nodes[2].clone()],
    ];
    t.fault(Fault::Partition(Partition::groups(
        "{n1 n2} | {n3}",
        &groups,
    )));
    let puts = (0..50)
        .map(|i| put(&i.to_string(), &i.to_string()))
        .collect();
    t.run_requiring(1, scripted(vec![puts]), 100);
    sleep(&mut t, ELECTION_TIMEOUT);
    let c = client(&mut t);
    let groups = [
        vec![nodes[0].clone(), nodes[1].clone(), c],
        vec![nodes[2].clone()],
    ];
    t.fault(Fault::Partition(Partition::groups(
        "{n1 n2} | {n3}",
        &groups,
    )));
    t.run_requiring(1, scripted(vec![vec![put("b", "B")]]), 100);
    if t.cx.passing() {
        // 6.5840 bounds only the Raft state here; the snapshot of 52 short keys
        // and one client's last answer is allowed 1000 bytes of the data dir.
        require_compacted(&mut t, &nodes[..2], 1000, 1000, false);
    }
    let c = client(&mut t);
    let groups = [
        vec![nodes[0].clone(), nodes[2].clone(), c],
        vec![nodes[1].clone()],
    ];
    t.fault(Fault::Partition(Partition::groups(
        "{n1 n3} | {n2}",
        &groups,
    )));
    let ops = vec![
        put("c", "C"),
        put("d", "D"),
        get("a"),
        get("b"),
        get("1"),
        get("49"),
    ];
    t.run_requiring(1, scripted(vec![ops]), 100);
    t.fault(Fault::Heal);
    let ops = vec![put("e", "E"), get("c"), get("e"), get("1")];
    t.run_requiring(1, scripted(vec![ops]), 100);
    t.finish();
}
