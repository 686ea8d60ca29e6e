//! Loopback ports reserved per test.
//!
//! nextest runs every test in its own process, so an in-process counter cannot keep
//! tests apart. A port is chosen by the kernel (bind to port 0) and then claimed with
//! an exclusive `flock` on a file named after it; another test that is handed the same
//! port before our server binds it sees the lock and asks again.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// A port on 127.0.0.1 that no other test of this suite will use while this value lives.
#[derive(Debug)]
pub struct Port {
    number: u16,
    _lock: File,
}

impl Port {
    /// Reserves a port free for both TCP and UDP.
    pub fn reserve() -> io::Result<Port> {
        let dir = std::env::temp_dir().join("dsconf-ports");
        fs::create_dir_all(&dir)?;
        for _ in 0..200 {
            let number = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            if UdpSocket::bind(("127.0.0.1", number)).is_err() {
                continue;
            }
            let path: PathBuf = dir.join(number.to_string());
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            // SAFETY: flock on a file descriptor we own; no memory is involved.
            let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Port {
                    number,
                    _lock: lock,
                });
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free loopback port after 200 tries",
        ))
    }

    pub fn number(&self) -> u16 {
        self.number
    }

    /// `127.0.0.1:<port>`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_and_bindable() {
        let ports: Vec<Port> = (0..20).map(|_| Port::reserve().unwrap()).collect();
        let mut numbers: Vec<u16> = ports.iter().map(Port::number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), ports.len());
        for port in &ports {
            TcpListener::bind(port.addr()).unwrap();
        }
    }
}
