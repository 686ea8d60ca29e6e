//! Worker crashes by SIGKILL, and outputs that must never be seen half-written.

use std::time::{Duration, Instant};

use harness::Seed;

use crate::scenarios::{
    outputs_appear_whole, reassigns_a_dead_workers_task, survives_sigkill, ReassignAllowance,
};
use crate::support::{exit_guard, hang_guard, LabJob};

/// Workers killed with SIGKILL in the middle of map and reduce tasks: their tasks are
/// re-assigned, the output is exact, and no partial file ever has a final name.
#[test]
fn workers_killed_mid_task() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-sigkill", &seed, 1_000);
    survives_sigkill(&mut job, &seed, hang_guard()).unwrap_or_else(|f| panic!("{f}"));
}

/// A worker SIGKILLed while it holds a map task: that task is handed to another
/// worker, and the job finishes with the exact output.
#[test]
fn a_dead_workers_task_is_reassigned() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-reassign", &seed, 1_000);
    reassigns_a_dead_workers_task(&mut job, ReassignAllowance::ANY)
        .unwrap_or_else(|f| panic!("{f}"));
}

/// While reducers write their output line by line, no `mr-out-*` or `mr-X-Y` is
/// ever visible with partial content.
#[test]
fn outputs_never_partial() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-atomic", &seed, 1_000);
    outputs_appear_whole(&mut job, hang_guard()).unwrap_or_else(|f| panic!("{f}"));
}

/// Workers exit by themselves once the coordinator is gone (here: SIGKILLed
/// mid-job, once the first intermediate file shows the workers are at work),
/// instead of waiting for it forever.
#[test]
fn workers_exit_when_coordinator_dies() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-orphans", &seed, 1_000);
    let mut coordinator = job.coordinator();
    let mut workers: Vec<_> = (0..2).map(|_| job.worker("slow")).collect();
    let deadline = Instant::now() + hang_guard();
    while job.job_files().is_empty() {
        if let Some(status) = coordinator.try_wait().unwrap() {
            panic!(
                "no progress: the coordinator exited ({status}) before any intermediate file appeared in {}",
                job.dir.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no progress: no intermediate file appeared in {} within {} s",
            job.dir.display(),
            hang_guard().as_secs()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        coordinator.try_wait().unwrap().is_none(),
        "the job ended before its coordinator could be killed"
    );
    coordinator.kill().unwrap();
    for w in &mut workers {
        let status = w.wait_timeout(exit_guard()).unwrap();
        assert!(
            status.is_some(),
            "{} still runs {} s after its coordinator died",
            w.name(),
            exit_guard().as_secs()
        );
    }
}
