//! `LazyFs`: a FUSE filesystem that keeps in memory only what was not made durable,
//! and can lose power, the way Jepsen's LazyFS does.
//!
//! A crash test with SIGKILL cannot catch an implementation that forgets to fsync:
//! the kernel's page cache outlives the process, so the restarted node reads every
//! write it made, synced or not. Only a power failure discards the page cache. This
//! filesystem is that power failure on demand: mounted on a node's data dir, it
//! serves programs from an in-memory live tree and keeps beside it the durable tree a
//! disk would hold, and [`LazyFs::power_fail`] throws the live tree away.
//!
//! # Durability model
//!
//! Strict POSIX, stricter than ext4's heuristics (which, for instance, flush a file
//! renamed over another):
//!
//! - A file's data (contents and size, so a truncate too) becomes durable when that
//!   file is `fsync`ed or `fdatasync`ed, through any descriptor; `fsync` also makes
//!   its attributes durable.
//! - A directory's entries (names created, unlinked or renamed, `mkdir`, `rmdir`)
//!   become durable when that directory is `fsync`ed. A rename is one step, so a
//!   name is never durable in two places: a rename into another directory becomes
//!   durable when the destination is synced, and until then the old name stays.
//! - A write through a descriptor opened with `O_SYNC` or `O_DSYNC` is durable when
//!   it returns (the kernel fsyncs the file after it).
//! - Nothing else makes anything durable: not `close`, not `sync(2)` or `syncfs(2)`
//!   (FUSE does not pass them on), not time.
//!
//! After [`LazyFs::power_fail`] the tree is the durable one: unsynced writes are gone,
//! a file created in a directory that was never synced is gone (however often the
//! file itself was synced), an unsynced rename is undone and an unsynced unlink comes
//! back. A durable name whose file data was never synced comes back empty, as on a
//! real disk. A new subdirectory needs its parent synced too.
//!
//! Two ways to lose power in the middle of things, for the windows a crash at a
//! random moment almost never hits:
//!
//! - [`LazyFs::cut_power_at_sync`]: the n-th sync from now never returns and makes
//!   nothing durable (`cut.rs`), so the program cannot tell anyone it happened; the
//!   harness kills it there. Counting syncs instead of time makes the window between
//!   two writes that belong together (a snapshot and the log it cuts short) as likely
//!   a place for the power to go as any other.
//! - [`LazyFs::cut_power_at_overwrite_sync`]: the power goes in the first sync of a
//!   file holding bytes written in place over durable ones (other than zeros written
//!   ahead of a log), the window in which an overwrite (a checkpoint rewritten at a
//!   fixed offset) can be torn.
//! - [`LazyFs::power_fail_torn`]: a write was under way, so each file appended to
//!   since its last sync keeps a random prefix of what was appended (drawn over the
//!   bytes before any zeros that end it, which space written ahead would otherwise
//!   make almost every draw keep whole; a torn tail, as
//!   a disk that wrote some of an append's sectors leaves), and each 512-byte sector
//!   it overwrote in place holds, at random, its old bytes, its new ones, or the new
//!   ones before a random byte and the old from it on, the byte drawn between the
//!   first and last the write changed (sectors land in any order, and not every disk
//!   writes a sector atomically). A file cut shorter since its last
//!   sync (a truncate, `O_TRUNC`) keeps none of its changes, and a new name or a
//!   rename is kept whole or not at all.
//!
//! The kernel must not hide a power failure: every attribute and entry reply has a
//! zero timeout and no open keeps the page cache, so the next process reads what the
//! tree holds. Kill every process using the mount before the power goes (the cluster
//! does): a real power failure leaves no process behind, and a handle opened before
//! it is forgotten.
//!
//! Supported: regular files and directories, with what programs use on them (lookup,
//! stat, chmod/chown/utimes, truncate, create, open, read, write, `O_APPEND`,
//! fallocate, fsync, fdatasync, mkdir, unlink, rmdir, rename incl. over an existing
//! file and `RENAME_NOREPLACE`, readdir, fsyncdir, statfs). Not supported: symlinks,
//! hard links, special files, extended attributes.
//!
//! # Why FUSE
//!
//! The alternatives are worse at the one job. Interposing on libc with `LD_PRELOAD`
//! misses programs that make system calls themselves: every Go program, and any
//! static binary. A loop device or a VM disk image needs dm-flakey or a hypervisor
//! and cannot drop writes selectively. A FUSE filesystem sees every file operation
//! of every program, in any language, and runs inside the test process.
//!
//! It uses the `fuser` crate, the maintained pure-Rust FUSE library, without its
//! `libfuse` feature: as root it mounts with the `mount(2)` system call on
//! `/dev/fuse` directly, so nothing needs to be installed (no libfuse, no
//! `fusermount3`).

