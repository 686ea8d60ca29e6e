//! Conformance tests of MapReduce (systems 4 and 5): the 6.5840 front end
//! (`mrcoordinator FILES...` + `mrworker APP`) and the word-count front end
//! (`mapreduce --input DIR --output DIR --nworkers N --nreduce R`).
//!
//! Implementations under test (any language; split like a shell command line):
//!
//! | variable | default | run as |
//! |---|---|---|
//! | `MRCOORDINATOR_IMPL` | our `mrcoordinator` | `<cmd> pg-*.txt`, in the job directory |
//! | `MRWORKER_IMPL` | our `mrworker` | `<cmd> APP` or `<cmd> --map M --reduce R`, in the job directory |
//! | `MAPREDUCE_IMPL` | our `mapreduce` | `<cmd> --input DIR --output DIR --nworkers N --nreduce R` |
//!
//! Every process also gets `MR_TASK_TIMEOUT_MS` (the re-assign timeout, 1000 in the
//! crash tests) and, in the crash test, `MR_CRASH_MAX_STALL_MS` (2000); an
//! implementation that ignores them is still judged, only more slowly. The test
//! applications (`wc`, `indexer`, `mtiming`, `rtiming`, `jobcount`, `early_exit`,
//! `crash`, `nocrash`, `barrier`, `slow`) are specified in docs/mapreduce.md.
//!
//! Expected results come from the tests' own oracle (`oracle`), which shares no
//! code with the reference implementation. Waits are for events (a file appears, a
//! process exits); the only wall-clock limits are hang guards far above what a job
//! needs, and the re-assignment allowance, which grows with the pace measured in the
//! same run.

mod support;

mod faults;
mod known_bad;
mod lab;
mod oracle;
mod order;
mod progress;
mod scenarios;
mod streaming;
mod wordcount;
