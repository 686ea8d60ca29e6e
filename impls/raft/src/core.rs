//! The Raft protocol as a pure state machine (Ongaro & Ousterhout, Figure 2, and
//! log compaction from section 7 of the extended paper).
//!
//! The caller feeds events: [`Raft::tick`] when [`Raft::next_deadline`] has come,
//! [`Raft::step`] for each peer message, [`Raft::propose`] for each command and
//! [`Raft::snapshot`] when the service has a snapshot. After any of them it takes a
//! [`Ready`] and must, in this order: persist `snapshot`, `term_vote` and `log`
//! (those present) durably, then send `messages`, then hand `apply_snapshot` and
//! `applied` to the service. Sending before the persist would let a vote or an
//! acknowledged entry be forgotten by a crash.
//!
//! Persisting is incremental: the log is usually extended (`LogWrite::Append`) and
//! rewritten only when entries the caller already stored are cut or compacted away,
//! so a step costs what it changed, not the whole log.
//!
//! Leaders pipeline: `next_index` moves past entries as soon as they are sent, and a
//! rejection backs it up by a whole term at a time using the follower's hint (the
//! "fast back-up" of the extended paper, section 5.3). A
//! follower that needs entries the leader has compacted away gets the snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bug::{self, Bug};
use crate::wire::PeerMessage;
use node::rng::SplitMix;

/// The largest term or index a peer's message may hold: 2^63 - 1, which no cluster
/// gets near. Below it the core's arithmetic on peer-supplied numbers (`index + 1`,
/// `prev_index` plus the entries sent, a term plus one for the next campaign) cannot
/// overflow; a message beyond it can only come from a corrupt or hostile peer.
pub const MAX_PEER_NUMBER: u64 = u64::MAX / 2;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    pub command: Value,
}

/// The service's state up to and including entry `index` (of term `term`), which
/// replaces the log up to there. `data` is the service's own; Raft only stores and
/// ships it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub index: u64,
    pub term: u64,
    pub data: Value,
}

/// The current term and the vote in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TermVote {
    pub term: u64,
    pub voted_for: Option<String>,
}

/// A change to the persisted log.
#[derive(Debug, Clone, PartialEq)]
pub enum LogWrite {
    /// Store `entries` from index `from`, right after the last one stored.
    Append { from: u64, entries: Vec<Entry> },
    /// Replace the stored log: it now starts after entry `start` (of `start_term`)
    /// with `entries`.
    Rewrite {
        start: u64,
        start_term: u64,
        entries: Vec<Entry>,
    },
}

/// What must survive a crash besides the snapshot: the current term, the vote in it,
/// and the log after the snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<String>,
    /// Index and term of the entry just before `log`: the last one a snapshot covers,
    /// or (0, 0) when nothing was compacted.
    pub log_start: u64,
    pub log_start_term: u64,
    /// Entries from index `log_start + 1`.
    pub log: Vec<Entry>,
}

impl HardState {
    /// Applies a `Ready`'s writes to this copy, as a disk would: for callers that keep
    /// the persisted state in memory (tests, model checkers).
    pub fn apply(&mut self, term_vote: Option<&TermVote>, log: Option<&LogWrite>) {
        if let Some(tv) = term_vote {
            self.term = tv.term;
            self.voted_for = tv.voted_for.clone();
        }
        match log {
            Some(LogWrite::Append { from, entries }) => {
                assert_eq!(
                    *from,
                    self.log_start + self.log.len() as u64 + 1,
                    "appends follow the stored log"
                );
                self.log.extend(entries.iter().cloned());
            }
            Some(LogWrite::Rewrite {
                start,
                start_term,
                entries,
            }) => {
                self.log_start = *start;
                self.log_start_term = *start_term;
                self.log = entries.clone();
            }
            None => {}
        }
    }
}

/// What a restarting node read back from its disk.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
}

