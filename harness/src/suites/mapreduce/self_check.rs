//! Checks of the MapReduce suite itself: it fails programs that do nothing, for lack
//! of progress; its re-assignment scenario does not mistake a slow re-assignment for
//! none; its word-count oracle agrees with `specs::wordcount` on every character and
//! on the texts the suite generates; and a word count of another make, in Python,
//! passes it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use super::scenarios::{reassigns_a_dead_workers_task, ReassignAllowance};
use super::support::{fixture, text, with_hang_guard, LabJob};
use super::{oracle, ERRORS, SUITE, TASK_REASSIGNMENT};
use crate::cluster::TimeMode;
use crate::implementation::Implementation;
use crate::suite::context::Target;
use crate::suite::runner::{self, RunOptions};
use crate::suite::{property, self_check, Context, TestCase};

pub(super) const CHECKS: &[TestCase] = &[
    TestCase {
        name: "a_do_nothing_implementation_fails_every_test",
        after: None,
        run: a_do_nothing_implementation_fails_every_test,
    },
    TestCase {
        name: "an_idle_implementation_fails_every_test",
        after: None,
        run: an_idle_implementation_fails_every_test,
    },
    TestCase {
        name: "a_slow_reassignment_is_not_never_reassign",
        after: None,
        run: a_slow_reassignment_is_not_never_reassign,
    },
    TestCase {
        name: "oracle_agrees_with_specs_on_every_character",
        after: None,
        run: oracle_agrees_with_specs_on_every_character,
    },
    TestCase {
        name: "oracle_agrees_with_specs_on_generated_texts",
        after: None,
        run: oracle_agrees_with_specs_on_generated_texts,
    },
    TestCase {
        name: "python_example_passes",
        after: None,
        run: python_example_passes,
    },
];

/// Tests whose own property a do-nothing program violates before progress comes into
/// it (it must fail with an error and does not): they must fail for that property.
const OWN_PROPERTY: &[(&str, &str)] = &[
    ("lab::bad_arguments", ERRORS),
    ("wordcount::bad_arguments", ERRORS),
    (
        "streaming::an_application_that_always_fails_fails_the_job",
        ERRORS,
    ),
];

/// Runs every conformance test with `script` as all three programs, `parallel` at a
/// time, with the hang guard at `guard`, and fails for each test that does not
/// reject it as it should: for lack of progress, or for its own property.
fn every_test_rejects(cx: &mut Context, script: &str, guard: Duration, parallel: usize) {
    let command = fixture(script).display().to_string();
    let implementation = Implementation::from_command(&command).expect("a command");
    let target = Target {
        overrides: SUITE
            .programs
            .iter()
            .map(|p| (p.var.to_string(), implementation.clone()))
            .collect(),
        bug: None,
    };
    let options = RunOptions::within(cx, TimeMode::Real, target);
    let queue = Mutex::new(SUITE.tests.iter());
    let verdicts = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let Some(test) = queue.lock().unwrap().next() else {
                    return;
                };
                let outcome = with_hang_guard(guard, || runner::run(&SUITE, test, &options));
                if let Some(dir) = &outcome.scratch {
                    // Every run here fails and keeps its directory; nothing in it is
                    // needed once the verdict is read.
                    let _ = std::fs::remove_dir_all(dir);
                }
                verdicts.lock().unwrap().push((test.name, outcome));
            });
        }
    });
    let mut verdicts = verdicts.into_inner().unwrap();
    verdicts.sort_by_key(|(name, _)| *name);
    for (name, outcome) in verdicts {
        let expected = OWN_PROPERTY
            .iter()
            .find(|(t, _)| *t == name)
            .map_or(property::PROGRESS, |(_, p)| p);
        let what = format!("{script}, which does nothing");
        self_check::require_failed_for(cx, &outcome, expected, &what);
    }
}

/// A program that exits at once, successfully, having done nothing.
fn a_do_nothing_implementation_fails_every_test(cx: &mut Context) {
    every_test_rejects(cx, "do-nothing.sh", super::support::hang_guard(), 2);
}

