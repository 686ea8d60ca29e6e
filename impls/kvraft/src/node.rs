//! The service as a [`node::Node`]: the state machine of [`crate::core`] run by a
//! [`Replica`] (the Raft core, its files in the node's data dir, the requests
//! waiting for their entries), and the requests of kvsrv's protocol and lin-kv's.

use node::{Context, ErrorCode, Node, Outbox, Storage};
use raft::Raft;
use serde_json::Value;
use specs::kv_fetch_append::FetchAppendInput;
use specs::kvsrv_protocol::parse_request;
use specs::node_protocol::{Body, Message};

use crate::bug::Bug;
use crate::core::{self, Command, KvState, Outcome};
use crate::integers;
use crate::replica::{Machine, Replica};

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
    replica: Replica<KvMachine>,
    settings: Settings,
}

/// The replicated machine: the store and duplicate table, and the variant the node
/// runs (not replicated).
struct KvMachine {
    state: KvState,
    bug: Option<Bug>,
}

impl Machine for KvMachine {
    fn apply(&mut self, index: u64, command: &Value) -> Option<Body> {
        let outcome = match Command::from_value(command) {
            Ok(command) => self.state.apply(&command),
            Err(e) => {
                eprintln!("entry {index}: {e}");
                Outcome::Nothing
            }
        };
        match outcome {
            Outcome::Reply(body) => Some(body),
            Outcome::Stale => Some(Body::error(
                ErrorCode::Timeout,
                "an older request than its client's latest: not applied again",
            )),
            Outcome::Nothing => None,
        }
    }

    fn snapshot(&self) -> Value {
        self.state
            .snapshot(self.bug != Some(Bug::DedupNotInSnapshot))
    }

    fn restore(&self, data: &Value) -> Result<KvMachine, String> {
        Ok(KvMachine {
            state: KvState::restore(data)?,
            bug: self.bug,
        })
    }

    fn noop() -> Value {
        Command::Noop.to_value()
    }

    fn answer(&self, request: &Message, reply: Body) -> Body {
        integers::answer(&request.body, reply)
    }
}

impl KvRaftNode {
    /// Recovers from `storage` what a previous run left there: Raft's state, and the
    /// service's state from the snapshot (the log after it is applied again as it
    /// commits). Unreadable or contradictory files are fatal: starting empty would
    /// forget votes, entries and the duplicate table.
    pub fn new(ctx: &Context, storage: &Storage, settings: Settings) -> Result<KvRaftNode, String> {
        let fresh = KvMachine {
            state: KvState::default(),
            bug: settings.bug,
        };
        let replica = Replica::new(
            ctx,
            storage,
            ctx.node_ids.clone(),
            fresh,
            settings.max_raft_state,
        )?;
        Ok(KvRaftNode { replica, settings })
    }

    pub fn raft(&self) -> &Raft {
        self.replica.raft()
    }

    pub fn state(&self) -> &KvState {
        &self.replica.machine.state
    }

    /// Bytes of term, vote and log on disk: what `maxraftstate` bounds.
    pub fn raft_state_bytes(&self) -> usize {
        self.replica.raft_state_bytes()
    }

    pub fn snapshot_bytes(&self) -> usize {
        self.replica.snapshot_bytes()
    }

    /// Requests waiting for their entries.
    pub fn waiting(&self) -> usize {
        self.replica.waiting()
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
            out.reply(&message, self.replica.persisted_size());
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
        if !self.replica.is_leader() {
            out.reply(&message, self.replica.not_leader());
            return;
        }
        if let (Some(Bug::StaleRead), FetchAppendInput::Get { key }) = (self.settings.bug, &input) {
            let body = integers::answer(&message.body, self.state().read_local(key));
            out.reply(&message, body);
            return;
        }
        let command = Command::Op {
            id: id.map(Into::into),
            op: input,
        };
        if self.settings.bug == Some(Bug::ApplyUncommitted) {
            if self.replica.propose(now, command.to_value(), None, out) {
                // The entry's own application later meets the duplicate table.
                if let Outcome::Reply(body) = self.replica.machine.state.apply(&command) {
                    out.reply(&message, body);
                }
            } else {
                out.reply(&message, self.replica.not_leader());
            }
            return;
        }
        self.replica
            .propose(now, command.to_value(), Some(message), out);
    }
}

impl Node for KvRaftNode {
    fn on_start(&mut self, now: u64, out: &mut Outbox) {
        self.replica.on_start(now, out);
        self.replica.flush(now, None, out);
    }

    fn on_tick(&mut self, now: u64, out: &mut Outbox) {
        self.replica.tick(now);
        self.replica.flush(now, None, out);
    }

    fn on_message(&mut self, now: u64, message: Message, out: &mut Outbox) {
        if Replica::<KvMachine>::is_peer_message(&message) {
            self.replica.step(now, &message);
        } else {
            self.on_request(now, message, out);
        }
        self.replica.flush(now, None, out);
    }
}
