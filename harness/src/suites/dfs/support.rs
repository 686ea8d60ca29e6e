//! What the MFS tests share: launching a server, a client that speaks the wire
//! protocol, the tree of a file system as comparable lines, a random workload, crash
//! and power-loss points, and the relay that loses one datagram.
//!
//! Errors are typed [`Failure`]s, so each says which property it is about: a reply the
//! spec disagrees with ([`SPEC`]), a server that stops answering ([`PROGRESS`]), an
//! acknowledged change missing after a crash ([`DURABILITY`]), an image that does not
//! pass the checker or boot ([`RECOVERY`]).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use specs::mfs::wire::{
    decode_reply, describe_block, encode_request, zero_block, Block, Reply, Request, MAX_DATAGRAM,
};
use specs::mfs::{FsSpec, BLOCK_SIZE, DIRECT_BLOCKS, DIRENTS_PER_BLOCK, DIRENT_SIZE, NAME_FIELD};

use super::{DURABILITY, FSCK, RECOVERY, SPEC};
use crate::implementation::Implementation;
use crate::lazyfs::LazyFs;
use crate::suite::property::{HARNESS, PROGRESS, PROTOCOL};
use crate::suite::{Context, Evidence, Failure};
use crate::{Port, Process};

/// A failure of `property`.
pub fn failure(property: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        property,
        message: message.into(),
    }
}

/// `f` with `prefix` in front of its message.
pub fn within(prefix: impl std::fmt::Display, f: Failure) -> Failure {
    failure(f.property, format!("{prefix}: {}", f.message))
}

/// The value, or the test stops with the failure.
pub fn ok<T>(r: Result<T, Failure>) -> T {
    r.unwrap_or_else(|f| crate::suite::fail(f.property, f.message))
}

/// Where the image checker comes from, or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum FsckPlan {
    /// The checker named with `DFS_FSCK` (or `--impl fsck=CMD`).
    Named,
    /// Our `mfsck`, for our server.
    Ours,
    /// No image check; the reason is printed loudly.
    Skipped(String),
}

/// The plan for a checker named `named` (`None`: nobody named one, so the suite's
/// default, our `mfsck`) against our server or another.
pub fn fsck_plan(named: Option<&str>, server_is_ours: bool) -> FsckPlan {
    match named.map(str::trim) {
        Some("none") => FsckPlan::Skipped(
            "image check after crashes: DFS_FSCK=none (or --impl fsck=none), so no image is \
             checked (restarted servers are still compared with the spec)"
                .into(),
        ),
        Some(cmd) if !cmd.is_empty() => FsckPlan::Named,
        _ if server_is_ours => FsckPlan::Ours,
        _ => FsckPlan::Skipped(
            "image check after crashes: the server under test is not ours and DFS_FSCK names \
             no checker for its image format (set DFS_FSCK=\"CMD\" or --impl fsck=CMD, run as \
             CMD IMAGE, exit 0 = consistent)"
                .into(),
        ),
    }
}

/// The image checker run after crashes: the context's `fsck` program (`DFS_FSCK`,
/// `--impl fsck=CMD`; `none` to skip) or, by default, our `mfsck` when the server is
/// ours. A foreign server's image is in its own format, so it is checked only if its
/// author names a checker. A skipped check is announced.
pub fn fsck_for(cx: &Context, server: &Implementation) -> Option<Implementation> {
    let fsck = cx.program(FSCK);
    let named = (!fsck.is_ours()).then(|| fsck.command_line());
    match fsck_plan(named.as_deref(), server.is_ours()) {
        FsckPlan::Named | FsckPlan::Ours => Some(fsck),
        FsckPlan::Skipped(why) => {
            crate::tools::announce_skip(&why);
            None
        }
    }
}

/// How long a server may take to answer its first request before the test gives up
/// on it as hung. A guard only: a start that fails is seen at once by the exit.
const START_GUARD: Duration = Duration::from_secs(60);

/// A running server and where its output goes.
pub struct Server {
    pub process: Process,
    pub addr: SocketAddr,
    /// From spawn to the first answer, measured: the baseline for this server's limits.
    pub startup: Duration,
    _port: Port,
    log: PathBuf,
}

/// How the start of a server on an image ended.
pub enum Boot {
    /// It answered a request.
    Serving(Server),
    /// It exited first, with this status, having printed this (the end of its log).
    Exited(std::process::ExitStatus, String),
    /// It neither answered nor exited within the start guard: what it printed.
    Hung(String),
}

impl Server {
    /// Starts `imp` on `image` and waits until it answers a Stat of the root. Its log
    /// goes into `dir` and, for a failing run, the evidence.
    pub fn start(
        imp: &Implementation,
        dir: &Path,
        image: &Path,
        evidence: &Evidence,
    ) -> Result<Server, String> {
        match Server::boot(imp, dir, image, evidence)? {
            Boot::Serving(server) => Ok(server),
            Boot::Exited(status, log) => Err(format!(
                "{} exited ({status}) instead of serving {}:\n{log}",
                imp.describe(),
                image.display()
            )),
            Boot::Hung(log) => Err(format!(
                "{} did not answer within {START_GUARD:?}, and did not exit:\n{log}",
                imp.describe()
            )),
        }
    }

    /// Starts `imp` on `image` and says how the start ended: serving, exited or hung
    /// (an error: the harness could not start it at all).
    pub fn boot(
        imp: &Implementation,
        dir: &Path,
        image: &Path,
        evidence: &Evidence,
    ) -> Result<Boot, String> {
        let port = Port::reserve().map_err(|e| e.to_string())?;
        let log = dir.join(format!("server-{}.log", port.number()));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        evidence.copy(&log);
        let mut cmd = imp.command();
        cmd.arg(port.number().to_string())
            .arg(image)
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .stdin(Stdio::null());
        let spawned = Instant::now();
        let process = Process::spawn("mfs server", &mut cmd)
            .map_err(|e| format!("cannot start {}: {e}", imp.describe()))?;
        let addr: SocketAddr = port.addr().parse().unwrap();
        let mut server = Server {
            process,
            addr,
            startup: Duration::ZERO,
            _port: port,
            log,
        };
        let mut conn = Conn::new(addr);
        conn.attempt = Duration::from_millis(20);
        // Only a guard against a server that hangs without exiting (an exit is seen at
        // once); nothing is judged by how long a start takes.
        let deadline = Instant::now() + START_GUARD;
        loop {
            if let Ok(Some(status)) = server.process.try_wait() {
                return Ok(Boot::Exited(status, server.log_tail()));
            }
            if conn.call_until(&Request::Stat { inum: 0 }, || true).is_ok() {
                server.startup = spawned.elapsed();
                return Ok(Boot::Serving(server));
            }
            if Instant::now() > deadline {
                return Ok(Boot::Hung(server.log_tail()));
            }
        }
    }

