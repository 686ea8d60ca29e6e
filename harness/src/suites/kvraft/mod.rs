//! The replicated key/value service's suite: every 6.5840 lab 4 test (4A and 4B)
//! with its thresholds (`lab.rs`), and tests beyond them (`beyond.rs`: power
//! failures, amnesia, a retry across restarts from snapshots, one-way partitions,
//! duplication, a paused leader, random nemeses swept over seeds).
//!
//! Each test starts its nodes (`n1`...) behind the simulated network, runs harness
//! clients that stay with a node that serves them and otherwise ask the next one or
//! the leader a node names with error 11, and judges the run: progress, no protocol
//! errors, its own property, and, always, the whole history checked for
//! linearizability against `specs::KvFetchAppend`. The protocol is kvsrv's plus the
//! errors of replication (docs/kvraft.md).

mod beyond;
mod lab;
mod lin_kv;
mod run;
mod self_check;
mod tests;

pub use run::LeaderProbe;

use crate::suite::{property, KnownBad, Program, Suite, TestCase};
use lab::Generic;

/// Our binary.
pub const BIN: &str = "kvraft";

/// With a majority partitioned from a minority, what only the minority was asked
/// does not complete until the partition heals, and then it does.
pub const MINORITY: &str = "minority-partition";
/// A request is applied once, whatever is retried, lost or restarted.
pub const EXACTLY_ONCE: &str = "exactly-once";
/// Operations complete in under a third of a 100 ms heartbeat each, on average.
pub const SPEED: &str = "speed";
/// With snapshots on, the Raft state stays within 8 x `maxraftstate` and a small
/// data set's snapshot within 500 bytes.
pub const LOG_COMPACTION: &str = property::LOG_COMPACTION;

pub static SUITE: Suite = Suite {
    name: "kvraft",
    title: "fault-tolerant key/value service",
    programs: &[Program {
        var: "KVRAFT_IMPL",
        bin: BIN,
        key: "kvraft",
        run_as: "CMD: one replica speaking the node protocol on stdin/stdout",
    }],
    bug_var: "KVRAFT_BUG",
    simulated: true,
    tests: TESTS,
    self_checks: &SELF_CHECKS,
    known_bad: &[
        KnownBad {
            variant: "stale-read",
            what: "a leader answers reads without the log",
            test: "beyond::paused_leader",
            property: property::LINEARIZABLE,
        },
        KnownBad {
            variant: "dedup-not-in-snapshot",
            what: "snapshots leave out the duplicate table",
            test: "snapshot::retry_across_restart",
            property: EXACTLY_ONCE,
        },
        KnownBad {
            variant: "apply-uncommitted",
            what: "a leader applies and answers a command before it commits",
            test: "partition::one_partition",
            property: MINORITY,
        },
        KnownBad {
            variant: "no-fsync",
            what: "acknowledges entries it never made durable",
            test: "power::power_loss_all",
            property: property::LINEARIZABLE,
        },
    ],
    docs: "docs/kvraft.md",
};

