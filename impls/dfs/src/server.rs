//! The server runtime: a UDP socket, the image file and the order of writes.
//!
//! One loop: wait for a datagram, take every other datagram already queued (up to a
//! batch), apply them all to the core, append their records, one `fdatasync`, store the
//! checkpoint region, then send every reply. Clients that arrive while a sync runs wait
//! for the next one and share it (group commit).

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use specs::mfs::wire::{decode_request, encode_reply, DecodeError, Reply, Request, MAX_DATAGRAM};

use crate::fs::Fs;

/// Deliberately broken variants, to prove the conformance tests catch them. Chosen with
/// `DFS_BUG=<name>`; never use them for anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Replies as soon as a change is applied in memory; its record is written and
    /// synced only when the next request arrives (a write-behind log).
    ReplyBeforeFsync,
    /// Stores (and syncs) the checkpoint region that covers a batch before appending the
    /// batch's records to the log.
    CheckpointFirst,
    /// Forgets which requests it has run: a retried or duplicated request runs again.
    NoDedup,
}

impl Bug {
    pub fn from_env() -> Result<Option<Bug>> {
        match std::env::var("DFS_BUG").as_deref() {
            Err(_) | Ok("") => Ok(None),
            Ok("reply-before-fsync") => Ok(Some(Bug::ReplyBeforeFsync)),
            Ok("checkpoint-first") => Ok(Some(Bug::CheckpointFirst)),
            Ok("no-dedup") => Ok(Some(Bug::NoDedup)),
            Ok(other) => bail!(
                "DFS_BUG={other:?} is not a known variant \
                 (reply-before-fsync, checkpoint-first, no-dedup)"
            ),
        }
    }
}

/// Most datagrams taken into one batch: enough for every client of a busy server to
/// share a sync, few enough that the first of them is not kept waiting long.
const MAX_BATCH: usize = 128;
/// Batches between checkpoint-region updates. The CR only shortens the roll-forward at
/// boot, so it need not follow every batch; rewriting it each time would add a second
/// dirty region, far from the log's end, to every sync.
const CHECKPOINT_EVERY: u64 = 64;
/// Clients whose last reply is remembered for retries.
const MAX_CLIENTS: usize = 4096;

/// Opens an image, creating it (root directory only, synced, directory entry synced)
/// if absent, and returns the file and the booted core.
pub fn open_image(path: &Path) -> Result<(File, Fs)> {
    if !path.exists() {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create image {}", path.display()))?;
        let mut fs = Fs::fresh();
        let (start, bytes) = fs
            .take_pending()
            .expect("a fresh image has its root record");
        file.write_all_at(&bytes, start)?;
        file.write_all_at(&fs.checkpoint(), 0)?;
        file.sync_all()?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()?;
        return Ok((file, fs));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?;
    let (fs, recovery) = Fs::recover(&file)
        .map_err(|e| anyhow::anyhow!("{}: not a usable MFS image: {e}", path.display()))?;
    if recovery.torn_bytes > 0 || recovery.rolled_forward > 0 {
        eprintln!(
            "mfs-server: recovered {}: {} record(s) rolled forward, {} torn byte(s) cut at {}",
            path.display(),
            recovery.rolled_forward,
            recovery.torn_bytes,
            recovery.log_end
        );
        file.set_len(recovery.log_end)?;
        file.write_all_at(&fs.checkpoint(), 0)?;
        file.sync_all()?;
    }
    Ok((file, fs))
}

/// The last request executed per client and its reply, so a retried or duplicated
/// request is answered without running twice.
#[derive(Default)]
struct Replies {
    last: HashMap<u64, (u64, Vec<u8>)>,
    order: VecDeque<u64>,
}

enum Seen<'a> {
    New,
    Again(&'a [u8]),
    Stale,
}

impl Replies {
    fn check(&self, client: u64, seq: u64) -> Seen<'_> {
        match self.last.get(&client) {
            Some((s, reply)) if *s == seq => Seen::Again(reply),
            Some((s, _)) if *s > seq => Seen::Stale,
            _ => Seen::New,
        }
    }

    fn record(&mut self, client: u64, seq: u64, reply: Vec<u8>) {
        if self.last.insert(client, (seq, reply)).is_none() {
            self.order.push_back(client);
            if self.order.len() > MAX_CLIENTS {
                let old = self.order.pop_front().expect("non-empty");
                self.last.remove(&old);
            }
        }
    }
}

