//! One gossip test's run: the nodes behind the simulated network, the harness client
//! `c1` speaking Maelstrom's broadcast workload to them, and the judgement every test
//! ends with.
//!
//! The client's links are reliable (faults are between nodes, as in Maelstrom), it
//! resends an unanswered request to the same node every [`RESEND`] and gives up after
//! [`OP_TIMEOUT`]. Every broadcast value is a fresh integer, so a value names one
//! broadcast. The judgement reads every live node and requires:
//!
//! - progress: the topology was accepted and most broadcasts were acknowledged;
//! - integrity: no node lists a value twice or a value nobody broadcast;
//! - convergence: every live node lists the same values, and among them every value
//!   acknowledged by a node that did not crash afterwards (a value whose node crashed
//!   is present at every live node or at none);
//! - per-origin order (tests that ask for it, not the `broadcast` group, whose reads
//!   Maelstrom defines as sets): if node X acknowledged a before b was sent to it (in
//!   one life of X), every node lists a before b.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use specs::node_protocol::{Body, ErrorCode, Message};

use super::{CONVERGENCE, INTEGRITY, NEIGHBOURS_ONLY, PER_ORIGIN_ORDER};
use crate::cluster::{Cluster, ClusterConfig, Driver};
use crate::nemesis::Fault;
use crate::network::{Latency, NetConfig};
use crate::suite::{property, Context, TestStats};

pub const MS: u64 = 1_000_000;
/// The harness's client endpoint.
pub const CLIENT: &str = "c1";
/// An unanswered request is sent again after this long.
const RESEND: u64 = 200 * MS;
/// An unanswered request is given up after this long.
const OP_TIMEOUT: u64 = 5_000 * MS;
/// A run of requests is cut off after this long on the run's clock.
const RUN_LIMIT: u64 = 60_000 * MS;
/// Reads while waiting for convergence are this far apart.
const POLL: u64 = 50 * MS;
/// After the last broadcast, nodes have this long on the run's clock to converge
/// (`GOSSIP_QUIET_MS`, default 5000: 25 of our anti-entropy periods).
pub fn quiet_limit() -> u64 {
    const DEFAULT: u64 = 5_000 * MS;
    match std::env::var("GOSSIP_QUIET_MS") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => ms * MS,
            _ => panic!("GOSSIP_QUIET_MS={v:?} is not a positive number of milliseconds"),
        },
        Err(_) => DEFAULT,
    }
}

/// Who neighbours whom.
pub type Topology = BTreeMap<String, Vec<String>>;

pub fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn undirected(n: usize, edges: impl IntoIterator<Item = (usize, usize)>) -> Topology {
    let names = names(n);
    let mut t: Topology = names.iter().map(|x| (x.clone(), Vec::new())).collect();
    for (a, b) in edges {
        t.get_mut(&names[a]).expect("a node").push(names[b].clone());
        t.get_mut(&names[b]).expect("a node").push(names[a].clone());
    }
    t
}

/// n1 - n2 - ... - nN.
pub fn line(n: usize) -> Topology {
    undirected(n, (1..n).map(|i| (i - 1, i)))
}

/// Maelstrom's grid: nodes in rows of ceil(sqrt(n)), each linked to the nodes above,
/// below, left and right of it.
pub fn grid(n: usize) -> Topology {
    let side = (1..).find(|s| s * s >= n).expect("a side");
    let mut edges = Vec::new();
    for i in 0..n {
        if i % side + 1 < side && i + 1 < n {
            edges.push((i, i + 1));
        }
        if i + side < n {
            edges.push((i, i + side));
        }
    }
    undirected(n, edges)
}

/// A tree in which node i's parent is node (i - 1) / `fanout` (Maelstrom's tree2,
/// tree4...).
pub fn tree(n: usize, fanout: usize) -> Topology {
    undirected(n, (1..n).map(|i| ((i - 1) / fanout, i)))
}

/// The smallest number of messages that can carry one broadcast to every node: one
/// per edge of a spanning tree.
pub fn minimum_messages(n: usize) -> u64 {
    n.saturating_sub(1) as u64
}

