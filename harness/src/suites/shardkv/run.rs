//! One shardkv test's run: the controller and the replica groups as one
//! [`KvCluster`] (shared with kvsrv and kvraft: faults, the closing judgement and
//! its evidence), the controller's clerks, and key/value clients that find each
//! key's group through the controller.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Deserialize;
use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::node_protocol::{Body, ErrorCode, Message};

use crate::client::{ClientConfig, Clients, Protocol, Reply, Workload};
use crate::cluster::{Cluster, Driver, Durability};
use crate::nemesis::Fault;
use crate::suite::{property, Context};
use crate::suites::kv_cluster::{KvCluster, Ops, Shape, PHASE_LIMIT};
use crate::suites::kvsrv::KvProtocol;

use super::SINGLE_OWNER;

/// Shards in every configuration.
pub(super) const NSHARDS: usize = 10;
/// Nodes of the controller, and of each replica group.
pub(super) const CTRL_NODES: usize = 3;
pub(super) const GROUP_NODES: usize = 3;
/// The first group's id; the others follow.
pub(super) const FIRST_GID: u64 = 100;
/// How long one controller request may take before the controller counts as stuck.
const CALL_LIMIT: u64 = 20_000_000_000;
/// A clerk resends an unanswered controller request after this long.
const CALL_RESEND: u64 = 100_000_000;
/// Clients ask the controller for the latest configuration this often.
const CLIENT_POLL: u64 = 100_000_000;

/// The shard of `key`: its first byte modulo [`NSHARDS`] (6.5840's `key2shard`).
pub(super) fn key2shard(key: &str) -> usize {
    key.as_bytes()
        .first()
        .map_or(0, |&b| usize::from(b) % NSHARDS)
}

/// A key in shard `shard`, distinguished by `n`: the shard's digit first.
pub(super) fn key_in(shard: usize, n: usize) -> String {
    // b'0' is 48, in shard 8: digit d is in shard (d + 8) % 10.
    let digit = (shard + 2) % NSHARDS;
    if n == 0 {
        digit.to_string()
    } else {
        format!("{digit}k{n}")
    }
}

/// A configuration as `query_ok` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct ShardConfig {
    pub num: u64,
    pub shards: Vec<u64>,
    pub groups: BTreeMap<u64, Vec<String>>,
}

impl ShardConfig {
    pub fn empty() -> ShardConfig {
        ShardConfig {
            num: 0,
            shards: vec![0; NSHARDS],
            groups: BTreeMap::new(),
        }
    }

    /// The configuration in a `query_ok`, or what is wrong with the reply.
    pub fn from_reply(body: &Body) -> Result<ShardConfig, String> {
        if body.kind != "query_ok" {
            return Err(format!("expected query_ok, got {}", body.to_json()));
        }
        let value = body.get("config").cloned().unwrap_or_default();
        let config: ShardConfig = serde_json::from_value(value)
            .map_err(|e| format!("query_ok: \"config\" is not a configuration: {e}"))?;
        if config.shards.len() != NSHARDS {
            return Err(format!(
                "query_ok: a configuration has {NSHARDS} shards, not {}",
                config.shards.len()
            ));
        }
        Ok(config)
    }

    /// Shards per group of the configuration.
    pub fn counts(&self) -> BTreeMap<u64, usize> {
        let mut counts: BTreeMap<u64, usize> = self.groups.keys().map(|&g| (g, 0)).collect();
        for g in &self.shards {
            if let Some(c) = counts.get_mut(g) {
                *c += 1;
            }
        }
        counts
    }
}

/// A controller request.
pub(super) fn join(gids: &[u64], groups: &BTreeMap<u64, Vec<String>>) -> Body {
    let servers: serde_json::Map<String, serde_json::Value> = gids
        .iter()
        .map(|g| {
            let names = groups
                .get(g)
                .cloned()
                .unwrap_or_else(|| vec![format!("x{g}a"), format!("x{g}b")]);
            (g.to_string(), names.into())
        })
        .collect();
    Body::new("join").with("servers", serde_json::Value::Object(servers))
}

pub(super) fn leave(gids: &[u64]) -> Body {
    Body::new("leave").with("gids", gids.to_vec())
}

pub(super) fn move_shard(shard: usize, gid: u64) -> Body {
    Body::new("move").with("shard", shard).with("gid", gid)
}

pub(super) fn query(num: i64) -> Body {
    Body::new("query").with("num", num)
}

