//! Beyond 6.5840: power failures (`harness::lazyfs`), amnesia of a minority, a
//! retry across a restart from snapshots, one-way partitions, duplication, a paused
//! leader, clients that start at every node, and random nemeses swept over seeds.
//! Every run is judged like the lab's: progress, protocol, and the whole history
//! linearizable.

use std::cell::Cell;
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};

use super::lab::{sleep, ELECTION_TIMEOUT};
use super::run::{self, Setup, Test};
use super::tests::mixed;
use super::EXACTLY_ONCE;
use crate::client::Workload;
use crate::cluster::{Cluster, Durability, TimeMode};
use crate::history::Completion;
use crate::nemesis::Fault;
use crate::network::{Latency, NetConfig, Partition};
use crate::suite::{fail, property, Context};
use crate::suites::kv_cluster::{Nemesis, Ops};

const MS: u64 = 1_000_000;

/// Reads of `keys` keys (`k0`...) by one client: what a fault must not have lost.
fn read_all(keys: usize) -> impl Workload<FetchAppendInput> {
    let mut next = 0;
    move |_: usize, _: &mut StdRng| {
        next += 1;
        (next <= keys).then(|| FetchAppendInput::Get {
            key: format!("k{}", next - 1),
        })
    }
}

/// Reads of `keys` keys (`k0`...) by every client.
fn reads_each(keys: usize) -> impl Workload<FetchAppendInput> {
    let mut issued = std::collections::HashMap::new();
    move |client: usize, _: &mut StdRng| {
        let n = issued.entry(client).or_insert(0);
        *n += 1;
        (*n <= keys).then(|| FetchAppendInput::Get {
            key: format!("k{}", *n - 1),
        })
    }
}

/// Every node loses power at once (what it did not fsync is gone) and restarts,
/// three times: what was acknowledged before must be there after.
pub(super) fn power_loss_all(cx: &mut Context) {
    let setup = Setup {
        durability: Durability::LazyFs,
        ..Setup::nodes(3)
    };
    let Some(mut t) = run::start_with(cx, setup) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    for _ in 0..3 {
        t.run_requiring(3, mixed(3, 15), 90);
        if !t.cx.passing() {
            break;
        }
        for n in &nodes {
            t.fault(Fault::PowerLoss(n.clone()));
        }
        for n in &nodes {
            t.fault(Fault::Restart(n.clone()));
        }
        t.run_requiring(1, read_all(3), 100);
    }
    t.finish();
}

/// Three nodes on the power-loss filesystem, with snapshots.
const POWER_LOSS_SETUP: Setup = Setup {
    durability: Durability::LazyFs,
    ..Setup::nodes(3)
}
.snapshots(2000);

/// One node at a time loses power, the leader among them, while clients run
/// between the failures: a minority's lost writes cost nothing acknowledged.
pub(super) fn power_loss_minority(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, POWER_LOSS_SETUP) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    for round in 0..4 {
        t.run_requiring(3, mixed(3, 15), 90);
        let victim = if round % 2 == 0 {
            match t.leader() {
                Some(l) => l,
                None => break,
            }
        } else {
            nodes[round % nodes.len()].clone()
        };
        t.fault(Fault::PowerLoss(victim.clone()));
        t.run_requiring(3, mixed(3, 10), 90);
        t.fault(Fault::Restart(victim));
        if !t.cx.passing() {
            break;
        }
    }
    t.run_requiring(1, read_all(3), 100);
    t.finish();
}

