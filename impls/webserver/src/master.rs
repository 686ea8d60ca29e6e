//! The master thread: accepts connections, reads request heads without ever
//! blocking on a client (epoll through mio), and queues complete requests in the
//! bounded buffer, blocking when it is full. It also watches the persistent
//! connections workers hand back and closes clients that stay silent too long.
//!
//! While the buffer is full the master does not accept: new connections wait in the
//! kernel's accept queue until a worker frees a slot.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::buffer::Policy;
use crate::bug::Bugs;
use crate::request::{self, Parsed, MAX_HEAD};
use crate::server::{Back, Shared};
use crate::status::Status;
use crate::worker::{self, Job};

const LISTENER: Token = Token(usize::MAX);
pub const WAKER: Token = Token(usize::MAX - 1);
/// How often idle and slow connections are checked against their deadline.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// A connection the master holds: waiting for (the rest of) a request head.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
    /// In epoll under this slot's token (a request read right at accept time never
    /// needed it).
    registered: bool,
}

/// A connection's slot keeps its token for the connection's whole life, so a
/// persistent connection coming back from a worker needs no epoll call.
enum Slot {
    Free,
    Idle(Conn),
    /// With a worker, and asked to persist: it comes back as `Back::Alive` or is
    /// reported `Back::Closed`. `readable` keeps an edge epoll reported meanwhile,
    /// since edge-triggered epoll will not report it again.
    Busy {
        readable: bool,
        registered: bool,
    },
}

pub struct Master {
    poll: Poll,
    listener: mio::net::TcpListener,
    shared: Arc<Shared>,
    bugs: Bugs,
    conns: Vec<Slot>,
    /// Per slot: the client sent more while a worker had the connection. Shared with
    /// that worker, so it wakes the master on handing the connection back.
    readable: Vec<Arc<AtomicBool>>,
    free: Vec<usize>,
}

