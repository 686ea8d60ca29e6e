//! A replica group's state machine, with no Raft and no IO: the configuration it is
//! in, each shard's state (served, being pulled in, left behind for its new owner,
//! absent) with the shard's store and duplicate table (a `kvraft::KvState` each, so
//! exactly-once moves with the shard), and what each committed command does.
//!
//! The rules that make migration safe:
//! - a configuration is taken only after the previous one, and only when every
//!   shard is settled (nothing to pull in, nothing left for a new owner to delete);
//! - a shard is served only while this group owns it in its current configuration
//!   *and* holds its data; the ownership check is made again when the request's
//!   entry applies, so a request proposed before a configuration change that moved
//!   its shard away is refused, not applied to a shard that was handed over;
//! - a shard given away is frozen from the configuration entry on (nothing applies
//!   to it), so its data, as any replica that applied that entry holds it, is final
//!   and can be handed out by any of them;
//! - the new owner deletes the old copy through the old owner's log, after its own
//!   install committed.

use kvraft::core::{ClientSeq, Command as KvCommand, Outcome};
use kvraft::KvState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use specs::kv_fetch_append::FetchAppendInput;
use specs::node_protocol::{Body, ErrorCode};

use crate::bug::Bug;
use crate::ctrl::Config;
use crate::{key2shard, NSHARDS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not ours, nothing held.
    Absent,
    /// Ours and held.
    Serving,
    /// Ours in this configuration; the data is still with the previous owner.
    Pulling,
    /// Ours in the previous configuration, not in this one: held (frozen) until the
    /// new owner says it has installed it.
    Leaving,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub status: Status,
    pub data: Option<KvState>,
    /// Installed from a previous owner that still holds its copy: tell it to delete.
    pub gc: bool,
}

/// A command in a group's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    Noop,
    Op {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<ClientSeq>,
        op: FetchAppendInput,
    },
    Config {
        config: Config,
    },
    /// A shard's data as the previous owner held it when configuration `num` took it.
    Install {
        num: u64,
        shard: usize,
        data: Value,
    },
    /// The new owner of `shard` in `num` has it: drop our copy.
    Delete {
        num: u64,
        shard: usize,
    },
    /// The previous owner dropped its copy of `shard`.
    Deleted {
        num: u64,
        shard: usize,
    },
}

impl Command {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("commands serialise")
    }

    pub fn from_value(value: &Value) -> Result<Command, String> {
        serde_json::from_value(value.clone()).map_err(|e| format!("bad command: {e}"))
    }
}

/// The definite refusal of a key this group does not serve now: error 11 (so a
/// client retries, after asking the controller again) marked `wrong_group`.
pub fn wrong_group(gid: u64, shard: usize, config: &Config, why: &str) -> Body {
    Body::error(
        ErrorCode::TemporarilyUnavailable,
        format!(
            "wrong group: group {gid} does not serve shard {shard} in configuration {} ({why})",
            config.num
        ),
    )
    .with("wrong_group", true)
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupState {
    pub gid: u64,
    pub config: Config,
    pub prev: Config,
    pub shards: Vec<Shard>,
    pub bug: Option<Bug>,
}

#[derive(Serialize, Deserialize)]
struct ShardData {
    status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(default)]
    gc: bool,
}

#[derive(Serialize, Deserialize)]
struct SnapshotData {
    gid: u64,
    config: Config,
    prev: Config,
    shards: Vec<ShardData>,
}

impl GroupState {
    pub fn new(gid: u64, bug: Option<Bug>) -> GroupState {
        GroupState {
            gid,
            config: Config::default(),
            prev: Config::default(),
            shards: (0..NSHARDS)
                .map(|_| Shard {
                    status: Status::Absent,
                    data: None,
                    gc: false,
                })
                .collect(),
            bug,
        }
    }

    /// Nothing to pull in, nothing waiting for deletion anywhere: the next
    /// configuration may be taken.
    pub fn settled(&self) -> bool {
        self.shards
            .iter()
            .all(|s| matches!(s.status, Status::Serving | Status::Absent) && !s.gc)
    }

    /// Whether a request for `key` can be served now; the refusal otherwise.
    pub fn check_key(&self, key: &str) -> Result<usize, Body> {
        let s = key2shard(key);
        if self.config.shards[s] != self.gid {
            return Err(wrong_group(
                self.gid,
                s,
                &self.config,
                "another group owns it",
            ));
        }
        if self.shards[s].status != Status::Serving {
            return Err(wrong_group(
                self.gid,
                s,
                &self.config,
                "its data has not arrived yet",
            ));
        }
        Ok(s)
    }