/// A program that never exits and never writes anything. A hang guard of 2 s keeps
/// this short; the runs mostly wait, so six go at once.
fn an_idle_implementation_fails_every_test(cx: &mut Context) {
    every_test_rejects(cx, "idle.sh", Duration::from_secs(2), 6);
}

/// The Python word count kept as an example (`impls/mapreduce/python/wordcount.py`, a
/// process a task and a task a worker's share of the input, nothing like ours inside)
/// passes the word-count tests when plugged in: the layout with files packed into
/// tasks, words across files and scripts, a big file cut, workers killed, and bad
/// arguments refused.
fn python_example_passes(cx: &mut Context) {
    let tests = [
        "wordcount::layout_and_order",
        "wordcount::many_small_files",
        "wordcount::non_latin_and_invalid_utf8",
        "wordcount::one_huge_file",
        "wordcount::workers_killed",
        "wordcount::bad_arguments",
    ];
    let path = "impls/mapreduce/python/wordcount.py";
    self_check::python_example_passes(cx, &SUITE, path, &tests, TimeMode::Real);
}

/// What the re-assignment test must not mistake for `never-reassign`: our correct
/// coordinator with a re-assign timeout of 10 s (6.5840's default, which an
/// implementation ignoring `MR_TASK_TIMEOUT_MS` keeps) re-assigns the dead worker's
/// task late, and the scenario, with the allowance it gives any implementation,
/// accepts it. A check that only asked whether the job finished within a few seconds
/// would call this never-reassign.
fn a_slow_reassignment_is_not_never_reassign(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-slow-reassign", 1_000).with_our_binaries();
    job.env("MR_TASK_TIMEOUT_MS", "10000");
    let started = Instant::now();
    if let Err(f) = reassigns_a_dead_workers_task(&mut job, ReassignAllowance::ANY) {
        cx.fail(
            TASK_REASSIGNMENT,
            format!(
                "a correct but slow coordinator was rejected: [{}] {f}",
                f.property()
            ),
        );
    }
    cx.check(
        started.elapsed() >= Duration::from_secs(10),
        property::ASSERTION,
        || {
            format!(
                "the job took {:?}: the 10 s re-assign timeout was not in effect",
                started.elapsed()
            )
        },
    );
}

/// Every character on its own, between separators: one word, the same one, or none,
/// by the oracle and by `specs::wordcount`. This covers every letter's lowercase
/// mapping.
fn oracle_agrees_with_specs_on_every_character(cx: &mut Context) {
    let mut differ = Vec::new();
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let mut input = String::from(" ");
        input.push(c);
        input.push(' ');
        let (ours, theirs) = (
            oracle::words(input.as_bytes()),
            specs::wordcount::words(input.as_bytes()),
        );
        if ours != theirs {
            differ.push(format!(
                "U+{:04X}: oracle {ours:?}, specs {theirs:?}",
                u32::from(c)
            ));
        }
    }
    cx.check(differ.is_empty(), property::ASSERTION, || {
        format!(
            "{} characters differ: {:#?}",
            differ.len(),
            &differ[..differ.len().min(8)]
        )
    });
}

/// The suite's generated texts, with invalid bytes, counted by both.
fn oracle_agrees_with_specs_on_generated_texts(cx: &mut Context) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(cx.seed);
    let texts: Vec<Vec<u8>> = (0..4)
        .map(|i| text(&mut rng, 200_000, i % 2 == 0))
        .collect();
    let slices = || texts.iter().map(Vec::as_slice);
    let (ours, theirs) = (
        oracle::word_count(slices()),
        specs::wordcount::word_count(slices()),
    );
    let differ: Vec<String> = ours
        .keys()
        .chain(theirs.keys())
        .filter(|w| ours.get(*w) != theirs.get(*w))
        .take(8)
        .map(|w| format!("{w:?}: oracle {:?}, specs {:?}", ours.get(w), theirs.get(w)))
        .collect();
    cx.check(differ.is_empty(), property::ASSERTION, || {
        format!("counts differ: {differ:#?}")
    });
}
