//! Our 3-node kvraft service against a 3-member etcd cluster (through
//! `etcd-adapter`), in real time with fsync on, under the same closed-loop load: 1,
//! 16 and 64 clients, each with one write outstanding at a time and no pause
//! between writes. Prints operations per second and latency (p50, p99) per system
//! and load, and the comparison.
//!
//! `cargo bench -p harness --bench kvraft_vs_etcd` (as root, with Debian's
//! `etcd-server`; without etcd only kvraft is measured, and a loud line says so).
//!
//! Both systems sit behind the harness, which routes every message (client requests
//! and the nodes' own traffic, etcd's peer connections included) with no added
//! delay: the figures are each system's cost plus the same routing. Writes only:
//! every one is durable before it is acknowledged in both (kvraft's node fsyncs its
//! Raft log before it answers; etcd fsyncs its WAL before it commits). Clients send
//! to kvraft's leader (found by asking), and to etcd's member `n1`, which forwards
//! proposals to its leader as etcd's own clients rely on. A second without an answer
//! and a request is sent again (kvraft deduplicates it; such a resend would count in
//! the table as a slow write, and the run says how many operations did not succeed).

use std::time::{Duration, Instant};

use harness::client::{ClientConfig, Clients};
use harness::cluster::{Cluster, ClusterConfig, TimeMode};
use harness::history::Completion;
use harness::network::{Latency, NetConfig};
use harness::suites::kvraft::LeaderProbe;
use harness::suites::kvsrv::KvProtocol;
use harness::{tools, Implementation, TestDir};
use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::FetchAppendInput;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Loads: clients, and writes per client.
const LOADS: [(usize, usize); 3] = [(1, 500), (16, 100), (64, 50)];

struct Row {
    system: &'static str,
    clients: usize,
    ok: usize,
    failed: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k] as f64 / 1e6
}

/// `clients` clients writing `per_client` times each to `targets`.
fn load(cluster: &mut Cluster, targets: &[String], clients: usize, per_client: usize) -> Row {
    let config = ClientConfig {
        attempt_timeout: 1_000_000_000,
        op_timeout: 30_000_000_000,
        think: Latency::Fixed(0),
        targets: targets.to_vec(),
        stall_timeout: 0,
    };
    let mut issued = vec![0; clients];
    let workload = move |client: usize, rng: &mut StdRng| {
        if issued[client] >= per_client {
            return None;
        }
        issued[client] += 1;
        Some(FetchAppendInput::Put {
            key: format!("k{}", rng.gen_range(0..100)),
            value: format!("{client}-{}-{:016}", issued[client], rng.gen::<u64>()),
        })
    };
    let mut driver = Clients::new(KvProtocol, workload, config, clients, 7);
    let wall = Instant::now();
    let limit = cluster.now() + 600_000_000_000;
    cluster.run(&mut driver, limit);
    let secs = wall.elapsed().as_secs_f64();
    let mut latencies: Vec<u64> = (driver.done.iter())
        .filter(|d| matches!(d.completion, Completion::Ok(_)))
        .map(|d| d.ret - d.call)
        .collect();
    latencies.sort_unstable();
    let ok = latencies.len();
    Row {
        system: "",
        clients,
        ok,
        failed: driver.done.len() - ok,
        per_second: ok as f64 / secs,
        p50_ms: if ok > 0 {
            percentile(&latencies, 0.5)
        } else {
            0.0
        },
        p99_ms: if ok > 0 {
            percentile(&latencies, 0.99)
        } else {
            0.0
        },
    }
}

/// Measures one system at every load; `leader` says where its clients send.
fn measure(
    system: &'static str,
    implementation: Implementation,
    leader: fn(&mut Cluster) -> Vec<String>,
) -> Vec<Row> {
    let dir = TestDir::new("kvraft-vs-etcd");
    let mut cluster = Cluster::start(ClusterConfig {
        nodes: 3,
        implementation,
        env: Vec::new(),
        mode: TimeMode::Real,
        seed: 1,
        net: NetConfig {
            latency: Latency::Fixed(0),
            ..NetConfig::reliable()
        },
        dir: dir.join("cluster"),
        step_timeout: Duration::from_secs(10),
    })
    .unwrap_or_else(|e| panic!("cannot start {system}: {e}"));
    let targets = leader(&mut cluster);
    // Warm up: the first writes wait for the cluster to form.
    let warm = load(&mut cluster, &targets, 4, 25);
    assert!(warm.ok > 0, "{system} served nothing while warming up");
    LOADS
        .iter()
        .map(|&(clients, per_client)| {
            let mut row = load(&mut cluster, &targets, clients, per_client);
            row.system = system;
            row
        })
        .collect()
}

fn kvraft_leader(cluster: &mut Cluster) -> Vec<String> {
    let leader = LeaderProbe::find(cluster, 20_000_000_000).expect("kvraft elects a leader");
    vec![leader]
}

fn etcd_member(_: &mut Cluster) -> Vec<String> {
    vec!["n1".to_string()]
}

fn main() {
    // When the run started: figures of a busy machine need their date.
    let started = chrono_free_date();
    let mut rows = measure("kvraft", Implementation::ours("kvraft"), kvraft_leader);
    let etcd = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let with_etcd = tools::runs(&etcd, "--version") && root;
    if with_etcd {
        rows.extend(measure(
            "etcd",
            Implementation::ours("etcd-adapter"),
            etcd_member,
        ));
    } else {
        tools::announce_skip(
            "kvraft_vs_etcd: etcd not measured (needs etcd-server installed and root)",
        );
    }
    println!(
        "\nstarted {started}, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| system | clients | writes ok | not ok | writes/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} |",
            r.system, r.clients, r.ok, r.failed, r.per_second, r.p50_ms, r.p99_ms
        );
    }
    if !with_etcd {
        return;
    }
    println!("\n| clients | kvraft/etcd throughput | kvraft p99 - etcd p99 (ms) | goal met |");
    println!("|---|---|---|---|");
    for &(clients, _) in &LOADS {
        let of = |s: &str| rows.iter().find(|r| r.system == s && r.clients == clients);
        let (Some(k), Some(e)) = (of("kvraft"), of("etcd")) else {
            continue;
        };
        let ratio = k.per_second / e.per_second.max(f64::MIN_POSITIVE);
        let goal = ratio >= 1.0 && k.p99_ms < e.p99_ms;
        println!(
            "| {clients} | {ratio:.2} | {:+.2} | {} |",
            k.p99_ms - e.p99_ms,
            if goal { "yes" } else { "no" }
        );
    }
}

/// The date, from `date -u` (no date crate for one line of output).
fn chrono_free_date() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
