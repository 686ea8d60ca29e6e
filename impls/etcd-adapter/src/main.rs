//! `etcd-adapter`: one node of the node protocol (Maelstrom's JSON lines, real time)
//! that serves Maelstrom lin-kv requests (read, write, cas) from a real etcd cluster,
//! so the harness's lin-kv tests judge etcd exactly as they judge our kvraft.
//!
//! Each adapter `nJ` starts its own etcd member (`ETCD_BIN`, default `etcd`; data in
//! its node's data dir, etcd's defaults, fsync included) on loopback ports. The
//! members' peer traffic goes through the node protocol, so the harness's partitions
//! and delays apply to it: member J reaches member K at the URL `http://etcd-nK:PK`,
//! which etcd J resolves, through a private `/etc/hosts` (a mount namespace of its
//! own), to a loopback address where adapter J listens; adapter J carries the bytes
//! of each TCP connection as node-protocol messages to `nK`, which writes them to
//! its etcd's peer port, and the answers come back the same way. Every member sees
//! the same URLs (so the same member ids) while each one's connections go through
//! its own adapter. Bytes of a connection carry sequence numbers: a message the
//! network lost leaves a gap, and a gap that stays for a second resets the
//! connection at both ends (etcd reconnects), so a stream is never corrupted.
//!
//! Needs root (or CAP_SYS_ADMIN) for the mount namespace, as the harness's
//! power-loss filesystem does.

mod b64;
mod gateway;
mod member;
mod tunnel;

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use specs::node_protocol::{Body, ErrorCode, Init, Message};

use crate::gateway::Gateway;
use crate::member::Member;
use crate::tunnel::Tunnels;

/// Lines to stdout, whole and in order, from any thread.
#[derive(Clone)]
pub struct Out {
    id: Arc<Mutex<String>>,
    stdout: Arc<Mutex<std::io::Stdout>>,
}

impl Out {
    fn new() -> Out {
        Out {
            id: Arc::new(Mutex::new(String::new())),
            stdout: Arc::new(Mutex::new(std::io::stdout())),
        }
    }

    pub fn send(&self, dest: &str, body: Body) {
        let src = self.id.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let line = Message {
            src,
            dest: dest.to_string(),
            now: None,
            body,
        }
        .to_json();
        let mut stdout = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
        // The harness gone, there is nobody to tell.
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    }

    fn reply(&self, to: &Message, mut body: Body) {
        body.in_reply_to = to.body.msg_id;
        self.send(&to.src, body);
    }
}

/// What the main loop reacts to.
pub enum Event {
    Line(String),
    StdinClosed,
    Tick,
    /// Our etcd opened a peer connection to the member of node `peer`.
    Accepted {
        peer: String,
        stream: TcpStream,
    },
    /// A local end of connection `id` closed or failed.
    LocalClosed(String),
}

fn main() {
    let (events, inbox) = mpsc::channel();
    let lines = events.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if lines.send(Event::Line(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = lines.send(Event::StdinClosed);
    });
    let ticks = events.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        if ticks.send(Event::Tick).is_err() {
            return;
        }
    });
    let mut adapter = Adapter {
        out: Out::new(),
        events,
        node: None,
    };
    while let Ok(event) = inbox.recv() {
        match event {
            Event::Line(line) => adapter.on_line(&line),
            Event::StdinClosed => break,
            Event::Tick => adapter.on_tick(),
            Event::Accepted { peer, stream } => {
                if let Some(n) = &mut adapter.node {
                    n.tunnels.accepted(&peer, stream);
                }
            }
            Event::LocalClosed(id) => {
                if let Some(n) = &mut adapter.node {
                    n.tunnels.local_closed(&id);
                }
            }
        }
    }
    // Dropping the member kills etcd.
    drop(adapter);
}

struct Adapter {
    out: Out,
    events: Sender<Event>,
    node: Option<Node>,
}

/// A node after `init`.
struct Node {
    id: String,
    peers: Vec<String>,
    member: Member,
    tunnels: Tunnels,
    gateway: Arc<Gateway>,
    last_hello: Option<Instant>,
}

