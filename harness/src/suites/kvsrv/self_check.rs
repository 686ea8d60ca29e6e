//! Checks of the kvsrv suite itself: it fails nodes that do not do the work, it
//! serves a node that needs a moment, a seed replays, the wall-clock mode really runs
//! on the wall clock, and a node in another language can be plugged in.

use std::time::Duration;

use super::run;
use super::{tests, SUITE};
use crate::cluster::TimeMode;
use crate::implementation::Implementation;
use crate::suite::context::Target;
use crate::suite::runner::{self, RunOptions};
use crate::suite::{fail, property, self_check, Context, Outcome, TestCase};
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
        name: "late_node_passes",
        after: None,
        run: late_node_passes,
    },
    TestCase {
        name: "same_seed_same_journal",
        after: None,
        run: same_seed_same_journal,
    },
    TestCase {
        name: "wall_clock_runs_take_wall_time",
        after: None,
        run: wall_clock_runs_take_wall_time,
    },
    TestCase {
        name: "python_example_passes_basic",
        after: None,
        run: python_example_passes_basic,
    },
];

/// Runs conformance test `name` against `implementation`, in simulated time.
fn run_against(cx: &Context, implementation: &Implementation, name: &str) -> Outcome {
    let test = SUITE.test(name).expect("a kvsrv test");
    self_check::run_against(cx, &SUITE, test, implementation, TimeMode::Sim)
}

/// A node that answers every request with 11 (temporarily unavailable).
fn refuse_all_fails_every_test(cx: &mut Context) {
    self_check::unhelpful_node_fails_every_test(cx, &SUITE, "refuse-all");
}

/// A node that answers `init` and nothing after it.
fn never_answer_fails_every_test(cx: &mut Context) {
    self_check::unhelpful_node_fails_every_test(cx, &SUITE, "never-answer");
}

/// Our server behind a proxy that answers 11 for its first 2 s: clients retry with
/// backoff, so it passes. The memory tests are left out: they measure the process
/// the suite started, here the proxy, not the server.
fn late_node_passes(cx: &mut Context) {
    let ours = Implementation::ours(super::BIN);
    let late = format!("late 2 {}", ours.command_line());
    let Some(implementation) = self_check::unhelpful_node(cx, &late) else {
        return;
    };
    for test in SUITE
        .tests
        .iter()
        .filter(|t| !t.name.starts_with("memory::"))
    {
        let outcome = run_against(cx, &implementation, test.name);
        if !outcome.passed() {
            cx.fail(
                property::PROGRESS,
                format!(
                    "{} failed a node that is only unavailable for its first 2 s:\n{}",
                    test.name,
                    outcome.report()
                ),
            );
            continue;
        }
        let refused = outcome.stats.map_or(0, |s| s.clock_ns);
        cx.check(refused >= 2_000_000_000, property::HARNESS, || {
            format!(
                "{} ended at {:.3} s on its clock, before the node became available",
                test.name,
                refused as f64 / 1e9
            )
        });
    }
}

/// Simulated time is a function of the seed: one seed, run twice, gives the same
/// journal (every message, fate and delivery) and the same history.
fn same_seed_same_journal(cx: &mut Context) {
    let run = |cx: &mut Context| {
        let Some(mut t) = run::start(cx) else {
            fail(property::SETUP, "cannot start the server");
        };
        tests::unreliable_lossy_duplicating(&mut t);
        t.finish()
    };
    Finished::require_replay(cx, 100, run);
}

/// A run on the wall clock takes at least as long, in wall time, as its own clock
/// says (a simulated run of the same test takes a fraction of it).
fn wall_clock_runs_take_wall_time(cx: &mut Context) {
    for name in [
        "basic::one_client",
        "unreliable::lossy_duplicating",
        "unreliable::server_paused",
    ] {
        let test = SUITE.test(name).expect("a kvsrv test");
        let options = RunOptions::within(cx, TimeMode::Real, Target::default());
        let outcome = runner::run(&SUITE, test, &options);
        assert!(outcome.passed(), "{}", outcome.report());
        let clock = Duration::from_nanos(outcome.stats.map_or(0, |s| s.clock_ns));
        assert!(
            clock >= Duration::from_millis(100),
            "{name}: the run's clock advanced only {clock:?}"
        );
        assert!(
            outcome.wall >= clock,
            "{name} on the wall clock took {:?} of wall time but {clock:?} on its clock: \
             it did not run on the wall clock",
            outcome.wall
        );
    }
}

/// The Python node kept as an example passes the basic tests when plugged in.
fn python_example_passes_basic(cx: &mut Context) {
    let Some(implementation) = self_check::python_example(cx, "impls/kvsrv/python/kvsrv_node.py")
    else {
        return;
    };
    for name in ["basic::one_client", "basic::lin_kv_ops"] {
        let outcome = run_against(cx, &implementation, name);
        assert!(outcome.passed(), "{}", outcome.report());
        let ok = outcome.stats.map_or(0, |s| s.ok);
        assert!(
            ok >= 150,
            "only {ok} operations succeeded:\n{}",
            outcome.report()
        );
    }
}
