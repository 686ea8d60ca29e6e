//! One node of a cluster as a process: its pipes, its log and its stdout reader.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::process::Process;

/// A line a node wrote, or `None` when its stdout closed (it exited).
#[derive(Debug)]
pub struct NodeOutput {
    pub node: usize,
    pub incarnation: u64,
    pub line: Option<String>,
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
    buffer: Vec<u8>,
    /// Where the first line not yet returned starts in `buffer`: lines are taken off
    /// the front by moving this, not by moving the bytes behind them (a read can
    /// bring hundreds of pipelined steps' lines).
    start: usize,
    /// How much of `buffer` after `start` is known to hold no newline.
    scanned: usize,
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
                    buffer: Vec::new(),
                    start: 0,
                    scanned: 0,
                }),
            });
        };
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let out = NodeOutput {
                        node: index,
                        incarnation,
                        line: Some(line),
                    };
                    if outputs.send(out).is_err() {
                        return;
                    }
                }
                let _ = outputs.send(NodeOutput {
                    node: index,
                    incarnation,
                    line: None,
                });
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
    pub fn read_line(&mut self, timeout: Duration) -> io::Result<Option<String>> {
        let direct = self
            .direct
            .as_mut()
            .expect("read_line on a node whose stdout a thread reads");
        let deadline = Instant::now() + timeout;
        loop {
            let from = direct.start + direct.scanned;
            if let Some(at) = memchr::memchr(b'\n', &direct.buffer[from..]) {
                let end = from + at;
                let line = if direct.start == 0 && end + 1 == direct.buffer.len() {
                    // The buffer is this one line (a large message): keep its bytes.
                    let mut bytes = std::mem::take(&mut direct.buffer);
                    bytes.pop();
                    direct.start = 0;
                    bytes
                } else {
                    let bytes = direct.buffer[direct.start..end].to_vec();
                    direct.start = end + 1;
                    bytes
                };
                direct.scanned = 0;
                let line = String::from_utf8(line)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                return Ok(Some(line));
            }
            // Nothing left to return before the partial line: drop what was returned.
            direct.buffer.drain(..direct.start);
            direct.start = 0;
            direct.scanned = direct.buffer.len();
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
                return Ok(None);
            }
            direct.buffer.extend_from_slice(&chunk[..n]);
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
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| io::Error::other("no VmRSS in /proc status"))
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
