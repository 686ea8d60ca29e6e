//! Reference MapReduce: one coordinator and worker processes on one machine, sharing a
//! directory and talking over a Unix socket.
//!
//! The conformance suite (`harness/src/suites/mapreduce/`) runs it as black-box processes
//! through three commands, and judges it only by the files it leaves:
//!
//! - `mrcoordinator FILES...` and `mrworker APP`: the 6.5840 front end (`mr-X-Y`
//!   intermediates, `mr-out-Y` outputs, nReduce 10);
//! - `mapreduce --input DIR --output DIR --nworkers N --nreduce R`: the word-count
//!   front end, which starts its own workers and merges `output.txt`.
//!
//! How it fits: [`core`] is the coordinator's pure decision core (which task to hand out,
//! when to re-assign), [`server`] binds it to a socket and a clock, [`worker`] runs
//! tasks of an [`app::App`], [`output`] makes every file appear atomically, [`plan`]
//! lays out a job's tasks and files, and [`bug`] holds the known-bad variants the
//! suite must reject. See `docs/mapreduce.md` for the contracts.

pub mod app;
pub mod apps;
pub mod bug;
pub mod core;
pub mod kvfile;
pub mod merge;
pub mod output;
pub mod partition;
pub mod plan;
pub mod protocol;
pub mod server;
pub mod split;
pub mod worker;
