//! How a node lays out its durable state in its data dir, and reads it back.
//!
//! - `raft_meta`: term and vote, one JSON object, replaced atomically.
//! - `raft_log`: JSON lines. The first line says where the log starts
//!   (`{"start":S,"start_term":T}`: the entry just before it, covered by the
//!   snapshot); each further line is one entry. New entries are appended; the file is
//!   replaced atomically only when stored entries are cut (a conflict) or compacted
//!   (a snapshot), so a step writes what it changed.
//! - `snapshot`: the latest snapshot, replaced atomically, always before the log that
//!   it compacts (see `core::Restored::reconcile` for a crash in between).
//!
//! An append interrupted by a crash can leave a torn last line (cut short, or garbage
//! where the disk extended the file before writing it); that entry was never
//! acknowledged (the step did not finish), so it is dropped. Anything else that does
//! not parse is corruption and stops the node.

use node::{Outbox, Storage};
use serde::{Deserialize, Serialize};

use crate::core::{Entry, HardState, LogWrite, Raft, Ready, Restored, Snapshot, TermVote};

pub const META_FILE: &str = "raft_meta";
pub const LOG_FILE: &str = "raft_log";
pub const SNAPSHOT_FILE: &str = "snapshot";

/// The files a node writes, with their sizes as last written: what `persisted_size`
/// reports and what a service compares with its `maxraftstate`.
#[derive(Debug, Default)]
pub struct Files {
    meta: usize,
    log: usize,
    snapshot: usize,
}

impl Files {
    /// The files as a previous run left them in `storage`.
    pub fn measure(storage: &Storage) -> Files {
        let size = |name| storage.get(name).map_or(0, <[u8]>::len);
        Files {
            meta: size(META_FILE),
            log: size(LOG_FILE),
            snapshot: size(SNAPSHOT_FILE),
        }
    }

    /// Bytes of Raft state: term, vote and log.
    pub fn raft_state(&self) -> usize {
        self.meta + self.log
    }

    pub fn snapshot(&self) -> usize {
        self.snapshot
    }

    /// Everything `ready` asks to persist, snapshot first, in the order a restart
    /// relies on.
    pub fn write(&mut self, ready: &Ready, raft: &Raft, out: &mut Outbox) {
        self.write_snapshot_and_vote(ready, out);
        self.write_log(ready, raft, out);
    }

    /// `ready`'s snapshot and term/vote, each replacing its file.
    pub fn write_snapshot_and_vote(&mut self, ready: &Ready, out: &mut Outbox) {
        if let Some(snapshot) = &ready.snapshot {
            let bytes = serde_json::to_vec(snapshot).expect("snapshots serialise");
            self.snapshot = bytes.len();
            out.persist(SNAPSHOT_FILE, bytes);
        }
        if let Some(term_vote) = &ready.term_vote {
            let bytes = serde_json::to_vec(term_vote).expect("serialises");
            self.meta = bytes.len();
            out.persist(META_FILE, bytes);
        }
    }

    /// `ready`'s change to the log: appended, or the file replaced (see [`log_bytes`]).
    pub fn write_log(&mut self, ready: &Ready, raft: &Raft, out: &mut Outbox) {
        let Some(write) = &ready.log else {
            return;
        };
        let start = raft.log_start();
        let start_term = raft.term_at(start).expect("the log's start");
        let (bytes, append) = log_bytes(write, self.log > 0, start, start_term);
        if append {
            self.log += bytes.len();
            out.append(LOG_FILE, bytes);
        } else {
            self.log = bytes.len();
            out.persist(LOG_FILE, bytes);
        }
    }

    /// Replaces the log file with `raft`'s log (a torn tail was found on start).
    pub fn rewrite_log(&mut self, raft: &Raft, out: &mut Outbox) {
        let bytes = whole_log(raft);
        self.log = bytes.len();
        out.persist(LOG_FILE, bytes);
    }

    /// Counts the log file as if it held `raft`'s log, without writing it (the
    /// known-bad variant `RAFT_BUG=log-kept-on-disk`).
    pub fn count_log_as_rewritten(&mut self, raft: &Raft) {
        self.log = whole_log(raft).len();
    }
}

/// `raft`'s whole log as a log file.
fn whole_log(raft: &Raft) -> Vec<u8> {
    let start = raft.log_start();
    let start_term = raft.term_at(start).expect("the log's start");
    log_file(start, start_term, raft.entries())
}

#[derive(Debug, Serialize, Deserialize)]
struct LogHeader {
    start: u64,
    start_term: u64,
}

/// What a previous run left in the data dir.
#[derive(Debug, Default)]
pub struct Loaded {
    pub restored: Restored,
    /// The log ended in a torn line: rewrite it before appending, or the next append
    /// would land after the garbage.
    pub log_torn: bool,
}

/// What a node starts from: its files made to agree.
#[derive(Debug)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The log file must be rewritten before anything is appended to it: it ended
    /// in a torn line, or making it agree with the snapshot moved its start (a crash
    /// between writing the snapshot and rewriting the log). Appended after the old
    /// header, new entries would read back at the wrong indices at the next start.
    pub rewrite_log: bool,
}

impl Loaded {
    /// The files made to agree ([`Restored::reconcile`]).
    pub fn reconcile(self) -> Result<Recovered, String> {
        let start_on_disk = self.restored.hard_state.as_ref().map(|h| h.log_start);
        let (hard_state, snapshot) = self.restored.reconcile()?;
        let moved = start_on_disk.is_some_and(|start| start != hard_state.log_start);
        Ok(Recovered {
            rewrite_log: self.log_torn || moved,
            hard_state,
            snapshot,
        })
    }
}

