//! The nextest (and `cargo test`) entry of a suite: `tests/<system>/main.rs` calls
//! [`main`] with the system's descriptor, and every entry of its table becomes a
//! test named `<system>::<test>`, run through a libtest-compatible main
//! (`libtest-mimic`), so nextest's filters, lists and per-test processes work as for
//! any Rust test.
//!
//! The implementation comes from the system's variables (`<SYSTEM>_IMPL`...), the
//! seed from `SEED`, the time mode from `HARNESS_TIME`.

use libtest_mimic::{Arguments, Failed, Trial};

use super::runner::{self, KnownBadVerdict, RunOptions};
use super::{KnownBad, Suite, TestCase};

/// Runs the suite's tests as the command line of a test binary asks.
pub fn main(suite: &'static Suite) -> ! {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials(suite)).exit()
}

/// Every test of the suite as a trial: the conformance tests, the suite's checks of
/// itself, and one test per known-bad variant.
pub fn trials(suite: &'static Suite) -> Vec<Trial> {
    let mut trials = Vec::new();
    for test in suite.tests {
        trials.push(Trial::test(
            format!("{}::{}", suite.name, test.name),
            move || conformance(suite, test),
        ));
    }
    for test in suite.self_checks {
        trials.push(Trial::test(
            format!("{}::self_check::{}", suite.name, test.name),
            move || conformance(suite, test),
        ));
    }
    for known_bad in suite.known_bad {
        trials.push(Trial::test(
            format!(
                "{}::{}",
                suite.name,
                Suite::known_bad_name(known_bad.variant)
            ),
            move || rejects(suite, known_bad),
        ));
    }
    if let Some(first) = suite.known_bad.first() {
        trials.push(Trial::test(
            format!("{}::known_bad::failing_seed_replays", suite.name),
            move || replays(suite, first),
        ));
    }
    trials
}

fn conformance(suite: &'static Suite, test: &'static TestCase) -> Result<(), Failed> {
    let options = RunOptions::from_env(suite);
    eprintln!("{}::{}: seed {}", suite.name, test.name, options.seed);
    let outcome = runner::run(suite, test, &options);
    eprint!("{}", outcome.report());
    if outcome.passed() {
        Ok(())
    } else {
        Err(outcome.report().into())
    }
}

/// Known-bad variants are switches of our binaries: they are run whatever
/// `<SYSTEM>_IMPL` says, since they test the suite, not the implementation.
fn rejects(suite: &'static Suite, known_bad: &'static KnownBad) -> Result<(), Failed> {
    let options = known_bad_options(suite);
    eprintln!(
        "{}: {}={} ({}) must be rejected by {} for {:?}; seed {}",
        suite.name,
        suite.bug_var,
        known_bad.variant,
        known_bad.what,
        known_bad.test,
        known_bad.property,
        options.seed
    );
    let (verdict, outcome) = runner::run_known_bad(suite, known_bad, &options);
    eprint!("{}", outcome.report());
    match verdict {
        KnownBadVerdict::Rejected => Ok(()),
        other => Err(other.complaint(suite, known_bad, &outcome).into()),
    }
}

/// A known-bad run is expected to fail: its report says why, so the panics on the way
/// (with backtraces, where `RUST_BACKTRACE` is set) are not printed as they happen.
fn known_bad_options(suite: &Suite) -> RunOptions {
    RunOptions {
        quiet: true,
        ..RunOptions::from_env(suite)
    }
}

/// A failing seed replays: the same seed fails the same way (the same properties, and
/// in simulated time the same messages).
fn replays(suite: &'static Suite, known_bad: &'static KnownBad) -> Result<(), Failed> {
    let options = known_bad_options(suite);
    let (first, a) = runner::run_known_bad(suite, known_bad, &options);
    if first != KnownBadVerdict::Rejected {
        return Err(first.complaint(suite, known_bad, &a).into());
    }
    let (_, b) = runner::run_known_bad(suite, known_bad, &options);
    let properties = |o: &super::Outcome| {
        let mut p: Vec<&str> = o.failures.iter().map(|f| f.property).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    if properties(&a) != properties(&b) {
        return Err(format!(
            "seed {} failed differently when replayed:\nfirst run:\n{}\nreplay:\n{}",
            options.seed,
            a.report(),
            b.report()
        )
        .into());
    }
    if options.mode == crate::cluster::TimeMode::Sim && a.failures != b.failures {
        return Err(format!(
            "seed {} gave other failures in simulated time when replayed:\nfirst run:\n{}\nreplay:\n{}",
            options.seed,
            a.report(),
            b.report()
        )
        .into());
    }
    eprintln!(
        "seed {} failed the same way twice: {}",
        options.seed,
        properties(&a).join(", ")
    );
    Ok(())
}
