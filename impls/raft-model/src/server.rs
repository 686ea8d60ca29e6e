//! One Raft server as a stateright actor: the reference core, the disk it persists to
//! and the service it applies to, plus ghost state (what the checker remembers about
//! the server's past, which the server itself may have forgotten in a restart).
//!
//! Time is abstract. Every timer is always armed and may fire at any moment, so the
//! checker tries every order of elections, heartbeats, proposals, snapshots and
//! restarts against every order of deliveries. When one fires, the core is ticked at
//! its own deadline; its clock readings and random timeouts are then irrelevant, and
//! two servers that differ only in them are the same state.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use raft::{Bug, Config, Entry, HardState, Raft, Ready, Restored, Role, Snapshot};
use serde_json::Value;
use stateright::actor::{model_timeout, Actor, Id, Out};
use stateright::{Rewrite, RewritePlan};

use crate::wire::Wire;

/// How a server behaves: who its peers are and which variant of the core it runs.
#[derive(Clone, Debug)]
pub struct RaftServer {
    pub members: Vec<String>,
    pub bug: Option<Bug>,
    /// Whether the service compacts the log (and leaders ship InstallSnapshot).
    pub snapshots: bool,
    /// Whether the server can crash and restart from its disk.
    pub restarts: bool,
    pub max_heartbeats: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// A follower's or candidate's election timeout: it campaigns.
    Election,
    /// A leader's heartbeat: it sends AppendEntries to every peer.
    Heartbeat,
    /// A client hands the leader a command (one per leader and term).
    Propose,
    /// The service snapshots everything applied so far.
    Snapshot,
    /// The server crashes and restarts from what is on its disk.
    Restart,
}

/// A server's state.
#[derive(Clone, Debug)]
pub struct Server {
    pub raft: Raft,
    /// What is on the disk: every `Ready`'s writes land here before its messages
    /// leave, as the node does with fsync.
    pub disk: HardState,
    pub disk_snapshot: Option<Snapshot>,
    /// The service's state: the commands applied, in order.
    pub service: Vec<String>,
    pub ghost: Ghost,
}

/// What the checker remembers across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ghost {
    /// The terms in which this server became leader.
    pub led: BTreeSet<u64>,
    /// Every command the service has applied, by index (position + 1), with the term
    /// the server was in when it applied it: the entry was committed in that term
    /// or earlier.
    pub applied: Vec<(String, u64)>,
    /// The first time the service applied something that contradicts what it applied
    /// before (a different command at an index, or a gap).
    pub contradiction: Option<String>,
    pub restarts: u32,
    pub campaigns: u32,
    pub proposals: u32,
    /// Heartbeats sent in the current term: (term, count).
    pub beats: (u64, u32),
    /// Snapshots installed from a leader.
    pub installed: u32,
}

impl Ghost {
    fn record(&mut self, index: u64, command: &str, term: u64) {
        let known = self.applied.len() as u64;
        if index <= known {
            let (before, _) = &self.applied[(index - 1) as usize];
            if before != command && self.contradiction.is_none() {
                self.contradiction = Some(format!(
                    "index {index} applied as {command:?} after {before:?}"
                ));
            }
        } else if index == known + 1 {
            self.applied.push((command.to_string(), term));
        } else if self.contradiction.is_none() {
            self.contradiction = Some(format!("index {index} applied when only {known} had been"));
        }
    }
}

const NAMES: [&str; 9] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"];

/// Server `index`'s name in the core.
pub fn name(index: usize) -> &'static str {
    NAMES[index]
}

fn index_of(name: &str) -> usize {
    name[1..].parse().expect("model servers are named n<index>")
}

fn strings(data: &Value) -> Vec<String> {
    data.as_array()
        .expect("model snapshots are arrays of commands")
        .iter()
        .map(|c| command(c).to_string())
        .collect()
}

impl RaftServer {
    fn config(&self, id: Id) -> Config {
        let mut config = Config::new(name(usize::from(id)), self.members.clone());
        config.bug = self.bug;
        config
    }

    /// The server as it comes back from `disk` (at first, from nothing).
    fn boot(&self, id: Id, disk: HardState, disk_snapshot: Option<Snapshot>) -> Raft {
        let (hard_state, snapshot) = Restored {
            hard_state: Some(disk),
            snapshot: disk_snapshot,
        }
        .reconcile()
        .expect("the model's disk is written in the order reconcile expects");
        Raft::new(
            self.config(id),
            hard_state,
            snapshot,
            usize::from(id) as u64,
            0,
        )
    }

    fn timers(&self) -> Vec<Timer> {
        let mut timers = vec![Timer::Election, Timer::Heartbeat, Timer::Propose];
        if self.snapshots {
            timers.push(Timer::Snapshot);
        }
        if self.restarts {
            timers.push(Timer::Restart);
        }
        timers
    }
}

