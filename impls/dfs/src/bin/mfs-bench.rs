//! `mfs-bench`: single-block writes per second through the server, from 1 and from 8
//! concurrent clients, beside the raw rate of `write` + `fdatasync` on the same disk.
//!
//! The raw rate is the ceiling for one client: every acknowledged write costs at least
//! one sync. Eight clients beat it only if the server shares one sync among the
//! requests waiting for it (group commit). Run it alone (`flock /tmp/bench.lock`), with
//! a release build.
//!
//! The floor server (`mfs-bench --floor-server PORT FILE`, started by the benchmark
//! itself) is the least any server that syncs before it replies can do: a process that
//! receives a Write's datagram, appends as many bytes as a Write's record, calls
//! `fdatasync` and sends a reply of a reply's size, with no file system behind it. It
//! measures a sync and a round trip together, as one client's write has them, where
//! the bounds add up a sync and a round trip measured apart: on a virtual machine the
//! two are not independent (a client that slept through a sync wakes more slowly than
//! one that waited a round trip), and only a measurement of the pair shows it.
//!
//! Written ahead: a sync after an append must also make the file's new size durable,
//! which costs more than a sync after writing over bytes the file already holds (the
//! server writes its log into zeros written ahead of it, `mfs::server::Image`). The
//! rows marked *written ahead* measure the raw sync and the floor server that way too
//! (`--floor-server PORT FILE --ahead`), so the server is also compared with the
//! least that a server writing ahead can do.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mfs::client::{Client, Options};
use mfs::core::Fs;
use specs::mfs::wire::{decode_request, encode_reply, encode_request, zero_block, Reply, Request};

struct Args {
    dir: PathBuf,
    seconds: f64,
    rounds: usize,
    server: PathBuf,
}

fn parse_args() -> Result<Args> {
    let exe = std::env::current_exe()?;
    if std::env::args().nth(1).as_deref() == Some("--floor-server") {
        let mut it = std::env::args().skip(2);
        let (port, file) = (it.next(), it.next());
        let port = port
            .and_then(|p| p.parse().ok())
            .context("--floor-server takes a port and a file")?;
        let ahead = match it.next().as_deref() {
            None => false,
            Some("--ahead") => true,
            Some(other) => bail!("--floor-server PORT FILE takes only --ahead, not {other:?}"),
        };
        floor_server(
            port,
            &PathBuf::from(file.context("--floor-server takes a file")?),
            ahead,
        )?;
        std::process::exit(0);
    }
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

/// Bytes of zeros a written-ahead file holds (synced before any timing), which its
/// writes go round: any write lands on bytes the file already holds.
const AHEAD_BYTES: u64 = 8 << 20;

/// A file for writes of `size` bytes: empty, or `AHEAD_BYTES` of synced zeros.
struct Sink {
    file: File,
    size: u64,
    ahead: bool,
    at: u64,
}

impl Sink {
    fn create(path: &Path, size: usize, ahead: bool) -> Result<Sink> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        if ahead {
            file.write_all(&vec![0; AHEAD_BYTES as usize])?;
            file.sync_all()?;
        }
        Ok(Sink {
            file,
            size: size as u64,
            ahead,
            at: 0,
        })
    }

    /// Writes `bytes` at the end of the file (or at the next place in its zeros) and
    /// fdatasyncs it.
    fn write_synced(&mut self, bytes: &[u8]) -> Result<()> {
        if self.ahead {
            if self.at + self.size > AHEAD_BYTES {
                self.at = 0;
            }
            self.file.write_all_at(bytes, self.at)?;
            self.at += self.size;
        } else {
            self.file.write_all(bytes)?;
        }
        self.file.sync_data()?;
        Ok(())
    }
}

/// Appends of `size` bytes at the end of a file (or, `ahead`, writes over zeros the
/// file already holds), each followed by `fdatasync`, as fast as possible. With
/// `size` = 4096 every append fills one page; with the size of a Write's record (more
/// than a block) appends straddle pages as the server's log does.
fn raw_rate(dir: &Path, seconds: f64, size: usize, ahead: bool) -> Result<f64> {
    let path = dir.join("mfs-bench-raw.dat");
    let mut sink = Sink::create(&path, size, ahead)?;
    let block = vec![7u8; size];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        sink.write_synced(&block)?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(sink);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// The floor server's loop: each datagram's record appended (or, `ahead`, written over
/// zeros written ahead) and synced before its reply, one at a time, until the client's
/// shutdown datagram (an empty one).
fn floor_server(port: u16, path: &Path, ahead: bool) -> Result<()> {
    let socket = UdpSocket::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot bind UDP port {port}"))?;
    let record = vec![7u8; write_record_bytes()?];
    let mut sink = Sink::create(path, record.len(), ahead)?;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let (header, _) = decode_request(&buf[..n])
            .map_err(|e| anyhow::anyhow!("the floor server got a bad datagram: {e:?}"))?;
        sink.write_synced(&record)?;
        socket.send_to(&encode_reply(&header, &Reply::Ok(0)), from)?;
    }
}

