//! One node of a cluster as a process: its pipes, its log and its stdout reader.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::Sender;
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

/// A line a node wrote, or `None` when its stdout closed (it exited).
#[derive(Debug)]
pub struct NodeOutput {
    pub node: usize,
    pub incarnation: u64,
    pub line: Option<Line>,
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
/// Its stdout is read one of two ways. In real time a thread forwards each line to
/// the cluster's channel, tagged with the node and incarnation so lines from a killed
/// incarnation can be told apart. In lockstep only one node runs at a time and the
/// cluster waits for it, so it reads the pipe itself ([`NodeProcess::read_line`]):
/// no thread hand-off per line, which halves the cost of a step.
#[derive(Debug)]
pub struct NodeProcess {
    process: Process,
    stdin: BufWriter<ChildStdin>,
    /// Bytes the stdin pipe holds before a write blocks.
    stdin_capacity: usize,
    direct: Option<Direct>,
}

#[derive(Debug)]
struct Direct {
    stdout: ChildStdout,
    lines: Lines,
}

impl NodeProcess {
    pub fn spawn(
        name: &str,
        index: usize,
        incarnation: u64,
        mut command: Command,
        log: &Path,
        outputs: Option<Sender<NodeOutput>>,
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
        let Some(outputs) = outputs else {
            return Ok(NodeProcess {
                process,
                stdin: BufWriter::new(stdin),
                stdin_capacity,
                direct: Some(Direct {
                    stdout,
                    lines: Lines::default(),
                }),
            });
        };
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                let send = |line| {
                    let output = NodeOutput {
                        node: index,
                        incarnation,
                        line,
                    };
                    outputs.send(output).is_ok()
                };
                let mut stdout = stdout;
                let mut lines = Lines::default();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    while let Some(line) = lines.next() {
                        let too_long = line == Line::TooLong;
                        if !send(Some(line)) || too_long {
                            // Too long: the cluster fails the node; reading on would
                            // only hold more of its endless line.
                            return;
                        }
                    }
                    match stdout.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => lines.extend(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                if let Some(line) = lines.finish() {
                    send(Some(line));
                }
                send(None);
            })?;
        Ok(NodeProcess {
            process,
            stdin: BufWriter::new(stdin),
            stdin_capacity,
            direct: None,
        })
    }

    /// The next stdout line, waiting at most `timeout`; `None` when stdout closed.
    /// Only for a node spawned without an output channel.
    pub fn read_line(&mut self, timeout: Duration) -> io::Result<Option<Line>> {
        let direct = self
            .direct
            .as_mut()
            .expect("read_line on a node whose stdout a thread reads");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = direct.lines.next() {
                return Ok(Some(line));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut poll = libc::pollfd {
                fd: direct.stdout.as_raw_fd(),
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
            let mut chunk = [0u8; 64 * 1024];
            let n = direct.stdout.read(&mut chunk)?;
            if n == 0 {
                return Ok(direct.lines.finish());
            }
            direct.lines.extend(&chunk[..n]);
        }
    }

    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()
    }

    /// Writes `lines` (each ending in a newline) in one go.
    pub fn send_lines(&mut self, lines: &str) -> io::Result<()> {
        self.stdin.write_all(lines.as_bytes())?;
        self.stdin.flush()
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
