//! The controller and the group members as `node::Node`s.

use node::{Context, Node, Outbox, Storage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use specs::kvsrv_protocol::parse_request;
use specs::node_protocol::{Body, Message};

use crate::bug::Bug;
use crate::ctrl::{self, Config, CtrlOp, CtrlState};
use crate::group::{Command, GroupState, Status};
use crate::{Layout, Role};
use kvraft::replica::{Machine, Replica};

/// How often a group's leader asks the controller for the next configuration and
/// retries pulls and deletions (100 ms, as 6.5840 suggests).
pub const POLL_INTERVAL: u64 = 100_000_000;

/// How a node is set up beyond what `init` says.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub layout: Layout,
    /// A node (group member or controller) snapshots at this many bytes of Raft
    /// state; `None`: never. The controller compacts too, unlike 6.5840's: every
    /// group's leader polls it ten times a second, and each query is an entry.
    pub max_raft_state: Option<usize>,
    pub bug: Option<Bug>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum CtrlEntry {
    Noop,
    Op {
        op: CtrlOp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<(u64, u64)>,
    },
}

impl Machine for CtrlState {
    fn apply(&mut self, _: u64, command: &Value) -> Option<Body> {
        match serde_json::from_value(command.clone()) {
            Ok(CtrlEntry::Op { op, id }) => Some(CtrlState::apply(self, &op, id)),
            Ok(CtrlEntry::Noop) => None,
            Err(e) => {
                eprintln!("controller: bad entry {command}: {e}");
                None
            }
        }
    }
    fn snapshot(&self) -> Value {
        CtrlState::snapshot(self)
    }
    fn restore(&self, data: &Value) -> Result<Self, String> {
        CtrlState::restore(data)
    }
    fn noop() -> Value {
        serde_json::to_value(CtrlEntry::Noop).expect("serialises")
    }
}

/// A group's machine: the state plus the variant it runs (not replicated).
pub struct GroupMachine(pub GroupState);

impl Machine for GroupMachine {
    fn apply(&mut self, _: u64, command: &Value) -> Option<Body> {
        match Command::from_value(command) {
            Ok(c) => self.0.apply_command(&c),
            Err(e) => {
                eprintln!("group {}: {e}", self.0.gid);
                None
            }
        }
    }
    fn snapshot(&self) -> Value {
        self.0.to_snapshot()
    }
    fn restore(&self, data: &Value) -> Result<Self, String> {
        // The restored state keeps this process's known-bad switch.
        GroupState::from_snapshot(data, self.0.bug).map(GroupMachine)
    }
    fn noop() -> Value {
        Command::Noop.to_value()
    }
}

pub enum ShardNode {
    Ctrl(Replica<CtrlState>),
    Group(GroupNode),
}

pub struct GroupNode {
    replica: Replica<GroupMachine>,
    ctrl: Vec<String>,
    /// Turns through the controller's nodes and the other groups' servers.
    turn: usize,
    poll_at: u64,
    bug: Option<Bug>,
}

impl ShardNode {
    pub fn new(ctx: &Context, storage: &Storage, settings: &Settings) -> Result<ShardNode, String> {
        let role = settings.layout.role(&ctx.node_id).ok_or_else(|| {
            format!(
                "node {} is in no group of SHARDKV_LAYOUT={:?}",
                ctx.node_id,
                settings.layout.to_text()
            )
        })?;
        Ok(match role {
            Role::Ctrl { members } => ShardNode::Ctrl(Replica::new(
                ctx,
                storage,
                members,
                CtrlState::default(),
                settings.max_raft_state,
            )?),
            Role::Group { gid, members } => {
                let fresh = GroupMachine(GroupState::new(gid, settings.bug));
                ShardNode::Group(GroupNode {
                    replica: Replica::new(ctx, storage, members, fresh, settings.max_raft_state)?,
                    ctrl: settings.layout.ctrl.clone(),
                    turn: 0,
                    poll_at: 0,
                    bug: settings.bug,
                })
            }
        })
    }
}

fn ctrl_request(r: &mut Replica<CtrlState>, now: u64, message: Message, out: &mut Outbox) {
    if message.body.in_reply_to.is_some() {
        return;
    }
    if message.body.kind == "persisted_size" {
        out.reply(&message, r.persisted_size());
        return;
    }
    match ctrl::parse(&message.body) {
        Err(e) => out.reply(&message, e),
        Ok(_) if !r.is_leader() => out.reply(&message, r.not_leader()),
        Ok((op, id)) => {
            let entry = serde_json::to_value(CtrlEntry::Op { op, id }).expect("serialises");
            r.propose(now, entry, Some(message), out);
        }
    }
}

impl GroupNode {
    fn state(&self) -> &GroupState {
        &self.replica.machine.0
    }

    /// The server of `servers` to ask in this round about item `item`: every item
    /// moves to the next server each round, whatever the number of items (a shared
    /// counter advanced once per item would keep asking one item's group the same
    /// follower forever when the number of items is a multiple of the group size).
    fn pick(&self, servers: &[String], item: usize) -> Option<String> {
        (!servers.is_empty()).then(|| servers[(self.turn + item) % servers.len()].clone())
    }

    /// The leader's periodic work: ask for the next configuration when settled,
    /// pull what is missing, tell previous owners what arrived.
    fn poll(&mut self, out: &mut Outbox) {
        if !self.replica.is_leader() {
            return;
        }
        self.turn = self.turn.wrapping_add(1);
        let state = self.state().clone();
        if state.settled() {
            let num = if self.bug == Some(Bug::SkipConfig) {
                -1
            } else {
                state.config.num as i64 + 1
            };
            if let Some(to) = self.pick(&self.ctrl, 0) {
                out.send(to, Body::new("query").with("num", num));
            }
        }
        for (s, shard) in state.shards.iter().enumerate() {
            let kind = match (shard.status, shard.gc) {
                (Status::Pulling, _) => "shard_pull",
                (Status::Serving, true) => "shard_delete",
                _ => continue,
            };
            let from = state.prev.shards[s];
            let servers = state.prev.groups.get(&from).cloned().unwrap_or_default();
            if let Some(to) = self.pick(&servers, s) {
                let body = Body::new(kind)
                    .with("num", state.config.num)
                    .with("shard", s)
                    .with("gid", state.gid);
                out.send(to, body);
            }
        }
    }

    fn on_reply(&mut self, now: u64, body: &Body, out: &mut Outbox) {
        if !self.replica.is_leader() {
            return;
        }
        let state = self.state();
        let (num, shard) = (body.u64("num"), body.u64("shard").map(|s| s as usize));
        let command = match body.kind.as_str() {
            "query_ok" => {
                let Some(config) = body.get("config").and_then(|c| Config::from_value(c).ok())
                else {
                    return;
                };
                let wanted = if self.bug == Some(Bug::SkipConfig) {
                    config.num > state.config.num
                } else {
                    config.num == state.config.num + 1
                };
                if !wanted || !state.settled() {
                    return;
                }
                Command::Config { config }
            }
            "shard_pull_ok" => match (num, shard, body.get("data")) {
                (Some(num), Some(shard), Some(data))
                    if shard < state.shards.len()
                        && num == state.config.num
                        && state.shards[shard].status == Status::Pulling =>
                {
                    Command::Install {
                        num,
                        shard,
                        data: data.clone(),
                    }
                }
                _ => return,
            },
            "shard_delete_ok" => match (num, shard) {
                (Some(num), Some(shard))
                    if shard < state.shards.len()
                        && num == state.config.num
                        && state.shards[shard].gc =>
                {
                    Command::Deleted { num, shard }
                }
                _ => return,
            },
            _ => return,
        };
        self.replica.propose(now, command.to_value(), None, out);
    }

    fn on_request(&mut self, now: u64, message: Message, out: &mut Outbox) {
        let body = &message.body;
        let shard_of = |b: &Body| match (b.u64("num"), b.u64("shard").map(|s| s as usize)) {
            (Some(num), Some(s)) if s < crate::NSHARDS => Ok((num, s)),
            _ => Err(Body::error(
                specs::node_protocol::ErrorCode::MalformedRequest,
                format!(
                    "{}: needs \"num\" and a \"shard\" below {}",
                    b.kind,
                    crate::NSHARDS
                ),
            )),
        };
        match body.kind.as_str() {
            "persisted_size" => out.reply(&message, self.replica.persisted_size()),
            "shard_pull" => {
                let reply = match shard_of(body) {
                    Err(e) => e,
                    Ok((num, s)) => match self.state().handoff(num, s) {
                        Ok(data) => Body::new("shard_pull_ok")
                            .with("num", num)
                            .with("shard", s)
                            .with("data", data),
                        Err(e) => {
                            Body::error(specs::node_protocol::ErrorCode::TemporarilyUnavailable, e)
                        }
                    },
                };
                out.reply(&message, reply);
            }
            "shard_delete" => match shard_of(body) {
                Err(e) => out.reply(&message, e),
                Ok(_) if !self.replica.is_leader() => {
                    out.reply(&message, self.replica.not_leader())
                }
                Ok((num, shard)) => {
                    let command = Command::Delete { num, shard }.to_value();
                    self.replica.propose(now, command, Some(message), out);
                }
            },
            _ => match parse_request(body) {
                Err(e) => out.reply(&message, e),
                Ok(_) if !self.replica.is_leader() => {
                    out.reply(&message, self.replica.not_leader())
                }
                Ok((input, id)) => {
                    if let Err(refusal) = self.state().check_key(input.key()) {
                        out.reply(&message, refusal);
                        return;
                    }
                    let command = Command::Op {
                        id: id.map(Into::into),
                        op: input,
                    };
                    self.replica
                        .propose(now, command.to_value(), Some(message), out);
                }
            },
        }
    }
}

impl Node for ShardNode {
    fn on_start(&mut self, now: u64, out: &mut Outbox) {
        match self {
            ShardNode::Ctrl(r) => {
                r.on_start(now, out);
                r.flush(now, None, out);
            }
            ShardNode::Group(g) => {
                g.replica.on_start(now, out);
                g.poll_at = now;
                g.replica.flush(now, Some(now), out);
            }
        }
    }

    fn on_tick(&mut self, now: u64, out: &mut Outbox) {
        match self {
            ShardNode::Ctrl(r) => {
                r.tick(now);
                r.flush(now, None, out);
            }
            ShardNode::Group(g) => {
                g.replica.tick(now);
                if now >= g.poll_at {
                    g.poll(out);
                    g.poll_at = now + POLL_INTERVAL;
                }
                g.replica.flush(now, Some(g.poll_at), out);
            }
        }
    }

    fn on_message(&mut self, now: u64, message: Message, out: &mut Outbox) {
        match self {
            ShardNode::Ctrl(r) => {
                if Replica::<CtrlState>::is_peer_message(&message) {
                    r.step(now, &message);
                } else {
                    ctrl_request(r, now, message, out);
                }
                r.flush(now, None, out);
            }
            ShardNode::Group(g) => {
                if Replica::<GroupMachine>::is_peer_message(&message) {
                    g.replica.step(now, &message);
                } else if message.body.in_reply_to.is_some() {
                    g.on_reply(now, &message.body, out);
                } else {
                    g.on_request(now, message, out);
                }
                let at = g.poll_at;
                g.replica.flush(now, Some(at), out);
            }
        }
    }
}
