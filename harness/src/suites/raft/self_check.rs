//! Checks of the Raft suite itself: it fails nodes that do not do the work, for lack
//! of progress, and one seed replays one run.

use serde_json::json;

use super::{Tester, SUITE};
use crate::cluster::TimeMode;
use crate::suite::{self_check, Context, TestCase};

pub(super) const CHECKS: &[TestCase] = &[
    TestCase {
        name: "same_seed_same_journal",
        after: None,
        run: same_seed_same_journal,
    },
    TestCase {
        name: "never_answer_fails_for_progress",
        after: None,
        run: never_answer_fails_for_progress,
    },
    TestCase {
        name: "refuse_all_fails_for_progress",
        after: None,
        run: refuse_all_fails_for_progress,
    },
    TestCase {
        name: "python_example_passes",
        after: None,
        run: python_example_passes,
    },
];

/// One seed, one run: two runs of a scenario with faults produce the same journal
/// byte for byte (simulated time only).
fn same_seed_same_journal(cx: &mut Context) {
    cx.mode = TimeMode::Sim;
    let run = |cx: &Context| {
        let mut t = Tester::new(cx, 3);
        let n = t.n;
        t.one(json!(1), n, true);
        let leader = t.check_one_leader();
        t.disconnect(leader);
        t.one(json!(2), n - 1, true);
        t.connect(leader);
        t.one(json!(3), n, true);
        t.journal()
    };
    let (a, b) = (run(cx), run(cx));
    assert!(a.lines().count() > 100, "the scenario did something");
    self_check::require_same_record(cx.seed, "journal", &a, &b);
}

/// One test of each group, from 3 to 5 nodes, sweeps and the power-loss filesystem
/// included: each waits for a leader or for agreement first, as every test of the
/// suite does. (Every test would do, but each start of a Python node costs a tenth of
/// a second.)
const SAMPLE: &[&str] = &[
    "election::initial_election",
    "agreement::basic_agree",
    "agreement::fail_no_agree",
    "persist::persist1",
    "power::power_loss",
    "power::power_loss_at_sync_points",
    "persist_unreliable::unreliable_agree",
    "snapshot::snapshot_basic",
    "beyond::figure_8_staged",
];

/// Each test of [`SAMPLE`] must fail the fixture node in `mode`, for lack of progress
/// (with a message saying so).
fn fails_for_progress(cx: &mut Context, mode: &str) {
    let Some(node) = self_check::unhelpful_node(cx, mode) else {
        return;
    };
    let tests = SAMPLE.iter().map(|n| SUITE.test(n).expect("a raft test"));
    let what = format!("a node that does nothing ({mode})");
    self_check::fails_for_progress(cx, &SUITE, tests, &node, TimeMode::Sim, &what);
}

/// A node that answers `init` and nothing after it.
fn never_answer_fails_for_progress(cx: &mut Context) {
    fails_for_progress(cx, "never-answer");
}

/// A node that answers every request of the tester with error 11 (temporarily
/// unavailable).
fn refuse_all_fails_for_progress(cx: &mut Context) {
    fails_for_progress(cx, "refuse-all");
}

/// The Python node kept as an example (`impls/raft/python/raft_node.py`, written to
/// the interface alone) passes an agreement test, a restart test and the replay of
/// old messages when plugged in: the suite asks nothing of a node that only ours
/// does. (The whole suite passes with it, in about three minutes.)
fn python_example_passes(cx: &mut Context) {
    let tests = [
        "agreement::basic_agree",
        "persist::persist2",
        "beyond::replayed_messages",
    ];
    let path = "impls/raft/python/raft_node.py";
    self_check::python_example_passes(cx, &SUITE, path, &tests, TimeMode::Sim);
}
