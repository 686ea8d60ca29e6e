//! The Rust client: one request at a time, a timeout per attempt, retries until answered.
//!
//! Each client picks a random 64-bit id and numbers its requests; a retry resends the
//! same bytes, so the server can answer it from its table instead of running it twice.
//! A reply is taken only if it carries this client's id and the number of the request
//! being waited for, so a late reply to an earlier attempt, or a duplicate, is never
//! mistaken for the answer to a later request.

use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use specs::mfs::wire::{decode_reply, encode_request, Block, Reply, Request, MAX_DATAGRAM};

/// The known-bad variant of the client (`DFS_BUG=client-no-retry`, the system's one
/// switch, which the server reads too and ignores for this value).
pub const CLIENT_NO_RETRY: &str = "client-no-retry";

/// How a client behaves; [`Options::from_env`] reads the environment.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long one attempt waits for its reply before the request is sent again.
    pub timeout: Duration,
    /// Retry forever (the default) or give up after the first timeout. Giving up is
    /// the known-bad "client that never retries" variant (`DFS_BUG=client-no-retry`).
    pub retry: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(5),
            retry: true,
        }
    }
}

impl Options {
    /// Defaults changed by `MFS_TIMEOUT_MS=<ms>` and `DFS_BUG=client-no-retry`.
    pub fn from_env() -> Options {
        let mut options = Options::default();
        if let Some(ms) = std::env::var("MFS_TIMEOUT_MS")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&ms| ms > 0)
        {
            options.timeout = Duration::from_millis(ms);
        }
        // The server's variants share the switch; they change nothing here.
        if std::env::var("DFS_BUG").as_deref() == Ok(CLIENT_NO_RETRY) {
            options.retry = false;
        }
        options
    }
}

/// Unanswered Shutdown attempts after which the server is taken to have exited: it
/// answers only once and then stops, so a lost reply would otherwise hang the caller.
/// Enough that a network losing a quarter of its datagrams loses every copy of the
/// request once in 4,096 shutdowns (with 3 it was once in 64: the server, never told,
/// kept running); a lost reply costs that many timeouts.
const SHUTDOWN_ATTEMPTS: u32 = 6;

#[derive(Debug)]
pub struct Client {
    socket: UdpSocket,
    id: u64,
    seq: u64,
    options: Options,
    buf: Vec<u8>,
}

impl Client {
    /// A client of the server at `host:port`.
    pub fn connect(host: &str, port: u16, options: Options) -> io::Result<Client> {
        // Servers commonly listen on IPv4 only (ours binds 0.0.0.0), and "localhost"
        // may resolve to ::1 first: prefer an IPv4 address when there is one.
        let addrs: Vec<_> = (host, port).to_socket_addrs()?.collect();
        let server = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
            })?;
        let local = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(server)?;
        Ok(Client {
            socket,
            id: rand::random(),
            seq: 0,
            options,
            buf: vec![0u8; MAX_DATAGRAM + 1],
        })
    }

    /// Sends `request` until its reply arrives.
    pub fn call(&mut self, request: &Request) -> io::Result<Reply> {
        self.seq += 1;
        let datagram = encode_request(self.id, self.seq, request);
        let mut attempts = 0;
        loop {
            attempts += 1;
            // A send can fail while the server is down (ICMP refused): keep trying.
            let _ = self.socket.send(&datagram);
            if let Some(reply) = self.await_reply()? {
                return Ok(reply);
            }
            if *request == Request::Shutdown && attempts >= SHUTDOWN_ATTEMPTS {
                return Ok(Reply::Ok(0));
            }
            if !self.options.retry {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no reply to {request:?} within {:?}", self.options.timeout),
                ));
            }
        }
    }

    /// Waits one timeout for the reply to the current request.
    fn await_reply(&mut self) -> io::Result<Option<Reply>> {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(&mut self.buf) {
                Ok(n) => match decode_reply(&self.buf[..n]) {
                    Ok((h, reply)) if h.client == self.id && h.seq == self.seq => {
                        return Ok(Some(reply))
                    }
                    _ => continue,
                },
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                // The server's port is closed (it is restarting): wait out the attempt.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::thread::sleep(left.min(Duration::from_millis(20)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn status(&mut self, request: &Request) -> io::Result<i32> {
        Ok(self.call(request)?.status())
    }

    pub fn lookup(&mut self, pinum: i32, name: &[u8]) -> io::Result<i32> {
        self.status(&Request::Lookup {
            pinum,
            name: name.to_vec(),
        })
    }

    /// (type, size), or `None` when the server says -1.
    pub fn stat(&mut self, inum: i32) -> io::Result<Option<(i32, i32)>> {
        Ok(match self.call(&Request::Stat { inum })? {
            Reply::Stat { kind, size } => Some((kind, size)),
            _ => None,
        })
    }

    pub fn write(&mut self, inum: i32, block: i32, data: Block) -> io::Result<i32> {
        self.status(&Request::Write { inum, block, data })
    }

    pub fn read(&mut self, inum: i32, block: i32) -> io::Result<Option<Block>> {
        Ok(match self.call(&Request::Read { inum, block })? {
            Reply::Data(b) => Some(b),
            _ => None,
        })
    }

    pub fn creat(&mut self, pinum: i32, kind: i32, name: &[u8]) -> io::Result<i32> {
        self.status(&Request::Creat {
            pinum,
            kind,
            name: name.to_vec(),
        })
    }

    pub fn unlink(&mut self, pinum: i32, name: &[u8]) -> io::Result<i32> {
        self.status(&Request::Unlink {
            pinum,
            name: name.to_vec(),
        })
    }

    pub fn shutdown(&mut self) -> io::Result<i32> {
        self.status(&Request::Shutdown)
    }
}