impl Master {
    pub fn new(
        poll: Poll,
        mut listener: mio::net::TcpListener,
        shared: Arc<Shared>,
        bugs: Bugs,
    ) -> io::Result<Master> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Master {
            poll,
            listener,
            shared,
            bugs,
            conns: Vec::new(),
            readable: Vec::new(),
            free: Vec::new(),
        })
    }

    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut ready = Vec::new();
        let mut returned = Vec::new();
        let mut accept_pending = false;
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        loop {
            // The master blocks here while every slot is taken.
            let free_slots = if self.bugs.thread_per_request {
                usize::MAX
            } else {
                self.shared.buffer.wait_for_free_slot()
            };
            if accept_pending {
                accept_pending = self.accept(free_slots)?;
            }
            let mut timeout = if accept_pending {
                Duration::ZERO
            } else {
                next_sweep.saturating_duration_since(Instant::now())
            };
            if !timeout.is_zero() {
                // Announce the nap, then look at the list once more: a worker that
                // pushed before seeing the flag is found here, one after wakes us.
                self.shared.master_idle.store(true, Ordering::SeqCst);
                self.shared.take_returned(&mut returned);
                if !returned.is_empty() {
                    timeout = Duration::ZERO;
                }
            }
            let polled = self.poll.poll(&mut events, Some(timeout));
            self.shared.master_idle.store(false, Ordering::SeqCst);
            if let Err(e) = polled {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => accept_pending = true,
                    WAKER => {}
                    Token(i) => ready.push(i),
                }
            }
            self.shared.take_returned(&mut returned);
            for back in returned.drain(..) {
                match back {
                    Back::Alive(i, stream, leftover) => {
                        if let Some(i) = self.watch(i, stream, leftover) {
                            ready.push(i);
                        }
                    }
                    Back::Closed(i) => {
                        if matches!(self.conns.get(i), Some(Slot::Busy { .. })) {
                            self.release(i);
                        }
                    }
                }
            }
            for i in ready.drain(..) {
                self.on_readable(i);
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_EVERY;
            }
        }
    }

    /// Accepts up to `limit` connections; true if more may be waiting.
    fn accept(&mut self, limit: usize) -> io::Result<bool> {
        for _ in 0..limit {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    // SAFETY: the descriptor comes straight from mio's stream, which
                    // gives up ownership; it stays non-blocking.
                    let stream = unsafe { TcpStream::from_raw_fd(stream.into_raw_fd()) };
                    let fd = stream.as_raw_fd();
                    let i = self.insert(Conn {
                        stream,
                        buf: Vec::new(),
                        deadline: Instant::now() + self.shared.timeout,
                        registered: false,
                    });
                    // The request usually arrives with the connection (deferred
                    // accept): read it now and register with epoll only if needed.
                    self.on_readable(i);
                    if !matches!(self.conns.get(i), Some(Slot::Idle(_))) {
                        continue;
                    }
                    match self.register(i, fd) {
                        Ok(()) => {
                            if let Some(Slot::Idle(conn)) = self.conns.get_mut(i) {
                                conn.registered = true;
                            }
                        }
                        Err(e) => {
                            eprintln!("wserver: cannot watch a new connection: {e}");
                            self.remove(i);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                // Out of descriptors, a connection reset before accept...: not fatal;
                // back off briefly so a persistent error does not spin. (No EINTR: a
                // non-blocking accept never sleeps, so no signal can interrupt it.)
                Err(e) => {
                    eprintln!("wserver: accept: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    return Ok(true);
                }
            }
        }
        Ok(true)
    }

    /// Adds a connection to epoll under its slot's token.
    fn register(&self, i: usize, fd: RawFd) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)
    }

    /// Takes back a persistent connection into its slot. It is still in epoll
    /// under the slot's token; an edge reported while it was away is acted on now.
    fn watch(&mut self, i: usize, stream: TcpStream, leftover: Vec<u8>) -> Option<usize> {
        let Some(&Slot::Busy {
            readable,
            registered,
        }) = self.conns.get(i)
        else {
            eprintln!(
                "wserver: a worker returned a connection to slot {i}, which is not waiting for it"
            );
            return None;
        };
        let mut conn = Conn {
            stream,
            buf: leftover,
            deadline: Instant::now() + self.shared.timeout,
            registered,
        };
        if !registered {
            if let Err(e) = self.register(i, conn.stream.as_raw_fd()) {
                eprintln!("wserver: cannot watch a returned connection: {e}");
                self.release(i);
                return None;
            }
            conn.registered = true;
        }
        let check = readable || !conn.buf.is_empty();
        self.conns[i] = Slot::Idle(conn);
        check.then_some(i)
    }

    fn on_readable(&mut self, i: usize) {
        // Events may also name a closed connection's reused slot; reading then
        // finds nothing, which is harmless.
        let conn = match self.conns.get_mut(i) {
            Some(Slot::Idle(conn)) => conn,
            Some(Slot::Busy { readable, .. }) => {
                *readable = true;
                // Before the master's last look at the returned list (`run`): a
                // worker handing the connection back after that look sees this.
                self.readable[i].store(true, Ordering::SeqCst);
                return;
            }
            _ => return,
        };
        let mut eof = false;
        let mut chunk = [0u8; 4096];
        while conn.buf.len() <= MAX_HEAD {
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    conn.buf.extend_from_slice(&chunk[..n]);
                    // A short read drained the socket; a later arrival raises a new
                    // edge, so the extra read that would see WouldBlock is skipped.
                    if n < chunk.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A reset or another failure ends the connection now rather than at
                // its deadline. (No EINTR: a non-blocking read never sleeps.)
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let request = match request::parse(&conn.buf) {
            Parsed::Partial => {
                if eof {
                    self.remove(i);
                }
                return;
            }
            Parsed::Complete(head, len) => Ok((head, len)),
            Parsed::Refused(status, _) => Err(status),
        };
        let Slot::Idle(Conn {
            stream,
            mut buf,
            registered,
            ..
        }) = std::mem::replace(&mut self.conns[i], Slot::Free)
        else {
            unreachable!("slot {i} was idle above");
        };
        let job = match request {
            Ok((head, len)) => {
                // Only a connection that may come back keeps its slot.
                let slot = if head.keep_alive {
                    // Watched from now on (a new one's first request was read before
                    // it was registered): the client's next request, sent once this
                    // answer has arrived, must wake the master through epoll, since a
                    // plain hand-back does not (`Shared::hand_back`). Unwatched, it
                    // would wait for the next sweep.
                    let registered = registered
                        || match self.register(i, stream.as_raw_fd()) {
                            Ok(()) => true,
                            Err(e) => {
                                eprintln!("wserver: cannot watch a kept-alive connection: {e}");
                                false
                            }
                        };
                    self.conns[i] = Slot::Busy {
                        readable: false,
                        registered,
                    };
                    self.readable[i].store(false, Ordering::SeqCst);
                    Some((i, self.readable[i].clone()))
                } else {
                    self.free.push(i);
                    None
                };
                Job {
                    stream,
                    request: Ok(head),
                    leftover: buf.split_off(len),
                    plan: None,
                    slot,
                }
            }
            Err(status) => {
                self.free.push(i);
                Job {
                    stream,
                    request: Err(status),
                    leftover: Vec::new(),
                    plan: None,
                    slot: None,
                }
            }
        };
        self.dispatch(job);
    }

    fn dispatch(&mut self, mut job: Job) {
        if self.bugs.thread_per_request {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new().spawn(move || {
                worker::serve(&shared, job, &mut Vec::new());
            });
            if let Err(e) = spawned {
                eprintln!("wserver: cannot spawn: {e}");
            }
            return;
        }
        let size = match (&job.request, self.shared.buffer.policy()) {
            (Ok(head), Policy::Sff) => {
                let plan = self.shared.site.plan(&head.target);
                let size = plan.size();
                job.plan = Some(plan);
                size
            }
            _ => 0,
        };
        self.shared.buffer.put(job, size);
    }

    /// Closes connections past their deadline: a request head that is taking too
    /// long gets 408, an idle persistent connection is just closed.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let expired = matches!(&self.conns[i], Slot::Idle(c) if c.deadline <= now);
            if expired {
                if let Some(mut conn) = self.remove(i) {
                    if !conn.buf.is_empty() {
                        let status = Status::TIMEOUT;
                        let _ = write!(
                            conn.stream,
                            "HTTP/1.0 {} {}\r\nServer: wserver\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            status.0,
                            status.reason()
                        );
                    }
                }
            }
        }
    }

    fn insert(&mut self, conn: Conn) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.conns[i] = Slot::Idle(conn);
                i
            }
            None => {
                self.conns.push(Slot::Idle(conn));
                self.readable.push(Arc::new(AtomicBool::new(false)));
                self.conns.len() - 1
            }
        }
    }

    /// Takes an idle connection out of its slot and frees the slot.
    fn remove(&mut self, i: usize) -> Option<Conn> {
        match std::mem::replace(self.conns.get_mut(i)?, Slot::Free) {
            Slot::Idle(conn) => {
                self.free.push(i);
                Some(conn)
            }
            other => {
                self.conns[i] = other;
                None
            }
        }
    }

    /// Frees a slot whatever it holds.
    fn release(&mut self, i: usize) {
        if !matches!(self.conns[i], Slot::Free) {
            self.conns[i] = Slot::Free;
            self.free.push(i);
        }
    }
}
