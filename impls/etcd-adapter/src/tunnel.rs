//! etcd's peer connections carried over the node protocol.
//!
//! Our etcd dials another member at a loopback address where we listen (an
//! entrance); each accepted connection gets an id (`origin.nonce.n`) and its bytes
//! go to that member's node as `{"type":"tcp","conn":id,"seq":s,"data":base64}`,
//! then `{"type":"tcp","conn":id,"seq":s,"close":true}` at its end. The receiving
//! node opens a connection to its etcd's peer port at the first message of an id
//! and carries the answers back the same way. Each direction numbers its messages;
//! the receiver writes them in order, holding early ones. A gap that stays for
//! [`GAP_TIMEOUT`] (a message the network lost, or cut by a partition) resets the
//! connection at both ends (`tcp_reset`): a stream loses its tail, never a middle.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use rand::Rng;
use specs::node_protocol::{Body, Message};

use crate::{b64, Event, Out};

/// How long a connection waits for a missing message before it is reset.
const GAP_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Data(Vec<u8>),
    Close,
}

/// One direction of a connection as it arrives: pieces in order, early ones held.
#[derive(Debug, Default)]
struct Reassembly {
    next: u64,
    pending: BTreeMap<u64, Piece>,
    /// Since when a piece has been missing while later ones wait.
    gap_since: Option<Instant>,
}

impl Reassembly {
    /// Takes piece `seq`; returns what can now be written, in order, ending at a
    /// close. Copies of pieces already taken are ignored.
    fn push(&mut self, seq: u64, piece: Piece, now: Instant) -> Vec<Piece> {
        if seq < self.next {
            return Vec::new();
        }
        self.pending.insert(seq, piece);
        let mut ready = Vec::new();
        while let Some(piece) = self.pending.remove(&self.next) {
            self.next += 1;
            let close = piece == Piece::Close;
            ready.push(piece);
            if close {
                self.pending.clear();
                break;
            }
        }
        self.gap_since = match self.pending.is_empty() {
            true => None,
            false => self.gap_since.or(Some(now)),
        };
        ready
    }

    /// True when a piece has been missing for [`GAP_TIMEOUT`]: lost, not late.
    fn stuck(&self, now: Instant) -> bool {
        self.gap_since
            .is_some_and(|t| now.duration_since(t) >= GAP_TIMEOUT)
    }
}

struct Conn {
    peer: String,
    to_local: Sender<Option<Vec<u8>>>,
    arriving: Reassembly,
}

pub struct Tunnels {
    me: String,
    nonce: u64,
    next_id: u64,
    peer_port: u16,
    out: Out,
    events: Sender<Event>,
    conns: HashMap<String, Conn>,
    closed: HashSet<String>,
}

impl Tunnels {
    pub fn new(me: &str, peer_port: u16, out: Out, events: Sender<Event>) -> Tunnels {
        Tunnels {
            me: me.to_string(),
            nonce: rand::thread_rng().gen(),
            next_id: 0,
            peer_port,
            out,
            events,
            conns: HashMap::new(),
            closed: HashSet::new(),
        }
    }

    /// Listens, for each other member, on its peer port at a random loopback
    /// address; returns the addresses.
    pub fn open_entrances(
        &mut self,
        ports: &BTreeMap<String, u16>,
        events: &Sender<Event>,
    ) -> std::io::Result<BTreeMap<String, Ipv4Addr>> {
        let mut rng = rand::thread_rng();
        let mut entrances = BTreeMap::new();
        for (peer, &port) in ports {
            let mut tries = 0;
            let listener = loop {
                let ip = Ipv4Addr::new(
                    127,
                    rng.gen_range(1..=254),
                    rng.gen(),
                    rng.gen_range(1..=254),
                );
                match TcpListener::bind((ip, port)) {
                    Ok(l) => break l,
                    Err(e) if tries >= 50 => return Err(e),
                    Err(_) => tries += 1,
                }
            };
            let SocketAddr::V4(addr) = listener.local_addr()? else {
                unreachable!("bound to an IPv4 address")
            };
            entrances.insert(peer.clone(), *addr.ip());
            let events = events.clone();
            let peer = peer.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let peer = peer.clone();
                    if events.send(Event::Accepted { peer, stream }).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(entrances)
    }

    /// Our etcd opened a connection to `peer`'s member.
    pub fn accepted(&mut self, peer: &str, stream: TcpStream) {
        self.next_id += 1;
        let id = format!("{}.{:x}.{}", self.me, self.nonce, self.next_id);
        let _ = stream.set_nodelay(true);
        let (to_local, rx) = mpsc::channel();
        match stream.try_clone() {
            Ok(reading) => {
                let (out, events) = (self.out.clone(), self.events.clone());
                let (cid, p) = (id.clone(), peer.to_string());
                std::thread::spawn(move || pump(&cid, &p, reading, &out, &events));
                std::thread::spawn(move || write_out(stream, rx));
            }
            Err(e) => {
                eprintln!("{}: cannot use a connection of our etcd: {e}", self.me);
                return;
            }
        }
        self.conns.insert(id, conn(peer, to_local));
    }

    /// The local end of `id` is done: forget it (its close went to the peer).
    pub fn local_closed(&mut self, id: &str) {
        if let Some(c) = self.conns.remove(id) {
            let _ = c.to_local.send(None);
        }
        self.closed.insert(id.to_string());
    }

    /// A piece of a connection from another node.
    pub fn on_message(&mut self, message: &Message) {
        let body = &message.body;
        let (Some(id), Some(seq)) = (body.str("conn"), body.u64("seq")) else {
            eprintln!("a tcp message without conn or seq: {}", body.to_json());
            return;
        };
        let piece = if body.get("close").is_some() {
            Piece::Close
        } else {
            match body.str("data").map(b64::decode) {
                Some(Ok(bytes)) => Piece::Data(bytes),
                _ => {
                    eprintln!("a tcp message without base64 data: {}", body.to_json());
                    return;
                }
            }
        };
        let origin = id.split('.').next().unwrap_or_default();
        if !self.conns.contains_key(id) {
            if self.closed.contains(id) || origin != message.src {
                if !matches!(piece, Piece::Close) {
                    self.reset_peer(&message.src, id);
                }
                return;
            }
            self.open_to_our_etcd(id, &message.src);
        }
        let conn = self.conns.get_mut(id).expect("just made");
        if conn.peer != message.src {
            return;
        }
        for piece in conn.arriving.push(seq, piece, Instant::now()) {
            match piece {
                Piece::Data(bytes) => {
                    let _ = conn.to_local.send(Some(bytes));
                }
                Piece::Close => return self.local_closed(id),
            }
        }
    }

    /// The other end reset `id`.
    pub fn on_reset(&mut self, message: &Message) {
        if let Some(id) = message.body.str("conn") {
            if self.conns.get(id).is_some_and(|c| c.peer == message.src) {
                self.local_closed(id);
            }
        }
    }

    /// Resets the connections whose gap has lasted too long.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let stuck: Vec<(String, String)> = (self.conns.iter())
            .filter(|(_, c)| c.arriving.stuck(now))
            .map(|(id, c)| (id.clone(), c.peer.clone()))
            .collect();
        for (id, peer) in stuck {
            eprintln!("{}: connection {id} lost a message: reset", self.me);
            self.local_closed(&id);
            self.reset_peer(&peer, &id);
        }
    }

