//! The gossip chat's suite (seed system 3): Maelstrom's broadcast workload over the
//! harness's network, with crashes, partitions, one-way links, loss and duplication.
//!
//! Each test gives the nodes a topology (line, grid, tree), broadcasts fresh integers
//! through them, injects faults, and ends with `run::GossipTest::finish`: after the
//! last broadcast and a bounded quiet period every live node lists the same values,
//! none lost, none twice, and (outside the `broadcast` group) each origin's in order.
//! The `broadcast` group uses only Maelstrom's workload and fault model, so a node
//! written for Maelstrom's broadcast challenge plugs in unchanged (with
//! `--time real`).

mod chat;
mod run;
mod self_check;
mod tests;

use crate::suite::{KnownBad, Program, Suite, TestCase};

pub use chat::CHAT_LOG;
pub use run::{grid, line, tree, Topology};
pub use tests::OVERHEAD_FACTOR;

/// Our binary.
pub const BIN: &str = "gossip";

/// After a bounded quiet period every live connected node holds the same messages,
/// and every acknowledged one whose node did not crash.
pub const CONVERGENCE: &str = "convergence";
/// No message delivered twice, none that nobody broadcast.
pub const INTEGRITY: &str = "integrity";
/// Each origin's messages are delivered in the order it sent them.
pub const PER_ORIGIN_ORDER: &str = "per-origin-order";
/// Messages per broadcast stay within c * n, and idle traffic does not grow with the
/// log.
pub const OVERHEAD: &str = "overhead";
/// Nodes talk to their neighbours only.
pub const NEIGHBOURS_ONLY: &str = "neighbours-only";

pub static SUITE: Suite = Suite {
    name: "gossip",
    title: "gossip chat",
    programs: &[Program {
        var: "GOSSIP_IMPL",
        bin: BIN,
        key: "gossip",
        run_as: "CMD: one node of Maelstrom's broadcast workload on stdin/stdout",
    },
    Program {
        var: "GOSSIP_CHAT_IMPL",
        bin: "gossip-chat",
        key: "chat",
        run_as: "CMD <id> <n> <port>: the course's chat server (the chat tests, through our gossip-proxy)",
    }],
    bug_var: "GOSSIP_BUG",
    simulated: true,
    tests: TESTS,
    self_checks: self_check::CHECKS,
    known_bad: &[
        KnownBad {
            variant: "no-anti-entropy",
            what: "never exchanges statuses periodically",
            test: "anti_entropy::lost_rumor_repaired",
            property: CONVERGENCE,
        },
        KnownBad {
            variant: "no-order",
            what: "delivers a rumor past a gap in its origin's sequence",
            test: "faults::lossy_duplicating",
            property: PER_ORIGIN_ORDER,
        },
        KnownBad {
            variant: "flood",
            what: "sends every message to every neighbour, again and again",
            test: "overhead::tree",
            property: OVERHEAD,
        },
    ],
    docs: "docs/gossip.md",
};

const TESTS: &[TestCase] = &[
    TestCase {
        name: "broadcast::single_node",
        after: Some("Maelstrom broadcast 3a"),
        run: |cx| tests::with_nodes(cx, line(1), tests::single_node),
    },
    TestCase {
        name: "broadcast::multi_node",
        after: Some("Maelstrom broadcast 3b"),
        run: |cx| tests::with_nodes(cx, grid(5), tests::multi_node),
    },
    TestCase {
        name: "broadcast::partitions",
        after: Some("Maelstrom broadcast 3c"),
        run: |cx| tests::with_nodes(cx, grid(5), tests::partitions),
    },
    TestCase {
        name: "convergence::line_crash_restart",
        after: None,
        run: |cx| tests::with_nodes(cx, line(5), tests::line_crash_restart),
    },
    TestCase {
        name: "convergence::crashed_origin",
        after: None,
        run: |cx| tests::with_nodes(cx, grid(4), tests::crashed_origin),
    },
    TestCase {
        name: "faults::partition_heal",
        after: None,
        run: |cx| tests::with_nodes(cx, grid(9), tests::partition_heal),
    },
    TestCase {
        name: "faults::one_way",
        after: None,
        run: |cx| tests::with_nodes(cx, line(5), tests::one_way),
    },
    TestCase {
        name: "faults::lossy_duplicating",
        after: None,
        run: |cx| tests::with_nodes(cx, tree(7, 2), tests::lossy_duplicating),
    },
    TestCase {
        name: "faults::paused_node",
        after: None,
        run: |cx| tests::with_nodes(cx, grid(5), tests::paused_node),
    },
    TestCase {
        name: "anti_entropy::lost_rumor_repaired",
        after: Some("the course's anti-entropy"),
        run: |cx| tests::with_nodes(cx, line(4), tests::lost_rumor_repaired),
    },
    TestCase {
        name: "overhead::line",
        after: Some("Maelstrom broadcast 3d/3e (messages per operation)"),
        run: |cx| tests::with_nodes(cx, line(10), tests::overhead_line),
    },
    TestCase {
        name: "overhead::grid",
        after: Some("Maelstrom broadcast 3d/3e (messages per operation)"),
        run: |cx| tests::with_nodes(cx, grid(16), tests::overhead_grid),
    },
    TestCase {
        name: "overhead::tree",
        after: Some("Maelstrom broadcast 3d/3e (messages per operation)"),
        run: |cx| tests::with_nodes(cx, tree(15, 2), tests::overhead_tree),
    },
    TestCase {
        name: "overhead::idle_only_status",
        after: None,
        run: |cx| tests::with_nodes(cx, line(5), tests::idle_only_status),
    },
    TestCase {
        name: "robustness::malformed_input",
        after: None,
        run: |cx| tests::with_nodes(cx, line(3), tests::malformed_input),
    },
    TestCase {
        name: "chat::basic",
        after: Some("CS 5450 chat: proxy script"),
        run: |cx| {
            chat::run_script(
                cx,
                "basic.chat",
                include_str!("../../../tests/gossip/scripts/basic.chat"),
            )
        },
    },
    TestCase {
        name: "chat::crash_restart",
        after: Some("CS 5450 chat: proxy script"),
        run: |cx| {
            chat::run_script(
                cx,
                "crash_restart.chat",
                include_str!("../../../tests/gossip/scripts/crash_restart.chat"),
            )
        },
    },
    TestCase {
        name: "chat::line_of_five",
        after: Some("CS 5450 chat: proxy script"),
        run: |cx| {
            chat::run_script(
                cx,
                "line_of_five.chat",
                include_str!("../../../tests/gossip/scripts/line_of_five.chat"),
            )
        },
    },
    TestCase {
        name: "chat::framing",
        after: None,
        run: chat::framing,
    },
    TestCase {
        name: "chat::idle_uses_no_cpu",
        after: None,
        run: chat::idle_uses_no_cpu,
    },
];