/// The floor server, started from this binary, and its file.
struct Floor {
    server: Server,
    file: PathBuf,
}

fn start_floor(dir: &Path, ahead: bool) -> Result<Floor> {
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let file = dir.join(if ahead {
        "mfs-bench-floor-ahead.dat"
    } else {
        "mfs-bench-floor.dat"
    });
    let child = Command::new(std::env::current_exe()?)
        .arg("--floor-server")
        .arg(port.to_string())
        .arg(&file)
        .args(ahead.then_some("--ahead"))
        .stdin(Stdio::null())
        .spawn()
        .context("cannot start the floor server")?;
    let floor = Floor {
        server: Server { child, port },
        file,
    };
    // Up once it answers; until it has bound its port, requests are lost or refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    while floor_rate(&floor, 0.0, Duration::from_millis(50)).is_err() {
        if Instant::now() > deadline {
            bail!("the floor server did not answer within 10 s");
        }
    }
    Ok(floor)
}

impl Floor {
    fn stop(mut self) -> Result<()> {
        UdpSocket::bind("127.0.0.1:0")?.send_to(&[], ("127.0.0.1", self.server.port))?;
        self.server.await_exit()?;
        std::fs::remove_file(&self.file)?;
        Ok(())
    }
}

/// Writes per second from one client of the floor server: the same datagram a
/// single-block Write sends, each waiting for its reply.
fn floor_rate(floor: &Floor, seconds: f64, wait: Duration) -> Result<f64> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(("127.0.0.1", floor.server.port))?;
    socket.set_read_timeout(Some(wait))?;
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    let mut n = 0u64;
    while n == 0 || start.elapsed().as_secs_f64() < seconds {
        let request = Request::Write {
            inum: 1,
            block: (n % 14) as i32,
            data: zero_block(),
        };
        socket.send(&encode_request(1, n, &request))?;
        socket
            .recv(&mut buf)
            .context("the floor server did not reply")?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Bytes one single-block Write appends to the log: its record (header, the block, the
/// inode, the inode map piece), as the server's core builds it.
fn write_record_bytes() -> Result<usize> {
    // The image in memory, as the server would have it on disk.
    let mut fs = Fs::fresh();
    let mut image = vec![0u8; mfs::format::CR_SIZE];
    image.extend_from_slice(&fs.take_pending().context("no root record")?.1);
    let created = fs.apply(
        &image,
        &Request::Creat {
            pinum: 0,
            kind: 1,
            name: b"f".to_vec(),
        },
    );
    if created != Reply::Ok(0) {
        bail!("the core refused to create a file: {created:?}");
    }
    image.extend_from_slice(&fs.take_pending().context("a Creat left no record")?.1);
    let reply = fs.apply(
        &image,
        &Request::Write {
            inum: 1,
            block: 0,
            data: zero_block(),
        },
    );
    if reply != Reply::Ok(0) {
        bail!("the core refused a single-block Write: {reply:?}");
    }
    Ok(fs.take_pending().context("a Write left no record")?.1.len())
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// After it was told to shut down: waits up to 5 s for it to exit (dropping it
    /// kills it if it has not).
    fn await_exit(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
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
        let inum = setup.lookup(0, name.as_bytes())?;
        // Block 0 exists from the start, for the Read slices.
        if setup.write(inum, 0, zero_block())? != 0 {
            bail!("the setup write of {name} failed");
        }
        inums.push(inum);
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
        self.server.await_exit()?;
        std::fs::remove_file(&self.image)?;
        Ok(())
    }
}

/// What the clients of a slice ask for.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    /// A block of its own file: a change, so a sync.
    Write,
    /// Its file's Stat: a round trip of small datagrams, no sync.
    Stat,
    /// Block 0 of its file: a round trip that carries a block, as a Write's does (the
    /// other way), no sync.
    Read,
}

/// Requests per second for `seconds`, one thread per file of `t`, each asking `op` of
/// its own file.
fn served(t: &Target, seconds: f64, op: Op) -> Result<f64> {
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
                    match op {
                        Op::Stat => {
                            client.stat(inum)?.context("a stat failed")?;
                        }
                        Op::Read => {
                            client.read(inum, 0)?.context("a read failed")?;
                        }
                        Op::Write => {
                            if client.write(inum, (i % 14) as i32, data.clone())? != 0 {
                                bail!("a write failed");
                            }
                        }
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
    let record = write_record_bytes()?;
    // Sync latency on a shared machine swings by several times within seconds, so the
    // cases take turns in short slices and each is summarised by its median slice: a
    // burst of outside load falls on all of them alike.
    let one_client = target(&args, 1)?;
    let eight_clients = target(&args, 8)?;
    let floor = start_floor(&args.dir, false)?;
    let floor_ahead = start_floor(&args.dir, true)?;
    let (mut floors, mut floors_ahead, mut records_ahead) = (Vec::new(), Vec::new(), Vec::new());
    let (mut raws, mut records, mut ones, mut eights, mut stats, mut reads) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for round in 1..=args.rounds.max(1) {
        raws.push(raw_rate(&args.dir, args.seconds, 4096, false)?);
        records.push(raw_rate(&args.dir, args.seconds, record, false)?);
        records_ahead.push(raw_rate(&args.dir, args.seconds, record, true)?);
        ones.push(served(&one_client, args.seconds, Op::Write)?);
        eights.push(served(&eight_clients, args.seconds, Op::Write)?);
        stats.push(served(&one_client, args.seconds, Op::Stat)?);
        reads.push(served(&one_client, args.seconds, Op::Read)?);
        floors.push(floor_rate(&floor, args.seconds, Duration::from_secs(10))?);
        floors_ahead.push(floor_rate(
            &floor_ahead,
            args.seconds,
            Duration::from_secs(10),
        )?);
        let r = round - 1;
        eprintln!(
            "slice {round}: raw {:.0}/s, raw {record} B {:.0}/s, raw {record} B ahead {:.0}/s, \
             1 client {:.0}/s, 8 clients {:.0}/s, 1 client Stat {:.0}/s, 1 client Read {:.0}/s, \
             floor {:.0}/s, floor ahead {:.0}/s",
            raws[r],
            records[r],
            records_ahead[r],
            ones[r],
            eights[r],
            stats[r],
            reads[r],
            floors[r],
            floors_ahead[r]
        );
    }
    one_client.stop()?;
    eight_clients.stop()?;
    floor.stop()?;
    floor_ahead.stop()?;
    let floor = median(floors);
    let floor_ahead = median(floors_ahead);
    let rec_ahead = median(records_ahead);
    let (raw, rec, one, eight, stat, read) = (
        median(raws),
        median(records),
        median(ones),
        median(eights),
        median(stats),
        median(reads),
    );
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
        "| raw write of a Write's record ({record} B) + fdatasync | {rec:.0} | {:.0}% | |",
        100.0 * rec / raw
    );
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
    println!(
        "| MFS, 1 client, Read (round trip with a block, no sync) | {read:.0} | {:.0}% | |",
        100.0 * read / raw
    );
    // One client's write is at best a round trip plus one sync, one after the other.
    let bound = 1.0 / (1.0 / raw + 1.0 / stat);
    println!(
        "| bound for 1 client: 1 / (1/raw + 1/Stat) | {bound:.0} | {:.0}% | |",
        100.0 * bound / raw
    );
    // The same, like with like: a Write appends its record (more than one block, so
    // across pages) and its round trip carries a block, where the raw case appends one
    // page and Stat's datagrams are small.
    let fair = 1.0 / (1.0 / rec + 1.0 / read);
    println!(
        "| bound for 1 client, like with like: 1 / (1/raw {record} B + 1/Read) | {fair:.0} | {:.0}% | |",
        100.0 * fair / raw
    );
    println!(
        "| floor: a server that only appends {record} B and syncs per request, 1 client | {floor:.0} | {:.0}% | |",
        100.0 * floor / raw
    );
    println!(
        "| raw write of a Write's record ({record} B) over zeros written ahead + fdatasync | {rec_ahead:.0} | {:.0}% | |",
        100.0 * rec_ahead / raw
    );
    let fair_ahead = 1.0 / (1.0 / rec_ahead + 1.0 / read);
    println!(
        "| bound for 1 client, written ahead: 1 / (1/raw {record} B ahead + 1/Read) | {fair_ahead:.0} | {:.0}% | |",
        100.0 * fair_ahead / raw
    );
    println!(
        "| floor, written ahead: a server that only writes {record} B over zeros written ahead and syncs per request, 1 client | {floor_ahead:.0} | {:.0}% | |",
        100.0 * floor_ahead / raw
    );
    println!();
    println!(
        "1 client = {:.1}% of the bound (sync {:.1} us + round trip {:.1} us)",
        100.0 * one / bound,
        1e6 / raw,
        1e6 / stat
    );
    println!(
        "1 client = {:.1}% of the like-with-like bound (sync of {record} B {:.1} us + round trip with a block {:.1} us)",
        100.0 * one / fair,
        1e6 / rec,
        1e6 / read
    );
    println!(
        "1 client = {:.1}% of the floor server (a sync and a round trip measured together: {:.1} us)",
        100.0 * one / floor,
        1e6 / floor
    );
    println!(
        "1 client = {:.1}% of the written-ahead bound (sync of {record} B over zeros {:.1} us + round trip with a block {:.1} us)",
        100.0 * one / fair_ahead,
        1e6 / rec_ahead,
        1e6 / read
    );
    println!(
        "1 client = {:.1}% of the written-ahead floor server (a sync over zeros and a round trip measured together: {:.1} us)",
        100.0 * one / floor_ahead,
        1e6 / floor_ahead
    );
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "targets: 1 client >= 95% of the like-with-like bound: {}; 8 clients >= 3x 1 client: {}; \
         1 client >= 95% of the floor server: {}",
        verdict(one >= 0.95 * fair),
        verdict(eight >= 3.0 * one),
        verdict(one >= 0.95 * floor)
    );
    Ok(())
}
