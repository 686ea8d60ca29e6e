//! One member of a Raft group running a state machine: the Raft core of the `raft`
//! crate, its files in the node's data dir, snapshots at `maxraftstate`, and the
//! requests waiting for their entries ([`Waiting`]). The key/value service of this
//! crate is one, and so are shardkv's controller and replica groups, with other
//! machines.

use node::{Context, Outbox, Storage};
use raft::disk::{self, Files};
use raft::{Config, PeerMessage, Raft, Ready};
use serde_json::Value;
use specs::node_protocol::{Body, ErrorCode, Message};

use crate::core::{self as kvcore, LeaderView, Waiting};

/// What a replicated state machine does with committed entries.
pub trait Machine: Sized {
    /// Applies the entry at `index`; the reply to whoever proposed it, if anyone.
    fn apply(&mut self, index: u64, command: &Value) -> Option<Body>;
    fn snapshot(&self) -> Value;
    /// The machine a snapshot holds; `self` is the machine it replaces, whose
    /// settings (a known-bad switch, say) the restored one keeps.
    fn restore(&self, data: &Value) -> Result<Self, String>;
    /// The command a new leader proposes so entries of earlier terms commit.
    fn noop() -> Value;
    /// The reply to `request`, whose entry applied with `reply`: in the request's
    /// form where the protocol has more than one.
    fn answer(&self, request: &Message, reply: Body) -> Body {
        let _ = request;
        reply
    }
}

pub struct Replica<M: Machine> {
    raft: Raft,
    pub machine: M,
    applied: u64,
    waiting: Waiting<Message>,
    max_raft_state: Option<usize>,
    /// The durable Raft files, with their sizes.
    files: Files,
    repair_log: bool,
}

impl<M: Machine> Replica<M> {
    /// Recovers what a previous run left in `storage`; `members` are the group's
    /// nodes. Unreadable files are fatal: starting empty would forget votes.
    pub fn new(
        ctx: &Context,
        storage: &Storage,
        members: Vec<String>,
        fresh: M,
        max_raft_state: Option<usize>,
    ) -> Result<Replica<M>, String> {
        let disk::Recovered {
            hard_state,
            snapshot,
            rewrite_log,
        } = disk::load(storage)?.reconcile()?;
        let (machine, applied) = match &snapshot {
            Some(s) => (fresh.restore(&s.data)?, s.index),
            None => (fresh, 0),
        };
        let config = Config::new(ctx.node_id.clone(), members);
        Ok(Replica {
            raft: Raft::new(config, hard_state, snapshot, ctx.seed, 0),
            machine,
            applied,
            waiting: Waiting::default(),
            max_raft_state,
            files: Files::measure(storage),
            repair_log: rewrite_log,
        })
    }

    /// The Raft core, for unit tests' looks at it.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Requests waiting for their entries.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }

    pub fn id(&self) -> &str {
        self.raft.id()
    }

    pub fn raft_state_bytes(&self) -> usize {
        self.files.raft_state()
    }

    pub fn snapshot_bytes(&self) -> usize {
        self.files.snapshot()
    }

    /// `persisted_size_ok`: what the deletion challenge measures.
    pub fn persisted_size(&self) -> Body {
        Body::new("persisted_size_ok")
            .with("raft_state", self.raft_state_bytes())
            .with("snapshot", self.snapshot_bytes())
    }

    /// The answer to a client of a node that does not lead.
    pub fn not_leader(&self) -> Body {
        kvcore::not_leader(self.raft.leader())
    }

    pub fn is_peer_message(message: &Message) -> bool {
        raft::wire::TYPES.contains(&message.body.kind.as_str())
    }

    pub fn step(&mut self, now: u64, message: &Message) {
        match PeerMessage::from_body(&message.body) {
            Ok(m) => self.raft.step(now, &message.src, m),
            Err(e) => eprintln!("ignoring message from {}: {e}", message.src),
        }
    }

    /// Proposes `command`; `request` is answered when its entry applies (or with an
    /// error when it cannot be). Returns false (request answered) if not leading.
    pub fn propose(
        &mut self,
        now: u64,
        command: Value,
        request: Option<Message>,
        out: &mut Outbox,
    ) -> bool {
        match self.raft.propose(command) {
            Ok((index, term)) => {
                if let Some(r) = request {
                    self.waiting.add(index, term, r, now);
                }
                true
            }
            Err(_) => {
                if let Some(r) = request {
                    out.reply(&r, self.not_leader());
                }
                false
            }
        }
    }

    pub fn on_start(&mut self, now: u64, out: &mut Outbox) {
        if std::mem::take(&mut self.repair_log) {
            self.files.rewrite_log(&self.raft, out);
        }
        self.raft.restart_timers(now);
    }

    pub fn tick(&mut self, now: u64) {
        self.raft.tick(now);
    }

    /// Drains the core: persist, send, apply, answer, snapshot; then answers what can
    /// no longer be answered by its entry, and asks for the next wake-up (`also`:
    /// the machine's own next deadline).
    pub fn flush(&mut self, now: u64, also: Option<u64>, out: &mut Outbox) {
        loop {
            let ready = self.raft.ready();
            if ready == Ready::default() {
                break;
            }
            self.files.write(&ready, &self.raft, out);
            for (to, message) in &ready.messages {
                out.send(to.clone(), message.to_body());
            }
            if ready.became_leader.is_some() {
                // Refused only if it no longer leads, and then there is nothing to do.
                let _ = self.raft.propose(M::noop());
            }
            if let Some(snapshot) = ready.apply_snapshot {
                match self.machine.restore(&snapshot.data) {
                    Ok(m) => self.machine = m,
                    // Only a peer of another implementation could send one: keep
                    // the index moving so later entries are not misapplied twice.
                    Err(e) => eprintln!("{}: leader's snapshot: {e}", self.raft.id()),
                }
                self.applied = snapshot.index;
                // Requests waiting on entries the snapshot covers need no answer here: only
                // a follower installs a leader's snapshot, and `check` below answers every
                // request of a node that no longer leads.
            }
            for (index, entry) in ready.applied {
                if index <= self.applied {
                    continue;
                }
                self.applied = index;
                let reply = self
                    .machine
                    .apply(index, &entry.command)
                    .unwrap_or_else(|| {
                        Body::error(
                            ErrorCode::TemporarilyUnavailable,
                            format!("entry {index} holds no request"),
                        )
                    });
                for (request, body) in self.waiting.applied(index, entry.term, &reply) {
                    let body = self.machine.answer(&request, body);
                    out.reply(&request, body);
                }
            }
            if kvcore::should_snapshot(self.raft_state_bytes(), self.max_raft_state)
                && self.applied > self.raft.log_start()
            {
                let data = self.machine.snapshot();
                if let Err(e) = self.raft.snapshot(self.applied, data) {
                    eprintln!("{}: {e}", self.raft.id());
                }
            }
        }
        let view = LeaderView {
            is_leader: self.raft.is_leader(),
            term: self.raft.term(),
            leader: self.raft.leader().map(str::to_string),
        };
        for (request, body) in self.waiting.check(now, &view) {
            out.reply(&request, body);
        }
        let mut wake = self.raft.next_deadline();
        if let Some(w) = self.waiting.next_deadline() {
            wake = wake.min(w);
        }
        if let Some(w) = also {
            wake = wake.min(w);
        }
        out.wake_at(wake);
    }
}
