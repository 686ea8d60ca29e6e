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
use crate::suite::{property, Context, KnownBad, Outcome, TestCase};

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
        let options = RunOptions {
            seed: cx.seed,
            mode: TimeMode::Real,
            target: Target {
                overrides: vec![(SUITE.programs[0].var.to_string(), implementation.clone())],
                bug: None,
            },
            save_artifacts: false,
            quiet: true,
        };
        let outcome = runner::run(&SUITE, test, &options);
        discard_scratch(&outcome);
        if outcome.passed()
            && test.name.starts_with("browser::")
            && super::support::skipped("chromium")
        {
            cx.note(format!("{}: skipped (DSCONF_SKIP=chromium)", test.name));
        } else if outcome.passed() {
            cx.fail(
                property::PROGRESS,
                format!(
                    "{} passed a server that exits at once:\n{}",
                    test.name,
                    outcome.report()
                ),
            );
        } else if !outcome.failed_for(property::PROGRESS) {
            cx.fail(
                property::PROGRESS,
                format!(
                    "{} failed a server that exits at once, but not for lack of progress:\n{}",
                    test.name,
                    outcome.report()
                ),
            );
        } else {
            let why = outcome
                .failures
                .iter()
                .find(|f| f.property == property::PROGRESS)
                .map(|f| f.message.clone())
                .unwrap_or_default();
            cx.note(format!("{}: {why}", test.name));
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
    let options = RunOptions {
        seed: cx.seed,
        mode: TimeMode::Real,
        target: Target::default(),
        save_artifacts: false,
        quiet: true,
    };
    let (verdict, outcome) = runner::run_known_bad(&SUITE, known_bad, &options);
    discard_scratch(&outcome);
    if verdict == KnownBadVerdict::Rejected {
        cx.note(outcome.report());
    } else {
        cx.fail(
            BOUNDED_BUFFER,
            verdict.complaint(&SUITE, known_bad, &outcome),
        );
    }
}

/// The runs inside a check fail on purpose: what they leave is no evidence of
/// anything (the check's own scratch directory is kept if the check fails).
fn discard_scratch(outcome: &Outcome) {
    if let Some(dir) = &outcome.scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
}
