//! Known-bad variants of our implementation (`MAPREDUCE_BUG`, see
//! `impls/mapreduce/src/bug.rs`): each must fail the scenario built to catch it, with
//! that scenario's message. They apply only to our implementation.

use std::time::Duration;

use harness::Seed;

use crate::scenarios::{outputs_appear_whole, reduce_after_last_map, survives_sigkill};
use crate::support::LabJob;

fn buggy(label: &str, seed: &Seed, bug: &str) -> Option<LabJob> {
    let mut job = LabJob::new(label, seed, 1_000);
    if !job.is_ours() {
        eprintln!("known-bad variants exist only in our implementation; nothing to test");
        return None;
    }
    job.env("MAPREDUCE_BUG", bug);
    Some(job)
}

fn assert_fails_with(result: Result<(), String>, expected: &str) {
    match result {
        Ok(()) => panic!("the known-bad variant passed"),
        Err(e) => assert!(
            e.contains(expected),
            "failed, but not as expected ({expected:?}): {e}"
        ),
    }
}

/// A coordinator that hands out reduce tasks before every map task is done.
#[test]
fn early_reduce_is_rejected() {
    let seed = Seed::for_this_test();
    let Some(mut job) = buggy("mr-bad-early", &seed, "early-reduce") else {
        return;
    };
    assert_fails_with(
        reduce_after_last_map(&mut job, Duration::from_secs(30)),
        "a reduce ran before the last map ended",
    );
}

/// A coordinator that never re-assigns a dead worker's task.
#[test]
fn never_reassign_is_rejected() {
    let seed = Seed::for_this_test();
    let Some(mut job) = buggy("mr-bad-noreassign", &seed, "never-reassign") else {
        return;
    };
    assert_fails_with(
        survives_sigkill(&mut job, &seed, Duration::from_secs(8)),
        "did not finish",
    );
}

/// Workers that write outputs in place instead of to a temp file and rename.
#[test]
fn in_place_outputs_are_rejected() {
    let seed = Seed::for_this_test();
    let Some(mut job) = buggy("mr-bad-inplace", &seed, "in-place") else {
        return;
    };
    assert_fails_with(
        outputs_appear_whole(&mut job, Duration::from_secs(30)),
        "a partial file was visible",
    );
}
