//! The core without threads or sockets: a cluster of `Raft`s on an in-memory network
//! with seeded loss and partitions, and the safety properties checked after every
//! event (one leader per term, log matching, committed entries never change). A
//! service that snapshots every few entries can be switched on.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::core::{Config, Entry, HardState, Raft, Ready, Restored, Role, Snapshot};
use crate::rng::SplitMix;
use crate::wire::PeerMessage;

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
    let names: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
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
