//! The replicated key/value service's suite (6.5840 lab 4), a first part: clients
//! against three nodes, with an unreliable network, a partitioned leader, and
//! restarts of every node with and without snapshots.
//!
//! Each test starts three nodes (`n1`..`n3`) behind the simulated network, runs
//! harness clients that send to every node in turn (a node that does not lead
//! answers error 11), and judges the run: progress, no protocol errors, and, always,
//! the whole history checked for linearizability against `specs::KvFetchAppend`.
//! The protocol is kvsrv's plus the errors of replication (docs/kvraft.md).

mod lin_kv;
mod run;
mod self_check;
mod tests;

pub use run::LeaderProbe;

use crate::suite::{property, KnownBad, Program, Suite, TestCase};

/// Our binary.
pub const BIN: &str = "kvraft";

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
    known_bad: &[KnownBad {
        variant: "stale-read",
        what: "a leader answers reads without the log",
        test: "partition::leader_in_minority",
        property: property::LINEARIZABLE,
    }],
    docs: "docs/kvraft.md",
};

const TESTS: &[TestCase] = &[
    TestCase {
        name: "basic::one_client",
        after: Some("6.5840 kvraft TestBasic4A"),
        run: |cx| tests::with_cluster(cx, tests::basic_one_client),
    },
    TestCase {
        name: "concurrent::many_clients",
        after: Some("6.5840 kvraft TestConcurrent4A"),
        run: |cx| tests::with_cluster(cx, tests::concurrent_many_clients),
    },
    TestCase {
        name: "unreliable::lossy_duplicating",
        after: Some("6.5840 kvraft TestUnreliable4A"),
        run: |cx| tests::with_cluster(cx, tests::unreliable_lossy_duplicating),
    },
    TestCase {
        name: "unreliable::one_key_appends",
        after: Some("6.5840 kvraft TestUnreliableOneKey4A"),
        run: |cx| tests::with_cluster(cx, tests::unreliable_one_key_appends),
    },
    TestCase {
        name: "persist::restart_all",
        after: Some("6.5840 kvraft TestPersistConcurrent4A"),
        run: |cx| tests::with_cluster(cx, tests::restart_all),
    },
    TestCase {
        name: "snapshot::restart_all",
        after: Some("6.5840 kvraft TestSnapshotRecover4B"),
        run: |cx| tests::with_snapshots(cx, tests::restart_all),
    },
    TestCase {
        name: "partition::leader_in_minority",
        after: Some("6.5840 kvraft TestOnePartition4A"),
        run: |cx| tests::with_cluster(cx, tests::partition_leader_in_minority),
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
