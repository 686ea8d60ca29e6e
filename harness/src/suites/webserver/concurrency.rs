//! The pool of workers: requests overlap, a slow CGI program is cut off, one
//! thread serializes, the pool is fixed and waits without spinning.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::checks;
use super::support::{
    self, docroot, margin, parallel, read_to_close, wait_for, Gates, Response, Subject,
};
use crate::suite::Context;

fn spin_all(server_addr: String, n: usize) -> Duration {
    let start = Instant::now();
    let statuses = parallel(n, move |_| {
        let mut s = TcpStream::connect(&server_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"GET /spin.cgi?1 HTTP/1.0\r\n\r\n").unwrap();
        Response::parse(&read_to_close(&mut s)).status
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    start.elapsed()
}

/// `-t 3`: three CGI requests sent at once all run at the same time: each
/// program reports that it started and waits to be released, and the test sees
/// all three running together before releasing any.
pub(super) fn requests_overlap(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let subject = Subject::of(cx);
    let gates = Gates::install(&dir, &root, subject.cgi_timeout() * 3);
    let server = subject.start(&root, &["-t", "3", "-b", "3"]);
    let names = ["one", "two", "three"];
    let mut clients: Vec<TcpStream> = names
        .iter()
        .map(|name| {
            let mut s = server.connect();
            s.write_all(Gates::request(name).as_bytes()).unwrap();
            s
        })
        .collect();
    // A server running them one at a time starts the next only after the
    // previous one ended (or was killed at the CGI timeout).
    let limit = subject.cgi_timeout();
    let all_started = wait_for(limit, || names.iter().all(|n| gates.started(n).is_some()));
    let pids: Vec<_> = names.iter().map(|n| gates.started(n)).collect();
    let together = all_started
        && pids
            .iter()
            .all(|p| p.is_some_and(|(pid, _)| support::running(pid)));
    for name in names {
        gates.release(name);
    }
    assert!(
        together,
        "3 CGI requests with 3 threads did not run at the same time within {limit:?}: \
         started (program pid, child pid) {pids:?}"
    );
    for (name, s) in names.iter().zip(clients.iter_mut()) {
        let r = Response::parse(&read_to_close(s));
        assert_eq!((r.status, r.text()), (200, format!("gate {name}\n")));
    }
}

/// A CGI program that runs too long is cut off at the server's CGI timeout:
/// with `-t 2`, two programs that never finish must not keep a static request
/// waiting past that timeout (plus a margin measured in the run), their
/// clients get a 5xx answer or a closed connection, and the programs and the
/// processes they started are gone afterwards.
pub(super) fn slow_cgi_does_not_hold_workers(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let subject = Subject::of(cx);
    let bound = subject.cgi_timeout();
    let gates = Gates::install(&dir, &root, bound * 4);
    let server = subject.start(&root, &["-t", "2", "-b", "2"]);
    let baseline = server.baseline();
    let allowed = bound + margin(bound, baseline);
    let slow: Vec<_> = ["slow-a", "slow-b"]
        .into_iter()
        .map(|name| {
            let mut s = server.connect();
            s.set_read_timeout(Some(allowed * 2)).unwrap();
            s.write_all(Gates::request(name).as_bytes()).unwrap();
            let pids = gates.wait_started(name, bound).unwrap_or_else(|| {
                panic!("gate.cgi?{name} did not start within {bound:?} on an idle server")
            });
            (name, s, pids)
        })
        .collect();
    // Both workers are now held, for good unless the server cuts them off.
    let start = Instant::now();
    let mut s = server.connect();
    s.set_read_timeout(Some(allowed)).unwrap();
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    let waited = start.elapsed();
    assert!(
        read.is_ok() && waited <= allowed,
        "a static request waited {waited:?} (no answer: {}) behind 2 CGI programs that \
         never finish, with -t 2; allowed: the CGI timeout {bound:?} + {:?} \
         (margin from a {baseline:?} request)",
        read.is_err(),
        allowed - bound
    );
    assert_eq!(Response::parse(&raw).status, 200, "the static request");
    for (name, mut s, (program, child)) in slow {
        let mut raw = Vec::new();
        let closed = match s.read_to_end(&mut raw) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(
            closed,
            "gate.cgi?{name}: the connection was still open {:?} after the CGI timeout",
            start.elapsed()
        );
        if support::find(&raw, b"\r\n\r\n").is_some() {
            let r = Response::parse(&raw);
            assert!(
                r.status >= 500,
                "gate.cgi?{name} ran past the CGI timeout but was answered {}",
                r.status_line
            );
            // Ours, which had sent nothing yet, says so (docs/webserver.md).
            assert!(
                !subject.is_ours() || r.status == 504,
                "gate.cgi?{name}: {}, want 504 Gateway Timeout",
                r.status_line
            );
        } else {
            assert!(
                !subject.is_ours(),
                "gate.cgi?{name}: closed without a 504 ({} bytes)",
                raw.len()
            );
        }
        let gone = wait_for(margin(bound, baseline), || {
            !support::exists(program) && !support::running(child)
        });
        assert!(
            gone,
            "gate.cgi?{name} past the CGI timeout: program {program} {}, its child \
             {child} {}",
            describe(program),
            describe(child)
        );
    }
}

fn describe(pid: u32) -> &'static str {
    if support::running(pid) {
        "still running"
    } else if support::exists(pid) {
        "a zombie (not reaped)"
    } else {
        "gone"
    }
}

/// `-t 1`: two `spin.cgi?1` at once take two seconds.
pub(super) fn one_thread_serializes(cx: &mut Context) {
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    let server = Subject::of(cx).start(&root, &["-t", "1", "-b", "2"]);
    let took = spin_all(server.addr().to_string(), 2);
    assert!(
        took >= Duration::from_millis(1950),
        "2 x spin.cgi?1 with 1 thread took only {took:?}: more than one worker ran"
    );
}

pub(super) fn fixed_pool(cx: &mut Context) {
    checks::fixed_pool(&Subject::of(cx), cx.dir());
}

pub(super) fn no_busy_waiting(cx: &mut Context) {
    checks::no_busy_waiting(&Subject::of(cx), cx.dir());
}
