//! Starting the server: the shared state, the worker pool and the master.

use std::io;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

impl Shared {
    /// Gives a persistent connection back to the master, waking it only if it is
    /// (about to be) asleep in epoll: a busy master drains the list on its own.
    pub fn hand_back(&self, back: Back) {
        self.returned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(back);
        // Pairs with the master's store before its last look at the list (see
        // `Master::run`): either it sees our push or we see it asleep.
        if self.master_idle.load(Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                eprintln!("wserver: cannot wake the master: {e}");
            }
        }
    }

    pub fn take_returned(&self, into: &mut Vec<Back>) {
        let mut returned = self.returned.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut returned);
    }
}

/// Binds, starts the pool and runs the master on the calling thread (never returns
/// unless setting up fails).
pub fn run(config: Config) -> io::Result<()> {
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
    eprintln!(
        "wserver: serving {} on port {} ({} threads, {} buffers, {:?})",
        shared.site.root_path().display(),
        listener.local_addr()?.port(),
        config.threads,
        config.buffers,
        config.policy
    );
    Master::new(poll, listener, shared, config.bugs)?.run()
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
