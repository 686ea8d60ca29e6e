//! The simulated network: what happens to each message between two endpoints.
//!
//! Every message of a cluster passes through [`Network::route`], which decides from
//! the seeded generator whether it is lost, duplicated and how long each copy takes.
//! Partitions are sets of cut directed links, built from named shapes so a journal or
//! a timeline says "isolate n1" rather than listing links.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand::rngs::StdRng;
use rand::Rng;

/// A delay distribution, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    Fixed(u64),
    Uniform {
        min: u64,
        max: u64,
    },
    /// `min` plus an exponential tail with the given mean: mostly fast, sometimes slow.
    Exponential {
        min: u64,
        mean: u64,
    },
}

impl Latency {
    /// The shortest delay the distribution gives.
    pub fn min(&self) -> u64 {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, .. } | Latency::Exponential { min, .. } => min,
        }
    }

    pub fn sample(&self, rng: &mut StdRng) -> u64 {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => rng.gen_range(min..=max.max(min)),
            Latency::Exponential { min, mean } => {
                let u: f64 = rng.gen_range(f64::EPSILON..1.0);
                min + (-u.ln() * mean as f64) as u64
            }
        }
    }
}

/// How links behave when not cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    pub latency: Latency,
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice (each copy with its own delay).
    pub duplicate: f64,
    /// Probability a message is held back by an extra delay drawn from
    /// `reorder_delay`, so later messages on the same link overtake it.
    pub reorder: f64,
    pub reorder_delay: Latency,
}

impl NetConfig {
    /// Fast and perfect: 1 ms per message, nothing lost.
    pub fn reliable() -> NetConfig {
        NetConfig {
            latency: Latency::Fixed(1_000_000),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Latency::Fixed(0),
        }
    }

    /// 6.5840's unreliable network, and worse: loss, duplication, variable delay and
    /// reordering.
    pub fn unreliable() -> NetConfig {
        NetConfig {
            latency: Latency::Exponential {
                min: 200_000,
                mean: 1_000_000,
            },
            loss: 0.2,
            duplicate: 0.2,
            reorder: 0.1,
            // About five ordinary delays.
            reorder_delay: Latency::Exponential {
                min: 1_000_000,
                mean: 5_000_000,
            },
        }
    }

    /// 6.5840's "long reordering" on top of `self`: some messages are held back
    /// for 200 ms to seconds (mostly under a second), so they arrive long after newer
    /// ones. 6.5840 holds back two replies in three and no requests; the harness
    /// cannot tell a reply from a request, so it holds back one message in five of
    /// either kind, which delays about as many round trips without starving
    /// followers of heartbeats.
    pub fn long_reordering(self) -> NetConfig {
        NetConfig {
            reorder: 0.2,
            reorder_delay: Latency::Exponential {
                min: 200_000_000,
                mean: 500_000_000,
            },
            ..self
        }
    }
}

/// A set of cut directed links, with a name for journals and timelines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partition {
    pub name: String,
    cut: BTreeSet<(String, String)>,
}

impl Partition {
    /// No link cut.
    pub fn none() -> Partition {
        Partition {
            name: "healed".into(),
            cut: BTreeSet::new(),
        }
    }

    /// Cuts both directions between every pair of endpoints in different groups.
    /// Endpoints in no group are unaffected; an endpoint in two groups (a bridge)
    /// talks to both.
    pub fn groups(name: impl Into<String>, groups: &[Vec<String>]) -> Partition {
        let mut cut = BTreeSet::new();
        let together = |a: &str, b: &str| {
            groups
                .iter()
                .any(|g| g.iter().any(|x| x == a) && g.iter().any(|x| x == b))
        };
        for (i, g) in groups.iter().enumerate() {
            for h in &groups[i + 1..] {
                for a in g {
                    for b in h {
                        if a != b && !together(a, b) {
                            cut.insert((a.clone(), b.clone()));
                            cut.insert((b.clone(), a.clone()));
                        }
                    }
                }
            }
        }
        Partition {
            name: name.into(),
            cut,
        }
    }

    /// `node` can neither send to nor hear from any of `all`.
    pub fn isolate(node: &str, all: &[String]) -> Partition {
        let others: Vec<String> = all.iter().filter(|n| *n != node).cloned().collect();
        Partition::groups(format!("isolate {node}"), &[vec![node.to_string()], others])
    }

    /// A random minority cut from the majority.
    pub fn majority_minority(all: &[String], rng: &mut StdRng) -> Partition {
        let mut shuffled = all.to_vec();
        rand::seq::SliceRandom::shuffle(&mut shuffled[..], rng);
        let minority = shuffled.split_off(shuffled.len() / 2 + 1);
        let name = format!("majority {} | minority {}", set(&shuffled), set(&minority));
        Partition::groups(name, &[shuffled, minority])
    }

