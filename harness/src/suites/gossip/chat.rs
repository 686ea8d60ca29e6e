//! The `chat` group: the course's chat servers over real TCP, driven through our proxy
//! (`gossip-proxy`) by proxy scripts, and spoken to directly for the line framing.
//!
//! A script (`harness/tests/gossip/scripts/*.chat`) is the proxy's commands, one a
//! line, with `PORT<i>` standing for a port reserved for server `i`; a line
//! `= chatLog ...` is what the `get chatLog` before it must print. The runner sends
//! that `get` again until the answer matches or the quiet limit passes (gossip takes
//! a moment), so a script states where the servers must end up, not when. The
//! servers' peer ports are reserved too and given in `GOSSIP_CHAT_PEERS`; a server
//! that ignores it uses the course's 20000 + id, and then only one test may run at a
//! time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use super::run::quiet_limit;
use super::CONVERGENCE;
use crate::implementation::Implementation;
use crate::ports::Port;
use crate::process::Process;
use crate::suite::{fail, property, Context};

/// The chatLog lines are as the script says.
pub const CHAT_LOG: &str = "chat-log";

/// A proxy and the ports of its servers.
struct Proxy {
    process: Process,
    stdin: ChildStdin,
    lines: Receiver<String>,
    ports: Vec<Port>,
    _peers: Vec<Port>,
    transcript: String,
}

impl Proxy {
    /// Our proxy, starting the context's chat servers, with `n` proxy and peer ports.
    fn start(cx: &mut Context, n: usize) -> Proxy {
        let reserve = |what: &str| {
            (0..n)
                .map(|_| Port::reserve())
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| fail(property::HARNESS, format!("reserving {what} ports: {e}")))
        };
        let ports = reserve("proxy");
        let peers = peer_ports(n);
        let server = cx.program("GOSSIP_CHAT_IMPL").command();
        let mut line = vec![server.get_program().to_string_lossy().into_owned()];
        line.extend(server.get_args().map(|a| a.to_string_lossy().into_owned()));
        let mut command: Command = Implementation::ours("gossip-proxy").command();
        for (k, v) in server.get_envs() {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        let peer_list: Vec<String> = peers.iter().map(|p| p.number().to_string()).collect();
        let log = cx.fresh_dir("chat").with_extension("log");
        let _ = std::fs::create_dir_all(cx.dir());
        let stderr = std::fs::File::create(&log)
            .unwrap_or_else(|e| fail(property::HARNESS, format!("{}: {e}", log.display())));
        cx.evidence().copy(&log);
        command
            .env("GOSSIP_CHAT_IMPL", line.join(" "))
            .env("GOSSIP_CHAT_PEERS", peer_list.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut process = Process::spawn("gossip-proxy", &mut command)
            .unwrap_or_else(|e| fail(property::SETUP, e.to_string()));
        let stdin = process.child_mut().stdin.take().expect("piped");
        let stdout = process.child_mut().stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Proxy {
            process,
            stdin,
            lines,
            ports,
            _peers: peers,
            transcript: String::new(),
        }
    }

    fn send(&mut self, line: &str) {
        self.transcript.push_str(&format!("> {line}\n"));
        if let Err(e) = writeln!(self.stdin, "{line}").and_then(|_| self.stdin.flush()) {
            // How the proxy ended (an exit code, or the signal that killed it) and
            // what it was told and answered: its stderr is the chat log.
            let ended = match self.process.wait_timeout(Duration::from_secs(1)) {
                Ok(Some(status)) => format!("it ended with {status}"),
                Ok(None) => "it is still running".to_string(),
                Err(e) => format!("its status is unknown ({e})"),
            };
            fail(
                property::HARNESS,
                format!(
                    "the proxy stopped reading: {e}; {ended}; its transcript:\n{}",
                    self.transcript
                ),
            );
        }
    }

    /// The next line the proxy prints, within `wait`.
    fn answer(&mut self, wait: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(wait).ok()?;
        self.transcript.push_str(&format!("< {line}\n"));
        Some(line)
    }
}

/// `n` reserved ports in the course's range for servers' peer ports, 20000-29999
/// (the reserved range may reach past it).
fn peer_ports(n: usize) -> Vec<Port> {
    let mut kept = Vec::new();
    let mut passed_over = Vec::new();
    while kept.len() < n {
        match Port::reserve() {
            Ok(p) if p.number() <= 29_999 => kept.push(p),
            Ok(p) if passed_over.len() < 1000 => passed_over.push(p),
            Ok(_) => fail(property::HARNESS, "no free peer port in 20000-29999"),
            Err(e) => fail(property::HARNESS, format!("reserving peer ports: {e}")),
        }
    }
    kept
}

/// Runs the proxy script `script` (its name for messages).
pub(super) fn run_script(cx: &mut Context, name: &str, script: &str) {
    let servers = script
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("start"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1);
    let mut proxy = Proxy::start(cx, servers);
    let mut last_get: Option<String> = None;
    let mut exited = false;
    for (k, raw) in script.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut line = line.to_string();
        for (i, p) in proxy.ports.iter().enumerate().rev() {
            line = line.replace(&format!("PORT{i}"), &p.number().to_string());
        }
        if let Some(expected) = line.strip_prefix("= ") {
            let Some(get) = last_get.take() else {
                fail(
                    property::HARNESS,
                    format!("{name}:{}: an expectation without a get", k + 1),
                );
            };
            if !await_answer(&mut proxy, &get, expected) {
                cx.evidence()
                    .file("transcript.txt", proxy.transcript.clone());
                let got = proxy.transcript.lines().rev().find(|l| l.starts_with("< "));
                let failing = if got.is_some_and(|g| g.starts_with("< chatLog ")) {
                    CONVERGENCE
                } else {
                    CHAT_LOG
                };
                cx.fail(
                    failing,
                    format!(
                        "{name}:{}: `{get}` never printed `{expected}` within {:.1} s; the last answer: {}",
                        k + 1,
                        quiet_limit() as f64 / 1e9,
                        got.unwrap_or("none")
                    ),
                );
                return;
            }
            continue;
        }
        if line.ends_with(" get chatLog") {
            last_get = Some(line.clone());
            continue; // sent by the expectation that follows, or below
        }
        if let Some(get) = last_get.take() {
            flush_get(&mut proxy, &get);
        }
        proxy.send(&line);
        if line == "exit" {
            // The proxy may be gone before another line could reach it.
            exited = true;
            break;
        }
    }
    if let Some(get) = last_get.take() {
        flush_get(&mut proxy, &get);
    }
    if !exited {
        proxy.send("exit");
    }
    cx.evidence()
        .file("transcript.txt", proxy.transcript.clone());
}

