//! Worker crashes by SIGKILL, and outputs that must never be seen half-written.

use std::time::Duration;

use harness::Seed;

use crate::scenarios::{outputs_appear_whole, survives_sigkill};
use crate::support::LabJob;

/// Workers killed with SIGKILL in the middle of map and reduce tasks: their tasks are
/// re-assigned, the output is exact, and no partial file ever has a final name.
#[test]
fn workers_killed_mid_task() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-sigkill", &seed, 1_000);
    survives_sigkill(&mut job, &seed, Duration::from_secs(50)).unwrap();
}

/// While reducers write their output line by line, no `mr-out-*` or `mr-X-Y` is
/// ever visible with partial content.
#[test]
fn outputs_never_partial() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-atomic", &seed, 1_000);
    outputs_appear_whole(&mut job, Duration::from_secs(50)).unwrap();
}

/// Workers exit by themselves once the coordinator is gone (here: SIGKILLed
/// mid-job), instead of waiting for it forever.
#[test]
fn workers_exit_when_coordinator_dies() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-orphans", &seed, 1_000);
    let mut coordinator = job.coordinator();
    let mut workers: Vec<_> = (0..2).map(|_| job.worker("slow")).collect();
    std::thread::sleep(Duration::from_millis(300));
    coordinator.kill().unwrap();
    for w in &mut workers {
        let status = w.wait_timeout(Duration::from_secs(15)).unwrap();
        assert!(
            status.is_some(),
            "{} still runs 15 s after its coordinator died",
            w.name()
        );
    }
}