fn append(file: &File, pending: Option<(u64, Vec<u8>)>) -> io::Result<bool> {
    match pending {
        Some((start, bytes)) => {
            file.write_all_at(&bytes, start)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Serves `image` on UDP `port` until a Shutdown request.
pub fn serve(port: u16, image: &Path, bug: Option<Bug>) -> Result<()> {
    let (file, mut fs) = open_image(image)?;
    let socket = UdpSocket::bind(("0.0.0.0", port))
        .with_context(|| format!("cannot bind UDP port {port}"))?;
    let mut replies = Replies::default();
    let (mut changes, mut syncs) = (0u64, 0u64);
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let mut batch: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        socket.set_nonblocking(false)?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => batch.push((buf[..n].to_vec(), from)),
            // An ICMP error for an earlier reply, or a signal: nothing to serve yet.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(e) => return Err(e).context("receiving a request"),
        }
        socket.set_nonblocking(true)?;
        while batch.len() < MAX_BATCH {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => batch.push((buf[..n].to_vec(), from)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A previous reply's ICMP "port unreachable" surfaces here; harmless.
                Err(_) => break,
            }
        }
        if bug == Some(Bug::ReplyBeforeFsync) && append(&file, fs.take_pending())? {
            file.sync_data()?;
            file.write_all_at(&fs.checkpoint(), 0)?;
        }

        let mut out: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        let mut shutdown = false;
        for (datagram, from) in batch {
            match decode_request(&datagram) {
                Err(DecodeError::NotMfs(why)) => {
                    eprintln!("mfs-server: dropped a datagram from {from}: {why}");
                }
                Err(DecodeError::BadVersion(h)) => {
                    out.push((encode_reply(&h, &Reply::BadVersion), from));
                }
                Err(e @ DecodeError::Malformed(h, _)) => {
                    eprintln!("mfs-server: {from}: {e}");
                    out.push((encode_reply(&h, &Reply::Malformed), from));
                }
                Ok((h, request)) => match replies.check(h.client, h.seq) {
                    _ if bug == Some(Bug::NoDedup) => {
                        let reply = encode_reply(&h, &fs.apply(&file, &request));
                        out.push((reply, from));
                        shutdown |= request == Request::Shutdown;
                    }
                    Seen::Stale => {}
                    Seen::Again(reply) => out.push((reply.to_vec(), from)),
                    Seen::New => {
                        let reply = encode_reply(&h, &fs.apply(&file, &request));
                        changes += u64::from(request.mutates());
                        replies.record(h.client, h.seq, reply.clone());
                        out.push((reply, from));
                        shutdown |= request == Request::Shutdown;
                    }
                },
            }
        }

        match bug {
            None | Some(Bug::NoDedup) => {
                if append(&file, fs.take_pending())? {
                    file.sync_data()?;
                    syncs += 1;
                    if syncs % CHECKPOINT_EVERY == 0 {
                        // Made durable by the next batch's sync (or Shutdown's); until
                        // then boot rolls forward from the previous one.
                        file.write_all_at(&fs.checkpoint(), 0)?;
                    }
                }
            }
            Some(Bug::CheckpointFirst) => {
                if let Some(pending) = fs.take_pending() {
                    file.write_all_at(&fs.checkpoint(), 0)?;
                    file.sync_data()?;
                    append(&file, Some(pending))?;
                    file.sync_data()?;
                }
            }
            Some(Bug::ReplyBeforeFsync) => {}
        }
        if shutdown {
            append(&file, fs.take_pending())?;
            file.write_all_at(&fs.checkpoint(), 0)?;
            file.sync_all()?;
        }
        if shutdown {
            eprintln!(
                "mfs-server: shut down after {changes} change request(s) in {syncs} batch sync(s)"
            );
        }
        for (reply, to) in out {
            // A client that went away is not the server's problem.
            let _ = socket.send_to(&reply, to);
        }
        if shutdown {
            return Ok(());
        }
    }
}
