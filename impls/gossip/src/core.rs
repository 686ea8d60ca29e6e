//! The gossip protocol as a pure state machine: rumor mongering plus anti-entropy,
//! after the course's Peerster-derived chat.
//!
//! A message is identified by its origin and a sequence number (1, 2, 3... per
//! origin). A node's *status* is, per origin, the highest sequence number up to which
//! it holds every message; it delivers each origin's messages in sequence order,
//! without gaps, so a rumor past a gap waits for the exchange of statuses to bring
//! the missing ones first.
//!
//! - **Rumor mongering.** A new message (broadcast here, or received for the first
//!   time) goes to one random neighbour, which answers with its status. What the
//!   neighbour lacks is sent to it; if it has what we lack we send our status so it
//!   sends it; once both are in sync, a coin decides whether to go on with another
//!   neighbour. A neighbour that does not answer within the rumor timeout is given up,
//!   and the coin decides again.
//! - **Anti-entropy.** Every period (jittered) a status goes to a random neighbour,
//!   which starts the same exchange. This is what repairs a rumor lost while nobody
//!   mongers it, and what brings a restarted node (which keeps nothing) back.
//!
//! Only neighbours are talked to (the topology is given). Time is handed in as
//! nanoseconds, randomness comes from a seed, and every effect is an [`Output`], so
//! the same core runs as a harness node, as a TCP chat server and in unit tests.

use std::collections::BTreeMap;

use node::rng::SplitMix;

use crate::bug::Bug;

pub const MS: u64 = 1_000_000;

/// The longest message text a node accepts; longer ones are refused (broadcast) or
/// ignored and logged (from a peer).
pub const MAX_TEXT: usize = 64 * 1024;
/// The longest origin name a node accepts from a peer.
pub const MAX_ORIGIN: usize = 256;

/// Periods and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// A status goes to a random neighbour every this many nanoseconds (jittered
    /// between half and one and a half times it).
    pub anti_entropy_period: u64,
    /// A neighbour that has not answered a rumor with its status by then is given up.
    pub rumor_timeout: u64,
    /// At most this many messages go in one rumor message.
    pub max_batch: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            anti_entropy_period: 200 * MS,
            rumor_timeout: 100 * MS,
            max_batch: 64,
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rumor {
    pub origin: String,
    pub seq: u64,
    pub text: String,
}

/// Per origin, the highest sequence number up to which every message is held.
pub type Status = BTreeMap<String, u64>;

/// What nodes send each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    Rumors(Vec<Rumor>),
    Status(Status),
}

/// An effect of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send {
        to: String,
        wire: Wire,
    },
    /// A message is delivered: each origin's in sequence order, once.
    Deliver(Rumor),
}

/// Why a broadcast was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    TooLong(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooLong(n) => {
                write!(f, "a message of {n} bytes, over the limit of {MAX_TEXT}")
            }
        }
    }
}

/// A rumor being mongered with one neighbour.
#[derive(Debug, Clone)]
struct Monger {
    origin: String,
    seq: u64,
    deadline: u64,
}

/// Counts of what a node sent, for benchmarks and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub rumor_messages: u64,
    pub status_messages: u64,
}

/// One node's gossip state.
#[derive(Debug)]
pub struct Gossip {
    origin: String,
    neighbours: Vec<String>,
    config: Config,
    rng: SplitMix,
    /// Per origin, the messages held, by sequence number.
    log: BTreeMap<String, BTreeMap<u64, String>>,
    have: Status,
    /// Per neighbour, what it is known to hold: its last status, raised by the rumors
    /// it sent since. Mongering goes on only to neighbours not known to hold the
    /// rumor, so on a line a rumor is not sent back the way it came.
    known: BTreeMap<String, Status>,
    mongering: BTreeMap<String, Monger>,
    next_anti_entropy: Option<u64>,
    bug: Option<Bug>,
    out: Vec<Output>,
    counts: Counts,
}

