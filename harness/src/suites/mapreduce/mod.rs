//! MapReduce's suite (systems 4 and 5): the 6.5840 front end (`mrcoordinator
//! FILES...` + `mrworker APP`) and the word-count front end (`mapreduce --input DIR
//! --output DIR --nworkers N --nreduce R`), as one system with three programs.
//!
//! | program | variable | `--impl` | run as |
//! |---|---|---|---|
//! | `mapreduce` | `MAPREDUCE_IMPL` | `mapreduce=CMD` (or plain `CMD`) | `<cmd> --input DIR --output DIR --nworkers N --nreduce R` |
//! | `mrcoordinator` | `MRCOORDINATOR_IMPL` | `coordinator=CMD` | `<cmd> pg-*.txt`, in the job directory |
//! | `mrworker` | `MRWORKER_IMPL` | `worker=CMD` | `<cmd> APP` or `<cmd> --map M --reduce R`, in the job directory |
//!
//! Every process also gets `MR_TASK_TIMEOUT_MS` (the re-assign timeout, 1000 in the
//! crash tests) and, in the crash test, `MR_CRASH_MAX_STALL_MS` (2000); an
//! implementation that ignores them is still judged, only more slowly. The test
//! applications (`wc`, `indexer`, `mtiming`, `rtiming`, `jobcount`, `early_exit`,
//! `crash`, `nocrash`, `barrier`, `slow`) are specified in docs/mapreduce.md.
//!
//! Expected results come from the suite's own oracle ([`oracle`]), which shares no
//! code with the reference implementation. Waits are for events (a file appears, a
//! process exits); the only wall-clock limits are hang guards far above what a job
//! needs, and the re-assignment allowance, which grows with the pace measured in the
//! same run.

mod faults;
mod lab;
pub mod oracle;
mod order;
mod scenarios;
mod self_check;
mod streaming;
mod support;
mod wordcount;

use crate::suite::{KnownBad, Program, Suite, TestCase};

/// The final output is the expected one: the oracle's counts, index or application
/// result, in the documented files and nothing else beside them.
pub const OUTPUT: &str = "output";
/// No reduce call starts before every map task has ended.
pub const REDUCE_AFTER_ALL_MAPS: &str = "reduce-after-all-maps";
/// A task held by a dead worker is handed to another one.
pub const TASK_REASSIGNMENT: &str = "task-reassignment";
/// A final name (`mr-out-R`, `mr-X-Y`) never shows partial content.
pub const ATOMIC_OUTPUT: &str = "atomic-output";
/// Workers run map tasks, and reduce tasks, at the same time.
pub const PARALLELISM: &str = "parallelism";
/// Without failures every map task runs exactly once.
pub const TASKS_RUN_ONCE: &str = "tasks-run-once";
/// Processes exit when, and only when, the job is over (or its coordinator is gone).
pub const EXIT: &str = "exit";
/// A task whose application failed is handed out again: one failure that does not
/// repeat does not fail the job.
pub const TASK_RETRY: &str = "task-retry";
/// Bad arguments and failing applications get a clear error and a non-zero exit.
pub const ERRORS: &str = "errors";

pub static SUITE: Suite = Suite {
    name: "mapreduce",
    title: "MapReduce (word count and the 6.5840 framework)",
    programs: &[
        Program {
            var: "MAPREDUCE_IMPL",
            bin: "mapreduce",
            key: "mapreduce",
            run_as: "CMD --input DIR --output DIR --nworkers N --nreduce R (the word-count job)",
        },
        Program {
            var: "MRCOORDINATOR_IMPL",
            bin: "mrcoordinator",
            key: "coordinator",
            run_as: "CMD pg-*.txt, in the job directory (the 6.5840 coordinator)",
        },
        Program {
            var: "MRWORKER_IMPL",
            bin: "mrworker",
            key: "worker",
            run_as: "CMD APP or CMD --map M --reduce R, in the job directory (a 6.5840 worker)",
        },
    ],
    bug_var: "MAPREDUCE_BUG",
    simulated: false,
    tests: TESTS,
    self_checks: self_check::CHECKS,
    known_bad: &[
        KnownBad {
            variant: "early-reduce",
            what: "the coordinator hands out reduce tasks before every map task is done",
            test: "order::no_reduce_before_last_map",
            property: REDUCE_AFTER_ALL_MAPS,
        },
        KnownBad {
            variant: "never-reassign",
            what: "the coordinator never re-assigns a dead worker's task",
            test: "faults::a_dead_workers_task_is_reassigned",
            property: TASK_REASSIGNMENT,
        },
        KnownBad {
            variant: "in-place",
            what: "workers write outputs in place instead of to a temp file and rename",
            test: "faults::outputs_never_partial",
            property: ATOMIC_OUTPUT,
        },
    ],
    docs: "docs/mapreduce.md",
};

