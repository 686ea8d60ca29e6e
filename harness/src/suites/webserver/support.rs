//! What the web server tests share: launching the server under test, a strict HTTP
//! client, document roots, and reading the server's state from /proc.

use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::implementation::workspace_binary;
use crate::suite::{fail, property, Context, Evidence};
use crate::{Implementation, Port, Process};

use super::KEEPS_SERVING;

/// The server a test runs against, as the test's context names it: the
/// implementation under test (`WEBSERVER_IMPL`, `--impl`, ours by default), or, for
/// a known-bad run, our binary with `WEBSERVER_BUG` already set.
pub struct Subject {
    imp: Implementation,
    dir: PathBuf,
    evidence: Evidence,
}

impl Subject {
    pub fn of(cx: &Context) -> Subject {
        Subject {
            imp: cx.implementation(),
            dir: cx.dir().to_path_buf(),
            evidence: cx.evidence(),
        }
    }

    pub fn is_ours(&self) -> bool {
        self.imp.is_ours()
    }

    /// How long the server may let a silent or slow client hold on. Ours is started
    /// with `--timeout 2`; another server's is `WEBSERVER_TIMEOUT` seconds (default 5).
    pub fn client_timeout(&self) -> Duration {
        if self.is_ours() {
            return Duration::from_secs(2);
        }
        let secs = std::env::var("WEBSERVER_TIMEOUT")
            .ok()
            .map(|s| {
                s.parse::<f64>().unwrap_or_else(|_| {
                    fail(
                        property::HARNESS,
                        format!("WEBSERVER_TIMEOUT={s:?} is not seconds"),
                    )
                })
            })
            .unwrap_or(5.0);
        Duration::from_secs_f64(secs)
    }

    /// How long the server lets a CGI program run before it kills it. Ours is
    /// started with `--cgi-timeout 4`; another server's is `WEBSERVER_CGI_TIMEOUT`
    /// seconds (default: the client timeout).
    pub fn cgi_timeout(&self) -> Duration {
        if self.is_ours() {
            return Duration::from_secs(4);
        }
        match std::env::var("WEBSERVER_CGI_TIMEOUT") {
            Ok(s) => Duration::from_secs_f64(s.parse::<f64>().unwrap_or_else(|_| {
                fail(
                    property::HARNESS,
                    format!("WEBSERVER_CGI_TIMEOUT={s:?} is not seconds"),
                )
            })),
            Err(_) => self.client_timeout(),
        }
    }

    /// A command line as the seed's usage defines it, run with `cwd` as working dir.
    pub fn run_args(&self, args: &[&str], cwd: &Path) -> Command {
        let mut cmd = self.imp.command();
        cmd.args(args).current_dir(cwd).stdin(Stdio::null());
        cmd
    }

    /// Where a started server's standard error goes: a file of the scratch
    /// directory, kept with the evidence of a failing run.
    pub fn log(&self, name: &str) -> Stdio {
        let path = self.dir.join(name);
        self.evidence.copy(&path);
        match fs::File::create(&path) {
            Ok(f) => f.into(),
            Err(_) => Stdio::inherit(),
        }
    }

    /// Starts the server on a reserved port serving `root`, with extra `args`
    /// (`-t 2 -b 4 -s SFF`...), and waits until it accepts connections.
    pub fn start(&self, root: &Path, args: &[&str]) -> Server {
        self.start_limited(root, args, None)
    }

