//! Raft's suite (system 7), after 6.5840's Raft lab tests 3A-3D with their
//! thresholds, and tests beyond them.
//!
//! The implementation is any command speaking `specs::raft_protocol` (`RAFT_IMPL`,
//! `--impl CMD`), by default our `raft`. Safety (one leader per term, in-order
//! application, no two nodes applying different commands at an index, snapshots
//! holding what was committed) is checked by the [`tester`] on every report the nodes
//! send; each test adds what it is named for. Every test also needs leaders and
//! agreement, so a node that does nothing fails each one for progress.
//!
//! 6.5840 counts RPCs; the harness sees messages, so an RPC is a request and its
//! reply and the RPC thresholds are doubled into message thresholds.

mod agreement;
mod beyond;
mod election;
mod persistence;
mod self_check;
mod snapshots;
pub mod tester;

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::Rng;

use crate::cluster::TimeMode;
use crate::suite::{fail, property, Context, Failure, KnownBad, Program, Suite, TestCase};

pub use tester::{Setup, Tester, Violation, ELECTION_TIMEOUT, MS};

/// Our binary.
pub const BIN: &str = "raft";

/// At most one leader in a term.
pub const ELECTION_SAFETY: &str = "election-safety";
/// No two nodes apply (or install in a snapshot) different commands at one index, and
/// a command seen committed stays committed.
pub const STATE_MACHINE_SAFETY: &str = "state-machine-safety";
/// Each node applies indices 1, 2, 3... in order, each once per process run.
pub const APPLY_ORDER: &str = "apply-order";
/// Snapshots a node installs or answers hold what the service gave it.
pub const SNAPSHOT: &str = "snapshot";
/// Leaders come and go as the lab says: none without a majority, connected nodes agree
/// on the term, a leader nobody hears steps down, terms do not change without cause.
pub const LEADER_ELECTION: &str = "leader-election";
/// Entries go where `Start` said, commit only on a majority, and are what was started.
pub const AGREEMENT: &str = "agreement";
/// What was committed survives restarts (indices never go back), and a node starts
/// again from whatever its disk holds.
pub const PERSISTENCE: &str = property::PERSISTENCE;
/// With snapshots on, the Raft state stays small and lagging or restarted nodes are
/// caught up from snapshots.
pub const LOG_COMPACTION: &str = property::LOG_COMPACTION;
/// Elections, agreement and idleness cost no more messages (or bytes) than the lab
/// allows.
pub const MESSAGE_EFFICIENCY: &str = "message-efficiency";
/// A leader repairs a long divergence in a few round trips, not one per entry.
pub const BACKUP_EFFICIENCY: &str = "backup-efficiency";
/// A leader sends a new entry when it is started, not with its next heartbeat.
pub const SPEED: &str = "speed";