const TESTS: &[TestCase] = &[
    TestCase {
        name: "lab::wc",
        after: Some("6.5840 mr TestWc"),
        run: lab::wc,
    },
    TestCase {
        name: "lab::indexer",
        after: Some("6.5840 mr TestIndexer"),
        run: lab::indexer,
    },
    TestCase {
        name: "lab::map_parallelism",
        after: Some("6.5840 mr TestMapParallelism"),
        run: lab::map_parallelism,
    },
    TestCase {
        name: "lab::reduce_parallelism",
        after: Some("6.5840 mr TestReduceParallelism"),
        run: lab::reduce_parallelism,
    },
    TestCase {
        name: "lab::job_count",
        after: Some("6.5840 mr TestJobCount"),
        run: lab::job_count,
    },
    TestCase {
        name: "lab::early_exit",
        after: Some("6.5840 mr TestEarlyExit"),
        run: lab::early_exit,
    },
    TestCase {
        name: "lab::crash",
        after: Some("6.5840 mr TestCrashWorker"),
        run: lab::crash,
    },
    TestCase {
        name: "lab::bad_arguments",
        after: None,
        run: lab::bad_arguments,
    },
    TestCase {
        name: "order::no_reduce_before_last_map",
        after: None,
        run: order::no_reduce_before_last_map,
    },
    TestCase {
        name: "faults::workers_killed_mid_task",
        after: None,
        run: faults::workers_killed_mid_task,
    },
    TestCase {
        name: "faults::a_dead_workers_task_is_reassigned",
        after: None,
        run: faults::a_dead_workers_task_is_reassigned,
    },
    TestCase {
        name: "faults::outputs_never_partial",
        after: None,
        run: faults::outputs_never_partial,
    },
    TestCase {
        name: "faults::workers_exit_when_coordinator_dies",
        after: None,
        run: faults::workers_exit_when_coordinator_dies,
    },
    TestCase {
        name: "streaming::script_pair_matches_pipeline",
        after: None,
        run: streaming::script_pair_matches_pipeline,
    },
    TestCase {
        name: "streaming::an_application_that_always_fails_fails_the_job",
        after: None,
        run: streaming::an_application_that_always_fails_fails_the_job,
    },
    TestCase {
        name: "streaming::a_failed_task_is_retried",
        after: None,
        run: streaming::a_failed_task_is_retried,
    },
    TestCase {
        name: "wordcount::layout_and_order",
        after: None,
        run: wordcount::layout_and_order,
    },
    TestCase {
        name: "wordcount::empty_input",
        after: None,
        run: wordcount::empty_input,
    },
    TestCase {
        name: "wordcount::empty_and_wordless_files",
        after: None,
        run: wordcount::empty_and_wordless_files,
    },
    TestCase {
        name: "wordcount::one_huge_file",
        after: None,
        run: wordcount::one_huge_file,
    },
    TestCase {
        name: "wordcount::many_small_files",
        after: None,
        run: wordcount::many_small_files,
    },
    TestCase {
        name: "wordcount::non_latin_and_invalid_utf8",
        after: None,
        run: wordcount::non_latin_and_invalid_utf8,
    },
    TestCase {
        name: "wordcount::nreduce_1",
        after: None,
        run: wordcount::nreduce_1,
    },
    TestCase {
        name: "wordcount::nreduce_50",
        after: None,
        run: wordcount::nreduce_50,
    },
    TestCase {
        name: "wordcount::bad_arguments",
        after: None,
        run: wordcount::bad_arguments,
    },
    TestCase {
        name: "wordcount::workers_killed",
        after: None,
        run: wordcount::workers_killed,
    },
];
