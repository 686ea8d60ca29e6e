//! What a hostile client cannot do: leave the root, kill or starve the server,
//! leave zombies behind.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use rand::Rng;

use super::checks;
use super::support::{docroot, margin, median, parallel, read_to_close, wait_for, Subject};
use super::{KEEPS_SERVING, RELEASES_CONNECTIONS};
use crate::suite::{fail, property, Context};

/// Every way out of the root is refused; the secret outside it comes from the seed.
pub(super) fn path_traversal_refused(cx: &mut Context) {
    let secret = cx.rng(1).gen::<u64>();
    checks::path_traversal(&Subject::of(cx), cx.dir(), secret);
}

/// Malformed heads get 400, oversized ones 431 (or 400/414), and the server
/// keeps serving after each.
pub(super) fn malformed_and_oversized_requests(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let mut server = Subject::of(cx).start(&root, &["-t", "2", "-b", "4"]);
    let malformed: [&[u8]; 8] = [
        b"garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / FOO/1.0\r\n\r\n",
        b"GET / HTTP/1.0\r\nNoColonHere\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
        b"GET /%zz HTTP/1.0\r\n\r\n",
        b"GET /a%00b HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.0\r\nBad Name: x\r\n\r\n",
    ];
    for raw in malformed {
        let r = server.exchange(raw);
        assert_eq!(
            r.status,
            400,
            "{:?} -> {}",
            String::from_utf8_lossy(raw),
            r.status_line
        );
        assert_eq!(
            server.get("/index.html").status,
            200,
            "not serving after a malformed request"
        );
    }
    let long_line = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(20_000));
    let big_header = format!("GET / HTTP/1.0\r\nX-Big: {}\r\n\r\n", "b".repeat(20_000));
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many_headers = format!("GET / HTTP/1.0\r\n{many}\r\n");
    for (what, raw) in [
        ("a 20 kB request line", long_line),
        ("a 20 kB header", big_header),
        ("500 headers", many_headers),
    ] {
        let r = server.exchange(raw.as_bytes());
        assert!(
            [431, 400, 414].contains(&r.status),
            "{what} -> {}, want 431 (or 400/414)",
            r.status_line
        );
        assert_eq!(
            server.get("/index.html").status,
            200,
            "not serving after {what}"
        );
    }
    server.assert_alive();
}

/// A client that sends its head a byte at a time neither starves another client
/// beyond the timeout nor keeps its connection past it.
pub(super) fn slowloris_does_not_starve_others(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let subject = Subject::of(cx);
    let server = subject.start(&root, &["-t", "1", "-b", "1"]);
    let timeout = subject.client_timeout();
    let baseline = server.baseline();
    let allowed = timeout + margin(timeout, baseline);
    let mut slow = server.connect();
    slow.write_all(b"GET /index.html HTTP/1.0\r\n").unwrap();
    let dripper = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < allowed * 2 {
                if slow.write_all(b"X").is_err() {
                    return Some(start.elapsed());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            None
        })
    };
    // The slow client goes first: the server has taken its partial head.
    assert!(
        server.wait_read(&slow, timeout),
        "the slow client's first line was not read within {timeout:?}"
    );
    let start = Instant::now();
    let other = server.get("/index.html");
    let waited = start.elapsed();
    assert_eq!(other.status, 200);
    assert!(
        waited <= allowed,
        "a normal client waited {waited:?} behind a slowloris client (timeout {timeout:?}, \
         allowed {allowed:?} with the margin from a {baseline:?} request)"
    );
    // The server must cut the slow client off: reading sees the close.
    slow.set_read_timeout(Some(allowed * 2)).unwrap();
    let mut buf = Vec::new();
    let cut = match slow.read_to_end(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    let _ = dripper.join();
    assert!(
        cut,
        "a slowloris connection was still open after {:?}",
        allowed * 2
    );
}