pub static SUITE: Suite = Suite {
    name: "raft",
    title: "Raft",
    programs: &[Program {
        var: "RAFT_IMPL",
        bin: BIN,
        key: "raft",
        run_as: "CMD: one Raft node speaking the node protocol and the Raft test interface",
    }],
    bug_var: "RAFT_BUG",
    simulated: true,
    tests: TESTS,
    self_checks: self_check::CHECKS,
    known_bad: &[
        KnownBad {
            variant: "count-commit",
            what: "commits an entry of an earlier term by counting replicas",
            test: "beyond::figure_8_staged",
            property: STATE_MACHINE_SAFETY,
        },
        KnownBad {
            variant: "forget-vote",
            what: "forgets whom it voted for when it restarts",
            test: "beyond::vote_survives_restart",
            property: ELECTION_SAFETY,
        },
        KnownBad {
            variant: "no-fsync",
            what: "acknowledges entries and votes it never fsynced",
            test: "power::power_loss",
            property: STATE_MACHINE_SAFETY,
        },
        KnownBad {
            variant: "log-before-snapshot",
            what: "writes a log the snapshot compacted before the snapshot",
            test: "power::power_loss_around_the_first_snapshot",
            property: PERSISTENCE,
        },
        KnownBad {
            variant: "stale-log-header",
            what: "after a crash between a snapshot and the log it compacts, appends to the old log file",
            test: "power::power_loss_at_sync_points",
            property: STATE_MACHINE_SAFETY,
        },
        KnownBad {
            variant: "log-kept-on-disk",
            what: "trims its log in memory at a snapshot but never on disk, and reports the trimmed size",
            test: "snapshot::snapshot_basic",
            property: LOG_COMPACTION,
        },
        KnownBad {
            variant: "size-underreported",
            what: "answers persisted_size with no Raft state, whatever its log holds",
            test: "snapshot::snapshot_basic",
            property: property::PROTOCOL,
        },
        KnownBad {
            variant: "old-term-snapshot",
            what: "takes a snapshot of an earlier term for one from its leader",
            test: "beyond::replayed_messages",
            property: LEADER_ELECTION,
        },
        KnownBad {
            variant: "truncate-on-append",
            what: "cuts its log after every AppendEntries it takes, even an old one its log extends",
            test: "beyond::replayed_messages",
            property: STATE_MACHINE_SAFETY,
        },
        KnownBad {
            variant: "stale-append-misplaced",
            what: "puts the entries of a late AppendEntries after its snapshot at the wrong indices",
            test: "beyond::stale_append_past_an_installed_snapshot",
            property: STATE_MACHINE_SAFETY,
        },
        KnownBad {
            variant: "stale-append-overclaimed",
            what: "answers a late AppendEntries its snapshot covers with a match past the snapshot",
            test: "beyond::stale_append_covered_by_an_installed_snapshot",
            property: STATE_MACHINE_SAFETY,
        },
        KnownBad {
            variant: "replicate-on-heartbeat",
            what: "sends a new entry only with its next heartbeat",
            test: "beyond::commands_commit_without_waiting_for_heartbeats",
            property: SPEED,
        },
        KnownBad {
            variant: "one-step-backup",
            what: "backs up one entry per rejection",
            test: "beyond::backup_in_few_messages",
            property: BACKUP_EFFICIENCY,
        },
    ],
    docs: "docs/raft.md",
};

/// Runs `test` and gives its row of the summary table what its testers counted, even
/// when it fails.
fn with_stats(cx: &mut Context, test: fn(&mut Context)) {
    tester::take_stats();
    let result = catch_unwind(AssertUnwindSafe(|| test(cx)));
    cx.stats = tester::take_stats();
    if let Err(payload) = result {
        std::panic::resume_unwind(payload);
    }
}

/// A test of the table: `after` the 6.5840 test it follows, if any.
macro_rules! test {
    ($name:expr, $after:expr, $run:path $(,)?) => {
        TestCase {
            name: $name,
            after: Some($after),
            run: |cx| with_stats(cx, $run),
        }
    };
}

macro_rules! beyond {
    ($name:expr, $run:path $(,)?) => {
        TestCase {
            name: $name,
            after: None,
            run: |cx| with_stats(cx, $run),
        }
    };
}