/// A test's nodes: `n1`..`n3` the controller, then three nodes per group.
pub(super) struct Test<'a> {
    pub kv: KvCluster<'a>,
    pub ctrl: Vec<String>,
    /// Every group that runs, joined or not.
    pub groups: BTreeMap<u64, Vec<String>>,
    /// The latest configuration the clients know (shared with their router).
    known: Rc<RefCell<ShardConfig>>,
    /// The leaders the clients learned, kept from one phase to the next.
    leaders: Rc<RefCell<BTreeMap<u64, String>>>,
}

/// `groups` replica groups of three and a controller of three; group members
/// snapshot at `max_raft_state` bytes (`-1`: never).
pub(super) fn start<'a>(
    cx: &'a mut Context,
    groups: usize,
    max_raft_state: &str,
) -> Option<Test<'a>> {
    start_with(cx, groups, max_raft_state, Durability::Disk)
}

/// [`start`] with the nodes' data dirs on `durability`.
pub(super) fn start_with<'a>(
    cx: &'a mut Context,
    groups: usize,
    max_raft_state: &str,
    durability: Durability,
) -> Option<Test<'a>> {
    let ctrl: Vec<String> = (1..=CTRL_NODES).map(|i| format!("n{i}")).collect();
    let mut layout = format!("ctrl={}", ctrl.join(","));
    let mut by_gid = BTreeMap::new();
    for g in 0..groups {
        let first = CTRL_NODES + g * GROUP_NODES + 1;
        let nodes: Vec<String> = (first..first + GROUP_NODES)
            .map(|i| format!("n{i}"))
            .collect();
        let gid = FIRST_GID + g as u64;
        layout.push_str(&format!(";{gid}={}", nodes.join(",")));
        by_gid.insert(gid, nodes);
    }
    let shape = Shape {
        nodes: CTRL_NODES + groups * GROUP_NODES,
        env: vec![
            ("SHARDKV_LAYOUT".into(), layout),
            ("SHARDKV_MAXRAFTSTATE".into(), max_raft_state.into()),
        ],
        attempt_timeout: 50_000_000,
        think_max: 20_000_000,
        min_percent: 90,
    };
    let kv = KvCluster::start_on(cx, shape, durability)?;
    Some(Test {
        kv,
        ctrl,
        groups: by_gid,
        known: Rc::new(RefCell::new(ShardConfig::empty())),
        leaders: Rc::default(),
    })
}