mod cut;
mod fuse;
mod tree;

use crate::error::HarnessError;
use crate::process::Process;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard};

use tree::Torn;
pub use tree::{Lost, Stats};

use cut::PowerCut;
use tree::Tree;

/// A mounted LazyFs. Dropping it unmounts it (lazily, so a file still open never
/// leaves a busy mount behind) and leaves the mount point an empty directory again.
pub struct LazyFs {
    mountpoint: PathBuf,
    tree: Arc<Mutex<Tree>>,
    cut: Arc<Mutex<PowerCut>>,
    session: Option<fuser::BackgroundSession>,
}

impl fmt::Debug for LazyFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyFs")
            .field("mountpoint", &self.mountpoint)
            .field("stats", &self.stats())
            .finish()
    }
}

impl LazyFs {
    /// Mounts an empty LazyFs on the directory `mountpoint`.
    pub fn mount(mountpoint: &Path) -> Result<LazyFs, HarnessError> {
        let fail = |reason: String| HarnessError::Mount {
            path: mountpoint.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(mountpoint).map_err(|e| fail(e.to_string()))?;
        if !meta.is_dir() {
            return Err(fail("not a directory".into()));
        }
        if !Path::new("/dev/fuse").exists() {
            return Err(fail(
                "/dev/fuse is missing (load the fuse kernel module, or give the container the device)"
                    .into(),
            ));
        }
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let tree = Arc::new(Mutex::new(Tree::new(uid, gid)));
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("lazyfs".into()),
            fuser::MountOption::Subtype("lazyfs".into()),
        ];
        let cut = Arc::new(Mutex::new(PowerCut::default()));
        let fs = fuse::Fs {
            tree: tree.clone(),
            cut: cut.clone(),
        };
        let session = fuser::spawn_mount(fs, mountpoint, &config).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (mounting needs root, or fusermount3 from the fuse3 package)"
            } else {
                ""
            };
            fail(format!("{e}{hint}"))
        })?;
        Ok(LazyFs {
            mountpoint: mountpoint.to_path_buf(),
            tree,
            cut,
            session: Some(session),
        })
    }

    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cut(&self) -> MutexGuard<'_, PowerCut> {
        self.cut.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loses power: every change not made durable is discarded (see the module doc).
    /// Returns what was lost. Disarms a power cut (after releasing its held syncs).
    pub fn power_fail(&self) -> Lost {
        self.cut().release();
        self.tree().power_fail()
    }

    /// Loses power in the middle of a write: first each file appended to since its
    /// last sync keeps a prefix of the appended bytes, of a length drawn from `seed`
    /// (a torn tail, which a log must recognise at start), and each sector it
    /// overwrote in place is left old, new or new up to a byte, drawn from `seed`
    /// too (a torn overwrite, which a checkpoint must recognise), then as
    /// [`LazyFs::power_fail`].
    pub fn power_fail_torn(&self, seed: u64) -> Lost {
        // Tails drawn as before overwrites were torn, so a seed of a pure append
        // workload tears as it did.
        let mut tails = StdRng::seed_from_u64(seed);
        let mut sectors = StdRng::seed_from_u64(seed.wrapping_add(1));
        self.cut().release();
        let mut tree = self.tree();
        tree.tear_writes(
            // A sector torn inside is torn between its first and last changed bytes:
            // anywhere else it reads as old or new.
            |first, last| match sectors.gen_range(0..3) {
                0 => Torn::Old,
                1 => Torn::New,
                _ if first < last => Torn::NewUpTo(sectors.gen_range(first + 1..=last)),
                _ => Torn::New,
            },
            |appended| tails.gen_range(0..=appended),
        );
        tree.power_fail()
    }

    /// Arms a power cut at the `n`-th sync from now (`fsync`, `fdatasync` or a
    /// directory's fsync; n >= 1): that sync makes nothing durable and never returns
    /// (see `cut.rs`). [`LazyFs::power_is_cut`] says when it struck; then kill the
    /// programs using the mount, [`LazyFs::release_held_syncs`], reap them and
    /// [`LazyFs::power_fail`].
    pub fn cut_power_at_sync(&self, n: u64) {
        self.cut().arm(n);
    }

    /// Arms a power cut at the first `fsync` or `fdatasync` of a file that holds
    /// bytes written in place over durable ones (not an append, nor a write over
    /// durable zeros, which is how a log appends into space written ahead): that sync
    /// never returns, as with [`LazyFs::cut_power_at_sync`]. A program that never
    /// overwrites is never cut.
    pub fn cut_power_at_overwrite_sync(&self) {
        self.cut().arm_at_overwrite();
    }

    /// True once an armed power cut struck (a sync is being held).
    pub fn power_is_cut(&self) -> bool {
        self.cut().struck()
    }

    /// True while a power cut waits for its sync.
    pub fn power_cut_armed(&self) -> bool {
        self.cut().armed()
    }

    /// Disarms a power cut and lets every held sync fail with EIO, so a process
    /// killed in one can exit. Kill those processes first.
    pub fn release_held_syncs(&self) {
        self.cut().release();
    }

    /// Kills (SIGKILL) and reaps a process using this disk, even one waiting in a sync
    /// a power cut holds: such a process stays in the kernel until the sync is
    /// answered, so it is signalled first (it never runs again) and the sync let go
    /// before the wait. Any cut not yet struck is disarmed with it.
    pub fn kill(&self, process: &mut Process) -> std::io::Result<ExitStatus> {
        let _ = process.signal(libc::SIGKILL);
        self.release_held_syncs();
        process.kill()
    }

    /// Replaces the disk by an empty one (amnesia): nothing survives.
    pub fn wipe(&self) {
        self.tree().wipe();
    }

    pub fn stats(&self) -> Stats {
        self.tree().stats()
    }

    /// Copies the live tree into the (unmounted) mount point, so a failed test's
    /// kept directory shows the files as they were.
    fn dump(&self) -> std::io::Result<()> {
        for (path, data) in self.tree().walk() {
            let path = self.mountpoint.join(path);
            match data {
                Some(data) => std::fs::write(path, data)?,
                None => std::fs::create_dir_all(path)?,
            }
        }
        Ok(())
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        // Detach first: a plain unmount fails with EBUSY while any file is open (a
        // test that panicked holding one), and would leave the mount behind.
        if let Ok(path) = CString::new(self.mountpoint.as_os_str().as_bytes()) {
            // SAFETY: `path` is a valid NUL-terminated string for the whole call.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
        // A program still waiting in a held sync would keep the mount alive.
        self.release_held_syncs();
        // The session's own unmount now finds nothing mounted; its thread ends when
        // the kernel lets go of the detached mount.
        drop(self.session.take());
        if std::thread::panicking() {
            if let Err(e) = self.dump() {
                eprintln!(
                    "lazyfs: could not copy the files to {}: {e}",
                    self.mountpoint.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