const TESTS: &[TestCase] = &[
    test!(
        "election::initial_election",
        "6.5840 TestInitialElection3A",
        election::initial_election,
    ),
    test!(
        "election::reelection",
        "6.5840 TestReElection3A",
        election::reelection,
    ),
    test!(
        "election::many_elections",
        "6.5840 TestManyElections3A",
        election::many_elections,
    ),
    test!(
        "agreement::basic_agree",
        "6.5840 TestBasicAgree3B",
        agreement::basic_agree,
    ),
    test!(
        "agreement::rpc_bytes",
        "6.5840 TestRPCBytes3B",
        agreement::rpc_bytes,
    ),
    test!(
        "agreement::follower_failure",
        "6.5840 TestFollowerFailure3B",
        agreement::follower_failure,
    ),
    test!(
        "agreement::leader_failure",
        "6.5840 TestLeaderFailure3B",
        agreement::leader_failure,
    ),
    test!(
        "agreement::fail_agree",
        "6.5840 TestFailAgree3B",
        agreement::fail_agree,
    ),
    test!(
        "agreement::fail_no_agree",
        "6.5840 TestFailNoAgree3B",
        agreement::fail_no_agree,
    ),
    test!(
        "agreement::concurrent_starts",
        "6.5840 TestConcurrentStarts3B",
        agreement::concurrent_starts,
    ),
    test!(
        "agreement::rejoin",
        "6.5840 TestRejoin3B",
        agreement::rejoin,
    ),
    test!(
        "agreement::backup",
        "6.5840 TestBackup3B",
        agreement::backup,
    ),
    test!("agreement::count", "6.5840 TestCount3B", agreement::count),
    test!(
        "persist::persist1",
        "6.5840 TestPersist13C",
        persistence::persist1,
    ),
    test!(
        "persist::persist2",
        "6.5840 TestPersist23C",
        persistence::persist2,
    ),
    test!(
        "persist::persist3",
        "6.5840 TestPersist33C",
        persistence::persist3,
    ),
    test!(
        "persist::figure_8",
        "6.5840 TestFigure83C",
        persistence::figure_8,
    ),
    beyond!("power::power_loss", persistence::power_loss),
    beyond!(
        "power::power_loss_at_sync_points",
        persistence::power_loss_at_sync_points
    ),
    beyond!(
        "power::power_loss_around_the_first_snapshot",
        persistence::power_loss_around_the_first_snapshot
    ),
    test!(
        "persist_unreliable::unreliable_agree",
        "6.5840 TestUnreliableAgree3C",
        persistence::unreliable_agree,
    ),
    test!(
        "persist_unreliable::figure_8_unreliable",
        "6.5840 TestFigure8Unreliable3C",
        persistence::figure_8_unreliable,
    ),
    test!(
        "persist_unreliable::reliable_churn",
        "6.5840 TestReliableChurn3C",
        persistence::reliable_churn,
    ),
    test!(
        "persist_unreliable::unreliable_churn",
        "6.5840 TestUnreliableChurn3C",
        persistence::unreliable_churn,
    ),
    test!(
        "snapshot::snapshot_basic",
        "6.5840 TestSnapshotBasic3D",
        snapshots::snapshot_basic,
    ),
    test!(
        "snapshot::snapshot_install",
        "6.5840 TestSnapshotInstall3D",
        snapshots::snapshot_install,
    ),
    test!(
        "snapshot::snapshot_install_unreliable",
        "6.5840 TestSnapshotInstallUnreliable3D",
        snapshots::snapshot_install_unreliable,
    ),
    test!(
        "snapshot::snapshot_install_crash",
        "6.5840 TestSnapshotInstallCrash3D",
        snapshots::snapshot_install_crash,
    ),
    test!(
        "snapshot::snapshot_install_unreliable_crash",
        "6.5840 TestSnapshotInstallUnCrash3D",
        snapshots::snapshot_install_unreliable_crash,
    ),
    test!(
        "snapshot::snapshot_all_crash",
        "6.5840 TestSnapshotAllCrash3D",
        snapshots::snapshot_all_crash,
    ),
    test!(
        "snapshot::snapshot_init",
        "6.5840 TestSnapshotInit3D",
        snapshots::snapshot_init,
    ),
    beyond!("beyond::random_nemesis", beyond::random_nemesis),
    beyond!(
        "beyond::vote_survives_restart",
        beyond::vote_survives_restart,
    ),
    beyond!("beyond::figure_8_staged", beyond::figure_8_staged),
    beyond!(
        "beyond::stale_appends_after_snapshots",
        beyond::stale_appends_after_snapshots,
    ),
    beyond!(
        "beyond::stale_append_past_an_installed_snapshot",
        beyond::stale_append_past_an_installed_snapshot,
    ),
    beyond!(
        "beyond::stale_append_covered_by_an_installed_snapshot",
        beyond::stale_append_covered_by_an_installed_snapshot,
    ),
    beyond!(
        "beyond::backup_in_few_messages",
        beyond::backup_in_few_messages,
    ),
    beyond!("beyond::duplicated_messages", beyond::duplicated_messages),
    beyond!(
        "beyond::amnesia_on_a_follower",
        beyond::amnesia_on_a_follower,
    ),
    beyond!(
        "beyond::amnesia_on_a_follower_with_snapshots",
        beyond::amnesia_on_a_follower_with_snapshots,
    ),
    beyond!(
        "beyond::one_way_partition_of_the_leader",
        beyond::one_way_partition_of_the_leader,
    ),
    beyond!("beyond::paused_leader", beyond::paused_leader),
    beyond!(
        "beyond::restarted_followers_leave_the_leader_be",
        beyond::restarted_followers_leave_the_leader_be,
    ),
    beyond!("beyond::replayed_messages", beyond::replayed_messages),
    beyond!(
        "beyond::commands_commit_without_waiting_for_heartbeats",
        beyond::commands_commit_without_waiting_for_heartbeats,
    ),
];

