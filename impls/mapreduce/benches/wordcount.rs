//! Word-count benchmark: the sequential reference on one thread, the MapReduce job
//! with 1 and 2 workers, and the coreutils pipeline, on the same generated input.
//!
//! `cargo bench -p mapreduce --bench wordcount` (run it under `flock /tmp/bench.lock`
//! so two benchmarks never share the machine). `MR_BENCH_MIB` sets the input size
//! (256 by default), `MR_BENCH_ROUNDS` the number of interleaved rounds (5),
//! `MR_BENCH_KEEP` a directory to generate the input into and leave there (to
//! profile a job on the same text: `mapreduce --input $MR_BENCH_KEEP/input ...`). The
//! table gives wall time (what the targets are about) and CPU time (user + system of
//! every process of the run), which shows the framework's overhead even when other
//! load on the machine blurs the wall times. The input is generated into a temp dir
//! and removed afterwards (unless `MR_BENCH_KEEP` is set): Zipf-distributed words
//! (exponent 1.0) from a vocabulary of invented Latin words, a share of them
//! accented, with some Greek, Cyrillic and CJK words, digits and punctuation mixed
//! in. Every job's `output.txt` is compared with the reference's.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use specs::wordcount::{count_into, ranked, render_ranked, Counts};

const FILES: usize = 8;
const VOCABULARY: usize = 100_000;

fn vocabulary(rng: &mut StdRng) -> Vec<String> {
    const ACCENTED: [char; 12] = ['é', 'è', 'à', 'ü', 'ö', 'ß', 'ç', 'ñ', 'ø', 'ł', 'ő', 'ș'];
    const FOREIGN: [&str; 6] = ["καλημέρα", "привет", "東京", "мир", "λόγος", "大阪"];
    (0..VOCABULARY)
        .map(|i| {
            if i % 50 == 7 {
                return format!("{}{}", FOREIGN[i % FOREIGN.len()], i % 7);
            }
            let len = rng.gen_range(2..11);
            let mut w: String = (0..len)
                .map(|_| (b'a' + rng.gen_range(0..26)) as char)
                .collect();
            if i % 10 == 3 {
                w.insert(rng.gen_range(0..w.len()), ACCENTED[i % ACCENTED.len()]);
            }
            if i % 13 == 0 {
                w = w.to_uppercase();
            }
            w
        })
        .collect()
}

/// Writes `mib` MiB of Zipf-distributed text into `dir`, in `FILES` files.
fn generate(dir: &Path, mib: usize) -> Vec<PathBuf> {
    let mut rng = StdRng::seed_from_u64(5840);
    let words = vocabulary(&mut rng);
    let mut cdf = Vec::with_capacity(words.len());
    let mut total = 0.0;
    for rank in 1..=words.len() {
        total += 1.0 / rank as f64;
        cdf.push(total);
    }
    let per_file = (mib << 20) / FILES;
    let separators: [&[u8]; 8] = [b" ", b" ", b" ", b", ", b". ", b" 1984 ", b"; ", b" -- "];
    (0..FILES)
        .map(|f| {
            let path = dir.join(format!("text-{f}.txt"));
            let mut out = BufWriter::with_capacity(1 << 20, fs::File::create(&path).unwrap());
            let mut written = 0;
            let mut in_line = 0;
            while written < per_file {
                let x = rng.gen::<f64>() * total;
                let w = words[cdf.partition_point(|&c| c < x).min(words.len() - 1)].as_bytes();
                out.write_all(w).unwrap();
                in_line += 1;
                let sep: &[u8] = if in_line == 12 {
                    in_line = 0;
                    b"\n"
                } else {
                    separators[rng.gen_range(0..separators.len())]
                };
                out.write_all(sep).unwrap();
                written += w.len() + sep.len();
            }
            out.flush().unwrap();
            path
        })
        .collect()
}

/// CPU seconds (user + system) of this process, or of its waited-for descendants.
fn cpu(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid initial value.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut r) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(r.ru_utime) + t(r.ru_stime)
}

/// Wall time and CPU time of one run.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: f64,
}

fn reference(files: &[PathBuf], out: &Path) -> Run {
    let (start, cpu0) = (Instant::now(), cpu(libc::RUSAGE_SELF));
    let mut counts = Counts::default();
    let mut buf = Vec::new();
    for f in files {
        buf.clear();
        fs::File::open(f).unwrap().read_to_end(&mut buf).unwrap();
        count_into(&buf, &mut counts);
    }
    fs::write(out, render_ranked(&ranked(counts.iter()))).unwrap();
    Run {
        wall: start.elapsed(),
        cpu: cpu(libc::RUSAGE_SELF) - cpu0,
    }
}

fn job(input: &Path, output: &Path, nworkers: usize) -> Run {
    let _ = fs::remove_dir_all(output);
    let (start, cpu0) = (Instant::now(), cpu(libc::RUSAGE_CHILDREN));
    let status = Command::new(env!("CARGO_BIN_EXE_mapreduce"))
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(["--nworkers", &nworkers.to_string(), "--nreduce", "8"])
        .status()
        .unwrap();
    let run = Run {
        wall: start.elapsed(),
        cpu: cpu(libc::RUSAGE_CHILDREN) - cpu0,
    };
    assert!(status.success(), "mapreduce failed: {status}");
    run
}