impl Adapter {
    fn on_line(&mut self, line: &str) {
        let message: Message = match serde_json::from_str(line) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("ignoring a line that is not a message ({e}): {line}");
                return;
            }
        };
        if message.body.kind == "init" {
            return self.init(&message);
        }
        let Some(node) = &mut self.node else {
            let text = "not initialised: init comes first";
            eprintln!("{text}; ignoring {line}");
            return;
        };
        match message.body.kind.as_str() {
            "etcd_hello" => node.on_hello(&message, &self.out, &self.events),
            "tcp" => node.tunnels.on_message(&message),
            "tcp_reset" => node.tunnels.on_reset(&message),
            "read" | "write" | "cas" => node.on_request(message, &self.out),
            _ if message.body.in_reply_to.is_some() => {
                eprintln!("ignoring a reply that answers nothing: {line}");
            }
            other => {
                let text = format!("unsupported request {other:?}: lin-kv's read, write and cas");
                self.out
                    .reply(&message, Body::error(ErrorCode::NotSupported, text));
            }
        }
    }

    fn init(&mut self, message: &Message) {
        let init = match Init::from_body(&message.body) {
            Ok(i) => i,
            Err(e) => {
                let body = Body::error(ErrorCode::MalformedRequest, e);
                return self.out.reply(message, body);
            }
        };
        if init.lockstep {
            eprintln!("etcd runs on its own clock: run the harness with --time real");
        }
        *self.out.id.lock().unwrap_or_else(|e| e.into_inner()) = init.node_id.clone();
        let data_dir = init.data_dir.clone().map_or_else(
            || std::env::temp_dir().join(format!("etcd-adapter-{}", std::process::id())),
            Into::into,
        );
        let member = match Member::new(&init.node_id, &data_dir) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let gateway = Arc::new(Gateway::new(SocketAddr::from((
            [127, 0, 0, 1],
            member.client_port,
        ))));
        let peers: Vec<String> = (init.node_ids.iter())
            .filter(|n| **n != init.node_id)
            .cloned()
            .collect();
        let tunnels = Tunnels::new(
            &init.node_id,
            member.peer_port,
            self.out.clone(),
            self.events.clone(),
        );
        self.out.reply(message, Body::new("init_ok"));
        let mut node = Node {
            id: init.node_id,
            peers,
            member,
            tunnels,
            gateway,
            last_hello: None,
        };
        node.hello(&self.out, None);
        self.node = Some(node);
    }

    fn on_tick(&mut self) {
        let Some(node) = &mut self.node else {
            return;
        };
        node.tunnels.tick();
        let due = node
            .last_hello
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
        if !node.member.knows_all(&node.peers) && due {
            node.hello(&self.out, None);
        }
    }
}

impl Node {
    /// Tells the other nodes (or `to`) our member's peer port.
    fn hello(&mut self, out: &Out, to: Option<&str>) {
        let body = Body::new("etcd_hello")
            .with("peer_port", self.member.peer_port)
            .with("knows_all", self.member.knows_all(&self.peers));
        match to {
            Some(peer) => out.send(peer, body),
            None => {
                for peer in &self.peers {
                    out.send(peer, body.clone());
                }
                self.last_hello = Some(Instant::now());
            }
        }
    }

    fn on_hello(&mut self, message: &Message, out: &Out, events: &Sender<Event>) {
        let Some(port) = message
            .body
            .u64("peer_port")
            .and_then(|p| u16::try_from(p).ok())
        else {
            eprintln!("a hello without a peer port: {}", message.body.to_json());
            return;
        };
        self.member.learn(&message.src, port);
        if message.body.get("knows_all") != Some(&Value::Bool(true)) {
            self.hello(out, Some(&message.src));
        }
        if self.member.knows_all(&self.peers) && !self.member.started() {
            let ports = self.member.peer_ports();
            let entrances = match self.tunnels.open_entrances(&ports, events) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("{}: cannot listen for our member's peers: {e}", self.id);
                    std::process::exit(1);
                }
            };
            if let Err(e) = self.member.start(&entrances) {
                eprintln!("{}: {e}", self.id);
                std::process::exit(1);
            }
        }
    }

    fn on_request(&mut self, message: Message, out: &Out) {
        if !self.member.started() {
            let body = Body::error(
                ErrorCode::TemporarilyUnavailable,
                "etcd is not started yet: the nodes are still exchanging ports",
            );
            return out.reply(&message, body);
        }
        let gateway = self.gateway.clone();
        let out = out.clone();
        std::thread::spawn(move || {
            let answer = gateway::serve(&gateway, &message.body);
            out.reply(&message, answer);
        });
    }
}
