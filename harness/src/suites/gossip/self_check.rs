//! Checks of the gossip suite itself: nodes written for Maelstrom's broadcast
//! challenge are judged by the `broadcast` group on the wall clock (a correct one
//! passes, one that never forwards fails for convergence), nodes that do nothing fail
//! every test for progress, our node passes the `broadcast` group on the wall clock
//! too, and a seed replays.

use std::path::PathBuf;

use super::{tests, CONVERGENCE, SUITE};
use crate::cluster::TimeMode;
use crate::implementation::Implementation;
use crate::suite::{property, self_check, Context, TestCase};

pub(super) const CHECKS: &[TestCase] = &[
    TestCase {
        name: "maelstrom_node_passes_broadcast",
        after: None,
        run: maelstrom_node_passes_broadcast,
    },
    TestCase {
        name: "never_forward_fails_broadcast",
        after: None,
        run: never_forward_fails_broadcast,
    },
    TestCase {
        name: "refuse_all_fails_each_group",
        after: None,
        run: refuse_all_fails_each_group,
    },
    TestCase {
        name: "never_answer_fails_every_test",
        after: None,
        run: |cx| fails_every_test_for_progress(cx, "never-answer"),
    },
    TestCase {
        name: "ours_passes_broadcast_in_real_time",
        after: None,
        run: ours_passes_broadcast_in_real_time,
    },
    TestCase {
        name: "same_seed_same_journal",
        after: None,
        run: same_seed_same_journal,
    },
];

fn broadcast_group() -> impl Iterator<Item = &'static TestCase> {
    SUITE
        .tests
        .iter()
        .filter(|t| t.name.starts_with("broadcast::"))
}

/// The tests of the node (face 1); the `chat` group tests the chat server instead.
fn node_tests() -> impl Iterator<Item = &'static TestCase> {
    SUITE.tests.iter().filter(|t| !t.name.starts_with("chat::"))
}

/// `harness/tests/gossip/broadcast_node.py MODE`; `None` when python3 is opted out.
fn maelstrom_node(cx: &mut Context, mode: &str) -> Option<Implementation> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/gossip/broadcast_node.py");
    let python3 = self_check::python3(cx)?;
    let command = format!(
        "{python3} {} {mode}",
        shell_words::quote(&script.to_string_lossy())
    );
    Some(Implementation::from_command(&command).expect("a command"))
}

/// A naive but correct Maelstrom broadcast node passes every `broadcast` test on the
/// wall clock (it does not speak lockstep).
fn maelstrom_node_passes_broadcast(cx: &mut Context) {
    let Some(node) = maelstrom_node(cx, "correct") else {
        return;
    };
    for test in broadcast_group() {
        let outcome = self_check::run_against(cx, &SUITE, test, &node, TimeMode::Real);
        cx.check(outcome.passed(), property::HARNESS, || {
            format!(
                "a correct Maelstrom broadcast node failed {}:\n{}",
                test.name,
                outcome.report()
            )
        });
    }
}

/// A node that acknowledges broadcasts and keeps them to itself fails the
/// multi-node `broadcast` tests for convergence.
fn never_forward_fails_broadcast(cx: &mut Context) {
    let Some(node) = maelstrom_node(cx, "never-forward") else {
        return;
    };
    for test in broadcast_group().filter(|t| t.name != "broadcast::single_node") {
        let outcome = self_check::run_against(cx, &SUITE, test, &node, TimeMode::Real);
        self_check::require_failed_for(cx, &outcome, CONVERGENCE, "a node that never forwards");
    }
}

/// Every test fails the shared do-nothing fixture in `mode` for lack of progress.
fn fails_every_test_for_progress(cx: &mut Context, mode: &str) {
    let Some(node) = self_check::unhelpful_node(cx, mode) else {
        return;
    };
    let what = format!("a node that does nothing ({mode})");
    self_check::fails_for_progress(cx, &SUITE, node_tests(), &node, TimeMode::Sim, &what);
}

/// A node that answers every request with error 11 fails the first test of each
/// group for lack of progress. Every test makes its requests through the same client
/// (`run::GossipTest`), which `never_answer_fails_every_test` runs in full; one test
/// per group keeps the wall time of starting a Python interpreter per node modest.
fn refuse_all_fails_each_group(cx: &mut Context) {
    let Some(node) = self_check::unhelpful_node(cx, "refuse-all") else {
        return;
    };
    let mut groups = std::collections::BTreeSet::new();
    let firsts = node_tests().filter(|t| {
        let group = t.name.split("::").next().unwrap_or(t.name);
        groups.insert(group)
    });
    let what = "a node that refuses everything (refuse-all)";
    self_check::fails_for_progress(cx, &SUITE, firsts, &node, TimeMode::Sim, what);
}

/// Our node passes the `broadcast` group on the wall clock, as a Maelstrom node must.
fn ours_passes_broadcast_in_real_time(cx: &mut Context) {
    let ours = Implementation::ours(super::BIN);
    for test in broadcast_group() {
        let outcome = self_check::run_against(cx, &SUITE, test, &ours, TimeMode::Real);
        assert!(outcome.passed(), "{}", outcome.report());
        assert!(
            outcome.wall
                >= std::time::Duration::from_nanos(outcome.stats.map_or(0, |s| s.clock_ns)),
            "{} did not run on the wall clock",
            test.name
        );
    }
}

/// Simulated time is a function of the seed: one seed, run twice, gives the same
/// journal, faults, loss and duplication included.
fn same_seed_same_journal(cx: &mut Context) {
    cx.mode = TimeMode::Sim;
    let mut journals = Vec::new();
    for _ in 0..2 {
        let journal = tests::journal_of(cx, super::tree(7, 2), tests::lossy_duplicating);
        assert!(cx.passing(), "the run failed");
        journals.push(journal.expect("the nodes started"));
    }
    assert!(
        journals[0].lines().count() > 100,
        "the journal recorded the run"
    );
    self_check::require_same_record(cx.seed, "journal", &journals[0], &journals[1]);
}
