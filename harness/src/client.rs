//! Harness-owned clients: each has one operation outstanding, resends it with the
//! same sequence number until it gets an answer or its deadline passes (or, for a
//! protocol without sequence numbers, sends it once: [`Protocol::resends`]), and
//! records every operation in the history.
//!
//! What a request looks like and what a reply means is the system's [`Protocol`];
//! which operations to run is a [`Workload`]. A definite error is recorded as `fail`;
//! a timeout or an indefinite error as `info` (unknown), because the operation may
//! have taken effect. A retryable error (11, temporarily unavailable) is resent with
//! exponential backoff until the operation's deadline, so a node that needs a moment
//! (to elect a leader, say) is served; a reply the protocol does not allow is a
//! protocol error of the node. A retryable error is retried at once at the next
//! target, or at the one the reply names as `"leader"` (a replicated service's
//! redirect), until every target was asked; then after a pause that doubles with each
//! such round (and starts again when a reply names a leader), so that nodes naming
//! each other cannot keep a client busy. A client stays with a target that serves it
//! (it moves on after a timeout or an error), and clients start at different
//! targets, so that a service is asked through every node. Clients that see no operation succeed for
//! [`ClientConfig::stall_timeout`] stop issuing new ones, so a node that never serves
//! fails its test quickly with "no progress" instead of running out the clock.

use std::collections::{HashMap, HashSet};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use specs::node_protocol::{Body, Message};

use crate::cluster::{Cluster, Driver};
use crate::history::Completion;
use crate::network::Latency;

/// A reply's meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<O> {
    Ok(O),
    /// Definite error: the operation did not happen.
    Fail(String),
    /// Definite error that says to try again later: resent after a backoff.
    Retry(String),
    /// Indefinite error: it may have happened; the client retries.
    Unknown(String),
    /// A reply the protocol does not allow: recorded as the node's protocol error, and
    /// the operation's outcome as unknown.
    Invalid(String),
}

/// How a system's operations go over the wire.
pub trait Protocol {
    type Input: Serialize + Clone + std::fmt::Debug;
    type Output: Serialize + Clone + std::fmt::Debug;
    /// The request body for `input` from `client`, with its sequence number.
    fn request(&self, input: &Self::Input, client: u64, seq: u64) -> Body;
    fn reply(&self, input: &Self::Input, reply: &Body) -> Reply<Self::Output>;
    /// False for clients that send each operation once, as Maelstrom's do: an attempt
    /// is awaited until the operation's deadline ([`ClientConfig::op_timeout`]), and
    /// one that goes unanswered or gets an indefinite error ends its operation as
    /// unknown instead of being sent again, since a node that keeps no client ids
    /// cannot tell a second copy from a new operation. A definite refusal (error 11)
    /// is still retried after its backoff: nothing was done.
    fn resends(&self) -> bool {
        true
    }

    /// Where the next attempt of `input` goes, for systems whose operations have an
    /// owner (a shard's group); `None`: the configured targets in turn. `turn` is the
    /// client's place in its rotation: it stays while a node serves the client and
    /// moves on when one refuses (error 11) or does not answer.
    fn target(&self, _input: &Self::Input, _turn: usize) -> Option<String> {
        None
    }
}

/// Which operation client `client` (0-based within its set) runs next; `None` when it
/// is finished.
pub trait Workload<I> {
    fn next(&mut self, client: usize, rng: &mut StdRng) -> Option<I>;
}

impl<I, F: FnMut(usize, &mut StdRng) -> Option<I>> Workload<I> for F {
    fn next(&mut self, client: usize, rng: &mut StdRng) -> Option<I> {
        self(client, rng)
    }
}

/// Client timing.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Resend after this long without an answer.
    pub attempt_timeout: u64,
    /// Give up (record `info`) after this long.
    pub op_timeout: u64,
    /// Pause between one operation's end and the next one's start.
    pub think: Latency,
    /// Nodes to send to; a retry goes to the next one.
    pub targets: Vec<String>,
    /// Stop issuing operations when none has succeeded for this long (0: never).
    pub stall_timeout: u64,
}

impl ClientConfig {
    /// The longest pause between retries of a retryable error.
    fn max_backoff(&self) -> u64 {
        self.attempt_timeout.saturating_mul(16)
    }
}

/// An operation as a client saw it, for checks beyond linearizability.
#[derive(Debug, Clone)]
pub struct Done<I, O> {
    /// 0-based index in the client set.
    pub client: usize,
    pub input: I,
    pub completion: Completion<O>,
    pub call: u64,
    pub ret: u64,
}