    /// The first start of a test: a server that does not come up has made no progress.
    pub fn first(cx: &Context, image: &Path) -> Server {
        Server::start(&cx.implementation(), cx.dir(), image, &cx.evidence()).unwrap_or_else(|e| {
            crate::suite::fail(
                PROGRESS,
                format!("no progress: the server never answered its first request: {e}"),
            )
        })
    }

    pub fn conn(&self) -> Conn {
        Conn::new(self.addr)
    }

    /// Waits for the server to exit (after a Shutdown). The limit is relative to this
    /// server's own measured startup: 20 times it, and at least 5 s.
    pub fn wait_exit(&mut self) -> Result<std::process::ExitStatus, String> {
        let limit = (self.startup * 20).max(Duration::from_secs(5));
        match self.process.wait_timeout(limit) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(format!(
                "the server is still running {limit:?} after Shutdown (20 times its startup \
                 of {:?}):\n{}",
                self.startup,
                self.log_tail()
            )),
            Err(e) => Err(format!("waiting for the server: {e}")),
        }
    }

    /// The slowest of 20 Stat round trips, measured now: the baseline for waits on
    /// replies that are not retried.
    pub fn slowest_round_trip(&self) -> Result<Duration, Failure> {
        let mut c = self.conn();
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            c.call(&Request::Stat { inum: 0 })?;
            slowest = slowest.max(t.elapsed());
        }
        Ok(slowest)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// A client speaking the wire protocol: one request at a time, resent every `attempt`
/// until answered, for at most `budget`.
pub struct Conn {
    socket: UdpSocket,
    id: u64,
    seq: u64,
    pub attempt: Duration,
    pub budget: Duration,
}

impl Conn {
    pub fn new(server: SocketAddr) -> Conn {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
        socket.connect(server).expect("connect a UDP socket");
        Conn {
            socket,
            id: rand::random(),
            seq: 0,
            attempt: Duration::from_millis(100),
            budget: Duration::from_secs(15),
        }
    }

    /// The reply to `request`; a server that leaves it unanswered for the whole budget
    /// of retries has stopped making progress.
    pub fn call(&mut self, request: &Request) -> Result<Reply, Failure> {
        self.call_unless(request, || false)
    }

    /// Like [`Conn::call`], but also gives up as soon as `stop` holds after an
    /// unanswered attempt.
    pub fn call_unless(
        &mut self,
        request: &Request,
        stop: impl Fn() -> bool,
    ) -> Result<Reply, Failure> {
        let give_up = Instant::now() + self.budget;
        let budget = self.budget;
        self.call_until(request, || stop() || Instant::now() > give_up)
            .map_err(|f| failure(f.property, format!("{} ({budget:?} of retries)", f.message)))
    }

    /// Like [`Conn::call`], but after each unanswered attempt asks `give_up`.
    pub fn call_until(
        &mut self,
        request: &Request,
        give_up: impl Fn() -> bool,
    ) -> Result<Reply, Failure> {
        self.seq += 1;
        let datagram = encode_request(self.id, self.seq, request);
        let mut buf = vec![0u8; MAX_DATAGRAM + 16];
        let mut attempts = 0;
        loop {
            attempts += 1;
            let _ = self.socket.send(&datagram);
            let deadline = Instant::now() + self.attempt;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                self.socket
                    .set_read_timeout(Some(left.max(Duration::from_micros(100))))
                    .unwrap();
                match self.socket.recv(&mut buf) {
                    Ok(n) => match decode_reply(&buf[..n]) {
                        Ok((h, reply)) if h.client == self.id && h.seq == self.seq => {
                            return Ok(reply)
                        }
                        Ok(_) => {}
                        Err(e) => {
                            return Err(failure(
                                PROTOCOL,
                                format!("{request:?}: undecodable reply: {e}"),
                            ))
                        }
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        std::thread::sleep(left.min(Duration::from_millis(5)));
                    }
                    Err(_) => break,
                }
            }
            if give_up() {
                return Err(failure(
                    PROGRESS,
                    format!("no progress: no reply to {request:?} after {attempts} attempt(s)"),
                ));
            }
        }
    }

    /// Sends `request` once, as the next request, without waiting for a reply.
    pub fn send_once(&mut self, request: &Request) {
        self.seq += 1;
        let _ = self
            .socket
            .send(&encode_request(self.id, self.seq, request));
    }

    /// Sends raw bytes once and returns the first datagram that comes back in `wait`.
    pub fn raw(&self, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
        self.socket.send(bytes).ok()?;
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0u8; MAX_DATAGRAM + 16];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    }
}

/// Something that answers MFS requests: a server, or the spec.
pub trait Target {
    fn req(&mut self, request: &Request) -> Result<Reply, Failure>;
}

impl Target for Conn {
    fn req(&mut self, request: &Request) -> Result<Reply, Failure> {
        self.call(request)
    }
}

impl Target for FsSpec {
    fn req(&mut self, request: &Request) -> Result<Reply, Failure> {
        Ok(self.apply(request))
    }
}

/// Sends `request` to the server and to the spec; their replies must agree.
pub fn checked(conn: &mut Conn, spec: &mut FsSpec, request: &Request) -> Result<Reply, Failure> {
    let got = conn.call(request)?;
    let want = spec.apply(request);
    if got != want {
        return Err(failure(
            SPEC,
            format!("{request:?}: the server replied {got:?}, the spec says {want:?}"),
        ));
    }
    Ok(got)
}

