//! Checks of the kvraft suite itself: it fails nodes that do not do the work, and a
//! seed replays.

use super::run;
use super::{tests, SUITE};
use crate::cluster::TimeMode;
use crate::suite::{fail, property, self_check, Context, TestCase};

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

/// Every conformance test must fail the fixture node in `mode`, for lack of progress.
fn fails_every_test_for_progress(cx: &mut Context, mode: &str) {
    let Some(node) = self_check::unhelpful_node(cx, mode) else {
        return;
    };
    let what = format!("nodes that do nothing ({mode})");
    // Several at a time: each run mostly waits for its nodes (interpreters that
    // start, and stand-ins that answer nothing) and for its simulated clock.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    let shared: &Context = cx;
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_RUNS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(test) = SUITE.tests.get(i) else {
                    break;
                };
                let outcome = self_check::run_against(shared, &SUITE, test, &node, TimeMode::Sim);
                outcomes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, outcome));
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by_key(|(i, _)| *i);
    for (_, outcome) in &outcomes {
        self_check::require_failed_for(cx, outcome, property::PROGRESS, &what);
    }
}

/// Conformance tests run at once against the stand-in nodes.
const PARALLEL_RUNS: usize = 4;

/// Nodes that answer every request with 11 (temporarily unavailable), as if no
/// leader were ever elected.
fn refuse_all_fails_every_test(cx: &mut Context) {
    fails_every_test_for_progress(cx, "refuse-all");
}

/// Nodes that answer `init` and nothing after it.
fn never_answer_fails_every_test(cx: &mut Context) {
    fails_every_test_for_progress(cx, "never-answer");
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
    cx.mode = TimeMode::Sim;
    let a = run(cx);
    let b = run(cx);
    assert!(cx.passing(), "the runs failed");
    assert!(
        a.journal.lines().count() > 100,
        "the journal recorded the run"
    );
    self_check::require_same_record(cx.seed, "journal", &a.journal, &b.journal);
    self_check::require_same_record(cx.seed, "history", &a.history, &b.history);
}