const TESTS: &[TestCase] = &[
    TestCase {
        name: "basic::one_client",
        after: Some("6.5840 kvraft TestBasic4A"),
        run: |cx| lab::generic(cx, Generic::new(1, 5)),
    },
    TestCase {
        name: "speed::without_snapshots",
        after: Some("6.5840 kvraft TestSpeed4A"),
        run: |cx| lab::speed(cx, -1),
    },
    TestCase {
        name: "concurrent::many_clients",
        after: Some("6.5840 kvraft TestConcurrent4A"),
        run: |cx| lab::generic(cx, Generic::new(5, 5)),
    },
    TestCase {
        name: "unreliable::lossy_duplicating",
        after: Some("6.5840 kvraft TestUnreliable4A"),
        run: |cx| lab::generic(cx, Generic::new(5, 5).unreliable()),
    },
    TestCase {
        name: "unreliable::one_key_appends",
        after: Some("6.5840 kvraft TestUnreliableOneKey4A"),
        run: |cx| tests::with_cluster(cx, tests::unreliable_one_key_appends),
    },
    TestCase {
        name: "partition::one_partition",
        after: Some("6.5840 kvraft TestOnePartition4A"),
        run: lab::one_partition,
    },
    TestCase {
        name: "partition::many_partitions_one_client",
        after: Some("6.5840 kvraft TestManyPartitionsOneClient4A"),
        run: |cx| lab::generic(cx, Generic::new(1, 5).partitions()),
    },
    TestCase {
        name: "partition::many_partitions_many_clients",
        after: Some("6.5840 kvraft TestManyPartitionsManyClients4A"),
        run: |cx| lab::generic(cx, Generic::new(5, 5).partitions()),
    },
    TestCase {
        name: "persist::one_client",
        after: Some("6.5840 kvraft TestPersistOneClient4A"),
        run: |cx| lab::generic(cx, Generic::new(1, 5).crash()),
    },
    TestCase {
        name: "persist::restart_all",
        after: Some("6.5840 kvraft TestPersistConcurrent4A"),
        run: |cx| lab::generic(cx, Generic::new(5, 5).crash()),
    },
    TestCase {
        name: "persist::unreliable",
        after: Some("6.5840 kvraft TestPersistConcurrentUnreliable4A"),
        run: |cx| lab::generic(cx, Generic::new(5, 5).unreliable().crash()),
    },
    TestCase {
        name: "persist::partitions",
        after: Some("6.5840 kvraft TestPersistPartition4A"),
        run: |cx| lab::generic(cx, Generic::new(5, 5).crash().partitions()),
    },
    TestCase {
        name: "persist::partitions_unreliable",
        after: Some("6.5840 kvraft TestPersistPartitionUnreliable4A"),
        run: |cx| lab::generic(cx, Generic::new(5, 5).unreliable().crash().partitions()),
    },
    TestCase {
        name: "persist::linearizable",
        after: Some("6.5840 kvraft TestPersistPartitionUnreliableLinearizable4A"),
        run: |cx| {
            let g = Generic::new(15, 7).unreliable().crash().partitions();
            lab::generic(cx, g.random_keys())
        },
    },
    TestCase {
        name: "snapshot::install_rpc",
        after: Some("6.5840 kvraft TestSnapshotRPC4B"),
        run: lab::snapshot_rpc,
    },
    TestCase {
        name: "snapshot::size",
        after: Some("6.5840 kvraft TestSnapshotSize4B"),
        run: lab::snapshot_size,
    },
    TestCase {
        name: "speed::with_snapshots",
        after: Some("6.5840 kvraft TestSpeed4B"),
        run: |cx| lab::speed(cx, 1000),
    },
    TestCase {
        name: "snapshot::restart_all",
        after: Some("6.5840 kvraft TestSnapshotRecover4B"),
        run: |cx| lab::generic(cx, Generic::new(1, 5).crash().snapshots()),
    },
    TestCase {
        name: "snapshot::restart_all_many_clients",
        after: Some("6.5840 kvraft TestSnapshotRecoverManyClients4B"),
        run: |cx| lab::generic(cx, Generic::new(20, 5).crash().snapshots()),
    },
    TestCase {
        name: "snapshot::unreliable",
        after: Some("6.5840 kvraft TestSnapshotUnreliable4B"),
        run: |cx| lab::generic(cx, Generic::new(5, 5).unreliable().snapshots()),
    },
    TestCase {
        name: "snapshot::unreliable_restarts",
        after: Some("6.5840 kvraft TestSnapshotUnreliableRecover4B"),
        run: |cx| lab::generic(cx, Generic::new(5, 5).unreliable().crash().snapshots()),
    },
    TestCase {
        name: "snapshot::unreliable_restarts_partitions",
        after: Some("6.5840 kvraft TestSnapshotUnreliableRecoverConcurrentPartition4B"),
        run: |cx| {
            let g = Generic::new(5, 5).unreliable().crash().partitions();
            lab::generic(cx, g.snapshots())
        },
    },
    TestCase {
        name: "snapshot::linearizable",
        after: Some("6.5840 kvraft TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4B"),
        run: |cx| {
            let g = Generic::new(15, 7).unreliable().crash().partitions();
            lab::generic(cx, g.snapshots().random_keys())
        },
    },
    TestCase {
        name: "partition::leader_in_minority",
        after: None,
        run: |cx| tests::with_cluster(cx, tests::partition_leader_in_minority),
    },
    TestCase {
        name: "snapshot::retry_across_restart",
        after: None,
        run: beyond::retry_across_restart,
    },
    TestCase {
        name: "power::power_loss_all",
        after: None,
        run: beyond::power_loss_all,
    },
    TestCase {
        name: "power::power_loss_minority",
        after: None,
        run: beyond::power_loss_minority,
    },
    TestCase {
        name: "power::power_loss_at_sync_points",
        after: None,
        run: beyond::power_loss_at_sync_points,
    },
    TestCase {
        name: "beyond::amnesia_minority",
        after: None,
        run: beyond::amnesia_minority,
    },
    TestCase {
        name: "beyond::one_way_leader",
        after: None,
        run: beyond::one_way_leader,
    },
    TestCase {
        name: "beyond::duplication",
        after: None,
        run: beyond::duplication,
    },
    TestCase {
        name: "beyond::paused_leader",
        after: None,
        run: beyond::paused_leader,
    },
    TestCase {
        name: "beyond::clients_at_every_node",
        after: None,
        run: beyond::clients_at_every_node,
    },
    TestCase {
        name: "beyond::random_nemesis",
        after: None,
        run: beyond::random_nemesis,
    },
    TestCase {
        name: "lin_kv::basic",
        after: Some("Maelstrom lin-kv"),
        run: lin_kv::basic,
    },
    TestCase {
        name: "lin_kv::partitions",
        after: Some("Maelstrom lin-kv --nemesis partition"),
        run: lin_kv::partitions,
    },
    TestCase {
        name: "lin_kv::latency",
        after: Some("Maelstrom lin-kv --latency"),
        run: lin_kv::latency,
    },
];

/// The suite's checks of itself: the service's, then the lin_kv group's.
const SELF_CHECKS: [TestCase; self_check::CHECKS.len() + lin_kv::CHECKS.len()] =
    concat_checks(self_check::CHECKS, lin_kv::CHECKS);

const fn concat_checks<const N: usize>(a: &[TestCase], b: &[TestCase]) -> [TestCase; N] {
    const UNSET: TestCase = TestCase {
        name: "",
        after: None,
        run: |_| unreachable!("every entry is set"),
    };
    let mut all = [UNSET; N];
    let mut i = 0;
    while i < N {
        let from = if i < a.len() { &a[i] } else { &b[i - a.len()] };
        all[i] = TestCase {
            name: from.name,
            after: from.after,
            run: from.run,
        };
        i += 1;
    }
    all
}