    /// [`Subject::start`] with the server's open files limited to `nofile`
    /// (`RLIMIT_NOFILE`, soft and hard) when given.
    pub fn start_limited(&self, root: &Path, args: &[&str], nofile: Option<u64>) -> Server {
        let port = Port::reserve().expect("reserve a port");
        let mut cmd = self.imp.command();
        cmd.arg("-d")
            .arg(root)
            .args(["-p", &port.number().to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log(&format!("server-{}.log", port.number())));
        if self.is_ours() {
            cmd.args(["--timeout", "2", "--cgi-timeout", "4"]);
        }
        if let Some(n) = nofile {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: setrlimit is async-signal-safe, and the closure touches
            // nothing but its own copy of `limit`.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let process = Process::spawn(self.imp.describe(), &mut cmd).unwrap_or_else(|e| {
            fail(
                property::SETUP,
                format!("cannot start {}: {e}", self.imp.command_line()),
            )
        });
        let mut server = Server {
            process,
            addr: port.addr(),
            _port: port,
        };
        server.wait_ready(Duration::from_secs(10));
        server
    }
}

pub struct Server {
    process: Process,
    addr: String,
    _port: Port,
}

impl Server {
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn port(&self) -> u16 {
        self._port.number()
    }

    /// Resident memory of the server process in bytes, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        self.process.rss_bytes().unwrap_or_else(|e| {
            fail(
                property::HARNESS,
                format!("cannot read the server's memory: {e}"),
            )
        })
    }

    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                fail(
                    property::PROGRESS,
                    format!(
                        "no progress: {} exited with {status} before accepting connections",
                        self.process.name()
                    ),
                );
            }
            if TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                fail(
                    property::PROGRESS,
                    format!(
                        "no progress: {} did not accept connections on {} within {limit:?}",
                        self.process.name(),
                        self.addr
                    ),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGSTOP), waits until the kernel has stopped it, and lets
    /// it go on (SIGCONT): what Ctrl-Z and `fg` do to a server in a shell. A SIGCONT
    /// sent before the stop takes effect would cancel it, hence the wait.
    pub fn stop_and_continue(&self) {
        let pid = self.process.pid();
        self.process
            .signal(libc::SIGSTOP)
            .unwrap_or_else(|e| fail(property::HARNESS, format!("SIGSTOP to {pid}: {e}")));
        if !wait_for(Duration::from_secs(10), || state(pid) == Some('T')) {
            fail(
                property::HARNESS,
                format!("{pid} did not stop within 10 s of SIGSTOP"),
            );
        }
        self.process
            .signal(libc::SIGCONT)
            .unwrap_or_else(|e| fail(property::HARNESS, format!("SIGCONT to {pid}: {e}")));
    }

    /// The server's exit status if it exits within `limit`.
    pub fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.process.wait_timeout(limit).ok().flatten()
    }

    /// Fails the test if the server has exited (a request must never kill it).
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.process.try_wait().unwrap() {
            fail(KEEPS_SERVING, format!("the server exited with {status}"));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap_or_else(|e| {
            fail(
                property::PROGRESS,
                format!(
                    "no progress: cannot connect to the server at {}: {e}",
                    self.addr
                ),
            )
        });
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// Sends `raw` on a fresh connection and reads until the server closes.
    pub fn exchange(&self, raw: &[u8]) -> Response {
        let mut s = self.connect();
        // An early answer (431 to an oversized head) may close the connection while
        // we are still writing; what matters is the answer.
        let _ = s.write_all(raw);
        Response::parse(&read_to_close(&mut s))
    }

    /// `GET path HTTP/1.0`.
    pub fn get(&self, path: &str) -> Response {
        self.exchange(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
    }

    /// Threads of the server process, from /proc/<pid>/status.
    pub fn threads(&self) -> usize {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("Threads: line in /proc/<pid>/status")
    }

    /// Descriptors the server process holds open, from /proc/<pid>/fd (0 once it
    /// is gone).
    pub fn open_fds(&self) -> u64 {
        fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count() as u64)
    }

    /// CPU time the server process has used, all threads, from its CPU-time clock
    /// (nanoseconds; /proc/<pid>/stat counts 10 ms ticks, too coarse for the small
    /// allowances a loaded machine leaves).
    pub fn cpu_time(&self) -> Duration {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: clock_getcpuclockid writes one clockid_t through a valid pointer.
        let rc = unsafe { libc::clock_getcpuclockid(self.pid() as libc::pid_t, &mut clock) };
        assert_eq!(rc, 0, "clock_getcpuclockid of the server: error {rc}");
        cpu_clock(clock)
    }

    /// Connections waiting in the kernel's accept queue of the listening socket.
    pub fn accept_queue(&self) -> usize {
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = fs::read_to_string(table) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                let port = f[1].rsplit(':').next().unwrap();
                if f[3] == "0A" && u16::from_str_radix(port, 16) == Ok(self.port()) {
                    let rx = f[4].split(':').nth(1).unwrap();
                    return usize::from_str_radix(rx, 16).unwrap();
                }
            }
        }
        panic!(
            "no listening socket on port {} in /proc/net/tcp*",
            self.port()
        );
    }

    /// Whether the server has read everything sent so far on `client`'s connection:
    /// the receive queue of the server's end (found in /proc/net/tcp by the two
    /// ports) is empty. A request read is a request the server has taken on, so
    /// tests wait for this instead of sleeping to order requests.
    pub fn has_read(&self, client: &TcpStream) -> bool {
        let client_port = client.local_addr().unwrap().port();
        let text = fs::read_to_string("/proc/net/tcp").unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap(), 16);
            // 01: ESTABLISHED; a connection still in the accept queue is listed too,
            // with the bytes nobody has read.
            if port(f[1]) == Ok(self.port()) && port(f[2]) == Ok(client_port) && f[3] == "01" {
                let rx = f[4].split(':').nth(1).unwrap();
                return usize::from_str_radix(rx, 16).unwrap() == 0;
            }
        }
        // Not listed: the server has closed its end, so it read what it wanted.
        true
    }

    /// Waits until the server has read what `client` sent (see `has_read`), at
    /// most `limit`; false if it has not by then.
    pub fn wait_read(&self, client: &TcpStream, limit: Duration) -> bool {
        wait_for(limit, || self.has_read(client))
    }

    /// The time one plain request takes on this machine right now (the slowest
    /// of three, after a first one that warms up the server): the unit the
    /// tests' margins are made of, so that a loaded machine gets larger ones.
    pub fn baseline(&self) -> Duration {
        let _ = self.get("/index.html");
        (0..3)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(self.get("/index.html").status, 200, "baseline request");
                start.elapsed()
            })
            .max()
            .unwrap()
    }

    /// Children of the server process: (pid, state letter).
    pub fn children(&self) -> Vec<(u32, char)> {
        let mut out = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let mut f = after.split_whitespace();
            let state = f.next().unwrap().chars().next().unwrap();
            let ppid: u32 = f.next().unwrap().parse().unwrap();
            if ppid == self.pid() {
                out.push((pid, state));
            }
        }
        out
    }
}