impl Test<'_> {
    pub fn gids(&self) -> Vec<u64> {
        self.groups.keys().copied().collect()
    }

    /// Runs each clerk's requests in order, the clerks at once, through the
    /// controller; every request must be answered (a progress failure otherwise,
    /// and `None`).
    pub fn calls(&mut self, scripts: Vec<Vec<Body>>) -> Option<Vec<Vec<Body>>> {
        let mut calls = Calls::new(self.ctrl.clone(), scripts);
        let limit = self.kv.cluster.now() + CALL_LIMIT * calls.longest() as u64;
        self.kv.cluster.run(&mut calls, limit);
        let mut out = Vec::new();
        for (clerk, results) in calls.results.into_iter().enumerate() {
            let mut answered = Vec::new();
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Some(body) => answered.push(body),
                    None => {
                        self.kv.cx.fail(
                            property::PROGRESS,
                            format!(
                                "no progress: the controller did not answer {} (clerk {clerk}, request {i}) within {} s",
                                calls.scripts[clerk][i].to_json(),
                                CALL_LIMIT / 1_000_000_000
                            ),
                        );
                        return None;
                    }
                }
            }
            out.push(answered);
        }
        Some(out)
    }

    /// One controller request; its answer must be of `kind_ok` (a protocol failure
    /// otherwise).
    pub fn call(&mut self, body: Body) -> Option<Body> {
        let expected = format!("{}_ok", body.kind);
        let reply = self.calls(vec![vec![body.clone()]])?.remove(0).remove(0);
        if reply.kind != expected {
            self.kv.cx.fail(
                property::PROTOCOL,
                format!(
                    "the controller answered {} with {}",
                    body.to_json(),
                    reply.to_json()
                ),
            );
            return None;
        }
        Some(reply)
    }

    pub fn join(&mut self, gids: &[u64]) -> Option<()> {
        let body = join(gids, &self.groups);
        self.call(body).map(|_| ())
    }

    pub fn leave(&mut self, gids: &[u64]) -> Option<()> {
        self.call(leave(gids)).map(|_| ())
    }

    /// The configuration `num` (`-1`: the latest), also remembered for the clients
    /// when it is the newest seen.
    pub fn query(&mut self, num: i64) -> Option<ShardConfig> {
        let reply = self.call(query(num))?;
        match ShardConfig::from_reply(&reply) {
            Ok(config) => {
                let mut known = self.known.borrow_mut();
                if config.num > known.num {
                    *known = config.clone();
                }
                Some(config)
            }
            Err(e) => {
                self.kv.cx.fail(property::PROTOCOL, e);
                None
            }
        }
    }

    /// `count` clients running `workload`, each key sent to the group the newest
    /// configuration they know gives its shard; judged as [`KvCluster::run`] does.
    pub fn run<W: Workload<FetchAppendInput>>(
        &mut self,
        count: usize,
        workload: W,
        min_percent: u64,
    ) -> Ops {
        let config = self.client_config();
        self.run_with(count, workload, min_percent, config)
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = self.kv.clients();
        config.targets = self.groups.values().flatten().cloned().collect();
        config
    }

    /// `count` clients running `workload` while a clerk makes the controller
    /// requests of `changes` one after the other, `pause` apart; judged as
    /// [`Test::run`] is, and every change must be answered.
    pub fn run_during<W: Workload<FetchAppendInput>>(
        &mut self,
        count: usize,
        workload: W,
        min_percent: u64,
        changes: Vec<Body>,
        pause: u64,
    ) -> Ops {
        let config = self.client_config();
        let mut calls = Calls::new(self.ctrl.clone(), vec![changes]);
        calls.token_base = CHANGES_TOKEN;
        calls.pause = pause;
        let (done, stalled, finished, calls) = self.drive(count, workload, config, Some(calls));
        if let Some(calls) = calls {
            if !calls.done() {
                self.kv.cx.fail(
                    property::PROGRESS,
                    format!(
                        "no progress: the controller answered {} of {} configuration changes made while clients ran",
                        calls.clerks.first().map_or(0, |c| c.pos),
                        calls.scripts[0].len()
                    ),
                );
            }
        }
        self.kv
            .judge_phase(done, stalled, finished, count, min_percent)
    }

    fn run_with<W: Workload<FetchAppendInput>>(
        &mut self,
        count: usize,
        workload: W,
        min_percent: u64,
        config: ClientConfig,
    ) -> Ops {
        let (done, stalled, finished, _) = self.drive(count, workload, config, None);
        self.kv
            .judge_phase(done, stalled, finished, count, min_percent)
    }

    /// Runs the clients (and the clerk of `changes`) to the end of their work or of
    /// the phase's time: what they did, when they stalled, whether they finished.
    fn drive<W: Workload<FetchAppendInput>>(
        &mut self,
        count: usize,
        workload: W,
        config: ClientConfig,
        changes: Option<Calls>,
    ) -> (Ops, Option<u64>, bool, Option<Calls>) {
        let seed = self.kv.cluster.seed() ^ self.kv.cluster.new_client_ids(0).start;
        let protocol = Routed {
            known: self.known.clone(),
            leaders: self.leaders.clone(),
        };
        let clients = Clients::new(protocol, workload, config, count, seed);
        let mut driver = Router {
            clients,
            changes,
            known: self.known.clone(),
            ctrl: self.ctrl.clone(),
            name: String::new(),
            turn: 0,
            next_msg: 0,
        };
        let limit = self.kv.cluster.now() + PHASE_LIMIT;
        self.kv.cluster.run(&mut driver, limit);
        let Router {
            clients, changes, ..
        } = driver;
        let (stalled, finished) = (clients.stalled_at(), clients.done());
        (clients.done, stalled, finished, changes)
    }

    /// One read of each key in `keys`, at once, each given `within` (virtual time)
    /// to complete; which completed. Not judged for progress: the caller says
    /// which must and which must not.
    pub fn reads_within(&mut self, keys: &[String], within: u64) -> Vec<bool> {
        let mut config = self.client_config();
        config.op_timeout = within;
        config.stall_timeout = 0;
        let mut issued = vec![false; keys.len()];
        let keys_owned = keys.to_vec();
        let workload = move |client: usize, _: &mut rand::rngs::StdRng| {
            if std::mem::replace(&mut issued[client], true) {
                None
            } else {
                Some(FetchAppendInput::Get {
                    key: keys_owned[client].clone(),
                })
            }
        };
        let (done, ..) = self.drive(keys.len(), workload, config, None);
        let mut completed = vec![false; keys.len()];
        for d in done {
            if matches!(d.completion, crate::history::Completion::Ok(_)) {
                completed[d.client] = true;
            }
        }
        completed
    }

    /// Crashes every node of group `gid`.
    pub fn crash_group(&mut self, gid: u64) {
        for n in self.groups[&gid].clone() {
            self.kv.fault(Fault::Crash(n));
        }
    }

    /// Cuts the power of every node of group `gid` at once: each loses what it did not
    /// make durable (a cluster on the power-loss filesystem).
    pub fn power_loss_group(&mut self, gid: u64) {
        for n in self.groups[&gid].clone() {
            self.kv.fault(Fault::PowerLoss(n));
        }
    }

    /// Restarts every node of group `gid` from its data dir.
    pub fn restart_group(&mut self, gid: u64) {
        for n in self.groups[&gid].clone() {
            self.kv.fault(Fault::Restart(n));
        }
    }
}

