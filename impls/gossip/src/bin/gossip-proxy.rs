//! `gossip-proxy`: the course's proxy. It reads commands on stdin, one a line:
//!
//! - `<id> start <n> <port>`: starts server `<id>` of `<n>` (`gossip-chat <id> <n>
//!   <port>`, or the command in `GOSSIP_CHAT_IMPL` with those arguments appended)
//!   and connects to it on `<port>`;
//! - `<id> msg <messageID> <message>`: hands the message to server `<id>`;
//! - `<id> get chatLog`: prints server `<id>`'s one-line answer (`chatLog ...`);
//! - `<id> crash`: tells server `<id>` to exit, and waits until it has;
//! - `exit`: stops every server it started, and itself.
//!
//! A command it cannot carry out is reported on stderr as `error: ...` and the proxy
//! goes on; servers it started die with it (they get SIGKILL when it exits).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

/// How long a server may take to start listening, or to answer `get chatLog`.
const PATIENCE: Duration = Duration::from_secs(10);

fn main() {
    let mut servers: BTreeMap<u64, Server> = BTreeMap::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if words == ["exit"] {
            break;
        }
        if let Err(e) = command(&mut servers, &line, &words) {
            eprintln!("error: {e}");
        }
    }
    for (_, mut s) in servers {
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
}

fn command(servers: &mut BTreeMap<u64, Server>, line: &str, words: &[&str]) -> Result<(), String> {
    let id: u64 = words[0]
        .parse()
        .map_err(|_| format!("{line:?}: expected <id> <command> ... or exit"))?;
    match words.get(1).copied() {
        Some("start") => {
            let [n, port] = words[2..] else {
                return Err(format!("{line:?}: expected <id> start <n> <port>"));
            };
            let n: u64 = n
                .parse()
                .map_err(|_| format!("{line:?}: <n> is not a number"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("{line:?}: <port> is not a port"))?;
            if let Some(mut old) = servers.remove(&id) {
                let _ = old.child.kill();
                let _ = old.child.wait();
            }
            servers.insert(id, start(id, n, port)?);
            Ok(())
        }
        Some("msg") => {
            // The message is the rest of the line after the ID, spaces kept.
            let server = servers
                .get_mut(&id)
                .ok_or_else(|| format!("no server {id}"))?;
            let rest = line.trim_start();
            let at = rest.find("msg").expect("the word is there") + 3;
            let payload = rest[at..].trim_start();
            write(server, &format!("msg {payload}\n"))
        }
        Some("get") if words.get(2) == Some(&"chatLog") && words.len() == 3 => {
            let server = servers
                .get_mut(&id)
                .ok_or_else(|| format!("no server {id}"))?;
            write(server, "get chatLog\n")?;
            let mut answer = String::new();
            match server.reader.read_line(&mut answer) {
                Ok(0) => Err(format!("server {id} closed the connection")),
                Ok(_) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(answer.trim_end_matches(['\r', '\n']).as_bytes());
                    let _ = out.write_all(b"\n");
                    let _ = out.flush();
                    Ok(())
                }
                Err(e) => Err(format!("server {id} did not answer get chatLog: {e}")),
            }
        }
        Some("crash") => {
            let mut server = servers
                .remove(&id)
                .ok_or_else(|| format!("no server {id}"))?;
            let _ = server.stream.write_all(b"crash\n");
            let deadline = Instant::now() + PATIENCE;
            loop {
                if let Ok(Some(_)) = server.child.try_wait() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let _ = server.child.kill();
                    let _ = server.child.wait();
                    return Err(format!("server {id} did not exit on crash; killed"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        _ => Err(format!("{line:?}: unknown command")),
    }
}

fn write(server: &mut Server, text: &str) -> Result<(), String> {
    server
        .stream
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot write to the server: {e}"))
}

/// The server command: `GOSSIP_CHAT_IMPL` split on spaces, or `gossip-chat` beside us.
fn server_command() -> Result<Command, String> {
    if let Ok(cmd) = std::env::var("GOSSIP_CHAT_IMPL") {
        let mut words = cmd.split_whitespace();
        let program = words.next().ok_or("GOSSIP_CHAT_IMPL is empty")?;
        let mut c = Command::new(program);
        c.args(words);
        return Ok(c);
    }
    let me = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    Ok(Command::new(me.with_file_name("gossip-chat")))
}

fn start(id: u64, n: u64, port: u16) -> Result<Server, String> {
    let mut command = server_command()?;
    command
        .args([id.to_string(), n.to_string(), port.to_string()])
        .stdin(Stdio::null());
    // SAFETY: prctl only sets a flag of the child; it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start server {id}: {e}"))?;
    let deadline = Instant::now() + PATIENCE;
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("server {id} exited ({status}) before listening"));
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("server {id} is not listening on {port}: {e}"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    Ok(Server {
        child,
        stream,
        reader,
    })
}
