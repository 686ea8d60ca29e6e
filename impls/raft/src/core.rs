//! The Raft protocol as a pure state machine (Ongaro & Ousterhout, Figure 2).
//!
//! The caller feeds events: [`Raft::tick`] when [`Raft::next_deadline`] has come,
//! [`Raft::step`] for each peer message, [`Raft::propose`] for each command. After any
//! of them it takes a [`Ready`] and must, in this order: persist `hard_state` (if
//! any) durably, then send `messages`, then apply `applied`. Sending before the
//! persist would let a vote or an acknowledged entry be forgotten by a crash.
//!
//! Leaders pipeline: `next_index` moves past entries as soon as they are sent, and a
//! rejection backs it up by a whole term at a time using the follower's hint (the
//! "fast back-up" of the extended paper, section 5.3), never below `match_index`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bug::Bug;
use crate::rng::SplitMix;
use crate::wire::PeerMessage;

/// One log entry. Index 0 is a sentinel of term 0 that is never sent or applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    pub command: Value,
}

/// What must survive a crash: the current term, the vote in it, and the log.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<String>,
    /// Entries from index 1.
    pub log: Vec<Entry>,
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// What the caller must do after an event, in field order.
#[derive(Debug, Default, PartialEq)]
pub struct Ready {
    /// Persist this before sending anything.
    pub hard_state: Option<HardState>,
    pub messages: Vec<(String, PeerMessage)>,
    /// Newly committed entries, in index order, as (index, entry).
    pub applied: Vec<(u64, Entry)>,
    /// Set when this node became leader of this term during the event.
    pub became_leader: Option<u64>,
}

#[derive(Debug)]
pub struct Raft {
    config: Config,
    peers: Vec<String>,
    term: u64,
    voted_for: Option<String>,
    log: Vec<Entry>,
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
    dirty: bool,
    ready: Ready,
}

impl Raft {
    /// A node starting at `now`, from the state a previous run persisted if any.
    pub fn new(config: Config, restored: Option<HardState>, seed: u64, now: u64) -> Raft {
        let restored = restored.unwrap_or_default();
        let mut log = vec![Entry {
            term: 0,
            command: Value::Null,
        }];
        log.extend(restored.log);
        let peers = config
            .members
            .iter()
            .filter(|m| **m != config.id)
            .cloned()
            .collect();
        let mut raft = Raft {
            peers,
            term: restored.term,
            voted_for: restored.voted_for,
            log,
            commit: 0,
            applied: 0,
            role: Role::Follower,
            leader: None,
            votes: Vec::new(),
            next_index: BTreeMap::new(),
            match_index: BTreeMap::new(),
            election_deadline: 0,
            heartbeat_due: u64::MAX,
            rng: SplitMix::new(seed),
            dirty: false,
            ready: Ready::default(),
            config,
        };
        raft.reset_election_timer(now);
        raft
    }

    pub fn id(&self) -> &str {
        &self.config.id
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
        self.log.len() as u64 - 1
    }

    /// Entries from index 1.
    pub fn entries(&self) -> &[Entry] {
        &self.log[1..]
    }

