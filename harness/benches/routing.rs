//! Harness speed: how many messages per second the event loop routes, and how much
//! faster simulated (lockstep) time runs the kvsrv suite than the wall clock.
//!
//! `flock /tmp/bench.lock cargo bench -p harness --bench routing` prints two tables;
//! results are recorded in docs/kvsrv.md.

use std::time::{Duration, Instant};

use harness::cluster::{Cluster, ClusterConfig, Driver, TimeMode};
use harness::network::{Latency, NetConfig};
use harness::suite::runner::{self, RunOptions};
use harness::suites::kvsrv;
use harness::Implementation;
use specs::node_protocol::{Body, Message};

// The suite (as in tests/kvsrv.rs) allocates for every message, journal entry and history line, and
// the linearizability check for every model state; mimalloc makes that cheaper than
// the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Endpoints that bounce every message they get back to another endpoint, so the
/// loop does nothing but route: fate, journal, queue, delivery.
struct Bouncer {
    endpoints: u64,
    remaining: u64,
}

impl Bouncer {
    fn send(&self, cluster: &mut Cluster, from: u64) {
        let to = (from * 7 + 3) % self.endpoints;
        cluster.send(Message {
            src: format!("e{from}"),
            dest: format!("e{to}"),
            now: None,
            body: Body::new("ping").with("hop", self.remaining),
        });
    }
}

impl Driver for Bouncer {
    fn start(&mut self, cluster: &mut Cluster) {
        for e in 0..self.endpoints {
            self.send(cluster, e);
        }
    }

    fn on_message(&mut self, cluster: &mut Cluster, message: Message) {
        if self.remaining > 0 {
            self.remaining -= 1;
            let me = message.dest[1..].parse().expect("endpoint name");
            self.send(cluster, me);
        }
    }

    fn on_wake(&mut self, _: &mut Cluster, _: u64) {}

    fn done(&self) -> bool {
        self.remaining == 0
    }
}

fn cluster_config(
    implementation: Implementation,
    nodes: usize,
    net: NetConfig,
    dir: &std::path::Path,
) -> ClusterConfig {
    ClusterConfig {
        nodes,
        implementation,
        env: Vec::new(),
        mode: TimeMode::Sim,
        seed: 1,
        net,
        dir: dir.to_path_buf(),
        step_timeout: Duration::from_secs(10),
    }
}

fn routing_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    println!("## Routing throughput (simulated time, one thread)\n");
    println!("| network | messages | wall (s) | messages/s |");
    println!("|---|---:|---:|---:|");
    for (name, net) in [
        ("reliable", NetConfig::reliable()),
        (
            // No loss here: a lost ping would end its chain of bounces.
            "duplication 20%, reordering 10%, exponential delay",
            NetConfig {
                loss: 0.0,
                ..NetConfig::unreliable()
            },
        ),
        (
            "uniform delay 0.1-3 ms",
            NetConfig {
                latency: Latency::Uniform {
                    min: 100_000,
                    max: 3_000_000,
                },
                ..NetConfig::reliable()
            },
        ),
    ] {
        let implementation = Implementation::ours(kvsrv::BIN);
        let mut cluster = Cluster::start(cluster_config(implementation, 0, net, dir.path()))
            .expect("an empty cluster starts");
        let mut bouncer = Bouncer {
            endpoints: 64,
            remaining: 300_000,
        };
        let start = Instant::now();
        let stats = cluster.run(&mut bouncer, u64::MAX);
        let wall = start.elapsed().as_secs_f64();
        println!(
            "| {name} | {} | {wall:.3} | {:.0} |",
            stats.routed,
            stats.routed as f64 / wall
        );
    }
    println!();

    // Through a real node process: every delivery is a lockstep step over pipes.
    let options = RunOptions {
        seed: 1,
        mode: TimeMode::Sim,
        target: Default::default(),
        save_artifacts: false,
        quiet: true,
    };
    println!("## Routing through a kvsrv node process (lockstep steps over pipes)\n");
    println!("| test | messages | steps | test wall (s) | messages/s |");
    println!("|---|---:|---:|---:|---:|");
    for name in [
        "concurrent::many_clients",
        "memory::many_clients_cost_bytes",
    ] {
        let test = kvsrv::SUITE.test(name).expect("a kvsrv test");
        let outcome = runner::run(&kvsrv::SUITE, test, &options);
        assert!(outcome.passed(), "{}", outcome.report());
        let wall = outcome.wall.as_secs_f64();
        let stats = outcome.stats.unwrap_or_default();
        println!(
            "| {name} | {} | {} | {wall:.3} | {:.0} |",
            stats.messages,
            stats.steps,
            stats.messages as f64 / wall
        );
    }
    println!();
}

fn speedup_table() {
    println!("## kvsrv suite: simulated vs real time (wall seconds, including checking)\n");
    println!("| test | real (s) | sim (s) | speed-up | sim clock / wall |");
    println!("|---|---:|---:|---:|---:|");
    let (mut real_total, mut sim_total) = (0.0, 0.0);
    for test in kvsrv::SUITE.tests {
        let name = test.name;
        let mut walls = [0.0; 2];
        let mut clock_ratio = 0.0;
        for (i, mode) in [TimeMode::Real, TimeMode::Sim].into_iter().enumerate() {
            let options = RunOptions {
                seed: 1,
                mode,
                target: Default::default(),
                save_artifacts: false,
                quiet: true,
            };
            let start = Instant::now();
            let outcome = runner::run(&kvsrv::SUITE, test, &options);
            walls[i] = start.elapsed().as_secs_f64();
            assert!(outcome.passed(), "{}", outcome.report());
            if mode == TimeMode::Sim {
                let clock = outcome.stats.map_or(0, |s| s.clock_ns);
                clock_ratio = clock as f64 / 1e9 / walls[i];
            }
        }
        real_total += walls[0];
        sim_total += walls[1];
        println!(
            "| {name} | {:.3} | {:.3} | {:.1}x | {clock_ratio:.1}x |",
            walls[0],
            walls[1],
            walls[0] / walls[1]
        );
    }
    println!(
        "| **whole suite** | {real_total:.3} | {sim_total:.3} | {:.1}x | |",
        real_total / sim_total
    );
    println!();
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: then only check
    // that the benchmark runs at all, quickly.
    if !std::env::args().any(|a| a == "--bench") {
        println!("routing benchmark: run with `cargo bench -p harness --bench routing`");
        return;
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores, {cpu}\n");
    routing_table();
    speedup_table();
}
