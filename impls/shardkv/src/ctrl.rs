//! The shard controller's state machine, with no Raft and no IO: the numbered
//! configurations, Join, Leave, Move and Query, deterministic rebalancing, and the
//! duplicate table that makes a retried Join/Leave/Move apply once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use specs::node_protocol::{Body, ErrorCode};

use crate::NSHARDS;

/// One configuration: which group serves each shard, and the servers of each group.
/// Group 0 is "nobody" (configuration 0 assigns every shard to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub num: u64,
    pub shards: Vec<u64>,
    #[serde(with = "string_keys")]
    pub groups: BTreeMap<u64, Vec<String>>,
}

/// Group ids as the object keys they are on the wire, read back as numbers even
/// inside a tagged enum (whose buffering loses serde_json's own key conversion).
mod string_keys {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<u64, Vec<String>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let strings: BTreeMap<String, &Vec<String>> =
            map.iter().map(|(k, v)| (k.to_string(), v)).collect();
        strings.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u64, Vec<String>>, D::Error> {
        let strings = BTreeMap::<String, Vec<String>>::deserialize(d)?;
        strings
            .into_iter()
            .map(|(k, v)| {
                k.parse()
                    .map(|k| (k, v))
                    .map_err(|_| serde::de::Error::custom(format!("group id {k:?}")))
            })
            .collect()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            num: 0,
            shards: vec![0; NSHARDS],
            groups: BTreeMap::new(),
        }
    }
}

impl Config {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("configurations serialise")
    }

    /// A configuration as it travels in a `query_ok` (group ids are object keys, so
    /// strings on the wire).
    pub fn from_value(value: &Value) -> Result<Config, String> {
        let config: Config = serde_json::from_value(value.clone())
            .map_err(|e| format!("not a configuration: {e}: {value}"))?;
        if config.shards.len() != NSHARDS {
            return Err(format!(
                "a configuration has {NSHARDS} shards, this one {}",
                config.shards.len()
            ));
        }
        Ok(config)
    }

    /// Shards each group of `groups` serves (groups with none included).
    fn counts(&self) -> BTreeMap<u64, usize> {
        let mut counts: BTreeMap<u64, usize> = self.groups.keys().map(|&g| (g, 0)).collect();
        for g in &self.shards {
            if let Some(c) = counts.get_mut(g) {
                *c += 1;
            }
        }
        counts
    }

    /// Spreads the shards over the groups so that counts differ by at most one,
    /// moving as few shards as possible: a group keeps up to its target, the groups
    /// that already hold most get the larger targets, and ties break by group id, so
    /// the result depends on nothing but this configuration (no map order).
    pub fn rebalance(&mut self) {
        if self.groups.is_empty() {
            self.shards = vec![0; NSHARDS];
            return;
        }
        let counts = self.counts();
        let mut order: Vec<(u64, usize)> = counts.into_iter().collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let n = order.len();
        let (base, extra) = (NSHARDS / n, NSHARDS % n);
        let target: BTreeMap<u64, usize> = order
            .iter()
            .enumerate()
            .map(|(i, &(g, _))| (g, base + usize::from(i < extra)))
            .collect();
        // Free what is over target (highest shard numbers first) or unowned.
        let mut held: BTreeMap<u64, usize> = BTreeMap::new();
        let mut free = Vec::new();
        for (s, g) in self.shards.iter_mut().enumerate() {
            match target.get(g) {
                Some(&t) if held.get(g).copied().unwrap_or(0) < t => {
                    *held.entry(*g).or_default() += 1;
                }
                _ => {
                    free.push(s);
                    *g = 0;
                }
            }
        }
        let mut free = free.into_iter();
        for (&g, &t) in &target {
            let have = held.get(&g).copied().unwrap_or(0);
            for _ in have..t {
                let s = free.next().expect("targets add up to the shards");
                self.shards[s] = g;
            }
        }
    }
}

/// A controller operation, as it travels in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CtrlOp {
    Join {
        #[serde(with = "string_keys")]
        servers: BTreeMap<u64, Vec<String>>,
    },
    Leave {
        gids: Vec<u64>,
    },
    Move {
        shard: usize,
        gid: u64,
    },
    /// `None`: the latest.
    Query {
        num: Option<u64>,
    },
}