impl Restored {
    /// Makes the two files agree. The snapshot is always written before the hard state
    /// that compacts the log up to it, so a crash between the two leaves a snapshot
    /// newer than the log's start: the log keeps what follows the snapshot if it holds
    /// the snapshot's last entry, and is dropped otherwise (the snapshot is committed
    /// state; entries that disagree with it are not). A log that starts after the
    /// snapshot means a file was lost, and starting anyway would forget entries.
    pub fn reconcile(self) -> Result<(HardState, Option<Snapshot>), String> {
        let mut hs = self.hard_state.unwrap_or_default();
        let (s_index, s_term) = self.snapshot.as_ref().map_or((0, 0), |s| (s.index, s.term));
        if hs.log_start > s_index {
            return Err(format!(
                "the log starts after entry {} but the snapshot covers only up to {s_index}",
                hs.log_start
            ));
        }
        if hs.log_start < s_index {
            let last = hs.log_start + hs.log.len() as u64;
            // `log_start < s_index` here, so the snapshot's last entry, if held, is
            // one of the log's.
            let term_at_snapshot =
                (s_index <= last).then(|| hs.log[(s_index - hs.log_start - 1) as usize].term);
            if term_at_snapshot == Some(s_term) {
                hs.log.drain(..(s_index - hs.log_start) as usize);
            } else {
                hs.log.clear();
            }
            hs.log_start = s_index;
            hs.log_start_term = s_term;
        } else if hs.log_start == s_index && hs.log_start_term != s_term {
            return Err(format!(
                "the log starts after entry {s_index} of term {} but the snapshot says term {s_term}",
                hs.log_start_term
            ));
        }
        Ok((hs, self.snapshot))
    }
}

/// Timing and batching, in nanoseconds of the caller's clock.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: String,
    /// Every member, this node included.
    pub members: Vec<String>,
    pub election_min: u64,
    pub election_max: u64,
    pub heartbeat: u64,
    /// Most entries in one AppendEntries.
    pub max_batch: usize,
    /// A known-bad variant, for proving the suite rejects it.
    pub bug: Option<Bug>,
    /// The caller may send a leader's AppendEntries before the leader's own log
    /// write of the same `ready` is durable, and fsync in parallel with the
    /// followers (Raft thesis 10.2.1); it then calls [`Raft::log_durable`] once the
    /// write is on disk, and the leader counts itself toward a commit only up to
    /// there. Off, every `ready`'s writes count as durable when `ready` returns (the
    /// caller makes them durable before anything else happens).
    pub leader_sends_before_durable: bool,
}

impl Config {
    /// Timeouts suited to 6.5840's tests: at most ten heartbeats a second, and an
    /// election well within the tests' 5 s bound even after a few split votes.
    pub fn new(id: impl Into<String>, members: Vec<String>) -> Config {
        Config {
            id: id.into(),
            members,
            election_min: 300_000_000,
            election_max: 600_000_000,
            heartbeat: 100_000_000,
            max_batch: 128,
            bug: None,
            leader_sends_before_durable: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// What the caller must do after an event, in field order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ready {
    /// Persist this first (it replaces the previous snapshot).
    pub snapshot: Option<Snapshot>,
    /// Then these, before sending anything.
    pub term_vote: Option<TermVote>,
    pub log: Option<LogWrite>,
    pub messages: Vec<(String, PeerMessage)>,
    /// A snapshot from the leader that replaces the service's state: hand it over
    /// before `applied`, which continues after it.
    pub apply_snapshot: Option<Snapshot>,
    /// Newly committed entries, in index order, as (index, entry).
    pub applied: Vec<(u64, Entry)>,
    /// Set when this node became leader of this term during the event.
    pub became_leader: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Raft {
    config: Config,
    peers: Vec<String>,
    term: u64,
    voted_for: Option<String>,
    /// `log[0]` stands for entry `offset` (the last one compacted, or the sentinel of
    /// index 0 and term 0): only its term is kept. `log[k]` is entry `offset + k`.
    log: Vec<Entry>,
    offset: u64,
    snapshot: Option<Snapshot>,
    commit: u64,
    applied: u64,
    role: Role,
    leader: Option<String>,
    votes: Vec<String>,
    next_index: BTreeMap<String, u64>,
    match_index: BTreeMap<String, u64>,
    election_deadline: u64,
    heartbeat_due: u64,
    rng: SplitMix,
    /// Term or vote changed since the last `ready`.
    term_vote_dirty: bool,
    /// Entries the caller already stored were cut or compacted since the last `ready`.
    log_rewrite: bool,
    /// The last index the caller has been told to store.
    persisted_last: u64,
    /// The last index the caller has stored durably, as far as the core knows: a
    /// leader counts itself toward a commit only up to here.
    durable_last: u64,
    ready: Ready,
}

/// Why [`Raft::snapshot`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    pub index: u64,
    /// The last entry that the service applied and that is still committed (less
    /// than what it applied only after a known-bad leader overwrote committed entries).
    pub applied: u64,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot snapshot up to index {}: only {} entries were applied",
            self.index, self.applied
        )
    }
}