    pub fn voted_for(&self) -> Option<&str> {
        self.voted_for.as_deref()
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
        if self.dirty {
            self.dirty = false;
            ready.hard_state = Some(HardState {
                term: self.term,
                voted_for: self.voted_for.clone(),
                log: self.log[1..].to_vec(),
            });
        }
        if self.commit > self.applied {
            ready.applied = (self.applied + 1..=self.commit)
                .map(|i| (i, self.log[i as usize].clone()))
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
    pub fn propose(&mut self, now: u64, command: Value) -> Result<(u64, u64), u64> {
        if self.role != Role::Leader {
            return Err(self.term);
        }
        self.log.push(Entry {
            term: self.term,
            command,
        });
        self.dirty = true;
        let index = self.last_index();
        self.match_index.insert(self.config.id.clone(), index);
        self.maybe_commit();
        for peer in self.peers.clone() {
            // Only peers that are caught up get the new entry now; the others are
            // being repaired and get it with their next batch.
            if self.next_index[&peer] == index {
                self.send_append(&peer);
            }
        }
        let _ = now;
        Ok((index, self.term))
    }

    /// A message from peer `from`.
    pub fn step(&mut self, now: u64, from: &str, message: PeerMessage) {
        if !self.peers.iter().any(|p| p == from) {
            return;
        }
        let term = match &message {
            PeerMessage::RequestVote { term, .. }
            | PeerMessage::RequestVoteReply { term, .. }
            | PeerMessage::AppendEntries { term, .. }
            | PeerMessage::AppendEntriesReply { term, .. } => *term,
        };
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
                    let m = self.match_index.get_mut(from).expect("a peer");
                    *m = (*m).max(match_index);
                    let n = self.next_index.get_mut(from).expect("a peer");
                    *n = (*n).max(match_index + 1);
                    self.maybe_commit();
                    if self.next_index[from] <= self.last_index() {
                        self.send_append(from);
                    }
                } else {
                    self.back_up(from, rejected, conflict_index, conflict_term);
                }
            }
        }
    }

    fn quorum(&self) -> usize {
        self.config.members.len() / 2 + 1
    }

    fn last_term(&self) -> u64 {
        self.log.last().expect("sentinel").term
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
            self.dirty = true;
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
        self.dirty = true;
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
        self.match_index
            .insert(self.config.id.clone(), self.last_index());
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
                self.dirty = true;
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
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    ) {
        let reply = |raft: &mut Raft, success, match_index, conflict_index, conflict_term| {
            raft.ready.messages.push((
                from.to_string(),
                PeerMessage::AppendEntriesReply {
                    term: raft.term,
                    success,
                    match_index,
                    rejected: prev_index,
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
        if prev_index > self.last_index() {
            let hint = self.last_index() + 1;
            reply(self, false, 0, hint, None);
            return;
        }
        let have = self.log[prev_index as usize].term;
        if have != prev_term {
            let first = (1..=prev_index)
                .rev()
                .take_while(|&i| self.log[i as usize].term == have)
                .last()
                .unwrap_or(prev_index);
            reply(self, false, 0, first, Some(have));
            return;
        }
        let last_new = prev_index + entries.len() as u64;
        for (k, entry) in entries.into_iter().enumerate() {
            let index = prev_index as usize + 1 + k;
            if index < self.log.len() {
                if self.log[index].term == entry.term {
                    continue;
                }
                // Only a conflict truncates: a stale, shorter message must not cut
                // entries a newer one already added.
                if index as u64 <= self.commit {
                    // Impossible with a correct leader; a peer with a known-bad
                    // variant can cause it. Follow the leader (a node must never die
                    // of what it is sent) and say so.
                    eprintln!(
                        "{}: leader {from} overwrites committed entry {index}",
                        self.config.id
                    );
                }
                self.log.truncate(index);
            }
            self.log.push(entry);
            self.dirty = true;
        }
        if commit > self.commit {
            self.commit = self.commit.max(commit.min(last_new));
        }
        reply(self, true, last_new, 0, None);
    }

    fn back_up(
        &mut self,
        from: &str,
        rejected: u64,
        conflict_index: u64,
        conflict_term: Option<u64>,
    ) {
        let hint = match conflict_term {
            Some(t) => {
                // If we have entries of the follower's conflicting term, the logs may
                // agree up to our last one of them; otherwise skip the whole term.
                match (1..=self.last_index())
                    .rev()
                    .find(|&i| self.log[i as usize].term == t)
                {
                    Some(i) => i + 1,
                    None => conflict_index,
                }
            }
            None => conflict_index,
        };
        let floor = self.match_index[from] + 1;
        let next = hint.min(rejected).max(floor).max(1);
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
    /// `next_index` past it: pipelining, repaired by rejections.
    fn send_append(&mut self, peer: &str) {
        let next = self.next_index[peer].clamp(1, self.last_index() + 1);
        let prev_index = next - 1;
        let end = (self.last_index() + 1).min(next + self.config.max_batch as u64);
        let entries = self.log[next as usize..end as usize].to_vec();
        self.next_index.insert(peer.to_string(), end);
        self.ready.messages.push((
            peer.to_string(),
            PeerMessage::AppendEntries {
                term: self.term,
                prev_index,
                prev_term: self.log[prev_index as usize].term,
                entries,
                commit: self.commit,
            },
        ));
    }

    /// Figure 8: an index commits when a majority stores it *and* it is of the
    /// current term; earlier entries commit with it, never by counting alone.
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
        if n > self.commit && (counting || self.log[n as usize].term == self.term) {
            self.commit = n;
        }
    }
}
