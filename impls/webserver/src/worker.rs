//! A worker: takes a connection with a parsed request from the buffer, writes the
//! response, and hands a persistent connection back to the master instead of
//! waiting on it, so an idle client never ties up a worker.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::request::Head;
use crate::server::{Back, Shared};
use crate::site::Plan;
use crate::status::Status;

/// Files up to this size are read and sent with the header in one write; larger ones
/// go out with sendfile.
const INLINE_LIMIT: u64 = 64 * 1024;

/// One unit of work in the buffer.
pub struct Job {
    pub stream: TcpStream,
    pub request: Result<Head, Status>,
    /// Bytes the client sent after this request's head (a pipelined next request).
    pub leftover: Vec<u8>,
    /// Already decided by the master under SFF (it needs the file size to queue).
    pub plan: Option<Plan>,
    /// The master's slot for a connection that asked to persist: it must hear back
    /// (`Back::Alive` or `Back::Closed`). With it, the slot's flag the master sets
    /// when the client sends more while a worker has the connection.
    pub slot: Option<(usize, Arc<AtomicBool>)>,
}

pub fn run(shared: Arc<Shared>) {
    let mut scratch = Vec::with_capacity(INLINE_LIMIT as usize + 512);
    loop {
        let job = shared.buffer.take();
        serve(&shared, job, &mut scratch);
    }
}

pub fn serve(shared: &Shared, job: Job, scratch: &mut Vec<u8>) {
    let Job {
        stream,
        request,
        leftover,
        plan,
        slot,
    } = job;
    let deadline = Instant::now() + shared.timeout;
    let head = match request {
        Ok(head) => head,
        Err(status) => {
            if send_error(&stream, "HTTP/1.0", status, false, deadline, scratch).is_ok() {
                discard_unread(&stream);
            }
            if let Some((i, _)) = slot {
                shared.hand_back(Back::Closed(i), None);
            }
            return;
        }
    };
    let version = if head.minor_version == 1 {
        "HTTP/1.1"
    } else {
        "HTTP/1.0"
    };
    let plan = plan.unwrap_or_else(|| shared.site.plan(&head.target));
    let mut keep = head.keep_alive;
    let sent = match plan {
        Plan::Error(status) => {
            keep &= status != Status::BAD_REQUEST;
            send_error(&stream, version, status, keep, deadline, scratch)
        }
        Plan::Redirect(location) => {
            scratch.clear();
            let body = format!(
                "<html><body><a href=\"{}\">moved</a></body></html>\n",
                crate::target::html_escape(&location)
            );
            write_head(
                scratch,
                version,
                Status::MOVED,
                body.len() as u64,
                "text/html",
                keep,
            );
            // The header block ends with a blank line; insert Location before it.
            scratch.truncate(scratch.len() - 2);
            scratch.extend_from_slice(format!("Location: {location}\r\n\r\n").as_bytes());
            scratch.extend_from_slice(body.as_bytes());
            write_all(&stream, scratch, deadline)
        }
        Plan::Static {
            file,
            len,
            content_type,
        } => send_file(
            &stream,
            version,
            file,
            len,
            content_type,
            keep,
            deadline,
            scratch,
        ),
        Plan::Cgi { program, query } => {
            keep = false;
            run_cgi(shared, &stream, &program, &query, scratch)
        }
    };
    match slot {
        Some((i, readable)) if keep && sent.is_ok() => {
            shared.hand_back(Back::Alive(i, stream, leftover), Some(&readable))
        }
        Some((i, _)) => shared.hand_back(Back::Closed(i), None),
        None => {}
    }
}

fn write_head(
    out: &mut Vec<u8>,
    version: &str,
    status: Status,
    len: u64,
    content_type: &str,
    keep: bool,
) {
    let connection = if keep { "keep-alive" } else { "close" };
    // Seed order: status, Server, Content-Length, Content-Type; then Connection.
    let _ = write!(
        out,
        "{version} {} {}\r\nServer: wserver\r\nContent-Length: {len}\r\nContent-Type: {content_type}\r\nConnection: {connection}\r\n\r\n",
        status.0,
        status.reason()
    );
}

