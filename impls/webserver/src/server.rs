//! Starting the server: the shared state, the worker pool and the master.

use std::io;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::buffer::{BoundedBuffer, Policy};
use crate::bug::Bugs;
use crate::master::{self, Master};
use crate::site::Site;
use crate::worker::{self, Job};

#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub port: u16,
    pub threads: usize,
    pub buffers: usize,
    pub policy: Policy,
    /// How long a client may take to send a request head, stay idle between
    /// requests, or take to accept a response.
    pub timeout: Duration,
    /// How long a CGI program may run before it is killed.
    pub cgi_timeout: Duration,
    pub bugs: Bugs,
}

/// What a worker reports about a persistent connection it was given.
pub enum Back {
    /// Served and kept open: watch it for the next request (slot, stream, bytes of
    /// the next request already read).
    Alive(usize, TcpStream, Vec<u8>),
    /// Closed by the worker after all (an error, CGI, a failed send): free the slot.
    Closed(usize),
}

/// What the master and the workers share.
pub struct Shared {
    pub buffer: BoundedBuffer<Job>,
    pub site: Site,
    pub timeout: Duration,
    pub cgi_timeout: Duration,
    /// Persistent connections workers have finished with, for the master to watch.
    returned: Mutex<Vec<Back>>,
    waker: mio::Waker,
    /// Set while the master may block in epoll.
    pub master_idle: AtomicBool,
    /// Times a worker woke the master, and persistent connections handed back, for
    /// tests of when a wake-up is needed.
    pub wakes: AtomicU64,
    pub handed_back: AtomicU64,
}

impl Shared {
    /// Gives a persistent connection back to the master, waking it only if it is
    /// (about to be) asleep in epoll: a busy master drains the list on its own.
    ///
    /// A persistent connection wakes it only if it has something for the master to
    /// do now: bytes of the next request already read, or an edge the master saw
    /// while a worker had it (`readable`, set by the master). Otherwise the client's
    /// next request wakes the master itself through the connection's own epoll
    /// registration, and a wake-up now would cost an eventfd write and an extra
    /// `epoll_wait` per request for nothing. Either way the master takes the list
    /// within `SWEEP_EVERY`.
    pub fn hand_back(&self, back: Back, readable: Option<&AtomicBool>) {
        let urgent = match &back {
            Back::Alive(_, _, leftover) => !leftover.is_empty(),
            Back::Closed(_) => true,
        };
        self.returned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(back);
        // Both loads pair with the master's stores before its last look at the list
        // (see `Master::run` and `Master::on_readable`): either it finds our push or
        // we see its flags.
        let urgent = urgent || readable.is_some_and(|r| r.load(Ordering::SeqCst));
        if urgent && self.master_idle.load(Ordering::SeqCst) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.waker.wake() {
                eprintln!("wserver: cannot wake the master: {e}");
            }
        }
        self.handed_back.fetch_add(1, Ordering::SeqCst);
    }

    pub fn take_returned(&self, into: &mut Vec<Back>) {
        let mut returned = self.returned.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut returned);
    }
}

/// Binds, starts the pool and runs the master on the calling thread (never returns
/// unless setting up fails).
pub fn run(config: Config) -> io::Result<()> {
    let (master, _, _) = start(config)?;
    master.run()
}

/// Binds and starts the pool: the master to run, what it shares with the workers,
/// and the port it listens on.
pub fn start(config: Config) -> io::Result<(Master, Arc<Shared>, u16)> {
    let site = Site::open(&config.root, config.bugs.follow_dotdot).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("document root {}: {e}", config.root.display()),
        )
    })?;
    let poll = mio::Poll::new()?;
    let waker = mio::Waker::new(poll.registry(), master::WAKER)?;
    let queue_policy = if config.bugs.ignore_sff {
        Policy::Fifo
    } else {
        config.policy
    };
    let shared = Arc::new(Shared {
        buffer: BoundedBuffer::new(config.buffers, queue_policy, config.bugs.busy_wait),
        site,
        timeout: config.timeout,
        cgi_timeout: config.cgi_timeout,
        returned: Mutex::new(Vec::new()),
        waker,
        master_idle: AtomicBool::new(false),
        wakes: AtomicU64::new(0),
        handed_back: AtomicU64::new(0),
    });
    if !config.bugs.thread_per_request {
        for i in 0..config.threads {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker::run(shared))?;
        }
    }
    // Bound only now, so that a client that can connect finds the pool running.
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = mio::net::TcpListener::bind(addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on port {}: {e}", config.port),
        )
    })?;
    defer_accept(&listener);
    let port = listener.local_addr()?.port();
    eprintln!(
        "wserver: serving {} on port {port} ({} threads, {} buffers, {:?})",
        shared.site.root_path().display(),
        config.threads,
        config.buffers,
        config.policy
    );
    let master = Master::new(poll, listener, shared.clone(), config.bugs)?;
    Ok((master, shared, port))
}

/// Asks the kernel to hand over a connection only once its first bytes arrived, so
/// the master's read right after accept finds the request instead of WouldBlock.
/// Only a speed-up: a kernel that refuses it changes nothing else.
fn defer_accept(listener: &mio::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let seconds: libc::c_int = 1;
    // SAFETY: setsockopt reads an int option from a valid pointer of the given size.
    let _ = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            &seconds as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn config(root: &std::path::Path) -> Config {
        Config {
            root: root.to_path_buf(),
            port: 0,
            threads: 2,
            buffers: 8,
            policy: Policy::Fifo,
            timeout: Duration::from_secs(30),
            cgi_timeout: Duration::from_secs(30),
            bugs: Bugs::default(),
        }
    }

    /// Reads one response of `body_len` body bytes off a persistent connection.
    fn response(stream: &mut TcpStream, body_len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                if got.len() >= end + 4 + body_len {
                    return got;
                }
            }
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the server closed a persistent connection: {got:?}");
            got.extend_from_slice(&chunk[..n]);
        }
    }

    /// A persistent connection whose client sends its next request only after the
    /// worker handed the connection back never needs the waker: that request wakes
    /// the master through epoll. (A client quicker than the hand-back does need it:
    /// the master saw its edge while the worker had the connection.) Pipelined
    /// requests (bytes already read when the worker hands the connection back) are
    /// all answered.
    #[test]
    fn a_returned_connection_wakes_the_master_only_when_it_has_work() {
        let root = std::env::temp_dir().join(format!("wserver-wakes-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.html"), b"hello").unwrap();
        let (master, shared, port) = start(config(&root)).unwrap();
        // The master never returns; the test process ends it.
        std::thread::spawn(move || master.run());
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let request = b"GET /a.html HTTP/1.1\r\nConnection: keep-alive\r\n\r\n";
        for k in 1..=50 {
            client.write_all(request).unwrap();
            let got = response(&mut client, 5);
            assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
            assert!(got.ends_with(b"hello"), "{got:?}");
            // The worker hands the connection back just after it sent the response.
            while shared.handed_back.load(Ordering::SeqCst) < k {
                std::thread::yield_now();
            }
        }
        assert_eq!(shared.wakes.load(Ordering::Relaxed), 0);

        // Three requests in one write: the second and third arrive as leftover.
        client.write_all(&request.repeat(3)).unwrap();
        let mut answered = 0;
        let mut got = Vec::new();
        while answered < 3 {
            got.extend(response(&mut client, 5));
            answered = got.windows(5).filter(|w| w == b"hello").count();
        }
        assert_eq!(answered, 3);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