impl Server {
    /// Does what the core asks, in its order: persist, send, apply.
    fn absorb(&mut self, ready: Ready, o: &mut Out<RaftServer>) {
        if let Some(snapshot) = ready.snapshot {
            self.disk_snapshot = Some(snapshot);
        }
        self.disk
            .apply(ready.term_vote.as_ref(), ready.log.as_ref());
        for (to, message) in ready.messages {
            o.send(Id::from(index_of(&to)), Wire::new(message));
        }
        let term = self.raft.term();
        if let Some(snapshot) = ready.apply_snapshot {
            self.service = strings(&snapshot.data);
            for (k, command) in self.service.iter().enumerate() {
                self.ghost.record(k as u64 + 1, command, term);
            }
            self.ghost.installed += 1;
        }
        for (index, entry) in ready.applied {
            let text = command(&entry.command);
            if index != self.service.len() as u64 + 1 && self.ghost.contradiction.is_none() {
                self.ghost.contradiction = Some(format!(
                    "index {index} applied to a service holding {}",
                    self.service.len()
                ));
            }
            self.service.push(text.to_string());
            self.ghost.record(index, text, term);
        }
        if let Some(term) = ready.became_leader {
            self.ghost.led.insert(term);
        }
    }

    fn peers_progress(&self) -> Vec<Option<(u64, u64)>> {
        let me = self.raft.id();
        self.raft
            .members()
            .iter()
            .filter(|m| m.as_str() != me)
            .map(|m| self.raft.progress(m))
            .collect()
    }

    fn sorted_votes(&self) -> Vec<&str> {
        if self.raft.role() != Role::Candidate {
            return Vec::new();
        }
        let mut votes: Vec<&str> = self.raft.votes().iter().map(String::as_str).collect();
        votes.sort_unstable();
        votes
    }
}