fn send_error(
    stream: &TcpStream,
    version: &str,
    status: Status,
    keep: bool,
    deadline: Instant,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    let body = format!(
        "<html><head><title>wserver error</title></head><body><h1>{} {}</h1></body></html>\n",
        status.0,
        status.reason()
    );
    scratch.clear();
    write_head(
        scratch,
        version,
        status,
        body.len() as u64,
        "text/html",
        keep,
    );
    scratch.extend_from_slice(body.as_bytes());
    write_all(stream, scratch, deadline)
}

#[allow(clippy::too_many_arguments)]
fn send_file(
    stream: &TcpStream,
    version: &str,
    mut file: std::fs::File,
    len: u64,
    content_type: &str,
    keep: bool,
    deadline: Instant,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    scratch.clear();
    write_head(scratch, version, Status::OK, len, content_type, keep);
    if len <= INLINE_LIMIT {
        let start = scratch.len();
        scratch.resize(start + len as usize, 0);
        file.read_exact(&mut scratch[start..])?;
        return write_all(stream, scratch, deadline);
    }
    // Large file: the header, then the body straight from the page cache. No Nagle
    // delay for the last partial segment.
    stream.set_nodelay(true)?;
    write_all(stream, scratch, deadline)?;
    let mut offset: libc::off_t = 0;
    while (offset as u64) < len {
        let left = (len - offset as u64).min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call and
        // `offset` is a valid pointer to our local.
        let n = unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut offset, left) };
        if n > 0 {
            continue;
        }
        if n == 0 {
            // The file shrank under us; the client will see a short body.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock => wait_writable(stream, deadline)?,
            io::ErrorKind::Interrupted => {}
            _ => return Err(err),
        }
    }
    Ok(())
}

/// Writes all of `buf` to a non-blocking socket, waiting for room at most until
/// `deadline`, so a client that stops reading cannot hold a worker forever.
fn write_all(mut stream: &TcpStream, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(stream, deadline)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn wait_writable(stream: &TcpStream, deadline: Instant) -> io::Result<()> {
    if wait_fd(stream.as_raw_fd(), libc::POLLOUT, deadline)? {
        Ok(())
    } else {
        Err(io::ErrorKind::TimedOut.into())
    }
}

/// Polls one descriptor for `events` until `deadline`: `Ok(true)` when it is ready,
/// `Ok(false)` once the deadline has passed.
fn wait_fd(fd: i32, events: libc::c_short, deadline: Instant) -> io::Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // Rounded up, so that a wake-up a little early is not taken for the deadline.
        let ms = (left.as_micros().div_ceil(1000)).clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            return Ok(true);
        }
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// Runs a CGI program with `QUERY_STRING` and relays its output (its own headers and
/// body) after our status line.
///
/// The whole run, relaying included, must fit in `--cgi-timeout`: a program that
/// hangs must not hold a worker (and with it every request queued behind it)
/// forever. Past the deadline the program's process group is killed, so a shell
/// script's own children go too, and the client gets 504 if no output had been
/// sent yet, or a cut response. Every child is reaped before the worker moves on.
fn run_cgi(
    shared: &Shared,
    stream: &TcpStream,
    program: &std::path::Path,
    query: &str,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let deadline = Instant::now() + shared.cgi_timeout;
    let child = Command::new(program)
        .env_clear()
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", "GET")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_SOFTWARE", "wserver")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .current_dir(shared.site.root_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Its own process group, so that one signal ends everything it started.
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wserver: cannot run CGI {}: {e}", program.display());
            return send_error(
                stream,
                "HTTP/1.0",
                Status::INTERNAL,
                false,
                deadline,
                scratch,
            );
        }
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let relayed = relay_cgi(stream, &mut stdout, deadline);
    // Closing our end makes a child still writing to a gone client get EPIPE.
    drop(stdout);
    let finished = relayed.is_ok() && wait_exit(&child, deadline);
    if !finished {
        // SAFETY: kill(2) has no memory-safety preconditions. The child is not
        // reaped yet (we hold it), so its pid, which is also its group's id, cannot
        // have been reused.
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    }
    child.wait()?;
    match relayed {
        Ok(()) if finished => Ok(()),
        Ok(()) | Err(CgiEnd::TimedOut { sent: true }) => {
            eprintln!(
                "wserver: CGI {} ran over {:?}; killed",
                program.display(),
                shared.cgi_timeout
            );
            Err(io::ErrorKind::TimedOut.into())
        }
        Err(CgiEnd::TimedOut { sent: false }) => {
            eprintln!(
                "wserver: CGI {} ran over {:?} without output; killed, 504",
                program.display(),
                shared.cgi_timeout
            );
            send_error(
                stream,
                "HTTP/1.0",
                Status::GATEWAY_TIMEOUT,
                false,
                Instant::now() + shared.timeout,
                scratch,
            )
        }
        Err(CgiEnd::NoOutput) => send_error(
            stream,
            "HTTP/1.0",
            Status::BAD_GATEWAY,
            false,
            Instant::now() + shared.timeout,
            scratch,
        ),
        Err(CgiEnd::Io(e)) => Err(e),
    }
}