impl Gossip {
    /// A node whose own messages carry `origin` (unique per process run: a restarted
    /// node keeps nothing, so it must not reuse the sequence numbers of its past).
    pub fn new(origin: impl Into<String>, config: Config, seed: u64, bug: Option<Bug>) -> Gossip {
        Gossip {
            origin: origin.into(),
            neighbours: Vec::new(),
            config,
            rng: SplitMix::new(seed),
            log: BTreeMap::new(),
            have: Status::new(),
            known: BTreeMap::new(),
            mongering: BTreeMap::new(),
            next_anti_entropy: None,
            bug,
            out: Vec::new(),
            counts: Counts::default(),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn neighbours(&self) -> &[String] {
        &self.neighbours
    }

    pub fn status(&self) -> &Status {
        &self.have
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Sets the neighbours (the topology is given, never discovered) and starts the
    /// anti-entropy timer.
    pub fn set_neighbours(&mut self, now: u64, neighbours: Vec<String>) {
        self.neighbours = neighbours;
        self.neighbours.sort();
        self.neighbours.dedup();
        self.mongering
            .retain(|n, _| self.neighbours.binary_search(n).is_ok());
        self.known
            .retain(|n, _| self.neighbours.binary_search(n).is_ok());
        if self.next_anti_entropy.is_none() && self.bug != Some(Bug::NoAntiEntropy) {
            self.next_anti_entropy = Some(now + self.jittered_period());
        }
    }

    /// A new message from this node: delivered here, then mongered.
    pub fn broadcast(&mut self, now: u64, text: impl Into<String>) -> Result<Rumor, Refused> {
        let text = text.into();
        if text.len() > MAX_TEXT {
            return Err(Refused::TooLong(text.len()));
        }
        let seq = self.have.get(&self.origin).copied().unwrap_or(0) + 1;
        let rumor = Rumor {
            origin: self.origin.clone(),
            seq,
            text,
        };
        self.accept(rumor.clone());
        self.spread(now, std::slice::from_ref(&rumor), None);
        Ok(rumor)
    }

    /// A message from neighbour `from`.
    pub fn on_wire(&mut self, now: u64, from: &str, wire: Wire) {
        match wire {
            Wire::Rumors(rumors) => self.on_rumors(now, from, rumors),
            Wire::Status(status) => self.on_status(now, from, &status),
        }
    }

    /// Time has come for the next wake-up (or later).
    pub fn on_tick(&mut self, now: u64) {
        let expired: Vec<String> = self
            .mongering
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for to in expired {
            let m = self.mongering.remove(&to).expect("listed");
            if self.rng.coin() {
                self.monger(now, &m.origin, m.seq, Some(&to));
            }
        }
        if let Some(at) = self.next_anti_entropy {
            if at <= now {
                self.next_anti_entropy = Some(now + self.jittered_period());
                if self.bug == Some(Bug::Flood) {
                    self.flood_everything();
                } else if let Some(to) = self.pick(None) {
                    self.send(to, Wire::Status(self.have.clone()));
                }
            }
        }
    }

    /// When [`Gossip::on_tick`] wants to be called next.
    pub fn next_wake(&self) -> Option<u64> {
        let deadlines = self.mongering.values().map(|m| m.deadline);
        deadlines.chain(self.next_anti_entropy).min()
    }

    /// Takes the effects of the steps so far.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Every message held, by origin and sequence number.
    pub fn messages(&self) -> impl Iterator<Item = Rumor> + '_ {
        self.log.iter().flat_map(|(origin, seqs)| {
            seqs.iter().map(move |(seq, text)| Rumor {
                origin: origin.clone(),
                seq: *seq,
                text: text.clone(),
            })
        })
    }

    fn jittered_period(&mut self) -> u64 {
        let p = self.config.anti_entropy_period.max(2);
        p / 2 + self.rng.below(p)
    }

    fn send(&mut self, to: String, wire: Wire) {
        match wire {
            Wire::Rumors(_) => self.counts.rumor_messages += 1,
            Wire::Status(_) => self.counts.status_messages += 1,
        }
        self.out.push(Output::Send { to, wire });
    }

    /// A random neighbour other than `except`.
    fn pick(&mut self, except: Option<&str>) -> Option<String> {
        let candidates: Vec<&String> = self
            .neighbours
            .iter()
            .filter(|n| Some(n.as_str()) != except)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let i = self.rng.below(candidates.len() as u64) as usize;
        Some(candidates[i].clone())
    }

    fn rumor(&self, origin: &str, seq: u64) -> Option<Rumor> {
        let text = self.log.get(origin)?.get(&seq)?;
        Some(Rumor {
            origin: origin.to_string(),
            seq,
            text: text.clone(),
        })
    }

    /// Keeps `rumor` if it is new and next in its origin's sequence (any new one with
    /// `no-order`), delivering it; true if it was kept.
    fn accept(&mut self, rumor: Rumor) -> bool {
        if rumor.text.len() > MAX_TEXT || rumor.origin.len() > MAX_ORIGIN || rumor.seq == 0 {
            eprintln!(
                "ignoring a rumor from origin {:.40?} seq {} with {} bytes of text: over the limits",
                rumor.origin,
                rumor.seq,
                rumor.text.len()
            );
            return false;
        }
        let have = self.have.get(&rumor.origin).copied().unwrap_or(0);
        if rumor.seq <= have {
            return false;
        }
        let seqs = self.log.entry(rumor.origin.clone()).or_default();
        if self.bug == Some(Bug::NoOrder) {
            if seqs.contains_key(&rumor.seq) {
                return false;
            }
        } else if rumor.seq != have + 1 {
            // Past a gap: the status we answer with asks for the missing ones first.
            return false;
        }
        seqs.insert(rumor.seq, rumor.text.clone());
        let mut next = have;
        while seqs.contains_key(&(next + 1)) {
            next += 1;
        }
        self.have.insert(rumor.origin.clone(), next);
        self.out.push(Output::Deliver(rumor));
        true
    }

    fn on_rumors(&mut self, now: u64, from: &str, rumors: Vec<Rumor>) {
        if self.neighbours.iter().any(|n| n == from) {
            let known = self.known.entry(from.to_string()).or_default();
            for r in &rumors {
                let held = known.entry(r.origin.clone()).or_insert(0);
                *held = (*held).max(r.seq);
            }
        }
        let fresh: Vec<Rumor> = rumors
            .into_iter()
            .filter(|r| self.accept(r.clone()))
            .collect();
        if self.bug != Some(Bug::Flood) {
            // The acknowledgement, and what tells the sender what else we lack.
            self.send(from.to_string(), Wire::Status(self.have.clone()));
        }
        if !fresh.is_empty() {
            self.spread(now, &fresh, Some(from));
        }
    }

    /// Starts spreading new messages (received from `from`, if not ours).
    fn spread(&mut self, now: u64, fresh: &[Rumor], from: Option<&str>) {
        if self.bug == Some(Bug::Flood) {
            let to: Vec<String> = self
                .neighbours
                .iter()
                .filter(|n| Some(n.as_str()) != from)
                .cloned()
                .collect();
            for n in to {
                for r in fresh {
                    self.send(n.clone(), Wire::Rumors(vec![r.clone()]));
                }
            }
            return;
        }
        let newest = fresh.last().expect("something fresh");
        self.monger(now, &newest.origin.clone(), newest.seq, from);
    }

    /// Sends one rumor to a random neighbour other than `except` and waits for its
    /// status.
    fn monger(&mut self, now: u64, origin: &str, seq: u64, except: Option<&str>) {
        let Some(rumor) = self.rumor(origin, seq) else {
            return;
        };
        let unaware: Vec<String> = self
            .neighbours
            .iter()
            .filter(|n| Some(n.as_str()) != except)
            .filter(|n| {
                let held = self.known.get(*n).and_then(|s| s.get(origin)).copied();
                held.unwrap_or(0) < seq
            })
            .cloned()
            .collect();
        if unaware.is_empty() {
            return;
        }
        let to = unaware[self.rng.below(unaware.len() as u64) as usize].clone();
        self.send(to.clone(), Wire::Rumors(vec![rumor]));
        self.mongering.insert(
            to,
            Monger {
                origin: origin.to_string(),
                seq,
                deadline: now + self.config.rumor_timeout,
            },
        );
    }

    fn on_status(&mut self, now: u64, from: &str, theirs: &Status) {
        if self.bug == Some(Bug::Flood) {
            return;
        }
        if self.neighbours.iter().any(|n| n == from) {
            self.known.insert(from.to_string(), theirs.clone());
        }
        let mut batch = Vec::new();
        'origins: for (origin, &mine) in &self.have {
            let known = theirs.get(origin).copied().unwrap_or(0);
            for seq in known.saturating_add(1)..=mine {
                if batch.len() >= self.config.max_batch {
                    break 'origins;
                }
                batch.extend(self.rumor(origin, seq));
            }
        }
        if !batch.is_empty() {
            self.send(from.to_string(), Wire::Rumors(batch));
            if let Some(m) = self.mongering.get_mut(from) {
                m.deadline = now + self.config.rumor_timeout;
            }
            return;
        }
        let they_have_more = theirs
            .iter()
            .any(|(origin, &seq)| seq > self.have.get(origin).copied().unwrap_or(0));
        if they_have_more {
            self.send(from.to_string(), Wire::Status(self.have.clone()));
            return;
        }
        // In sync with `from`: the coin decides whether the rumor goes on elsewhere.
        if let Some(m) = self.mongering.remove(from) {
            if self.rng.coin() {
                self.monger(now, &m.origin, m.seq, Some(from));
            }
        }
    }

    /// `flood`: every message to every neighbour, one message each.
    fn flood_everything(&mut self) {
        let all: Vec<Rumor> = self.messages().collect();
        for n in self.neighbours.clone() {
            for r in &all {
                self.send(n.clone(), Wire::Rumors(vec![r.clone()]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Nodes on a simulated network with a fixed delay, a seeded loss rate and
    /// reordering (a random extra delay), driven one event at a time.
    struct Net {
        nodes: Vec<Gossip>,
        names: Vec<String>,
        /// (time, seq, from, to, wire)
        queue: BTreeSet<(u64, u64, usize, usize, WireKey)>,
        wires: Vec<Wire>,
        delivered: Vec<Vec<Rumor>>,
        rng: SplitMix,
        loss: u64,
        now: u64,
        sent: u64,
    }

    type WireKey = usize;

    impl Net {
        fn new(n: usize, edges: &[(usize, usize)], bug: Option<Bug>, loss: u64) -> Net {
            let names: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
            let mut nodes: Vec<Gossip> = names
                .iter()
                .enumerate()
                .map(|(i, name)| Gossip::new(name.clone(), Config::default(), i as u64, bug))
                .collect();
            for (i, node) in nodes.iter_mut().enumerate() {
                let mut ns = Vec::new();
                for &(a, b) in edges {
                    if a == i {
                        ns.push(names[b].clone());
                    }
                    if b == i {
                        ns.push(names[a].clone());
                    }
                }
                node.set_neighbours(0, ns);
            }
            Net {
                delivered: vec![Vec::new(); n],
                nodes,
                names,
                queue: BTreeSet::new(),
                wires: Vec::new(),
                rng: SplitMix::new(99),
                loss,
                now: 0,
                sent: 0,
            }
        }

        fn collect(&mut self, i: usize) {
            for o in self.nodes[i].drain() {
                match o {
                    Output::Deliver(r) => self.delivered[i].push(r),
                    Output::Send { to, wire } => {
                        self.sent += 1;
                        if self.rng.below(100) < self.loss {
                            continue;
                        }
                        let j = self.names.iter().position(|n| *n == to).unwrap();
                        let delay = MS + self.rng.below(20 * MS);
                        self.wires.push(wire);
                        let key = self.wires.len() - 1;
                        self.queue.insert((self.now + delay, key as u64, i, j, key));
                    }
                }
            }
        }

        fn broadcast(&mut self, i: usize, text: &str) {
            self.nodes[i].broadcast(self.now, text).unwrap();
            self.collect(i);
        }

        /// Runs until `until`, ticking nodes when they ask.
        fn run(&mut self, until: u64) {
            loop {
                let next_msg = self.queue.iter().next().map(|e| e.0);
                let next_tick = (0..self.nodes.len())
                    .filter_map(|i| self.nodes[i].next_wake().map(|t| (t, i)))
                    .min();
                let t = match (next_msg, next_tick) {
                    (Some(m), Some((k, _))) => m.min(k),
                    (Some(m), None) => m,
                    (None, Some((k, _))) => k,
                    (None, None) => break,
                };
                if t > until {
                    break;
                }
                self.now = t;
                if next_msg == Some(t) {
                    let e = *self.queue.iter().next().unwrap();
                    self.queue.remove(&e);
                    let wire = self.wires[e.4].clone();
                    let from = self.names[e.2].clone();
                    self.nodes[e.3].on_wire(t, &from, wire);
                    self.collect(e.3);
                } else {
                    let (_, i) = next_tick.unwrap();
                    self.nodes[i].on_tick(t);
                    self.collect(i);
                }
            }
            self.now = until;
        }

        fn texts(&self, i: usize) -> BTreeSet<String> {
            self.delivered[i].iter().map(|r| r.text.clone()).collect()
        }
    }

    fn line(n: usize) -> Vec<(usize, usize)> {
        (0..n - 1).map(|i| (i, i + 1)).collect()
    }

    fn in_order(delivered: &[Rumor]) -> bool {
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        delivered.iter().all(|r| {
            let prev = last.insert(&r.origin, r.seq).unwrap_or(0);
            r.seq == prev + 1
        })
    }

    #[test]
    fn a_line_converges_under_loss_in_order_without_duplicates() {
        let mut net = Net::new(6, &line(6), None, 25);
        for k in 0..30 {
            net.broadcast(k % 3 * 2, &format!("m{k}"));
            net.run(net.now + 7 * MS);
        }
        net.run(net.now + 20_000 * MS);
        let all = net.texts(0);
        assert_eq!(all.len(), 30);
        for i in 0..6 {
            assert_eq!(net.texts(i), all, "node {i}");
            assert_eq!(
                net.delivered[i].len(),
                30,
                "node {i} delivered a message twice"
            );
            assert!(
                in_order(&net.delivered[i]),
                "node {i}: {:?}",
                net.delivered[i]
            );
        }
    }

    #[test]
    fn a_line_carries_a_rumor_once_per_link() {
        for seed in 0..20 {
            let mut net = Net::new(6, &line(6), None, 0);
            net.rng = SplitMix::new(seed);
            for (i, node) in net.nodes.iter_mut().enumerate() {
                node.rng = SplitMix::new(seed * 100 + i as u64);
            }
            net.broadcast(0, "once");
            net.run(5_000 * MS);
            assert!((0..6).all(|i| net.texts(i).len() == 1));
            let rumors: u64 = net.nodes.iter().map(|n| n.counts().rumor_messages).sum();
            assert_eq!(
                rumors, 5,
                "seed {seed}: the rumor went back the way it came"
            );
        }
    }

    #[test]
    fn in_sync_nodes_send_only_statuses() {
        let mut net = Net::new(4, &line(4), None, 0);
        net.broadcast(0, "hello");
        net.run(5_000 * MS);
        assert!((0..4).all(|i| net.texts(i).len() == 1));
        let rumors: u64 = net.nodes.iter().map(|n| n.counts().rumor_messages).sum();
        net.run(net.now + 10_000 * MS);
        let later: u64 = net.nodes.iter().map(|n| n.counts().rumor_messages).sum();
        assert_eq!(
            rumors, later,
            "a rumor was sent again once every node held it"
        );
        let statuses: u64 = net.nodes.iter().map(|n| n.counts().status_messages).sum();
        assert!(statuses > 0, "anti-entropy sent no status while idle");
    }

    #[test]
    fn without_anti_entropy_a_lost_rumor_stays_lost() {
        // Only the first rumor is ever sent, and the network drops everything.
        let mut net = Net::new(3, &line(3), Some(Bug::NoAntiEntropy), 100);
        net.broadcast(0, "lost");
        net.loss = 0;
        net.run(10_000 * MS);
        assert!(net.texts(1).is_empty() && net.texts(2).is_empty());
        let mut good = Net::new(3, &line(3), None, 100);
        good.broadcast(0, "repaired");
        good.loss = 0;
        good.run(10_000 * MS);
        assert!((0..3).all(|i| good.texts(i).len() == 1));
    }

    #[test]
    fn a_rumor_past_a_gap_waits_unless_no_order() {
        for (bug, delivered) in [(None, vec![]), (Some(Bug::NoOrder), vec![2])] {
            let mut g = Gossip::new("n2", Config::default(), 1, bug);
            g.set_neighbours(0, vec!["n1".into()]);
            let r2 = Rumor {
                origin: "n1".into(),
                seq: 2,
                text: "b".into(),
            };
            g.on_wire(0, "n1", Wire::Rumors(vec![r2]));
            let seqs: Vec<u64> = g
                .drain()
                .into_iter()
                .filter_map(|o| match o {
                    Output::Deliver(r) => Some(r.seq),
                    _ => None,
                })
                .collect();
            assert_eq!(seqs, delivered, "{bug:?}");
            assert_eq!(g.status().get("n1").copied().unwrap_or(0), 0);
        }
    }

    #[test]
    fn oversized_input_is_refused_or_ignored() {
        let mut g = Gossip::new("n1", Config::default(), 1, None);
        g.set_neighbours(0, vec!["n2".into()]);
        assert_eq!(
            g.broadcast(0, "x".repeat(MAX_TEXT + 1)),
            Err(Refused::TooLong(MAX_TEXT + 1))
        );
        let big = Rumor {
            origin: "n2".into(),
            seq: 1,
            text: "y".repeat(MAX_TEXT + 1),
        };
        g.on_wire(0, "n2", Wire::Rumors(vec![big]));
        assert!(g.messages().next().is_none());
        assert!(g.drain().iter().all(|o| !matches!(o, Output::Deliver(_))));
    }

    #[test]
    fn flood_resends_everything_forever() {
        let mut net = Net::new(3, &line(3), Some(Bug::Flood), 0);
        net.broadcast(0, "a");
        net.run(2_000 * MS);
        let early = net.sent;
        net.run(4_000 * MS);
        assert!(net.sent > early + 10, "{} then {}", early, net.sent);
    }
}
