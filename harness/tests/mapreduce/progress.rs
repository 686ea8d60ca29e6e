//! The progress rule: an implementation that does nothing must fail every test, and
//! say why ("no progress"), instead of passing a test that never looked.
//!
//! The test runs this very test binary once per test, with `MRCOORDINATOR_IMPL`,
//! `MRWORKER_IMPL` and `MAPREDUCE_IMPL` all set to `fixtures/do-nothing.sh` (exits at
//! once with success, writes nothing).

use std::process::Command;

use harness::TestDir;

use crate::support::fixture;

/// Tests that do not run an implementation at all.
const NO_IMPLEMENTATION: &[&str] = &["oracle::", "progress::"];

/// Tests whose property a do-nothing program violates before progress comes into it:
/// they must fail with this reason instead.
const OWN_REASON: &[(&str, &str)] = &[
    (
        "lab::bad_arguments",
        "the coordinator did not fail on a missing input",
    ),
    (
        "wordcount::bad_arguments",
        "missing input directory: exit status",
    ),
    (
        "streaming::an_application_that_always_fails_fails_the_job",
        "the coordinator reported success for a failed job",
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
        .map(str::to_string)
        .collect()
}

#[test]
fn a_do_nothing_implementation_fails_every_test_for_lack_of_progress() {
    let nothing = fixture("do-nothing.sh");
    let nothing = nothing.to_str().unwrap();
    let tests = tests_of_this_binary();
    assert!(
        tests.len() > 20,
        "only {} tests listed: {tests:?}",
        tests.len()
    );
    // The runs fail, so they keep their directories: under this test's own, which
    // goes when it passes.
    let tmp = TestDir::new("mr-progress");
    let mut wrong = Vec::new();
    let mut judged = 0;
    for test in &tests {
        if NO_IMPLEMENTATION.iter().any(|p| test.starts_with(p)) {
            continue;
        }
        judged += 1;
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env("MRCOORDINATOR_IMPL", nothing)
            .env("MRWORKER_IMPL", nothing)
            .env("MAPREDUCE_IMPL", nothing)
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
            if !out.status.success() || !text.contains(&format!("*** SKIPPED {test}:")) {
                Some("expected a pass with a SKIPPED line")
            } else {
                None
            }
        } else if out.status.success() {
            Some("passed")
        } else if let Some((_, reason)) = OWN_REASON.iter().find(|(t, _)| t == test) {
            (!text.contains(reason)).then_some("failed, but not for its own reason")
        } else {
            (!text.contains("no progress")).then_some("failed without saying \"no progress\"")
        };
        if let Some(what) = verdict {
            wrong.push(format!("{test}: {what}; its output:\n{text}"));
        }
    }
    assert!(judged > 20, "only {judged} tests judged");
    assert!(
        wrong.is_empty(),
        "{} of {judged} tests did not reject a do-nothing implementation as they should:\n\n{}",
        wrong.len(),
        wrong.join("\n\n")
    );
}
