//! The reference Raft core (`impls/raft`, the code the node runs) wrapped as
//! stateright actors and checked in the small: every interleaving of elections,
//! heartbeats, proposals, snapshots and crash-restarts on a network that loses,
//! duplicates and reorders every message, up to a bound on terms and restarts.
//!
//! - [`server`]: one server as an actor (core + disk + service + ghost state).
//! - [`wire`]: peer messages made hashable for stateright's network.
//! - [`properties`]: election safety, log matching, leader completeness and state
//!   machine safety.
//!
//! It is a crate of its own, beside `specs`, because it depends on the reference
//! core, which depends on `specs` for its protocol.

pub mod properties;
pub mod server;
pub mod wire;

use raft::Bug;
use stateright::actor::{ActorModel, ActorModelAction, ActorModelState, LossyNetwork, Network};
use stateright::{Model, Path, Property};

use crate::server::{name, RaftServer, Timer};
use crate::wire::Wire;

/// The model's bounds and switches.
#[derive(Clone, Debug)]
pub struct RaftModel {
    pub servers: usize,
    /// States with a term beyond this are not explored.
    pub max_term: u64,
    /// Elections started, across the cluster.
    pub max_campaigns: u32,
    /// Commands proposed, across the cluster (a leader proposes at most one a term).
    pub max_proposals: u32,
    /// Crash-restarts, across the cluster.
    pub max_restarts: u32,
    /// Heartbeats a leader sends in one term.
    pub max_heartbeats: u32,
    pub snapshots: bool,
    /// Whether the network also drops messages outright. On the duplicating network
    /// any message may already go undelivered forever, which is all a loss can do to
    /// safety, so drops only add states.
    pub drops: bool,
    pub bug: Option<Bug>,
}

pub type State = ActorModelState<RaftServer, ()>;
pub type Action = ActorModelAction<Wire, Timer>;

/// The actor model, with properties and bounds, as a stateright [`Model`].
pub struct RaftChecked {
    config: RaftModel,
    actors: ActorModel<RaftServer, RaftModel, ()>,
}

impl RaftModel {
    /// Three servers, two candidates in term 1, a crash-restart, one heartbeat and one
    /// command: a vote must survive the restart, and the command commits. 256,000 to
    /// 293,000 states up to symmetry (see docs/raft.md).
    pub fn one_term() -> RaftModel {
        RaftModel {
            servers: 3,
            max_term: 1,
            max_campaigns: 2,
            max_proposals: 1,
            max_restarts: 1,
            max_heartbeats: 1,
            snapshots: false,
            drops: false,
            bug: None,
        }
    }

    /// Three servers, two elections over two terms and one command, which either
    /// term's leader may propose: a later leader must hold what an earlier one
    /// committed, and an uncommitted entry may be overwritten only consistently.
    /// About two thirds of a million states up to symmetry.
    pub fn two_terms() -> RaftModel {
        RaftModel {
            max_term: 2,
            max_restarts: 0,
            max_heartbeats: 0,
            ..RaftModel::one_term()
        }
    }

    /// One leader, one command and a heartbeat, with the service taking snapshots: a
    /// follower that missed the command is caught up by InstallSnapshot.
    pub fn snapshots() -> RaftModel {
        RaftModel {
            max_campaigns: 1,
            max_restarts: 0,
            snapshots: true,
            ..RaftModel::one_term()
        }
    }

    /// Larger bounds, with snapshots, InstallSnapshot and drops, for random walks:
    /// too many states to enumerate.
    pub fn wide() -> RaftModel {
        RaftModel {
            servers: 3,
            max_term: 4,
            max_campaigns: 5,
            max_proposals: 4,
            max_restarts: 2,
            max_heartbeats: 2,
            snapshots: true,
            drops: true,
            bug: None,
        }
    }

    pub fn with_bug(mut self, bug: Option<Bug>) -> RaftModel {
        self.bug = bug;
        self
    }