    fn reset_peer(&self, peer: &str, id: &str) {
        self.out.send(peer, Body::new("tcp_reset").with("conn", id));
    }

    /// The first piece of a connection `peer`'s etcd opened to ours: connect to our
    /// etcd's peer port and carry its answers back.
    fn open_to_our_etcd(&mut self, id: &str, peer: &str) {
        let (to_local, rx) = mpsc::channel();
        let (out, events) = (self.out.clone(), self.events.clone());
        let (cid, p, port) = (id.to_string(), peer.to_string(), self.peer_port);
        std::thread::spawn(move || {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(s) => s,
                Err(_) => {
                    out.send(&p, Body::new("tcp_reset").with("conn", cid.as_str()));
                    let _ = events.send(Event::LocalClosed(cid));
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            if let Ok(reading) = stream.try_clone() {
                let (out, events) = (out.clone(), events.clone());
                let (cid, p) = (cid.clone(), p.clone());
                std::thread::spawn(move || pump(&cid, &p, reading, &out, &events));
            }
            write_out(stream, rx);
        });
        self.conns.insert(id.to_string(), conn(peer, to_local));
    }
}

fn conn(peer: &str, to_local: Sender<Option<Vec<u8>>>) -> Conn {
    Conn {
        peer: peer.to_string(),
        to_local,
        arriving: Reassembly::default(),
    }
}

/// Writes what arrives for a connection to its local end, until it is closed.
fn write_out(mut stream: TcpStream, rx: Receiver<Option<Vec<u8>>>) {
    while let Ok(Some(bytes)) = rx.recv() {
        if stream.write_all(&bytes).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Carries what the local end of `id` says to `peer`, numbered, then its close.
fn pump(id: &str, peer: &str, mut stream: TcpStream, out: &Out, events: &Sender<Event>) {
    let mut buf = vec![0; 64 * 1024];
    let mut seq = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let body = Body::new("tcp")
                    .with("conn", id)
                    .with("seq", seq)
                    .with("data", b64::encode(&buf[..n]));
                out.send(peer, body);
                seq += 1;
            }
        }
    }
    out.send(
        peer,
        Body::new("tcp")
            .with("conn", id)
            .with("seq", seq)
            .with("close", true),
    );
    let _ = events.send(Event::LocalClosed(id.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(b: &str) -> Piece {
        Piece::Data(b.as_bytes().to_vec())
    }

    /// Pieces that overtake each other are written in order; a copy is written once.
    #[test]
    fn early_pieces_wait_for_the_missing_one() {
        let t0 = Instant::now();
        let mut r = Reassembly::default();
        assert_eq!(r.push(1, data("b"), t0), vec![]);
        assert_eq!(r.push(2, data("c"), t0), vec![]);
        assert!(!r.stuck(t0 + GAP_TIMEOUT / 2));
        assert_eq!(
            r.push(0, data("a"), t0),
            vec![data("a"), data("b"), data("c")]
        );
        assert_eq!(r.push(1, data("b"), t0), vec![], "a copy");
        assert!(!r.stuck(t0 + GAP_TIMEOUT * 2), "no gap left");
        assert_eq!(r.push(3, Piece::Close, t0), vec![Piece::Close]);
    }

    /// A piece missing for the gap timeout was lost: the connection must be reset,
    /// never written past the hole.
    #[test]
    fn a_lasting_gap_is_a_lost_piece() {
        let t0 = Instant::now();
        let mut r = Reassembly::default();
        assert_eq!(r.push(0, data("a"), t0), vec![data("a")]);
        assert_eq!(r.push(2, data("c"), t0), vec![]);
        assert!(!r.stuck(t0));
        assert!(r.stuck(t0 + GAP_TIMEOUT));
        // The close does not skip the hole either.
        assert_eq!(r.push(3, Piece::Close, t0), vec![]);
        assert!(r.stuck(t0 + GAP_TIMEOUT));
    }
}