    /// Jepsen's bridge: two majorities that overlap in one node, which sees everyone
    /// while the two sides cannot see each other.
    pub fn overlapping_majorities(all: &[String]) -> Partition {
        let mid = all.len() / 2;
        let left = all[..=mid].to_vec();
        let right = all[mid..].to_vec();
        let name = format!("bridge {} ~ {}", set(&left), set(&right));
        Partition::groups(name, &[left, right])
    }

    /// Messages from `from` to `to` are lost; the other direction works.
    pub fn one_way(from: &str, to: &str) -> Partition {
        let mut cut = BTreeSet::new();
        cut.insert((from.to_string(), to.to_string()));
        Partition {
            name: format!("one-way {from} -> {to} cut"),
            cut,
        }
    }

    /// Messages from any of `from` to any of `to` are lost; the other direction works.
    pub fn one_way_between(from: &[String], to: &[String]) -> Partition {
        let cut = from
            .iter()
            .flat_map(|a| to.iter().map(move |b| (a.clone(), b.clone())))
            .collect();
        Partition {
            name: format!("one-way {} -> {} cut", set(from), set(to)),
            cut,
        }
    }

    /// Both partitions at once.
    pub fn and(mut self, other: Partition) -> Partition {
        self.name = format!("{} + {}", self.name, other.name);
        self.cut.extend(other.cut);
        self
    }

    pub fn blocks(&self, from: &str, to: &str) -> bool {
        self.cut.contains(&(from.to_string(), to.to_string()))
    }
}

fn set(names: &[String]) -> String {
    format!("{{{}}}", names.join(" "))
}

/// Traffic on one directed link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub bytes: u64,
    pub delivered: u64,
    pub lost: u64,
    pub cut: u64,
    pub duplicated: u64,
}

/// The fate of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Delivered after each of these delays (two for a duplicate).
    Delivered(Vec<u64>),
    Lost,
    Cut,
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fate::Delivered(d) => write!(f, "delay {d:?}"),
            Fate::Lost => f.write_str("lost"),
            Fate::Cut => f.write_str("cut"),
        }
    }
}

/// Decides message fates and counts traffic.
#[derive(Debug)]
pub struct Network {
    pub config: NetConfig,
    pub partition: Partition,
    /// Links whose messages all take this much longer (see `Fault::SlowLinks`).
    pub slow: (Partition, u64),
    /// Endpoints whose links are exempt from loss, duplication, reordering and
    /// variable delay (see [`Network::make_reliable`]).
    reliable: BTreeSet<String>,
    links: BTreeMap<(String, String), LinkStats>,
}

impl Network {
    pub fn new(config: NetConfig) -> Network {
        Network {
            config,
            partition: Partition::none(),
            slow: (Partition::none(), 0),
            reliable: BTreeSet::new(),
            links: BTreeMap::new(),
        }
    }

    /// Every message to or from `endpoint` is delivered once, in order, after the
    /// latency's minimum, whatever the network does to other links; a partition that
    /// names it still cuts it. For a test driver that stands for a local service
    /// (6.5840's Raft tester reads `applyCh`, a channel, not an RPC).
    pub fn make_reliable(&mut self, endpoint: &str) {
        self.reliable.insert(endpoint.to_string());
    }

    /// Decides what happens to a message of `bytes` bytes from `src` to `dest`.
    pub fn route(&mut self, rng: &mut StdRng, src: &str, dest: &str, bytes: usize) -> Fate {
        let stats = self
            .links
            .entry((src.to_string(), dest.to_string()))
            .or_default();
        stats.sent += 1;
        stats.bytes += bytes as u64;
        if self.partition.blocks(src, dest) {
            stats.cut += 1;
            return Fate::Cut;
        }
        let c = &self.config;
        let slow = if self.slow.0.blocks(src, dest) {
            self.slow.1
        } else {
            0
        };
        if self.reliable.contains(src) || self.reliable.contains(dest) {
            return Fate::Delivered(vec![c.latency.min() + slow]);
        }
        if c.loss > 0.0 && rng.gen_bool(c.loss) {
            stats.lost += 1;
            return Fate::Lost;
        }
        let copies = if c.duplicate > 0.0 && rng.gen_bool(c.duplicate) {
            stats.duplicated += 1;
            2
        } else {
            1
        };
        let delays = (0..copies)
            .map(|_| {
                let mut d = c.latency.sample(rng);
                if c.reorder > 0.0 && rng.gen_bool(c.reorder) {
                    d += c.reorder_delay.sample(rng);
                }
                d + slow
            })
            .collect();
        Fate::Delivered(delays)
    }

    /// Counts a copy that reached its destination.
    pub fn delivered(&mut self, src: &str, dest: &str) {
        if let Some(stats) = self.links.get_mut(&(src.to_string(), dest.to_string())) {
            stats.delivered += 1;
        }
    }

