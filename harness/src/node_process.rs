//! One node of a cluster as a process: its pipes, its log and its stdout's lines.

use std::fs::OpenOptions;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Process;

/// The longest line the harness takes from a node: 16 MiB, far above any legitimate
/// message (a 128 KiB value, a whole Raft snapshot) yet a bound on what a node that
/// never ends its line can make the harness hold. Such a node has left the protocol's
/// framing, so a longer line is a [`Line::TooLong`], in either time mode.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// One line of a node's stdout, as the harness takes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A line (without its newline).
    Text(String),
    /// A line that is not UTF-8, so not JSON: what is wrong, and its start.
    NotUtf8(String),
    /// More than [`MAX_LINE_BYTES`] without a newline; nothing after it is read.
    TooLong,
}

/// What the cluster learns from a node in real time, in the order it happened.
#[derive(Debug)]
pub enum Output {
    /// A line the node wrote.
    Line(Line),
    /// Its stdout closed (it exited).
    Closed,
    /// Its stdin pipe refused what the harness still had to write to it.
    StdinFailed(io::Error),
}

/// An [`Output`] of one incarnation of node `node`.
#[derive(Debug)]
pub struct NodeOutput {
    pub node: usize,
    pub incarnation: u64,
    pub output: Output,
}

/// Splits bytes read from a node into lines: the same in both time modes.
#[derive(Debug, Default)]
struct Lines {
    buffer: Vec<u8>,
    /// Where the first line not yet returned starts in `buffer`: lines are taken off
    /// the front by moving this, not by moving the bytes behind them (a read can
    /// bring hundreds of pipelined steps' lines).
    start: usize,
    /// How much of `buffer` after `start` is known to hold no newline.
    scanned: usize,
}

impl Lines {
    /// The next whole line read; [`Line::TooLong`] once the unfinished one is over the
    /// limit; `None` when more must be read.
    fn next(&mut self) -> Option<Line> {
        let from = self.start + self.scanned;
        if let Some(at) = memchr::memchr(b'\n', &self.buffer[from..]) {
            let end = from + at;
            let bytes = if self.start == 0 && end + 1 == self.buffer.len() {
                // The buffer is this one line (a large message): keep its bytes.
                let mut bytes = std::mem::take(&mut self.buffer);
                bytes.pop();
                bytes
            } else {
                let bytes = self.buffer[self.start..end].to_vec();
                self.start = end + 1;
                bytes
            };
            self.scanned = 0;
            return Some(text(bytes));
        }
        // Nothing left to return before the partial line: drop what was returned.
        self.buffer.drain(..self.start);
        self.start = 0;
        self.scanned = self.buffer.len();
        (self.buffer.len() > MAX_LINE_BYTES).then_some(Line::TooLong)
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// At the end of the output: the last line if it had no newline.
    fn finish(&mut self) -> Option<Line> {
        let rest = std::mem::take(&mut self.buffer).split_off(self.start);
        self.start = 0;
        self.scanned = 0;
        (!rest.is_empty()).then(|| text(rest))
    }
}

fn text(bytes: Vec<u8>) -> Line {
    match String::from_utf8(bytes) {
        Ok(line) => Line::Text(line),
        Err(e) => {
            const SHOWN: usize = 200;
            let error = e.utf8_error();
            let bytes = e.as_bytes();
            let start = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN)]);
            let more = if bytes.len() > SHOWN { "..." } else { "" };
            Line::NotUtf8(format!("{error}, {} bytes: {start}{more}", bytes.len()))
        }
    }
}

/// A running node: stdin is ours to write; stderr is appended to the node's log file.
///
/// The cluster reads its stdout itself, with no thread between: in lockstep only one
/// node runs at a time and the cluster waits for it ([`NodeProcess::read_line`]); in
/// real time the cluster's event loop polls every node's stdout at once
/// ([`NodeProcess::stdout_fd`], [`NodeProcess::read_ready`]). A thread per node that
/// handed each line to the loop cost a second process wake-up for every message,
/// which on a virtual machine is tens of microseconds a hop.
///
/// In real time the event loop must never block on one node, so stdin is
/// non-blocking and what its pipe does not take waits in `unsent` until the pipe has
/// room ([`NodeProcess::stdin_fd`], [`NodeProcess::write_unsent`]): a node blocked
/// writing its stdout while the harness blocked writing its stdin would hang both.
/// In lockstep the node is reading while the harness writes, and writes block.
#[derive(Debug)]
pub struct NodeProcess {
    process: Process,
    stdin: ChildStdin,
    /// Bytes for stdin not written yet; those before `unsent_from` are written.
    unsent: Vec<u8>,
    unsent_from: usize,
    nonblocking: bool,
    /// Bytes the stdin pipe holds before a write blocks.
    stdin_capacity: usize,
    stdout: ChildStdout,
    lines: Lines,
}