/// kvsrv's requests and replies ("wrong group" is an error 11, retried after a
/// backoff), each sent to a server of the group the newest known configuration
/// gives the key's shard.
struct Routed {
    known: Rc<RefCell<ShardConfig>>,
    /// The leader a group's members last named (error 11's `leader`), by group.
    leaders: Rc<RefCell<BTreeMap<u64, String>>>,
}

impl Protocol for Routed {
    type Input = FetchAppendInput;
    type Output = FetchAppendOutput;

    fn request(&self, input: &FetchAppendInput, client: u64, seq: u64) -> Body {
        KvProtocol.request(input, client, seq)
    }

    fn reply(&self, input: &FetchAppendInput, reply: &Body) -> Reply<FetchAppendOutput> {
        if let Some(leader) = reply.str("leader") {
            let known = self.known.borrow();
            if let Some((&gid, _)) = known
                .groups
                .iter()
                .find(|(_, nodes)| nodes.iter().any(|n| n == leader))
            {
                self.leaders.borrow_mut().insert(gid, leader.to_string());
            }
        }
        KvProtocol.reply(input, reply)
    }

    /// Every other attempt goes to the leader the group last named, the others to
    /// its members in turn (so a crashed leader does not take every attempt).
    fn target(&self, input: &FetchAppendInput, attempt: usize) -> Option<String> {
        let known = self.known.borrow();
        let gid = known.shards.get(key2shard(input.key()))?;
        let servers = known.groups.get(gid).filter(|s| !s.is_empty())?;
        if attempt % 2 == 0 {
            if let Some(leader) = self.leaders.borrow().get(gid) {
                return Some(leader.clone());
            }
        }
        Some(servers[attempt % servers.len()].clone())
    }
}

/// The clients, and a clerk of theirs that asks the controller for the latest
/// configuration every [`CLIENT_POLL`].
struct Router<W: Workload<FetchAppendInput>> {
    clients: Clients<Routed, W>,
    /// Controller requests made while the clients run.
    changes: Option<Calls>,
    known: Rc<RefCell<ShardConfig>>,
    ctrl: Vec<String>,
    name: String,
    turn: usize,
    next_msg: u64,
}

/// The router's wake-ups; the clients' tokens have a client index below 2^31 in
/// their upper half.
const POLL_TOKEN: u64 = 1 << 63;
/// The tokens of the controller clerks a router hosts.
const CHANGES_TOKEN: u64 = 1 << 62;

impl<W: Workload<FetchAppendInput>> Router<W> {
    fn poll(&mut self, cluster: &mut Cluster) {
        self.turn += 1;
        self.next_msg += 1;
        let mut body = query(-1);
        body.msg_id = Some(self.next_msg);
        cluster.send(Message {
            src: self.name.clone(),
            dest: self.ctrl[self.turn % self.ctrl.len()].clone(),
            now: None,
            body,
        });
        let now = cluster.now();
        cluster.wake(now + CLIENT_POLL, POLL_TOKEN);
    }
}

impl<W: Workload<FetchAppendInput>> Driver for Router<W> {
    fn start(&mut self, cluster: &mut Cluster) {
        self.name = format!("c{}", cluster.new_client_ids(1).start);
        self.poll(cluster);
        if let Some(changes) = &mut self.changes {
            changes.start(cluster);
        }
        self.clients.start(cluster);
    }

    fn on_message(&mut self, cluster: &mut Cluster, message: Message) {
        if let Some(changes) = &mut self.changes {
            if changes.clerk(&message.dest).is_some() {
                return changes.on_message(cluster, message);
            }
        }
        if message.dest != self.name {
            return self.clients.on_message(cluster, message);
        }
        if let Ok(config) = ShardConfig::from_reply(&message.body) {
            let mut known = self.known.borrow_mut();
            if config.num > known.num {
                *known = config;
            }
        }
    }