/// The largest size a Stat can report: a file or directory of every direct block.
const MAX_SIZE: i32 = (DIRECT_BLOCKS * BLOCK_SIZE) as i32;

/// The whole tree as lines (path, inode, type, size, every block's digest), read with
/// Stat and Read only, so a server's tree and the spec's compare line by line.
///
/// A server's tree is taken for what it claims to be, so the walk refuses what no
/// tree holds rather than follow it: an inode named by a second entry (a cycle would
/// otherwise be walked until the harness runs out of memory), an entry naming an
/// inode with an empty name, and a size past the largest file.
pub fn dump(t: &mut impl Target) -> Result<Vec<String>, Failure> {
    let mut lines = Vec::new();
    let mut stack = vec![(0, "/".to_string())];
    let mut seen: HashMap<i32, String> = HashMap::new();
    while let Some((inum, path)) = stack.pop() {
        if let Some(first) = seen.get(&inum) {
            return Err(failure(
                SPEC,
                format!(
                    "inode {inum} is in the tree twice, as {first} and as {path}: but for `.` \
                     and `..`, each inode has one directory entry (a cycle, or a second link)"
                ),
            ));
        }
        seen.insert(inum, path.clone());
        let (kind, size) = match t.req(&Request::Stat { inum })? {
            Reply::Stat { kind, size } if (0..=MAX_SIZE).contains(&size) => (kind, size),
            Reply::Stat { size, .. } => {
                return Err(failure(
                    SPEC,
                    format!(
                        "Stat of {path} (inode {inum}) reports size {size}, outside 0 to \
                         {MAX_SIZE} bytes ({DIRECT_BLOCKS} blocks, the largest file)"
                    ),
                ))
            }
            other => {
                return Err(failure(
                    SPEC,
                    format!("Stat of {path} (inode {inum}) gave {other:?}"),
                ))
            }
        };
        lines.push(format!("{path} inode {inum} type {kind} size {size}"));
        for block in 0..size / BLOCK_SIZE as i32 {
            let data = match t.req(&Request::Read { inum, block })? {
                Reply::Data(d) => d,
                other => {
                    return Err(failure(
                        SPEC,
                        format!("Read of {path} block {block} gave {other:?}"),
                    ))
                }
            };
            lines.push(format!("{path} block {block}: {}", describe_block(&data)));
            if kind != 0 {
                continue;
            }
            for (name, child) in dir_entries(&data[..]) {
                if child >= 0 && name.is_empty() {
                    return Err(failure(
                        SPEC,
                        format!(
                            "{path} block {block} names inode {child} with an empty name \
                             (an unused entry's inode number is -1)"
                        ),
                    ));
                }
                let name = String::from_utf8_lossy(name);
                if child >= 0 && name != "." && name != ".." {
                    stack.push((child, format!("{path}{name}/")));
                }
            }
        }
    }
    Ok(lines)
}

/// The entries of a directory block as the wire carries it: each slot's name (up to
/// its first NUL) and inode number, unused slots (-1) too.
pub fn dir_entries(block: &[u8]) -> impl Iterator<Item = (&[u8], i32)> {
    block
        .chunks_exact(DIRENT_SIZE)
        .take(DIRENTS_PER_BLOCK)
        .map(|e| {
            let len = e[..NAME_FIELD]
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(NAME_FIELD);
            let inum = i32::from_le_bytes(e[NAME_FIELD..].try_into().unwrap());
            (&e[..len], inum)
        })
}

/// The first line where two dumps differ, for messages.
pub fn first_difference(a: &[String], b: &[String]) -> String {
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x != y {
            return format!("line {i}: server {x:?}, expected {y:?}");
        }
    }
    "none".into()
}

