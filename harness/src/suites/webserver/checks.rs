//! The checks the known-bad variants are named after: each fails the test with the
//! property it is about (`fail(property, message)`), so a variant rejected for some
//! other reason (or by an unrelated assertion of the same check) does not count as
//! rejected for that property.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use super::support::{
    docroot, parallel, read_to_close, spin_for, wait_for, Gates, Response, Subject,
};
use super::{BOUNDED_BUFFER, FIXED_POOL, KEEPS_SERVING, NO_BUSY_WAITING, SFF_ORDER, STAYS_IN_ROOT};
use crate::suite::{fail, property};

/// With `-t 3`, the process keeps exactly threads + 1 threads (the master and the
/// pool) before, during and after a burst of concurrent requests.
pub fn fixed_pool(subject: &Subject, dir: &Path) {
    let root = docroot(dir);
    let server = subject.start(&root, &["-t", "3", "-b", "8"]);
    let want = 4;
    // Once a request has been answered the server has finished starting up.
    assert_eq!(server.get("/index.html").status, 200);
    let at_start = server.threads();
    let addr = server.addr().to_string();
    let load = std::thread::spawn(move || {
        parallel(6, move |_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /spin.cgi?1 HTTP/1.0\r\n\r\n").unwrap();
            Response::parse(&read_to_close(&mut s)).status
        })
    });
    // Sampled for as long as the burst lasts, however slow the machine.
    let mut seen = vec![at_start];
    while !load.is_finished() {
        seen.push(server.threads());
        std::thread::sleep(Duration::from_millis(20));
    }
    let statuses = load.join().unwrap();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "spin.cgi answers: {statuses:?}"
    );
    seen.push(server.threads());
    if seen.iter().any(|&n| n > want) {
        fail(
            FIXED_POOL,
            format!(
                "fixed pool: threads were created while serving: counts {seen:?}, want always \
                 {want} (3 workers + master)"
            ),
        );
    }
    if seen.iter().any(|&n| n != want) {
        fail(
            FIXED_POOL,
            format!("fixed pool: thread counts {seen:?}, want always {want} (3 workers + master)"),
        );
    }
}

/// Idle, and blocked with every worker busy and the buffer full, the server uses
/// almost no CPU: nothing polls in a loop.
pub fn no_busy_waiting(subject: &Subject, dir: &Path) {
    let root = docroot(dir);
    let gates = Gates::install(dir, &root, subject.cgi_timeout() * 3);
    let server = subject.start(&root, &["-t", "2", "-b", "1"]);
    // An answered request means start-up work is over.
    assert_eq!(server.get("/index.html").status, 200);
    let window = Duration::from_millis(1000);
    // What the server used, against what a thread of ours that spins all the time
    // got in the same window: a spinning server thread gets about as much, a
    // waiting one next to nothing. At most 10% of the window (an idle machine),
    // at most half the yardstick (a loaded one).
    let measure = || {
        let yardstick = spin_for(window);
        let before = server.cpu_time();
        std::thread::sleep(window);
        let used = server.cpu_time() - before;
        let spun = yardstick.join().unwrap();
        (used, spun, (window / 10).min(spun / 2))
    };
    let (idle, spun, allowance) = measure();
    if idle > allowance {
        fail(
            NO_BUSY_WAITING,
            format!(
                "busy-waiting: the idle server used {idle:?} of CPU in {window:?} (allowed \
                 {allowance:?}; a spinning thread got {spun:?})"
            ),
        );
    }
    // Two workers held by gates, one request in the slot, two more waiting on the
    // master; each step waits for the server to have taken the previous one.
    let limit = subject.cgi_timeout();
    let mut clients = Vec::new();
    for name in ["busy-a", "busy-b"] {
        let mut s = server.connect();
        s.write_all(Gates::request(name).as_bytes()).unwrap();
        assert!(
            gates.wait_started(name, limit).is_some(),
            "gate.cgi?{name} did not start within {limit:?} with a worker free"
        );
        clients.push(s);
    }
    let mut slot = server.connect();
    slot.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
    assert!(
        server.wait_read(&slot, limit),
        "the request for the free slot was not read within {limit:?}"
    );
    clients.push(slot);
    for _ in 0..2 {
        let mut s = server.connect();
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
        clients.push(s);
    }
    let (blocked, spun, allowance) = measure();
    gates.release("busy-a");
    gates.release("busy-b");
    let statuses: Vec<u16> = clients
        .iter_mut()
        .map(|s| Response::parse(&read_to_close(s)).status)
        .collect();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "answers after the gates opened: {statuses:?}"
    );
    if blocked > allowance {
        fail(
            NO_BUSY_WAITING,
            format!(
                "busy-waiting: with the buffer full the server used {blocked:?} of CPU in \
                 {window:?} (allowed {allowance:?}; a spinning thread got {spun:?})"
            ),
        );
    }
}