/// Power fails on a follower in the middle of one of its next 8 syncs
/// (`Fault::PowerLossAtSync`: the sync never returns, and an append under way keeps
/// a random prefix, a torn tail) while clients run and it is the only follower the
/// leader reaches, with snapshots on: what commits meanwhile was counted on its
/// acknowledgement, and the cut falls between a snapshot and the log it cuts short,
/// or inside an append, as often as anywhere (a crash at a random moment almost
/// never does). Then the leader crashes, and the victim restarts and must carry on
/// with the follower that was cut off from what its disk kept: an acknowledged
/// write it lost is gone from the service. Eight rounds.
pub(super) fn power_loss_at_sync_points(cx: &mut Context) {
    /// Power cuts, one after another.
    const ROUNDS: usize = 8;
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(cx.seed ^ 0x7379_6e63);
    let Some(mut t) = run::start_with(cx, POWER_LOSS_SETUP) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    for _ in 0..ROUNDS {
        let Some(leader) = t.leader() else {
            break;
        };
        let followers: Vec<String> = nodes.iter().filter(|n| **n != leader).cloned().collect();
        let victim = followers[rng.gen_range(0..followers.len())].clone();
        for other in followers.iter().filter(|n| **n != victim) {
            t.fault(Fault::Partition(Partition::isolate(other, &nodes)));
        }
        t.fault(Fault::PowerLossAtSync(victim.clone(), rng.gen_range(1..=8)));
        let mut nemesis = AfterThePowerCut {
            leader: leader.clone(),
            victim: victim.clone(),
            struck: false,
            errors: Vec::new(),
        };
        t.run_with(3, mixed(3, 10), 50, &mut nemesis);
        for e in nemesis.errors {
            t.cx.fail(property::HARNESS, e);
        }
        if nemesis.struck {
            t.fault(Fault::Restart(leader));
        } else {
            // Disarms the cut.
            t.fault(Fault::Restart(victim));
            t.fault(Fault::Heal);
        }
        if !t.cx.passing() {
            break;
        }
    }
    let struck = t.cluster.power_cuts_struck_anywhere();
    if t.cx.passing() && struck < ROUNDS as u64 / 2 {
        t.cx.fail(
            property::PERSISTENCE,
            format!(
                "only {struck} of {ROUNDS} power cuts struck: the followers made fewer syncs \
                 (fsync, fdatasync or a directory's fsync) than 8 while 30 operations ran, \
                 and a node that does not sync what it acknowledges loses it when the \
                 power fails"
            ),
        );
    }
    t.run_requiring(1, read_all(3), 100);
    t.finish();
}

/// Waits for the power cut on `victim` to strike, then crashes the leader, heals the
/// partition and restarts the victim: the clients' operations go on with the
/// victim and the follower that was cut off.
struct AfterThePowerCut {
    leader: String,
    victim: String,
    struck: bool,
    errors: Vec<String>,
}

impl Nemesis for AfterThePowerCut {
    fn act(&mut self, cluster: &mut Cluster, _: &Ops) -> Option<u64> {
        if cluster.is_up(&self.victim) {
            return Some(cluster.now() + 5_000_000);
        }
        self.struck = true;
        let faults = [
            Fault::Crash(self.leader.clone()),
            Fault::Heal,
            Fault::Restart(self.victim.clone()),
        ];
        for fault in faults {
            if let Err(e) = cluster.fault(fault) {
                self.errors.push(e.to_string());
            }
        }
        None
    }
}

/// A follower's data dir is wiped (amnesia) while the others hold the state, one at
/// a time: it must relearn everything from the leader (a snapshot, with snapshots
/// on) and the service stays linearizable. (Raft survives amnesia only of a node
/// whose loss no majority needed; the leader is never the victim.)
pub(super) fn amnesia_minority(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(3).snapshots(1000)) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    for round in 0..3 {
        t.run_requiring(3, mixed(3, 15), 90);
        let Some(leader) = t.leader() else {
            break;
        };
        let followers: Vec<&String> = nodes.iter().filter(|n| **n != leader).collect();
        let victim = followers[round % followers.len()].clone();
        t.fault(Fault::RestartWiped(victim.clone()));
        // The others are cut from each other, so only a quorum with the wiped node
        // can serve: it must have caught up.
        let other = followers
            .iter()
            .find(|f| ***f != victim)
            .map(|f| (*f).clone())
            .expect("three nodes");
        t.fault(Fault::Partition(Partition::isolate(&other, &nodes)));
        t.run_requiring(1, read_all(3), 100);
        t.fault(Fault::Heal);
        if !t.cx.passing() {
            break;
        }
    }
    t.finish();
}

