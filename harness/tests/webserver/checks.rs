//! Checks that both the conformance tests and the known-bad tests run: each panics
//! with a message naming the property when the server under test violates it.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use harness::{Seed, TestDir};
use rand::Rng;

use super::support::{docroot, parallel, read_to_close, Response, Subject};

/// With `-t 3`, the process keeps exactly threads + 1 threads (the master and the
/// pool) before, during and after a burst of concurrent requests.
pub fn fixed_pool(subject: &Subject, dir: &TestDir) {
    let root = docroot(dir);
    let server = subject.start(&root, &["-t", "3", "-b", "8"]);
    let want = 4;
    // Once a request has been answered the server has finished starting up.
    assert_eq!(server.get("/index.html").status, 200);
    assert_eq!(
        server.threads(),
        want,
        "fixed pool: thread count at start is not threads + 1"
    );
    let addr = server.addr().to_string();
    let load = std::thread::spawn(move || {
        parallel(6, move |_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /spin.cgi?1 HTTP/1.0\r\n\r\n").unwrap();
            Response::parse(&read_to_close(&mut s)).status
        })
    });
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        seen.push(server.threads());
        std::thread::sleep(Duration::from_millis(50));
    }
    let statuses = load.join().unwrap();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "spin.cgi answers: {statuses:?}"
    );
    seen.push(server.threads());
    assert!(
        seen.iter().all(|&n| n == want),
        "fixed pool: thread count under load was {seen:?}, want always {want} (3 workers + master)"
    );
}

/// Idle, and blocked with every worker busy and the buffer full, the server uses
/// almost no CPU: nothing polls in a loop.
pub fn no_busy_waiting(subject: &Subject, dir: &TestDir) {
    let root = docroot(dir);
    let server = subject.start(&root, &["-t", "2", "-b", "1"]);
    // Let start-up work settle before measuring.
    std::thread::sleep(Duration::from_millis(200));
    let window = Duration::from_millis(1000);
    // 10% of one core: generous for timers and sweeps, far below any spinning.
    let allowance = window / 10;
    let before = server.cpu_time();
    std::thread::sleep(window);
    let idle = server.cpu_time() - before;
    assert!(
        idle <= allowance,
        "busy-waiting: the idle server used {idle:?} of CPU in {window:?}"
    );
    // Two workers busy, one request in the slot, two more waiting on the master.
    let addr = server.addr().to_string();
    let load = std::thread::spawn(move || {
        parallel(5, move |i| {
            std::thread::sleep(Duration::from_millis(60 * i as u64));
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /spin.cgi?1.5 HTTP/1.0\r\n\r\n").unwrap();
            Response::parse(&read_to_close(&mut s)).status
        })
    });
    std::thread::sleep(Duration::from_millis(400));
    let before = server.cpu_time();
    std::thread::sleep(window);
    let blocked = server.cpu_time() - before;
    let statuses = load.join().unwrap();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "spin.cgi answers: {statuses:?}"
    );
    assert!(
        blocked <= allowance,
        "busy-waiting: with the buffer full the server used {blocked:?} of CPU in {window:?}"
    );
}

