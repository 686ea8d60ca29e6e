//! The progress rule: an implementation that does nothing must fail every test, and
//! say why ("no progress"), instead of passing a test that never looked.
//!
//! Each test here runs this very test binary once per test, with
//! `MRCOORDINATOR_IMPL`, `MRWORKER_IMPL` and `MAPREDUCE_IMPL` all set to one fixture:
//! `fixtures/do-nothing.sh` (exits at once with success, writes nothing) or
//! `fixtures/idle.sh` (runs and writes nothing, forever).

use std::process::Command;
use std::sync::Mutex;

use harness::TestDir;

use crate::support::fixture;

/// Tests that do not run an implementation at all.
const NO_IMPLEMENTATION: &[&str] = &["oracle::", "progress::"];

/// Tests whose property a do-nothing program violates before progress comes into it:
/// they must fail with one of these reasons instead.
const OWN_REASON: &[(&str, &[&str])] = &[
    (
        "lab::bad_arguments",
        &["the coordinator did not fail on a missing input"],
    ),
    ("wordcount::bad_arguments", &["missing input directory: "]),
    (
        "streaming::an_application_that_always_fails_fails_the_job",
        &[
            "the coordinator reported success for a failed job",
            "the job still runs after",
        ],
    ),
];

fn tests_of_this_binary() -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(&exe)
        .args(["--list", "--format", "terse"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{} --list failed", exe.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|t| !NO_IMPLEMENTATION.iter().any(|p| t.starts_with(p)))
        .map(str::to_string)
        .collect()
}

/// Runs every test that runs an implementation with `script` as all three commands,
/// `parallel` at a time, and lists those that did not reject it as they should.
fn judge_every_test(script: &str, env: &[(&str, &str)], parallel: usize) -> (usize, Vec<String>) {
    let script = fixture(script);
    let script = script.to_str().unwrap();
    let tests = tests_of_this_binary();
    assert!(
        tests.len() > 20,
        "only {} tests listed: {tests:?}",
        tests.len()
    );
    // The runs fail, so they keep their directories: under this test's own, which
    // goes when it passes.
    let tmp = TestDir::new("mr-progress");
    let queue = Mutex::new(tests.iter());
    let wrong = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let Some(test) = queue.lock().unwrap().next() else {
                    return;
                };
                let out = Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", test, "--nocapture", "--test-threads", "1"])
                    .env("MRCOORDINATOR_IMPL", script)
                    .env("MRWORKER_IMPL", script)
                    .env("MAPREDUCE_IMPL", script)
                    .envs(env.iter().copied())
                    .env_remove("SEED")
                    .env("TMPDIR", tmp.path())
                    .output()
                    .unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let verdict = if test.starts_with("known_bad::") {
                    // They test our bug switches only: skipped, and saying so.
                    (!out.status.success() || !text.contains(&format!("*** SKIPPED {test}:")))
                        .then_some("expected a pass with a SKIPPED line")
                } else if out.status.success() {
                    Some("passed")
                } else if let Some((_, reasons)) = OWN_REASON.iter().find(|(t, _)| t == test) {
                    (!reasons.iter().any(|r| text.contains(r)))
                        .then_some("failed, but not for its own reason")
                } else {
                    (!text.contains("no progress"))
                        .then_some("failed without saying \"no progress\"")
                };
                if let Some(what) = verdict {
                    wrong
                        .lock()
                        .unwrap()
                        .push(format!("{test}: {what}; its output:\n{text}"));
                }
            });
        }
    });
    (tests.len(), wrong.into_inner().unwrap())
}

fn assert_all_rejected(script: &str, (judged, wrong): (usize, Vec<String>)) {
    assert!(
        wrong.is_empty(),
        "{} of {judged} tests did not reject {script} as they should:\n\n{}",
        wrong.len(),
        wrong.join("\n\n")
    );
}

/// A program that exits at once, successfully, having done nothing.
#[test]
fn a_do_nothing_implementation_fails_every_test_for_lack_of_progress() {
    assert_all_rejected("do-nothing.sh", judge_every_test("do-nothing.sh", &[], 2));
}

/// A program that never exits and never writes anything. A hang guard of 2 s (the
/// tests' `MR_HANG_GUARD_S`) keeps this short; the runs mostly wait, so six go at
/// once.
#[test]
fn an_idle_implementation_fails_every_test_for_lack_of_progress() {
    assert_all_rejected(
        "idle.sh",
        judge_every_test("idle.sh", &[("MR_HANG_GUARD_S", "2")], 6),
    );
}
