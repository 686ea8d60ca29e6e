//! The server runtime: a UDP socket, the image file and the order of writes.
//!
//! One loop: wait for a datagram, take every other datagram already queued (up to a
//! batch), apply them all to the core, append their records, one `fdatasync`, store the
//! checkpoint region, then send every reply. Clients that arrive while a sync runs wait
//! for the next one and share it (group commit), and a batch waits a moment for the
//! clients the last one answered (docs/dfs.md).

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use specs::mfs::wire::{decode_request, encode_reply, DecodeError, Reply, Request, MAX_DATAGRAM};

use crate::core::Fs;

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
    /// Appends each batch and replies without ever calling `fdatasync`: the changes sit
    /// in the page cache, which a SIGKILL does not lose and a power failure does.
    NoFsync,
}

impl Bug {
    pub fn from_env() -> Result<Option<Bug>> {
        match std::env::var("DFS_BUG").as_deref() {
            Err(_) | Ok("") => Ok(None),
            Ok("reply-before-fsync") => Ok(Some(Bug::ReplyBeforeFsync)),
            Ok("checkpoint-first") => Ok(Some(Bug::CheckpointFirst)),
            Ok("no-dedup") => Ok(Some(Bug::NoDedup)),
            Ok("no-fsync") => Ok(Some(Bug::NoFsync)),
            // The client library's variant: one switch names the system's known-bad
            // variants, so a run of it reaches this server, which stays correct.
            Ok(crate::client::CLIENT_NO_RETRY) => Ok(None),
            Ok(other) => bail!(
                "DFS_BUG={other:?} is not a known variant \
                 (reply-before-fsync, checkpoint-first, no-dedup, no-fsync, client-no-retry)"
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
pub fn open_image(path: &Path) -> Result<(Image, Fs)> {
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
        return Ok((Image::new(file)?, fs));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?;
    // Boot accepts exactly what mfsck accepts: the same checks, run over the same bytes.
    let image = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report = crate::fsck::check(&image);
    if !report.ok() {
        bail!(
            "{}: not a usable MFS image (mfsck reports it DAMAGED): {}",
            path.display(),
            report.errors.join("; ")
        );
    }
    let (fs, recovery) = Fs::recover(image.as_slice())
        .map_err(|e| anyhow::anyhow!("{}: not a usable MFS image: {e}", path.display()))?;
    drop(image);
    if recovery.torn_bytes > 0 || recovery.rolled_forward > 0 {
        eprintln!(
            "mfs-server: recovered {}: {} record(s) rolled forward, {} torn byte(s) cut at {}",
            path.display(),
            recovery.rolled_forward,
            recovery.torn_bytes,
            recovery.log_end
        );
        // Only a torn tail goes: zeros written ahead stay for the next batches, which
        // would otherwise write them again after every boot that rolled forward.
        if recovery.torn_bytes > 0 {
            file.set_len(recovery.log_end)?;
        }
        file.write_all_at(&fs.checkpoint(), 0)?;
        file.sync_all()?;
    }
    Ok((Image::new(file)?, fs))
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

/// Zeros written past the log's end in one go: at least this much...
const AHEAD_MIN: u64 = 1 << 20;
/// ... and at most this much, however large the image.
const AHEAD_MAX: u64 = 16 << 20;

/// The image file, kept written ahead of the log with zeros.
///
/// A batch's `fdatasync` after an append must also make the file's new size durable
/// (a journal commit on ext4); after writing over bytes the file already holds it
/// flushes only the data. On the machine of docs/dfs.md that is 218 us against 114
/// for a Write's 4,264-byte record. So whenever a batch's records would pass the
/// file's end, zeros follow them to well past it, synced with them, and the next
/// batches land in that space. Boot takes an all-zero tail for such space and keeps
/// it (`Recovery::written_ahead`); a tail holding anything else is a torn write and
/// is cut.
pub struct Image {
    pub file: File,
    /// The file's length: where the zeros written ahead end.
    len: u64,
}

impl Image {
    fn new(file: File) -> io::Result<Image> {
        let len = file.metadata()?.len();
        Ok(Image { file, len })
    }

    /// Writes a batch's records at their place in the log (not synced). Returns
    /// whether there were any.
    fn append(&mut self, pending: Option<(u64, Vec<u8>)>) -> io::Result<bool> {
        let Some((start, bytes)) = pending else {
            return Ok(false);
        };
        self.file.write_all_at(&bytes, start)?;
        let end = start + bytes.len() as u64;
        if end > self.len {
            let ahead = (end / 8).clamp(AHEAD_MIN, AHEAD_MAX);
            // Past 4 GiB no record can go (addresses are 32-bit).
            let len = (end + ahead).min(1 << 32).max(end);
            self.file
                .write_all_at(&vec![0; (len - end) as usize], end)?;
            self.len = len;
        }
        Ok(true)
    }
}

/// Whether a datagram is waiting on `socket` by `until` (`ppoll`, which sleeps with
/// sub-millisecond precision where `poll` rounds to milliseconds).
fn readable_before(socket: &UdpSocket, until: Instant) -> bool {
    use std::os::fd::AsRawFd;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one valid pollfd and a valid timespec; no signal mask to change.
        let n = unsafe { libc::ppoll(&mut fd, 1, &timeout, std::ptr::null()) };
        // A signal ends the call early: wait on until the deadline.
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return n > 0;
        }
    }
}

/// `recv_from` that does not wait (`MSG_DONTWAIT`), on a socket left blocking: taking
/// the rest of a batch costs one call, where switching the socket to non-blocking
/// and back would cost two more per batch.
fn recv_nowait(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;
    // SAFETY: sockaddr_storage is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` and `addr` are valid for the lengths passed, and outlive the call.
    let n = unsafe {
        libc::recvfrom(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let from = match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel filled a sockaddr_in for AF_INET.
            let a: libc::sockaddr_in = unsafe { *(&addr as *const _ as *const libc::sockaddr_in) };
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel filled a sockaddr_in6 for AF_INET6.
            let a: libc::sockaddr_in6 =
                unsafe { *(&addr as *const _ as *const libc::sockaddr_in6) };
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            ))
        }
        family => {
            return Err(io::Error::other(format!(
                "a datagram from an address of family {family}"
            )))
        }
    };
    Ok((n as usize, from))
}

/// Serves `image` on UDP `port` until a Shutdown request.
pub fn serve(port: u16, image: &Path, bug: Option<Bug>) -> Result<()> {
    let (mut disk, mut fs) = open_image(image)?;
    let socket = UdpSocket::bind(("0.0.0.0", port))
        .with_context(|| format!("cannot bind UDP port {port}"))?;
    let mut replies = Replies::default();
    let (mut changes, mut syncs) = (0u64, 0u64);
    // One buffer per batch slot, kept across batches: a datagram is received in place
    // and decoded from there, never copied.
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut batch: Vec<(usize, SocketAddr)> = Vec::with_capacity(MAX_BATCH);
    let mut out: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(MAX_BATCH);
    // For group commit: who the last batch answered, and how long its sync took.
    let mut answered: Vec<SocketAddr> = Vec::with_capacity(MAX_BATCH);
    let mut sync_time = Duration::ZERO;
    let slot = |bufs: &mut Vec<Vec<u8>>, k: usize| {
        if bufs.len() <= k {
            bufs.push(vec![0u8; MAX_DATAGRAM + 1]);
        }
    };
    loop {
        batch.clear();
        slot(&mut bufs, 0);
        match socket.recv_from(&mut bufs[0]) {
            Ok((n, from)) => batch.push((n, from)),
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
        // Group commit: the clients the last batch answered are sending their next
        // requests while this one forms, and one a moment late would wait for a
        // whole sync more. So a batch that lacks one of them waits for it, at most
        // half the last sync's time. A lone client is never waited for: its request
        // is the one that started the batch.
        let until = Instant::now() + sync_time / 2;
        while batch.len() < MAX_BATCH {
            let k = batch.len();
            slot(&mut bufs, k);
            match recv_nowait(&socket, &mut bufs[k]) {
                Ok((n, from)) => batch.push((n, from)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let missing = answered
                        .iter()
                        .any(|a| batch.iter().all(|&(_, from)| from != *a));
                    if !missing || !readable_before(&socket, until) {
                        break;
                    }
                }
                // A previous reply's ICMP "port unreachable" surfaces here; harmless.
                Err(_) => break,
            }
        }
        if bug == Some(Bug::ReplyBeforeFsync) && disk.append(fs.take_pending())? {
            disk.file.sync_data()?;
            disk.file.write_all_at(&fs.checkpoint(), 0)?;
        }

        let mut shutdown = false;
        for (k, &(n, from)) in batch.iter().enumerate() {
            match decode_request(&bufs[k][..n]) {
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
                        let reply = encode_reply(&h, &fs.apply(&disk.file, &request));
                        out.push((reply, from));
                        shutdown |= request == Request::Shutdown;
                    }
                    Seen::Stale => {}
                    Seen::Again(reply) => out.push((reply.to_vec(), from)),
                    Seen::New => {
                        let reply = encode_reply(&h, &fs.apply(&disk.file, &request));
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
                if disk.append(fs.take_pending())? {
                    let started = Instant::now();
                    disk.file.sync_data()?;
                    sync_time = started.elapsed();
                    syncs += 1;
                    if syncs % CHECKPOINT_EVERY == 0 {
                        // Made durable by the next batch's sync (or Shutdown's); until
                        // then boot rolls forward from the previous one.
                        disk.file.write_all_at(&fs.checkpoint(), 0)?;
                    }
                }
            }
            Some(Bug::CheckpointFirst) => {
                if let Some(pending) = fs.take_pending() {
                    disk.file.write_all_at(&fs.checkpoint(), 0)?;
                    disk.file.sync_data()?;
                    disk.append(Some(pending))?;
                    disk.file.sync_data()?;
                }
            }
            Some(Bug::NoFsync) => {
                disk.append(fs.take_pending())?;
            }
            Some(Bug::ReplyBeforeFsync) => {}
        }
        if shutdown {
            disk.append(fs.take_pending())?;
            disk.file.write_all_at(&fs.checkpoint(), 0)?;
            if bug != Some(Bug::NoFsync) {
                disk.file.sync_all()?;
            }
        }
        if shutdown {
            eprintln!(
                "mfs-server: shut down after {changes} change request(s) in {syncs} batch sync(s)"
            );
        }
        answered.clear();
        for (reply, to) in out.drain(..) {
            // A client that went away is not the server's problem.
            let _ = socket.send_to(&reply, to);
            answered.push(to);
        }
        if shutdown {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{scan_log, Checkpoint, CR_SIZE};

    /// The wait of group commit: false at its deadline with nothing sent, true as soon
    /// as a datagram is waiting, and the datagram is still there to be taken.
    #[test]
    fn a_batch_waits_for_a_datagram_until_its_deadline() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let start = Instant::now();
        assert!(!readable_before(&server, start + Duration::from_millis(20)));
        assert!(
            start.elapsed() >= Duration::from_millis(20),
            "returned before its deadline"
        );
        assert!(
            !readable_before(&server, Instant::now()),
            "a deadline already past"
        );
        client
            .send_to(b"late", server.local_addr().unwrap())
            .unwrap();
        assert!(readable_before(
            &server,
            Instant::now() + Duration::from_secs(5)
        ));
        let mut buf = [0u8; 16];
        let (n, _) = recv_nowait(&server, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"late");
    }

    /// The rest of a batch is taken from a blocking socket without ever waiting, and
    /// each datagram comes with its sender (where the reply goes).
    #[test]
    fn taking_the_rest_of_a_batch_never_waits_and_names_the_sender() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 64];
        let empty = recv_nowait(&server, &mut buf).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        client
            .send_to(b"one", server.local_addr().unwrap())
            .unwrap();
        client
            .send_to(b"two", server.local_addr().unwrap())
            .unwrap();
        // The first of a batch is a blocking receive, as in the server loop.
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"one"[..], client.local_addr().unwrap())
        );
        let (n, from) = recv_nowait(&server, &mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"two"[..], client.local_addr().unwrap())
        );
        assert_eq!(
            recv_nowait(&server, &mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }
    use specs::mfs::wire::Reply;

    /// An image written batch by batch as the server writes it, its checkpoint region
    /// left at the first batch (as after a crash before the next CR write), and where
    /// each batch's bytes lie.
    fn image_of_batches(batches: usize, per_batch: usize) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut fs = Fs::fresh();
        let mut image = vec![0u8; CR_SIZE];
        let (_, root) = fs.take_pending().unwrap();
        image.extend_from_slice(&root);
        image[..CR_SIZE].copy_from_slice(&fs.checkpoint());
        let mut ranges = Vec::new();
        for b in 0..batches {
            for i in 0..per_batch {
                let request = Request::Creat {
                    pinum: 0,
                    kind: 1,
                    name: format!("f{b}.{i}").into_bytes(),
                };
                assert_eq!(fs.apply(&image, &request), Reply::Ok(0));
            }
            let (start, bytes) = fs.take_pending().unwrap();
            assert_eq!(start as usize, image.len());
            image.extend_from_slice(&bytes);
            ranges.push((start as usize, image.len()));
        }
        (image, ranges)
    }

    /// Record starts inside `range` of a whole image.
    fn record_starts(image: &[u8], range: (usize, usize)) -> Vec<usize> {
        let cr = Checkpoint::decode(image).unwrap();
        scan_log(image, &cr)
            .unwrap()
            .records
            .iter()
            .map(|r| r.start as usize)
            .filter(|&s| s >= range.0 && s < range.1)
            .collect()
    }

    /// Boots `image` the way `mfs-server` does and runs `mfsck`'s check on it; they
    /// must agree. Returns the booted names of batch `b` found, per batch, or the refusal.
    fn boot(image: &[u8], batches: usize, per_batch: usize) -> Result<Vec<usize>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs.img");
        std::fs::write(&path, image).unwrap();
        let booted = open_image(&path);
        let report = crate::fsck::check(image);
        assert_eq!(
            booted.is_ok(),
            report.ok(),
            "boot and mfsck disagree: boot {:?}, mfsck errors {:?}",
            booted.as_ref().err(),
            report.errors
        );
        let (disk, mut fs) = match booted {
            Ok(b) => b,
            Err(e) => {
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    image,
                    "a refused image was modified"
                );
                return Err(format!("{e:#}"));
            }
        };
        let after = std::fs::read(&path).unwrap();
        assert!(
            crate::fsck::check(&after).ok(),
            "the image boot left behind fails mfsck"
        );
        // A torn tail is cut, not kept as space written ahead: the next records would
        // land on it, and a whole record of the torn batch after them could be rolled
        // forward at a later boot.
        let cr = Checkpoint::decode(&after[..CR_SIZE]).expect("a whole checkpoint region");
        let tail = scan_log(after.as_slice(), &cr).unwrap().tail;
        assert!(
            !matches!(tail, Some(t) if !t.zeroed),
            "boot left a torn tail in the image"
        );
        Ok((0..batches)
            .map(|b| {
                (0..per_batch)
                    .filter(|i| {
                        let request = Request::Lookup {
                            pinum: 0,
                            name: format!("f{b}.{i}").into_bytes(),
                        };
                        matches!(fs.apply(&disk.file, &request), Reply::Ok(_))
                    })
                    .count()
            })
            .collect())
    }

    /// A batch that passes the file's end writes zeros after its records; later
    /// batches land in them without growing the file, and boot keeps them (and the
    /// state) while `mfsck` only notes them.
    #[test]
    fn the_log_is_written_ahead_with_zeros_that_boot_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs.img");
        let (mut disk, mut fs) = open_image(&path).unwrap();
        let create = |i: usize| Request::Creat {
            pinum: 0,
            kind: 1,
            name: format!("f{i}").into_bytes(),
        };
        assert_eq!(fs.apply(&disk.file, &create(0)), Reply::Ok(0));
        assert!(disk.append(fs.take_pending()).unwrap());
        let first = disk.file.metadata().unwrap().len();
        assert_eq!(first, disk.len);
        assert!(
            first >= AHEAD_MIN,
            "the first batch wrote {first} bytes ahead"
        );
        for i in 1..20 {
            assert_eq!(fs.apply(&disk.file, &create(i)), Reply::Ok(0));
            assert!(disk.append(fs.take_pending()).unwrap());
        }
        assert!(!disk.append(fs.take_pending()).unwrap(), "nothing pending");
        assert_eq!(
            disk.file.metadata().unwrap().len(),
            first,
            "no growth in the space"
        );
        disk.file.write_all_at(&fs.checkpoint(), 0).unwrap();
        disk.file.sync_all().unwrap();
        drop(disk);

        let image = std::fs::read(&path).unwrap();
        let report = crate::fsck::check(&image);
        assert!(report.ok(), "{:?}", report.errors);
        assert!(
            report.notes.iter().any(|n| n.contains("written ahead")),
            "{:?}",
            report.notes
        );
        let (_, recovery) = Fs::recover(image.as_slice()).unwrap();
        assert_eq!(recovery.torn_bytes, 0);
        assert_eq!(recovery.log_end + recovery.written_ahead, first);
        let (disk, mut back) = open_image(&path).unwrap();
        assert_eq!(
            disk.file.metadata().unwrap().len(),
            first,
            "boot kept the space"
        );
        for i in 0..20 {
            let lookup = Request::Lookup {
                pinum: 0,
                name: format!("f{i}").into_bytes(),
            };
            assert!(
                matches!(back.apply(&disk.file, &lookup), Reply::Ok(_)),
                "f{i}"
            );
        }
    }

    #[test]
    fn a_torn_or_garbage_tail_is_cut_and_every_synced_batch_kept() {
        let (image, ranges) = image_of_batches(4, 3);
        let (last_start, last_end) = ranges[3];
        // The last batch's write was under way at the power failure: any prefix of it,
        // or garbage or zeros where its pages never reached the disk.
        // Whole records at the head of a torn batch are rolled forward: never
        // acknowledged, so allowed either way, and they are intact.
        let starts = record_starts(&image, ranges[3]);
        let mut tails: Vec<(&str, Vec<u8>, usize)> = Vec::new();
        for cut in [
            1,
            31,
            32,
            100,
            4200,
            starts[1] - last_start + 10,
            last_end - last_start - 1,
        ] {
            let mut torn = image[..last_start].to_vec();
            torn.extend_from_slice(&image[last_start..last_start + cut]);
            let whole = starts[1..]
                .iter()
                .filter(|&&next| next <= last_start + cut)
                .count();
            tails.push(("prefix", torn, whole));
        }
        let mut zeros = image[..last_start].to_vec();
        zeros.resize(last_end, 0);
        tails.push(("zeros", zeros, 0));
        let mut garbage = image[..last_start].to_vec();
        garbage.extend((0..9000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
        tails.push(("garbage", garbage.clone(), 0));
        // The same with a checkpoint region that covers the synced batches, so
        // nothing is rolled forward: the garbage must still be cut, not kept as space
        // written ahead.
        let (fs, _) = Fs::recover(&image[..last_start]).unwrap();
        garbage[..CR_SIZE].copy_from_slice(&fs.checkpoint());
        tails.push(("garbage after a checkpoint covering the log", garbage, 0));
        // Its first record's pages lost, its later (whole) records on disk: they belong
        // to the same unsynced batch, so they go too.
        let mut hole = image.clone();
        hole[starts[0] + 40] ^= 0xFF;
        tails.push(("first record of the batch lost, later ones whole", hole, 0));
        for (what, torn, whole) in tails {
            let kept = boot(&torn, 4, 3).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(kept, vec![3, 3, 3, whole], "{what}: names found per batch");
        }
        assert_eq!(boot(&image, 4, 3).unwrap(), vec![3, 3, 3, 3]);
    }

    #[test]
    fn a_damaged_acknowledged_record_is_refused_not_cut() {
        let (image, ranges) = image_of_batches(4, 3);
        // A record of batch 1 is damaged but batch 2 was written after it, which a
        // server does only once batch 1 was synced and answered.
        let starts = record_starts(&image, ranges[1]);
        let mut damaged = image.clone();
        damaged[starts[1] + 40] ^= 0xFF;
        let e = boot(&damaged, 4, 3).unwrap_err();
        assert!(e.contains("damaged, not torn"), "{e}");
        assert!(e.contains("would lose acknowledged changes"), "{e}");
        // A record the checkpoint covers is damaged.
        let mut fs_image = image.clone();
        let mut covered = Checkpoint::decode(&fs_image).unwrap();
        covered.log_end = ranges[3].1 as u64;
        let mut fs = Fs::recover(fs_image.as_slice()).unwrap().0;
        covered.seq = Checkpoint::decode(&fs.checkpoint()).unwrap().seq;
        covered.pieces = Checkpoint::decode(&fs.checkpoint()).unwrap().pieces;
        let _ = fs.take_pending();
        fs_image[..CR_SIZE].copy_from_slice(&covered.encode());
        assert_eq!(boot(&fs_image, 4, 3).unwrap(), vec![3, 3, 3, 3]);
        fs_image[starts[1] + 40] ^= 0xFF;
        let e = boot(&fs_image, 4, 3).unwrap_err();
        assert!(
            e.contains("synced and acknowledged, and are damaged"),
            "{e}"
        );
    }
}
