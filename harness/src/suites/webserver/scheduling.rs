//! The order queued requests are served in: `-s FIFO` and `-s SFF`.

use super::checks;
use super::support::Subject;
use crate::suite::Context;

pub(super) fn fifo_serves_in_arrival_order(cx: &mut Context) {
    let order = checks::service_order(&Subject::of(cx), cx.dir(), "FIFO");
    assert_eq!(
        order,
        ["big.bin", "small.bin", "mid.bin", "smallest.bin"],
        "FIFO order"
    );
}

pub(super) fn sff_serves_smallest_first(cx: &mut Context) {
    checks::sff_order(&Subject::of(cx), cx.dir());
}