/// The median of `times` (the upper one of an even count).
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Reads until EOF (or a reset after the data), with the stream's read timeout.
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return out,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                fail(
                    property::PROGRESS,
                    format!(
                        "no progress: the server neither finished nor closed the \
                         connection within the read timeout (got {} bytes)",
                        out.len()
                    ),
                )
            }
            Err(e) => panic!("reading the response: {e} (got {} bytes)", out.len()),
        }
    }
}

/// Fails the test for a response that breaks HTTP's form.
fn malformed(message: String) -> ! {
    fail(property::PROTOCOL, message)
}

/// One parsed response. Parsing is strict: the tests assert the byte-level form.
#[derive(Debug, Clone)]
pub struct Response {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes after the body the Content-Length announced.
    pub trailing: Vec<u8>,
}

impl Response {
    /// Parses a complete response; fails the test saying what is malformed (or,
    /// for nothing at all, that no answer came).
    pub fn parse(raw: &[u8]) -> Response {
        if raw.is_empty() {
            fail(
                property::PROGRESS,
                "no progress: the server closed the connection without sending anything",
            );
        }
        let end = find(raw, b"\r\n\r\n").unwrap_or_else(|| {
            malformed(format!(
                "response has no CRLF CRLF after its head: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(300)])
            ))
        });
        let head = std::str::from_utf8(&raw[..end])
            .unwrap_or_else(|_| malformed("response head is not UTF-8".into()));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let status = parse_status_line(&status_line);
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| malformed(format!("header line without a colon: {line:?}")));
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                malformed(format!("bad header name in {line:?}"));
            }
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let rest = &raw[end + 4..];
        let mut response = Response {
            status_line,
            status,
            headers,
            body: rest.to_vec(),
            trailing: Vec::new(),
        };
        if let Some(len) = response.content_length() {
            if rest.len() < len {
                malformed(format!(
                    "Content-Length is {len} but only {} body bytes came before the close",
                    rest.len()
                ));
            }
            response.body = rest[..len].to_vec();
            response.trailing = rest[len..].to_vec();
        }
        response
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> Option<usize> {
        let all: Vec<_> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .collect();
        if all.len() > 1 {
            malformed(format!("Content-Length sent {} times", all.len()));
        }
        all.first().map(|(_, v)| {
            v.parse()
                .unwrap_or_else(|_| malformed(format!("Content-Length {v:?} is not a number")))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn parse_status_line(line: &str) -> u16 {
    let parsed = line
        .strip_prefix("HTTP/1.0 ")
        .or_else(|| line.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.split_once(' '))
        .filter(|(code, reason)| code.len() == 3 && !reason.is_empty())
        .and_then(|(code, _)| code.parse().ok());
    parsed.unwrap_or_else(|| {
        malformed(format!(
            "malformed status line {line:?} (want `HTTP/1.x NNN Reason`)"
        ))
    })
}

/// Reads exactly one response from a persistent connection (by Content-Length).
pub fn read_one(s: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while find(&raw, b"\r\n\r\n").is_none() {
        let n = s.read(&mut byte).unwrap_or_else(|e| {
            fail(
                property::PROGRESS,
                format!("no progress: no complete response head: {e} (got {raw:?})"),
            )
        });
        if n == 0 {
            fail(
                property::PROGRESS,
                format!("no progress: connection closed inside a response head: {raw:?}"),
            );
        }
        raw.push(byte[0]);
    }
    let head_text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let len: usize = head_text
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| malformed(format!("Content-Length {v:?} is not a number")))
        })
        .unwrap_or_else(|| malformed("a persistent response needs Content-Length".into()));
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("reading a response body");
    raw.extend_from_slice(&body);
    Response::parse(&raw)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A document root inside `dir`: `root/` with an index, a few typed files, a
/// subdirectory with its own index, and `spin.cgi`.
pub fn docroot(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::write(
        root.join("index.html"),
        "<html><body>index of the test root</body></html>\n",
    )
    .unwrap();
    fs::write(root.join("docs/index.html"), "docs index\n").unwrap();
    fs::write(root.join("hello world.txt"), "spaces decoded\n").unwrap();
    fs::copy(workspace_binary("spin-cgi"), root.join("spin.cgi")).unwrap();
    fs::set_permissions(root.join("spin.cgi"), fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// The time a CPU-time clock shows.
pub fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Spins on a thread of the test for `window` and returns the CPU time it got:
/// what one thread that never waits gets on this machine right now, the yardstick
/// for telling a busy-waiting server from a loaded machine.
pub fn spin_for(window: Duration) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let start = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
        let end = Instant::now() + window;
        while Instant::now() < end {
            std::hint::spin_loop();
        }
        cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID) - start
    })
}