impl Raft {
    /// A node starting at `now` from what a previous run persisted (already
    /// reconciled, see [`Restored::reconcile`]), or from nothing.
    pub fn new(
        config: Config,
        hard_state: HardState,
        snapshot: Option<Snapshot>,
        seed: u64,
        now: u64,
    ) -> Raft {
        let mut log = vec![Entry {
            term: hard_state.log_start_term,
            command: Value::Null,
        }];
        log.extend(hard_state.log);
        let peers = config
            .members
            .iter()
            .filter(|m| **m != config.id)
            .cloned()
            .collect();
        let offset = hard_state.log_start;
        let persisted_last = offset + log.len() as u64 - 1;
        let mut raft = Raft {
            peers,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            log,
            offset,
            snapshot,
            // The snapshot is committed state the service restarts from.
            commit: offset,
            applied: offset,
            role: Role::Follower,
            leader: None,
            votes: Vec::new(),
            next_index: BTreeMap::new(),
            match_index: BTreeMap::new(),
            election_deadline: 0,
            heartbeat_due: u64::MAX,
            rng: SplitMix::new(seed),
            term_vote_dirty: false,
            log_rewrite: false,
            persisted_last,
            durable_last: persisted_last,
            ready: Ready::default(),
            config,
        };
        raft.reset_election_timer(now);
        raft
    }

    /// A node with nothing persisted.
    pub fn fresh(config: Config, seed: u64, now: u64) -> Raft {
        Raft::new(config, HardState::default(), None, seed, now)
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Every member of the cluster, this node included.
    pub fn members(&self) -> &[String] {
        &self.config.members
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    pub fn last_index(&self) -> u64 {
        self.offset + self.log.len() as u64 - 1
    }

    /// The last index the snapshot covers (0 without one); the log holds what follows.
    pub fn log_start(&self) -> u64 {
        self.offset
    }

    /// The entries after the snapshot, from index `log_start() + 1`.
    pub fn entries(&self) -> &[Entry] {
        &self.log[1..]
    }

    /// Entry `index`, if it is in the log (not compacted, not beyond its end).
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        (index > self.offset && index <= self.last_index())
            .then(|| &self.log[(index - self.offset) as usize])
    }

    /// The term of entry `index`, if this node still knows it.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        (index >= self.offset && index <= self.last_index())
            .then(|| self.log[(index - self.offset) as usize].term)
    }

    pub fn current_snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub fn voted_for(&self) -> Option<&str> {
        self.voted_for.as_deref()
    }

    /// The voters a candidate has counted in this term (only meaningful while it is
    /// a candidate: the next campaign starts over).
    pub fn votes(&self) -> &[String] {
        &self.votes
    }

    /// A leader's `(next_index, match_index)` for `peer`; `None` for a node that is
    /// not leader (what it kept from an earlier term is reset when it leads again).
    pub fn progress(&self, peer: &str) -> Option<(u64, u64)> {
        if self.role != Role::Leader {
            return None;
        }
        Some((*self.next_index.get(peer)?, *self.match_index.get(peer)?))
    }

