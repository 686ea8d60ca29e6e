//! The reference replica group's state machine (`shardkv::group::GroupState`, the
//! code the `shardkv` nodes run) model-checked with stateright under configuration
//! changes and shard migration.
//!
//! Each group is one state machine (its Raft log abstracted to the order in which
//! it applies commands, which Raft makes the same on every replica). The controller
//! is the fixed sequence of configurations it would hand out; a group may take the
//! next one at any moment (its poll answered), or never (the answers lost). Between
//! groups travel `shard_pull`, its answer with the shard's data, `shard_delete` and
//! its answer; any message in flight may be delivered next (reordering) or lost.
//! One client appends `x` to a key of the moving shard (an answer may be lost, and
//! the client retries the same request, at any group), and reads the key at any group.
//!
//! Properties: always "one group serves a shard per configuration", always "no
//! acknowledged write lost or applied twice" (a read after the append was
//! acknowledged shows `x` exactly once); sometimes "every configuration installed"
//! and "a read sees the write", so neither check is vacuous. With `serve-before-data`
//! or `no-dedup-move` the checker finds the counterexample.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use kvraft::core::ClientSeq;
use shardkv::ctrl::Config;
use shardkv::group::{Command, GroupState, Status};
use shardkv::{key2shard, Bug, NSHARDS};
use specs::kv_fetch_append::FetchAppendInput;
use stateright::{Model, Property};

/// The key the client writes: in shard 8.
pub const KEY: &str = "0";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    Pull {
        to: usize,
        from: usize,
        num: u64,
        shard: usize,
    },
    PullOk {
        to: usize,
        num: u64,
        shard: usize,
        data: String,
    },
    Delete {
        to: usize,
        from: usize,
        num: u64,
        shard: usize,
    },
    DeleteOk {
        to: usize,
        num: u64,
        shard: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    TakeConfig(usize),
    SendPull(usize, usize),
    SendDelete(usize, usize),
    Deliver(usize),
    Lose(usize),
    /// The client's append reaches group `.0`; its answer is lost when `.1`.
    Append(usize, bool),
    Read(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub groups: Vec<GroupState>,
    /// In flight, kept sorted so one set of messages is one state.
    pub net: Vec<Msg>,
    pub appends_sent: u8,
    pub acked: bool,
    pub reads: u8,
    /// A read after the acknowledgement did not show `x` exactly once.
    pub lost_or_doubled: Option<String>,
    pub read_saw_write: bool,
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for g in &self.groups {
            g.to_snapshot().to_string().hash(h);
        }
        self.net.hash(h);
        (self.appends_sent, self.acked, self.reads).hash(h);
        (&self.lost_or_doubled, self.read_saw_write).hash(h);
    }
}

impl Eq for State {}

/// The model: two groups (ids 1 and 2) and the configurations: 1 gives every
/// shard to group 1, 2 moves the key's shard to group 2, 3 moves it back.
#[derive(Clone, Debug)]
pub struct ShardModel {
    pub configs: Vec<Config>,
    pub bug: Option<Bug>,
    pub max_appends: u8,
    pub max_reads: u8,
}

impl ShardModel {
    pub fn new(bug: Option<Bug>) -> ShardModel {
        let groups: BTreeMap<u64, Vec<String>> =
            [(1, vec!["a".to_string()]), (2, vec!["b".to_string()])].into();
        let mut configs = vec![Config::default()];
        let s = key2shard(KEY);
        for (num, owner) in [(1, 1), (2, 2), (3, 1)] {
            let mut shards = vec![1; NSHARDS];
            shards[s] = owner;
            configs.push(Config {
                num,
                shards,
                groups: groups.clone(),
            });
        }
        ShardModel {
            configs,
            bug,
            max_appends: 2,
            max_reads: 2,
        }
    }

    fn gid(g: usize) -> u64 {
        g as u64 + 1
    }
}

fn append(g: &mut GroupState) -> Option<specs::node_protocol::Body> {
    g.apply_command(&Command::Op {
        id: Some(ClientSeq { client: 7, seq: 1 }),
        op: FetchAppendInput::Append {
            key: KEY.into(),
            value: "x".into(),
        },
    })
}

