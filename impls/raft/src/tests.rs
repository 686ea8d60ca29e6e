//! The core without threads or sockets: a cluster of `Raft`s on an in-memory network
//! with seeded loss and partitions, and the safety properties checked after every
//! event (one leader per term, log matching, committed entries never change). A
//! service that snapshots every few entries can be switched on.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::core::{Config, Entry, HardState, Raft, Ready, Restored, Role, Snapshot};
use crate::wire::PeerMessage;
use node::rng::SplitMix;

const MS: u64 = 1_000_000;

struct Sim {
    nodes: Vec<Raft>,
    names: Vec<String>,
    /// What each node last persisted: a crash restarts from here.
    disk: Vec<Restored>,
    /// The service snapshots after every this many applied entries (0: never).
    snapshot_every: u64,
    installed: u64,
    now: u64,
    queue: Vec<(u64, usize, usize, PeerMessage)>,
    /// Nodes that cannot send or receive.
    cut: BTreeSet<usize>,
    loss: u64,
    rng: SplitMix,
    leaders: BTreeMap<u64, usize>,
    committed: BTreeMap<u64, Value>,
    applied: Vec<Vec<Value>>,
    rejections: u64,
}

impl Sim {
    fn new(n: usize, seed: u64) -> Sim {
        let names: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let nodes = names
            .iter()
            .enumerate()
            .map(|(i, id)| Raft::fresh(Config::new(id, names.clone()), seed + i as u64, 0))
            .collect();
        Sim {
            nodes,
            disk: vec![Restored::default(); n],
            snapshot_every: 0,
            installed: 0,
            names,
            now: 0,
            queue: Vec::new(),
            cut: BTreeSet::new(),
            loss: 0,
            rng: SplitMix::new(seed),
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            applied: vec![Vec::new(); n],
            rejections: 0,
        }
    }

    fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).unwrap()
    }

    fn drain(&mut self, i: usize) {
        let Ready {
            snapshot,
            term_vote,
            log,
            messages,
            apply_snapshot,
            applied,
            became_leader,
        } = self.nodes[i].ready();
        if let Some(s) = snapshot {
            self.disk[i].snapshot = Some(s);
        }
        if term_vote.is_some() || log.is_some() {
            let disk = self.disk[i]
                .hard_state
                .get_or_insert_with(HardState::default);
            disk.apply(term_vote.as_ref(), log.as_ref());
        }
        for (to, m) in messages {
            let to = self.index(&to);
            if self.cut.contains(&i) || self.cut.contains(&to) {
                continue;
            }
            if self.loss > 0 && self.rng.range(0, 99) < self.loss {
                continue;
            }
            let delay = self.rng.range(1, 5) * MS;
            self.queue.push((self.now + delay, i, to, m));
        }
        if let Some(term) = became_leader {
            if let Some(other) = self.leaders.insert(term, i) {
                assert_eq!(other, i, "two leaders in term {term}");
            }
        }
        if let Some(s) = apply_snapshot {
            self.install(i, &s);
        }
        let mut snapshot_at = None;
        for (index, entry) in applied {
            assert_eq!(
                index as usize,
                self.applied[i].len() + 1,
                "n{} applied out of order",
                i + 1
            );
            let first = self.committed.entry(index).or_insert(entry.command.clone());
            assert_eq!(*first, entry.command, "index {index} applied differently");
            self.applied[i].push(entry.command);
            if self.snapshot_every > 0 && index % self.snapshot_every == 0 {
                snapshot_at = Some(index);
            }
        }
        self.check_log_matching();
        if let Some(index) = snapshot_at {
            let data = json!(self.applied[i][..index as usize]);
            self.nodes[i].snapshot(index, data).expect("applied");
            self.drain(i);
        }
    }

    /// The service of node `i` takes the state a snapshot holds.
    fn install(&mut self, i: usize, s: &Snapshot) {
        let commands = s.data.as_array().expect("our snapshots are lists").clone();
        assert_eq!(commands.len() as u64, s.index);
        for (k, c) in commands.iter().enumerate() {
            let first = self.committed.entry(k as u64 + 1).or_insert(c.clone());
            assert_eq!(first, c, "snapshot disagrees at index {}", k + 1);
        }
        self.applied[i] = commands;
        self.installed += 1;
    }

    fn check_log_matching(&self) {
        for a in &self.nodes {
            for b in &self.nodes {
                let from = a.log_start().max(b.log_start()) + 1;
                let to = a.last_index().min(b.last_index());
                if let Some(k) = (from..=to).rev().find(|&k| a.term_at(k) == b.term_at(k)) {
                    for j in from..=k {
                        assert_eq!(
                            a.entry(j),
                            b.entry(j),
                            "{} and {} break log matching at {j}",
                            a.id(),
                            b.id()
                        );
                    }
                }
            }
        }
    }

    /// Runs every event up to `until`.
    fn run_until(&mut self, until: u64) {
        loop {
            let next_msg = self.queue.iter().map(|q| q.0).min();
            let next_tick = self.nodes.iter().map(|n| n.next_deadline()).min().unwrap();
            let t = next_msg.unwrap_or(u64::MAX).min(next_tick);
            if t > until {
                self.now = until;
                return;
            }
            self.now = t;
            if next_msg == Some(t) {
                let k = self.queue.iter().position(|q| q.0 == t).unwrap();
                let (_, from, to, m) = self.queue.remove(k);
                if self.cut.contains(&from) || self.cut.contains(&to) {
                    continue;
                }
                if matches!(m, PeerMessage::AppendEntriesReply { success: false, .. }) {
                    self.rejections += 1;
                }
                let from = self.names[from].clone();
                self.nodes[to].step(t, &from, m);
                self.drain(to);
            } else {
                let i = (0..self.nodes.len())
                    .find(|&i| self.nodes[i].next_deadline() == t)
                    .unwrap();
                self.nodes[i].tick(t);
                self.drain(i);
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        let mut leaders = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].role() == Role::Leader && !self.cut.contains(&i));
        let l = leaders.next();
        l.filter(|_| leaders.next().is_none())
    }

    fn propose(&mut self, i: usize, command: Value) -> Option<(u64, u64)> {
        let r = self.nodes[i].propose(command).ok();
        self.drain(i);
        r
    }

    fn crash_restart(&mut self, i: usize, seed: u64) {
        let config = Config::new(&self.names[i], self.names.clone());
        let (hs, snapshot) = self.disk[i].clone().reconcile().expect("consistent disk");
        self.applied[i].clear();
        if let Some(s) = &snapshot {
            self.install(i, s);
        }
        self.nodes[i] = Raft::new(config, hs, snapshot, seed, self.now);
        self.queue.retain(|q| q.2 != i);
    }
}