impl NodeProcess {
    /// Spawns the node; `real_time`: its stdin is non-blocking (see above).
    pub fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
        real_time: bool,
    ) -> io::Result<NodeProcess> {
        let log = OpenOptions::new().create(true).append(true).open(log)?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut process = Process::spawn(name.to_string(), &mut command)?;
        let stdin = process.child_mut().stdin.take().expect("piped stdin");
        let stdout = process.child_mut().stdout.take().expect("piped stdout");
        let stdin_capacity = pipe_capacity(&stdin);
        if real_time {
            set_nonblocking(&stdin)?;
        }
        Ok(NodeProcess {
            process,
            stdin,
            unsent: Vec::new(),
            unsent_from: 0,
            nonblocking: real_time,
            stdin_capacity,
            stdout,
            lines: Lines::default(),
        })
    }

    /// The next stdout line, waiting at most `timeout`; `None` when stdout closed.
    pub fn read_line(&mut self, timeout: Duration) -> io::Result<Option<Line>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines.next() {
                return Ok(Some(line));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut poll = libc::pollfd {
                fd: self.stdout.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = left.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd that lives across the call.
            let ready = unsafe { libc::poll(&mut poll, 1, millis) };
            if ready < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if ready == 0 {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no line in time"));
            }
            if !self.read_chunk()? {
                return Ok(self.lines.finish());
            }
        }
    }

    /// Reads once from stdout, which must be readable (polled), and returns what that
    /// brought: the lines it completed, then [`Output::Closed`] if stdout closed (or
    /// failed). Nothing is read past a [`Line::TooLong`]: the cluster fails the node.
    pub fn read_ready(&mut self) -> Vec<Output> {
        let open = self.read_chunk().unwrap_or(false);
        let mut outputs = Vec::new();
        while let Some(line) = self.lines.next() {
            let too_long = line == Line::TooLong;
            outputs.push(Output::Line(line));
            if too_long {
                return outputs;
            }
        }
        if !open {
            outputs.extend(self.lines.finish().map(Output::Line));
            outputs.push(Output::Closed);
        }
        outputs
    }

    /// One read into the line splitter; false at the end of the output.
    fn read_chunk(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stdout.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.lines.extend(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn stdout_fd(&self) -> RawFd {
        self.stdout.as_raw_fd()
    }

    pub fn stdin_fd(&self) -> RawFd {
        self.stdin.as_raw_fd()
    }

    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        self.send(&mut [IoSlice::new(line.as_bytes()), IoSlice::new(b"\n")])
    }

    /// Writes `lines` (each ending in a newline) in one go.
    pub fn send_lines(&mut self, lines: &str) -> io::Result<()> {
        self.send(&mut [IoSlice::new(lines.as_bytes())])
    }

    /// Writes `parts` straight from where they are (a line may be a snapshot of
    /// megabytes); in real time, what the pipe does not take is copied to `unsent`.
    fn send(&mut self, mut parts: &mut [IoSlice]) -> io::Result<()> {
        if self.has_unsent() {
            // Behind what waits already, in order.
            parts.iter().for_each(|p| self.unsent.extend_from_slice(p));
            return self.write_unsent();
        }
        while !parts.is_empty() {
            match self.stdin.write_vectored(parts) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut parts, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.nonblocking => {
                    parts.iter().for_each(|p| self.unsent.extend_from_slice(p));
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// True while bytes for stdin wait for room in its pipe (real time only).
    pub fn has_unsent(&self) -> bool {
        self.unsent_from < self.unsent.len()
    }

    /// Writes what stdin's pipe takes of the bytes not written yet: all of them in
    /// lockstep; in real time what fits, the rest at the next call.
    pub fn write_unsent(&mut self) -> io::Result<()> {
        while self.has_unsent() {
            match self.stdin.write(&self.unsent[self.unsent_from..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.unsent_from += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.nonblocking => {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
        }
        self.unsent.clear();
        self.unsent_from = 0;
        Ok(())
    }

    /// How many bytes can be written to an empty stdin pipe without blocking, whatever
    /// the node does meanwhile.
    pub fn stdin_capacity(&self) -> usize {
        self.stdin_capacity
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Resident memory of the process in bytes, from /proc.
    pub fn rss_bytes(&self) -> io::Result<u64> {
        self.process.rss_bytes()
    }
}

fn set_nonblocking(pipe: &ChildStdin) -> io::Result<()> {
    let fd = pipe.as_raw_fd();
    // SAFETY: F_GETFL and F_SETFL only change the flags of the descriptor we own (the
    // node's end of the pipe is another open file and stays blocking).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pipe's capacity (usually 64 KiB; a single page when the user has used up the
/// system's allowance for pipes), or one page if the kernel does not say.
fn pipe_capacity(pipe: &ChildStdin) -> usize {
    const PAGE: usize = 4096;
    // SAFETY: F_GETPIPE_SZ only reads a property of the descriptor we own.
    let size = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_GETPIPE_SZ) };
    usize::try_from(size).map_or(PAGE, |s| s.max(PAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(lines: &mut Lines) -> Vec<Line> {
        std::iter::from_fn(|| lines.next()).collect()
    }

    #[test]
    fn lines_split_across_reads_and_bad_bytes_are_reported() {
        let mut lines = Lines::default();
        lines.extend(b"{\"a\":1}\n{\"b\"");
        assert_eq!(all(&mut lines), [Line::Text("{\"a\":1}".into())]);
        lines.extend(b":2}\n\xff\xfe x\nrest");
        let got = all(&mut lines);
        assert_eq!(got[0], Line::Text("{\"b\":2}".into()));
        let Line::NotUtf8(what) = &got[1] else {
            panic!("{got:?}")
        };
        assert!(
            what.contains("invalid utf-8") && what.contains("4 bytes"),
            "{what}"
        );
        assert_eq!(got.len(), 2);
        assert_eq!(lines.finish(), Some(Line::Text("rest".into())));
        assert_eq!(lines.finish(), None);
    }

    #[test]
    fn a_line_is_too_long_only_past_the_limit() {
        let mut lines = Lines::default();
        lines.extend(&vec![b'a'; MAX_LINE_BYTES]);
        assert_eq!(lines.next(), None, "exactly the limit may still end");
        lines.extend(b"\n");
        assert_eq!(lines.next(), Some(Line::Text("a".repeat(MAX_LINE_BYTES))));
        lines.extend(&vec![b'b'; MAX_LINE_BYTES + 1]);
        assert_eq!(lines.next(), Some(Line::TooLong));
    }
}