#[derive(Debug)]
struct Pending<I> {
    input: I,
    op: u64,
    seq: u64,
    call: u64,
    attempts: HashSet<u64>,
    /// The last attempt is still waiting for its answer (a wake-up then means it
    /// timed out).
    awaiting: bool,
    /// Some attempt may have taken effect (it timed out, or its answer was
    /// indefinite), so running out of time is `info`, not `fail`.
    indefinite: bool,
    /// The pause before the next retry of a retryable error.
    backoff: u64,
    /// Retries sent at once, to the next target or the one a reply named, so far.
    redirects: usize,
}

#[derive(Debug)]
struct ClientState<I> {
    id: u64,
    name: String,
    seq: u64,
    next_msg_id: u64,
    target: usize,
    pending: Option<Pending<I>>,
    finished: bool,
    /// Only the newest wake-up of a client counts.
    wake_generation: u32,
}

/// A set of clients running a workload against a cluster.
pub struct Clients<P: Protocol, W: Workload<P::Input>> {
    protocol: P,
    workload: W,
    config: ClientConfig,
    count: usize,
    clients: Vec<ClientState<P::Input>>,
    by_name: HashMap<String, usize>,
    rng: StdRng,
    /// When an operation last succeeded (or the run started).
    last_progress: u64,
    /// Set when the clients stopped for lack of progress: the time they stopped.
    stalled_at: Option<u64>,
    pub done: Vec<Done<P::Input, P::Output>>,
}

impl<P: Protocol, W: Workload<P::Input>> Clients<P, W> {
    /// `count` clients; their ids are reserved from the cluster when the run starts.
    pub fn new(protocol: P, workload: W, config: ClientConfig, count: usize, seed: u64) -> Self {
        assert!(!config.targets.is_empty(), "clients need a node to talk to");
        Clients {
            protocol,
            workload,
            config,
            count,
            clients: Vec::new(),
            by_name: HashMap::new(),
            rng: StdRng::seed_from_u64(seed ^ 0x636c_6965_6e74_7300),
            last_progress: 0,
            stalled_at: None,
            done: Vec::new(),
        }
    }

    /// When the clients gave up for lack of progress, if they did.
    pub fn stalled_at(&self) -> Option<u64> {
        self.stalled_at
    }

    fn token(&mut self, client: usize) -> u64 {
        let c = &mut self.clients[client];
        c.wake_generation = c.wake_generation.wrapping_add(1);
        ((client as u64) << 32) | u64::from(c.wake_generation)
    }

    fn begin_next(&mut self, cluster: &mut Cluster, client: usize) {
        let now = cluster.now();
        let stall = self.config.stall_timeout;
        if stall > 0 && now.saturating_sub(self.last_progress) >= stall {
            self.stalled_at.get_or_insert(now);
            self.clients[client].finished = true;
            return;
        }
        let Some(input) = self.workload.next(client, &mut self.rng) else {
            self.clients[client].finished = true;
            return;
        };
        let now = cluster.now();
        let c = &mut self.clients[client];
        c.seq += 1;
        let op = cluster.history.call(c.id, now, &input);
        c.pending = Some(Pending {
            input,
            op,
            seq: c.seq,
            call: now,
            attempts: HashSet::new(),
            awaiting: false,
            indefinite: false,
            backoff: self.config.attempt_timeout,
            redirects: 0,
        });
        self.attempt(cluster, client);
    }

    fn attempt(&mut self, cluster: &mut Cluster, client: usize) {
        let now = cluster.now();
        let c = &mut self.clients[client];
        let pending = c.pending.as_mut().expect("an operation in flight");
        let mut body = self.protocol.request(&pending.input, c.id, pending.seq);
        c.next_msg_id += 1;
        body.msg_id = Some(c.next_msg_id);
        pending.attempts.insert(c.next_msg_id);
        pending.awaiting = true;
        // A system whose operations have an owner picks the node; `c.target` stays
        // with a node that serves and moves on when it does not.
        let dest = match self.protocol.target(&pending.input, c.target) {
            Some(dest) => dest,
            None => self.config.targets[c.target % self.config.targets.len()].clone(),
        };
        let message = Message {
            src: c.name.clone(),
            dest,
            now: None,
            body,
        };
        cluster.send(message);
        let wait = if self.protocol.resends() {
            self.config.attempt_timeout
        } else {
            (pending.call + self.config.op_timeout)
                .saturating_sub(now)
                .max(1)
        };
        let token = self.token(client);
        cluster.wake(now + wait, token);
    }

    /// The target a reply names as `"leader"`, when it is another one than the
    /// node that answered.
    fn redirect(&self, reply: &Message) -> Option<usize> {
        let leader = reply.body.str("leader")?;
        if leader == reply.src {
            return None;
        }
        self.config.targets.iter().position(|t| t == leader)
    }