fn entries(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(k, &term)| Entry {
            term,
            command: json!(format!("t{term}-{k}")),
        })
        .collect()
}

#[test]
fn elects_one_leader_that_replicates_to_all() {
    let mut sim = Sim::new(3, 1);
    sim.run_until(2_000 * MS);
    let leader = sim.leader().expect("a leader within 2 s");
    let term = sim.nodes[leader].term();
    assert!(sim.nodes.iter().all(|n| n.term() == term));
    for k in 0..5 {
        let (index, _) = sim.propose(leader, json!(k)).unwrap();
        assert_eq!(index, k + 1);
    }
    sim.run_until(sim.now + 500 * MS);
    for applied in &sim.applied {
        assert_eq!(applied, &(0..5).map(|k| json!(k)).collect::<Vec<_>>());
    }
}

/// 40 seeds of 40 rounds of random partitions, 10 % loss, crash-restarts and
/// proposals on a 5-node cluster, then a healed network that must make progress.
/// Returns how many snapshots were installed from a leader.
fn random_faults(snapshot_every: u64) -> u64 {
    let mut installed = 0;
    for seed in 0..40 {
        let mut sim = Sim::new(5, seed * 7919);
        sim.snapshot_every = snapshot_every;
        sim.loss = 10;
        let mut rng = SplitMix::new(seed);
        let mut command = 0;
        for round in 0..40 {
            sim.cut.clear();
            for i in 0..5 {
                if rng.range(0, 3) == 0 {
                    sim.cut.insert(i);
                }
            }
            if rng.range(0, 4) == 0 {
                let i = rng.range(0, 4) as usize;
                sim.crash_restart(i, seed * 100 + round);
            }
            for i in 0..5 {
                if sim.nodes[i].is_leader() {
                    command += 1;
                    sim.propose(i, json!(command));
                }
            }
            sim.run_until(sim.now + 300 * MS);
        }
        // Healed and reliable, the cluster must make progress again.
        sim.cut.clear();
        sim.loss = 0;
        sim.run_until(sim.now + 3_000 * MS);
        let leader = sim.leader().expect("a leader after healing");
        let (index, _) = sim.propose(leader, json!("final")).unwrap();
        sim.run_until(sim.now + 1_000 * MS);
        assert_eq!(
            sim.committed.get(&index),
            Some(&json!("final")),
            "seed {seed}"
        );
        assert!(
            sim.leaders.len() > 1,
            "seed {seed}: faults caused re-elections"
        );
        installed += sim.installed;
    }
    installed
}

#[test]
fn safety_holds_under_random_partitions_loss_and_crashes() {
    random_faults(0);
}

#[test]
fn safety_holds_with_snapshots_under_random_partitions_loss_and_crashes() {
    let installed = random_faults(3);
    assert!(installed > 0, "no follower ever needed a snapshot");
}

#[test]
fn a_lagging_follower_catches_up_from_the_leaders_snapshot() {
    let mut sim = Sim::new(3, 21);
    sim.snapshot_every = 10;
    sim.run_until(2_000 * MS);
    let leader = sim.leader().unwrap();
    let lagging = (leader + 1) % 3;
    sim.cut.insert(lagging);
    for k in 0..35 {
        sim.propose(leader, json!(k));
        sim.run_until(sim.now + 5 * MS);
    }
    sim.run_until(sim.now + 100 * MS);
    assert_eq!(sim.nodes[leader].log_start(), 30);
    assert_eq!(sim.nodes[leader].entries().len(), 5);
    // The follower's campaigns while cut off may force an election first.
    sim.cut.clear();
    sim.run_until(sim.now + 2_000 * MS);
    let leader = sim.leader().unwrap();
    assert_ne!(leader, lagging, "a node without the entries cannot win");
    assert_eq!(
        sim.installed, 1,
        "the follower installed the leader's snapshot"
    );
    assert_eq!(sim.applied[lagging], sim.applied[leader]);
    assert_eq!(sim.nodes[lagging].log_start(), 30);
    // And it keeps following from there.
    sim.propose(leader, json!("next"));
    sim.run_until(sim.now + 100 * MS);
    assert_eq!(sim.applied[lagging].last(), Some(&json!("next")));
}