/// With `-t 1`, one long request holds the only worker while files of different
/// sizes queue up; the order in which they are served is read off the wire.
///
/// Each file is larger than what the socket buffers of one connection can hold and
/// each client reads with a small receive buffer, so the lone worker cannot start
/// the next response before the client has drained most of the current one: the
/// first connection that becomes readable is the one being served.
pub fn service_order(subject: &Subject, dir: &TestDir, policy: &str) -> Vec<&'static str> {
    let root = docroot(dir);
    const MIB: usize = 1 << 20;
    let files = [
        ("big.bin", 9 * MIB),
        ("small.bin", 6 * MIB),
        ("mid.bin", 7 * MIB),
    ];
    for (name, size) in files {
        fs::write(root.join(name), vec![b'x'; size]).unwrap();
    }
    let server = subject.start(&root, &["-t", "1", "-b", "8", "-s", policy]);
    let mut spin = server.connect();
    spin.write_all(b"GET /spin.cgi?1 HTTP/1.0\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut clients = Vec::new();
    for (name, _) in files {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let addr: std::net::SocketAddr = server.addr().parse().unwrap();
        socket.connect(&addr.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        stream
            .write_all(format!("GET /{name} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        clients.push((name, stream));
        // Arrival order must be unambiguous for FIFO.
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(Response::parse(&read_to_close(&mut spin)).status, 200);
    let mut order = Vec::new();
    while !clients.is_empty() {
        let mut fds: Vec<libc::pollfd> = clients
            .iter()
            .map(|(_, s)| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 30_000) };
        assert!(n > 0, "no response started within 30 s");
        let readable: Vec<usize> = (0..fds.len()).filter(|&i| fds[i].revents != 0).collect();
        assert_eq!(
            readable.len(),
            1,
            "with -t 1 two responses were in progress at once"
        );
        let (name, mut stream) = clients.remove(readable[0]);
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let response = Response::parse(&raw);
        assert_eq!(response.status, 200, "GET /{name}");
        order.push(name);
    }
    order
}

pub fn sff_order(subject: &Subject, dir: &TestDir) {
    let order = service_order(subject, dir, "SFF");
    assert_eq!(
        order,
        ["small.bin", "mid.bin", "big.bin"],
        "SFF order: files queued as big, small, mid were served in the order shown"
    );
}

/// Every form of leaving the document root is refused, and the server keeps serving.
pub fn path_traversal(subject: &Subject, dir: &TestDir) {
    let root = docroot(dir);
    let seed = Seed::for_this_test();
    let secret = format!("SECRET-{:016x}", seed.rng(1).gen::<u64>());
    fs::write(dir.join("secret.txt"), &secret).unwrap();
    fs::create_dir_all(root.join("sub")).unwrap();
    symlink("../secret.txt", root.join("link-rel")).unwrap();
    symlink(dir.join("secret.txt"), root.join("link-abs")).unwrap();
    symlink("..", root.join("link-dir")).unwrap();
    symlink("../..", root.join("sub/link-up")).unwrap();
    symlink(dir.path(), root.join("link-absdir")).unwrap();
    let server = subject.start(&root, &["-t", "2", "-b", "4"]);
    let attempts = [
        "/../secret.txt",
        "/../../../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "//../secret.txt",
        "/./../secret.txt",
        "/sub/./../../secret.txt",
        "/link-rel",
        "/link-abs",
        "/link-dir/secret.txt",
        "/sub/link-up/secret.txt",
        "/link-absdir/secret.txt",
        "http://localhost/../secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/..;/secret.txt",
        "/etc/passwd",
        "/..",
        "/../",
        "/%2e%2e",
    ];
    let mut leaks = Vec::new();
    for target in attempts {
        let response = server.exchange(format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes());
        let text = response.text();
        if (200..300).contains(&response.status)
            || text.contains(&secret)
            || text.contains("root:x:0:0")
        {
            leaks.push(format!("{target} -> {}", response.status_line));
        }
    }
    assert!(
        leaks.is_empty(),
        "path traversal: requests outside the root were served: {leaks:?}"
    );
    assert_eq!(
        server.get("/index.html").status,
        200,
        "server stopped serving"
    );
}

/// With `-t 1 -b 1`, the worker busy and the slot taken, further connections stay
/// in the kernel's accept queue, and are all served once slots free up.
pub fn bounded_buffer(subject: &Subject, dir: &TestDir) {
    let root = docroot(dir);
    let server = subject.start(&root, &["-t", "1", "-b", "1"]);
    let addr = server.addr().to_string();
    let clients = std::thread::spawn(move || {
        parallel(6, move |i| {
            // 0: holds the worker; 1: takes the slot; 2..6: must wait.
            let delay = match i {
                0 => 0,
                1 => 300,
                _ => 600,
            };
            std::thread::sleep(Duration::from_millis(delay));
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let path = if i < 2 {
                "/spin.cgi?1.5"
            } else {
                "/index.html"
            };
            s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
                .unwrap();
            Response::parse(&read_to_close(&mut s)).status
        })
    });
    std::thread::sleep(Duration::from_millis(1000));
    let queued = server.accept_queue();
    let statuses = clients.join().unwrap();
    // 4 waiting connections; a master may hold one it accepted before blocking.
    assert!(
        queued >= 3,
        "bounded buffer: with the worker and the slot busy only {queued} of 4 waiting \
         connections stayed in the accept queue (the acceptor did not block)"
    );
    assert_eq!(
        statuses, [200; 6],
        "bounded buffer: not every waiting connection was served"
    );
}
