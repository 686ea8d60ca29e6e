//! 3C: persistence, on a reliable network and an unreliable one, churn, and power
//! failures beyond 6.5840's crashes (which lose only memory).

use rand::Rng;
use serde_json::{json, Value};

use super::{
    require, Tester, ELECTION_TIMEOUT, LEADER_ELECTION, MS, PERSISTENCE, STATE_MACHINE_SAFETY,
};
use crate::cluster::TimeMode;
use crate::suite::Context;

pub(super) fn persist1(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one(json!(11), n, true);
    // Crash and restart everyone.
    for i in 0..n {
        t.restart(i);
    }
    for i in 0..n {
        t.disconnect(i);
        t.connect(i);
    }
    t.one(json!(12), n, true);
    let leader1 = t.check_one_leader();
    t.disconnect(leader1);
    t.restart(leader1);
    t.connect(leader1);
    t.one(json!(13), n, true);
    let leader2 = t.check_one_leader();
    t.disconnect(leader2);
    t.one(json!(14), n - 1, true);
    t.restart(leader2);
    t.connect(leader2);
    // Wait for leader2 to join before killing i3.
    t.wait(4, n, None);
    let i3 = (t.check_one_leader() + 1) % n;
    t.disconnect(i3);
    t.one(json!(15), n - 1, true);
    t.restart(i3);
    t.connect(i3);
    t.one(json!(16), n, true);
}

pub(super) fn persist2(cx: &mut Context) {
    let mut t = Tester::new(cx, 5);
    let n = t.n;
    let mut index = 1;
    for _ in 0..5 {
        t.one(json!(10 + index), n, true);
        index += 1;
        let leader1 = t.check_one_leader();
        t.disconnect((leader1 + 1) % n);
        t.disconnect((leader1 + 2) % n);
        t.one(json!(10 + index), n - 2, true);
        index += 1;
        t.disconnect(leader1 % n);
        t.disconnect((leader1 + 3) % n);
        t.disconnect((leader1 + 4) % n);
        t.restart((leader1 + 1) % n);
        t.restart((leader1 + 2) % n);
        t.connect((leader1 + 1) % n);
        t.connect((leader1 + 2) % n);
        t.sleep(ELECTION_TIMEOUT);
        t.restart((leader1 + 3) % n);
        t.connect((leader1 + 3) % n);
        t.one(json!(10 + index), n - 2, true);
        index += 1;
        t.connect((leader1 + 4) % n);
        t.connect(leader1 % n);
    }
    t.one(json!(1000), n, true);
}

pub(super) fn persist3(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one(json!(101), 3, true);
    let leader = t.check_one_leader();
    t.disconnect((leader + 2) % n);
    t.one(json!(102), 2, true);
    t.crash(leader % n);
    t.crash((leader + 1) % n);
    t.connect((leader + 2) % n);
    t.restart(leader % n);
    t.connect(leader % n);
    t.one(json!(103), 2, true);
    t.restart((leader + 1) % n);
    t.connect((leader + 1) % n);
    t.one(json!(104), n, true);
}