/// Polls `cond` every few milliseconds until it holds (true) or `limit` passes
/// (false): how the tests wait for an event they cannot be told about.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The margin a timing assertion allows past a bound the server must keep: half
/// the bound plus twenty times the latency measured in the same run, so both a
/// slow configuration and a loaded machine widen it.
pub fn margin(bound: Duration, baseline: Duration) -> Duration {
    bound / 2 + baseline * 20
}

/// Whether a process exists and is not a zombie (a zombie has finished and only
/// waits for its parent to reap it).
pub fn running(pid: u32) -> bool {
    state(pid).is_some_and(|s| s != 'Z')
}

/// A process's state letter in /proc (`R`, `S`, `T` stopped, `Z` zombie...), if it
/// exists. The command name before it, in parentheses, may hold anything.
fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Whether a process exists at all, zombies included.
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// CGI programs that hold a worker until the test releases them, and tell the
/// test when they have started: `gate.cgi?NAME` writes its pid (and that of a
/// background `sleep` it starts, to stand for the work a real program hands to
/// children) to `gates/NAME.pids`, then waits for `gates/NAME.release`, then
/// answers `gate NAME`. A gate never released gives up after `lifetime`.
pub struct Gates {
    dir: PathBuf,
}

impl Gates {
    /// Installs `gate.cgi` in `root`; its files live in `dir/gates`.
    pub fn install(dir: &Path, root: &Path, lifetime: Duration) -> Gates {
        let gates = dir.join("gates");
        fs::create_dir_all(&gates).unwrap();
        let polls = lifetime.as_millis() / 20 + 1;
        let script = format!(
            r#"#!/bin/sh
d='{dir}'
n="$QUERY_STRING"
case "$n" in *[!a-z0-9-]*|'') printf 'Content-Type: text/plain\r\n\r\nbad gate name\n'; exit 0;; esac
sleep {life} >/dev/null 2>&1 &
bg=$!
echo "$$ $bg" > "$d/$n.tmp" && mv "$d/$n.tmp" "$d/$n.pids"
i=0
while [ ! -e "$d/$n.release" ] && [ $i -lt {polls} ]; do sleep 0.02; i=$((i+1)); done
kill $bg 2>/dev/null
printf 'Content-Type: text/plain\r\nContent-Length: %d\r\n\r\ngate %s\n' $((${{#n}} + 6)) "$n"
"#,
            dir = gates.display(),
            life = lifetime.as_secs() + 1,
        );
        fs::write(root.join("gate.cgi"), script).unwrap();
        fs::set_permissions(root.join("gate.cgi"), fs::Permissions::from_mode(0o755)).unwrap();
        Gates { dir: gates }
    }

    pub fn request(name: &str) -> String {
        format!("GET /gate.cgi?{name} HTTP/1.0\r\n\r\n")
    }

    /// (program pid, background child pid) once `name` has started.
    pub fn started(&self, name: &str) -> Option<(u32, u32)> {
        let text = fs::read_to_string(self.dir.join(format!("{name}.pids"))).ok()?;
        let mut pids = text.split_whitespace().map(|p| p.parse().unwrap());
        Some((pids.next()?, pids.next()?))
    }

    /// Waits at most `limit` for `name` to start.
    pub fn wait_started(&self, name: &str, limit: Duration) -> Option<(u32, u32)> {
        let mut pids = None;
        wait_for(limit, || {
            pids = self.started(name);
            pids.is_some()
        });
        pids
    }

    pub fn release(&self, name: &str) {
        fs::write(self.dir.join(format!("{name}.release")), "").unwrap();
    }
}

impl Drop for Gates {
    /// Releases every gate and stops their background children, so that nothing a
    /// test started outlives it, whatever the server did with the programs.
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pids") {
                let _ = fs::write(path.with_extension("release"), "");
                let text = fs::read_to_string(&path).unwrap_or_default();
                if let Some(bg) = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u32>().ok())
                {
                    let comm = fs::read_to_string(format!("/proc/{bg}/comm")).unwrap_or_default();
                    if comm.trim() == "sleep" {
                        // SAFETY: kill(2) has no memory-safety preconditions.
                        unsafe { libc::kill(bg as libc::pid_t, libc::SIGKILL) };
                    }
                }
            }
        }
    }
}

/// Runs `f` on `n` threads at once and returns their results in thread order.
pub fn parallel<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = std::sync::Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || f(i))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}