pub fn name(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A block whose bytes say which write made it.
pub fn pattern_block(rng: &mut StdRng) -> specs::mfs::wire::Block {
    let mut b = zero_block();
    let fill: u8 = rng.gen();
    b.fill(fill);
    let tag: u64 = rng.gen();
    for at in (0..BLOCK_SIZE).step_by(512) {
        b[at..at + 8].copy_from_slice(&tag.to_le_bytes());
    }
    b
}

fn lookup(spec: &mut FsSpec, pinum: i32, n: &str) -> Option<i32> {
    match spec.apply(&Request::Lookup {
        pinum,
        name: name(n),
    }) {
        Reply::Ok(i) => Some(i),
        _ => None,
    }
}

const FILES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

/// A random request over a small tree (root, `d0`, `d1`, `d0/dd`), mostly writes,
/// with a share of requests that must fail.
pub fn random_request(rng: &mut StdRng, spec: &mut FsSpec) -> Request {
    let mut dirs = vec![0];
    let d0 = lookup(spec, 0, "d0");
    dirs.extend(d0);
    dirs.extend(lookup(spec, 0, "d1"));
    if let Some(d0) = d0 {
        dirs.extend(lookup(spec, d0, "dd"));
    }
    let dir = dirs[rng.gen_range(0..dirs.len())];
    let file = FILES[rng.gen_range(0..FILES.len())];
    let roll = rng.gen_range(0..100);
    match roll {
        0..=49 => match lookup(spec, dir, file) {
            Some(inum) => Request::Write {
                inum,
                block: if rng.gen_bool(0.05) {
                    14
                } else {
                    rng.gen_range(0..14)
                },
                data: pattern_block(rng),
            },
            None => Request::Creat {
                pinum: dir,
                kind: 1,
                name: name(file),
            },
        },
        50..=64 => Request::Creat {
            pinum: dir,
            kind: 1,
            name: name(file),
        },
        65..=71 => {
            let (pinum, n) = match rng.gen_range(0..3) {
                0 => (0, "d0"),
                1 => (0, "d1"),
                _ => (d0.unwrap_or(0), "dd"),
            };
            Request::Creat {
                pinum,
                kind: 0,
                name: name(n),
            }
        }
        72..=84 => {
            let n = if rng.gen_bool(0.2) {
                ["d0", "d1", "dd"][rng.gen_range(0..3)]
            } else {
                file
            };
            Request::Unlink {
                pinum: dir,
                name: name(n),
            }
        }
        85..=92 => {
            let inum = lookup(spec, dir, file).unwrap_or(dir);
            Request::Read {
                inum,
                block: rng.gen_range(0..4),
            }
        }
        93..=96 => Request::Lookup {
            pinum: dir,
            name: name(file),
        },
        _ => Request::Stat {
            inum: rng.gen_range(-1..8),
        },
    }
}

/// Runs `count` random requests through `conn`, checking every reply against `spec`.
pub fn random_workload(
    conn: &mut Conn,
    spec: &mut FsSpec,
    rng: &mut StdRng,
    count: usize,
) -> Result<(), Failure> {
    random_workload_seen(conn, spec, rng, count, |_| {})
}

/// [`random_workload`], showing each request to `seen` before it is sent.
pub fn random_workload_seen(
    conn: &mut Conn,
    spec: &mut FsSpec,
    rng: &mut StdRng,
    count: usize,
    mut seen: impl FnMut(&Request),
) -> Result<(), Failure> {
    for i in 0..count {
        let request = random_request(rng, spec);
        seen(&request);
        checked(conn, spec, &request).map_err(|e| within(format_args!("request {i}"), e))?;
    }
    Ok(())
}

/// Crash points against one image: start the server, run the random workload, SIGKILL
/// the server at a random instant, check the image, restart, and compare the tree with
/// the spec after every acknowledged request (and, if one was in flight, after it too).
pub struct Crasher {
    pub imp: Implementation,
    pub fsck: Option<Implementation>,
    dir: PathBuf,
    evidence: Evidence,
    pub image: PathBuf,
    spec: FsSpec,
    server: Option<Server>,
    pub points: usize,
    pub acknowledged: usize,
}

impl Crasher {
    /// Crash points of the context's server, in its scratch directory.
    pub fn new(cx: &Context) -> Crasher {
        let imp = cx.implementation();
        Crasher {
            fsck: fsck_for(cx, &imp),
            imp,
            dir: cx.dir().to_path_buf(),
            evidence: cx.evidence(),
            image: cx.dir().join("crash.img"),
            spec: FsSpec::new(),
            server: None,
            points: 0,
            acknowledged: 0,
        }
    }

    /// Starts over with a fresh image (keeps images small so checks stay fast).
    pub fn reset(&mut self) {
        self.server = None;
        let _ = std::fs::remove_file(&self.image);
        self.spec = FsSpec::new();
    }

    /// One crash point, the kill `kill_after` into the workload.
    pub fn point(&mut self, rng: &mut StdRng, kill_after: Duration) -> Result<(), Failure> {
        self.points += 1;
        let p = self.points;
        let mut server = match self.server.take() {
            Some(s) => s,
            None => self.start_fresh()?,
        };
        let pid = server.process.pid() as libc::pid_t;
        let killed = Arc::new(AtomicBool::new(false));
        let k = killed.clone();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            // SAFETY: kill(2) on our unreaped child: the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            k.store(true, Ordering::SeqCst);
        });
        let mut conn = server.conn();
        conn.attempt = Duration::from_millis(20);
        let mut in_flight = None;
        let mut wrong = None;
        loop {
            let request = random_request(rng, &mut self.spec);
            match conn.call_until(&request, || killed.load(Ordering::SeqCst)) {
                Ok(got) => {
                    let want = self.spec.apply(&request);
                    self.acknowledged += 1;
                    if got != want {
                        wrong = Some(failure(
                            SPEC,
                            format!(
                                "crash point {p}: {request:?}: the server replied {got:?}, the \
                                 spec says {want:?}"
                            ),
                        ));
                    }
                }
                Err(f) if f.property == PROTOCOL => return Err(f),
                Err(_) => {
                    in_flight = Some(request);
                    break;
                }
            }
            if wrong.is_some() {
                break;
            }
        }
        killer.join().unwrap();
        let _ = server.process.kill();
        if let Some(f) = wrong {
            return Err(f);
        }
        if let Some(fsck) = &self.fsck {
            check_image(fsck, &self.image).map_err(|f| {
                within(
                    format_args!(
                        "crash point {p}: after a SIGKILL {kill_after:?} into the workload"
                    ),
                    f,
                )
            })?;
        }
        // Now and then crash the restart too, while it may still be recovering: boot
        // must be safe to interrupt and redo.
        if rng.gen_bool(0.25) {
            let mut cmd = self.imp.command();
            let port = Port::reserve().map_err(|e| failure(HARNESS, e.to_string()))?;
            cmd.arg(port.number().to_string())
                .arg(&self.image)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut early = Process::spawn("mfs server", &mut cmd).map_err(|e| {
                failure(
                    HARNESS,
                    format!("cannot start {}: {e}", self.imp.describe()),
                )
            })?;
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..3000)));
            let _ = early.kill();
        }
        let server =
            Server::start(&self.imp, &self.dir, &self.image, &self.evidence).map_err(|e| {
                failure(
                    RECOVERY,
                    format!(
                        "crash point {p}: the server does not restart on the crashed image: {e}"
                    ),
                )
            })?;
        let mut conn = server.conn();
        let got = dump(&mut conn)?;
        let want = dump(&mut self.spec.clone())?;
        if got != want {
            let mut with = self.spec.clone();
            let matched = match &in_flight {
                Some(r) if r.mutates() => {
                    with.apply(r);
                    dump(&mut with.clone())? == got
                }
                _ => false,
            };
            if !matched {
                return Err(failure(DURABILITY, format!(
                    "crash point {p}: after a SIGKILL {kill_after:?} into the workload and a restart, \
                     the tree is not the one after the {} acknowledged request(s) (nor with the one in \
                     flight, {in_flight:?}): an acknowledged change was lost or altered; first \
                     difference: {}",
                    self.acknowledged,
                    first_difference(&got, &want)
                )));
            }
            self.spec = with;
        }
        self.server = Some(server);
        Ok(())
    }

    /// A server on a fresh image (the first of the test, or after a reset): one that
    /// does not come up has made no progress.
    fn start_fresh(&self) -> Result<Server, Failure> {
        Server::start(&self.imp, &self.dir, &self.image, &self.evidence).map_err(|e| {
            failure(
                PROGRESS,
                format!("no progress: the server does not start on a new image: {e}"),
            )
        })
    }
}

