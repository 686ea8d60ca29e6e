//! The bounded buffer between the master and the workers.

use super::checks;
use super::support::Subject;
use crate::suite::Context;

pub(super) fn acceptor_blocks_when_full(cx: &mut Context) {
    checks::bounded_buffer(&Subject::of(cx), cx.dir());
}
