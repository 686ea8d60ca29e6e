//! Worker crashes by SIGKILL, and outputs that must never be seen half-written.

use std::time::{Duration, Instant};

use super::scenarios::{
    outputs_appear_whole, reassigns_a_dead_workers_task, survives_sigkill, ReassignAllowance,
};
use super::support::{exit_guard, hang_guard, LabJob};
use super::EXIT;
use crate::suite::{fail, property, Context};

/// Workers killed with SIGKILL in the middle of map and reduce tasks: their tasks are
/// re-assigned, the output is exact, and no partial file ever has a final name.
pub fn workers_killed_mid_task(cx: &mut Context) {
    let rng = cx.rng(2);
    let mut job = LabJob::new(cx, "mr-sigkill", 1_000);
    survives_sigkill(&mut job, rng, hang_guard()).unwrap_or_else(|f| f.raise());
}

/// A worker SIGKILLed while it holds a map task: that task is handed to another
/// worker, and the job finishes with the exact output. Our coordinator honours
/// `MR_TASK_TIMEOUT_MS`, so it is allowed three times that; any other may keep
/// 6.5840's 10 s.
pub fn a_dead_workers_task_is_reassigned(cx: &mut Context) {
    let allowance = if cx.program("MRCOORDINATOR_IMPL").is_ours() {
        ReassignAllowance::GIVEN
    } else {
        ReassignAllowance::ANY
    };
    let mut job = LabJob::new(cx, "mr-reassign", 1_000);
    reassigns_a_dead_workers_task(&mut job, allowance).unwrap_or_else(|f| f.raise());
}

/// While reducers write their output line by line, no `mr-out-*` or `mr-X-Y` is
/// ever visible with partial content.
pub fn outputs_never_partial(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-atomic", 1_000);
    outputs_appear_whole(&mut job, hang_guard()).unwrap_or_else(|f| f.raise());
}

/// Workers exit by themselves once the coordinator is gone (here: SIGKILLed
/// mid-job, once the first intermediate file shows the workers are at work),
/// instead of waiting for it forever.
pub fn workers_exit_when_coordinator_dies(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-orphans", 1_000);
    let mut coordinator = job.coordinator();
    let mut workers: Vec<_> = (0..2).map(|_| job.worker("slow")).collect();
    let deadline = Instant::now() + hang_guard();
    while job.job_files().is_empty() {
        if let Some(status) = coordinator.try_wait().unwrap() {
            fail(
                property::PROGRESS,
                format!(
                    "no progress: the coordinator exited ({status}) before any intermediate file appeared in {}",
                    job.dir.display()
                ),
            );
        }
        if Instant::now() >= deadline {
            fail(
                property::PROGRESS,
                format!(
                    "no progress: no intermediate file appeared in {} within {} s",
                    job.dir.display(),
                    hang_guard().as_secs()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        coordinator.try_wait().unwrap().is_none(),
        "the job ended before its coordinator could be killed"
    );
    coordinator.kill().unwrap();
    for w in &mut workers {
        let status = w.wait_timeout(exit_guard()).unwrap();
        if status.is_none() {
            fail(
                EXIT,
                format!(
                    "{} still runs {} s after its coordinator died",
                    w.name(),
                    exit_guard().as_secs()
                ),
            );
        }
    }
}
