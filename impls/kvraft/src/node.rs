//! The service as a [`node::Node`]: the Raft core and the state machine of
//! [`crate::core`] bound together, with Raft's persistence (`raft::disk`) in the
//! node's data dir.

use node::{Context, ErrorCode, Node, Outbox, Storage};
use raft::disk::{self, Files};
use raft::{Config, PeerMessage, Raft, Ready};
use specs::kv_fetch_append::FetchAppendInput;
use specs::kvsrv_protocol::parse_request;
use specs::node_protocol::{Body, Message};

use crate::bug::Bug;
use crate::core::{self, Command, KvState, LeaderView, Outcome, Waiting};
use crate::integers;

/// How a node is set up beyond what `init` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Snapshot when term, vote and log reach this many bytes on disk; `None`: never.
    pub max_raft_state: Option<usize>,
    pub bug: Option<Bug>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_raft_state: Some(core::DEFAULT_MAX_RAFT_STATE),
            bug: None,
        }
    }
}

pub struct KvRaftNode {
    raft: Raft,
    state: KvState,
    /// The last index whose command is in `state`.
    applied: u64,
    waiting: Waiting<Message>,
    settings: Settings,
    /// The durable Raft files, with their sizes.
    files: Files,
    /// The log file ended in a torn line: rewritten whole at start.
    repair_log: bool,
}

impl KvRaftNode {
    /// Recovers from `storage` what a previous run left there: Raft's state, and the
    /// service's state from the snapshot (the log after it is applied again as it
    /// commits). Unreadable or contradictory files are fatal: starting empty would
    /// forget votes, entries and the duplicate table.
    pub fn new(ctx: &Context, storage: &Storage, settings: Settings) -> Result<KvRaftNode, String> {
        let disk::Recovered {
            hard_state,
            snapshot,
            rewrite_log,
        } = disk::load(storage)?.reconcile()?;
        let (state, applied) = match &snapshot {
            Some(s) => (KvState::restore(&s.data)?, s.index),
            None => (KvState::default(), 0),
        };
        let config = Config::new(ctx.node_id.clone(), ctx.node_ids.clone());
        Ok(KvRaftNode {
            raft: Raft::new(config, hard_state, snapshot, ctx.seed, 0),
            state,
            applied,
            waiting: Waiting::default(),
            settings,
            files: Files::measure(storage),
            repair_log: rewrite_log,
        })
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn state(&self) -> &KvState {
        &self.state
    }

    /// Bytes of term, vote and log on disk: what `maxraftstate` bounds.
    pub fn raft_state_bytes(&self) -> usize {
        self.files.raft_state()
    }

    pub fn snapshot_bytes(&self) -> usize {
        self.files.snapshot()
    }

    /// Requests waiting for their entries.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Drains the core until it has nothing more to say: persist (the runtime writes
    /// every persist of a step before any send), send, apply, answer; a new leader's
    /// no-op and a snapshot taken here make more to drain.
    fn flush(&mut self, now: u64, out: &mut Outbox) {
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
                let _ = self.raft.propose(Command::Noop.to_value());
            }
            if let Some(snapshot) = ready.apply_snapshot {
                match KvState::restore(&snapshot.data) {
                    Ok(state) => self.state = state,
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
                let outcome = match Command::from_value(&entry.command) {
                    Ok(command) => self.state.apply(&command),
                    Err(e) => {
                        eprintln!("{}: entry {index}: {e}", self.raft.id());
                        Outcome::Nothing
                    }
                };
                let reply = match outcome {
                    Outcome::Reply(body) => body,
                    Outcome::Stale => Body::error(
                        ErrorCode::Timeout,
                        "an older request than its client's latest: not applied again",
                    ),
                    Outcome::Nothing => Body::error(
                        ErrorCode::TemporarilyUnavailable,
                        format!("entry {index} holds no request"),
                    ),
                };
                for (request, body) in self.waiting.applied(index, entry.term, &reply) {
                    let body = integers::answer(&request.body, body);
                    out.reply(&request, body);
                }
            }
            if core::should_snapshot(self.raft_state_bytes(), self.settings.max_raft_state)
                && self.applied > self.raft.log_start()
            {
                let with_dedup = self.settings.bug != Some(Bug::DedupNotInSnapshot);
                let data = self.state.snapshot(with_dedup);
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
        let wake = self.raft.next_deadline();
        out.wake_at(self.waiting.next_deadline().map_or(wake, |w| w.min(wake)));
    }

    fn on_request(&mut self, now: u64, message: Message, out: &mut Outbox) {
        if message.body.in_reply_to.is_some() {
            // We send no requests answered this way; answering a stray reply is how
            // two nodes start answering each other forever.
            eprintln!(
                "ignoring a reply from {} that answers nothing: {}",
                message.src,
                message.body.to_json()
            );
            return;
        }
        if message.body.kind == "persisted_size" {
            let body = Body::new("persisted_size_ok")
                .with("raft_state", self.raft_state_bytes())
                .with("snapshot", self.snapshot_bytes());
            out.reply(&message, body);
            return;
        }
        let request = integers::as_text(&message.body).and_then(|b| parse_request(&b));
        let (input, id) = match request {
            Ok(request) => request,
            Err(error) => {
                eprintln!("rejecting {:?} from {}", message.body.kind, message.src);
                out.reply(&message, error);
                return;
            }
        };
        if !self.raft.is_leader() {
            out.reply(&message, core::not_leader(self.raft.leader()));
            return;
        }
        if let (Some(Bug::StaleRead), FetchAppendInput::Get { key }) = (self.settings.bug, &input) {
            let body = integers::answer(&message.body, self.state.read_local(key));
            out.reply(&message, body);
            return;
        }
        let command = Command::Op {
            id: id.map(Into::into),
            op: input,
        };
        match self.raft.propose(command.to_value()) {
            Ok(_) if self.settings.bug == Some(Bug::ApplyUncommitted) => {
                // The entry's own application later meets the duplicate table.
                if let Outcome::Reply(body) = self.state.apply(&command) {
                    out.reply(&message, body);
                }
            }
            Ok((index, term)) => self.waiting.add(index, term, message, now),
            Err(_) => out.reply(&message, core::not_leader(self.raft.leader())),
        }
    }
}

impl Node for KvRaftNode {
    fn on_start(&mut self, now: u64, out: &mut Outbox) {
        if std::mem::take(&mut self.repair_log) {
            self.files.rewrite_log(&self.raft, out);
        }
        self.raft.restart_timers(now);
        self.flush(now, out);
    }

    fn on_tick(&mut self, now: u64, out: &mut Outbox) {
        self.raft.tick(now);
        self.flush(now, out);
    }

    fn on_message(&mut self, now: u64, message: Message, out: &mut Outbox) {
        if raft::wire::TYPES.contains(&message.body.kind.as_str()) {
            match PeerMessage::from_body(&message.body) {
                Ok(m) => self.raft.step(now, &message.src, m),
                Err(e) => eprintln!("ignoring message from {}: {e}", message.src),
            }
        } else {
            self.on_request(now, message, out);
        }
        self.flush(now, out);
    }
}
