//! The checker beside porcupine on porcupine's own public histories.
//!
//! `cargo bench -p checkers --bench porcupine` (with `DSCONF_DATA` pointing at the
//! shared data directory) checks each group of files on one thread, several rounds,
//! and prints the median total per group next to porcupine's figure for the same
//! group (Go, latest master, measured on a machine of this class), the speed-up, and
//! whether every verdict matched `verdicts.tsv`. Parsing is timed apart from checking,
//! as porcupine's figures are for checking alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checkers::{check, formats, CheckOptions, ModelHistory, Verdict};
use specs::Model;

// The same allocator as the lincheck binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;

struct Group {
    name: &'static str,
    porcupine: Duration,
    files: Vec<(String, bool)>,
    partition: bool,
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// (median check time, parse time, verdicts all right) for one group.
fn run<M: Model>(model: &M, dir: &Path, group: &Group) -> (Duration, Duration, bool) {
    let parse_start = Instant::now();
    let histories: Vec<(ModelHistory<M>, bool)> = group
        .files
        .iter()
        .map(|(file, ok)| {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            (formats::parse(model, &text).unwrap().1, *ok)
        })
        .collect();
    let parse = parse_start.elapsed();
    let options = CheckOptions {
        partition: group.partition,
        threads: Some(1),
        timeout: None,
    };
    let mut right = true;
    let mut totals = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for (history, ok) in &histories {
            let verdict = check(model, history, &options).verdict;
            right &= verdict == if *ok { Verdict::Ok } else { Verdict::Illegal };
        }
        totals.push(start.elapsed());
    }
    (median(totals), parse, right)
}

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DSCONF_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let dir = dir.join("linearizability/porcupine");
    dir.join("verdicts.tsv").is_file().then_some(dir)
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let Some(dir) = data_dir() else {
        eprintln!(
            "set DSCONF_DATA to the shared data directory (holding linearizability/porcupine)"
        );
        std::process::exit(2);
    };
    let rows: Vec<(String, bool, String)> = std::fs::read_to_string(dir.join("verdicts.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1] == "true", f[2].to_string())
        })
        .collect();
    let pick = |pred: &dyn Fn(&str) -> bool| -> Vec<(String, bool)> {
        rows.iter()
            .filter(|(f, _, _)| pred(f))
            .map(|(f, ok, _)| (f.clone(), *ok))
            .collect()
    };
    let groups = [
        Group {
            name: "etcd, 103 logs (cas-register)",
            porcupine: Duration::from_millis(480),
            files: pick(&|f| f.starts_with("jepsen/")),
            partition: true,
        },
        Group {
            name: "kv, 6 logs, by key",
            porcupine: Duration::from_millis(200),
            files: pick(&|f| f.starts_with("kv/")),
            partition: true,
        },
        Group {
            name: "kv c10-ok, unsplit",
            porcupine: Duration::from_millis(2400),
            files: pick(&|f| f == "kv/c10-ok.txt"),
            partition: false,
        },
        Group {
            name: "kv c10-bad, unsplit",
            porcupine: Duration::from_millis(3000),
            files: pick(&|f| f == "kv/c10-bad.txt"),
            partition: false,
        },
    ];
    println!(
        "{:<32} {:>12} {:>12} {:>9} {:>10} {:>9}",
        "group (one thread)", "porcupine", "lincheck", "speed-up", "parse", "verdicts"
    );
    for group in &groups {
        let (time, parse, right) = if group.name.starts_with("etcd") {
            run(&specs::CasRegister, &dir, group)
        } else {
            run(&specs::Kv, &dir, group)
        };
        println!(
            "{:<32} {:>9.1} ms {:>9.1} ms {:>8.1}x {:>7.1} ms {:>9}",
            group.name,
            group.porcupine.as_secs_f64() * 1e3,
            time.as_secs_f64() * 1e3,
            group.porcupine.as_secs_f64() / time.as_secs_f64(),
            parse.as_secs_f64() * 1e3,
            if right { "all match" } else { "MISMATCH" }
        );
    }
    println!("median of {ROUNDS} rounds; porcupine: Go, latest master, same machine class, summed over files");
}