/// Cuts the leader's replies to the client, waits for every node to apply (and,
/// with a tiny `maxraftstate`, snapshot) the request, restarts every node, and
/// heals: the client's retry then reaches nodes restored from snapshots.
struct RetryAcrossRestart {
    nodes: Vec<String>,
    cut: Partition,
    restart_at: Option<u64>,
    errors: Vec<String>,
}

impl Nemesis for RetryAcrossRestart {
    fn act(&mut self, cluster: &mut Cluster, _: &Ops) -> Option<u64> {
        let now = cluster.now();
        let Some(at) = self.restart_at else {
            let at = now + ELECTION_TIMEOUT;
            self.restart_at = Some(at);
            if let Err(e) = cluster.fault(Fault::Partition(self.cut.clone())) {
                self.errors.push(e.to_string());
            }
            return Some(at);
        };
        debug_assert!(now >= at);
        for n in &self.nodes {
            if let Err(e) = cluster.fault(Fault::Crash(n.clone())) {
                self.errors.push(e.to_string());
            }
        }
        for n in self.nodes.clone() {
            if let Err(e) = cluster.fault(Fault::Restart(n)) {
                self.errors.push(e.to_string());
            }
        }
        if let Err(e) = cluster.fault(Fault::Heal) {
            self.errors.push(e.to_string());
        }
        None
    }
}

/// A request whose answer was lost is retried after every node restarted from a
/// snapshot holding the request's effect: the duplicate table must be part of the
/// snapshot, or the retry applies a second time. Three times, with
/// `maxraftstate` 1, so that nodes snapshot after every entry.
pub(super) fn retry_across_restart(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(3).snapshots(1)) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    for round in 0..3 {
        let key = format!("r{round}");
        t.run_requiring(1, once(FetchAppendInput::Get { key: key.clone() }), 100);
        if !t.cx.passing() {
            break;
        }
        let Some(leader) = t.leader() else {
            break;
        };
        let client = format!("c{}", t.cluster.new_client_ids(0).start);
        let mut nemesis = RetryAcrossRestart {
            nodes: nodes.clone(),
            cut: Partition::one_way(&leader, &client),
            restart_at: None,
            errors: Vec::new(),
        };
        let append = FetchAppendInput::Append {
            key: key.clone(),
            value: "a".into(),
        };
        t.run_with(1, once(append), 100, &mut nemesis);
        for e in nemesis.errors {
            t.cx.fail(property::HARNESS, e);
        }
        let read = t.run_requiring(1, once(FetchAppendInput::Get { key: key.clone() }), 100);
        if let Some(Completion::Ok(FetchAppendOutput { value, .. })) =
            read.first().map(|d| &d.completion)
        {
            t.cx.check(value.as_deref() == Some("a"), EXACTLY_ONCE, || {
                format!(
                    "key {key:?} holds {value:?} after one append of \"a\" retried across a \
                     restart of every node from snapshots: the retry was applied again"
                )
            });
        }
        if !t.cx.passing() {
            break;
        }
    }
    t.finish();
}

/// One operation by one client.
fn once(op: FetchAppendInput) -> impl Workload<FetchAppendInput> {
    let mut op = Some(op);
    move |_: usize, _: &mut StdRng| op.take()
}

/// The leader can hear but not speak to the other nodes: they elect another, and
/// the service goes on; then the links heal.
pub(super) fn one_way_leader(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(5)) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    for _ in 0..2 {
        let Some(leader) = t.leader() else {
            break;
        };
        let cut = nodes
            .iter()
            .filter(|n| **n != leader)
            .map(|n| Partition::one_way(&leader, n))
            .reduce(Partition::and)
            .expect("other nodes");
        t.fault(Fault::Partition(cut));
        t.run_requiring(5, mixed(3, 20), 75);
        t.fault(Fault::Heal);
        t.run_requiring(5, mixed(3, 10), 90);
        if !t.cx.passing() {
            break;
        }
    }
    t.finish();
}

