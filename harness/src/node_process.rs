//! One node of a cluster as a process: its pipes, its log and its stdout reader.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::Sender;

use crate::process::Process;

/// A line a node wrote, or `None` when its stdout closed (it exited).
#[derive(Debug)]
pub struct NodeOutput {
    pub node: usize,
    pub incarnation: u64,
    pub line: Option<String>,
}

/// A running node: stdin is ours to write; a thread forwards each stdout line to the
/// cluster's channel tagged with the node and incarnation, so lines from a killed
/// incarnation can be told apart; stderr is appended to the node's log file.
#[derive(Debug)]
pub struct NodeProcess {
    process: Process,
    stdin: BufWriter<ChildStdin>,
}

impl NodeProcess {
    pub fn spawn(
        name: &str,
        index: usize,
        incarnation: u64,
        mut command: Command,
        log: &Path,
        outputs: Sender<NodeOutput>,
    ) -> io::Result<NodeProcess> {
        let log = OpenOptions::new().create(true).append(true).open(log)?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut process = Process::spawn(name.to_string(), &mut command)?;
        let stdin = process.child_mut().stdin.take().expect("piped stdin");
        let stdout = process.child_mut().stdout.take().expect("piped stdout");
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
        })
    }

    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()
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