/// Stops the test with a failure of `property` unless `ok`.
fn require(ok: bool, property: &'static str, message: impl FnOnce() -> String) {
    if !ok {
        fail(property, message());
    }
}

/// Keeps the sweep's seeds apart from the test's other uses of the seed.
const SWEEP_STREAM: u64 = 0x0073_7765_6570;

/// How many runs a sweep makes: `RAFT_SWEEP`, else 8 in simulated time and 1 on the
/// wall clock.
fn sweep_count(mode: TimeMode) -> usize {
    let default = match mode {
        TimeMode::Sim => 8,
        TimeMode::Real => 1,
    };
    match std::env::var("RAFT_SWEEP") {
        Ok(v) => match v.trim().parse() {
            Ok(n) if n >= 1 => n,
            _ => fail(
                property::HARNESS,
                format!("RAFT_SWEEP={v:?} is not a number of runs (1 or more)"),
            ),
        },
        Err(_) => default,
    }
}

/// Runs `run` once for each of `runs`, and stops at the first run that fails, with
/// that failure's property and a message saying which run it was (`describe`).
fn sweep_over<R>(
    cx: &Context,
    runs: &[R],
    describe: impl Fn(&R) -> String,
    run: impl Fn(&Context, &R),
) {
    for (k, r) in runs.iter().enumerate() {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| run(cx, r))) {
            let (property, message) = match payload.downcast::<Failure>() {
                Ok(f) => (f.property, f.message),
                Err(payload) => (
                    property::ASSERTION,
                    payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "the scenario panicked".into()),
                ),
            };
            fail(
                property,
                format!(
                    "sweep run {} of {} ({}): {message}",
                    k + 1,
                    runs.len(),
                    describe(r)
                ),
            );
        }
    }
}

/// The seeds of a sweep of `count` runs: the test's seed first, then seeds drawn from
/// it, so the test's seed replays the whole sweep and a run's own seed with
/// `RAFT_SWEEP=1` replays that run alone.
pub fn sweep_seeds(seed: u64, count: usize) -> Vec<u64> {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(
        seed ^ SWEEP_STREAM.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut seeds = vec![seed];
    seeds.extend((1..count).map(|_| rng.gen::<u64>()));
    seeds
}

/// Runs `scenario` on a fresh `n`-node cluster once per seed of a sweep, and stops at
/// the first run that fails, with that failure's property and a message saying which
/// run and seed it was.
fn sweep(cx: &mut Context, n: usize, scenario: impl Fn(&mut Tester)) {
    let count = sweep_count(cx.mode);
    let seeds = sweep_seeds(cx.seed, count);
    sweep_over(
        cx,
        &seeds,
        |seed| format!("seed {seed}; alone: RAFT_SWEEP=1 with seed {seed}"),
        |cx, &seed| scenario(&mut Tester::with_seed(cx, n, seed)),
    );
    cx.note(format!(
        "{count} sweep runs passed (RAFT_SWEEP={count}), seeds {}",
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_starts_with_the_test_seed_and_is_a_function_of_it() {
        let a = sweep_seeds(42, 8);
        assert_eq!(a[0], 42);
        assert_eq!(a, sweep_seeds(42, 8));
        assert_eq!(&sweep_seeds(42, 3)[..], &a[..3]);
        let mut distinct = a.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 8);
        assert_ne!(sweep_seeds(43, 8)[1], a[1]);
    }

    #[test]
    fn every_known_bad_names_a_test_of_the_table() {
        for k in SUITE.known_bad {
            assert!(SUITE.test(k.test).is_some(), "{}: {}", k.variant, k.test);
        }
    }
}
