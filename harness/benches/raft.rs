//! Raft in real time with fsync on: committed commands per second and commit latency
//! for 3 and 5 nodes, through the same tester as the conformance suite.
//!
//! `cargo bench -p harness --bench raft` (run it under `flock /tmp/bench.lock`).
//! Latency is from the tester sending `start` to the leader reporting the entry
//! applied, one command at a time; throughput keeps `window` commands in flight. The
//! harness routes every message with no added delay, so the figures are the nodes'
//! own cost plus the harness's routing (two pipe hops per message).

use std::time::Instant;

use harness::suites::raft::{Tester, BIN, MS};
use harness::{Implementation, TestDir};
use serde_json::json;

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k] as f64 / 1e6
}

fn main() {
    println!("| nodes | window | commands | commands/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for nodes in [3, 5] {
        let dir = TestDir::new("raft-bench");
        let implementation = Implementation::from_env("RAFT_IMPL", BIN);
        let mut t = Tester::real_time_zero_latency(nodes, implementation, dir.join("cluster"));
        let leader = t.check_one_leader();
        let mut next = 0u64;
        for window in [1usize, 16, 64] {
            let commands = if window == 1 { 300 } else { 1_000 };
            let mut latencies = Vec::new();
            let wall = Instant::now();
            let mut done = 0;
            while done < commands {
                let t0 = t.now();
                let batch: Vec<_> = (0..window)
                    .map(|_| {
                        next += 1;
                        (leader, json!(next))
                    })
                    .collect();
                let answers = t.start_many(batch);
                let last = answers.iter().map(|a| a.0).max().expect("a batch");
                assert!(
                    answers.iter().all(|a| a.2),
                    "leader changed during the benchmark"
                );
                assert!(
                    t.run_until_applied(leader, last, 5_000 * MS),
                    "no commit in 5 s"
                );
                latencies.push(t.now() - t0);
                done += window;
            }
            let secs = wall.elapsed().as_secs_f64();
            latencies.sort_unstable();
            println!(
                "| {nodes} | {window} | {done} | {:.0} | {:.2} | {:.2} |",
                done as f64 / secs,
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            );
        }
    }
}
