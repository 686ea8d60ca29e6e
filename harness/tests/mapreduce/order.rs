//! Phase order: reduce only after map.

use harness::Seed;

use crate::scenarios::reduce_after_last_map;
use crate::support::{hang_guard, LabJob};

/// No reduce task starts before the last map task ends (observed by the `barrier`
/// application from inside the reducers).
#[test]
fn no_reduce_before_last_map() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-barrier", &seed, 1_000);
    reduce_after_last_map(&mut job, hang_guard()).unwrap_or_else(|f| panic!("{f}"));
}