/// Why relaying a CGI program's output stopped early.
enum CgiEnd {
    /// The deadline passed; `sent` tells whether the client already has a status line.
    TimedOut { sent: bool },
    /// The program closed its output without writing anything.
    NoOutput,
    /// Reading the pipe or writing to the client failed.
    Io(io::Error),
}

/// Relays the program's output until it closes its end of the pipe. The status line
/// waits for the first output, so that a program that never answers gets a 504
/// rather than a 200 with nothing after it.
fn relay_cgi(
    stream: &TcpStream,
    stdout: &mut std::process::ChildStdout,
    deadline: Instant,
) -> Result<(), CgiEnd> {
    set_nonblocking(stdout.as_raw_fd()).map_err(CgiEnd::Io)?;
    let mut sent = false;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match stdout.read(&mut chunk) {
            Ok(0) if sent => return Ok(()),
            Ok(0) => return Err(CgiEnd::NoOutput),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !wait_fd(stdout.as_raw_fd(), libc::POLLIN, deadline).map_err(CgiEnd::Io)? {
                    return Err(CgiEnd::TimedOut { sent });
                }
                continue;
            }
            Err(e) => return Err(CgiEnd::Io(e)),
        };
        let written = if sent {
            write_all(stream, &chunk[..n], deadline)
        } else {
            sent = true;
            let mut first = b"HTTP/1.0 200 OK\r\nServer: wserver\r\nConnection: close\r\n".to_vec();
            first.extend_from_slice(&chunk[..n]);
            write_all(stream, &first, deadline)
        };
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(CgiEnd::TimedOut { sent: true })
            }
            Err(e) => return Err(CgiEnd::Io(e)),
        }
    }
}

/// Waits until `child` has exited (without reaping it) or `deadline` passes: a
/// program may close its output and go on running.
fn wait_exit(child: &std::process::Child, deadline: Instant) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: the kernel just returned this descriptor and nobody else owns it.
    let pidfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    wait_fd(pidfd.as_raw_fd(), libc::POLLIN, deadline).unwrap_or(false)
}

fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closing a socket with unread input makes the kernel send a reset, which can
/// destroy the error response before the client reads it (a 431 to a client still
/// sending its oversized head). Send our FIN first and drop what already arrived.
fn discard_unread(stream: &TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 16 * 1024];
    let mut reader = stream;
    for _ in 0..64 {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
