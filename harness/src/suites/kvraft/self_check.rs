//! Checks of the kvraft suite itself: it fails nodes that do not do the work, and a
//! seed replays.

use super::run;
use super::{tests, SUITE};
use crate::suite::{fail, property, self_check, Context, TestCase};
use crate::suites::kv_cluster::Finished;

pub(super) const CHECKS: &[TestCase] = &[
    TestCase {
        name: "refuse_all_fails_every_test",
        after: None,
        run: refuse_all_fails_every_test,
    },
    TestCase {
        name: "never_answer_fails_every_test",
        after: None,
        run: never_answer_fails_every_test,
    },
    TestCase {
        name: "same_seed_same_journal",
        after: None,
        run: same_seed_same_journal,
    },
];

/// Nodes that answer every request with 11 (temporarily unavailable), as if no
/// leader were ever elected.
fn refuse_all_fails_every_test(cx: &mut Context) {
    self_check::unhelpful_node_fails_every_test(cx, &SUITE, "refuse-all");
}

/// Nodes that answer `init` and nothing after it.
fn never_answer_fails_every_test(cx: &mut Context) {
    self_check::unhelpful_node_fails_every_test(cx, &SUITE, "never-answer");
}

/// Simulated time is a function of the seed: one seed, run twice, gives the same
/// journal (every message, fate and delivery) and the same history.
fn same_seed_same_journal(cx: &mut Context) {
    let run = |cx: &mut Context| {
        let Some(mut t) = run::start(cx) else {
            fail(property::SETUP, "cannot start the nodes");
        };
        tests::unreliable_mixed(&mut t);
        t.finish()
    };
    Finished::require_replay(cx, 100, run);
}