    /// The data of `shard` for the group that owns it in configuration `num`.
    pub fn handoff(&self, num: u64, shard: usize) -> Result<Value, String> {
        if self.config.num < num {
            return Err(format!(
                "not yet in configuration {num} (in {})",
                self.config.num
            ));
        }
        let s = &self.shards[shard];
        match (
            &s.data,
            self.config.num == num && s.status == Status::Leaving,
        ) {
            (Some(data), true) => Ok(data.snapshot(self.bug != Some(Bug::NoDedupMove))),
            _ => Err(format!(
                "shard {shard} is not held for configuration {num} (in {}, {:?})",
                self.config.num, s.status
            )),
        }
    }

    pub fn apply_command(&mut self, command: &Command) -> Option<Body> {
        match command {
            Command::Noop => None,
            Command::Op { id, op } => Some(self.apply_op(*id, op)),
            Command::Config { config } => {
                self.take_config(config);
                None
            }
            Command::Install { num, shard, data } => {
                let s = &mut self.shards[*shard];
                if *num == self.config.num && s.status == Status::Pulling {
                    match KvState::restore(data) {
                        Ok(state) => {
                            s.data = Some(state);
                            s.status = Status::Serving;
                            s.gc = true;
                        }
                        Err(e) => eprintln!("group {}: shard {shard}: {e}", self.gid),
                    }
                }
                None
            }
            Command::Delete { num, shard } => {
                if *num > self.config.num {
                    return Some(Body::error(
                        ErrorCode::TemporarilyUnavailable,
                        format!("not yet in configuration {num}"),
                    ));
                }
                let named = *num == self.config.num || self.bug == Some(Bug::StaleDelete);
                let s = &mut self.shards[*shard];
                if named && s.status == Status::Leaving {
                    s.status = Status::Absent;
                    if self.bug != Some(Bug::NeverDelete) {
                        s.data = None;
                    }
                }
                Some(
                    Body::new("shard_delete_ok")
                        .with("num", *num)
                        .with("shard", *shard),
                )
            }
            Command::Deleted { num, shard } => {
                if *num == self.config.num {
                    self.shards[*shard].gc = false;
                }
                None
            }
        }
    }

    fn apply_op(&mut self, id: Option<ClientSeq>, op: &FetchAppendInput) -> Body {
        let s = match self.check_key(op.key()) {
            Ok(s) => s,
            Err(refusal) => return refusal,
        };
        let state = self.shards[s]
            .data
            .as_mut()
            .expect("a served shard has data");
        match state.apply(&KvCommand::Op { id, op: op.clone() }) {
            Outcome::Reply(body) => body,
            Outcome::Stale => Body::error(
                ErrorCode::Timeout,
                "an older request than its client's latest: not applied again",
            ),
            Outcome::Nothing => Body::error(ErrorCode::TemporarilyUnavailable, "nothing to do"),
        }
    }

    fn take_config(&mut self, next: &Config) {
        let in_order = next.num == self.config.num + 1 || self.bug == Some(Bug::SkipConfig);
        if next.num <= self.config.num || !in_order || !self.settled() {
            return;
        }
        for s in 0..NSHARDS {
            let was = self.config.shards[s] == self.gid;
            let is = next.shards[s] == self.gid;
            let shard = &mut self.shards[s];
            if is && !was {
                let from_nobody = self.config.shards[s] == 0;
                if from_nobody || self.bug == Some(Bug::ServeBeforeData) {
                    shard.status = Status::Serving;
                    shard.data = Some(KvState::default());
                    // The buggy variant still lets the old owner go, so nothing stalls
                    // and only the lost data shows.
                    shard.gc = !from_nobody;
                } else {
                    shard.status = Status::Pulling;
                }
            } else if was && !is {
                shard.status = Status::Leaving;
            }
        }
        self.prev = std::mem::replace(&mut self.config, next.clone());
    }

    pub fn to_snapshot(&self) -> Value {
        let data = SnapshotData {
            gid: self.gid,
            config: self.config.clone(),
            prev: self.prev.clone(),
            shards: self
                .shards
                .iter()
                .map(|s| ShardData {
                    status: s.status,
                    data: s.data.as_ref().map(|d| d.snapshot(true)),
                    gc: s.gc,
                })
                .collect(),
        };
        serde_json::to_value(data).expect("state serialises")
    }

