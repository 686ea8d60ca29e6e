//! One kvraft test's run: its nodes as a [`KvCluster`] (shared with kvsrv), and the
//! leader found by asking.

use specs::node_protocol::{Body, ErrorCode, Message};

use crate::cluster::{Cluster, Driver, Durability};
use crate::suite::{property, Context};
use crate::suites::kv_cluster::{KvCluster, Shape};

/// Nodes in a cluster.
pub(super) const NODES: usize = 3;
/// How long finding a leader may take: many election timeouts.
const LEADER_LIMIT: u64 = 10_000_000_000;

/// A test's cluster.
pub(super) type Test<'a> = KvCluster<'a>;

/// How a test's cluster is set up.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setup {
    pub nodes: usize,
    /// `KVRAFT_MAXRAFTSTATE`: bytes of Raft state at which a node snapshots; `-1`
    /// for never (6.5840's part A).
    pub max_raft_state: i64,
    /// A client pauses up to this long between operations.
    pub think_max: u64,
    /// Power losses need [`Durability::LazyFs`]; otherwise the data dirs are in
    /// memory (see [`KvCluster::start_in_memory`]).
    pub durability: Durability,
}

impl Setup {
    /// `nodes` nodes, no snapshots.
    pub const fn nodes(nodes: usize) -> Setup {
        Setup {
            nodes,
            max_raft_state: -1,
            think_max: 60_000_000,
            durability: Durability::Disk,
        }
    }

    pub const fn snapshots(self, max_raft_state: i64) -> Setup {
        Setup {
            max_raft_state,
            ..self
        }
    }
}

/// Three nodes without snapshots (`None`, with the failure recorded, if they cannot
/// start).
pub(super) fn start(cx: &mut Context) -> Option<Test<'_>> {
    start_with(cx, Setup::nodes(NODES))
}

/// Starts the nodes of `setup`. Clients send to every node in turn (a node that
/// does not lead redirects with error 11 and, if it knows, the leader) and resend
/// after 50 ms.
pub(super) fn start_with(cx: &mut Context, setup: Setup) -> Option<Test<'_>> {
    let shape = Shape {
        nodes: setup.nodes,
        env: vec![(
            "KVRAFT_MAXRAFTSTATE".into(),
            setup.max_raft_state.to_string(),
        )],
        attempt_timeout: 50_000_000,
        think_max: setup.think_max,
        min_percent: 90,
    };
    match setup.durability {
        Durability::Disk => KvCluster::start_in_memory(cx, shape),
        Durability::LazyFs => KvCluster::start_on(cx, shape, Durability::LazyFs),
    }
}

impl KvCluster<'_> {
    /// The current leader, found by asking every node (outside the history) until
    /// one answers a read or names the leader in its "not the leader" error. `None`,
    /// with a progress failure recorded, if none is found in time.
    pub fn leader(&mut self) -> Option<String> {
        let leader = LeaderProbe::find(&mut self.cluster, LEADER_LIMIT);
        if leader.is_none() {
            self.cx.fail(
                property::PROGRESS,
                format!(
                    "no progress: no node served a read or named a leader within {} s",
                    LEADER_LIMIT / 1_000_000_000
                ),
            );
        }
        leader
    }
}

/// Asks every node for a read (outside the history) until one serves it or names
/// the leader; also used by the kvraft crate's own process tests.
pub struct LeaderProbe {
    name: String,
    nodes: Vec<String>,
    leader: Option<String>,
    next_msg_id: u64,
}

impl LeaderProbe {
    /// The leader of `cluster`'s nodes, if one is found within `limit_ns` on its
    /// clock.
    pub fn find(cluster: &mut Cluster, limit_ns: u64) -> Option<String> {
        let mut probe = LeaderProbe {
            name: String::new(),
            nodes: cluster.node_names().to_vec(),
            leader: None,
            next_msg_id: 0,
        };
        let limit = cluster.now() + limit_ns;
        cluster.run(&mut probe, limit);
        probe.leader
    }

    fn ask(&mut self, cluster: &mut Cluster) {
        for node in self.nodes.clone() {
            self.next_msg_id += 1;
            let mut body = Body::new("read").with("key", "leader-probe");
            body.msg_id = Some(self.next_msg_id);
            cluster.send(Message {
                src: self.name.clone(),
                dest: node,
                now: None,
                body,
            });
        }
        let now = cluster.now();
        cluster.wake(now + 100_000_000, 0);
    }
}

impl Driver for LeaderProbe {
    fn start(&mut self, cluster: &mut Cluster) {
        self.name = format!("c{}", cluster.new_client_ids(1).start);
        self.ask(cluster);
    }

    fn on_message(&mut self, _: &mut Cluster, message: Message) {
        let body = &message.body;
        match body.error_code() {
            Some(ErrorCode::TemporarilyUnavailable) => {
                if let Some(l) = body.str("leader") {
                    self.leader = Some(l.to_string());
                }
            }
            // Served: a read of the probe key, present or not.
            Some(ErrorCode::KeyDoesNotExist) => self.leader = Some(message.src),
            None if body.kind == "read_ok" => self.leader = Some(message.src),
            _ => {}
        }
    }

    fn on_wake(&mut self, cluster: &mut Cluster, _: u64) {
        if self.leader.is_none() {
            self.ask(cluster);
        }
    }

    fn done(&self) -> bool {
        self.leader.is_some()
    }
}
