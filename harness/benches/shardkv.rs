//! The sharded key/value service: throughput of 1, 2 and 3 groups under one load, and
//! the time one shard's migration takes, on the wall clock (`HARNESS_TIME=sim` for
//! the simulated clock instead).
//!
//! `cargo bench -p harness --bench shardkv` (run it under `flock /tmp/bench.lock`).
//! The harness routes every message with its usual 1 ms of latency per hop.

use harness::cluster::TimeMode;
use harness::suite::{runner, RunOptions};
use harness::suites::shardkv::{bench::BENCHES, SUITE};

fn main() {
    let mut options = RunOptions::from_env(&SUITE);
    if std::env::var("HARNESS_TIME").is_err() {
        options.mode = TimeMode::Real;
    }
    options.quiet = true;
    println!(
        "shardkv, {} time, seed {}",
        options.mode.name(),
        options.seed
    );
    for bench in BENCHES {
        let outcome = runner::run(&SUITE, bench, &options);
        if !outcome.passed() {
            eprint!("{}", outcome.report());
            std::process::exit(1);
        }
        for note in &outcome.notes {
            println!("{}: {note}", bench.name);
        }
    }
}