    pub fn into_model(self) -> RaftChecked {
        assert!(
            (3..=9).contains(&self.servers),
            "the model runs 3 to 9 servers"
        );
        let server = RaftServer {
            members: (0..self.servers).map(|i| name(i).to_string()).collect(),
            bug: self.bug,
            snapshots: self.snapshots,
            restarts: self.max_restarts > 0,
            max_heartbeats: self.max_heartbeats,
        };
        let drops = if self.drops {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        };
        let actors = ActorModel::new(self.clone(), ())
            .actors(std::iter::repeat_n(server, self.servers))
            .init_network(Network::new_unordered_duplicating([]))
            .lossy_network(drops);
        RaftChecked {
            config: self,
            actors,
        }
    }
}

impl RaftChecked {
    pub fn config(&self) -> &RaftModel {
        &self.config
    }

    /// A path as numbered steps, then each server's state at its end: what a
    /// counterexample prints.
    pub fn trace(&self, path: &Path<State, Action>) -> String {
        let mut out = String::new();
        for (k, action) in path.clone().into_actions().iter().enumerate() {
            out += &format!("{:>3}. {}\n", k + 1, self.format_action(action));
        }
        out += "at the end:\n";
        for (i, s) in path.last_state().actor_states.iter().enumerate() {
            let log: Vec<String> = s
                .raft
                .entries()
                .iter()
                .map(|e| format!("{}:{}", e.term, e.command))
                .collect();
            out += &format!(
                "  {} term {} {:?} voted {:?} commit {} log after {} [{}] led {:?} disk vote {:?}\n",
                name(i),
                s.raft.term(),
                s.raft.role(),
                s.raft.voted_for(),
                s.raft.commit_index(),
                s.raft.log_start(),
                log.join(", "),
                s.ghost.led,
                s.disk.voted_for,
            );
        }
        out
    }
}

impl Model for RaftChecked {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.actors.init_states()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.actors.actions(state, actions)
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut next = self.actors.next_state(last, action)?;
        // Stateright's duplicating network remembers the last message delivered, which
        // makes states reached by different deliveries differ. Raft's properties do
        // not look at it; forgetting it lets those states merge.
        if let Network::UnorderedDuplicating(_, last_delivered) = &mut next.network {
            *last_delivered = None;
        }
        Some(next)
    }

    fn format_action(&self, action: &Action) -> String {
        self.actors.format_action(action)
    }

    fn format_step(&self, last: &State, action: Action) -> Option<String> {
        self.actors.format_step(last, action)
    }

    fn as_svg(&self, path: Path<State, Action>) -> Option<String> {
        self.actors.as_svg(path)
    }

    fn within_boundary(&self, state: &State) -> bool {
        let c = &self.config;
        let servers = &state.actor_states;
        servers.iter().all(|s| s.raft.term() <= c.max_term)
            && servers.iter().map(|s| s.ghost.campaigns).sum::<u32>() <= c.max_campaigns
            && servers.iter().map(|s| s.ghost.restarts).sum::<u32>() <= c.max_restarts
            && servers.iter().map(|s| s.ghost.proposals).sum::<u32>() <= c.max_proposals
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties = vec![
            Property::always("election safety", |_, s: &State| {
                properties::election_safety(&s.actor_states)
            }),
            Property::always("log matching", |_, s: &State| {
                properties::log_matching(&s.actor_states)
            }),
            Property::always("leader completeness", |_, s: &State| {
                properties::leader_completeness(&s.actor_states)
            }),
            Property::always("state machine safety", |_, s: &State| {
                properties::state_machine_safety(&s.actor_states)
            }),
            Property::sometimes("a leader is elected", |_, s: &State| {
                s.actor_states.iter().any(|a| !a.ghost.led.is_empty())
            }),
            Property::sometimes("an entry is committed", |_, s: &State| {
                s.actor_states.iter().any(|a| !a.ghost.applied.is_empty())
            }),
        ];
        if self.config.snapshots {
            properties.push(Property::sometimes(
                "a snapshot is installed",
                |_, s: &State| s.actor_states.iter().any(|a| a.ghost.installed > 0),
            ));
        }
        properties
    }
}