    /// Per-link counters, by (from, to).
    pub fn links(&self) -> &BTreeMap<(String, String), LinkStats> {
        &self.links
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn slow_links_delay_only_the_links_they_name() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut net = Network::new(NetConfig::reliable());
        net.slow = (Partition::one_way("n1", "n2"), 3_000_000_000);
        let slow = net.route(&mut rng, "n1", "n2", 10);
        let back = net.route(&mut rng, "n2", "n1", 10);
        assert_eq!(slow, Fate::Delivered(vec![3_001_000_000]));
        assert_eq!(back, Fate::Delivered(vec![1_000_000]));
        net.make_reliable("n1");
        assert_eq!(
            net.route(&mut rng, "n1", "n2", 10),
            Fate::Delivered(vec![3_001_000_000]),
            "a reliable endpoint's links are slow like any other"
        );
        net.slow = (Partition::none(), 0);
        assert_eq!(
            net.route(&mut rng, "n1", "n2", 10),
            Fate::Delivered(vec![1_000_000])
        );
    }

    #[test]
    fn shapes_cut_the_links_they_name() {
        let all = names(5);
        let iso = Partition::isolate("n2", &all);
        assert!(iso.blocks("n2", "n1") && iso.blocks("n1", "n2"));
        assert!(!iso.blocks("n1", "n3"));
        assert!(!iso.blocks("c1", "n2"), "clients are not in the shape");

        let bridge = Partition::overlapping_majorities(&all);
        assert!(!bridge.blocks("n3", "n1") && !bridge.blocks("n3", "n5"));
        assert!(bridge.blocks("n1", "n5") && bridge.blocks("n5", "n2"));

        let one = Partition::one_way("n1", "n2");
        assert!(one.blocks("n1", "n2") && !one.blocks("n2", "n1"));

        let mut rng = StdRng::seed_from_u64(3);
        let mm = Partition::majority_minority(&all, &mut rng);
        let reachable = |a: &str| all.iter().filter(|b| *b != a && !mm.blocks(a, b)).count();
        let mut sizes: Vec<usize> = all.iter().map(|a| reachable(a) + 1).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [2, 2, 3, 3, 3]);
    }

    #[test]
    fn loss_and_duplication_follow_their_rates_and_are_counted() {
        let mut net = Network::new(NetConfig {
            latency: Latency::Uniform { min: 10, max: 20 },
            loss: 0.25,
            duplicate: 0.5,
            reorder: 0.0,
            reorder_delay: Latency::Fixed(0),
        });
        let mut rng = StdRng::seed_from_u64(1);
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..10_000 {
            match net.route(&mut rng, "a", "b", 10) {
                Fate::Lost => lost += 1,
                Fate::Delivered(d) => {
                    assert!(d.iter().all(|x| (10..=20).contains(x)));
                    dup += usize::from(d.len() == 2);
                }
                Fate::Cut => unreachable!(),
            }
        }
        assert!((2200..2800).contains(&lost), "{lost}");
        assert!((3400..4100).contains(&dup), "{dup}");
        let stats = net.links()[&("a".to_string(), "b".to_string())];
        assert_eq!(
            (stats.sent, stats.bytes, stats.lost),
            (10_000, 100_000, lost as u64)
        );
        net.partition = Partition::one_way("a", "b");
        assert_eq!(net.route(&mut rng, "a", "b", 1), Fate::Cut);
    }

    #[test]
    fn reliable_endpoints_escape_loss_duplication_and_reordering_but_not_cuts() {
        let mut net = Network::new(NetConfig {
            loss: 0.5,
            duplicate: 0.5,
            ..NetConfig::unreliable().long_reordering()
        });
        net.make_reliable("tester");
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..1000 {
            assert_eq!(
                net.route(&mut rng, "tester", "n1", 1),
                Fate::Delivered(vec![200_000])
            );
            assert_eq!(
                net.route(&mut rng, "n1", "tester", 1),
                Fate::Delivered(vec![200_000])
            );
        }
        let fates: Vec<Fate> = (0..1000)
            .map(|_| net.route(&mut rng, "n1", "n2", 1))
            .collect();
        assert!(fates.contains(&Fate::Lost));
        let long = fates
            .iter()
            .filter(|f| matches!(f, Fate::Delivered(d) if d.iter().any(|&x| x >= 200_000_000)))
            .count();
        assert!(long > 100, "{long} long delays");
        assert!(long < 300, "{long} long delays");
        net.partition = Partition::one_way("n1", "tester");
        assert_eq!(net.route(&mut rng, "n1", "tester", 1), Fate::Cut);
    }

    #[test]
    fn same_seed_same_fates() {
        let fates = |seed| {
            let mut net = Network::new(NetConfig::unreliable());
            let mut rng = StdRng::seed_from_u64(seed);
            (0..100)
                .map(|_| net.route(&mut rng, "a", "b", 1))
                .collect::<Vec<_>>()
        };
        assert_eq!(fates(5), fates(5));
        assert_ne!(fates(5), fates(6));
    }
}