/// With `-t 1`, one long request holds the only worker while files of different
/// sizes queue up; the order in which they are served is read off the wire.
///
/// Each file is larger than what the socket buffers of one connection can hold and
/// each client reads with a small receive buffer, so the lone worker cannot start
/// the next response before the client has drained most of the current one: the
/// first connection that becomes readable is the one being served.
pub fn service_order(subject: &Subject, dir: &Path, policy: &str) -> Vec<&'static str> {
    let root = docroot(dir);
    const MIB: usize = 1 << 20;
    let files = [
        ("big.bin", 9 * MIB),
        ("small.bin", 6 * MIB),
        ("mid.bin", 7 * MIB),
        // A fourth: a buffer that loses arrival order among equal keys (a heap
        // ordered by size alone under FIFO) still serves three in order by chance.
        ("smallest.bin", 5 * MIB),
    ];
    for (name, size) in files {
        fs::write(root.join(name), vec![b'x'; size]).unwrap();
    }
    let gates = Gates::install(dir, &root, subject.cgi_timeout() * 3);
    let server = subject.start(&root, &["-t", "1", "-b", "8", "-s", policy]);
    let limit = subject.cgi_timeout();
    let mut spin = server.connect();
    spin.write_all(Gates::request("hold").as_bytes()).unwrap();
    assert!(
        gates.wait_started("hold", limit).is_some(),
        "gate.cgi did not start within {limit:?} on an idle server"
    );
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
        // Arrival order must be unambiguous for FIFO: the next request is sent only
        // once the server has read this one.
        assert!(
            server.wait_read(&stream, limit),
            "GET /{name} was not read within {limit:?} while the buffer had room"
        );
        clients.push((name, stream));
    }
    gates.release("hold");
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

pub fn sff_order(subject: &Subject, dir: &Path) {
    let order = service_order(subject, dir, "SFF");
    if order != ["smallest.bin", "small.bin", "mid.bin", "big.bin"] {
        fail(
            SFF_ORDER,
            format!(
                "SFF order: files queued as big, small, mid, smallest were served as {order:?}, \
                 want smallest, small, mid, big"
            ),
        );
    }
}

/// Every form of leaving the document root is refused, and the server keeps serving.
/// `secret` is the seed's: what the file outside the root holds, so no server can
/// know it in advance.
pub fn path_traversal(subject: &Subject, dir: &Path, secret: u64) {
    let root = docroot(dir);
    let secret = format!("SECRET-{secret:016x}");
    fs::write(dir.join("secret.txt"), &secret).unwrap();
    fs::create_dir_all(root.join("sub")).unwrap();
    symlink("../secret.txt", root.join("link-rel")).unwrap();
    symlink(dir.join("secret.txt"), root.join("link-abs")).unwrap();
    symlink("..", root.join("link-dir")).unwrap();
    symlink("../..", root.join("sub/link-up")).unwrap();
    symlink(dir, root.join("link-absdir")).unwrap();
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
    if !leaks.is_empty() {
        fail(
            STAYS_IN_ROOT,
            format!("path traversal: requests outside the root were served: {leaks:?}"),
        );
    }
    let after = server.get("/index.html").status;
    if after != 200 {
        fail(
            KEEPS_SERVING,
            format!("after the traversal attempts GET /index.html answered {after}"),
        );
    }
}

/// With `-t 1 -b 1`, the worker busy and the slot taken, further connections stay
/// in the kernel's accept queue, and are all served once slots free up.
pub fn bounded_buffer(subject: &Subject, dir: &Path) {
    let root = docroot(dir);
    let gates = Gates::install(dir, &root, subject.cgi_timeout() * 3);
    let server = subject.start(&root, &["-t", "1", "-b", "1"]);
    let baseline = server.baseline();
    let limit = subject.cgi_timeout();
    // 0: holds the worker; 1: takes the slot; 2..6: must wait.
    let mut holder = server.connect();
    holder
        .write_all(Gates::request("worker").as_bytes())
        .unwrap();
    assert!(
        gates.wait_started("worker", limit).is_some(),
        "gate.cgi did not start within {limit:?} on an idle server"
    );
    let mut slot = server.connect();
    slot.write_all(Gates::request("slot").as_bytes()).unwrap();
    assert!(
        server.wait_read(&slot, limit),
        "the request for the one slot was not read within {limit:?}"
    );
    let mut waiting: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
            s
        })
        .collect();
    // A master may hold one connection it accepted before blocking. A server that
    // never blocks accepts them all at once, so the queue never fills; one that
    // fills it must keep them there: checked again after many request latencies.
    let filled = wait_for(limit, || server.accept_queue() >= 3);
    std::thread::sleep(baseline * 50);
    let queued = server.accept_queue();
    let answered = waiting.iter().filter(|s| has_bytes(s)).count();
    if !filled || queued < 3 || answered > 0 {
        gates.release("worker");
        gates.release("slot");
        fail(
            BOUNDED_BUFFER,
            format!(
                "bounded buffer: with the worker and the slot busy only {queued} of 4 waiting \
                 connections stayed in the accept queue and {answered} were answered (the \
                 acceptor did not block)"
            ),
        );
    }
    gates.release("worker");
    gates.release("slot");
    let mut statuses = vec![
        Response::parse(&read_to_close(&mut holder)).status,
        Response::parse(&read_to_close(&mut slot)).status,
    ];
    statuses.extend(
        waiting
            .iter_mut()
            .map(|s| Response::parse(&read_to_close(s)).status),
    );
    if statuses != [200; 6] {
        fail(
            property::PROGRESS,
            format!("no progress: bounded buffer: not every waiting connection was served: {statuses:?}"),
        );
    }
}

/// Whether the server has done anything with `s` yet (sent bytes, closed or reset
/// it), without waiting.
fn has_bytes(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let untouched =
        matches!(s.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    !untouched
}