/// Half the messages arrive twice, many out of order, while leaders and followers
/// crash and return: duplicated requests, replies and peer messages are harmless.
/// One message in five is held back for tens to hundreds of milliseconds, so a
/// copy of a client's request can reach a leader after the client's next request
/// has committed: it must be recognised as older than the last one seen, not
/// executed again.
pub(super) fn duplication(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(3).snapshots(1000)) else {
        return;
    };
    t.net(NetConfig {
        duplicate: 0.5,
        reorder: 0.2,
        reorder_delay: Latency::Exponential {
            min: 20_000_000,
            mean: 200_000_000,
        },
        ..NetConfig::reliable()
    });
    let nodes = t.cluster.node_names().to_vec();
    for (round, node) in nodes.iter().enumerate() {
        t.run_requiring(5, mixed(3, 15), 90);
        let victim = if round % 2 == 0 {
            match t.leader() {
                Some(l) => l,
                None => break,
            }
        } else {
            node.clone()
        };
        t.fault(Fault::Crash(victim.clone()));
        t.run_requiring(5, mixed(3, 10), 90);
        t.fault(Fault::Restart(victim));
        if !t.cx.passing() {
            break;
        }
    }
    t.finish();
}

/// The leader is paused (SIGSTOP) while clients write through a new one; then it
/// wakes up still believing it leads, and hears nothing from the others (its
/// incoming links are cut), while clients ask it to read: a node that answered
/// from its own state would serve the values from before the pause.
pub(super) fn paused_leader(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(3)) else {
        return;
    };
    let nodes = t.cluster.node_names().to_vec();
    for _ in 0..2 {
        t.run_requiring(3, mixed(3, 10), 90);
        let Some(old) = t.leader() else {
            break;
        };
        // Deaf first: what the others send while it sleeps must not wait for it.
        let deaf = nodes
            .iter()
            .filter(|n| **n != old)
            .map(|n| Partition::one_way(n, &old))
            .reduce(Partition::and)
            .expect("other nodes");
        t.fault(Fault::Partition(deaf));
        t.fault(Fault::Pause(old.clone()));
        t.run_requiring(3, mixed(3, 20), 90);
        t.fault(Fault::Resume(old));
        // Every client reads every key, one of them starting at the old leader.
        t.run_requiring(3, reads_each(3), 50);
        t.fault(Fault::Heal);
        t.run_requiring(3, mixed(3, 10), 90);
        if !t.cx.passing() {
            break;
        }
    }
    t.finish();
}

/// Five clients, each starting at a different node of five: a follower must
/// redirect (error 11 naming the leader) or forward, and every client is served.
pub(super) fn clients_at_every_node(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, Setup::nodes(5)) else {
        return;
    };
    t.run_requiring(5, mixed(5, 30), 100);
    t.finish();
}

/// Random faults while clients run: partitions (majority and minority, a bridge,
/// one-way cuts), crashes and restarts, pauses, loss and duplication, each for a
/// few hundred milliseconds; at the end everything heals and the clients must be
/// served again.
struct RandomNemesis {
    nodes: Vec<String>,
    rng: StdRng,
    stop: Rc<Cell<bool>>,
    end: Option<u64>,
    /// What must be undone before the next fault.
    crashed: Option<String>,
    paused: Option<String>,
    pub errors: Vec<String>,
}

impl RandomNemesis {
    fn apply(&mut self, cluster: &mut Cluster, fault: Fault) {
        if let Err(e) = cluster.fault(fault) {
            self.errors.push(e.to_string());
        }
    }

    fn undo(&mut self, cluster: &mut Cluster) {
        self.apply(cluster, Fault::Heal);
        self.apply(cluster, Fault::Net(NetConfig::reliable()));
        if let Some(n) = self.crashed.take() {
            self.apply(cluster, Fault::Restart(n));
        }
        if let Some(n) = self.paused.take() {
            self.apply(cluster, Fault::Resume(n));
        }
    }
}