/// Every CGI child is reaped: none is left as a zombie after its response.
pub(super) fn no_zombie_cgi_children(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    fs::write(root.join("fail.cgi"), "#!/bin/sh\nexit 3\n").unwrap();
    fs::set_permissions(root.join("fail.cgi"), fs::Permissions::from_mode(0o755)).unwrap();
    let subject = Subject::of(cx);
    let server = subject.start(&root, &["-t", "2", "-b", "4"]);
    let addr = server.addr().to_string();
    parallel(6, move |i| {
        let path = if i % 3 == 2 {
            "/fail.cgi"
        } else {
            "/spin.cgi?0.1"
        };
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        read_to_close(&mut s)
    });
    let r = server.get("/spin.cgi?0");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("slept"),
        "CGI output is the response: {:?}",
        r.text()
    );
    // Every program has answered, so each is done; the server's own CGI
    // timeout is the longest it may take to notice and reap it.
    let limit = subject.cgi_timeout();
    assert!(
        wait_for(limit, || server.children().is_empty()),
        "CGI children not reaped {limit:?} after their responses: {:?}",
        server.children()
    );
}

/// A server stopped and continued (Ctrl-Z and `fg` in a shell) goes on serving. On
/// Linux a stop makes a blocking `epoll_wait` (and a few other calls) fail with EINTR
/// once the process continues, even with no signal handler installed (signal(7)); a
/// server that takes that for a fatal error exits. Five rounds, each stopping the
/// idle server and then asking it for a page.
pub(super) fn survives_stop_and_continue(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let mut server = Subject::of(cx).start(&root, &["-t", "2", "-b", "4"]);
    for round in 1..=5 {
        server.stop_and_continue();
        let answer = (|| -> std::io::Result<Vec<u8>> {
            let mut s = TcpStream::connect(server.addr())?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut raw = Vec::new();
            s.read_to_end(&mut raw)?;
            Ok(raw)
        })();
        // "HTTP/1.x 200 ..."
        let ok = matches!(&answer, Ok(raw) if raw.starts_with(b"HTTP/1.") && raw.get(9..12) == Some(b"200"));
        if !ok {
            if let Some(status) = server.exited_within(Duration::from_secs(1)) {
                fail(
                    KEEPS_SERVING,
                    format!(
                        "the server exited with {status} after it was stopped (SIGSTOP) and \
                         continued (SIGCONT), round {round}: an interrupted call (EINTR) is \
                         not an error"
                    ),
                );
            }
            fail(
                KEEPS_SERVING,
                format!(
                    "after stop and continue {round}, GET /index.html was not answered 200: {}",
                    match &answer {
                        Ok(raw) =>
                            format!("{:?}", String::from_utf8_lossy(&raw[..raw.len().min(80)])),
                        Err(e) => e.to_string(),
                    }
                ),
            );
        }
    }
}

/// A server out of file descriptors serves again once it has some: connections
/// that arrived meanwhile wait in the listener's backlog, and accepting them fails
/// (EMFILE) until a served connection closes. A server that takes the failure for
/// the end of the backlog never looks at it again until a new connection arrives;
/// one that retries at once spins without serving the connections it holds. The
/// server runs with 64 descriptors; the test opens up to 80 connections, waits until
/// the server holds all 64 with connections left in its backlog, then sends a
/// request on every connection: each must be answered, those of the backlog too,
/// before any further connection is made.
pub(super) fn survives_running_out_of_descriptors(cx: &mut Context) {
    const NOFILE: u64 = 64;
    const CONNECTIONS: usize = 80;
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let server = Subject::of(cx).start_limited(&root, &["-t", "2", "-b", "4"], Some(NOFILE));
    // The yardstick: a request on a new connection while the server has descriptors.
    let times = (0..10)
        .map(|_| {
            let t0 = Instant::now();
            server.get("/index.html");
            t0.elapsed()
        })
        .collect();
    let limit = (median(times) * 1000).max(Duration::from_secs(3));
    let addr: std::net::SocketAddr = server.addr().parse().expect("the server's address");
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        // A full backlog drops the handshake: every connection the server can hold
        // is open.
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => conns.push(s),
            Err(_) => break,
        }
    }
    let exhausted = wait_for(Duration::from_secs(5), || {
        server.open_fds() >= NOFILE && server.accept_queue() > 0
    });
    if !exhausted {
        cx.note(format!(
            "with {} connections open the server held {} of its {NOFILE} descriptors and \
             left {} in its backlog: running out of descriptors was not tested, only that \
             every connection is answered",
            conns.len(),
            server.open_fds(),
            server.accept_queue()
        ));
    }
    for s in &mut conns {
        let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
    }
    let deadline = Instant::now() + limit;
    let mut unanswered = 0;
    for s in &mut conns {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        if !starts_a_response(s) {
            unanswered += 1;
        }
    }
    if unanswered > 0 {
        fail(
            KEEPS_SERVING,
            format!(
                "{unanswered} of {} connections opened while the server ran out of its \
                 {NOFILE} file descriptors got no response within {limit:?} (1000 times a \
                 request's median, at least 3 s): a server that cannot accept (EMFILE) \
                 must try again once a connection closes",
                conns.len()
            ),
        );
    }
    drop(conns);
    let status = server.get("/index.html").status;
    if status != 200 {
        fail(
            KEEPS_SERVING,
            format!(
                "after running out of file descriptors and serving every connection, the \
                 server answered GET /index.html with {status}"
            ),
        );
    }
}