fn coreutils(input: &Path, out: &Path) -> Run {
    let (start, cpu0) = (Instant::now(), cpu(libc::RUSAGE_CHILDREN));
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat {}/*.txt | tr -cs 'A-Za-z' '\\n' | tr A-Z a-z | sort | uniq -c | sort -rn > {}",
            input.display(),
            out.display()
        ))
        .env("LC_ALL", "C")
        .status()
        .unwrap();
    assert!(status.success(), "the coreutils pipeline failed: {status}");
    Run {
        wall: start.elapsed(),
        cpu: cpu(libc::RUSAGE_CHILDREN) - cpu0,
    }
}

/// The shortest and the longest wall time of a run's rounds, and how far apart.
fn spread(name: &str, v: &[Run]) -> String {
    let walls = v.iter().map(|r| r.wall.as_secs_f64());
    let lo = walls.clone().fold(f64::INFINITY, f64::min);
    let hi = walls.fold(0.0, f64::max);
    format!(
        "{name} {lo:.2}-{hi:.2} s ({:.0}% apart)",
        100.0 * (hi / lo - 1.0)
    )
}

/// The run with the median wall time.
fn median(mut v: Vec<Run>) -> Run {
    v.sort_by_key(|r| r.wall);
    v[v.len() / 2]
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let mib: usize = std::env::var("MR_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let rounds: usize = std::env::var("MR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let temp = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("MR_BENCH_KEEP") {
        Some(keep) => PathBuf::from(keep),
        None => temp.path().to_path_buf(),
    };
    let input = dir.join("input");
    let _ = fs::remove_dir_all(&input);
    fs::create_dir_all(&input).unwrap();
    eprintln!("generating {mib} MiB in {}", input.display());
    let files = generate(&input, mib);
    let bytes: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    let ref_out = dir.join("reference.txt");
    let load_before = loadavg();

    // Rounds interleave the three, so a change of load on a shared machine hits
    // each of them alike instead of whichever ran during it.
    let (mut t_ref, mut t_one, mut t_two) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        t_ref.push(reference(&files, &ref_out));
        for (nworkers, times) in [(1, &mut t_one), (2, &mut t_two)] {
            let out = dir.join(format!("out-{nworkers}"));
            times.push(job(&input, &out, nworkers));
            assert!(
                fs::read(out.join("output.txt")).unwrap() == fs::read(&ref_out).unwrap(),
                "the job with {nworkers} workers disagrees with the reference"
            );
        }
    }
    let t_core = coreutils(&input, &dir.join("coreutils.txt"));
    let spreads = [spread("reference", &t_ref), spread("2 workers", &t_two)];
    let (t_ref, t_one, t_two) = (median(t_ref), median(t_one), median(t_two));

    let mb = bytes as f64 / (1 << 20) as f64;
    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "word count on {mb:.0} MiB ({FILES} files, Zipf over {VOCABULARY} words); {cores} cores, {cpu_model}"
    );
    println!(
        "median of {rounds} interleaved rounds, coreutils 1 run; load average {load_before} before, {} after\n",
        loadavg()
    );
    println!("| run | wall (s) | MiB/s | speed vs reference | CPU (s) |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, r: Run| {
        println!(
            "| {name} | {:.2} | {:.0} | {:.2}x | {:.2} |",
            r.wall.as_secs_f64(),
            mb / r.wall.as_secs_f64(),
            t_ref.wall.as_secs_f64() / r.wall.as_secs_f64(),
            r.cpu
        );
    };
    row("sequential reference (specs::wordcount, 1 thread)", t_ref);
    row("mapreduce --nworkers 1 --nreduce 8", t_one);
    row("mapreduce --nworkers 2 --nreduce 8", t_two);
    row(
        "coreutils: tr | tr | sort | uniq -c | sort -rn (LC_ALL=C)",
        t_core,
    );
    let w2 = t_two.wall.as_secs_f64();
    println!(
        "\n2 workers vs reference: {:.2}x (target >= 1.6x); vs coreutils: {:.1}x (target >= 10x)",
        t_ref.wall.as_secs_f64() / w2,
        t_core.wall.as_secs_f64() / w2
    );
    println!(
        "2 workers: {:.0} MiB/s (target >= 400 MiB/s); vs coreutils {:.1}x (target since 2026-12: >= 15x)",
        mb / w2,
        t_core.wall.as_secs_f64() / w2
    );
    // The bound the wall-time ratio is measured against: the job's CPU time spread
    // perfectly over two free cores. A run below target with the bound above it lost
    // its time to the machine (cores shared, or a slower moment), not to the job.
    let cpu_ratio = t_two.cpu / t_ref.cpu;
    let usable = cores.clamp(1, 2);
    println!(
        "2 workers' CPU: {cpu_ratio:.2}x the reference's, so on {usable} free cores at most {:.2}x the reference (target 1.6x)",
        usable as f64 / cpu_ratio.max(f64::MIN_POSITIVE)
    );
    // How steady the machine was: the same work in every round, so a wide spread
    // is the host's speed moving during the run, which a median only partly hides.
    println!("rounds: {}", spreads.join(", "));
}
