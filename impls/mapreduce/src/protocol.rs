//! The messages between workers and the coordinator.
//!
//! One request and one reply per connection to the coordinator's Unix socket, each a
//! line of JSON. A connection per call keeps a stalled or killed worker from holding
//! anything open, and lets a worker tell "coordinator gone" (cannot connect) from
//! "coordinator busy". This protocol is internal to our implementation: the suite
//! judges implementations only by their command lines and the files they leave.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// A byte range of one input file, starting and ending at line boundaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub path: PathBuf,
    /// The name the application sees (6.5840 passes the file name as given).
    pub name: String,
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapTask {
    pub id: usize,
    /// What the task reads: one split in the 6.5840 front end (a file); in the
    /// word-count front end, several small files packed together or a piece of a
    /// large one.
    pub splits: Vec<Split>,
    /// One intermediate file per reduce partition, in partition order.
    pub outputs: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceTask {
    pub id: usize,
    /// This partition's intermediate file from every map task.
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Map,
    Reduce,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    GetTask,
    Done {
        kind: Kind,
        id: usize,
    },
    Failed {
        kind: Kind,
        id: usize,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Map(MapTask),
    Reduce(ReduceTask),
    /// Nothing to do now; ask again after this many milliseconds.
    Wait {
        ms: u64,
    },
    /// The job is done: exit.
    Exit,
    Ok,
}

/// Sends one request and reads its reply.
pub fn call(socket: &Path, request: &Request) -> anyhow::Result<Reply> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach the coordinator at {}", socket.display()))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    if reply.is_empty() {
        bail!("the coordinator closed the connection without a reply");
    }
    serde_json::from_str(&reply).with_context(|| format!("bad reply {reply:?}"))
}

/// Reads one request from a connection and answers it with `handle`.
pub fn serve(stream: UnixStream, handle: impl FnOnce(Request) -> Reply) -> anyhow::Result<()> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => handle(request),
        Err(e) => bail!("bad request {line:?}: {e}"),
    };
    let mut out = serde_json::to_string(&reply)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let reply = Reply::Reduce(ReduceTask {
            id: 3,
            inputs: vec!["mr-0-3".into()],
            output: "mr-out-3".into(),
        });
        let text = serde_json::to_string(&reply).unwrap();
        assert!(text.starts_with(r#"{"type":"reduce","id":3"#), "{text}");
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply);
        let req = Request::Done {
            kind: Kind::Map,
            id: 1,
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(text, r#"{"type":"done","kind":"map","id":1}"#);
    }
}