#[derive(Debug, Clone)]
struct Call {
    node: usize,
    body: Body,
    /// When it is to be sent first.
    at: u64,
    sent_at: Option<u64>,
    answer: Option<(u64, Body)>,
    abandoned: bool,
}

impl Call {
    fn open(&self) -> bool {
        self.answer.is_none() && !self.abandoned
    }
}

/// The client: requests at their times, resent until answered or given up.
#[derive(Debug, Default)]
struct Calls {
    names: Vec<String>,
    calls: BTreeMap<u64, Call>,
    next_id: u64,
    idle_until: Option<u64>,
    /// Messages to the client no call is waiting for.
    stray: Vec<Body>,
}

const IDLE_TOKEN: u64 = u64::MAX;

impl Calls {
    fn add(&mut self, node: usize, body: Body, at: u64) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.calls.insert(
            id,
            Call {
                node,
                body,
                at,
                sent_at: None,
                answer: None,
                abandoned: false,
            },
        );
        id
    }

    fn send(&self, cluster: &mut Cluster, id: u64) {
        let call = &self.calls[&id];
        let mut body = call.body.clone();
        body.msg_id = Some(id);
        cluster.send(Message {
            src: CLIENT.into(),
            dest: self.names[call.node].clone(),
            now: None,
            body,
        });
    }
}

impl Driver for Calls {
    fn start(&mut self, cluster: &mut Cluster) {
        let now = cluster.now();
        for (&id, call) in &self.calls {
            if call.open() {
                let at = match call.sent_at {
                    None => call.at.max(now),
                    Some(_) => now + RESEND,
                };
                cluster.wake(at, id);
            }
        }
        if let Some(until) = self.idle_until {
            cluster.wake(until.max(now), IDLE_TOKEN);
        }
    }

    fn on_message(&mut self, cluster: &mut Cluster, message: Message) {
        let now = cluster.now();
        let Some(call) = message
            .body
            .in_reply_to
            .and_then(|id| self.calls.get_mut(&id))
        else {
            self.stray.push(message.body);
            return;
        };
        if !call.open() {
            return;
        }
        // A node not ready yet is asked again; any other answer is final.
        if message.body.error_code() == Some(ErrorCode::TemporarilyUnavailable) {
            return;
        }
        call.answer = Some((now, message.body));
    }

    fn on_wake(&mut self, cluster: &mut Cluster, token: u64) {
        let now = cluster.now();
        if token == IDLE_TOKEN {
            if self.idle_until.is_some_and(|u| u <= now) {
                self.idle_until = None;
            }
            return;
        }
        let Some(call) = self.calls.get_mut(&token) else {
            return;
        };
        if !call.open() {
            return;
        }
        if call.sent_at.is_some_and(|s| now >= s + OP_TIMEOUT) {
            call.abandoned = true;
            return;
        }
        call.sent_at.get_or_insert(now);
        self.send(cluster, token);
        cluster.wake(now + RESEND, token);
    }

    fn done(&self) -> bool {
        self.idle_until.is_none() && self.calls.values().all(|c| !c.open())
    }
}

/// One broadcast the client made.
#[derive(Debug, Clone)]
struct Broadcast {
    value: u64,
    node: usize,
    call: u64,
}

/// Nodes, topology and client of one test.
pub struct GossipTest<'a> {
    pub cx: &'a mut Context,
    pub cluster: Cluster,
    pub names: Vec<String>,
    pub topology: Topology,
    calls: Calls,
    broadcasts: Vec<Broadcast>,
    next_value: u64,
    /// Per node, when it was crashed or restarted (a new life, a new origin).
    lives: Vec<Vec<u64>>,
    live: Vec<bool>,
    /// Judge per-origin order (not in Maelstrom's `broadcast` group).
    pub check_order: bool,
    /// Node-to-node messages counted at the last [`GossipTest::mark`].
    marked: u64,
}

/// Link latency of the tests: Maelstrom's nodes talk over a network with delay.
pub fn latency() -> NetConfig {
    NetConfig {
        latency: Latency::Uniform {
            min: MS,
            max: 5 * MS,
        },
        ..NetConfig::reliable()
    }
}