    fn finish(&mut self, cluster: &mut Cluster, client: usize, completion: Completion<P::Output>) {
        let now = cluster.now();
        if matches!(completion, Completion::Ok(_)) {
            self.last_progress = now;
        }
        let pending = self.clients[client]
            .pending
            .take()
            .expect("an operation in flight");
        cluster.history.complete(pending.op, now, &completion);
        self.done.push(Done {
            client,
            input: pending.input,
            completion,
            call: pending.call,
            ret: now,
        });
        let think = self.config.think.sample(&mut self.rng);
        let token = self.token(client);
        cluster.wake(now + think, token);
    }
}

impl<P: Protocol, W: Workload<P::Input>> Driver for Clients<P, W> {
    fn start(&mut self, cluster: &mut Cluster) {
        let ids = cluster.new_client_ids(self.count as u64);
        self.clients = ids
            .enumerate()
            .map(|(i, id)| ClientState {
                id,
                name: format!("c{id}"),
                seq: 0,
                next_msg_id: 0,
                target: i,
                pending: None,
                finished: false,
                wake_generation: 0,
            })
            .collect();
        self.by_name = (self.clients.iter().enumerate())
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        self.last_progress = cluster.now();
        for client in 0..self.count {
            self.begin_next(cluster, client);
        }
    }

    fn on_message(&mut self, cluster: &mut Cluster, message: Message) {
        let Some(&client) = self.by_name.get(&message.dest) else {
            return;
        };
        let Some(pending) = &self.clients[client].pending else {
            return;
        };
        if !message
            .body
            .in_reply_to
            .is_some_and(|id| pending.attempts.contains(&id))
        {
            return;
        }
        let hint = self.redirect(&message);
        match self.protocol.reply(&pending.input, &message.body) {
            Reply::Ok(output) => self.finish(cluster, client, Completion::Ok(output)),
            Reply::Fail(_) if !pending.indefinite => self.finish(cluster, client, Completion::Fail),
            // An earlier attempt may have taken effect: the outcome is unknown.
            Reply::Fail(_) => self.finish(cluster, client, Completion::Info),
            Reply::Retry(_) => {
                let now = cluster.now();
                let max = self.config.max_backoff();
                // The other targets, at once, each time round.
                let others = self.config.targets.len() - 1;
                let c = &mut self.clients[client];
                let pending = c.pending.as_mut().expect("in flight");
                pending.awaiting = false;
                match hint {
                    Some(target) => {
                        c.target = target;
                        // Someone knows a leader: the service is up, no need to wait long.
                        pending.backoff = self.config.attempt_timeout;
                    }
                    None => c.target += 1,
                }
                // Round the targets at once (the answer may be another node's to give),
                // then a pause that grows while no round succeeds (none may be ready).
                if pending.redirects < others {
                    pending.redirects += 1;
                    let token = self.token(client);
                    cluster.wake(now, token);
                    return;
                }
                pending.redirects = 0;
                let pause = pending.backoff;
                pending.backoff = (pending.backoff * 2).min(max);
                let token = self.token(client);
                cluster.wake(now + pause, token);
            }
            Reply::Unknown(_) if !self.protocol.resends() => {
                self.finish(cluster, client, Completion::Info)
            }
            // Wait for the attempt timeout, then resend: the request id makes it safe.
            Reply::Unknown(_) => {
                let c = &mut self.clients[client];
                match hint {
                    Some(target) => c.target = target,
                    None => c.target += 1,
                }
                let pending = c.pending.as_mut().expect("in flight");
                pending.indefinite = true;
                // The next attempt, at the attempt timeout, goes to the new target.
                pending.awaiting = false;
            }
            Reply::Invalid(e) => {
                cluster.errors.push(format!(
                    "{} answered {}'s request with {}: {e}",
                    message.src,
                    message.dest,
                    message.body.to_json()
                ));
                self.finish(cluster, client, Completion::Info)
            }
        }
    }

    fn on_wake(&mut self, cluster: &mut Cluster, token: u64) {
        let client = (token >> 32) as usize;
        if client >= self.clients.len()
            || token as u32 != self.clients[client].wake_generation
            || self.clients[client].finished
        {
            return;
        }
        let now = cluster.now();
        let op_timeout = self.config.op_timeout;
        let c = &mut self.clients[client];
        let Some(p) = c.pending.as_mut() else {
            return self.begin_next(cluster, client);
        };
        if p.awaiting {
            // The last attempt went unanswered: it may still take effect; the next
            // goes to the next target.
            p.indefinite = true;
            c.target += 1;
        }
        if p.awaiting && !self.protocol.resends() {
            self.finish(cluster, client, Completion::Info)
        } else if now >= p.call + op_timeout {
            let completion = if p.indefinite {
                Completion::Info
            } else {
                // Every attempt was refused definitely.
                Completion::Fail
            };
            self.finish(cluster, client, completion)
        } else {
            self.attempt(cluster, client)
        }
    }

    fn done(&self) -> bool {
        self.clients.iter().all(|c| c.finished)
    }
}
