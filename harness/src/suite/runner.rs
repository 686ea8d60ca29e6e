//! Runs one test of a suite and judges it: the test's own failures, its panics, and
//! progress; saves the evidence of a failing run and says how to replay it.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Once;
use std::time::Instant;

use super::context::{Context, Target};
use super::outcome::{Failure, Outcome};
use super::{property, KnownBad, Suite, TestCase};
use crate::artifacts;
use crate::cluster::TimeMode;

/// How to run a test.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub seed: u64,
    pub mode: TimeMode,
    pub target: Target,
    /// Copy the evidence of a failing run to `target/harness-runs/<system>/`.
    pub save_artifacts: bool,
    /// Do not print panics as they happen (the command line prints its own report).
    pub quiet: bool,
}

impl RunOptions {
    /// As the environment says: `SEED` (else a fresh seed), `HARNESS_TIME=sim|real`
    /// for a simulated suite (real protocols always run on the wall clock).
    pub fn from_env(suite: &Suite) -> RunOptions {
        let seed = match std::env::var("SEED") {
            Ok(s) => s
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("SEED={s:?} is not an unsigned 64-bit integer")),
            Err(_) => rand::random(),
        };
        RunOptions {
            seed,
            mode: if suite.simulated {
                TimeMode::from_env()
            } else {
                TimeMode::Real
            },
            target: Target::default(),
            save_artifacts: true,
            quiet: false,
        }
    }
}

impl RunOptions {
    /// For a run inside a check of the suite (its verdict read by the check, not
    /// reported): the check's seed, no evidence saved, panics not printed.
    pub fn within(cx: &Context, mode: TimeMode, target: Target) -> RunOptions {
        RunOptions {
            seed: cx.seed,
            mode,
            target,
            save_artifacts: false,
            quiet: true,
        }
    }
}

/// Stops the test with a failure of `property` (for tests written with panics: the
/// runner records it with its property, not as a plain assertion).
pub fn fail(property: &'static str, message: impl Into<String>) -> ! {
    std::panic::panic_any(Failure {
        property,
        message: message.into(),
    })
}