/// Two servers are the same state when they will behave the same from here on: the
/// same protocol state (a leader's progress, a candidate's votes), disk, service and
/// ghost. Timers and the random number generator are left out (see the module doc),
/// and so is state that is reset before it is used again. Equality, hashing and the
/// order (which symmetry reduction sorts servers by) all compare this key.
type Key<'a> = (
    (u64, Option<&'a str>, u8, u64, u64, Option<u64>),
    Vec<(u64, &'a str)>,
    Option<(u64, u64, Vec<&'a str>)>,
    Vec<Option<(u64, u64)>>,
    Vec<&'a str>,
    (u64, Option<&'a str>, u64, u64, Vec<(u64, &'a str)>),
    Option<(u64, u64, Vec<&'a str>)>,
    &'a [String],
    &'a Ghost,
);

impl Server {
    fn key(&self) -> Key<'_> {
        let r = &self.raft;
        let role = match r.role() {
            Role::Follower => 0,
            Role::Candidate => 1,
            Role::Leader => 2,
        };
        let d = &self.disk;
        (
            (
                r.term(),
                r.voted_for(),
                role,
                r.commit_index(),
                r.log_start(),
                r.term_at(r.log_start()),
            ),
            entries(r.entries()),
            r.current_snapshot().map(snapshot_key),
            self.peers_progress(),
            self.sorted_votes(),
            (
                d.term,
                d.voted_for.as_deref(),
                d.log_start,
                d.log_start_term,
                entries(&d.log),
            ),
            self.disk_snapshot.as_ref().map(snapshot_key),
            &self.service,
            &self.ghost,
        )
    }
}

fn command(value: &Value) -> &str {
    value.as_str().expect("model commands are strings")
}

fn entries(log: &[Entry]) -> Vec<(u64, &str)> {
    log.iter().map(|e| (e.term, command(&e.command))).collect()
}

fn snapshot_key(s: &Snapshot) -> (u64, u64, Vec<&str>) {
    let data = s.data.as_array().expect("model snapshots are arrays");
    (s.index, s.term, data.iter().map(command).collect())
}

impl PartialEq for Server {
    fn eq(&self, other: &Server) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Server {}

// Streams the key's parts instead of building it: every state stateright generates is
// hashed, and building the key there made the model check slower (103 s against 93 s).
// Equal keys stream equal parts, so this agrees with `eq`.
impl Hash for Server {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let r = &self.raft;
        (r.term(), r.voted_for(), r.role() as u8, r.commit_index()).hash(h);
        (r.log_start(), r.term_at(r.log_start())).hash(h);
        hash_entries(r.entries(), h);
        hash_snapshot(r.current_snapshot(), h);
        for member in r.members() {
            r.progress(member).hash(h);
        }
        if r.role() == Role::Candidate {
            // Order-independent: the key sorts the votes.
            let mut votes = 0u64;
            for v in r.votes() {
                votes |= 1 << index_of(v);
            }
            votes.hash(h);
        }
        let d = &self.disk;
        (d.term, &d.voted_for, d.log_start, d.log_start_term).hash(h);
        hash_entries(&d.log, h);
        hash_snapshot(self.disk_snapshot.as_ref(), h);
        self.service.hash(h);
        self.ghost.hash(h);
    }
}

fn hash_entries<H: Hasher>(log: &[Entry], h: &mut H) {
    log.len().hash(h);
    for e in log {
        (e.term, command(&e.command)).hash(h);
    }
}

fn hash_snapshot<H: Hasher>(snapshot: Option<&Snapshot>, h: &mut H) {
    snapshot.map(|s| (s.index, s.term)).hash(h);
    if let Some(data) = snapshot.and_then(|s| s.data.as_array()) {
        data.len().hash(h);
        data.iter().for_each(|c| command(c).hash(h));
    }
}

impl PartialOrd for Server {
    fn partial_cmp(&self, other: &Server) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Server {
    fn cmp(&self, other: &Server) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// Renaming servers (symmetry reduction): the names inside the core and on the disk
/// follow the permutation. Commands keep the name of the server that proposed them;
/// they are only ever compared for equality, and a server proposes at most once in
/// a term, so renamed states stay free of collisions.
impl Rewrite<Id> for Server {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Server {
        let rename = |n: &str| name(usize::from(plan.rewrite(&Id::from(index_of(n))))).to_string();
        let mut disk = self.disk.clone();
        disk.voted_for = disk.voted_for.as_deref().map(&rename);
        Server {
            raft: self.raft.renamed(rename),
            disk,
            disk_snapshot: self.disk_snapshot.clone(),
            service: self.service.clone(),
            ghost: self.ghost.clone(),
        }
    }
}

impl Actor for RaftServer {
    type Msg = Wire;
    type Timer = Timer;
    type State = Server;

    fn name(&self) -> String {
        "raft".into()
    }

    fn on_start(&self, id: Id, o: &mut Out<Self>) -> Server {
        for timer in self.timers() {
            o.set_timer(timer, model_timeout());
        }
        Server {
            raft: self.boot(id, HardState::default(), None),
            disk: HardState::default(),
            disk_snapshot: None,
            service: Vec::new(),
            ghost: Ghost::default(),
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<Server>, src: Id, msg: Wire, o: &mut Out<Self>) {
        update(state, |s| {
            s.raft
                .step(0, name(usize::from(src)), (*msg.message).clone());
            let ready = s.raft.ready();
            s.absorb(ready, o);
        });
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<Server>, timer: &Timer, o: &mut Out<Self>) {
        o.set_timer(timer.clone(), model_timeout());
        update(state, |s| {
            match timer {
                Timer::Election if !s.raft.is_leader() => {
                    s.ghost.campaigns += 1;
                    s.raft.tick(s.raft.next_deadline())
                }
                Timer::Heartbeat if s.raft.is_leader() => {
                    let term = s.raft.term();
                    if s.ghost.beats.0 != term {
                        s.ghost.beats = (term, 0);
                    }
                    if s.ghost.beats.1 < self.max_heartbeats {
                        s.ghost.beats.1 += 1;
                        s.raft.tick(s.raft.next_deadline())
                    }
                }
                Timer::Propose if s.raft.is_leader() => {
                    let term = s.raft.term();
                    if s.raft.term_at(s.raft.last_index()) != Some(term) {
                        s.ghost.proposals += 1;
                        let command = format!("{}.{term}", s.raft.id());
                        s.raft
                            .propose(Value::String(command))
                            .expect("a leader accepts a command");
                    }
                }
                Timer::Snapshot => {
                    let applied = s.service.len() as u64;
                    if applied > s.raft.log_start() {
                        let data = s.service.iter().cloned().map(Value::String).collect();
                        s.raft
                            .snapshot(applied, Value::Array(data))
                            .expect("the service snapshots only what it applied");
                    }
                }
                Timer::Restart => {
                    s.raft = self.boot(id, s.disk.clone(), s.disk_snapshot.clone());
                    s.service = s
                        .disk_snapshot
                        .as_ref()
                        .map(|snapshot| strings(&snapshot.data))
                        .unwrap_or_default();
                    s.ghost.restarts += 1;
                }
                _ => {}
            }
            let ready = s.raft.ready();
            s.absorb(ready, o);
        });
    }
}

/// Runs `event` on a copy and keeps it only if the state changed, so stateright sees
/// an unchanged state as one (and prunes events that do nothing).
fn update(state: &mut Cow<Server>, event: impl FnOnce(&mut Server)) {
    let mut next = (**state).clone();
    event(&mut next);
    if next != **state {
        *state = Cow::Owned(next);
    }
}