    fn on_wake(&mut self, cluster: &mut Cluster, token: u64) {
        if token == POLL_TOKEN {
            if !self.done() {
                self.poll(cluster);
            }
        } else if token & CHANGES_TOKEN != 0 {
            if let Some(changes) = &mut self.changes {
                changes.on_wake(cluster, token);
            }
        } else {
            self.clients.on_wake(cluster, token);
        }
    }

    fn done(&self) -> bool {
        self.clients.done() && self.changes.as_ref().is_none_or(Calls::done)
    }
}

struct Clerk {
    name: String,
    id: u64,
    /// The request in flight (index in its script).
    pos: usize,
    attempts: Vec<u64>,
    turn: usize,
    generation: u32,
}

/// Controller clerks: each runs its script of requests in order, resending a
/// request (same client and seq, so the controller applies it once) to the next
/// controller node until it gets an answer that is not "try again".
pub(super) struct Calls {
    targets: Vec<String>,
    /// Or'ed into every wake-up token, so another driver can host these clerks.
    token_base: u64,
    /// Pause between one answer and a clerk's next request.
    pause: u64,
    scripts: Vec<Vec<Body>>,
    results: Vec<Vec<Option<Body>>>,
    clerks: Vec<Clerk>,
    next_msg: u64,
}

impl Calls {
    fn new(targets: Vec<String>, scripts: Vec<Vec<Body>>) -> Calls {
        Calls {
            token_base: 0,
            pause: 0,
            results: scripts.iter().map(|s| vec![None; s.len()]).collect(),
            targets,
            scripts,
            clerks: Vec::new(),
            next_msg: 0,
        }
    }

    fn clerk(&self, name: &str) -> Option<usize> {
        self.clerks.iter().position(|c| c.name == name)
    }

    fn longest(&self) -> usize {
        self.scripts.iter().map(Vec::len).max().unwrap_or(0).max(1)
    }

    fn send(&mut self, cluster: &mut Cluster, clerk: usize) {
        let c = &mut self.clerks[clerk];
        let Some(request) = self.scripts[clerk].get(c.pos) else {
            return;
        };
        self.next_msg += 1;
        let mut body = request
            .clone()
            .with("client", c.id)
            .with("seq", c.pos as u64 + 1);
        body.msg_id = Some(self.next_msg);
        c.attempts.push(self.next_msg);
        c.turn += 1;
        c.generation = c.generation.wrapping_add(1);
        cluster.send(Message {
            src: c.name.clone(),
            dest: self.targets[c.turn % self.targets.len()].clone(),
            now: None,
            body,
        });
        let now = cluster.now();
        let token = self.token(clerk);
        cluster.wake(now + CALL_RESEND, token);
    }

    fn token(&self, clerk: usize) -> u64 {
        self.token_base | ((clerk as u64) << 32) | u64::from(self.clerks[clerk].generation)
    }
}

impl Driver for Calls {
    fn start(&mut self, cluster: &mut Cluster) {
        let ids = cluster.new_client_ids(self.scripts.len() as u64);
        self.clerks = ids
            .enumerate()
            .map(|(i, id)| Clerk {
                name: format!("c{id}"),
                id,
                pos: 0,
                attempts: Vec::new(),
                turn: i,
                generation: 0,
            })
            .collect();
        for clerk in 0..self.clerks.len() {
            self.send(cluster, clerk);
        }
    }

    fn on_message(&mut self, cluster: &mut Cluster, message: Message) {
        let Some(clerk) = self.clerk(&message.dest) else {
            return;
        };
        let c = &mut self.clerks[clerk];
        if !message
            .body
            .in_reply_to
            .is_some_and(|id| c.attempts.contains(&id))
        {
            return;
        }
        let again = matches!(
            message.body.error_code(),
            Some(ErrorCode::TemporarilyUnavailable | ErrorCode::Timeout | ErrorCode::Crash)
        );
        if again {
            // The resend timer sends it again, to the next node.
            return;
        }
        self.results[clerk][c.pos] = Some(message.body);
        c.pos += 1;
        c.attempts.clear();
        if self.pause == 0 {
            self.send(cluster, clerk);
        } else {
            c.generation = c.generation.wrapping_add(1);
            let now = cluster.now();
            let token = self.token(clerk);
            cluster.wake(now + self.pause, token);
        }
    }

    fn on_wake(&mut self, cluster: &mut Cluster, token: u64) {
        let clerk = ((token & !self.token_base) >> 32) as usize;
        if clerk < self.clerks.len() && token as u32 == self.clerks[clerk].generation {
            self.send(cluster, clerk);
        }
    }