/// Reads a controller request (`join`, `leave`, `move`, `query`) and its optional
/// `(client, seq)`; the error to answer with otherwise.
pub fn parse(body: &Body) -> Result<(CtrlOp, Option<(u64, u64)>), Body> {
    let bad = |text: String| Body::error(ErrorCode::MalformedRequest, text);
    let op = match body.kind.as_str() {
        "join" => {
            let servers = body
                .get("servers")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    bad("join: \"servers\" must be an object of group id -> names".into())
                })?;
            let mut map = BTreeMap::new();
            for (gid, names) in servers {
                let gid: u64 = gid.parse().ok().filter(|&g| g > 0).ok_or_else(|| {
                    bad(format!("join: group id {gid:?} is not a positive integer"))
                })?;
                let names: Vec<String> = serde_json::from_value(names.clone()).map_err(|_| {
                    bad(format!(
                        "join: servers of group {gid} must be a list of names"
                    ))
                })?;
                map.insert(gid, names);
            }
            CtrlOp::Join { servers: map }
        }
        "leave" => CtrlOp::Leave {
            gids: body
                .get("gids")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .ok_or_else(|| bad("leave: \"gids\" must be a list of group ids".into()))?,
        },
        "move" => {
            let shard = body
                .u64("shard")
                .filter(|&s| (s as usize) < NSHARDS)
                .ok_or_else(|| bad(format!("move: \"shard\" must be below {NSHARDS}")))?;
            let gid = body
                .u64("gid")
                .filter(|&g| g > 0)
                .ok_or_else(|| bad("move: \"gid\" must be a positive group id".into()))?;
            CtrlOp::Move {
                shard: shard as usize,
                gid,
            }
        }
        "query" => CtrlOp::Query {
            num: match body.get("num") {
                None | Some(Value::Null) => None,
                // An integer that `as_u64` refuses is a negative one: the latest.
                Some(v) => match (v.as_i64(), v.as_u64()) {
                    (_, Some(n)) => Some(n),
                    (Some(_), None) => None,
                    _ => return Err(bad("query: \"num\" must be an integer (-1: latest)".into())),
                },
            },
        },
        other => {
            return Err(Body::error(
                ErrorCode::NotSupported,
                format!("unknown request type {other:?}"),
            ))
        }
    };
    let id = match (body.u64("client"), body.u64("seq")) {
        (Some(c), Some(s)) => Some((c, s)),
        _ => None,
    };
    Ok((op, id))
}

/// The controller's replicated state: every configuration ever made, and the last
/// request of each client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtrlState {
    configs: Vec<Config>,
    clients: BTreeMap<u64, u64>,
}

impl Default for CtrlState {
    fn default() -> CtrlState {
        CtrlState {
            configs: vec![Config::default()],
            clients: BTreeMap::new(),
        }
    }
}

impl CtrlState {
    pub fn latest(&self) -> &Config {
        self.configs
            .last()
            .expect("configuration 0 is always there")
    }

    /// Applies one committed operation and gives its reply.
    pub fn apply(&mut self, op: &CtrlOp, id: Option<(u64, u64)>) -> Body {
        if let CtrlOp::Query { num } = op {
            let config = match num {
                Some(n) if (*n as usize) < self.configs.len() => &self.configs[*n as usize],
                _ => self.latest(),
            };
            return Body::new("query_ok").with("config", config.to_value());
        }
        let kind = match op {
            CtrlOp::Join { .. } => "join_ok",
            CtrlOp::Leave { .. } => "leave_ok",
            _ => "move_ok",
        };
        if let Some((client, seq)) = id {
            if self.clients.get(&client).is_some_and(|&last| seq <= last) {
                return Body::new(kind);
            }
            self.clients.insert(client, seq);
        }
        let mut next = self.latest().clone();
        next.num += 1;
        match op {
            CtrlOp::Join { servers } => {
                next.groups.extend(servers.clone());
                next.rebalance();
            }
            CtrlOp::Leave { gids } => {
                for g in gids {
                    next.groups.remove(g);
                }
                next.rebalance();
            }
            CtrlOp::Move { shard, gid } => next.shards[*shard] = *gid,
            CtrlOp::Query { .. } => unreachable!("answered above"),
        }
        self.configs.push(next);
        Body::new(kind)
    }

    pub fn snapshot(&self) -> Value {
        serde_json::to_value(self).expect("state serialises")
    }

