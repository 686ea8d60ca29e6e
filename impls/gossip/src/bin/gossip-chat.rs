//! `gossip-chat <id> <n> <port>`: the course's chat server (see `gossip::chat`).
//!
//! Threads read the sockets and hand whole lines to one loop that owns the gossip
//! core, so the core stays single-threaded; the loop sleeps until a line arrives or
//! the core's next wake-up, so an idle server uses no CPU between its anti-entropy
//! rounds. A neighbour that is down is simply not reached: its connection is made
//! again at the next send.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use gossip::chat::{self, ChatLog, Command, Lines};
use gossip::core::{Gossip, Output};
use gossip::{wire, Bug};
use serde_json::{Map, Value};

enum Event {
    /// A line from the proxy, and where to answer it.
    Proxy(Vec<u8>, TcpStream),
    /// A line from a neighbour.
    Peer(Vec<u8>),
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match &args[..] {
        [id, n, port] => match (id.parse::<u64>(), n.parse::<u64>(), port.parse::<u16>()) {
            (Ok(id), Ok(n), Ok(port)) if id < n => Some((id, n, port)),
            _ => None,
        },
        _ => None,
    };
    let Some((id, n, port)) = parsed else {
        eprintln!("usage: gossip-chat <id> <n> <port>  (0 <= id < n)");
        std::process::exit(2);
    };
    if let Err(e) = serve(id, n, port) {
        eprintln!("gossip-chat {id}: {e}");
        std::process::exit(1);
    }
}

fn serve(id: u64, n: u64, port: u16) -> Result<(), String> {
    let bug = Bug::from_env()?;
    let config = gossip::config_from_env()?;
    let peers = std::env::var("GOSSIP_CHAT_PEERS").ok();
    let peer_port = |i: u64| chat::peer_port(i, peers.as_deref());
    let proxy = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("port {port}: {e}"))?;
    let mine = peer_port(id)?;
    let from_peers =
        TcpListener::bind(("127.0.0.1", mine)).map_err(|e| format!("peer port {mine}: {e}"))?;
    let neighbours: BTreeMap<String, u16> = chat::neighbours(id, n)
        .into_iter()
        .map(|i| Ok((i.to_string(), peer_port(i)?)))
        .collect::<Result<_, String>>()?;

    let (tx, rx) = mpsc::channel();
    accept(proxy, tx.clone(), true);
    accept(from_peers, tx, false);

    // Nothing survives a crash, so each process run is a new origin: the wall clock
    // tells runs apart (this face only runs in real time).
    let incarnation = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let origin = format!("{id}#{incarnation}");
    let mut core = Gossip::new(origin, config, incarnation ^ id, bug);
    let start = Instant::now();
    let now = || start.elapsed().as_nanos() as u64;
    core.set_neighbours(now(), neighbours.keys().cloned().collect());
    let mut log = ChatLog::default();
    let mut links: BTreeMap<String, TcpStream> = BTreeMap::new();
    eprintln!("gossip-chat {id} of {n}: proxy port {port}, peer port {mine}");

    loop {
        let event = match core.next_wake() {
            Some(at) => rx.recv_timeout(Duration::from_nanos(at.saturating_sub(now()))),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match event {
            Ok(Event::Proxy(line, mut stream)) => {
                let line = String::from_utf8_lossy(&line);
                match chat::parse_command(&line) {
                    Ok(Command::Crash) => std::process::exit(0),
                    Ok(Command::GetChatLog) => {
                        let answer = format!("{}\n", log.line());
                        if let Err(e) = stream.write_all(answer.as_bytes()) {
                            eprintln!("cannot answer the proxy: {e}");
                        }
                    }
                    Ok(Command::Msg { id: mid, text }) => {
                        if log.contains(mid) {
                            eprintln!("ignoring msg {mid}: the log has a message with that ID");
                        } else if let Err(e) =
                            core.broadcast(now(), ChatLog::rumor_text(mid, &text))
                        {
                            eprintln!("ignoring msg {mid}: {e}");
                        }
                    }
                    Err(e) => eprintln!("ignoring a line from the proxy: {e}"),
                }
            }
            Ok(Event::Peer(line)) => on_peer_line(&mut core, &neighbours, &line, now()),
            Err(RecvTimeoutError::Timeout) => core.on_tick(now()),
            Err(RecvTimeoutError::Disconnected) => return Err("listeners stopped".into()),
        }
        for output in core.drain() {
            match output {
                Output::Deliver(rumor) => {
                    if !log.add_rumor(&rumor.text) {
                        eprintln!(
                            "not logging rumor {}/{}: a known or malformed message",
                            rumor.origin, rumor.seq
                        );
                    }
                }
                Output::Send { to, wire } => {
                    let (kind, mut fields) = wire::encode(&wire);
                    fields.insert("type".into(), kind.into());
                    fields.insert("from".into(), id.to_string().into());
                    let line = format!("{}\n", Value::Object(fields));
                    send(&mut links, &neighbours, &to, &line);
                }
            }
        }
    }
}

/// A line from a neighbour: a gossip message with the neighbour's id in `from`.
fn on_peer_line(core: &mut Gossip, neighbours: &BTreeMap<String, u16>, line: &[u8], now: u64) {
    let fields: Map<String, Value> = match serde_json::from_slice(line) {
        Ok(f) => f,
        Err(e) => return eprintln!("ignoring a peer line that is not a JSON object: {e}"),
    };
    let from = fields
        .get("from")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !neighbours.contains_key(from) {
        return eprintln!("ignoring a peer line from {from:?}, not a neighbour");
    }
    let kind = fields
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match wire::decode(kind, &fields) {
        Some(Ok(w)) => core.on_wire(now, from, w),
        Some(Err(e)) => eprintln!("ignoring a {kind} from {from}: {e}"),
        None => eprintln!("ignoring an unknown {kind:?} from {from}"),
    }
}

/// Writes `line` to neighbour `to`, connecting first if needed; a neighbour that is
/// down misses it (gossip repairs that).
fn send(
    links: &mut BTreeMap<String, TcpStream>,
    neighbours: &BTreeMap<String, u16>,
    to: &str,
    line: &str,
) {
    let Some(&port) = neighbours.get(to) else {
        return;
    };
    for _ in 0..2 {
        if !links.contains_key(to) {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                    links.insert(to.to_string(), s);
                }
                Err(_) => return,
            }
        }
        let stream = links.get_mut(to).expect("connected");
        if stream.write_all(line.as_bytes()).is_ok() {
            return;
        }
        // A neighbour that restarted: the old connection is dead, try a new one.
        if let Some(s) = links.remove(to) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Accepts connections on `listener`, a reading thread each, whole lines to `tx`.
fn accept(listener: TcpListener, tx: Sender<Event>, from_proxy: bool) {
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            thread::spawn(move || read_lines(stream, tx, from_proxy));
        }
    });
}

fn read_lines(mut stream: TcpStream, tx: Sender<Event>, from_proxy: bool) {
    let mut lines = Lines::new(chat::MAX_LINE);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for line in lines.push(&buf[..n]) {
            let line = match line {
                Ok(l) => l,
                Err(len) => {
                    eprintln!(
                        "ignoring a line of {len} bytes, over the limit of {}",
                        chat::MAX_LINE
                    );
                    continue;
                }
            };
            let event = if from_proxy {
                match stream.try_clone() {
                    Ok(s) => Event::Proxy(line, s),
                    Err(_) => return,
                }
            } else {
                Event::Peer(line)
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    }
}