    fn done(&self) -> bool {
        self.clerks
            .iter()
            .zip(&self.scripts)
            .all(|(c, s)| c.pos >= s.len())
    }
}

/// How long [`Test::ask_each`] waits for every node to answer.
const ASK_LIMIT: u64 = 5_000_000_000;

impl Test<'_> {
    /// Sends `body` to each of `nodes` (outside the history), resending to the
    /// silent ones, until each has answered once or [`ASK_LIMIT`] passed: each
    /// node's answer, if it gave one.
    pub fn ask_each(&mut self, nodes: &[String], body: Body) -> Vec<Option<Body>> {
        let mut ask = Ask {
            nodes: nodes.to_vec(),
            body,
            name: String::new(),
            answers: vec![None; nodes.len()],
            sent: Vec::new(),
            next_msg: 0,
        };
        let limit = self.kv.cluster.now() + ASK_LIMIT;
        self.kv.cluster.run(&mut ask, limit);
        ask.answers
    }

    /// The invariant checked from the message journal: each shard is served by one
    /// group at a time, in the order the configurations (fetched from the
    /// controller) give it to groups. When one group's successful answer for a shard
    /// left before another group was even asked, the first served first, so the
    /// first must own the shard in an earlier configuration than the second does;
    /// an old owner serving again after the new one did, or a group serving a shard
    /// it never owned, means two groups served it in one configuration. (An answer
    /// that overlaps another is not ordered: an entry committed by a deposed leader
    /// may be answered late, after the shard moved.)
    pub fn check_single_owner(&mut self) -> Option<()> {
        let latest = self.query(-1)?;
        let mut configs = Vec::new();
        for num in 1..=latest.num {
            configs.push(self.query(num as i64)?);
        }
        let served = served_per_shard(self.kv.cluster.journal.text(), &self.groups);
        for (shard, answers) in served.iter().enumerate() {
            let mut owners: Vec<u64> = Vec::new();
            for c in &configs {
                if owners.last() != Some(&c.shards[shard]) {
                    owners.push(c.shards[shard]);
                }
            }
            if let Some((a, b)) = out_of_order(answers, &owners) {
                let message = match a {
                    None => format!(
                        "shard {shard} was served by {} of group {} at {:.3} s, a group that owns it in no \
                         configuration (owners in configurations 1..{}: {owners:?})",
                        b.node,
                        b.group,
                        b.answered as f64 / 1e9,
                        latest.num
                    ),
                    Some(a) => format!(
                        "shard {shard} was served by {} of group {} at {:.3} s, then by {} of group {} \
                         for a request sent at {:.3} s, but its owners in configurations 1..{} were \
                         {owners:?}: two groups served it in one configuration",
                        a.node,
                        a.group,
                        a.answered as f64 / 1e9,
                        b.node,
                        b.group,
                        b.asked as f64 / 1e9,
                        latest.num
                    ),
                };
                self.kv.cx.fail(SINGLE_OWNER, message);
            }
        }
        Some(())
    }

    /// Lets the nodes run for `wait` (on the run's clock) with no client.
    pub fn idle(&mut self, wait: u64) {
        let mut idle = Idle { woke: false, wait };
        let limit = self.kv.cluster.now() + wait;
        self.kv.cluster.run(&mut idle, limit);
    }

    /// The names the next [`Test::run_during`] gives its clients, in order (the
    /// router's clerk and the controller clerk take the two names before them).
    pub fn next_client_names(&mut self, count: usize) -> Vec<String> {
        let first = self.kv.cluster.new_client_ids(0).start + 2;
        (first..first + count as u64)
            .map(|id| format!("c{id}"))
            .collect()
    }

    /// Bytes of Raft state and snapshot the nodes of every group hold on disk: per
    /// node, the larger of what it reports (`persisted_size`) and what its data dir,
    /// which the harness owns, holds, so a node that under-reports (or never
    /// compacts but says it did) is measured anyway; `None` (a failure recorded) if
    /// one does not answer.
    pub fn group_bytes(&mut self) -> Option<u64> {
        let sizes = self.node_sizes()?;
        Some(sizes.iter().map(|s| s.reported().max(s.on_disk)).sum())
    }

    /// What each node of every group keeps: its answer to `persisted_size` and its
    /// data dir as the harness measures it; `None` (a failure recorded) if one does
    /// not answer or its data dir cannot be measured.
    pub fn node_sizes(&mut self) -> Option<Vec<NodeSize>> {
        let nodes: Vec<String> = self.groups.values().flatten().cloned().collect();
        let answers = self.ask_each(&nodes, Body::new("persisted_size"));
        let mut sizes = Vec::with_capacity(nodes.len());
        for (node, answer) in nodes.into_iter().zip(answers) {
            let reported = answer.as_ref().and_then(|a| {
                (a.kind == "persisted_size_ok")
                    .then(|| Some((a.u64("raft_state")?, a.u64("snapshot")?)))
                    .flatten()
            });
            let on_disk = match self.kv.cluster.data_bytes(&node) {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.kv.cx.fail(
                        property::HARNESS,
                        format!("cannot measure {node}'s data dir: {e}"),
                    );
                    return None;
                }
            };
            let Some((raft_state, snapshot)) = reported else {
                self.kv.cx.fail(
                    property::PROTOCOL,
                    format!(
                        "{node} answered persisted_size with {} (expected persisted_size_ok with raft_state and snapshot)",
                        answer.map_or("nothing".into(), |a| a.to_json())
                    ),
                );
                return None;
            };
            sizes.push(NodeSize {
                node,
                raft_state,
                snapshot,
                on_disk,
            });
        }
        Some(sizes)
    }
}