    /// This node with every member renamed by `rename` (a permutation of the
    /// members): for model checkers that treat clusters equal up to renaming servers
    /// as one state.
    pub fn renamed(&self, rename: impl Fn(&str) -> String) -> Raft {
        let names = |v: &[String]| {
            let mut v: Vec<String> = v.iter().map(|m| rename(m)).collect();
            v.sort();
            v
        };
        let keys = |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| (rename(k), *v)).collect();
        assert!(
            self.ready == Ready::default(),
            "renamed between events, with no Ready pending"
        );
        let mut raft = self.clone();
        raft.config.id = rename(&self.config.id);
        raft.config.members = names(&self.config.members);
        raft.peers = names(&self.peers);
        raft.voted_for = self.voted_for.as_deref().map(&rename);
        raft.leader = self.leader.as_deref().map(&rename);
        raft.votes = names(&self.votes);
        raft.next_index = keys(&self.next_index);
        raft.match_index = keys(&self.match_index);
        raft
    }

    /// Restarts the timers from `now` (a node built before it knew the time).
    pub fn restart_timers(&mut self, now: u64) {
        self.reset_election_timer(now);
    }

    /// When the caller must call [`Raft::tick`] next.
    pub fn next_deadline(&self) -> u64 {
        match self.role {
            Role::Leader => self.heartbeat_due,
            _ => self.election_deadline,
        }
    }

    /// Takes what the caller must persist, send and apply.
    pub fn ready(&mut self) -> Ready {
        let mut ready = std::mem::take(&mut self.ready);
        if self.term_vote_dirty {
            self.term_vote_dirty = false;
            let forget = self.config.bug == Some(Bug::ForgetVote);
            ready.term_vote = Some(TermVote {
                term: self.term,
                voted_for: if forget { None } else { self.voted_for.clone() },
            });
        }
        if self.log_rewrite {
            self.log_rewrite = false;
            ready.log = Some(LogWrite::Rewrite {
                start: self.offset,
                start_term: self.log[0].term,
                entries: self.log[1..].to_vec(),
            });
        } else if self.last_index() > self.persisted_last {
            let from = self.persisted_last + 1;
            ready.log = Some(LogWrite::Append {
                from,
                entries: self.log[(from - self.offset) as usize..].to_vec(),
            });
        }
        self.persisted_last = self.last_index();
        if !self.config.leader_sends_before_durable {
            self.advance_durable(self.persisted_last);
        }
        if self.commit > self.applied {
            ready.applied = (self.applied + 1..=self.commit)
                .map(|i| (i, self.log[(i - self.offset) as usize].clone()))
                .collect();
            self.applied = self.commit;
        }
        ready
    }

    /// Time has reached `now`: start an election or send heartbeats if due.
    pub fn tick(&mut self, now: u64) {
        match self.role {
            Role::Leader => {
                if now >= self.heartbeat_due {
                    self.broadcast_append(now);
                }
            }
            _ => {
                if now >= self.election_deadline {
                    self.campaign(now);
                }
            }
        }
    }

    /// Appends `command` if this node is leader: `Ok((index, term))`, else
    /// `Err(term)`. Appending is no promise that it commits.
    pub fn propose(&mut self, command: Value) -> Result<(u64, u64), u64> {
        if self.role != Role::Leader {
            return Err(self.term);
        }
        self.log.push(Entry {
            term: self.term,
            command,
        });
        let index = self.last_index();
        if self.config.bug == Some(Bug::ReplicateOnHeartbeat) {
            return Ok((index, self.term));
        }
        // The leader's own copy counts toward a commit only once it is durable
        // (`advance_durable`), not here.
        for peer in self.peers.clone() {
            // Only peers that are caught up get the new entry now; the others are
            // being repaired and get it with their next batch.
            if self.next_index[&peer] == index {
                self.send_append(&peer);
            }
        }
        Ok((index, self.term))
    }

    /// The caller's log writes through entry `index` (as handed out by `ready`) are
    /// durable. Only needed with [`Config::leader_sends_before_durable`]; a leader
    /// may now count its own copy toward a commit, so a `ready` may follow with
    /// entries to apply.
    pub fn log_durable(&mut self, index: u64) {
        self.advance_durable(index);
    }

    /// The service's state through entry `index` is `data`: compact the log up to
    /// there. A snapshot no newer than the current one is ignored; one of entries not
    /// yet applied is refused.
    pub fn snapshot(&mut self, index: u64, data: Value) -> Result<(), SnapshotError> {
        if index <= self.offset {
            return Ok(());
        }
        if index > self.applied {
            return Err(SnapshotError {
                index,
                applied: self.applied,
            });
        }
        // Applied entries are committed unless a known-bad leader overwrote committed
        // ones: the commit index then fell back below what the service applied (see
        // `on_append`), and a snapshot past it would start the log after the commit
        // index. So the snapshot may reach only what is still committed.
        if index > self.commit {
            return Err(SnapshotError {
                index,
                applied: self.commit,
            });
        }
        let term = self
            .term_at(index)
            .expect("a committed entry after the snapshot is in the log");
        self.compact(index, term);
        let snapshot = Snapshot { index, term, data };
        self.snapshot = Some(snapshot.clone());
        self.ready.snapshot = Some(snapshot);
        Ok(())
    }

    /// A message from peer `from`. One that no correct peer could send (see
    /// [`Raft::check_peer_message`]) is dropped, as if lost, and logged.
    pub fn step(&mut self, now: u64, from: &str, message: PeerMessage) {
        if !self.peers.iter().any(|p| p == from) {
            return;
        }
        if let Err(why) = self.check_peer_message(&message) {
            eprintln!("{}: dropping a message from {from}: {why}", self.config.id);
            return;
        }
        let term = message.term();
        if term > self.term {
            self.become_follower(now, term, None);
        }
        match message {
            PeerMessage::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => self.on_request_vote(now, from, term, last_log_index, last_log_term),
            PeerMessage::RequestVoteReply { term, granted } => {
                if term == self.term && granted && self.role == Role::Candidate {
                    if !self.votes.iter().any(|v| v == from) {
                        self.votes.push(from.to_string());
                    }
                    if self.votes.len() >= self.quorum() {
                        self.become_leader(now);
                    }
                }
            }
            PeerMessage::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.on_append(now, from, term, prev_index, prev_term, entries, commit),
            PeerMessage::AppendEntriesReply {
                term,
                success,
                match_index,
                rejected,
                conflict_index,
                conflict_term,
            } => {
                if term != self.term || self.role != Role::Leader {
                    return;
                }
                if success {
                    self.on_match(from, match_index);
                } else {
                    self.back_up(from, rejected, conflict_index, conflict_term);
                }
            }
            PeerMessage::InstallSnapshot {
                term,
                last_index,
                last_term,
                data,
            } => self.on_install_snapshot(now, from, term, last_index, last_term, data),
            PeerMessage::InstallSnapshotReply { term, last_index } => {
                if term == self.term && self.role == Role::Leader {
                    self.on_match(from, last_index);
                }
            }
        }
    }

    /// Why `message` cannot come from a correct peer, if it cannot: a term or index
    /// beyond [`MAX_PEER_NUMBER`] (all arithmetic on peer numbers relies on that
    /// bound), a term later than the message's own, entry 0 with a term or another
    /// entry without one, log terms that go backwards, or a leader's peer that claims
    /// more of the leader's log, in the leader's term, than the leader has. Every
    /// message our nodes send passes.
    pub fn check_peer_message(&self, message: &PeerMessage) -> Result<(), String> {
        let term = message.term();
        let at_most = |what: &str, value: u64, limit: u64| {
            if value <= limit {
                Ok(())
            } else {
                Err(format!("{what} {value} is beyond {limit}"))
            }
        };
        // (index, term) of an entry: entry 0, and only it, has term 0.
        let entry = |what: &str, index: u64, entry_term: u64| {
            at_most(&format!("{what} index"), index, MAX_PEER_NUMBER)?;
            at_most(&format!("{what} term"), entry_term, term)?;
            if (index == 0) != (entry_term == 0) {
                return Err(format!("{what} is entry {index} of term {entry_term}"));
            }
            Ok(())
        };
        // In its own term a leader's log only grows, so no peer can have been sent,
        // or store, more of it than it has now.
        let ours = term == self.term && self.role == Role::Leader;
        let of_our_log = |what: &str, index: u64| {
            at_most(what, index, MAX_PEER_NUMBER)?;
            if ours {
                at_most(&format!("{what} (of our log)"), index, self.last_index())?;
            }
            Ok(())
        };
        at_most("term", term, MAX_PEER_NUMBER)?;
        match message {
            PeerMessage::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => entry("last log entry", *last_log_index, *last_log_term),
            PeerMessage::RequestVoteReply { .. } => Ok(()),
            PeerMessage::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => {
                entry("previous entry", *prev_index, *prev_term)?;
                at_most("commit", *commit, MAX_PEER_NUMBER)?;
                let last = prev_index
                    .checked_add(entries.len() as u64)
                    .filter(|&last| last <= MAX_PEER_NUMBER)
                    .ok_or_else(|| {
                        format!(
                            "{} entries after {prev_index} pass the limit",
                            entries.len()
                        )
                    })?;
                // Entries up to our snapshot are committed, so a leader of our term or
                // a later one has them: one that gives the snapshot's last entry
                // another term contradicts committed state, and the entries after it
                // cannot follow ours. (A stale leader's may differ; it is refused by
                // its term.)
                if term >= self.term && *prev_index < self.offset && last > self.offset {
                    let at_offset = &entries[(self.offset - prev_index - 1) as usize];
                    if at_offset.term != self.log[0].term {
                        return Err(format!(
                            "entry {} is of term {}, our snapshot's of term {}",
                            self.offset, at_offset.term, self.log[0].term
                        ));
                    }
                }
                let mut before = *prev_term;
                for (k, e) in entries.iter().enumerate() {
                    entry("an entry", prev_index + 1 + k as u64, e.term)?;
                    if e.term < before {
                        return Err(format!(
                            "entry {} has term {} after one of term {before}",
                            prev_index + 1 + k as u64,
                            e.term
                        ));
                    }
                    before = e.term;
                }
                debug_assert!(last <= MAX_PEER_NUMBER);
                Ok(())
            }
            PeerMessage::AppendEntriesReply {
                success,
                match_index,
                rejected,
                conflict_index,
                conflict_term,
                ..
            } => {
                if let Some(t) = conflict_term {
                    at_most("conflict term", *t, term)?;
                }
                if *success {
                    of_our_log("match index", *match_index)
                } else {
                    of_our_log("rejected index", *rejected)?;
                    // The follower's hint is at most the index it rejected.
                    at_most("conflict index", *conflict_index, *rejected)
                }
            }
            PeerMessage::InstallSnapshot {
                last_index,
                last_term,
                ..
            } => {
                if *last_index == 0 {
                    return Err("a snapshot of nothing".into());
                }
                entry("snapshot's last entry", *last_index, *last_term)
            }
            PeerMessage::InstallSnapshotReply { last_index, .. } => {
                of_our_log("snapshot index", *last_index)
            }
        }
    }

    fn quorum(&self) -> usize {
        self.config.members.len() / 2 + 1
    }

    fn last_term(&self) -> u64 {
        self.log.last().expect("log[0] is always there").term
    }

    /// Drops the entries up to `index` (of `term`), keeping what follows.
    fn compact(&mut self, index: u64, term: u64) {
        if index <= self.last_index() {
            self.log.drain(1..=(index - self.offset) as usize);
        } else {
            self.log.truncate(1);
        }
        self.log[0] = Entry {
            term,
            command: Value::Null,
        };
        self.offset = index;
        self.log_rewrite = true;
    }

    fn reset_election_timer(&mut self, now: u64) {
        self.election_deadline = now
            + self
                .rng
                .range(self.config.election_min, self.config.election_max);
    }

    fn become_follower(&mut self, now: u64, term: u64, leader: Option<String>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.term_vote_dirty = true;
        }
        if self.role != Role::Follower {
            self.role = Role::Follower;
            self.reset_election_timer(now);
        }
        self.leader = leader;
    }

    fn campaign(&mut self, now: u64) {
        self.term += 1;
        self.role = Role::Candidate;
        self.voted_for = Some(self.config.id.clone());
        self.leader = None;
        self.term_vote_dirty = true;
        self.votes = vec![self.config.id.clone()];
        self.reset_election_timer(now);
        if self.votes.len() >= self.quorum() {
            self.become_leader(now);
            return;
        }
        let message = PeerMessage::RequestVote {
            term: self.term,
            last_log_index: self.last_index(),
            last_log_term: self.last_term(),
        };
        for peer in &self.peers {
            self.ready.messages.push((peer.clone(), message.clone()));
        }
    }

    fn become_leader(&mut self, now: u64) {
        self.role = Role::Leader;
        self.leader = Some(self.config.id.clone());
        let next = self.last_index() + 1;
        self.next_index = self.peers.iter().map(|p| (p.clone(), next)).collect();
        self.match_index = self.peers.iter().map(|p| (p.clone(), 0)).collect();
        self.match_index.insert(
            self.config.id.clone(),
            self.durable_last.min(self.last_index()),
        );
        self.ready.became_leader = Some(self.term);
        self.broadcast_append(now);
        // A single-node cluster commits on its own.
        self.maybe_commit();
    }

    fn on_request_vote(
        &mut self,
        now: u64,
        from: &str,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    ) {
        let up_to_date = (last_log_term, last_log_index) >= (self.last_term(), self.last_index());
        let free = self.voted_for.as_deref().is_none_or(|v| v == from);
        let granted = term == self.term && free && up_to_date && self.role == Role::Follower;
        if granted {
            if self.voted_for.is_none() {
                self.voted_for = Some(from.to_string());
                self.term_vote_dirty = true;
            }
            self.reset_election_timer(now);
        }
        self.ready.messages.push((
            from.to_string(),
            PeerMessage::RequestVoteReply {
                term: self.term,
                granted,
            },
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &mut self,
        now: u64,
        from: &str,
        term: u64,
        mut prev_index: u64,
        mut prev_term: u64,
        mut entries: Vec<Entry>,
        commit: u64,
    ) {
        let rejected = prev_index;
        let reply = |raft: &mut Raft, success, match_index, conflict_index, conflict_term| {
            raft.ready.messages.push((
                from.to_string(),
                PeerMessage::AppendEntriesReply {
                    term: raft.term,
                    success,
                    match_index,
                    rejected,
                    conflict_index,
                    conflict_term,
                },
            ));
        };
        if term < self.term {
            reply(self, false, 0, 0, None);
            return;
        }
        // A leader of our term exists: a candidate gives up, everyone waits for it.
        self.become_follower(now, term, Some(from.to_string()));
        self.reset_election_timer(now);
        if prev_index < self.offset {
            // Entries up to the snapshot are committed, so they match the leader's:
            // skip them and check the rest against the snapshot's last entry.
            let covered = if self.config.bug == Some(Bug::StaleAppendMisplaced) {
                bug::misplaced_cover(self.offset, prev_index)
            } else {
                self.offset - prev_index
            };
            let covered = covered.min(entries.len() as u64);
            entries.drain(..covered as usize);
            if entries.is_empty() {
                let matched = if self.config.bug == Some(Bug::StaleAppendOverclaimed) {
                    bug::overclaimed_match(self.offset, covered)
                } else {
                    prev_index + covered
                };
                reply(self, true, matched, 0, None);
                return;
            }
            // The entry at the snapshot's index agrees with it (check_peer_message).
            prev_index = self.offset;
            prev_term = self.log[0].term;
        }
        if prev_index > self.last_index() {
            let hint = self.last_index() + 1;
            reply(self, false, 0, hint, None);
            return;
        }
        let have = self.log[(prev_index - self.offset) as usize].term;
        if have != prev_term {
            let first = (self.offset + 1..=prev_index)
                .rev()
                .take_while(|&i| self.log[(i - self.offset) as usize].term == have)
                .last()
                .unwrap_or(prev_index);
            reply(self, false, 0, first, Some(have));
            return;
        }
        let last_new = prev_index + entries.len() as u64;
        for (k, entry) in entries.into_iter().enumerate() {
            let index = prev_index + 1 + k as u64;
            let pos = (index - self.offset) as usize;
            if pos < self.log.len() {
                if self.log[pos].term == entry.term {
                    continue;
                }
                // Only a conflict truncates: a stale, shorter message must not cut
                // entries a newer one already added.
                if index <= self.commit {
                    // Impossible with a correct leader; a peer with a known-bad
                    // variant can cause it. Follow the leader (a node must never die
                    // of what it is sent) and say so.
                    eprintln!(
                        "{}: leader {from} overwrites committed entry {index}",
                        self.config.id
                    );
                }
                self.cut_after(index - 1);
            }
            self.log.push(entry);
        }
        if self.config.bug == Some(Bug::TruncateOnAppend) {
            self.cut_after(last_new);
        }
        if self.commit > self.last_index() {
            // Committed entries were cut (the overwrite above), so the commit index
            // would point past the log. `applied` stays: the service did apply them,
            // and applies nothing again (a service comparing what nodes applied sees
            // the leader's damage).
            self.commit = self.last_index();
        }
        self.commit = self.commit.max(commit.min(last_new));
        reply(self, true, last_new, 0, None);
    }

    /// Drops the entries after `last`: what is cut is no longer durable, and a log
    /// file that holds any of it must be rewritten.
    fn cut_after(&mut self, last: u64) {
        if self.last_index() > last {
            self.log.truncate((last - self.offset + 1) as usize);
            self.durable_last = self.durable_last.min(last);
            if last < self.persisted_last {
                self.log_rewrite = true;
            }
        }
    }

    fn on_install_snapshot(
        &mut self,
        now: u64,
        from: &str,
        term: u64,
        last_index: u64,
        last_term: u64,
        data: Value,
    ) {
        if term < self.term && self.config.bug != Some(Bug::OldTermSnapshot) {
            self.ready.messages.push((
                from.to_string(),
                PeerMessage::InstallSnapshotReply {
                    term: self.term,
                    last_index: 0,
                },
            ));
            return;
        }
        self.become_follower(now, term, Some(from.to_string()));
        self.reset_election_timer(now);
        // What is committed here already covers an older snapshot: nothing to do.
        if last_index > self.commit {
            // Entries after the snapshot survive if the log agrees at its last entry.
            if self.term_at(last_index) == Some(last_term) {
                self.compact(last_index, last_term);
            } else {
                self.log.truncate(1);
                self.durable_last = self.durable_last.min(self.offset);
                self.log[0] = Entry {
                    term: last_term,
                    command: Value::Null,
                };
                self.offset = last_index;
                self.log_rewrite = true;
            }
            self.commit = last_index;
            self.applied = last_index;
            let snapshot = Snapshot {
                index: last_index,
                term: last_term,
                data,
            };
            self.snapshot = Some(snapshot.clone());
            self.ready.snapshot = Some(snapshot.clone());
            self.ready.apply_snapshot = Some(snapshot);
        }
        self.ready.messages.push((
            from.to_string(),
            PeerMessage::InstallSnapshotReply {
                term: self.term,
                last_index,
            },
        ));
    }

    /// `peer` stores our log up to `index`.
    fn on_match(&mut self, peer: &str, index: u64) {
        let m = self.match_index.get_mut(peer).expect("a peer");
        *m = (*m).max(index);
        let n = self.next_index.get_mut(peer).expect("a peer");
        *n = (*n).max(index + 1);
        self.maybe_commit();
        if self.next_index[peer] <= self.last_index() {
            self.send_append(peer);
        }
    }

    fn back_up(
        &mut self,
        from: &str,
        rejected: u64,
        conflict_index: u64,
        conflict_term: Option<u64>,
    ) {
        let next = if self.config.bug == Some(Bug::OneStepBackup) {
            rejected
        } else {
            let hint = match conflict_term {
                // If we have entries of the follower's conflicting term, the logs may
                // agree up to our last one of them; otherwise skip the whole term.
                Some(t) => match (self.offset + 1..=self.last_index())
                    .rev()
                    .find(|&i| self.log[(i - self.offset) as usize].term == t)
                {
                    Some(i) => i + 1,
                    None => conflict_index,
                },
                None => conflict_index,
            };
            hint.min(rejected)
        };
        // Not floored at `match_index`: a follower that lost its disk (amnesia) has
        // less than we last heard, and must be repaired from what it says it has. A
        // stale rejection overtaken by an acknowledgement costs a resend, no more.
        let next = next.max(1);
        let current = self.next_index[from];
        if next < current {
            self.next_index.insert(from.to_string(), next);
            self.send_append(from);
        }
    }

    fn broadcast_append(&mut self, now: u64) {
        for peer in self.peers.clone() {
            self.send_append(&peer);
        }
        self.heartbeat_due = now + self.config.heartbeat;
    }

    /// Sends `peer` everything from its `next_index` (up to a batch) and moves
    /// `next_index` past it: pipelining, repaired by rejections. A peer that needs
    /// compacted entries gets the snapshot instead.
    fn send_append(&mut self, peer: &str) {
        let next = self.next_index[peer].clamp(1, self.last_index() + 1);
        if next <= self.offset {
            let snapshot = self.snapshot.as_ref().expect("a compacted log has one");
            let message = PeerMessage::InstallSnapshot {
                term: self.term,
                last_index: snapshot.index,
                last_term: snapshot.term,
                data: snapshot.data.clone(),
            };
            self.next_index.insert(peer.to_string(), self.offset + 1);
            self.ready.messages.push((peer.to_string(), message));
            return;
        }
        let prev_index = next - 1;
        let end = (self.last_index() + 1).min(next + self.config.max_batch as u64);
        let from = (next - self.offset) as usize;
        let to = (end - self.offset) as usize;
        let entries = self.log[from..to].to_vec();
        self.next_index.insert(peer.to_string(), end);
        self.ready.messages.push((
            peer.to_string(),
            PeerMessage::AppendEntries {
                term: self.term,
                prev_index,
                prev_term: self.log[(prev_index - self.offset) as usize].term,
                entries,
                commit: self.commit,
            },
        ));
    }

    /// Figure 8: an index commits when a majority stores it *and* it is of the
    /// current term; earlier entries commit with it, never by counting alone.
    fn advance_durable(&mut self, index: u64) {
        self.durable_last = self.durable_last.max(index.min(self.persisted_last));
        if self.role == Role::Leader {
            let own = self.durable_last.min(self.last_index());
            let m = self.match_index.entry(self.config.id.clone()).or_insert(0);
            *m = (*m).max(own);
            self.maybe_commit();
        }
    }

    fn maybe_commit(&mut self) {
        let mut matched: Vec<u64> = self
            .config
            .members
            .iter()
            .map(|m| self.match_index.get(m).copied().unwrap_or(0))
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let n = matched[self.quorum() - 1];
        let counting = self.config.bug == Some(Bug::CountCommit);
        if n > self.commit && (counting || self.term_at(n) == Some(self.term)) {
            self.commit = n;
        }
    }
}