impl Nemesis for RandomNemesis {
    fn act(&mut self, cluster: &mut Cluster, _: &Ops) -> Option<u64> {
        let now = cluster.now();
        let end = *self.end.get_or_insert(now + 4_000_000_000);
        self.undo(cluster);
        if now >= end {
            self.stop.set(true);
            return None;
        }
        let victim = self.nodes[self.rng.gen_range(0..self.nodes.len())].clone();
        match self.rng.gen_range(0..7) {
            0 => {
                let p = Partition::majority_minority(&self.nodes, &mut self.rng);
                self.apply(cluster, Fault::Partition(p));
            }
            1 => {
                let p = Partition::overlapping_majorities(&self.nodes);
                self.apply(cluster, Fault::Partition(p));
            }
            2 => {
                let cut = self
                    .nodes
                    .iter()
                    .filter(|n| **n != victim)
                    .map(|n| Partition::one_way(&victim, n))
                    .reduce(Partition::and)
                    .expect("other nodes");
                self.apply(cluster, Fault::Partition(cut));
            }
            3 => {
                self.apply(cluster, Fault::Crash(victim.clone()));
                self.crashed = Some(victim);
            }
            4 => {
                self.apply(cluster, Fault::Pause(victim.clone()));
                self.paused = Some(victim);
            }
            5 => self.apply(cluster, Fault::Net(NetConfig::unreliable())),
            _ => self.apply(
                cluster,
                Fault::Net(NetConfig {
                    duplicate: 0.5,
                    ..NetConfig::reliable()
                }),
            ),
        }
        Some((now + self.rng.gen_range(100..500) * MS).min(end))
    }
}

/// How many runs a sweep makes: `KVRAFT_SWEEP`, else 4 in simulated time and 1 on
/// the wall clock.
fn sweep_count(mode: TimeMode) -> usize {
    match std::env::var("KVRAFT_SWEEP") {
        Ok(v) => match v.trim().parse() {
            Ok(n) if n >= 1 => n,
            _ => fail(
                property::HARNESS,
                format!("KVRAFT_SWEEP={v:?} is not a number of runs (1 or more)"),
            ),
        },
        Err(_) => match mode {
            TimeMode::Sim => 4,
            TimeMode::Real => 1,
        },
    }
}

/// One run of the random nemesis on five nodes with snapshots: clients of mixed
/// operations for 4 s of faults, then everything heals and every key is read.
fn random_nemesis_run(t: &mut Test) {
    let stop = Rc::new(Cell::new(false));
    let mut nemesis = RandomNemesis {
        nodes: t.cluster.node_names().to_vec(),
        rng: t.cx.rng(7),
        stop: stop.clone(),
        end: None,
        crashed: None,
        paused: None,
        errors: Vec::new(),
    };
    let mut inner = mixed(3, usize::MAX);
    let workload = move |client: usize, rng: &mut StdRng| {
        if stop.get() {
            None
        } else {
            inner.next(client, rng)
        }
    };
    t.run_with(5, workload, 50, &mut nemesis);
    // The nemesis undoes its last fault when the clients outlast it; when they
    // finish first, its last fault is still standing.
    nemesis.undo(&mut t.cluster);
    for e in std::mem::take(&mut nemesis.errors) {
        t.cx.fail(property::HARNESS, e);
    }
    sleep(t, ELECTION_TIMEOUT);
    t.run_requiring(5, mixed(3, 10), 90);
    t.run_requiring(1, read_all(3), 100);
}

/// [`random_nemesis_run`] once per seed of a sweep (the test's seed first, then
/// seeds drawn from it, as the Raft suite's sweeps), stopping at the first failing
/// run, whose failures name its seed.
pub(super) fn random_nemesis(cx: &mut Context) {
    let count = sweep_count(cx.mode);
    let seeds = crate::suites::raft::sweep_seeds(cx.seed, count);
    let seed = cx.seed;
    for (k, &s) in seeds.iter().enumerate() {
        cx.seed = s;
        let before = cx.failures.len();
        if let Some(mut t) = run::start_with(cx, Setup::nodes(5).snapshots(2000)) {
            random_nemesis_run(&mut t);
            t.finish();
        }
        for f in &mut cx.failures[before..] {
            f.message = format!(
                "sweep run {} of {count} (seed {s}; alone: KVRAFT_SWEEP=1 with seed {s}): {}",
                k + 1,
                f.message
            );
        }
        if !cx.passing() {
            break;
        }
    }
    cx.seed = seed;
    if cx.passing() {
        cx.note(format!(
            "{count} sweep runs passed (KVRAFT_SWEEP={count}), seeds {seeds:?}"
        ));
    }
}
