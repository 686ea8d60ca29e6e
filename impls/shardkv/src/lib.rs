//! A sharded key/value service (6.5840 lab 5): a shard controller and replica
//! groups, each a Raft group (`raft`), the groups running the key/value state
//! machine of `kvraft` once per shard.
//!
//! - [`ctrl`]: the controller's state machine: numbered configurations, Join,
//!   Leave, Move, Query, deterministic rebalancing with the fewest moves.
//! - [`group`]: a replica group's state machine: configurations taken one at a
//!   time, shards pulled from their previous owner with their duplicate tables,
//!   refused with a "wrong group" error when not served, deleted by the old owner
//!   once the new one has them.
//! - [`node`]: the nodes as `node::Node`s, each machine on a `kvraft::replica::Replica`
//!   (one Raft member with persistence); which node is what comes from [`Layout`]
//!   (`SHARDKV_LAYOUT`).
//!
//! Everything travels in the node protocol, so the harness is the network between
//! the groups, the controller and the clients.

pub mod bug;
pub mod ctrl;
pub mod group;
pub mod node;

use std::collections::BTreeMap;

pub use crate::bug::Bug;

/// Shards in every configuration (6.5840's `NShards`).
pub const NSHARDS: usize = 10;

/// The shard of `key`: its first byte modulo [`NSHARDS`] (6.5840's `key2shard`), the
/// empty key in shard 0.
pub fn key2shard(key: &str) -> usize {
    key.as_bytes()
        .first()
        .map_or(0, |&b| usize::from(b) % NSHARDS)
}

/// Which nodes form the controller and each replica group:
/// `ctrl=n1,n2,n3;100=n4,n5,n6;101=n7,n8,n9` (`SHARDKV_LAYOUT`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub ctrl: Vec<String>,
    pub groups: BTreeMap<u64, Vec<String>>,
}

/// What one node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Ctrl { members: Vec<String> },
    Group { gid: u64, members: Vec<String> },
}

impl Layout {
    pub fn parse(text: &str) -> Result<Layout, String> {
        let mut layout = Layout::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, nodes) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected NAME=node,node,..."))?;
            let nodes: Vec<String> = nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect();
            if nodes.is_empty() {
                return Err(format!("{part:?}: no nodes"));
            }
            match name.trim() {
                "ctrl" => layout.ctrl = nodes,
                gid => {
                    let gid: u64 = gid
                        .parse()
                        .ok()
                        .filter(|&g| g > 0)
                        .ok_or_else(|| format!("{gid:?}: a group id is a positive integer"))?;
                    layout.groups.insert(gid, nodes);
                }
            }
        }
        if layout.ctrl.is_empty() {
            return Err("no controller (ctrl=...)".into());
        }
        Ok(layout)
    }

    pub fn to_text(&self) -> String {
        let mut parts = vec![format!("ctrl={}", self.ctrl.join(","))];
        for (g, nodes) in &self.groups {
            parts.push(format!("{g}={}", nodes.join(",")));
        }
        parts.join(";")
    }

    pub fn role(&self, node: &str) -> Option<Role> {
        if self.ctrl.iter().any(|n| n == node) {
            return Some(Role::Ctrl {
                members: self.ctrl.clone(),
            });
        }
        self.groups
            .iter()
            .find(|(_, nodes)| nodes.iter().any(|n| n == node))
            .map(|(&gid, nodes)| Role::Group {
                gid,
                members: nodes.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip_and_name_roles() {
        let l = Layout::parse("ctrl=n1,n2,n3;100=n4,n5,n6; 101=n7").unwrap();
        assert_eq!(Layout::parse(&l.to_text()).unwrap(), l);
        assert_eq!(
            l.role("n7"),
            Some(Role::Group {
                gid: 101,
                members: vec!["n7".into()]
            })
        );
        assert!(matches!(l.role("n2"), Some(Role::Ctrl { .. })));
        assert_eq!(l.role("n9"), None);
        assert!(Layout::parse("100=n1").is_err());
        assert!(Layout::parse("ctrl=n1;x=n2").is_err());
    }

    #[test]
    fn keys_map_to_shards_like_6_5840() {
        assert_eq!(key2shard("0"), 8);
        assert_eq!(key2shard("1abc"), 9);
        assert_eq!(key2shard("2"), 0);
        assert_eq!(key2shard(""), 0);
    }
}
