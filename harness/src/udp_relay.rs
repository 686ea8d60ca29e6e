//! A UDP relay that stands between clients and a server and misbehaves on purpose.
//!
//! Clients send to [`UdpRelay::addr`]; the relay forwards each datagram to the server
//! from a socket of its own per client, and forwards the server's replies back, in both
//! directions dropping, duplicating and delaying datagrams as [`Faults`] says. A random
//! delay per datagram also reorders them. Decisions come from a seeded generator, and
//! [`UdpRelay::stats`] tells a test how many faults really happened, so a test that
//! means to exercise loss can assert that there was loss.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the relay does to each datagram, in each direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability that a datagram is dropped.
    pub drop: f64,
    /// Probability that a datagram not dropped is delivered twice.
    pub duplicate: f64,
    /// Each copy is delayed by a uniform time in `0..=max_delay`.
    pub max_delay: Duration,
    /// A duplicate's second copy is held back a further uniform `0..=duplicate_lag`, so
    /// that it tends to arrive after the requests that followed it: the case that shows
    /// whether a server runs a request twice.
    pub duplicate_lag: Duration,
}

impl Faults {
    /// A relay that only forwards.
    pub fn none() -> Faults {
        Faults {
            drop: 0.0,
            duplicate: 0.0,
            max_delay: Duration::ZERO,
            duplicate_lag: Duration::ZERO,
        }
    }
}

/// Counts of what the relay did so far (both directions together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub received: u64,
    pub dropped: u64,
    pub duplicated: u64,
    /// Datagrams overtaken by one received after them.
    pub reordered: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

struct Delivery {
    socket: Arc<UdpSocket>,
    to: Option<SocketAddr>,
    data: Vec<u8>,
    /// Arrival order, to count reorderings.
    arrival: u64,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    items: HashMap<u64, Delivery>,
    next: u64,
    arrivals: u64,
    last_sent_arrival: u64,
}

struct Shared {
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    queue: Mutex<Queue>,
    wake: Condvar,
    stop: AtomicBool,
    counters: Counters,
}

