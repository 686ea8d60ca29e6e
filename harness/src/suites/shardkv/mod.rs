//! The sharded key/value service's suite (6.5840 lab 5): the shard controller's
//! tests (5A) on a controller of three nodes, and the replica groups' tests (5B)
//! on a controller and up to three groups of three, in simulated time.
//!
//! Every node runs the same command; `SHARDKV_LAYOUT` (`ctrl=n1,n2,n3;100=n4,n5,n6;...`)
//! says which nodes form the controller and each group. The harness's clients find
//! each key's group through the controller (`query`) and retry on "wrong group"
//! (error 11 with `"wrong_group": true`); every key/value history is judged
//! linearizable against `specs::KvFetchAppend`. See docs/shardkv.md.

/// Measurements run by `benches/shardkv.rs`, outside the conformance table.
pub mod bench;
mod ctrl_tests;
mod kv_tests;
mod run;
mod self_check;

use crate::suite::{property, KnownBad, Program, Suite, TestCase};

/// Our binary.
pub const BIN: &str = "shardkv";

/// A configuration names exactly the groups joined and not left, and gives each
/// shard to one of them.
pub const CONFIG_VALID: &str = "config-valid";
/// Shards per group differ by at most one.
pub const BALANCED: &str = "balanced";
/// A join or leave moves no more shards than it must.
pub const MINIMAL_MOVES: &str = "minimal-moves";
/// Every configuration made is answered by number, unchanged.
pub const HISTORY_KEPT: &str = "history-kept";
/// A shard is served only by the group that owns it in the current configuration
/// and holds its data: never by another, never while nobody can.
pub const SINGLE_OWNER: &str = "single-owner";
/// Shards given away are deleted once their new owner has them.
pub const DELETION: &str = "deletion";
/// Each join, leave or move makes exactly one configuration, however often the
/// network or the clerk repeats it.
pub const EXACTLY_ONCE: &str = "exactly-once";
/// With snapshots on, each group member's Raft state stays within 8 x `maxraftstate`.
pub const LOG_COMPACTION: &str = property::LOG_COMPACTION;

pub static SUITE: Suite = Suite {
    name: "shardkv",
    title: "sharded key/value service",
    programs: &[Program {
        var: "SHARDKV_IMPL",
        bin: BIN,
        key: "shardkv",
        run_as: "CMD: one node (controller or group member, by SHARDKV_LAYOUT) speaking the node protocol on stdin/stdout",
    }],
    bug_var: "SHARDKV_BUG",
    simulated: true,
    tests: TESTS,
    self_checks: self_check::CHECKS,
    known_bad: KNOWN_BAD,
    docs: "docs/shardkv.md",
};

const KNOWN_BAD: &[KnownBad] = &[
    KnownBad {
        variant: "serve-before-data",
        what: "a group serves a shard it gains before the data arrived",
        test: "kv::join_leave",
        property: property::LINEARIZABLE,
    },
    KnownBad {
        variant: "no-dedup-move",
        what: "a shard moves without its duplicate table",
        test: "beyond::dedup_moves_with_shard",
        property: property::LINEARIZABLE,
    },
    KnownBad {
        variant: "never-delete",
        what: "a group keeps the shards it gave away",
        test: "challenge::deletion",
        property: DELETION,
    },
    KnownBad {
        variant: "never-compact",
        what: "a group member never snapshots, so its log grows without bound",
        test: "kv::snapshot",
        property: LOG_COMPACTION,
    },
    KnownBad {
        variant: "stale-delete",
        what: "a group drops a shard it gives away on a Delete of an older configuration",
        test: "beyond::stale_delete_after_a_shard_returns",
        property: property::PROGRESS,
    },
    KnownBad {
        variant: "no-fsync",
        what: "a group member acknowledges entries it never made durable",
        test: "beyond::power_loss_of_a_group",
        property: property::LINEARIZABLE,
    },
    KnownBad {
        variant: "skip-config",
        what: "a group jumps to the latest configuration",
        test: "beyond::ctrl_partitioned_during_join",
        property: property::PROGRESS,
    },
];