impl<'a> GossipTest<'a> {
    /// Starts the nodes and gives them `topology`; `None` (with the failure recorded)
    /// if they cannot be started or do not accept it.
    pub fn start(cx: &'a mut Context, topology: Topology) -> Option<GossipTest<'a>> {
        let implementation = cx.implementation();
        let n = topology.len();
        let config = ClusterConfig {
            nodes: n,
            implementation: implementation.clone(),
            env: Vec::new(),
            mode: cx.mode,
            seed: cx.seed,
            net: latency(),
            dir: cx.fresh_dir("cluster"),
            step_timeout: Duration::from_secs(10),
        };
        let mut cluster = match Cluster::start(config) {
            Ok(c) => c,
            Err(e) => {
                cx.fail(
                    property::SETUP,
                    format!(
                        "cannot start the nodes ({}): {e}",
                        implementation.describe()
                    ),
                );
                return None;
            }
        };
        cluster.make_reliable(CLIENT);
        let names = cluster.node_names().to_vec();
        let mut t = GossipTest {
            cx,
            cluster,
            calls: Calls {
                names: names.clone(),
                ..Calls::default()
            },
            lives: vec![Vec::new(); n],
            live: vec![true; n],
            names,
            topology,
            broadcasts: Vec::new(),
            next_value: 0,
            check_order: true,
            marked: 0,
        };
        let all: Vec<usize> = (0..n).collect();
        if !t.send_topology(&all) {
            t.save_evidence();
            return None;
        }
        Some(t)
    }

    pub fn now(&self) -> u64 {
        self.cluster.now()
    }

    pub fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).expect("a node")
    }

    /// Sends the topology to `nodes` and waits for their `topology_ok`.
    pub fn send_topology(&mut self, nodes: &[usize]) -> bool {
        let topology: serde_json::Map<String, Value> = self
            .topology
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        let now = self.now();
        let ids: Vec<(usize, u64)> = nodes
            .iter()
            .map(|&i| {
                let body = Body::new("topology").with("topology", Value::Object(topology.clone()));
                (i, self.calls.add(i, body, now))
            })
            .collect();
        self.run();
        let mut ok = true;
        for (i, id) in ids {
            let answer = self.calls.calls[&id]
                .answer
                .as_ref()
                .map(|(_, b)| b.kind.clone());
            if answer.as_deref() != Some("topology_ok") {
                ok = false;
                let got = answer.map_or("no answer".to_string(), |k| format!("{k:?}"));
                self.cx.fail(
                    property::PROGRESS,
                    format!(
                        "no progress: {} did not accept the topology ({got})",
                        self.names[i]
                    ),
                );
            }
        }
        ok
    }

    /// Runs until every request is answered or given up.
    pub fn run(&mut self) {
        let limit = self.now() + RUN_LIMIT;
        self.cluster.run(&mut self.calls, limit);
    }

    /// Lets `d` pass on the run's clock, requests still being answered.
    pub fn idle(&mut self, d: u64) {
        let until = self.now() + d;
        self.calls.idle_until = Some(until);
        self.cluster.run(&mut self.calls, until + RUN_LIMIT);
        self.calls.idle_until = None;
    }

    /// Schedules a broadcast of a fresh value through `node` at `at` (not before
    /// now); returns the value.
    pub fn broadcast_at(&mut self, node: usize, at: u64) -> u64 {
        self.next_value += 1;
        let value = self.next_value;
        let body = Body::new("broadcast").with("message", value);
        let call = self.calls.add(node, body, at.max(self.now()));
        self.broadcasts.push(Broadcast { value, node, call });
        value
    }

    /// One broadcast through `node`, waited for; true if acknowledged.
    pub fn broadcast(&mut self, node: usize) -> bool {
        let now = self.now();
        self.broadcast_at(node, now);
        self.run();
        let b = self.broadcasts.last().expect("just made");
        self.acked_at(b).is_some()
    }

    /// `count` broadcasts through `node`, one after another.
    pub fn broadcast_many(&mut self, node: usize, count: usize) {
        for _ in 0..count {
            self.broadcast(node);
        }
    }

    fn acked_at(&self, b: &Broadcast) -> Option<u64> {
        match &self.calls.calls[&b.call].answer {
            Some((t, body)) if body.kind == "broadcast_ok" => Some(*t),
            _ => None,
        }
    }

    pub fn fault(&mut self, fault: Fault) {
        let now = self.now();
        match &fault {
            Fault::Crash(n) | Fault::Restart(n) | Fault::RestartWiped(n) => {
                let i = self.index(n);
                self.lives[i].push(now);
                self.live[i] = !matches!(fault, Fault::Crash(_));
            }
            _ => {}
        }
        let restarted = match &fault {
            Fault::Restart(n) | Fault::RestartWiped(n) => Some(self.index(n)),
            _ => None,
        };
        if let Err(e) = self.cluster.fault(fault) {
            self.cx.fail(property::HARNESS, e.to_string());
        }
        // A new process knows nothing, its neighbours included.
        if let Some(i) = restarted {
            self.send_topology(&[i]);
        }
    }

    /// What each of `nodes` lists now (`None`: no answer, or not a list).
    pub fn read(&mut self, nodes: &[usize]) -> Vec<Option<Vec<Value>>> {
        let now = self.now();
        let ids: Vec<u64> = nodes
            .iter()
            .map(|&i| self.calls.add(i, Body::new("read"), now))
            .collect();
        self.run();
        ids.iter()
            .map(|id| match &self.calls.calls[id].answer {
                Some((_, b)) if b.kind == "read_ok" => {
                    b.get("messages").and_then(Value::as_array).cloned()
                }
                _ => None,
            })
            .collect()
    }

    pub fn live_nodes(&self) -> Vec<usize> {
        (0..self.names.len()).filter(|&i| self.live[i]).collect()
    }

    /// Values acknowledged by a node that did not crash or restart since.
    fn safe_values(&self) -> BTreeSet<u64> {
        self.broadcasts
            .iter()
            .filter_map(|b| {
                let at = self.acked_at(b)?;
                let lost_since = self.lives[b.node].iter().any(|&t| t >= at);
                (!lost_since).then_some(b.value)
            })
            .collect()
    }

    /// True when `reads` (of every live node) all answered, agree, and hold every
    /// safe value.
    fn converged(&self, reads: &[Option<Vec<Value>>]) -> bool {
        let safe = self.safe_values();
        let sets: Option<Vec<BTreeSet<String>>> = reads
            .iter()
            .map(|r| r.as_ref().map(|v| v.iter().map(Value::to_string).collect()))
            .collect();
        let Some(sets) = sets else { return false };
        sets.windows(2).all(|w| w[0] == w[1])
            && sets
                .first()
                .is_none_or(|s| safe.iter().all(|v| s.contains(&v.to_string())))
    }

    /// Reads every live node until they agree and hold every safe value, up to
    /// [`quiet_limit`]; the time it took, or `None`.
    pub fn await_convergence(&mut self) -> Option<u64> {
        let start = self.now();
        let live = self.live_nodes();
        loop {
            let reads = self.read(&live);
            if self.converged(&reads) {
                return Some(self.now() - start);
            }
            if self.now() >= start + quiet_limit() {
                return None;
            }
            self.idle(POLL);
        }
    }

    /// Reads `nodes` until each lists `value`, up to [`quiet_limit`]; the time it
    /// took, or `None`.
    pub fn await_value(&mut self, nodes: &[usize], value: u64) -> Option<u64> {
        let start = self.now();
        loop {
            let reads = self.read(nodes);
            let all = reads
                .iter()
                .all(|r| r.as_ref().is_some_and(|v| v.contains(&Value::from(value))));
            if all {
                return Some(self.now() - start);
            }
            if self.now() >= start + quiet_limit() {
                return None;
            }
            self.idle(POLL);
        }
    }

    /// Messages between nodes routed so far (the client's are not counted).
    pub fn node_messages(&self) -> u64 {
        let nodes: BTreeSet<&str> = self.names.iter().map(String::as_str).collect();
        self.cluster
            .network()
            .links()
            .iter()
            .filter(|((a, b), _)| nodes.contains(a.as_str()) && nodes.contains(b.as_str()))
            .map(|(_, s)| s.sent)
            .sum()
    }

    /// Bytes of node-to-node message bodies routed so far.
    pub fn node_bytes(&self) -> u64 {
        let nodes: BTreeSet<&str> = self.names.iter().map(String::as_str).collect();
        self.cluster
            .network()
            .links()
            .iter()
            .filter(|((a, b), _)| nodes.contains(a.as_str()) && nodes.contains(b.as_str()))
            .map(|(_, s)| s.bytes)
            .sum()
    }

    /// The value of the latest broadcast made.
    pub fn broadcasts_made(&self) -> u64 {
        self.next_value
    }

    /// `broadcast_ok`s the client got for requests it did not make through a call.
    pub fn stray_broadcast_oks(&self) -> usize {
        self.calls
            .stray
            .iter()
            .filter(|b| b.kind == "broadcast_ok")
            .count()
    }

    /// Node-to-node messages since the last call.
    pub fn mark(&mut self) -> u64 {
        let now = self.node_messages();
        let since = now - self.marked;
        self.marked = now;
        since
    }

    /// Requires that `value` has not reached any of `beyond` (nodes it could only
    /// reach through a crashed or cut node).
    pub fn require_not_reached(&mut self, value: u64, beyond: &[usize], why: &str) {
        let reads = self.read(beyond);
        for (&i, r) in beyond.iter().zip(&reads) {
            if r.as_ref().is_some_and(|v| v.contains(&Value::from(value))) {
                self.cx.fail(
                    NEIGHBOURS_ONLY,
                    format!(
                        "{} lists {value} although {why}: nodes may only talk to their neighbours",
                        self.names[i]
                    ),
                );
            }
        }
    }

    /// The judgement every test ends with (see the module docs); waits for
    /// convergence first. Returns the run's journal.
    pub fn finish(mut self) -> String {
        let converge_time = self.check_progress().then(|| self.await_convergence());
        let live = self.live_nodes();
        let reads = self.read(&live);
        if let Some(waited) = converge_time {
            self.judge(&live, &reads, waited);
        }
        for e in &self.cluster.errors {
            self.cx
                .fail(property::PROTOCOL, format!("protocol error: {e}"));
        }
        let stats = self.cluster.stats();
        let calls = self.calls.calls.values();
        let ok = calls
            .clone()
            .filter(|c| c.answer.as_ref().is_some_and(|(_, b)| b.kind != "error"))
            .count() as u64;
        let info = calls.clone().filter(|c| c.abandoned).count() as u64;
        let ops = self.calls.calls.len() as u64;
        self.cx.stats = Some(TestStats {
            ops,
            ok,
            fail: ops - ok - info,
            info,
            messages: stats.routed,
            clock_ns: stats.elapsed_ns,
            steps: stats.steps,
        });
        if !self.cx.passing() {
            let text: String = live
                .iter()
                .zip(&reads)
                .map(|(&i, r)| format!("{}: {}\n", self.names[i], serde_json::json!(r)))
                .collect();
            self.cx.evidence().file("reads.txt", text);
            self.save_evidence();
        }
        std::mem::take(&mut self.cluster.journal).into_text()
    }

    /// Most broadcasts were acknowledged.
    fn check_progress(&mut self) -> bool {
        let total = self.broadcasts.len() as u64;
        let acked = self
            .broadcasts
            .iter()
            .filter(|b| self.acked_at(b).is_some())
            .count() as u64;
        let before = self.cx.passing();
        self.cx
            .require_progress(acked, total, total.div_ceil(2).max(1), "broadcasts");
        before && self.cx.passing()
    }

    fn judge(&mut self, live: &[usize], reads: &[Option<Vec<Value>>], waited: Option<u64>) {
        let sent: BTreeSet<u64> = self.broadcasts.iter().map(|b| b.value).collect();
        let mut lists: Vec<(usize, Vec<Value>)> = Vec::new();
        for (&i, r) in live.iter().zip(reads) {
            match r {
                Some(v) => lists.push((i, v.clone())),
                None => self.cx.fail(
                    property::PROGRESS,
                    format!("no progress: {} did not answer read", self.names[i]),
                ),
            }
        }
        for (i, list) in &lists {
            let mut seen = BTreeSet::new();
            for v in list {
                if !seen.insert(v.to_string()) {
                    self.cx.fail(
                        INTEGRITY,
                        format!("{} lists {v} more than once", self.names[*i]),
                    );
                }
                if !v.as_u64().is_some_and(|x| sent.contains(&x)) {
                    self.cx.fail(
                        INTEGRITY,
                        format!("{} lists {v}, which nobody broadcast", self.names[*i]),
                    );
                }
            }
        }
        let safe = self.safe_values();
        let sets: Vec<BTreeSet<u64>> = lists
            .iter()
            .map(|(_, l)| l.iter().filter_map(Value::as_u64).collect())
            .collect();
        let union: BTreeSet<u64> = sets.iter().flatten().copied().collect();
        for ((i, _), set) in lists.iter().zip(&sets) {
            let lost: Vec<u64> = safe.difference(set).copied().collect();
            let partial: Vec<u64> = union
                .difference(set)
                .filter(|v| !safe.contains(v))
                .copied()
                .collect();
            if !lost.is_empty() {
                self.cx.fail(
                    CONVERGENCE,
                    format!(
                        "{} lacks {} acknowledged value(s) {} after {:.1} s of quiet",
                        self.names[*i],
                        lost.len(),
                        abbreviate(&lost),
                        quiet_limit() as f64 / 1e9
                    ),
                );
            }
            if !partial.is_empty() {
                self.cx.fail(
                    CONVERGENCE,
                    format!(
                        "{} lacks {}, which other live nodes list, after {:.1} s of quiet",
                        self.names[*i],
                        abbreviate(&partial),
                        quiet_limit() as f64 / 1e9
                    ),
                );
            }
        }
        if self.check_order {
            self.judge_order(&lists);
        }
        if let Some(w) = waited {
            self.cx.note(format!(
                "converged {:.3} s after the last broadcast",
                w as f64 / 1e9
            ));
        }
    }

    fn judge_order(&mut self, lists: &[(usize, Vec<Value>)]) {
        // Pairs (a, b): node X acknowledged a before b was first sent to it, in one
        // life of X.
        let mut pairs = Vec::new();
        for a in &self.broadcasts {
            let Some(acked) = self.acked_at(a) else {
                continue;
            };
            for b in &self.broadcasts {
                if b.node != a.node || b.value == a.value {
                    continue;
                }
                let Some(sent) = self.calls.calls[&b.call].sent_at else {
                    continue;
                };
                let same_life = !self.lives[a.node].iter().any(|&t| t >= acked && t <= sent);
                if sent > acked && same_life {
                    pairs.push((a.value, b.value, a.node));
                }
            }
        }
        for (i, list) in lists {
            let position: BTreeMap<u64, usize> = list
                .iter()
                .enumerate()
                .filter_map(|(k, v)| Some((v.as_u64()?, k)))
                .collect();
            let broken = pairs.iter().find(|(a, b, _)| {
                matches!((position.get(a), position.get(b)), (Some(pa), Some(pb)) if pa > pb)
            });
            if let Some((a, b, x)) = broken {
                self.cx.fail(
                    PER_ORIGIN_ORDER,
                    format!(
                        "{} delivered {b} before {a}, although {} acknowledged {a} before {b} was broadcast through it",
                        self.names[*i], self.names[*x]
                    ),
                );
            }
        }
    }

    fn save_evidence(&mut self) {
        let evidence = self.cx.evidence();
        let links: String = self
            .cluster
            .network()
            .links()
            .iter()
            .map(|((a, b), s)| format!("{a} -> {b}: {s:?}\n"))
            .collect();
        evidence.file("links.txt", links);
        evidence.file("journal.jsonl", self.cluster.journal.text());
        evidence.file(
            "topology.json",
            serde_json::to_string_pretty(&self.topology).unwrap_or_default(),
        );
        for n in self.names.clone() {
            if let Some(log) = self.cluster.log_path(&n) {
                evidence.copy(log);
            }
        }
    }
}

fn abbreviate(values: &[u64]) -> String {
    if values.len() <= 12 {
        format!("{values:?}")
    } else {
        format!("{:?}... ({} in all)", &values[..12], values.len())
    }
}