/// Reads back what a previous run persisted (nothing, for a fresh node).
pub fn load(storage: &Storage) -> Result<Loaded, String> {
    let meta: Option<TermVote> = parse(storage, META_FILE)?;
    let snapshot: Option<Snapshot> = parse(storage, SNAPSHOT_FILE)?;
    let log = storage.get(LOG_FILE).map(read_log).transpose()?;
    let log_torn = log.as_ref().is_some_and(|l| l.2);
    let log = log.map(|(header, entries, _)| (header, entries));
    let hard_state = match (meta, log) {
        (None, None) => None,
        (meta, log) => {
            let meta = meta.unwrap_or_default();
            let (header, entries) = log.unwrap_or((
                LogHeader {
                    start: 0,
                    start_term: 0,
                },
                Vec::new(),
            ));
            Some(HardState {
                term: meta.term,
                voted_for: meta.voted_for,
                log_start: header.start,
                log_start_term: header.start_term,
                log: entries,
            })
        }
    };
    Ok(Loaded {
        restored: Restored {
            hard_state,
            snapshot,
        },
        log_torn,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    name: &str,
) -> Result<Option<T>, String> {
    storage
        .get(name)
        .map(|bytes| {
            serde_json::from_slice(bytes)
                .map_err(|e| format!("{name} in the data dir is corrupt: {e}"))
        })
        .transpose()
}

/// The header, the entries, and whether a torn last line was dropped.
fn read_log(bytes: &[u8]) -> Result<(LogHeader, Vec<Entry>, bool), String> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // Every line but the last was fdatasynced before the next append began, so only
    // the last can be torn, and its step never finished (it was never acknowledged):
    // drop it. Torn means cut short (text after the last newline) or, on a disk that
    // extends a file before its data lands, a whole line of garbage. The header is
    // written with the file, atomically, so it is never the torn line.
    let tail = lines.pop().unwrap_or_default();
    let mut torn = !tail.is_empty();
    if !torn && lines.len() > 1 {
        let last = lines[lines.len() - 1];
        if serde_json::from_slice::<Entry>(last).is_err() {
            lines.pop();
            torn = true;
        }
    }
    let mut lines = lines.into_iter().filter(|l| !l.is_empty());
    let corrupt = |line: usize, e: serde_json::Error| {
        format!("{LOG_FILE} in the data dir is corrupt at line {line}: {e}")
    };
    let header = match lines.next() {
        Some(line) => serde_json::from_slice(line).map_err(|e| corrupt(1, e))?,
        None => return Err(format!("{LOG_FILE} in the data dir has no header line")),
    };
    let entries = lines
        .enumerate()
        .map(|(k, line)| serde_json::from_slice(line).map_err(|e| corrupt(k + 2, e)))
        .collect::<Result<_, _>>()?;
    Ok((header, entries, torn))
}

/// The bytes of a whole log file.
pub fn log_file(start: u64, start_term: u64, entries: &[Entry]) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&LogHeader { start, start_term }).expect("serialises");
    bytes.push(b'\n');
    bytes.extend(entry_lines(entries));
    bytes
}

/// Entries as log lines, for an append.
pub fn entry_lines(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for e in entries {
        serde_json::to_writer(&mut bytes, e).expect("entries serialise");
        bytes.push(b'\n');
    }
    bytes
}

/// What to do to the log file for `write`: `(bytes, append)`. A log not yet on disk
/// is written whole, header first; it then starts after entry `start` of
/// `start_term` (the node's log start, unchanged by an append).
pub fn log_bytes(write: &LogWrite, on_disk: bool, start: u64, start_term: u64) -> (Vec<u8>, bool) {
    match write {
        LogWrite::Append { entries, .. } if on_disk => (entry_lines(entries), true),
        LogWrite::Append { from, entries } => {
            assert_eq!(
                *from,
                start + 1,
                "a log not on disk is appended from its start"
            );
            (log_file(start, start_term, entries), false)
        }
        LogWrite::Rewrite {
            start,
            start_term,
            entries,
        } => (log_file(*start, *start_term, entries), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(term: u64, c: u64) -> Entry {
        Entry {
            term,
            command: json!(c),
        }
    }

    #[test]
    fn a_log_reads_back_and_a_torn_last_line_is_dropped() {
        let mut bytes = log_file(9, 2, &[entry(2, 10)]);
        bytes.extend(entry_lines(&[entry(3, 11)]));
        let (h, e, torn) = read_log(&bytes).unwrap();
        assert_eq!((h.start, h.start_term), (9, 2));
        assert_eq!(e, [entry(2, 10), entry(3, 11)]);
        assert!(!torn);
        let whole = bytes.clone();
        bytes.extend(b"{\"term\":3,\"comm");
        let (_, e, torn) = read_log(&bytes).unwrap();
        assert!(e.len() == 2 && torn, "a tail cut short");
        let mut garbage = whole.clone();
        garbage.extend(b"\0\0\0\0\n");
        let (_, e, torn) = read_log(&garbage).unwrap();
        assert!(e.len() == 2 && torn, "a tail of zeros");
        let mut first = log_file(0, 0, &[]);
        first.extend(b"{\"te");
        assert!(
            read_log(&first).unwrap().1.is_empty(),
            "the first append torn"
        );
        let mut broken = log_file(0, 0, &[]);
        broken.extend(b"not json\n");
        broken.extend(entry_lines(&[entry(1, 1)]));
        assert!(read_log(&broken).unwrap_err().contains("line 2"));
    }
}
