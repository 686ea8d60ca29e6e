//! Loopback ports reserved per test.
//!
//! nextest runs every test in its own process, so an in-process counter cannot keep
//! tests apart. Ports are drawn below the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), so a client socket that binds port 0
//! (in this test or a parallel one) can never be handed a port a server was given,
//! not even in the moment between a server's crash and its restart. A port that binds
//! is then claimed with an exclusive `flock` on a file named after it; another test
//! that draws the same number sees the lock and draws again.

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
        let (low, high) = reserved_range();
        let span = u32::from(high - low);
        // Start somewhere different in every process so parallel tests rarely meet.
        let mut next = std::process::id().wrapping_mul(2_654_435_761) ^ rand::random::<u32>();
        for _ in 0..500 {
            next = next.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let number = low + (next % span) as u16;
            if TcpListener::bind(("127.0.0.1", number)).is_err()
                || UdpSocket::bind(("127.0.0.1", number)).is_err()
            {
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
            format!("no free loopback port in {low}..{high} after 500 tries"),
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

/// The ports to draw from: from 20000 up to the start of the ephemeral range.
fn reserved_range() -> (u16, u16) {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if ephemeral_low > 21_000 {
        (20_000, ephemeral_low)
    } else {
        // An unusual range: stay above it instead.
        (61_000, 65_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_bindable_and_not_ephemeral() {
        let ports: Vec<Port> = (0..20).map(|_| Port::reserve().unwrap()).collect();
        let (low, high) = reserved_range();
        assert!(ports.iter().all(|p| (low..high).contains(&p.number())));
        let mut numbers: Vec<u16> = ports.iter().map(Port::number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), ports.len());
        for port in &ports {
            TcpListener::bind(port.addr()).unwrap();
        }
    }
}