thread_local! {
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Remembers where a test panicked (its message says what, this says where) and keeps
/// the command line's output free of panic messages it reports itself.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANIC_AT.with(|p| *p.borrow_mut() = info.location().map(|l| l.to_string()));
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

fn panic_failure(payload: Box<dyn std::any::Any + Send>) -> Failure {
    if let Some(f) = payload.downcast_ref::<Failure>() {
        return f.clone();
    }
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the test panicked".into());
    let at = PANIC_AT.with(|p| p.borrow_mut().take());
    Failure {
        property: property::ASSERTION,
        message: match at {
            Some(at) => format!("{text} (at {at})"),
            None => text,
        },
    }
}

/// Runs `test` of `suite` and judges it.
pub fn run(suite: &'static Suite, test: &'static TestCase, options: &RunOptions) -> Outcome {
    install_panic_hook();
    let start = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix(&format!("harness-{}-", suite.name))
        .tempdir();
    let mut outcome = Outcome {
        system: suite.name,
        test: test.name,
        seed: options.seed,
        mode: options.mode,
        bug: options.target.bug.clone(),
        implementation: String::new(),
        failures: Vec::new(),
        notes: Vec::new(),
        stats: None,
        wall: Default::default(),
        artifacts: None,
        scratch: None,
        replay: replay_commands(suite, test, options),
    };
    let scratch = match scratch {
        Ok(d) => d,
        Err(e) => {
            outcome.failures.push(Failure {
                property: property::HARNESS,
                message: format!("cannot create a scratch directory: {e}"),
            });
            return outcome;
        }
    };
    let mut cx = Context::new(
        suite,
        test.name,
        options.seed,
        options.mode,
        options.target.clone(),
        scratch.path().to_path_buf(),
    );
    QUIET.with(|q| q.set(options.quiet));
    let result = catch_unwind(AssertUnwindSafe(|| {
        // Naming the implementation may build our binary or reject a command: part of
        // the run, so a failure there is reported like any other.
        outcome.implementation = cx.implementation().describe().to_string();
        (test.run)(&mut cx)
    }));
    QUIET.with(|q| q.set(false));
    if let Err(payload) = result {
        cx.failures.push(panic_failure(payload));
    }
    if let Some(stats) = cx.stats {
        if stats.ops > 0 && stats.ok == 0 && !cx.failed_for(property::PROGRESS) {
            cx.failures.push(Failure {
                property: property::PROGRESS,
                message: format!(
                    "no progress: 0 of {} operations succeeded ({} failed, {} unknown)",
                    stats.ops, stats.fail, stats.info
                ),
            });
        }
    }
    outcome.failures = std::mem::take(&mut cx.failures);
    outcome.notes = std::mem::take(&mut cx.notes);
    outcome.stats = cx.stats;
    let evidence = cx.evidence();
    drop(cx);
    if !outcome.passed() {
        if options.save_artifacts {
            save_evidence(suite, &mut outcome, evidence);
        }
        outcome.scratch = Some(scratch.keep());
    }
    outcome.wall = start.elapsed();
    outcome
}

impl Context {
    fn failed_for(&self, property: &str) -> bool {
        self.failures.iter().any(|f| f.property == property)
    }
}

fn save_evidence(suite: &Suite, outcome: &mut Outcome, evidence: super::Evidence) {
    let name = match &outcome.bug {
        Some(bug) => format!("known-bad-{bug}-{}", outcome.test),
        None => outcome.test.to_string(),
    };
    let dir = artifacts::run_dir(suite.name, &name, outcome.seed);
    let mut files = evidence.take();
    // Only what the seed determines (no wall times), so a replay can be compared.
    let verdict = format!(
        "{}::{} seed {} ({} time){}\nimplementation: {}\n\n{}\n\nreplay:\n{}\n",
        suite.name,
        outcome.test,
        outcome.seed,
        outcome.mode.name(),
        outcome
            .bug
            .as_deref()
            .map_or(String::new(), |b| format!(", known-bad variant {b}")),
        outcome.implementation,
        outcome
            .failures
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        outcome.replay.join("\n")
    );
    files.files.push(("verdict.txt".into(), verdict));
    let named: Vec<(&str, &str)> = files
        .files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    let copies: Vec<PathBuf> = files.copies;
    match artifacts::save(&dir, &named, &copies) {
        Ok(()) => outcome.artifacts = Some(dir),
        Err(e) => outcome.failures.push(Failure {
            property: property::HARNESS,
            message: format!("could not save the evidence in {}: {e}", dir.display()),
        }),
    }
}

/// The command line and the nextest command that replay a run (a check of the suite
/// itself runs under nextest only).
fn replay_commands(suite: &Suite, test: &TestCase, options: &RunOptions) -> Vec<String> {
    let self_check = suite.self_checks.iter().any(|t| std::ptr::eq(t, test));
    let time = if suite.simulated {
        format!(" --time {}", options.mode.name())
    } else {
        String::new()
    };
    let mut impls = String::new();
    let mut env = String::new();
    for (var, implementation) in &options.target.overrides {
        let key = suite.program(var).map_or(var.as_str(), |p| p.key);
        let cmd = implementation.command_line();
        impls.push_str(&format!(
            " --impl {}",
            shell_words::quote(&format!("{key}={cmd}"))
        ));
        env.push_str(&format!("{var}={} ", shell_words::quote(&cmd)));
    }
    if suite.simulated && options.mode == TimeMode::Real {
        env.push_str("HARNESS_TIME=real ");
    }
    let (only, filter) = match &options.target.bug {
        Some(bug) => (
            format!("--known-bad --only {bug}"),
            Suite::known_bad_name(bug),
        ),
        None if self_check => (String::new(), format!("self_check::{}", test.name)),
        None => (format!("--only {}", test.name), test.name.to_string()),
    };
    let nextest = format!(
        "SEED={} {env}cargo nextest run -p harness --test {} -E 'test(={}::{filter})'",
        options.seed, suite.name, suite.name
    );
    if self_check {
        return vec![nextest];
    }
    vec![
        format!(
            "cargo run --release -p harness -- test {} {only} --seed {}{time}{impls}",
            suite.name, options.seed
        ),
        nextest,
    ]
}

/// What running a known-bad variant showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownBadVerdict {
    /// The named test failed it for the named property.
    Rejected,
    /// The named test failed it, but for other properties only.
    WrongReason,
    /// The suite passed a known-bad implementation.
    Accepted,
}

impl KnownBadVerdict {
    pub fn of(known_bad: &KnownBad, outcome: &Outcome) -> KnownBadVerdict {
        if outcome.passed() {
            KnownBadVerdict::Accepted
        } else if outcome.failed_for(known_bad.property) {
            KnownBadVerdict::Rejected
        } else {
            KnownBadVerdict::WrongReason
        }
    }

