//! What the suites' checks of themselves share: running a conformance test against a
//! stand-in implementation (a node that does nothing, our binary with a switch) and
//! requiring that it fails, for the property that shows the stand-in was caught.

use std::path::PathBuf;

use super::context::Target;
use super::runner::{self, RunOptions};
use super::{fail, property, Context, Outcome, Suite, TestCase};
use crate::cluster::TimeMode;
use crate::implementation::Implementation;
use crate::tools;

/// `python3`; missing, a failure saying how to get it, unless `DSCONF_SKIP` names it:
/// then `None`, the skip announced and noted.
pub fn python3(cx: &mut Context) -> Option<&'static str> {
    let opt_outs = std::env::var(tools::SKIP_VAR).unwrap_or_default();
    let what = format!("{}::self_check::{}", cx.suite.name, cx.test);
    match tools::require(
        "python3",
        tools::runs("python3", "--version"),
        "apt-get install python3",
        &opt_outs,
        &what,
    ) {
        Ok(true) => Some("python3"),
        Ok(false) => {
            cx.note(format!(
                "SKIPPED: {what} needs python3 ({}=python3)",
                tools::SKIP_VAR
            ));
            None
        }
        Err(e) => fail(property::HARNESS, e),
    }
}

/// A Python implementation kept in the repository as an example (`path` from the
/// workspace root), run with `python3`; `None` when the user opted out of python3.
pub fn python_example(cx: &mut Context, path: &str) -> Option<Implementation> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    let command = format!(
        "{} {}",
        python3(cx)?,
        shell_words::quote(&script.to_string_lossy())
    );
    Some(Implementation::from_command(&command).expect("a command"))
}

/// The Python implementation kept as an example at `path` passes each test of `names`
/// when plugged in as `suite`'s main program, in `mode`; nothing is run when the user
/// opted out of python3.
pub fn python_example_passes(
    cx: &mut Context,
    suite: &'static Suite,
    path: &str,
    names: &[&str],
    mode: TimeMode,
) {
    let Some(implementation) = python_example(cx, path) else {
        return;
    };
    for name in names {
        let test = suite
            .test(name)
            .unwrap_or_else(|| panic!("{name} is not a test of {}", suite.name));
        let outcome = run_against(cx, suite, test, &implementation, mode);
        assert!(outcome.passed(), "{}", outcome.report());
    }
}

/// The command of the shared fixture node `harness/tests/fixtures/unhelpful_node.py`
/// in `mode` (`refuse-all`, `never-answer`, `late SECONDS CMD...`); `None` when the
/// user opted out of python3.
pub fn unhelpful_node(cx: &mut Context, mode: &str) -> Option<Implementation> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unhelpful_node.py");
    let command = format!(
        "{} {} {mode}",
        python3(cx)?,
        shell_words::quote(&script.to_string_lossy())
    );
    Some(Implementation::from_command(&command).expect("a command"))
}

/// Runs `test` of `suite` with the suite's main program replaced by
/// `implementation`, with this check's seed, quietly and leaving nothing behind.
pub fn run_against(
    cx: &Context,
    suite: &'static Suite,
    test: &'static TestCase,
    implementation: &Implementation,
    mode: TimeMode,
) -> Outcome {
    run_against_with_seed(cx, suite, test, implementation, mode, cx.seed)
}

/// [`run_against`] with `seed` instead of this check's.
pub fn run_against_with_seed(
    cx: &Context,
    suite: &'static Suite,
    test: &'static TestCase,
    implementation: &Implementation,
    mode: TimeMode,
    seed: u64,
) -> Outcome {
    let target = Target {
        overrides: vec![(suite.programs[0].var.to_string(), implementation.clone())],
        bug: None,
    };
    let options = RunOptions {
        seed,
        ..RunOptions::within(cx, mode, target)
    };
    let mut outcome = runner::run(suite, test, &options);
    // The failure is the point: its scratch space is of no use.
    if let Some(dir) = outcome.scratch.take() {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}

/// Requires that `outcome` failed for `expected`: records a failure of this check if
/// the test passed `what` or failed it for another reason (or, for progress, without
/// saying "no progress"), else notes why it failed.
pub fn require_failed_for(cx: &mut Context, outcome: &Outcome, expected: &str, what: &str) {
    if outcome.passed() {
        cx.fail(
            property::HARNESS,
            format!("{} passed {what}:\n{}", outcome.name(), outcome.report()),
        );
    } else if !outcome.failed_for(expected) {
        cx.fail(
            property::HARNESS,
            format!(
                "{} failed {what}, but not for {expected}:\n{}",
                outcome.name(),
                outcome.report()
            ),
        );
    } else if expected == property::PROGRESS
        && !outcome
            .failures
            .iter()
            .any(|f| f.property == expected && f.message.contains("no progress"))
    {
        cx.fail(
            property::HARNESS,
            format!(
                "{} failed {what} for lack of progress without saying \"no progress\":\n{}",
                outcome.name(),
                outcome.report()
            ),
        );
    } else {
        let why = outcome
            .failures
            .iter()
            .find(|f| f.property == expected)
            .map(|f| f.message.clone())
            .unwrap_or_default();
        cx.note(format!("{}: {why}", outcome.test));
    }
}

/// Every test in `tests` must fail `implementation` (`what` it is, for messages) for
/// lack of progress.
pub fn fails_for_progress(
    cx: &mut Context,
    suite: &'static Suite,
    tests: impl IntoIterator<Item = &'static TestCase>,
    implementation: &Implementation,
    mode: TimeMode,
    what: &str,
) {
    let tests: Vec<&'static TestCase> = tests.into_iter().collect();
    // In simulated time several at once: each run mostly waits for its stand-in
    // nodes (interpreters that start, nodes that answer nothing) and its clock. On
    // the wall clock one at a time, so the runs' timeouts are their own.
    let parallel = if mode == TimeMode::Sim {
        PARALLEL_RUNS
    } else {
        1
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    let shared: &Context = cx;
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(test) = tests.get(i) else {
                    break;
                };
                let outcome = run_against(shared, suite, test, implementation, mode);
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
        require_failed_for(cx, outcome, property::PROGRESS, what);
    }
}

/// Every conformance test of `suite` must fail the [`unhelpful_node`] fixture in
/// `mode` (`refuse-all`, `never-answer`) for lack of progress, in simulated time.
pub fn unhelpful_node_fails_every_test(cx: &mut Context, suite: &'static Suite, mode: &str) {
    let Some(node) = unhelpful_node(cx, mode) else {
        return;
    };
    let what = format!("nodes that do nothing ({mode})");
    fails_for_progress(cx, suite, suite.tests, &node, TimeMode::Sim, &what);
}

/// Conformance tests [`fails_for_progress`] runs at once in simulated time.
const PARALLEL_RUNS: usize = 4;

/// Fails (naming the first line that differs) unless two runs of one seed recorded
/// the same `what` (journal, history): simulated time is a function of the seed.
pub fn require_same_record(seed: u64, what: &str, a: &str, b: &str) {
    if a == b {
        return;
    }
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or(a.lines().count().min(b.lines().count()));
    panic!(
        "{what}s of two runs with seed {seed} differ from line {}:\n{}\n{}",
        line + 1,
        a.lines().nth(line).unwrap_or("<end>"),
        b.lines().nth(line).unwrap_or("<end>")
    );
}
