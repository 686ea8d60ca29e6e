//! What a server keeps of the connections it has served: nothing, once they are
//! closed. A slot, a buffer or a table entry left behind by each connection is a
//! leak that no short test sees and that a server up for weeks dies of.

use std::fs;
use std::io::Write;

use super::support::{docroot, read_to_close, Server, Subject};
use super::BOUNDED_MEMORY;
use crate::suite::{fail, property, Context};

/// Connections served before the first measurement: what a server grows to once
/// (its workers' buffers, its allocator's arenas, a table sized to its peak) is not
/// a leak.
const WARM_UP: usize = 5_000;
/// Connections served between the two measurements.
const MEASURED: usize = 20_000;
/// Growth allowed over the measured connections, a connection: less than anything
/// a server could keep of one (a slot and its pointers take tens of bytes), more
/// than a page or two of the allocator's noise spread over 20,000.
const BYTES_PER_CONNECTION: u64 = 16;

/// A kept-alive request answered, then one asking to close (the server closes);
/// or, every other connection, a kept-alive request the server refuses (a bad
/// escape, 400), after which it may close the connection or go on to the second.
/// Both requests go in one write, and the last asks to close, so the server closes
/// first: the client's ports are not held in TIME_WAIT.
fn one_connection(server: &Server, refused: bool) {
    let first = if refused {
        "/bad%zzescape"
    } else {
        "/plain.txt"
    };
    let mut s = server.connect();
    let requests = format!(
        "GET {first} HTTP/1.1\r\nConnection: keep-alive\r\n\r\n\
         GET /plain.txt HTTP/1.1\r\nConnection: close\r\n\r\n"
    );
    // A server that closes after the refusal may do so before reading the rest.
    let _ = s.write_all(requests.as_bytes());
    let answer = read_to_close(&mut s);
    // After a refusal the close may be a reset that discards the answer; a request
    // that is served must be answered.
    if !refused && !answer.starts_with(b"HTTP/1.") {
        fail(
            property::PROGRESS,
            format!(
                "no progress: a kept-alive request for /plain.txt got {:?} instead of a response",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ),
        );
    }
}

fn serve(server: &Server, connections: usize) {
    for i in 0..connections {
        one_connection(server, i % 2 == 1);
    }
}

pub(super) fn served_connections_leave_nothing_behind(cx: &mut Context) {
    let root = docroot(cx.dir());
    fs::write(root.join("plain.txt"), "text").unwrap();
    let subject = Subject::of(cx);
    let mut server = subject.start(&root, &[]);
    serve(&server, WARM_UP);
    let before = server.rss_bytes();
    serve(&server, MEASURED);
    let after = server.rss_bytes();
    server.assert_alive();
    let grown = after.saturating_sub(before);
    let allowed = MEASURED as u64 * BYTES_PER_CONNECTION;
    if grown > allowed {
        fail(
            BOUNDED_MEMORY,
            format!(
                "the server's resident memory grew by {} KiB ({:.0} bytes a connection) over \
                 {MEASURED} connections served after a warm-up of {WARM_UP}, from {} KiB to \
                 {} KiB (at most {} KiB allowed): it keeps something of every connection it \
                 has closed (half of them refused a kept-alive request with a bad escape)",
                grown / 1024,
                grown as f64 / MEASURED as f64,
                before / 1024,
                after / 1024,
                allowed / 1024,
            ),
        );
    }
}