/// What a group member keeps on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSize {
    pub node: String,
    /// Bytes of Raft state (term, vote, log) the node reports.
    pub raft_state: u64,
    /// Bytes of snapshot the node reports.
    pub snapshot: u64,
    /// Bytes in its data dir, as the harness measures them.
    pub on_disk: u64,
}

impl NodeSize {
    pub fn reported(&self) -> u64 {
        self.raft_state + self.snapshot
    }
}

/// A successful answer to a key/value request: when the answered attempt was sent,
/// when the answer was, by which node of which group.
#[derive(Debug, Clone, PartialEq)]
struct Served {
    asked: u64,
    answered: u64,
    node: String,
    group: u64,
}

/// Every successful answer to a key/value request, per shard, from the message
/// journal.
fn served_per_shard(journal: &str, groups: &BTreeMap<u64, Vec<String>>) -> Vec<Vec<Served>> {
    let group_of: BTreeMap<&str, u64> = groups
        .iter()
        .flat_map(|(g, nodes)| nodes.iter().map(move |n| (n.as_str(), *g)))
        .collect();
    let mut asked: BTreeMap<(String, u64), (String, u64)> = BTreeMap::new();
    let mut served = vec![Vec::new(); NSHARDS];
    for line in journal.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["ev"] != "send" {
            continue;
        }
        let (src, dest, body) = (&event["src"], &event["dest"], &event["body"]);
        let (Some(src), Some(dest), Some(t)) = (src.as_str(), dest.as_str(), event["t"].as_u64())
        else {
            continue;
        };
        if let (Some(key), Some(id)) = (body["key"].as_str(), body["msg_id"].as_u64()) {
            asked.insert((src.to_string(), id), (key.to_string(), t));
            continue;
        }
        let Some(&group) = group_of.get(src) else {
            continue;
        };
        let Some(reply_to) = body["in_reply_to"].as_u64() else {
            continue;
        };
        let Some((key, at)) = asked.get(&(dest.to_string(), reply_to)) else {
            continue;
        };
        // Served: an answer of the operation, not a refusal or an unknown outcome.
        let served_it = match body["type"].as_str() {
            Some("error") => matches!(body["code"].as_u64(), Some(20 | 22)),
            Some(t) => t.ends_with("_ok"),
            None => false,
        };
        if served_it {
            served[key2shard(key)].push(Served {
                asked: *at,
                answered: t,
                node: src.to_string(),
                group,
            });
        }
    }
    served
}

/// The first pair of answers of one shard in an order the configurations do not
/// allow: `a` answered before `b` was even asked (so `a` was served first), by
/// groups that do not own the shard in that order in `owners` (its owner in each
/// configuration, in order); or an answer by a group that never owned it.
fn out_of_order<'s>(
    served: &'s [Served],
    owners: &[u64],
) -> Option<(Option<&'s Served>, &'s Served)> {
    let first = |g: u64| owners.iter().position(|&o| o == g);
    let last = |g: u64| owners.iter().rposition(|&o| o == g);
    if let Some(b) = served.iter().find(|b| first(b.group).is_none()) {
        return Some((None, b));
    }
    for a in served {
        for b in served {
            if a.group != b.group && a.answered < b.asked && first(a.group) > last(b.group) {
                return Some((Some(a), b));
            }
        }
    }
    None
}

/// Lets the cluster run for a while with no client.
struct Idle {
    woke: bool,
    wait: u64,
}