    /// An explanation for anything but a rejection.
    pub fn complaint(self, suite: &Suite, known_bad: &KnownBad, outcome: &Outcome) -> String {
        match self {
            KnownBadVerdict::Rejected => String::new(),
            KnownBadVerdict::Accepted => format!(
                "the suite accepted the known-bad variant {}={} ({}): {}::{} passed\n{}",
                suite.bug_var,
                known_bad.variant,
                known_bad.what,
                suite.name,
                known_bad.test,
                outcome.report()
            ),
            KnownBadVerdict::WrongReason => format!(
                "{}::{} rejected the known-bad variant {}={} ({}), but not for {:?}\n{}",
                suite.name,
                known_bad.test,
                suite.bug_var,
                known_bad.variant,
                known_bad.what,
                known_bad.property,
                outcome.report()
            ),
        }
    }
}

/// Runs the test that must reject `known_bad` against that variant of our binary.
pub fn run_known_bad(
    suite: &'static Suite,
    known_bad: &KnownBad,
    options: &RunOptions,
) -> (KnownBadVerdict, Outcome) {
    let test = suite.test(known_bad.test).unwrap_or_else(|| {
        panic!(
            "{}'s known-bad variant {} names no test {:?}",
            suite.name, known_bad.variant, known_bad.test
        )
    });
    let options = RunOptions {
        target: Target {
            overrides: Vec::new(),
            bug: Some(known_bad.variant.to_string()),
        },
        ..options.clone()
    };
    let mut outcome = run(suite, test, &options);
    let verdict = KnownBadVerdict::of(known_bad, &outcome);
    if verdict == KnownBadVerdict::Rejected {
        // Failing was the point: the evidence stays, the scratch space goes.
        if let Some(dir) = outcome.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    (verdict, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::kvsrv::SUITE;

    fn options(mode: TimeMode) -> RunOptions {
        RunOptions {
            seed: 42,
            mode,
            target: Target::default(),
            save_artifacts: false,
            quiet: true,
        }
    }

    #[test]
    fn a_test_replays_from_the_command_line_and_nextest() {
        let test = SUITE.test("basic::one_client").unwrap();
        let r = replay_commands(&SUITE, test, &options(TimeMode::Real));
        assert_eq!(r.len(), 2);
        assert!(r[0].contains("test kvsrv --only basic::one_client --seed 42 --time real"));
        assert!(r[1].starts_with("SEED=42 HARNESS_TIME=real cargo nextest"));
        assert!(
            r[1].ends_with("-E 'test(=kvsrv::basic::one_client)'"),
            "{}",
            r[1]
        );
    }

    #[test]
    fn a_self_check_replays_under_nextest_by_its_full_name() {
        let test = SUITE.test("same_seed_same_journal").unwrap();
        let r = replay_commands(&SUITE, test, &options(TimeMode::Sim));
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].ends_with("'test(=kvsrv::self_check::same_seed_same_journal)'"));
    }

    #[test]
    fn a_known_bad_run_replays_its_variant() {
        let test = SUITE.test("basic::one_client").unwrap();
        let mut o = options(TimeMode::Sim);
        o.target.bug = Some("stale-read".into());
        let r = replay_commands(&SUITE, test, &o);
        assert!(
            r[0].contains("--known-bad --only stale-read --seed 42"),
            "{}",
            r[0]
        );
        assert!(
            r[1].ends_with("'test(=kvsrv::known_bad::stale_read)'"),
            "{}",
            r[1]
        );
    }

    /// A typed failure keeps its property through the panic; a plain assertion is
    /// "assertion" with its location.
    #[test]
    fn panics_become_failures() {
        install_panic_hook();
        QUIET.with(|q| q.set(true));
        let typed = catch_unwind(|| fail("durability", "lost")).unwrap_err();
        let plain = catch_unwind(|| panic!("arithmetic")).unwrap_err();
        QUIET.with(|q| q.set(false));
        let typed = panic_failure(typed);
        assert_eq!(
            (typed.property, typed.message.as_str()),
            ("durability", "lost")
        );
        let plain = panic_failure(plain);
        assert_eq!(plain.property, property::ASSERTION);
        assert!(
            plain.message.starts_with("arithmetic (at "),
            "{}",
            plain.message
        );
    }
}
