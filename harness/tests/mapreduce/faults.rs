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
