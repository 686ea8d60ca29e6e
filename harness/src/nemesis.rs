//! Faults, and schedules of them as data.
//!
//! A schedule is a list of (virtual or real nanoseconds since start, fault). The
//! cluster applies each fault at its time and writes it to the journal and to the
//! history's nemesis lines, so a failing run shows what was done to the system and
//! when, and replays it.

use rand::rngs::StdRng;
use rand::Rng;

use crate::network::{NetConfig, Partition};

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// SIGKILL: the node loses everything not on disk.
    Crash(String),
    /// Start a crashed (or running: it is killed first) node again on its data dir.
    Restart(String),
    /// Start it again with its data dir wiped (amnesia).
    RestartWiped(String),
    /// Power failure: SIGKILL, then the node's disk loses every change it did not make
    /// durable (fsync). It stays down until a `Restart`. Needs a cluster started with
    /// [`Durability::LazyFs`](crate::cluster::Durability::LazyFs).
    PowerLoss(String),
    /// A power failure in the middle of the node's n-th sync from now (`fsync`,
    /// `fdatasync` or a directory's fsync; n >= 1): that sync never returns and makes
    /// nothing durable but part of a write: the node is killed in it and loses
    /// power as with `PowerLoss`, except that each file appended to since its last
    /// sync keeps a random prefix of the appended bytes (a torn tail) and each sector
    /// overwritten in place is torn (see `LazyFs::power_fail_torn`). Where a crash at a random moment almost never falls between two
    /// writes that belong together, a crash at a random sync does as often as
    /// anywhere else. Needs [`Durability::LazyFs`](crate::cluster::Durability::LazyFs).
    PowerLossAtSync(String, u64),
    /// SIGSTOP: the node holds its state but does nothing; messages wait for it.
    Pause(String),
    /// SIGCONT.
    Resume(String),
    Partition(Partition),
    Heal,
    /// Every message on the links the partition names arrives this many nanoseconds
    /// later than it would (a congested or distant link: nothing lost, everything
    /// late); a message already on its way keeps its delay. `Partition::none()`
    /// makes every link fast again.
    SlowLinks(Partition, u64),
    /// Change how links behave (loss, duplication, delay).
    Net(NetConfig),
    /// From now on the network keeps a copy of every message one node sends another,
    /// delivered, lost or cut, for a later `Replay`.
    Record,
    /// Every message kept since `Record` is sent again, each to arrive at a random
    /// moment within this many nanoseconds from now, unless the partition in force
    /// cuts its link. An asynchronous network may deliver a copy of
    /// any message however late, and a message it held through a partition all at
    /// once when the partition heals: a node hears again what its peers said terms
    /// ago. Only node-to-node messages are kept (never a client's or a tester's);
    /// they stay kept, so a later replay sends them once more with the newer ones.
    Replay(u64),
    /// From now on no new message is kept; those kept since `Record` stay, for a
    /// later `Replay` of that window alone. An asynchronous network may deliver
    /// copies of some old messages and not of others: here, of those of one stretch
    /// of a run.
    StopRecording,
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::Crash(n) => format!("crash {n}"),
            Fault::Restart(n) => format!("restart {n}"),
            Fault::RestartWiped(n) => format!("restart {n} with its data dir wiped"),
            Fault::PowerLoss(n) => format!("power loss on {n}"),
            Fault::PowerLossAtSync(n, k) => {
                format!("power loss on {n} in the sync {k} from now")
            }
            Fault::Pause(n) => format!("pause {n}"),
            Fault::Resume(n) => format!("resume {n}"),
            Fault::Partition(p) => format!("partition: {}", p.name),
            Fault::Heal => "heal partition".into(),
            Fault::SlowLinks(p, delay) => {
                format!(
                    "slow links: {} take {} ms longer",
                    p.name,
                    delay / 1_000_000
                )
            }
            Fault::Net(c) => format!(
                "network: loss {} duplicate {} reorder {} latency {:?}",
                c.loss, c.duplicate, c.reorder, c.latency
            ),
            Fault::Record => "record messages between nodes".into(),
            Fault::StopRecording => "stop recording messages between nodes".into(),
            Fault::Replay(span) => format!(
                "replay the recorded messages between nodes within {} ms",
                span / 1_000_000
            ),
        }
    }
}

/// Faults at times, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    pub faults: Vec<(u64, Fault)>,
}

impl Schedule {
    pub fn new() -> Schedule {
        Schedule::default()
    }

    pub fn at(mut self, time: u64, fault: Fault) -> Schedule {
        self.faults.push((time, fault));
        self.faults.sort_by_key(|(t, _)| *t);
        self
    }

    /// Alternating cut and heal of the links between `node` and `others`: cut for a
    /// random 20-200 ms, then healed for as long, until `until`.
    pub fn flapping_isolation(
        node: &str,
        others: &[String],
        until: u64,
        rng: &mut StdRng,
    ) -> Schedule {
        let mut all = others.to_vec();
        all.push(node.to_string());
        let mut schedule = Schedule::new();
        let mut t = rng.gen_range(10_000_000..50_000_000);
        while t < until {
            schedule = schedule.at(t, Fault::Partition(Partition::isolate(node, &all)));
            t += rng.gen_range(20_000_000..200_000_000);
            schedule = schedule.at(t, Fault::Heal);
            t += rng.gen_range(20_000_000..200_000_000);
        }
        schedule
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn flapping_isolation_alternates_and_ends_healed() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = Schedule::flapping_isolation("n1", &["c1".into()], 2_000_000_000, &mut rng);
        assert!(s.faults.len() >= 4);
        for (i, (_, f)) in s.faults.iter().enumerate() {
            assert_eq!(matches!(f, Fault::Heal), i % 2 == 1, "{f:?}");
        }
        assert!(s.faults.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(Fault::Crash("n2".into()).describe(), "crash n2");
        assert_eq!(Fault::PowerLoss("n2".into()).describe(), "power loss on n2");
    }
}