impl Model for ShardModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            groups: (0..2)
                .map(|g| GroupState::new(ShardModel::gid(g), self.bug))
                .collect(),
            net: Vec::new(),
            appends_sent: 0,
            acked: false,
            reads: 0,
            lost_or_doubled: None,
            read_saw_write: false,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        for (g, group) in s.groups.iter().enumerate() {
            let next = group.config.num as usize + 1;
            if next < self.configs.len() && group.settled() {
                actions.push(Action::TakeConfig(g));
            }
            for (shard, sh) in group.shards.iter().enumerate() {
                let num = group.config.num;
                if sh.status == Status::Pulling
                    && !s.net.iter().any(|m| matches!(m, Msg::Pull { from, shard: x, num: n, .. } | Msg::PullOk { to: from, shard: x, num: n, .. } if *from == g && *x == shard && *n == num))
                {
                    actions.push(Action::SendPull(g, shard));
                }
                if sh.gc
                    && !s.net.iter().any(|m| matches!(m, Msg::Delete { from, shard: x, num: n, .. } | Msg::DeleteOk { to: from, shard: x, num: n, .. } if *from == g && *x == shard && *n == num))
                {
                    actions.push(Action::SendDelete(g, shard));
                }
            }
            if s.appends_sent < self.max_appends && !s.acked {
                actions.push(Action::Append(g, false));
                actions.push(Action::Append(g, true));
            }
            if s.reads < self.max_reads && s.acked {
                actions.push(Action::Read(g));
            }
        }
        for i in 0..s.net.len() {
            actions.push(Action::Deliver(i));
            actions.push(Action::Lose(i));
        }
    }

    fn next_state(&self, s: &State, action: Action) -> Option<State> {
        let mut s = s.clone();
        match action {
            Action::TakeConfig(g) => {
                let next = self.configs[s.groups[g].config.num as usize + 1].clone();
                s.groups[g].apply_command(&Command::Config { config: next });
            }
            Action::SendPull(g, shard) | Action::SendDelete(g, shard) => {
                let group = &s.groups[g];
                let owner = group.prev.shards[shard];
                let to = owner.checked_sub(1)? as usize;
                let num = group.config.num;
                s.net.push(if matches!(action, Action::SendPull(..)) {
                    Msg::Pull {
                        to,
                        from: g,
                        num,
                        shard,
                    }
                } else {
                    Msg::Delete {
                        to,
                        from: g,
                        num,
                        shard,
                    }
                });
            }
            Action::Lose(i) => {
                s.net.remove(i);
            }
            Action::Deliver(i) => match s.net.remove(i) {
                Msg::Pull {
                    to,
                    from,
                    num,
                    shard,
                } => {
                    if let Ok(data) = s.groups[to].handoff(num, shard) {
                        s.net.push(Msg::PullOk {
                            to: from,
                            num,
                            shard,
                            data: data.to_string(),
                        });
                    }
                }
                Msg::PullOk {
                    to,
                    num,
                    shard,
                    data,
                } => {
                    let data = serde_json::from_str(&data).expect("our own data");
                    s.groups[to].apply_command(&Command::Install { num, shard, data });
                }
                Msg::Delete {
                    to,
                    from,
                    num,
                    shard,
                } => {
                    let reply = s.groups[to].apply_command(&Command::Delete { num, shard });
                    if reply.is_some_and(|r| r.kind == "shard_delete_ok") {
                        s.net.push(Msg::DeleteOk {
                            to: from,
                            num,
                            shard,
                        });
                    }
                }
                Msg::DeleteOk { to, num, shard } => {
                    s.groups[to].apply_command(&Command::Deleted { num, shard });
                }
            },
            Action::Append(g, lost) => {
                s.appends_sent += 1;
                let answer = append(&mut s.groups[g]);
                if !lost && answer.is_some_and(|r| r.kind == "append_ok") {
                    s.acked = true;
                }
            }
            Action::Read(g) => {
                s.reads += 1;
                let reply = s.groups[g].apply_command(&Command::Op {
                    id: None,
                    op: FetchAppendInput::Get { key: KEY.into() },
                })?;
                let value = match reply.kind.as_str() {
                    "read_ok" => reply.str("value").unwrap_or_default().to_string(),
                    "error"
                        if reply.error_code()
                            == Some(specs::node_protocol::ErrorCode::KeyDoesNotExist) =>
                    {
                        String::new()
                    }
                    // Refused: this group does not serve the key now.
                    _ => return Some(s),
                };
                if value == "x" {
                    s.read_saw_write = true;
                } else {
                    s.lost_or_doubled.get_or_insert(value);
                }
            }
        }
        s.net.sort();
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "one group serves a shard per configuration",
                |_, s: &State| {
                    let (a, b) = (&s.groups[0], &s.groups[1]);
                    a.config.num != b.config.num
                        || (0..NSHARDS).all(|x| {
                            !(a.shards[x].status == Status::Serving
                                && b.shards[x].status == Status::Serving)
                        })
                },
            ),
            Property::always(
                "no acknowledged write lost or applied twice",
                |_, s: &State| s.lost_or_doubled.is_none(),
            ),
            Property::sometimes(
                "every configuration installed",
                |m: &ShardModel, s: &State| {
                    let last = m.configs.len() as u64 - 1;
                    s.groups.iter().all(|g| g.config.num == last && g.settled())
                },
            ),
            Property::sometimes("a read sees the write", |_, s: &State| s.read_saw_write),
        ]
    }
}