impl Driver for Idle {
    fn start(&mut self, cluster: &mut Cluster) {
        let now = cluster.now();
        cluster.wake(now + self.wait, 0);
    }

    fn on_message(&mut self, _: &mut Cluster, _: Message) {}

    fn on_wake(&mut self, _: &mut Cluster, _: u64) {
        self.woke = true;
    }

    fn done(&self) -> bool {
        self.woke
    }
}

/// One request to each of a set of nodes, resent until each answers.
struct Ask {
    nodes: Vec<String>,
    body: Body,
    name: String,
    answers: Vec<Option<Body>>,
    /// (msg_id, node index) of every copy sent.
    sent: Vec<(u64, usize)>,
    next_msg: u64,
}

impl Ask {
    fn send_missing(&mut self, cluster: &mut Cluster) {
        for i in 0..self.nodes.len() {
            if self.answers[i].is_some() {
                continue;
            }
            self.next_msg += 1;
            let mut body = self.body.clone();
            body.msg_id = Some(self.next_msg);
            self.sent.push((self.next_msg, i));
            cluster.send(Message {
                src: self.name.clone(),
                dest: self.nodes[i].clone(),
                now: None,
                body,
            });
        }
        let now = cluster.now();
        cluster.wake(now + CALL_RESEND, 0);
    }
}

impl Driver for Ask {
    fn start(&mut self, cluster: &mut Cluster) {
        self.name = format!("c{}", cluster.new_client_ids(1).start);
        self.send_missing(cluster);
    }

    fn on_message(&mut self, _: &mut Cluster, message: Message) {
        // Late answers to earlier phases' clients arrive here too, with msg ids of
        // their own that may equal ours.
        let Some(id) = message
            .body
            .in_reply_to
            .filter(|_| message.dest == self.name)
        else {
            return;
        };
        if let Some(&(_, i)) = self.sent.iter().find(|(m, _)| *m == id) {
            self.answers[i].get_or_insert(message.body);
        }
    }

    fn on_wake(&mut self, cluster: &mut Cluster, _: u64) {
        self.send_missing(cluster);
    }

    fn done(&self) -> bool {
        self.answers.iter().all(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_must_follow_the_owners_in_order() {
        let at = |asked: u64, answered: u64, group: u64| Served {
            asked,
            answered,
            node: format!("n{group}"),
            group,
        };
        // 1 then 2, ordered; 1 again after 2 is allowed only if it owns it again.
        let served = [at(0, 1, 1), at(2, 3, 2), at(4, 5, 1)];
        assert!(out_of_order(&served, &[1, 2, 1]).is_none());
        assert!(out_of_order(&served, &[1, 2]).is_some());
        // Overlapping answers are not ordered: a late answer of the old owner.
        let late = [at(0, 5, 1), at(2, 3, 2)];
        assert!(out_of_order(&late, &[1, 2]).is_none());
        assert!(matches!(
            out_of_order(&[at(0, 1, 3)], &[1, 2]),
            Some((None, _))
        ));
        let journal = [
            r#"{"ev":"send","t":1,"src":"c5","dest":"n4","body":{"type":"read","msg_id":3,"key":"2"}}"#,
            r#"{"ev":"send","t":2,"src":"n4","dest":"c5","body":{"type":"read_ok","in_reply_to":3,"value":"x"}}"#,
            r#"{"ev":"send","t":3,"src":"c5","dest":"n7","body":{"type":"read","msg_id":4,"key":"2"}}"#,
            r#"{"ev":"send","t":4,"src":"n7","dest":"c5","body":{"type":"error","in_reply_to":4,"code":11}}"#,
            r#"{"ev":"send","t":5,"src":"c5","dest":"n7","body":{"type":"read","msg_id":5,"key":"2"}}"#,
            r#"{"ev":"send","t":6,"src":"n7","dest":"c5","body":{"type":"error","in_reply_to":5,"code":20}}"#,
        ]
        .join("\n");
        let groups: BTreeMap<u64, Vec<String>> =
            [(100, vec!["n4".to_string()]), (101, vec!["n7".to_string()])].into();
        let served = served_per_shard(&journal, &groups);
        assert_eq!(
            served[0],
            vec![at(1, 2, 100), at(5, 6, 101)]
                .into_iter()
                .map(|mut s| {
                    s.node = if s.group == 100 {
                        "n4".into()
                    } else {
                        "n7".into()
                    };
                    s
                })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn keys_land_in_the_shard_asked_for() {
        for shard in 0..NSHARDS {
            for n in 0..3 {
                assert_eq!(key2shard(&key_in(shard, n)), shard);
            }
        }
    }
}