/// Clients that give up in the middle of a request head, half of them closing their
/// end and half resetting the connection, are let go at once: the server closes their
/// descriptors long before the client timeout would have. A server that takes a
/// failed read for "nothing to read yet" holds a reset connection until its timeout,
/// or for ever if it has none, and clients that reset in a loop use up its
/// descriptors.
pub(super) fn abandoned_connections_are_released(cx: &mut Context) {
    const CLIENTS: usize = 4;
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let subject = Subject::of(cx);
    // As many workers as clients: a server whose workers read the heads has one
    // blocked on each.
    let server = subject.start(&root, &["-t", "4", "-b", "4"]);
    let timeout = subject.client_timeout();
    // The fewest descriptors the idle server holds, read after each of three
    // requests: a connection of the start-up probe may still be closing.
    let idle = (0..3)
        .map(|_| {
            server.get("/index.html");
            server.open_fds()
        })
        .min()
        .unwrap_or(0);
    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
        let mut s = server.connect();
        s.write_all(b"GET /index.html HTTP/1.0\r\nHost: loc")
            .unwrap_or_else(|e| fail(property::PROGRESS, format!("no progress: {e}")));
        conns.push(s);
    }
    for s in &conns {
        if !server.wait_read(s, timeout) {
            fail(
                property::PROGRESS,
                format!("no progress: a partial request head was not read within {timeout:?}"),
            );
        }
    }
    if !wait_for(timeout, || server.open_fds() >= idle + CLIENTS as u64) {
        cx.note(format!(
            "the server holds {} descriptors with {CLIENTS} connections open, {idle} idle: \
             it does not keep a descriptor a connection, so their release is not seen",
            server.open_fds()
        ));
        return;
    }
    for (k, s) in conns.into_iter().enumerate() {
        if k % 2 == 1 {
            reset(s);
        } else {
            drop(s);
        }
    }
    let limit = timeout / 2;
    let released = wait_for(limit, || server.open_fds() <= idle);
    if !released {
        fail(
            RELEASES_CONNECTIONS,
            format!(
                "{CLIENTS} clients left in the middle of a request head ({} closed their \
                 end, {} reset the connection), and {limit:?} later the server still held \
                 {} descriptors against {idle} before they came (client timeout \
                 {timeout:?}): a read that fails or finds the end must close the connection",
                CLIENTS - CLIENTS / 2,
                CLIENTS / 2,
                server.open_fds()
            ),
        );
    }
    if server.get("/index.html").status != 200 {
        fail(
            KEEPS_SERVING,
            "not serving after clients reset their connections",
        );
    }
}

/// Closes `s` with a reset (RST) instead of an orderly close: SO_LINGER on, with a
/// zero timeout, makes close(2) abort the connection.
fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid `linger`,
    // on a descriptor `s` owns.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(s);
}

/// Whether the first bytes read from `s`, within its read timeout, begin an HTTP
/// response (a timeout or a close before them is no answer, not a test error).
fn starts_a_response(s: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut chunk = [0u8; 64];
    while head.len() < 7 {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    head.starts_with(b"HTTP/1.")
}