    pub fn restore(data: &Value) -> Result<CtrlState, String> {
        serde_json::from_value(data.clone())
            .map_err(|e| format!("the snapshot's data is not a controller state: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request body a client sends for `op`: what [`parse`] must read back. Only
    /// the tests build requests (the harness's clerks and our nodes' controller
    /// queries write their own).
    fn request(op: &CtrlOp) -> Body {
        match op {
            CtrlOp::Join { servers } => {
                let servers: serde_json::Map<String, Value> = servers
                    .iter()
                    .map(|(g, s)| (g.to_string(), Value::from(s.clone())))
                    .collect();
                Body::new("join").with("servers", Value::Object(servers))
            }
            CtrlOp::Leave { gids } => Body::new("leave").with("gids", gids.clone()),
            CtrlOp::Move { shard, gid } => {
                Body::new("move").with("shard", *shard).with("gid", *gid)
            }
            CtrlOp::Query { num } => Body::new("query").with("num", num.map_or(-1, |n| n as i64)),
        }
    }

    fn join(state: &mut CtrlState, gids: &[u64]) {
        let servers = gids.iter().map(|&g| (g, vec![format!("s{g}")])).collect();
        state.apply(&CtrlOp::Join { servers }, None);
    }

    fn counts(c: &Config) -> Vec<usize> {
        c.counts().values().copied().collect()
    }

    #[test]
    fn rebalancing_is_even_and_moves_the_least() {
        let mut s = CtrlState::default();
        join(&mut s, &[1]);
        assert_eq!(s.latest().shards, vec![1; NSHARDS]);
        for g in 2..=12u64 {
            let before = s.latest().clone();
            join(&mut s, &[g]);
            let after = s.latest().clone();
            let c = counts(&after);
            let (min, max) = (c.iter().min().unwrap(), c.iter().max().unwrap());
            assert!(max - min <= 1, "{after:?}");
            if g <= NSHARDS as u64 {
                assert!(after.shards.iter().all(|&x| x != 0));
            }
            // Only shards the new group takes move, and it takes no more than its share.
            let moved = (0..NSHARDS)
                .filter(|&i| before.shards[i] != after.shards[i])
                .count();
            assert!(
                moved <= NSHARDS / g as usize + 1,
                "moved {moved} on join {g}"
            );
            assert!((0..NSHARDS)
                .filter(|&i| before.shards[i] != after.shards[i])
                .all(|i| after.shards[i] == g));
        }
        let before = s.latest().clone();
        s.apply(&CtrlOp::Leave { gids: vec![3] }, None);
        let after = s.latest();
        for i in 0..NSHARDS {
            if before.shards[i] != 3 {
                assert_eq!(before.shards[i], after.shards[i], "shard {i} moved");
            }
        }
    }

    #[test]
    fn the_result_does_not_depend_on_the_order_groups_were_inserted() {
        let mut a = CtrlState::default();
        join(&mut a, &[5, 2, 9]);
        let mut b = CtrlState::default();
        join(&mut b, &[9, 5, 2]);
        assert_eq!(a.latest(), b.latest());
    }

    #[test]
    fn retries_apply_once_and_old_configurations_stay() {
        let mut s = CtrlState::default();
        let op = CtrlOp::Join {
            servers: [(1, vec!["a".into()])].into(),
        };
        s.apply(&op, Some((7, 1)));
        s.apply(&op, Some((7, 1)));
        assert_eq!(s.latest().num, 1);
        s.apply(&CtrlOp::Move { shard: 0, gid: 2 }, Some((7, 2)));
        let q = s.apply(&CtrlOp::Query { num: Some(1) }, None);
        let c = Config::from_value(q.get("config").unwrap()).unwrap();
        assert_eq!(c.shards, vec![1; NSHARDS]);
        let latest = s.apply(&CtrlOp::Query { num: None }, None);
        assert_eq!(
            Config::from_value(latest.get("config").unwrap())
                .unwrap()
                .num,
            2
        );
    }

    #[test]
    fn operations_round_trip_through_the_log() {
        let op = CtrlOp::Join {
            servers: [(3, vec!["n4".into()])].into(),
        };
        let value = serde_json::to_value(&op).unwrap();
        assert_eq!(serde_json::from_value::<CtrlOp>(value).unwrap(), op);
    }

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        for op in [
            CtrlOp::Join {
                servers: [(3, vec!["n4".into()])].into(),
            },
            CtrlOp::Leave { gids: vec![3, 4] },
            CtrlOp::Move { shard: 9, gid: 1 },
            CtrlOp::Query { num: None },
            CtrlOp::Query { num: Some(4) },
        ] {
            assert_eq!(parse(&request(&op)).unwrap().0, op);
        }
        assert!(parse(&Body::new("move").with("shard", 10).with("gid", 1)).is_err());
        assert!(parse(&Body::new("join").with("servers", 3)).is_err());
        assert!(parse(&Body::new("nope")).is_err());
    }
}