/// A get without an expectation: its answer must still be one chatLog line.
fn flush_get(proxy: &mut Proxy, get: &str) {
    proxy.send(get);
    match proxy.answer(Duration::from_secs(10)) {
        Some(a) if a.starts_with("chatLog ") => {}
        other => fail(
            CHAT_LOG,
            format!("`{get}` printed {other:?}, not one chatLog line"),
        ),
    }
}

/// Sends `get` until it prints `expected`, up to the quiet limit.
fn await_answer(proxy: &mut Proxy, get: &str, expected: &str) -> bool {
    let deadline = Instant::now() + Duration::from_nanos(quiet_limit());
    loop {
        proxy.send(get);
        match proxy.answer(Duration::from_secs(10)) {
            Some(a) if a == expected => return true,
            Some(_) => {}
            None => return false,
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Commands split over many writes and merged into one, straight to a server's
/// socket: every command is carried out once, every `get chatLog` answered by exactly
/// one line. Malformed and oversized lines in between are ignored and the server
/// stays up.
pub(super) fn framing(cx: &mut Context) {
    let mut proxy = Proxy::start(cx, 2);
    let (p0, p1) = (proxy.ports[0].number(), proxy.ports[1].number());
    proxy.send(&format!("0 start 2 {p0}"));
    proxy.send(&format!("1 start 2 {p1}"));
    // The proxy prints nothing for start: a get through it says the servers are up.
    flush_get(&mut proxy, "0 get chatLog");
    flush_get(&mut proxy, "1 get chatLog");
    let mut direct = TcpStream::connect(("127.0.0.1", p0)).unwrap_or_else(|e| {
        fail(
            property::PROGRESS,
            format!("no progress: server 0 on {p0}: {e}"),
        )
    });
    let _ = direct.set_nodelay(true);
    let _ = direct.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(direct.try_clone().expect("a socket"));
    let mut next_line = |what: &str| -> String {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 && line.ends_with('\n') => line.trim_end().to_string(),
            _ => fail(
                CHAT_LOG,
                format!("server 0 did not answer {what} with a line (got {line:?})"),
            ),
        }
    };
    let expect = |cx: &mut Context, got: String, want: &str, what: &str| {
        cx.check(got == want, CHAT_LOG, || {
            format!("{what}: server 0 answered {got:?}, expected {want:?}")
        });
    };
    // The empty log is a placeholder, never a bare "chatLog".
    write_all(&mut direct, b"get chatLog\n");
    expect(
        cx,
        next_line("get chatLog"),
        "chatLog <empty>",
        "an empty log",
    );
    // Split: a byte a write.
    for b in b"msg 20 split\nget chatLog\n" {
        write_all(&mut direct, &[*b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    expect(
        cx,
        next_line("a split get"),
        "chatLog split",
        "commands split a byte a write",
    );
    // Merged: three commands and two gets in one write; two answers, in order.
    write_all(
        &mut direct,
        b"msg 7 seven\nget chatLog\nmsg 30 thirty\nget chatLog\n",
    );
    expect(
        cx,
        next_line("merged gets"),
        "chatLog seven,split",
        "the first of two merged gets",
    );
    expect(
        cx,
        next_line("merged gets"),
        "chatLog seven,split,thirty",
        "the second of two merged gets",
    );
    // Malformed and oversized, then a duplicate ID: all ignored.
    let mut junk = b"hello\nmsg x y\nmsg 5 a,b\nmsg 6 \n\xff\xfe\nget chatlog\n".to_vec();
    junk.extend(std::iter::repeat_n(b'z', 2 << 20));
    junk.extend(b"\nmsg 20 again\nget chatLog\n");
    write_all(&mut direct, &junk);
    expect(
        cx,
        next_line("get after junk"),
        "chatLog seven,split,thirty",
        "after malformed, oversized and duplicate commands",
    );
    // One line per get: a later answer is not a leftover of an earlier get.
    write_all(&mut direct, b"msg 40 forty\nget chatLog\n");
    expect(
        cx,
        next_line("the last get"),
        "chatLog seven,split,thirty,forty",
        "a get after every earlier one was answered once",
    );
    // And the neighbour converges on all of it.
    if !await_answer(
        &mut proxy,
        "1 get chatLog",
        "chatLog seven,split,thirty,forty",
    ) {
        cx.fail(
            CONVERGENCE,
            "server 1 did not converge on server 0's messages",
        );
    }
    proxy.send("exit");
    cx.evidence()
        .file("transcript.txt", proxy.transcript.clone());
    let mut rest = Vec::new();
    let _ = direct.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = direct.read_to_end(&mut rest);
}

fn write_all(stream: &mut TcpStream, bytes: &[u8]) {
    if let Err(e) = stream.write_all(bytes) {
        fail(
            property::PROGRESS,
            format!("no progress: writing to server 0: {e}"),
        );
    }
}

/// The pids of the servers the proxy started (its children).
fn server_pids(proxy: &Proxy) -> Vec<u32> {
    let pid = proxy.process.pid();
    let dir = format!("/proc/{pid}/task");
    let mut pids = Vec::new();
    for task in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    pids
}

/// CPU time (user + system) a process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Servers with nothing to do use (almost) no CPU: once three servers agree, over two
/// idle seconds each may use at most a tenth of the time on the CPU (ours gossips a
/// status every 200 ms and sleeps in between; a busy loop would use all of it).
pub(super) fn idle_uses_no_cpu(cx: &mut Context) {
    let mut proxy = Proxy::start(cx, 3);
    for i in 0..3 {
        let port = proxy.ports[i].number();
        proxy.send(&format!("{i} start 3 {port}"));
    }
    proxy.send("0 msg 1 a");
    proxy.send("2 msg 2 b");
    for i in 0..3 {
        if !await_answer(&mut proxy, &format!("{i} get chatLog"), "chatLog a,b") {
            fail(
                CONVERGENCE,
                format!("server {i} did not converge on two messages"),
            );
        }
    }
    let pids = server_pids(&proxy);
    if pids.len() != 3 {
        fail(
            property::HARNESS,
            format!("expected the proxy's 3 servers among its children, found {pids:?}"),
        );
    }
    let before: Vec<Option<u64>> = pids.iter().map(|&p| cpu_ticks(p)).collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let wall = start.elapsed();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    for (k, &pid) in pids.iter().enumerate() {
        let (Some(a), Some(b)) = (before[k], cpu_ticks(pid)) else {
            fail(
                property::PROGRESS,
                format!("no progress: server process {pid} went away while idle"),
            );
        };
        let used = (b - a) as f64 / hz;
        cx.note(format!(
            "server pid {pid}: {:.3} s of CPU in {:.2} s idle",
            used,
            wall.as_secs_f64()
        ));
        if used > wall.as_secs_f64() / 10.0 {
            cx.fail(
                super::OVERHEAD,
                format!(
                    "an idle chat server (pid {pid}) used {used:.2} s of CPU in {:.2} s with nothing to do",
                    wall.as_secs_f64()
                ),
            );
        }
    }
    proxy.send("exit");
}
