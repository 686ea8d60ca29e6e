//! Phase order: reduce only after map.

use super::scenarios::reduce_after_last_map;
use super::support::{hang_guard, LabJob};
use crate::suite::Context;

/// No reduce task starts before the last map task ends (observed by the `barrier`
/// application from inside the reducers).
pub fn no_reduce_before_last_map(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-barrier", 1_000);
    reduce_after_last_map(&mut job, hang_guard()).unwrap_or_else(|f| f.raise());
}