const TESTS: &[TestCase] = &[
    TestCase {
        name: "ctrl::basic_join_leave",
        after: Some("6.5840 shardctrler TestBasic5A: basic leave/join"),
        run: |cx| ctrl_tests::with_ctrl(cx, ctrl_tests::basic_join_leave),
    },
    TestCase {
        name: "ctrl::historical_queries",
        after: Some("6.5840 shardctrler TestBasic5A: historical queries"),
        run: |cx| ctrl_tests::with_ctrl(cx, ctrl_tests::historical_queries),
    },
    TestCase {
        name: "ctrl::move",
        after: Some("6.5840 shardctrler TestBasic5A: move"),
        run: |cx| ctrl_tests::with_ctrl(cx, ctrl_tests::move_shards),
    },
    TestCase {
        name: "ctrl::concurrent_leave_join",
        after: Some("6.5840 shardctrler TestBasic5A: concurrent leave/join"),
        run: |cx| ctrl_tests::with_ctrl(cx, ctrl_tests::concurrent_leave_join),
    },
    TestCase {
        name: "ctrl::minimal_transfers_after_joins",
        after: Some("6.5840 shardctrler TestBasic5A: minimal transfers after joins"),
        run: |cx| ctrl_tests::with_ctrl(cx, ctrl_tests::minimal_after_joins),
    },
    TestCase {
        name: "ctrl::minimal_transfers_after_leaves",
        after: Some("6.5840 shardctrler TestBasic5A: minimal transfers after leaves"),
        run: |cx| ctrl_tests::with_ctrl(cx, ctrl_tests::minimal_after_leaves),
    },
    TestCase {
        name: "ctrl::multi",
        after: Some("6.5840 shardctrler TestMulti5A"),
        run: |cx| ctrl_tests::with_ctrl(cx, ctrl_tests::multi),
    },
    TestCase {
        name: "kv::static_shards",
        after: Some("6.5840 shardkv TestStaticShards5B"),
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::static_shards),
    },
    TestCase {
        name: "kv::rejection",
        after: Some("6.5840 shardkv TestRejection5B"),
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::rejection),
    },
    TestCase {
        name: "kv::join_leave",
        after: Some("6.5840 shardkv TestJoinLeave5B"),
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::join_leave),
    },
    TestCase {
        name: "kv::snapshot",
        after: Some("6.5840 shardkv TestSnapshot5B"),
        run: |cx| kv_tests::with_groups(cx, 3, "1000", kv_tests::snapshot),
    },
    TestCase {
        name: "kv::miss_change",
        after: Some("6.5840 shardkv TestMissChange5B"),
        run: |cx| kv_tests::with_groups(cx, 3, "1000", kv_tests::miss_change),
    },
    TestCase {
        name: "kv::concurrent1",
        after: Some("6.5840 shardkv TestConcurrent1_5B"),
        run: |cx| kv_tests::with_groups(cx, 3, "-1", kv_tests::concurrent1),
    },
    TestCase {
        name: "kv::concurrent2",
        after: Some("6.5840 shardkv TestConcurrent2_5B"),
        run: |cx| kv_tests::with_groups(cx, 3, "-1", kv_tests::concurrent2),
    },
    TestCase {
        name: "kv::concurrent3",
        after: Some("6.5840 shardkv TestConcurrent3_5B"),
        run: |cx| kv_tests::with_groups(cx, 3, "300", kv_tests::concurrent3),
    },
    TestCase {
        name: "kv::unreliable1",
        after: Some("6.5840 shardkv TestUnreliable1_5B"),
        run: |cx| kv_tests::with_groups(cx, 3, "-1", kv_tests::unreliable1),
    },
    TestCase {
        name: "kv::unreliable2",
        after: Some("6.5840 shardkv TestUnreliable2_5B"),
        run: |cx| kv_tests::with_groups(cx, 3, "-1", kv_tests::unreliable2),
    },
    TestCase {
        name: "kv::unreliable3",
        after: Some("6.5840 shardkv TestUnreliable3_5B"),
        run: |cx| kv_tests::with_groups(cx, 3, "-1", kv_tests::unreliable3),
    },
    TestCase {
        name: "challenge::deletion",
        after: Some("6.5840 shardkv TestChallenge1Delete"),
        run: |cx| kv_tests::with_groups(cx, 3, "1", kv_tests::challenge1_delete),
    },
    TestCase {
        name: "beyond::ctrl_exactly_once_unreliable",
        after: None,
        run: |cx| ctrl_tests::with_ctrl(cx, ctrl_tests::exactly_once_unreliable),
    },
    TestCase {
        name: "challenge::unaffected",
        after: Some("6.5840 shardkv TestChallenge2Unaffected"),
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::challenge2_unaffected),
    },
    TestCase {
        name: "challenge::partial",
        after: Some("6.5840 shardkv TestChallenge2Partial"),
        run: |cx| kv_tests::with_groups(cx, 3, "-1", kv_tests::challenge2_partial),
    },
    TestCase {
        name: "beyond::dedup_moves_with_shard",
        after: None,
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::dedup_moves_with_shard),
    },
    TestCase {
        name: "beyond::ctrl_survives_a_full_restart",
        after: None,
        run: |cx| ctrl_tests::with_ctrl_at(cx, "1000", ctrl_tests::survives_a_full_restart),
    },
    TestCase {
        name: "beyond::ctrl_partitioned_during_join",
        after: None,
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::ctrl_partitioned_during_join),
    },
    TestCase {
        name: "beyond::group_paused_during_handoff",
        after: None,
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::group_paused_during_handoff),
    },
    TestCase {
        name: "beyond::one_way_between_groups",
        after: None,
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::one_way_between_groups),
    },
    TestCase {
        name: "beyond::stale_delete_after_a_shard_returns",
        after: None,
        run: |cx| kv_tests::with_groups(cx, 2, "-1", kv_tests::stale_delete_after_a_shard_returns),
    },
    TestCase {
        name: "beyond::random_nemesis",
        after: None,
        run: |cx| kv_tests::with_groups(cx, 3, "1000", kv_tests::random_nemesis),
    },
    TestCase {
        name: "beyond::power_loss_of_a_group",
        after: None,
        run: kv_tests::power_loss_of_a_group,
    },
    TestCase {
        name: "beyond::power_loss_of_a_minority",
        after: None,
        run: kv_tests::power_loss_of_a_minority,
    },
];