impl Shared {
    /// Decides the fate of one datagram and queues its copies.
    fn schedule(&self, socket: &Arc<UdpSocket>, to: Option<SocketAddr>, data: &[u8]) {
        let faults = *self.faults.lock().unwrap();
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let delays: Vec<Duration> = {
            let mut rng = self.rng.lock().unwrap();
            if rng.gen_bool(faults.drop.clamp(0.0, 1.0)) {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let copies = if rng.gen_bool(faults.duplicate.clamp(0.0, 1.0)) {
                self.counters.duplicated.fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
            let mut uniform = |max: Duration| {
                let max = max.as_micros() as u64;
                Duration::from_micros(if max == 0 { 0 } else { rng.gen_range(0..=max) })
            };
            (0..copies)
                .map(|copy| {
                    let lag = if copy == 1 {
                        uniform(faults.duplicate_lag)
                    } else {
                        Duration::ZERO
                    };
                    uniform(faults.max_delay) + lag
                })
                .collect()
        };
        let now = Instant::now();
        let mut q = self.queue.lock().unwrap();
        q.arrivals += 1;
        let arrival = q.arrivals;
        for delay in delays {
            let id = q.next;
            q.next += 1;
            q.heap.push(Reverse((now + delay, id)));
            q.items.insert(
                id,
                Delivery {
                    socket: socket.clone(),
                    to,
                    data: data.to_vec(),
                    arrival,
                },
            );
        }
        drop(q);
        self.wake.notify_one();
    }

    /// Sends each queued datagram when its time comes.
    fn deliver_loop(&self) {
        let mut q = self.queue.lock().unwrap();
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            match q.heap.peek().copied() {
                Some(Reverse((at, id))) if at <= now => {
                    q.heap.pop();
                    let d = q.items.remove(&id).expect("queued item");
                    if d.arrival < q.last_sent_arrival {
                        self.counters.reordered.fetch_add(1, Ordering::Relaxed);
                    }
                    q.last_sent_arrival = q.last_sent_arrival.max(d.arrival);
                    drop(q);
                    // The far side may be gone (a killed server): that is its loss.
                    let _ = match d.to {
                        Some(to) => d.socket.send_to(&d.data, to),
                        None => d.socket.send(&d.data),
                    };
                    q = self.queue.lock().unwrap();
                }
                Some(Reverse((at, _))) => {
                    q = self.wake.wait_timeout(q, at - now).unwrap().0;
                }
                None => {
                    q = self
                        .wake
                        .wait_timeout(q, Duration::from_millis(50))
                        .unwrap()
                        .0;
                }
            }
        }
    }
}

/// A running relay; stopped and its threads joined on drop.
pub struct UdpRelay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

const POLL: Duration = Duration::from_millis(20);

impl UdpRelay {
    /// Starts a relay on a fresh loopback port in front of `server`.
    pub fn start(server: SocketAddr, faults: Faults, seed: u64) -> io::Result<UdpRelay> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        front.set_read_timeout(Some(POLL))?;
        let addr = front.local_addr()?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let threads = Arc::new(Mutex::new(Vec::new()));
        let s = shared.clone();
        threads
            .lock()
            .unwrap()
            .push(std::thread::spawn(move || s.deliver_loop()));
        let s = shared.clone();
        let t = threads.clone();
        threads.lock().unwrap().push(std::thread::spawn(move || {
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            while !s.stop.load(Ordering::Relaxed) {
                let (n, client) = match front.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(_) => continue,
                };
                let up = match upstreams.get(&client) {
                    Some(up) => up.clone(),
                    None => {
                        let Ok(up) = UdpSocket::bind("127.0.0.1:0")
                            .and_then(|u| u.connect(server).map(|_| u))
                            .and_then(|u| u.set_read_timeout(Some(POLL)).map(|_| u))
                        else {
                            continue;
                        };
                        let up = Arc::new(up);
                        upstreams.insert(client, up.clone());
                        let (s2, up2, front2) = (s.clone(), up.clone(), front.clone());
                        t.lock().unwrap().push(std::thread::spawn(move || {
                            let mut buf = vec![0u8; 65536];
                            while !s2.stop.load(Ordering::Relaxed) {
                                if let Ok(n) = up2.recv(&mut buf) {
                                    s2.schedule(&front2, Some(client), &buf[..n]);
                                }
                            }
                        }));
                        up
                    }
                };
                s.schedule(&up, None, &buf[..n]);
            }
        }));
        Ok(UdpRelay {
            addr,
            shared,
            threads,
        })
    }

    /// Where clients send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the faults from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    pub fn stats(&self) -> RelayStats {
        let c = &self.shared.counters;
        RelayStats {
            received: c.received.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            duplicated: c.duplicated.load(Ordering::Relaxed),
            reordered: c.reordered.load(Ordering::Relaxed),
        }
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        loop {
            let next = self.threads.lock().unwrap().pop();
            match next {
                Some(handle) => {
                    let _ = handle.join();
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(POLL)).unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    sock.send_to(&buf[..n], from).unwrap();
                }
            }
        });
        (addr, stop, h)
    }

    fn received(client: &UdpSocket, within: Duration) -> Vec<u8> {
        client
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while Instant::now() < deadline {
            if let Ok(n) = client.recv(&mut buf) {
                got.push(buf[..n][0]);
            }
        }
        got
    }

    #[test]
    fn forwards_both_ways_without_faults() {
        let (server, stop, h) = echo_server();
        let relay = UdpRelay::start(server, Faults::none(), 1).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(relay.addr()).unwrap();
        for i in 0..20u8 {
            client.send(&[i]).unwrap();
        }
        let got = received(&client, Duration::from_millis(300));
        assert_eq!(got, (0..20).collect::<Vec<u8>>());
        assert_eq!(relay.stats().received, 40);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn drops_duplicates_and_reorders_when_told() {
        let (server, stop, h) = echo_server();
        let faults = Faults {
            drop: 0.2,
            duplicate: 0.3,
            max_delay: Duration::from_millis(20),
            duplicate_lag: Duration::ZERO,
        };
        let relay = UdpRelay::start(server, faults, 7).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(relay.addr()).unwrap();
        for i in 0..100u8 {
            client.send(&[i]).unwrap();
        }
        let got = received(&client, Duration::from_millis(500));
        let stats = relay.stats();
        assert!(
            stats.dropped > 0 && stats.duplicated > 0 && stats.reordered > 0,
            "{stats:?}"
        );
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_ne!(got, sorted, "delays should reorder");
        sorted.dedup();
        assert!(sorted.len() < 100, "some datagrams should be lost");
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }
}
