//! What the suites' checks of themselves share: running a conformance test against a
//! stand-in implementation (a node that does nothing, our binary with a switch) and
//! requiring that it fails, for the property that shows the stand-in was caught.

use std::path::PathBuf;

use super::context::Target;
use super::runner::{self, RunOptions};
use super::{fail, property, Context, Outcome, Suite, TestCase};
use crate::cluster::TimeMode;
use crate::implementation::Implementation;

/// `python3`, or a failure saying how to get it.
pub fn python3() -> &'static str {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        fail(
            property::HARNESS,
            "python3 is needed for this check and is missing (apt-get install python3)",
        );
    }
    "python3"
}

/// The command of the shared fixture node `harness/tests/fixtures/unhelpful_node.py`
/// in `mode` (`refuse-all`, `never-answer`, `late SECONDS CMD...`).
pub fn unhelpful_node(mode: &str) -> Implementation {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unhelpful_node.py");
    let command = format!(
        "{} {} {mode}",
        python3(),
        shell_words::quote(&script.to_string_lossy())
    );
    Implementation::from_command(&command).expect("a command")
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
    let target = Target {
        overrides: vec![(suite.programs[0].var.to_string(), implementation.clone())],
        bug: None,
    };
    let options = RunOptions::within(cx, mode, target);
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
    for test in tests {
        let outcome = run_against(cx, suite, test, implementation, mode);
        require_failed_for(cx, &outcome, property::PROGRESS, what);
    }
}