    pub fn from_snapshot(data: &Value, bug: Option<Bug>) -> Result<GroupState, String> {
        let data: SnapshotData = serde_json::from_value(data.clone())
            .map_err(|e| format!("the snapshot's data is not a group state: {e}"))?;
        let mut shards = Vec::new();
        for s in data.shards {
            shards.push(Shard {
                status: s.status,
                data: s.data.as_ref().map(KvState::restore).transpose()?,
                gc: s.gc,
            });
        }
        if shards.len() != NSHARDS {
            return Err(format!("a group snapshot with {} shards", shards.len()));
        }
        Ok(GroupState {
            gid: data.gid,
            config: data.config,
            prev: data.prev,
            shards,
            bug,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctrl::{CtrlOp, CtrlState};

    fn append(key: &str, v: &str, client: u64, seq: u64) -> Command {
        Command::Op {
            id: Some(ClientSeq { client, seq }),
            op: FetchAppendInput::Append {
                key: key.into(),
                value: v.into(),
            },
        }
    }

    fn configs() -> Vec<Config> {
        let mut c = CtrlState::default();
        let mut out = vec![c.latest().clone()];
        for servers in [
            vec![(1, vec!["a".to_string()])],
            vec![(2, vec!["b".to_string()])],
        ] {
            c.apply(
                &CtrlOp::Join {
                    servers: servers.into_iter().collect(),
                },
                None,
            );
            out.push(c.latest().clone());
        }
        out
    }

    #[test]
    fn a_moved_shard_carries_its_data_and_duplicate_table() {
        let cs = configs();
        let (mut g1, mut g2) = (GroupState::new(1, None), GroupState::new(2, None));
        for g in [&mut g1, &mut g2] {
            g.apply_command(&Command::Config {
                config: cs[1].clone(),
            });
        }
        // "0" is shard 8 (b'0' = 48): owned by 1 in configuration 1, by 2 in 2.
        let key = "0";
        let s = key2shard(key);
        assert_eq!(cs[1].shards[s], 1);
        assert_eq!(cs[2].shards[s], 2, "{:?}", cs[2]);
        assert!(g2.check_key(key).is_err());
        let first = g1.apply_command(&append(key, "x", 9, 1)).unwrap();
        for g in [&mut g1, &mut g2] {
            g.apply_command(&Command::Config {
                config: cs[2].clone(),
            });
        }
        // Neither serves it while it moves; a request proposed before is refused.
        assert_eq!(
            g1.apply_command(&append(key, "y", 9, 2))
                .unwrap()
                .get("wrong_group"),
            Some(&Value::Bool(true))
        );
        assert!(g2.check_key(key).is_err());
        assert!(!g1.settled() && !g2.settled());
        let data = g1.handoff(2, s).unwrap();
        g2.apply_command(&Command::Install {
            num: 2,
            shard: s,
            data,
        });
        assert!(g2.check_key(key).is_ok());
        // The retry of the append that g1 applied is recognised by g2.
        let again = g2.apply_command(&append(key, "x", 9, 1)).unwrap();
        assert_eq!(first, again);
        assert_eq!(g2.shards[s].data.as_ref().unwrap().get(key), Some("x"));
        let done = g1
            .apply_command(&Command::Delete { num: 2, shard: s })
            .unwrap();
        assert_eq!(done.kind, "shard_delete_ok");
        // Only this shard is deleted; the others that left wait for theirs.
        assert!(g1.shards[s].data.is_none() && g1.shards[s].status == Status::Absent);
        g2.apply_command(&Command::Deleted { num: 2, shard: s });
        assert!(!g2.shards[s].gc);
        let restored = GroupState::from_snapshot(&g2.to_snapshot(), None).unwrap();
        assert_eq!(restored, g2);
    }

    #[test]
    fn configurations_are_taken_in_order_and_only_when_settled() {
        let cs = configs();
        let mut g2 = GroupState::new(2, None);
        g2.apply_command(&Command::Config {
            config: cs[2].clone(),
        });
        assert_eq!(g2.config.num, 0, "skipped configuration 1");
        g2.apply_command(&Command::Config {
            config: cs[1].clone(),
        });
        g2.apply_command(&Command::Config {
            config: cs[2].clone(),
        });
        assert_eq!(g2.config.num, 2);
        let mut g1 = GroupState::new(1, None);
        g1.apply_command(&Command::Config {
            config: cs[1].clone(),
        });
        g1.apply_command(&Command::Config {
            config: cs[2].clone(),
        });
        let mut next = cs[2].clone();
        next.num = 3;
        g1.apply_command(&Command::Config { config: next });
        assert_eq!(
            g1.config.num, 2,
            "took a configuration with shards still leaving"
        );
    }
}
