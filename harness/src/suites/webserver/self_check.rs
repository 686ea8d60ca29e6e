//! Checks of the web server suite itself: it fails a server that does nothing, for
//! lack of progress, in every test; and its bounded-buffer test rejects our
//! thread-per-request variant too (the variant's own known-bad test is the fixed
//! pool's).

use std::net::TcpStream;
use std::time::Duration;

use super::support::wait_for;
use super::{BOUNDED_BUFFER, SUITE};
use crate::cluster::TimeMode;
use crate::implementation::Implementation;
use crate::suite::context::Target;
use crate::suite::runner::{self, KnownBadVerdict, RunOptions};
use crate::suite::{property, self_check, Context, KnownBad, TestCase};

pub(super) const CHECKS: &[TestCase] = &[
    TestCase {
        name: "exiting_server_fails_every_test",
        after: None,
        run: exiting_server_fails_every_test,
    },
    TestCase {
        name: "thread_per_request_never_blocks_the_acceptor",
        after: None,
        run: thread_per_request_never_blocks_the_acceptor,
    },
];

/// A server that exits at once, whatever it is asked (`true`), must fail every
/// conformance test for lack of progress. The browser test passes it only when the
/// user skipped the browser (`DSCONF_SKIP=chromium`), since it then starts nothing.
fn exiting_server_fails_every_test(cx: &mut Context) {
    let implementation = Implementation::from_command("true").expect("a command");
    for test in SUITE.tests {
        if test.name == "cli::defaults" {
            // That test refuses to run while another process holds the default
            // port, as the suite's own run of it does for a moment.
            wait_for(Duration::from_secs(60), || {
                TcpStream::connect("127.0.0.1:10000").is_err()
            });
        }
        let outcome = self_check::run_against(cx, &SUITE, test, &implementation, TimeMode::Real);
        if outcome.passed()
            && test.name.starts_with("browser::")
            && crate::tools::opted_out("chromium")
        {
            cx.note(format!("{}: skipped (DSCONF_SKIP=chromium)", test.name));
        } else {
            let what = "a server that exits at once";
            self_check::require_failed_for(cx, &outcome, property::PROGRESS, what);
        }
    }
}

/// A thread per request has no buffer to fill, so its master never stops
/// accepting: the bounded-buffer test must say so.
static THREAD_PER_REQUEST_BUFFER: KnownBad = KnownBad {
    variant: "thread-per-request",
    what: "starts a thread for every request, so nothing bounds the waiting requests",
    test: "bounded_buffer::acceptor_blocks_when_full",
    property: BOUNDED_BUFFER,
};

fn thread_per_request_never_blocks_the_acceptor(cx: &mut Context) {
    let known_bad = &THREAD_PER_REQUEST_BUFFER;
    let options = RunOptions::within(cx, TimeMode::Real, Target::default());
    // A rejected run leaves no scratch directory behind; another keeps it, with the
    // complaint below saying where.
    let (verdict, outcome) = runner::run_known_bad(&SUITE, known_bad, &options);
    if verdict == KnownBadVerdict::Rejected {
        cx.note(outcome.report());
    } else {
        cx.fail(
            BOUNDED_BUFFER,
            verdict.complaint(&SUITE, known_bad, &outcome),
        );
    }
}