/// Runs the image checker on `image`; `Err` says what it reported.
pub fn check_image(fsck: &Implementation, image: &Path) -> Result<(), Failure> {
    let out = fsck.command().arg(image).output().map_err(|e| {
        failure(
            HARNESS,
            format!("cannot run the image checker {}: {e}", fsck.describe()),
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(failure(
        RECOVERY,
        format!(
            "the image checker ({}) rejects the image:\n{}{}",
            fsck.describe(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// Power-loss points: the image lives on the power-loss filesystem
/// (`harness::lazyfs`), and at each point the server is killed and the power fails,
/// so every write it had not fsynced is gone but for a random prefix of what it
/// appended since its last sync (a torn tail, which boot must cut). A SIGKILL alone cannot show a missing
/// fsync: the page cache outlives the process. After each point the restarted server
/// must serve every change it acknowledged; if not, the message names the first
/// acknowledged change that was lost.
pub struct PowerLoss {
    pub imp: Implementation,
    pub fsck: Option<Implementation>,
    dir: PathBuf,
    evidence: Evidence,
    disk: LazyFs,
    image: PathBuf,
    images: usize,
    /// The state every acknowledged request so far leads to.
    spec: FsSpec,
    /// The state at the last point that was checked, and the acknowledged requests that
    /// changed it since.
    base: FsSpec,
    since: Vec<(Request, Reply)>,
    server: Option<Server>,
    /// For concurrent writers: each writer's file and the last acknowledged contents of
    /// its blocks (`None`: never written).
    writers: Option<Vec<(i32, Vec<Option<Block>>)>>,
    pub points: usize,
    /// Points whose power went in the middle of the in-flight request's sync.
    pub in_sync: usize,
    pub acknowledged: usize,
    pub lost_bytes: u64,
}

/// Blocks each concurrent writer writes to, so writes often land on the same block.
const WRITER_BLOCKS: usize = 4;

impl PowerLoss {
    /// Mounts the power-loss filesystem under `dir`. A machine without FUSE fails the
    /// test with what is missing, as the Raft suite's power-loss tests do.
    pub fn new(cx: &Context) -> PowerLoss {
        let mountpoint = cx.dir().join("disk");
        std::fs::create_dir_all(&mountpoint).unwrap();
        let disk = LazyFs::mount(&mountpoint).unwrap_or_else(|e| {
            crate::suite::fail(
                HARNESS,
                format!("{e}\nthe power-loss tests need /dev/fuse and root (as on CI)"),
            )
        });
        let image = mountpoint.join("fs-0.img");
        let imp = cx.implementation();
        PowerLoss {
            fsck: fsck_for(cx, &imp),
            imp,
            dir: cx.dir().to_path_buf(),
            evidence: cx.evidence(),
            disk,
            image,
            images: 0,
            spec: FsSpec::new(),
            base: FsSpec::new(),
            since: Vec::new(),
            server: None,
            writers: None,
            points: 0,
            in_sync: 0,
            acknowledged: 0,
            lost_bytes: 0,
        }
    }

    /// Starts over on a new image (a new name: removing the old one would need a
    /// directory fsync to survive the next power failure).
    pub fn reset(&mut self) {
        self.server = None;
        self.images += 1;
        self.image = self.disk.path().join(format!("fs-{}.img", self.images));
        self.spec = FsSpec::new();
        self.base = FsSpec::new();
        self.since.clear();
        self.writers = None;
    }

    /// One point: up to `max_requests` acknowledged random requests, perhaps one more
    /// sent and not waited for, then kill, power failure, check, restart, compare.
    pub fn point(&mut self, rng: &mut StdRng, max_requests: usize) -> Result<(), Failure> {
        self.points += 1;
        let p = self.points;
        let server = self.take_server()?;
        let mut conn = server.conn();
        for _ in 0..rng.gen_range(0..=max_requests) {
            let request = random_request(rng, &mut self.spec);
            let got = conn.call(&request)?;
            self.check_reply(p, &request, got)?;
        }
        let in_flight = if rng.gen_bool(0.5) {
            let request = random_request(rng, &mut self.spec.clone());
            if rng.gen_bool(0.5) {
                // The power goes in the middle of the sync that would make it durable
                // (a request that changes nothing makes none: then 20 ms later).
                self.disk.cut_power_at_sync(1);
                conn.send_once(&request);
                let deadline = Instant::now() + Duration::from_millis(20);
                while !self.disk.power_is_cut() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(200));
                }
            } else {
                conn.send_once(&request);
                // The kill lands anywhere in the server's handling of it: before,
                // during or after its append and sync.
                std::thread::sleep(Duration::from_micros(rng.gen_range(0..2000)));
            }
            Some(request)
        } else {
            None
        };
        if self.disk.power_is_cut() {
            self.in_sync += 1;
        }
        self.fail_and_compare(p, server, in_flight.as_ref(), rng)
    }

    /// One point at an overwrite: random requests, each answered before the next,
    /// until the power goes in the first sync of the image while it holds bytes written
    /// in place over durable ones (a checkpoint rewritten where it was), at most
    /// `max_requests` of them; then as [`PowerLoss::point`], the overwritten sectors
    /// torn. Returns whether the power went at an overwrite (never, for a server that
    /// only appends or that overwrites less often).
    pub fn overwrite_point(
        &mut self,
        rng: &mut StdRng,
        max_requests: usize,
    ) -> Result<bool, Failure> {
        self.points += 1;
        let p = self.points;
        let server = self.take_server()?;
        let mut conn = server.conn();
        self.disk.cut_power_at_overwrite_sync();
        let mut in_flight = None;
        for _ in 0..max_requests {
            let request = random_request(rng, &mut self.spec.clone());
            let disk = &self.disk;
            match conn.call_unless(&request, || disk.power_is_cut()) {
                Ok(got) => self.check_reply(p, &request, got)?,
                Err(_) if self.disk.power_is_cut() => {
                    in_flight = Some(request);
                    break;
                }
                Err(f) => return Err(within(format_args!("power-loss point {p}"), f)),
            }
        }
        let struck = self.disk.power_is_cut();
        if struck {
            self.in_sync += 1;
        }
        self.fail_and_compare(p, server, in_flight.as_ref(), rng)?;
        Ok(struck)
    }

    /// Checks an acknowledged reply against the spec and keeps the request if it
    /// changed something.
    fn check_reply(&mut self, p: usize, request: &Request, got: Reply) -> Result<(), Failure> {
        let before = request.mutates().then(|| self.spec.clone());
        let want = self.spec.apply(request);
        self.acknowledged += 1;
        if got != want {
            return Err(failure(
                SPEC,
                format!(
                    "power-loss point {p}: {request:?}: the server replied {got:?}, the spec \
                     says {want:?}"
                ),
            ));
        }
        // Only requests that changed something can be lost (a failed Write, or a
        // Creat of an existing name, changes nothing).
        if before.is_some_and(|b| b != self.spec) {
            self.since.push((request.clone(), got));
        }
        Ok(())
    }

    /// The end of a point: the server killed, the power failed in the middle of a
    /// write, the image checked, the server restarted; it must hold every
    /// acknowledged change, and the one `in_flight` or not.
    fn fail_and_compare(
        &mut self,
        p: usize,
        mut server: Server,
        in_flight: Option<&Request>,
        rng: &mut StdRng,
    ) -> Result<(), Failure> {
        // Every process using the disk dies before the power goes, as in a real outage.
        let _ = self.disk.kill(&mut server.process);
        drop(server);
        let lost = self.disk.power_fail_torn(rng.gen());
        self.lost_bytes += lost.bytes;
        if let Some(fsck) = &self.fsck {
            check_image(fsck, &self.image).map_err(|f| {
                within(
                    format_args!("power-loss point {p}: after the power failure"),
                    f,
                )
            })?;
        }
        let server = self.restart(p)?;
        let got = dump(&mut server.conn())?;
        let mut after = self.spec.clone();
        if dump(&mut after.clone())? != got {
            let matched = match in_flight {
                Some(r) if r.mutates() => {
                    after.apply(r);
                    dump(&mut after.clone())? == got
                }
                _ => false,
            };
            if !matched {
                return Err(failure(DURABILITY, self.name_the_loss(p, &got, lost)?));
            }
        }
        self.spec = after.clone();
        self.base = after;
        self.since.clear();
        self.server = Some(server);
        Ok(())
    }

    /// One point with `n` clients writing at once, each to blocks of its own file, so
    /// the server groups their writes into batches; the power fails at a random instant
    /// (0-25 ms in). Every block must then hold the last write to it that was
    /// acknowledged, or the one in flight to it.
    pub fn writers_point(&mut self, rng: &mut StdRng, n: usize) -> Result<(), Failure> {
        self.points += 1;
        let p = self.points;
        let mut server = self.take_server()?;
        if self.writers.is_none() {
            let mut conn = server.conn();
            let mut files = Vec::new();
            for i in 0..n {
                let file = format!("w{i}");
                let creat = Request::Creat {
                    pinum: 0,
                    kind: 1,
                    name: name(&file),
                };
                let lookup = Request::Lookup {
                    pinum: 0,
                    name: name(&file),
                };
                match (conn.call(&creat)?, conn.call(&lookup)?) {
                    (Reply::Ok(0), Reply::Ok(inum)) => {
                        files.push((inum, vec![None; WRITER_BLOCKS]))
                    }
                    other => {
                        return Err(failure(
                            SPEC,
                            format!("creating {file}: the server replied {other:?}"),
                        ))
                    }
                }
            }
            self.writers = Some(files);
        }
        // Taken while the point runs (it restarts the server through `self`), put back
        // when the point passes.
        let mut files = self
            .writers
            .take()
            .expect("the writers' files were just made");
        let pid = server.process.pid() as libc::pid_t;
        let killed = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (inum, _) in files.iter() {
            let (inum, killed, addr) = (*inum, killed.clone(), server.addr);
            let mut wrng = <StdRng as rand::SeedableRng>::seed_from_u64(rng.gen());
            threads.push(std::thread::spawn(move || {
                let mut conn = Conn::new(addr);
                conn.attempt = Duration::from_millis(20);
                let mut acked = Vec::new();
                loop {
                    let block = wrng.gen_range(0..WRITER_BLOCKS);
                    let data = pattern_block(&mut wrng);
                    let write = Request::Write {
                        inum,
                        block: block as i32,
                        data: data.clone(),
                    };
                    match conn.call_until(&write, || killed.load(Ordering::SeqCst)) {
                        Ok(Reply::Ok(0)) => acked.push((block, data)),
                        Ok(other) => {
                            return Err(failure(
                                SPEC,
                                format!("{write:?}: the server replied {other:?}"),
                            ))
                        }
                        Err(f) if f.property == PROTOCOL => return Err(f),
                        Err(_) => return Ok((acked, Some((block, data)))),
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..25_000)));
        // SAFETY: kill(2) on our unreaped child: the pid cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        killed.store(true, Ordering::SeqCst);
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let _ = self.disk.kill(&mut server.process);
        drop(server);
        let lost = self.disk.power_fail_torn(rng.gen());
        self.lost_bytes += lost.bytes;
        let mut outcomes = Vec::new();
        for r in results {
            outcomes.push(r.map_err(|f| within(format_args!("power-loss point {p}"), f))?);
        }
        if let Some(fsck) = &self.fsck {
            check_image(fsck, &self.image).map_err(|f| {
                within(
                    format_args!("power-loss point {p}: after the power failure"),
                    f,
                )
            })?;
        }
        let server = self.restart(p)?;
        let mut conn = server.conn();
        for (w, ((inum, blocks), (acked, in_flight))) in files.iter_mut().zip(outcomes).enumerate()
        {
            self.acknowledged += acked.len();
            let lookup = Request::Lookup {
                pinum: 0,
                name: name(&format!("w{w}")),
            };
            let found = conn.call(&lookup)?;
            if found != Reply::Ok(*inum) {
                return Err(failure(
                    DURABILITY,
                    format!(
                        "power-loss point {p}: the acknowledged Creat(0, type 1, \"w{w}\") (inode \
                     {inum}) was lost: {lookup:?} now gives {found:?}"
                    ),
                ));
            }
            let mut last: Vec<Option<(usize, Block)>> = vec![None; WRITER_BLOCKS];
            for (i, (block, data)) in acked.iter().enumerate() {
                last[*block] = Some((i, data.clone()));
            }
            for b in 0..WRITER_BLOCKS {
                let got = match conn.call(&Request::Read {
                    inum: *inum,
                    block: b as i32,
                })? {
                    Reply::Data(d) => Some(d),
                    _ => None,
                };
                let want = last[b]
                    .as_ref()
                    .map(|(_, d)| d.clone())
                    .or(blocks[b].clone());
                let flying = in_flight
                    .as_ref()
                    .filter(|(fb, _)| *fb == b)
                    .map(|(_, d)| d);
                let as_want = match &want {
                    Some(d) => got.as_ref() == Some(d),
                    // Never written: a hole inside the file, or past its end.
                    None => got.as_ref().is_none_or(|d| d.iter().all(|&x| x == 0)),
                };
                let as_flying = flying.is_some() && got.as_ref() == flying;
                if !(as_want || as_flying) {
                    let shown = got
                        .as_ref()
                        .map_or("nothing (the read fails)".into(), |d| describe_block(d));
                    let what = match &last[b] {
                        Some((i, d)) => format!(
                            "writer w{w}'s acknowledged write {} of {} in this point, Write({inum}, \
                             block {b}, {}), answered Ok(0), was lost",
                            i + 1,
                            acked.len(),
                            describe_block(d)
                        ),
                        None => format!(
                            "the contents of block {b} of w{w} acknowledged before this point \
                             ({}) were lost",
                            want.as_ref().map_or("a hole".into(), |d| describe_block(d))
                        ),
                    };
                    return Err(failure(
                        DURABILITY,
                        format!(
                            "power-loss point {p} ({n} concurrent writers): the power failure \
                         discarded {} unsynced byte(s), and {what}: block {b} of inode {inum} \
                         reads back {shown}",
                            lost.bytes
                        ),
                    ));
                }
                // Written blocks are never all zeros (`pattern_block`): zeros are a hole.
                blocks[b] = got.filter(|d| d.iter().any(|&x| x != 0));
            }
        }
        self.writers = Some(files);
        self.server = Some(server);
        Ok(())
    }

    /// The server the last point left running, or one on a fresh image.
    fn take_server(&mut self) -> Result<Server, Failure> {
        match self.server.take() {
            Some(s) => Ok(s),
            None => self.start_fresh(),
        }
    }

    /// A server on a fresh image: one that does not come up has made no progress.
    fn start_fresh(&self) -> Result<Server, Failure> {
        Server::start(&self.imp, &self.dir, &self.image, &self.evidence).map_err(|e| {
            failure(
                PROGRESS,
                format!("no progress: the server does not start on a new image: {e}"),
            )
        })
    }

    /// The server again, on the image a power failure left.
    fn restart(&self, p: usize) -> Result<Server, Failure> {
        Server::start(&self.imp, &self.dir, &self.image, &self.evidence).map_err(|e| {
            failure(
                RECOVERY,
                format!(
                    "power-loss point {p}: the server does not restart after the power failure: {e}"
                ),
            )
        })
    }

    /// Which acknowledged change is missing: the restarted tree is matched against the
    /// state after each prefix of the changes acknowledged since the last point.
    fn name_the_loss(
        &self,
        p: usize,
        got: &[String],
        lost: crate::lazyfs::Lost,
    ) -> Result<String, Failure> {
        let n = self.since.len();
        let mut prefix = None;
        for k in (0..n).rev() {
            let mut state = self.base.clone();
            for (r, _) in &self.since[..k] {
                state.apply(r);
            }
            if dump(&mut state)? == got {
                prefix = Some(k);
                break;
            }
        }
        let head = format!(
            "power-loss point {p}: the power failure discarded {} byte(s) the server had not \
             fsynced, and with them acknowledged changes",
            lost.bytes
        );
        Ok(match prefix {
            Some(k) => {
                let (request, reply) = &self.since[k];
                let rest: Vec<String> = self.since[k + 1..]
                    .iter()
                    .take(5)
                    .map(|(r, _)| format!("{r:?}"))
                    .collect();
                format!(
                    "{head}: acknowledged change {} of the {n} since the last power failure, \
                     {request:?}, answered {reply:?}, was lost: the restarted server serves \
                     the tree as it was after only the first {k} of them{}",
                    k + 1,
                    if rest.is_empty() {
                        String::new()
                    } else {
                        format!(" (lost after it too: {})", rest.join(", "))
                    }
                )
            }
            None => {
                let mut want = self.spec.clone();
                format!(
                    "{head}: the restarted server's tree is the state after no prefix of the \
                     {n} change(s) acknowledged since the last power failure; first difference \
                     from the state after all of them: {}",
                    first_difference(got, &dump(&mut want)?)
                )
            }
        })
    }
}

/// What a [`DropOnce`] relay saw.
#[derive(Debug, Clone, Default)]
pub struct DropOnceLog {
    /// Copies of each distinct request (client id, sequence number), in the order
    /// they first arrived.
    pub copies: Vec<((u64, u64), u32)>,
    /// The request whose first copy was dropped.
    pub dropped: Option<Request>,
}

/// A relay in front of the server that loses exactly one datagram: the first copy of
/// the `nth` distinct request (1-based) a client sends. Everything else passes, and it
/// counts how often each request was sent, so a test can tell "lost and never sent
/// again" from any other failure.
pub struct DropOnce {
    addr: SocketAddr,
    log: Arc<std::sync::Mutex<DropOnceLog>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DropOnce {
    pub fn start(server: SocketAddr, nth: usize) -> DropOnce {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the relay");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let log = Arc::new(std::sync::Mutex::new(DropOnceLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, st) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut buf = vec![0u8; MAX_DATAGRAM + 16];
            while !st.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let datagram = &buf[..n];
                if from == server {
                    if let Some(c) = client {
                        let _ = socket.send_to(datagram, c);
                    }
                    continue;
                }
                client = Some(from);
                if let Ok((h, request)) = specs::mfs::wire::decode_request(datagram) {
                    let mut log = l.lock().unwrap();
                    let key = (h.client, h.seq);
                    let copies = match log.copies.iter().position(|(k, _)| *k == key) {
                        Some(i) => {
                            log.copies[i].1 += 1;
                            log.copies[i].1
                        }
                        None => {
                            log.copies.push((key, 1));
                            1
                        }
                    };
                    if log.copies.len() == nth && log.copies[nth - 1].0 == key && copies == 1 {
                        log.dropped = Some(request);
                        continue;
                    }
                }
                let _ = socket.send_to(datagram, server);
            }
        });
        DropOnce {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn log(&self) -> DropOnceLog {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for DropOnce {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The client library the C program links: `DFS_LIBMFS` if set, else ours. A
/// known-bad run always uses ours (its switch is in the program's environment, see
/// [`bug_env`]).
pub fn libmfs(cx: &Context) -> PathBuf {
    if cx.bug().is_none() {
        if let Ok(p) = std::env::var(LIBMFS_VAR) {
            if !p.trim().is_empty() {
                return PathBuf::from(p);
            }
        }
    }
    our_libmfs()
}

/// The variable naming another client library (a `.so` path, not a command: it is
/// linked, not run, so it is no program of the suite).
pub const LIBMFS_VAR: &str = "DFS_LIBMFS";

/// The environment that puts a known-bad run's switch into our client library, which
/// reads `DFS_BUG` as the server does.
pub fn bug_env(cx: &Context) -> Vec<(&'static str, String)> {
    cx.bug()
        .map(|b| vec![("DFS_BUG", b.to_string())])
        .unwrap_or_default()
}

/// Our `libmfs.so`, built from the current sources (once per process, like our
/// binaries: a library that exists is not trusted to be current).
fn our_libmfs() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let server =
            crate::implementation::build_binary("mfs-server").map_err(|e| e.to_string())?;
        let dir = server
            .parent()
            .expect("a binary has a directory")
            .to_path_buf();
        let lib = dir.join("libmfs.so");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap())
            .args(["build", "-p", "dfs", "--lib"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let out = build
            .output()
            .map_err(|e| format!("cannot run cargo to build libmfs.so: {e}"))?;
        if !out.status.success() || !lib.exists() {
            return Err(format!(
                "building libmfs.so failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(lib)
    });
    built
        .clone()
        .unwrap_or_else(|e| crate::suite::fail(HARNESS, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory block naming `entries` in its first slots, the rest unused.
    fn dir_block(entries: &[(&[u8], i32)]) -> Block {
        let mut slots = vec![None; DIRENTS_PER_BLOCK];
        for (slot, &(name, inum)) in slots.iter_mut().zip(entries) {
            *slot = Some((name.to_vec(), inum));
        }
        specs::mfs::spec::encode_dir_block(&slots)
    }

    /// A server serving fixed directories: inode i is a one-block directory whose
    /// block is `blocks[i]`; Stat reports `size` for each.
    struct Served {
        blocks: Vec<Block>,
        size: i32,
        requests: usize,
    }

    impl Target for Served {
        fn req(&mut self, request: &Request) -> Result<Reply, Failure> {
            self.requests += 1;
            if self.requests > 100 {
                // A walk that does not stop at a cycle ends here, not out of memory.
                return Err(failure(HARNESS, "the walk went on past 100 requests"));
            }
            Ok(match request {
                Request::Stat { .. } => Reply::Stat {
                    kind: 0,
                    size: self.size,
                },
                Request::Read { inum, .. } => Reply::Data(self.blocks[*inum as usize].clone()),
                _ => Reply::Failed,
            })
        }
    }

    /// One-block directories served with `size`, as `Served`.
    fn served(blocks: Vec<Block>, size: i32) -> Served {
        Served {
            blocks,
            size,
            requests: 0,
        }
    }

    /// The walk of `server` fails for `spec` with a message holding `text`.
    fn refused(server: &mut Served, text: &str) {
        let err = dump(server).unwrap_err();
        assert_eq!(err.property, SPEC);
        assert!(err.message.contains(text), "{}", err.message);
    }

    /// A server whose tree loops back to its root (`/a/b` names inode 0) is refused at
    /// the second sight of the root, with both paths, instead of walked forever.
    #[test]
    fn a_tree_with_a_cycle_is_refused_not_walked() {
        let mut server = served(
            vec![
                dir_block(&[(b".", 0), (b"..", 0), (b"a", 1)]),
                dir_block(&[(b".", 1), (b"..", 0), (b"b", 0)]),
            ],
            BLOCK_SIZE as i32,
        );
        refused(
            &mut server,
            "inode 0 is in the tree twice, as / and as /a/b/",
        );
        assert_eq!(server.requests, 4, "two Stats and two Reads");
    }

    /// An entry with an empty name that names an inode is refused, where an unused
    /// entry (-1) is skipped.
    #[test]
    fn an_entry_with_an_empty_name_is_refused() {
        let block = dir_block(&[(b".", 0), (b"..", 0), (b"", -1), (b"", 1)]);
        let mut server = served(vec![block], BLOCK_SIZE as i32);
        refused(&mut server, "/ block 0 names inode 1 with an empty name");
    }

    /// A size past the largest file is refused before any of its blocks is read.
    #[test]
    fn a_size_past_the_largest_file_is_refused() {
        let block = dir_block(&[(b".", 0), (b"..", 0)]);
        let mut server = served(vec![block], MAX_SIZE + BLOCK_SIZE as i32);
        refused(
            &mut server,
            "Stat of / (inode 0) reports size 61440, outside 0 to 57344",
        );
        assert_eq!(server.requests, 1);
        server.size = MAX_SIZE;
        // The largest size is walked: its 14 blocks name no other inode.
        let lines = dump(&mut server).unwrap();
        assert_eq!(lines.len(), 1 + DIRECT_BLOCKS);
    }
}
