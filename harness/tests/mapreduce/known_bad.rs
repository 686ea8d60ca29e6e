//! Known-bad variants of our implementation (`MAPREDUCE_BUG`, see
//! `impls/mapreduce/src/bug.rs`): each must fail the scenario built to catch it, with
//! the [`Failure`] that names its bug. They exist only in our binaries: when another
//! implementation is given they are skipped, with a line saying so.

use harness::Seed;

use crate::scenarios::{
    outputs_appear_whole, reassigns_a_dead_workers_task, reduce_after_last_map, Failure,
    ReassignAllowance,
};
use crate::support::{hang_guard, skip_known_bad_for_other_implementations, LabJob};

fn buggy(test: &str, label: &str, seed: &Seed, bug: &str) -> Option<LabJob> {
    if skip_known_bad_for_other_implementations(test) {
        return None;
    }
    let mut job = LabJob::new(label, seed, 1_000);
    assert!(job.is_ours(), "the known-bad tests run our binaries only");
    job.env("MAPREDUCE_BUG", bug);
    Some(job)
}

/// A coordinator that hands out reduce tasks before every map task is done.
#[test]
fn early_reduce_is_rejected() {
    let seed = Seed::for_this_test();
    let Some(mut job) = buggy(
        "known_bad::early_reduce_is_rejected",
        "mr-bad-early",
        &seed,
        "early-reduce",
    ) else {
        return;
    };
    match reduce_after_last_map(&mut job, hang_guard()) {
        Err(f @ Failure::EarlyReduce { .. }) => eprintln!("rejected as expected: {f}"),
        other => panic!("expected the early-reduce failure, got {other:?}"),
    }
}

/// A coordinator that never re-assigns a dead worker's task: the task the SIGKILLed
/// worker held, and only that one, is still outstanding long after the re-assign
/// timeout, while the other worker has mapped everything else.
#[test]
fn never_reassign_is_rejected() {
    let seed = Seed::for_this_test();
    let Some(mut job) = buggy(
        "known_bad::never_reassign_is_rejected",
        "mr-bad-noreassign",
        &seed,
        "never-reassign",
    ) else {
        return;
    };
    let result = reassigns_a_dead_workers_task(&mut job, ReassignAllowance::GIVEN);
    let Err(Failure::NeverReassigned { inputs, .. }) = &result else {
        panic!("expected the never-reassigned failure, got {result:?}");
    };
    assert_eq!(inputs.len(), 1, "our worker holds one task at a time");
    assert!(job.inputs.contains(&inputs[0]), "{inputs:?}");
    eprintln!("rejected as expected: {}", result.unwrap_err());
}

/// What the never-reassign check must not mistake for that bug: our correct
/// coordinator with a re-assign timeout of 10 s (6.5840's default, which an
/// implementation ignoring `MR_TASK_TIMEOUT_MS` keeps) re-assigns the dead worker's
/// task late, and the scenario accepts it. A check that only asked whether the job
/// finished within a few seconds would call this never-reassign.
#[test]
fn a_slow_reassignment_is_not_never_reassign() {
    let seed = Seed::for_this_test();
    if skip_known_bad_for_other_implementations(
        "known_bad::a_slow_reassignment_is_not_never_reassign",
    ) {
        return;
    }
    let mut job = LabJob::new("mr-slow-reassign", &seed, 1_000);
    job.env("MR_TASK_TIMEOUT_MS", "10000");
    let started = std::time::Instant::now();
    reassigns_a_dead_workers_task(&mut job, ReassignAllowance::ANY)
        .unwrap_or_else(|f| panic!("a correct but slow coordinator was rejected: {f}"));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(10),
        "the job took {:?}: the 10 s re-assign timeout was not in effect",
        started.elapsed()
    );
}

/// Workers that write outputs in place instead of to a temp file and rename.
#[test]
fn in_place_outputs_are_rejected() {
    let seed = Seed::for_this_test();
    let Some(mut job) = buggy(
        "known_bad::in_place_outputs_are_rejected",
        "mr-bad-inplace",
        &seed,
        "in-place",
    ) else {
        return;
    };
    match outputs_appear_whole(&mut job, hang_guard()) {
        Err(Failure::PartialVisible(why)) => {
            assert!(why.contains("a partial file was visible"), "{why}");
            eprintln!("rejected as expected: {why}");
        }
        other => panic!("expected the partial-file failure, got {other:?}"),
    }
}
