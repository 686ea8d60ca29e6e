//! The core as a [`node::Node`]: peer messages and the Raft test interface
//! (`specs::raft_protocol`) in, the core's `Ready` out through the runtime.

use node::{Context, ErrorCode, Node, Outbox, Storage};
use specs::node_protocol::{Body, Message};
use specs::raft_protocol::{self, Applied, TESTER};

use crate::bug::Bug;
use crate::core::{Config, HardState, Raft};
use crate::wire::{self, PeerMessage};

/// The file holding term, vote and log, replaced atomically on every change.
pub const STATE_FILE: &str = "raft_state";

pub struct RaftNode {
    raft: Raft,
}

impl RaftNode {
    /// Recovers from `storage` if a previous run left state there. A state file that
    /// does not parse is a fatal error: starting empty would forget votes and
    /// acknowledged entries.
    pub fn new(ctx: &Context, storage: &Storage, bug: Option<Bug>) -> Result<RaftNode, String> {
        let restored = match storage.get(STATE_FILE) {
            Some(bytes) => Some(
                serde_json::from_slice::<HardState>(bytes)
                    .map_err(|e| format!("{STATE_FILE} in the data dir is corrupt: {e}"))?,
            ),
            None => None,
        };
        let mut config = Config::new(ctx.node_id.clone(), ctx.node_ids.clone());
        config.bug = bug;
        Ok(RaftNode {
            raft: Raft::new(config, restored, ctx.seed, 0),
        })
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Hands the core's obligations to the runtime: persist first (the runtime writes
    /// every persist of a step before any send), then messages, then reports.
    fn flush(&mut self, out: &mut Outbox) {
        let ready = self.raft.ready();
        if let Some(state) = &ready.hard_state {
            out.persist(
                STATE_FILE,
                serde_json::to_vec(state).expect("state serialises"),
            );
        }
        for (to, message) in &ready.messages {
            out.send(to.clone(), message.to_body());
        }
        if let Some(term) = ready.became_leader {
            out.send(TESTER, raft_protocol::leader(term));
        }
        if !ready.applied.is_empty() {
            let applied: Vec<Applied> = ready
                .applied
                .into_iter()
                .map(|(index, e)| Applied {
                    index,
                    term: e.term,
                    command: e.command,
                })
                .collect();
            out.send(TESTER, raft_protocol::applied(&applied));
        }
        out.wake_at(self.raft.next_deadline());
    }
}

impl Node for RaftNode {
    fn on_start(&mut self, now: u64, out: &mut Outbox) {
        self.raft.restart_timers(now);
        self.flush(out);
    }

    fn on_tick(&mut self, now: u64, out: &mut Outbox) {
        self.raft.tick(now);
        self.flush(out);
    }

    fn on_message(&mut self, now: u64, message: Message, out: &mut Outbox) {
        let kind = message.body.kind.as_str();
        if wire::TYPES.contains(&kind) {
            match PeerMessage::from_body(&message.body) {
                Ok(m) => self.raft.step(now, &message.src, m),
                Err(e) => eprintln!("ignoring message from {}: {e}", message.src),
            }
        } else {
            match kind {
                "start" => match message.body.get("command") {
                    Some(command) => {
                        let body = match self.raft.propose(now, command.clone()) {
                            Ok((index, term)) => Body::new("start_ok")
                                .with("index", index)
                                .with("term", term)
                                .with("is_leader", true),
                            Err(term) => Body::new("start_ok")
                                .with("term", term)
                                .with("is_leader", false),
                        };
                        out.reply(&message, body);
                    }
                    None => out.error(
                        &message,
                        ErrorCode::MalformedRequest,
                        "start needs a \"command\" field",
                    ),
                },
                "get_state" => out.reply(
                    &message,
                    Body::new("get_state_ok")
                        .with("term", self.raft.term())
                        .with("is_leader", self.raft.is_leader()),
                ),
                other => out.error(
                    &message,
                    ErrorCode::NotSupported,
                    format!("a Raft node does not handle {other:?} messages"),
                ),
            }
        }
        self.flush(out);
    }
}