/// Leaders crash right after taking entries, over and over, so logs hold
/// uncommitted entries of many terms: the Figure 8 situation, on a reliable
/// network.
pub(super) fn figure_8(cx: &mut Context) {
    let mut t = Tester::new(cx, 5);
    let n = t.n;
    let c = t.random_command();
    t.one(c, 1, true);
    let mut nup = n;
    for _ in 0..1000 {
        let alive: Vec<usize> = (0..n).filter(|&i| t.is_alive(i)).collect();
        let starts = alive.iter().map(|&i| (i, t.random_command())).collect();
        let mut leader = None;
        for (&i, (_, _, ok)) in alive.iter().zip(t.start_many(starts)) {
            if ok {
                leader = Some(i);
            }
        }
        let ms = if t.rng.gen_range(0..1000) < 100 {
            t.rng.gen_range(0..ELECTION_TIMEOUT / MS / 2)
        } else {
            t.rng.gen_range(0..13)
        };
        t.sleep(ms * MS);
        if let Some(leader) = leader {
            t.crash(leader);
            nup -= 1;
        }
        if nup < 3 {
            let s = t.rng.gen_range(0..n);
            if !t.is_alive(s) {
                t.restart(s);
                t.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..n {
        if !t.is_alive(i) {
            t.restart(i);
            t.connect(i);
        }
    }
    let c = t.random_command();
    t.one(c, n, true);
}

/// Power failures on the power-loss filesystem (`harness::lazyfs`).
pub(super) fn power_loss(cx: &mut Context) {
    power_loss_scenario(&mut Tester::on_lazyfs(cx, 3));
}

/// Nodes lose power (not only the process: every write not fsynced is gone, see
/// `harness::lazyfs`), all at once and one at a time, with snapshots on. A node
/// that acknowledged an entry or a vote it had not made durable comes back
/// without it.
fn power_loss_scenario(t: &mut Tester) {
    let n = t.n;
    t.snapshot_every(10);
    for _ in 0..15 {
        t.one_random(n);
    }
    for i in 0..n {
        t.power_loss(i);
    }
    for i in 0..n {
        t.restart(i);
        t.connect(i);
    }
    t.one_random(n);
    for _ in 0..3 {
        let leader = t.check_one_leader();
        let c = t.random_command();
        t.start(leader, c);
        t.power_loss(leader);
        for _ in 0..3 {
            t.one_random(n - 1);
        }
        t.restart(leader);
        t.connect(leader);
        t.one_random(n);
    }
}

/// Power failures in the middle of a sync chosen at random, one follower at a time. A
/// crash at a random moment almost never falls between two writes that belong
/// together (a snapshot and the log it cuts short, the file of a new version and the
/// directory entry that makes it current) or inside an append: those windows are
/// microseconds wide. A power cut at the k-th sync from now, k drawn from the next
/// few, falls in each of them as often as anywhere else, and the append it
/// interrupts leaves a random prefix of itself (a torn tail). First without
/// snapshots, where a node's log file only grows and must survive its torn tails
/// from one restart to the next; then with a snapshot every 3 entries. Whatever its
/// disk holds, a node must come back from it, keep what it acknowledged and agree
/// with the others.
pub(super) fn power_loss_at_sync_points(cx: &mut Context) {
    // With 45 cuts after the snapshots start, RAFT_BUG=stale-log-header (a crash
    // between a snapshot and the log it compacts, then appends to the old log) went
    // unseen on 2 seeds of 50. On the wall clock each cut waits for real elections,
    // about 3 s: the 105 cuts took 300 s, nextest's limit, so there it makes 45.
    let (before, after) = match cx.mode {
        TimeMode::Sim => (15, 90),
        TimeMode::Real => (5, 40),
    };
    let mut t = Tester::on_lazyfs(cx, 3);
    let n = t.n;
    for _ in 0..4 {
        t.one_random(n);
    }
    power_cuts_at_syncs(&mut t, before);
    t.snapshot_every(SNAPSHOT_EVERY);
    power_cuts_at_syncs(&mut t, after);
}

/// `rounds` power cuts, each on a follower in one of its next few syncs (see
/// [`power_cut_at_sync`]), half the time after it fell behind.
fn power_cuts_at_syncs(t: &mut Tester, rounds: usize) {
    /// The cut strikes in one of the next this many syncs of its node: a few
    /// commands' worth, so a snapshot's syncs are often among them.
    const NEXT_SYNCS: u64 = 8;
    for _ in 0..rounds {
        let lagging = t.rng.gen_bool(0.5);
        let sync = t.rng.gen_range(1..=NEXT_SYNCS);
        power_cut_at_sync(t, sync, lagging, Pace::Bursts);
    }
}

/// How often the power tests' nodes snapshot, in entries.
const SNAPSHOT_EVERY: u64 = 3;

/// How the commands come while a power cut waits for its sync.
#[derive(Clone, Copy)]
enum Pace {
    /// 1 to 3 commands at once, 5-50 ms apart: a follower's log runs ahead of its
    /// snapshots, since it learns that an entry committed with the next entries.
    Bursts,
    /// One command at a time, each followed by a pause longer than a heartbeat: a
    /// follower learns that an entry committed before the next one comes, so its log
    /// ends at the snapshot's last entry when it snapshots.
    Settled,
}

/// How many of a follower's syncs the sweep of
/// [`power_loss_around_the_first_snapshot`] cuts at, one after the other: enough to
/// reach past the follower's first snapshot, taken or installed (the entries that
/// precede it and the snapshot's own writes).
const FIRST_SYNCS: u64 = 12;

/// Power failures at each of a follower's first syncs, one sync a run, each run a
/// fresh cluster given the same seed (the same workload), with a snapshot every 3
/// entries: with the follower keeping up, in bursts and at a settled pace, and with
/// it cut off until the leader compacted past it, so its first snapshot is one the
/// leader sends. A node's first snapshot is the one whose log still starts at the
/// first entry, and a node takes it once: the random cuts of
/// [`power_loss_at_sync_points`] land in its writes once a run at most, where this
/// sweep cuts at each of them in turn, the window between the snapshot and the log it
/// compacts among them. Each run then carries on as a round of that test does. (In
/// real time, each sync is cut at in one of the ways.)
pub(super) fn power_loss_around_the_first_snapshot(cx: &mut Context) {
    let ways = [
        (false, Pace::Bursts, "keeping up with bursts of commands"),
        (
            false,
            Pace::Settled,
            "keeping up with commands at a settled pace",
        ),
        (true, Pace::Bursts, "behind, then catching up"),
    ];
    let runs: Vec<_> = match cx.mode {
        TimeMode::Sim => ways
            .iter()
            .flat_map(|way| (1..=FIRST_SYNCS).map(move |sync| (sync, way)))
            .collect(),
        // On the wall clock a run takes seconds (its elections): each sync once, the
        // ways taken in turn.
        TimeMode::Real => (1..=FIRST_SYNCS)
            .map(|sync| (sync, &ways[sync as usize % ways.len()]))
            .collect(),
    };
    super::sweep_over(
        cx,
        &runs,
        |&(sync, (_, _, how))| {
            format!("the power cut in the follower's sync {sync}, the follower {how}")
        },
        |cx, &(sync, &(lagging, pace, _))| {
            let mut t = Tester::on_lazyfs_with_seed(cx, 3, cx.seed);
            t.snapshot_every(SNAPSHOT_EVERY);
            power_cut_at_sync(&mut t, sync, lagging, pace);
        },
    );
}

/// A power cut on a follower in its `sync`-th sync from now, while it is the only
/// follower the leader reaches: everything committed in the meantime was counted on
/// its acknowledgement. If `lagging`, the follower falls behind first, so the syncs
/// the cut strikes in catch it up (an install of the leader's snapshot, with
/// snapshots on). Then the leader crashes too and the victim restarts, so the victim
/// and the follower that was cut off must carry on from what the victim's disk kept:
/// an acknowledged entry it lost would be replaced under the leader's feet, which the
/// leader shows when it comes back. Then the victim restarts again and carries on
/// with the old leader alone.
fn power_cut_at_sync(t: &mut Tester, sync: u64, lagging: bool, pace: Pace) {
    /// Bursts of commands after which a node that made no sync yet is reported.
    const MAX_BURSTS: usize = 40;
    /// Tries without a leader (a pause of the pace each) after which two connected
    /// nodes are reported for electing none.
    const MAX_ELECTION_WAITS: usize = 400;
    let n = t.n;
    let leader = t.check_one_leader();
    let followers: Vec<usize> = (0..n).filter(|&j| j != leader).collect();
    let victim = followers[t.rng.gen_range(0..followers.len())];
    if lagging {
        t.disconnect(victim);
        for _ in 0..5 {
            t.one_random(n - 1);
        }
    }
    for &j in &followers {
        if j != victim {
            t.disconnect(j);
        }
    }
    let struck = t.power_cuts_struck();
    t.power_loss_at_sync(victim, sync);
    if lagging {
        t.connect(victim);
    }
    let mut bursts = 0;
    // Where the bursts go: the leader, or whichever of the two connected nodes
    // leads after the victim, back from its partition with a later term, made
    // the leader step down.
    let mut proposer = leader;
    let mut no_leader = 0;
    let mut waited = 0;
    while t.power_cuts_struck() == struck {
        require(bursts < MAX_BURSTS, PERSISTENCE, || {
            format!(
                "n{} made fewer than {sync} syncs (fsync, fdatasync or a directory's \
                 fsync) while the leader sent it {MAX_BURSTS} bursts of commands: a node \
                 that does not sync what it acknowledges loses it when the power fails",
                victim + 1
            )
        });
        let (count, pause) = match pace {
            Pace::Bursts => (t.rng.gen_range(1..=3), t.rng.gen_range(5..50) * MS),
            // Heartbeats come every 100 ms or more (6.5840 allows at most ten a
            // second), and every 100-150 ms in most implementations.
            Pace::Settled => (1, 200 * MS),
        };
        let accepted = t.start_random(proposer, count).iter().any(|&(_, _, ok)| ok);
        t.sleep(pause);
        if accepted {
            bursts += 1;
            continue;
        }
        if t.power_cuts_struck() != struck {
            break;
        }
        no_leader += 1;
        waited += pause;
        require(no_leader < MAX_ELECTION_WAITS, LEADER_ELECTION, || {
            format!(
                "n{} and n{}, connected to each other, elected no leader in {MAX_ELECTION_WAITS} \
                 tries ({} ms)",
                leader + 1,
                victim + 1,
                waited / MS
            )
        });
        if let Some(now) = [leader, victim]
            .into_iter()
            .find(|&i| t.is_alive(i) && t.get_state(i).1)
        {
            proposer = now;
        }
    }
    t.crash(leader);
    for &j in &followers {
        if j != victim {
            t.connect(j);
        }
    }
    t.restart(victim);
    t.connect(victim);
    t.one_random(n - 1);
    // The victim restarts once more, before a snapshot rewrites its log, and
    // must still hold what it acknowledged since it came back: the follower
    // that shares it is cut off, so the victim and the old leader (which lacks
    // it) make the majority, and an entry the victim lost would be given
    // another command at its index (a log whose file still names its start of
    // before the cut, with entries appended after it, reads back at the wrong
    // indices).
    t.restart(victim);
    t.connect(victim);
    let other = followers.iter().copied().find(|&j| j != victim);
    if let Some(other) = other {
        t.disconnect(other);
    }
    t.restart(leader);
    t.connect(leader);
    t.one_random(n - 1);
    if let Some(other) = other {
        t.connect(other);
    }
    t.one_random(n);
}

pub(super) fn unreliable_agree(cx: &mut Context) {
    let mut t = Tester::new(cx, 5);
    let n = t.n;
    t.set_unreliable(true);
    for iters in 1..50u64 {
        let batch = (0..4).map(|j| json!(100 * iters + j)).collect();
        t.one_concurrently(batch, 1);
        t.one(json!(iters), 1, true);
    }
    t.set_unreliable(false);
    t.one(json!(100), n, true);
}

pub(super) fn figure_8_unreliable(cx: &mut Context) {
    let mut t = Tester::new(cx, 5);
    let n = t.n;
    t.set_unreliable(true);
    let c = json!(t.rng.gen_range(0..10_000));
    t.one(c, 1, true);
    let mut nup = n;
    for iters in 0..1000 {
        if iters == 200 {
            t.set_long_reordering();
        }
        let starts = (0..n)
            .map(|i| (i, json!(t.rng.gen_range(0..10_000))))
            .collect();
        let mut leader = None;
        for (i, (_, _, ok)) in t.start_many(starts).into_iter().enumerate() {
            if ok && t.is_connected(i) {
                leader = Some(i);
            }
        }
        let ms = if t.rng.gen_range(0..1000) < 100 {
            t.rng.gen_range(0..ELECTION_TIMEOUT / MS / 2)
        } else {
            t.rng.gen_range(0..13)
        };
        t.sleep(ms * MS);
        if let Some(leader) = leader {
            if t.rng.gen_range(0..1000) < ELECTION_TIMEOUT / MS / 2 {
                t.disconnect(leader);
                nup -= 1;
            }
        }
        if nup < 3 {
            let s = t.rng.gen_range(0..n);
            if !t.is_connected(s) {
                t.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..n {
        t.connect(i);
    }
    let c = json!(t.rng.gen_range(0..10_000));
    t.one(c, n, true);
}

/// One of 6.5840's churn clients: starts a random command on every running
/// node, and if one leads, watches that index for a while; values it saw
/// committed must survive everything that follows.
struct ChurnClient {
    me: u64,
    next_at: u64,
    watching: Option<(u64, Value, usize)>,
    committed: Vec<Value>,
}

/// The waits between a churn client's checks of its index, in ms.
const CHURN_WAITS: [u64; 5] = [10, 20, 50, 100, 200];

impl ChurnClient {
    fn act(&mut self, t: &mut Tester) {
        let now = t.now();
        match self.watching.take() {
            None => {
                let x = t.random_command();
                let running: Vec<usize> = (0..t.n).filter(|&i| t.is_alive(i)).collect();
                let starts = running.iter().map(|&i| (i, x.clone())).collect();
                let leader_index = t
                    .start_many(starts)
                    .into_iter()
                    .filter(|a| a.2)
                    .map(|a| a.0)
                    .next_back();
                match leader_index {
                    Some(index) => {
                        self.watching = Some((index, x, 0));
                        self.next_at = now;
                    }
                    None => self.next_at = now + (79 + self.me * 17) * MS,
                }
            }
            Some((index, x, k)) => {
                let (nd, cmd) = t.n_committed(index);
                if nd > 0 {
                    if cmd.as_ref() == Some(&x) {
                        self.committed.push(x);
                    }
                    self.next_at = now;
                } else if k < CHURN_WAITS.len() {
                    self.watching = Some((index, x, k + 1));
                    self.next_at = now + CHURN_WAITS[k] * MS;
                } else {
                    self.next_at = now;
                }
            }
        }
    }
}

/// Lets the clients act until `until` on the cluster's clock.
fn run_clients(t: &mut Tester, clients: &mut [ChurnClient], until: u64) {
    loop {
        let (k, at) = clients
            .iter()
            .enumerate()
            .map(|(k, c)| (k, c.next_at))
            .min_by_key(|&(_, at)| at)
            .expect("clients");
        let now = t.now();
        if at >= until {
            if until > now {
                t.sleep(until - now);
            }
            return;
        }
        if at > now {
            t.sleep(at - now);
        }
        clients[k].act(t);
    }
}

/// 6.5840's `internalChurn`: nodes are cut off, reconnected, crashed and
/// restarted at random while three clients keep starting commands; then
/// everything heals and every value a client saw committed is in the log.
fn churn(cx: &mut Context, unreliable: bool) {
    let mut t = Tester::new(cx, 5);
    let n = t.n;
    if unreliable {
        t.set_unreliable(true);
    }
    let mut clients: Vec<ChurnClient> = (0..3)
        .map(|me| ChurnClient {
            me,
            next_at: 0,
            watching: None,
            committed: Vec::new(),
        })
        .collect();
    for _ in 0..20 {
        if t.rng.gen_range(0..1000) < 200 {
            let i = t.rng.gen_range(0..n);
            t.disconnect(i);
        }
        if t.rng.gen_range(0..1000) < 500 {
            let i = t.rng.gen_range(0..n);
            if !t.is_alive(i) {
                t.restart(i);
            }
            t.connect(i);
        }
        if t.rng.gen_range(0..1000) < 200 {
            let i = t.rng.gen_range(0..n);
            if t.is_alive(i) {
                t.crash(i);
            }
        }
        let until = t.now() + ELECTION_TIMEOUT * 7 / 10;
        run_clients(&mut t, &mut clients, until);
    }
    t.sleep(ELECTION_TIMEOUT);
    t.set_unreliable(false);
    for i in 0..n {
        if !t.is_alive(i) {
            t.restart(i);
        }
        t.connect(i);
    }
    t.sleep(ELECTION_TIMEOUT);
    let c = t.random_command();
    let last = t.one(c, n, true);
    let really: Vec<Value> = (1..=last)
        .map(|index| t.wait(index, n, None).expect("no term given"))
        .collect();
    let seen: Vec<Value> = clients.into_iter().flat_map(|c| c.committed).collect();
    cx.note(format!(
        "{last} commands committed, {} seen committed by clients",
        seen.len()
    ));
    for v in &seen {
        require(really.contains(v), STATE_MACHINE_SAFETY, || {
            format!(
                "{v} was seen committed by a client but is not in the final log of {last} entries"
            )
        });
    }
}

pub(super) fn reliable_churn(cx: &mut Context) {
    churn(cx, false);
}

pub(super) fn unreliable_churn(cx: &mut Context) {
    churn(cx, true);
}