#[test]
fn the_service_cannot_snapshot_what_it_has_not_applied() {
    let mut sim = Sim::new(1, 4);
    sim.run_until(1_000 * MS);
    sim.propose(0, json!("a"));
    let node = &mut sim.nodes[0];
    let e = node.snapshot(2, json!(["a", "b"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot snapshot up to index 2: only 1 entries were applied"
    );
    node.snapshot(1, json!(["a"])).unwrap();
    assert_eq!(node.log_start(), 1);
    // An older snapshot than the current one changes nothing.
    node.snapshot(1, json!(["other"])).unwrap();
    assert_eq!(node.current_snapshot().unwrap().data, json!(["a"]));
}

fn state(log_start: u64, log_start_term: u64, terms: &[u64]) -> HardState {
    HardState {
        term: 5,
        voted_for: None,
        log_start,
        log_start_term,
        log: entries(terms),
    }
}

fn snap(index: u64, term: u64) -> Snapshot {
    Snapshot {
        index,
        term,
        data: json!(index),
    }
}

#[test]
fn a_crash_between_snapshot_and_state_writes_is_reconciled() {
    // The snapshot (through 3, term 2) was written; the compacted state was not.
    let restored = Restored {
        hard_state: Some(state(0, 0, &[1, 2, 2, 3, 3])),
        snapshot: Some(snap(3, 2)),
    };
    let (hs, s) = restored.reconcile().unwrap();
    assert_eq!((hs.log_start, hs.log_start_term), (3, 2));
    assert_eq!(hs.log.iter().map(|e| e.term).collect::<Vec<_>>(), [3, 3]);
    assert_eq!(s.unwrap().index, 3);
    // A log that disagrees with the snapshot at its last entry is dropped.
    let restored = Restored {
        hard_state: Some(state(0, 0, &[1, 1, 1, 1])),
        snapshot: Some(snap(3, 2)),
    };
    let (hs, _) = restored.reconcile().unwrap();
    assert!(hs.log.is_empty() && hs.log_start == 3);
    // A log shorter than the snapshot: the snapshot wins.
    let restored = Restored {
        hard_state: Some(state(0, 0, &[1])),
        snapshot: Some(snap(3, 2)),
    };
    assert!(restored.reconcile().unwrap().0.log.is_empty());
}

#[test]
fn state_that_starts_after_its_snapshot_is_refused() {
    let lost = Restored {
        hard_state: Some(state(10, 2, &[2])),
        snapshot: None,
    };
    assert!(lost
        .reconcile()
        .unwrap_err()
        .contains("snapshot covers only up to 0"));
    let mismatch = Restored {
        hard_state: Some(state(3, 1, &[2])),
        snapshot: Some(snap(3, 2)),
    };
    assert!(mismatch.reconcile().is_err());
}

/// The members of the three-node clusters the single-node tests build.
fn members() -> Vec<String> {
    ["n1", "n2", "n3"].map(String::from).to_vec()
}

/// `n1`, a follower of term 2, after its election timeout and n2's vote: leader of
/// term 3, its first Ready taken.
fn elected_by_n2(mut n1: Raft) -> Raft {
    n1.tick(n1.next_deadline());
    n1.step(
        n1.next_deadline(),
        "n2",
        PeerMessage::RequestVoteReply {
            term: 3,
            granted: true,
        },
    );
    assert!(n1.is_leader());
    n1.ready();
    n1
}

/// A leader that hears of a later term in a follower's answer to its snapshot steps
/// down and sends nothing more as a leader: acting on the answer would send
/// AppendEntries in a term it does not lead. (The follower's term moved on between
/// the rejection that made the leader send the snapshot and its answer.) The leader
/// has more entries than one AppendEntries carries, so an answer taken as a match
/// would send the next batch at once.
#[test]
fn a_snapshot_answer_of_a_later_term_deposes_the_leader() {
    let names = members();
    let state = HardState {
        term: 2,
        log: entries(&[1; 30]),
        ..HardState::default()
    };
    let mut config = Config::new("n1", names);
    config.max_batch = 10;
    let mut n1 = elected_by_n2(Raft::new(config, state, None, 1, 0));
    let now = n1.next_deadline();
    // n2 rejects the first AppendEntries: the leader backs it up to entry 1.
    n1.step(
        now,
        "n2",
        PeerMessage::AppendEntriesReply {
            term: 3,
            success: false,
            match_index: 0,
            rejected: 30,
            conflict_index: 1,
            conflict_term: None,
        },
    );
    n1.ready();
    n1.step(
        now,
        "n2",
        PeerMessage::InstallSnapshotReply {
            term: 4,
            last_index: 1,
        },
    );
    assert_eq!((n1.term(), n1.role()), (4, Role::Follower));
    let sent: Vec<_> = n1.ready().messages;
    assert!(
        sent.iter()
            .all(|(_, m)| !matches!(m, PeerMessage::AppendEntries { .. })),
        "a deposed leader sent AppendEntries: {sent:?}"
    );
}

/// A snapshot from a deposed leader (sent in its term, delivered after a new leader
/// was elected) is refused with the current term: the leader that receives it stays
/// leader, and its state is unchanged.
#[test]
fn a_snapshot_of_an_earlier_term_is_refused() {
    let names = members();
    let state = HardState {
        term: 2,
        log: entries(&[1, 1, 2]),
        ..HardState::default()
    };
    let mut n1 = elected_by_n2(Raft::new(Config::new("n1", names), state, None, 1, 0));
    let now = n1.next_deadline();
    n1.step(
        now,
        "n3",
        PeerMessage::InstallSnapshot {
            term: 2,
            last_index: 2,
            last_term: 1,
            data: json!("old"),
        },
    );
    assert_eq!(
        (n1.term(), n1.role(), n1.log_start()),
        (3, Role::Leader, 0),
        "after a snapshot of term 2 reached the leader of term 3"
    );
    let ready = n1.ready();
    assert!(ready.snapshot.is_none() && ready.apply_snapshot.is_none());
    assert!(
        ready
            .messages
            .iter()
            .any(|(to, m)| to == "n3"
                && matches!(m, PeerMessage::InstallSnapshotReply { term: 3, .. })),
        "no refusal with the current term: {:?}",
        ready.messages
    );
}

/// An AppendEntries that reaches a follower after a snapshot covering some or all of
/// its entries (it was sent before the leader compacted, and delayed): the covered
/// entries are skipped, the rest stored at their own indices, and the answer claims
/// exactly the message's last entry, which the follower then holds.
#[test]
fn an_append_delayed_past_a_snapshot_keeps_its_indices() {
    let names = members();
    // n2 in term 5 has installed a snapshot through entry 10 (term 1), nothing after.
    let follower = || {
        Raft::new(
            Config::new("n2", names.clone()),
            state(10, 1, &[]),
            Some(snap(10, 1)),
            2,
            0,
        )
    };
    let numbered = |from: u64, to: u64| -> Vec<Entry> {
        (from..=to)
            .map(|i| Entry {
                term: 1,
                command: json!(i),
            })
            .collect()
    };
    let answer = |raft: &mut Raft| -> (bool, u64) {
        let sent = raft.ready().messages;
        match sent.as_slice() {
            [(
                _,
                PeerMessage::AppendEntriesReply {
                    success,
                    match_index,
                    ..
                },
            )] => (*success, *match_index),
            other => panic!("expected one AppendEntriesReply, got {other:?}"),
        }
    };
    let append = |raft: &mut Raft, prev_index: u64, entries: Vec<Entry>| {
        raft.step(
            1,
            "n1",
            PeerMessage::AppendEntries {
                term: 5,
                prev_index,
                prev_term: 1,
                entries,
                commit: 0,
            },
        );
    };
    // Entries 7..=14: 7..=10 are in the snapshot, 11..=14 are new.
    let mut n2 = follower();
    append(&mut n2, 6, numbered(7, 14));
    assert_eq!(answer(&mut n2), (true, 14), "the answer to entries 7..=14");
    assert_eq!(
        (n2.log_start(), n2.last_index()),
        (10, 14),
        "the log after entries 7..=14"
    );
    let stored: Vec<Value> = n2.entries().iter().map(|e| e.command.clone()).collect();
    assert_eq!(
        stored,
        [json!(11), json!(12), json!(13), json!(14)],
        "entries 11..=14 at their own indices"
    );
    // Entries 5..=8: all in the snapshot; nothing to store, and 8 is matched.
    let mut n2 = follower();
    append(&mut n2, 4, numbered(5, 8));
    assert_eq!(answer(&mut n2), (true, 8), "the answer to entries 5..=8");
    assert_eq!(n2.last_index(), 10, "the log after entries 5..=8");
}

#[test]
fn a_partitioned_old_leader_cannot_commit() {
    let mut sim = Sim::new(5, 3);
    sim.run_until(2_000 * MS);
    let old = sim.leader().unwrap();
    sim.propose(old, json!("before"));
    sim.run_until(sim.now + 200 * MS);
    assert_eq!(sim.committed.len(), 1);
    // Cut the old leader off; keep stepping it by hand with what it sends lost.
    sim.cut.insert(old);
    let (index, _) = sim.propose(old, json!("lost")).unwrap();
    let commit = sim.nodes[old].commit_index();
    sim.run_until(sim.now + 3_000 * MS);
    assert_eq!(
        sim.nodes[old].commit_index(),
        commit,
        "committed without a majority"
    );
    let new = sim.leader().expect("the majority elects a new leader");
    assert_ne!(new, old);
    sim.propose(new, json!("after"));
    sim.run_until(sim.now + 200 * MS);
    sim.cut.clear();
    sim.run_until(sim.now + 1_000 * MS);
    assert!(!sim.nodes[old].is_leader());
    assert_eq!(sim.committed.get(&index), Some(&json!("after")));
    assert!(sim.applied.iter().flatten().all(|c| *c != json!("lost")));
    assert_eq!(sim.nodes[old].entries(), sim.nodes[new].entries());
}

/// Figure 8: an entry of an earlier term stored on a majority is not committed by
/// counting; it commits only once an entry of the leader's own term reaches a majority.
#[test]
fn figure_8_earlier_term_entries_commit_only_with_a_current_one() {
    let names = members();
    let make = |id: &str, term, log: &[u64]| {
        let state = HardState {
            term,
            voted_for: None,
            log: entries(log),
            ..HardState::default()
        };
        Raft::new(Config::new(id, names.clone()), state, None, 9, 0)
    };
    let mut n1 = make("n1", 3, &[1, 2]);
    let mut n2 = make("n2", 3, &[1, 2]);
    // n1 times out first and wins n2's vote.
    n1.tick(n1.next_deadline());
    let ready = n1.ready();
    let (_, vote_req) = ready
        .messages
        .iter()
        .find(|(to, _)| to == "n2")
        .unwrap()
        .clone();
    n2.step(1, "n1", vote_req);
    let (_, vote) = n2.ready().messages.pop().unwrap();
    n1.step(2, "n2", vote);
    assert!(n1.is_leader());
    let append = n1
        .ready()
        .messages
        .into_iter()
        .find(|(to, _)| to == "n2")
        .unwrap()
        .1;
    n2.step(3, "n1", append);
    let ack = n2.ready().messages.pop().unwrap().1;
    assert!(matches!(
        ack,
        PeerMessage::AppendEntriesReply {
            success: true,
            match_index: 2,
            ..
        }
    ));
    n1.step(4, "n2", ack);
    assert_eq!(
        n1.commit_index(),
        0,
        "index 2 (term 2) is on a majority but must not commit"
    );
    let (index, _) = n1.propose(json!("now")).unwrap();
    let append = n1
        .ready()
        .messages
        .into_iter()
        .find(|(to, _)| to == "n2")
        .unwrap()
        .1;
    n2.step(6, "n1", append);
    n1.step(7, "n2", n2.ready().messages.pop().unwrap().1);
    assert_eq!(
        n1.commit_index(),
        index,
        "a current-term entry commits its prefix"
    );
    assert_eq!(n1.ready().applied.len(), 3);
}

/// A follower whose log diverges for a whole term is repaired in a few rounds, not
/// one rejected AppendEntries per entry.
#[test]
fn next_index_backs_up_a_term_at_a_time() {
    let mut sim = Sim::new(3, 5);
    let mut leader_log = vec![1; 30];
    leader_log.extend([3; 30]);
    let mut stale_log = vec![1; 30];
    stale_log.extend([2; 60]);
    for (i, log) in [&leader_log, &leader_log, &stale_log]
        .into_iter()
        .enumerate()
    {
        let state = HardState {
            term: 3,
            voted_for: None,
            log: entries(log),
            ..HardState::default()
        };
        sim.disk[i].hard_state = Some(state.clone());
        let config = Config::new(&sim.names[i], sim.names.clone());
        sim.nodes[i] = Raft::new(config, state, None, i as u64 + 1, 0);
    }
    // Only n1 or n2 can win (n3's log is behind); then n3 must be repaired.
    sim.run_until(2_000 * MS);
    let leader = sim.leader().unwrap();
    assert_ne!(leader, 2);
    sim.propose(leader, json!("x"));
    sim.run_until(sim.now + 500 * MS);
    assert_eq!(sim.nodes[2].entries(), sim.nodes[leader].entries());
    assert!(sim.rejections <= 4, "{} rejections", sim.rejections);
}

/// With `leader_sends_before_durable`, a leader's AppendEntries leave before its own
/// log write is durable: one follower's acknowledgement must not make a quorum of
/// three with the leader's undurable copy. Only `log_durable` lets the leader count
/// itself.
#[test]
fn a_leader_counts_its_own_entry_toward_commit_only_once_durable() {
    let names = members();
    let elected = |parallel: bool| {
        let mut config = Config::new("n1", names.clone());
        config.leader_sends_before_durable = parallel;
        let mut n1 = Raft::fresh(config, 1, 0);
        n1.tick(n1.next_deadline());
        n1.ready();
        // The vote for itself is on disk before its RequestVotes leave.
        n1.log_durable(n1.last_index());
        n1.step(
            n1.next_deadline(),
            "n2",
            PeerMessage::RequestVoteReply {
                term: n1.term(),
                granted: true,
            },
        );
        assert!(n1.is_leader());
        n1.ready();
        n1
    };
    let ack = |n1: &mut Raft, index: u64| {
        let term = n1.term();
        n1.step(
            n1.next_deadline(),
            "n2",
            PeerMessage::AppendEntriesReply {
                term,
                success: true,
                match_index: index,
                rejected: 0,
                conflict_index: 0,
                conflict_term: None,
            },
        );
    };

    let mut n1 = elected(true);
    let (index, _) = n1.propose(json!("x")).unwrap();
    let ready = n1.ready();
    assert!(ready.log.is_some(), "{ready:?}");
    let sent_to: Vec<&str> = ready
        .messages
        .iter()
        .filter(
            |(_, m)| matches!(m, PeerMessage::AppendEntries { entries, .. } if entries.len() == 1),
        )
        .map(|(to, _)| to.as_str())
        .collect();
    assert_eq!(sent_to, ["n2", "n3"]);
    ack(&mut n1, index);
    assert_eq!(
        n1.commit_index(),
        0,
        "n2 and an undurable leader are no quorum"
    );
    assert!(n1.ready().applied.is_empty());
    n1.log_durable(index);
    assert_eq!(n1.commit_index(), index);
    assert_eq!(
        n1.ready().applied,
        [(
            index,
            Entry {
                term: n1.term(),
                command: json!("x")
            }
        )]
    );

    // Without the option, `ready` hands out writes the caller makes durable before
    // anything else: the leader counts itself at once.
    let mut n1 = elected(false);
    let (index, _) = n1.propose(json!("x")).unwrap();
    n1.ready();
    ack(&mut n1, index);
    assert_eq!(n1.commit_index(), index);
}

#[test]
fn a_restarted_node_keeps_its_vote_and_log() {
    let mut sim = Sim::new(3, 11);
    sim.run_until(2_000 * MS);
    let leader = sim.leader().unwrap();
    sim.propose(leader, json!("kept"));
    sim.run_until(sim.now + 100 * MS);
    let follower = (leader + 1) % 3;
    let term = sim.nodes[follower].term();
    let voted = sim.nodes[follower].voted_for().map(String::from);
    sim.crash_restart(follower, 99);
    assert_eq!(sim.nodes[follower].term(), term);
    assert_eq!(sim.nodes[follower].voted_for().map(String::from), voted);
    assert_eq!(sim.nodes[follower].entries().len(), 1);
    // A candidate of the same term other than the one voted for is refused.
    let other = (0..3).find(|&i| Some(sim.names[i].as_str()) != voted.as_deref() && i != follower);
    if let Some(other) = other {
        let name = sim.names[other].clone();
        sim.nodes[follower].step(
            sim.now,
            &name,
            PeerMessage::RequestVote {
                term,
                last_log_index: 10,
                last_log_term: term,
            },
        );
        let reply = sim.nodes[follower].ready().messages.pop().unwrap().1;
        assert_eq!(
            reply,
            PeerMessage::RequestVoteReply {
                term,
                granted: false
            }
        );
    }
}

/// Peers that send numbers no correct peer could: each message kind with hostile
/// terms and indices is dropped, with no panic and nothing persisted or sent.
mod hostile_peers {
    use super::*;
    use crate::core::{LogWrite, SnapshotError, MAX_PEER_NUMBER};
    use proptest::prelude::*;

    /// n2, a follower in term 2 with entries of terms 1, 1, 2 and none committed.
    fn follower() -> Raft {
        let state = HardState {
            term: 2,
            voted_for: None,
            log: entries(&[1, 1, 2]),
            ..HardState::default()
        };
        Raft::new(Config::new("n2", members()), state, None, 3, 0)
    }

    /// n1, leader of term 3 with entries of terms 1, 1, 2 (and its own no-op-free
    /// log), elected by n2's vote; its first Ready is taken.
    fn leader() -> Raft {
        let state = HardState {
            term: 2,
            voted_for: None,
            log: entries(&[1, 1, 2]),
            ..HardState::default()
        };
        elected_by_n2(Raft::new(Config::new("n1", members()), state, None, 1, 0))
    }

    /// What a hostile message must not change.
    fn observable(raft: &Raft) -> impl PartialEq + std::fmt::Debug {
        (
            raft.term(),
            raft.voted_for().map(String::from),
            raft.role(),
            raft.commit_index(),
            raft.log_start(),
            raft.entries().to_vec(),
            raft.current_snapshot().cloned(),
            raft.progress("n2"),
            raft.next_deadline(),
        )
    }

    /// Steps `raft` with `message` from n1 (to a follower) or n2 (to the leader) and
    /// asserts it was dropped whole; then runs the node's timer, which must not
    /// overflow on anything the message could have left behind.
    fn dropped(mut raft: Raft, message: PeerMessage) {
        let from = if raft.is_leader() { "n2" } else { "n1" };
        let before = observable(&raft);
        raft.step(1, from, message.clone());
        assert_eq!(observable(&raft), before, "{message:?} changed the node");
        assert_eq!(raft.ready(), Ready::default(), "{message:?} had effects");
        raft.tick(raft.next_deadline());
        raft.ready();
    }

    const HUGE: [u64; 3] = [u64::MAX, u64::MAX - 1, MAX_PEER_NUMBER + 1];

    #[test]
    fn request_vote_with_impossible_numbers_is_dropped() {
        for huge in HUGE {
            dropped(
                follower(),
                PeerMessage::RequestVote {
                    term: huge,
                    last_log_index: 3,
                    last_log_term: 2,
                },
            );
            dropped(
                follower(),
                PeerMessage::RequestVote {
                    term: 3,
                    last_log_index: huge,
                    last_log_term: 2,
                },
            );
        }
        // A last entry of a term later than the candidate's own.
        dropped(
            follower(),
            PeerMessage::RequestVote {
                term: 3,
                last_log_index: 9,
                last_log_term: 4,
            },
        );
        // Entry 0 is the empty log's and has term 0; every other entry a term.
        dropped(
            follower(),
            PeerMessage::RequestVote {
                term: 3,
                last_log_index: 0,
                last_log_term: 3,
            },
        );
    }

    #[test]
    fn request_vote_reply_with_an_impossible_term_is_dropped() {
        for huge in HUGE {
            dropped(
                leader(),
                PeerMessage::RequestVoteReply {
                    term: huge,
                    granted: true,
                },
            );
        }
    }

    #[test]
    fn append_entries_with_impossible_numbers_is_dropped() {
        let append =
            |term, prev_index, prev_term, terms: &[u64], commit| PeerMessage::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries: entries(terms),
                commit,
            };
        for huge in HUGE {
            dropped(follower(), append(huge, 3, 2, &[2], 0));
            dropped(follower(), append(3, huge, 2, &[3], 0));
            dropped(follower(), append(3, 3, 2, &[3], huge));
            dropped(follower(), append(3, 3, 2, &[huge], 0));
        }
        // prev_index + entries beyond the limit.
        dropped(follower(), append(3, MAX_PEER_NUMBER, 2, &[3, 3], 0));
        // Terms later than the message's, earlier than the entry before them, or
        // going backwards.
        dropped(follower(), append(3, 3, 4, &[], 0));
        dropped(follower(), append(3, 3, 2, &[4], 0));
        dropped(follower(), append(3, 3, 2, &[1], 0));
        dropped(follower(), append(3, 3, 2, &[3, 2], 0));
        // Entry 0 has term 0; other entries are of some term.
        dropped(follower(), append(3, 0, 1, &[1], 0));
        dropped(follower(), append(3, 2, 0, &[1], 0));
        dropped(follower(), append(3, 0, 0, &[0], 0));
    }

    #[test]
    fn append_entries_reply_with_impossible_numbers_is_dropped() {
        let reply = |success, match_index, rejected, conflict_index, conflict_term| {
            PeerMessage::AppendEntriesReply {
                term: 3,
                success,
                match_index,
                rejected,
                conflict_index,
                conflict_term,
            }
        };
        for huge in HUGE {
            dropped(leader(), reply(true, huge, 0, 0, None));
            dropped(leader(), reply(false, 0, huge, 0, None));
            dropped(leader(), reply(false, 0, 3, huge, None));
            dropped(leader(), reply(false, 0, 3, 1, Some(huge)));
        }
        // The leader's log ends at 3: nobody can store more of it, nor have been
        // sent a later prev_index in this term, nor hint past what was rejected.
        dropped(leader(), reply(true, 4, 0, 0, None));
        dropped(leader(), reply(false, 0, 4, 1, None));
        dropped(leader(), reply(false, 0, 2, 3, None));
    }

    #[test]
    fn install_snapshot_with_impossible_numbers_is_dropped() {
        let install = |term, last_index, last_term| PeerMessage::InstallSnapshot {
            term,
            last_index,
            last_term,
            data: json!([]),
        };
        for huge in HUGE {
            // u64::MAX as last_index once wrapped the log's indices to 0.
            dropped(follower(), install(3, huge, 2));
            dropped(follower(), install(huge, 9, 2));
            dropped(follower(), install(3, 9, huge));
        }
        dropped(follower(), install(3, 9, 4));
        dropped(follower(), install(3, 0, 0));
        dropped(follower(), install(3, 9, 0));
    }

    #[test]
    fn install_snapshot_reply_with_impossible_numbers_is_dropped() {
        for huge in HUGE {
            dropped(
                leader(),
                PeerMessage::InstallSnapshotReply {
                    term: 3,
                    last_index: huge,
                },
            );
            dropped(
                leader(),
                PeerMessage::InstallSnapshotReply {
                    term: huge,
                    last_index: 1,
                },
            );
        }
        dropped(
            leader(),
            PeerMessage::InstallSnapshotReply {
                term: 3,
                last_index: 4,
            },
        );
    }

    /// A leader that overwrites committed entries (impossible for a correct one; a
    /// known-bad variant does it) is followed, but the commit index stays within the
    /// log, and the service's request to snapshot an applied entry that was cut is
    /// refused rather than a panic.
    #[test]
    fn a_leader_that_cuts_committed_entries_leaves_commit_within_the_log() {
        let mut n2 = follower();
        let mut disk = HardState {
            term: 2,
            log: entries(&[1, 1, 2]),
            ..HardState::default()
        };
        let step =
            |n2: &mut Raft, disk: &mut HardState, prev_index, prev_term, terms: &[u64], commit| {
                n2.step(
                    1,
                    "n1",
                    PeerMessage::AppendEntries {
                        term: 3,
                        prev_index,
                        prev_term,
                        entries: entries(terms),
                        commit,
                    },
                );
                let ready = n2.ready();
                disk.apply(ready.term_vote.as_ref(), ready.log.as_ref());
                ready
            };
        assert_eq!(step(&mut n2, &mut disk, 3, 2, &[], 3).applied.len(), 3);
        step(&mut n2, &mut disk, 1, 1, &[3], 0);
        let terms: Vec<u64> = n2.entries().iter().map(|e| e.term).collect();
        assert_eq!(terms, [1, 3]);
        assert_eq!(disk.log, n2.entries());
        assert!(
            n2.commit_index() <= n2.last_index(),
            "commit {} beyond the log's end {}",
            n2.commit_index(),
            n2.last_index()
        );
        // Entry 3 was applied and no longer exists: no snapshot can be made of it.
        assert!(n2.snapshot(3, json!("s")).is_err());
        // The leader's next entries commit; what was applied is not applied again.
        let ready = step(&mut n2, &mut disk, 2, 3, &[3, 3], 4);
        let applied: Vec<u64> = ready.applied.iter().map(|(i, _)| *i).collect();
        assert_eq!(applied, [4]);
        assert_eq!(n2.commit_index(), 4);
        assert!(n2.snapshot(4, json!("s")).is_ok());
    }

    /// Entries the service applied that a known-bad leader then overwrote with
    /// entries of its own, so that the log still reaches that far but the commit
    /// index fell back: no snapshot may pass the commit index, or the log would start
    /// after it (found by `arbitrary_peer_messages_never_panic_or_corrupt_the_disk`).
    #[test]
    fn a_snapshot_stops_at_the_commit_index_an_overwrite_took_back() {
        let mut n1 = leader();
        let step = |n1: &mut Raft, from: &str, m: PeerMessage| {
            n1.step(2 * MS, from, m);
            n1.ready()
        };
        n1.propose(json!("p")).unwrap();
        n1.ready();
        let reply = PeerMessage::AppendEntriesReply {
            term: 3,
            success: true,
            match_index: 4,
            rejected: 0,
            conflict_index: 0,
            conflict_term: None,
        };
        assert_eq!(step(&mut n1, "n3", reply).applied.len(), 4);
        for (term, terms) in [(3, &[2][..]), (4, &[1, 1, 1][..])] {
            let append = PeerMessage::AppendEntries {
                term,
                prev_index: 1,
                prev_term: 1,
                entries: entries(terms),
                commit: 0,
            };
            assert!(step(&mut n1, "n3", append).applied.is_empty());
        }
        assert_eq!(n1.last_index(), 4);
        assert!(n1.commit_index() < 4, "committed entries were overwritten");
        assert_eq!(
            n1.snapshot(4, json!("s")),
            Err(SnapshotError {
                index: 4,
                applied: n1.commit_index()
            })
        );
        assert_eq!(n1.log_start(), 0);
        n1.snapshot(n1.commit_index(), json!("s")).unwrap();
        assert_eq!(n1.log_start(), n1.commit_index());
    }

    /// Entries that give the snapshot's last entry another term than the snapshot
    /// does contradict committed state: they are dropped, not stored after it.
    #[test]
    fn entries_that_contradict_the_snapshot_are_dropped() {
        let mut n2 = follower();
        n2.step(
            1,
            "n1",
            PeerMessage::InstallSnapshot {
                term: 3,
                last_index: 1,
                last_term: 3,
                data: json!("s"),
            },
        );
        n2.ready();
        assert_eq!((n2.log_start(), n2.term_at(1)), (1, Some(3)));
        dropped(
            n2,
            PeerMessage::AppendEntries {
                term: 3,
                prev_index: 0,
                prev_term: 0,
                entries: entries(&[1, 1]),
                commit: 0,
            },
        );
    }

    /// Small numbers (the interesting cases of a short log) and extreme ones.
    fn number() -> impl Strategy<Value = u64> {
        prop_oneof![
            8 => 0u64..6,
            1 => prop::sample::select(vec![
                u64::MAX,
                u64::MAX - 1,
                MAX_PEER_NUMBER,
                MAX_PEER_NUMBER + 1,
                u64::MAX / 3,
            ]),
        ]
    }

    /// Terms near the node's own (2 or 3), so that many messages are current, with
    /// 0 and extreme ones now and then.
    fn term() -> impl Strategy<Value = u64> {
        prop_oneof![
            16 => 1u64..5,
            1 => Just(0),
            2 => number(),
        ]
    }

    fn message() -> impl Strategy<Value = PeerMessage> {
        let (n, t) = (number, term);
        prop_oneof![
            1 => (t(), n(), t()).prop_map(|(term, last_log_index, last_log_term)| {
                PeerMessage::RequestVote {
                    term,
                    last_log_index,
                    last_log_term,
                }
            }),
            1 => (t(), any::<bool>())
                .prop_map(|(term, granted)| PeerMessage::RequestVoteReply { term, granted }),
            // The message that changes the log most: more of them.
            4 => (t(), n(), t(), prop::collection::vec(t(), 0..4), n()).prop_map(
                |(term, prev_index, prev_term, terms, commit)| PeerMessage::AppendEntries {
                    term,
                    prev_index,
                    prev_term,
                    entries: entries(&terms),
                    commit,
                }
            ),
            1 => (t(), any::<bool>(), n(), n(), n(), prop::option::of(t())).prop_map(
                |(term, success, match_index, rejected, conflict_index, conflict_term)| {
                    PeerMessage::AppendEntriesReply {
                        term,
                        success,
                        match_index,
                        rejected,
                        conflict_index,
                        conflict_term,
                    }
                }
            ),
            1 => (t(), n(), t()).prop_map(|(term, last_index, last_term)| {
                PeerMessage::InstallSnapshot {
                    term,
                    last_index,
                    last_term,
                    data: json!("s"),
                }
            }),
            1 => (t(), n()).prop_map(|(term, last_index)| PeerMessage::InstallSnapshotReply {
                term,
                last_index
            }),
        ]
    }

    #[derive(Debug, Clone)]
    enum Event {
        Message(bool, PeerMessage),
        Tick,
        Propose,
        Snapshot,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            16 => (any::<bool>(), message()).prop_map(|(n2, m)| Event::Message(n2, m)),
            1 => Just(Event::Tick),
            1 => Just(Event::Propose),
            1 => Just(Event::Snapshot),
        ]
    }

    /// The persisted state a restart would read back is one a correct node could
    /// have: it reconciles, its log's terms never decrease and are no later than the
    /// stored term, and the node's commit index lies within its log.
    fn check(raft: &Raft, disk: &Restored) {
        let (hs, snapshot) = disk.clone().reconcile().expect("the disk reconciles");
        let mut term = hs.log_start_term;
        for entry in &hs.log {
            assert!(entry.term >= term, "terms go backwards: {hs:?}");
            term = entry.term;
        }
        assert!(
            term <= hs.term,
            "an entry of a later term than {}: {hs:?}",
            hs.term
        );
        assert!(hs.log_start <= MAX_PEER_NUMBER, "{hs:?}");
        if let Some(s) = snapshot {
            assert!(
                s.index <= hs.log_start + hs.log.len() as u64,
                "{s:?} {hs:?}"
            );
        }
        assert!(
            raft.log_start() <= raft.commit_index(),
            "commit {} before the log's start {}",
            raft.commit_index(),
            raft.log_start()
        );
        assert!(
            raft.commit_index() <= raft.last_index(),
            "commit {} beyond the last index {}",
            raft.commit_index(),
            raft.last_index()
        );
        // The node's own view is what it asked to persist.
        assert_eq!(hs.log_start, raft.log_start());
        assert_eq!(hs.log, raft.entries());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn arbitrary_peer_messages_never_panic_or_corrupt_the_disk(
            lead in any::<bool>(),
            events in prop::collection::vec(event(), 1..40),
        ) {
            let mut raft = if lead { leader() } else { follower() };
            let mut disk = Restored {
                hard_state: Some(HardState {
                    term: raft.term(),
                    voted_for: raft.voted_for().map(String::from),
                    log: raft.entries().to_vec(),
                    ..HardState::default()
                }),
                snapshot: None,
            };
            let mut applied = raft.commit_index();
            let mut now = 1;
            for event in events {
                now += MS;
                match event {
                    Event::Message(n2, m) => raft.step(now, if n2 { "n2" } else { "n3" }, m),
                    Event::Tick => {
                        now = now.max(raft.next_deadline());
                        raft.tick(now);
                    }
                    Event::Propose => {
                        let _ = raft.propose(json!("p"));
                    }
                    Event::Snapshot => {
                        if applied > raft.log_start() {
                            let result = raft.snapshot(applied, json!("s"));
                            // Refused only when a hostile leader overwrote applied
                            // entries, which takes the commit index back below them.
                            prop_assert_eq!(result.is_ok(), applied <= raft.commit_index());
                        }
                    }
                }
                let ready = raft.ready();
                if let Some(s) = &ready.snapshot {
                    disk.snapshot = Some(s.clone());
                }
                let hs = disk.hard_state.get_or_insert_with(HardState::default);
                if let Some(LogWrite::Append { from, .. }) = &ready.log {
                    prop_assert_eq!(*from, hs.log_start + hs.log.len() as u64 + 1);
                }
                hs.apply(ready.term_vote.as_ref(), ready.log.as_ref());
                if let Some(s) = &ready.apply_snapshot {
                    applied = s.index;
                }
                for (index, _) in &ready.applied {
                    prop_assert_eq!(*index, applied + 1, "applied out of order");
                    applied = *index;
                }
                check(&raft, &disk);
            }
        }
    }
}
