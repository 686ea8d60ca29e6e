//! `mfs-bench`: single-block writes per second through the server, from 1 and from 8
//! concurrent clients, beside the raw rate of `write` + `fdatasync` on the same disk.
//!
//! The raw rate is the ceiling for one client: every acknowledged write costs at least
//! one sync. Eight clients beat it only if the server shares one sync among the
//! requests waiting for it (group commit). Run it alone (`flock /tmp/bench.lock`), with
//! a release build.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mfs::client::{Client, Options};
use specs::mfs::wire::zero_block;

struct Args {
    dir: PathBuf,
    seconds: f64,
    rounds: usize,
    server: PathBuf,
}

fn parse_args() -> Result<Args> {
    let exe = std::env::current_exe()?;
    let mut args = Args {
        dir: std::env::temp_dir(),
        seconds: 0.5,
        rounds: 20,
        server: exe.with_file_name("mfs-server"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--dir" => args.dir = PathBuf::from(value("--dir")?),
            "--seconds" => {
                args.seconds = value("--seconds")?
                    .parse()
                    .context("--seconds takes a number")?
            }
            "--rounds" => {
                args.rounds = value("--rounds")?
                    .parse()
                    .context("--rounds takes a whole number")?
            }
            "--server" => args.server = PathBuf::from(value("--server")?),
            "-h" | "--help" => {
                println!(
                    "usage: mfs-bench [--dir DIR] [--seconds S] [--rounds N] [--server PATH]\n  \
                     DIR: where the image and the raw-sync file go (default: the temp dir)\n  \
                     N times in turn, each case runs S seconds; the table shows medians\n  \
                     (defaults: S = 0.5, N = 20)"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(args)
}

/// `write` of one block at the end of a file, then `fdatasync`, as fast as possible.
fn raw_rate(dir: &Path, seconds: f64) -> Result<f64> {
    let path = dir.join("mfs-bench-raw.dat");
    let mut file: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = [7u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        file.write_all(&block)?;
        file.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(binary: &Path, image: &Path) -> Result<Server> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(binary)
        .arg(port.to_string())
        .arg(image)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let server = Server { child, port };
    let mut client = Client::connect(
        "127.0.0.1",
        port,
        Options {
            timeout: Duration::from_millis(50),
            retry: false,
        },
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.stat(0).is_err() {
        if Instant::now() > deadline {
            bail!("{} did not answer within 10 s", binary.display());
        }
    }
    Ok(server)
}

/// A server with one file per client, kept running across slices.
struct Target {
    server: Server,
    image: PathBuf,
    inums: Vec<i32>,
}

fn target(args: &Args, clients: usize) -> Result<Target> {
    let image = args.dir.join(format!("mfs-bench-{clients}.img"));
    let _ = std::fs::remove_file(&image);
    let server = start_server(&args.server, &image)?;
    let mut setup = Client::connect("127.0.0.1", server.port, Options::default())?;
    let mut inums = Vec::new();
    for c in 0..clients {
        let name = format!("file{c}");
        setup.creat(0, 1, name.as_bytes())?;
        inums.push(setup.lookup(0, name.as_bytes())?);
    }
    Ok(Target {
        server,
        image,
        inums,
    })
}

impl Target {
    fn stop(mut self) -> Result<()> {
        Client::connect("127.0.0.1", self.server.port, Options::default())?.shutdown()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.server.child.try_wait()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::remove_file(&self.image)?;
        Ok(())
    }
}

/// Requests per second for `seconds`, one thread per file of `t`, each writing blocks
/// of its own file (or, with `stat_only`, asking for its Stat, which needs no sync).
fn served(t: &Target, seconds: f64, stat_only: bool) -> Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = t
        .inums
        .iter()
        .map(|&inum| {
            let (stop, done, port) = (stop.clone(), done.clone(), t.server.port);
            std::thread::spawn(move || -> Result<()> {
                let mut client = Client::connect("127.0.0.1", port, Options::default())?;
                let mut data = zero_block();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    data[..8].copy_from_slice(&i.to_le_bytes());
                    if stat_only {
                        client.stat(inum)?.context("a stat failed")?;
                    } else if client.write(inum, (i % 14) as i32, data.clone())? != 0 {
                        bail!("a write failed");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread")?;
    }
    Ok(n as f64 / elapsed)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.dir)?;
    // Sync latency on a shared machine swings by several times within seconds, so the
    // cases take turns in short slices and each is summarised by its median slice: a
    // burst of outside load falls on all of them alike.
    let one_client = target(&args, 1)?;
    let eight_clients = target(&args, 8)?;
    let (mut raws, mut ones, mut eights, mut stats) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds.max(1) {
        raws.push(raw_rate(&args.dir, args.seconds)?);
        ones.push(served(&one_client, args.seconds, false)?);
        eights.push(served(&eight_clients, args.seconds, false)?);
        stats.push(served(&one_client, args.seconds, true)?);
        eprintln!(
            "slice {round}: raw {:.0}/s, 1 client {:.0}/s, 8 clients {:.0}/s, 1 client Stat {:.0}/s",
            raws[round - 1],
            ones[round - 1],
            eights[round - 1],
            stats[round - 1]
        );
    }
    one_client.stop()?;
    eight_clients.stop()?;
    let (raw, one, eight, stat) = (median(raws), median(ones), median(eights), median(stats));
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "mfs-bench: median of {} interleaved slice(s) of {} s per case, dir {}, {cpus} CPU(s), {}",
        args.rounds,
        args.seconds,
        args.dir.display(),
        cpu_model()
    );
    println!();
    println!("| case | writes/s | vs raw fsync | vs 1 client |");
    println!("|---|---:|---:|---:|");
    println!("| raw write + fdatasync | {raw:.0} | 100% | |");
    println!(
        "| MFS, 1 client | {one:.0} | {:.0}% | 1.0x |",
        100.0 * one / raw
    );
    println!(
        "| MFS, 8 clients | {eight:.0} | {:.0}% | {:.1}x |",
        100.0 * eight / raw,
        eight / one
    );
    println!(
        "| MFS, 1 client, Stat (round trip, no sync) | {stat:.0} | {:.0}% | |",
        100.0 * stat / raw
    );
    // One client's write is at best a round trip plus one sync, one after the other.
    let bound = 1.0 / (1.0 / raw + 1.0 / stat);
    println!(
        "| bound for 1 client: 1 / (1/raw + 1/Stat) | {bound:.0} | {:.0}% | |",
        100.0 * bound / raw
    );
    println!();
    println!(
        "1 client = {:.1}% of the bound (sync {:.1} us + round trip {:.1} us)",
        100.0 * one / bound,
        1e6 / raw,
        1e6 / stat
    );
    println!(
        "targets: 1 client >= 95% of the bound: {}; 8 clients >= 3x 1 client: {}",
        if one >= 0.95 * bound {
            "met"
        } else {
            "NOT met"
        },
        if eight >= 3.0 * one { "met" } else { "NOT met" }
    );
    Ok(())
}
