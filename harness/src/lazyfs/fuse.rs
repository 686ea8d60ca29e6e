//! The FUSE side of a [`LazyFs`](super::LazyFs): kernel requests turned into
//! operations on the [`Tree`].
//!
//! Every reply carries a zero attribute and entry timeout and no open asks the kernel
//! to keep its page cache, so after a power failure the next `stat`, lookup or open
//! asks the tree again and a restarted process reads what the tree holds.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::cut::PowerCut;
use super::tree::{self, Attr, Kind, Tree};

const TTL: Duration = Duration::ZERO;
const BLOCK: u64 = 4096;
/// The capacity `statfs` reports (memory is the real limit).
const CAPACITY_BLOCKS: u64 = 1 << 22;
const CAPACITY_INODES: u64 = 1 << 20;

pub(super) struct Fs {
    pub(super) tree: Arc<Mutex<Tree>>,
    pub(super) cut: Arc<Mutex<PowerCut>>,
}

impl Fs {
    fn tree(&self) -> MutexGuard<'_, Tree> {
        // A panic while the lock was held leaves a tree that is still well formed
        // (every operation checks before it changes anything), so keep serving.
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reply of a sync that may go ahead; `None` when a power cut holds it.
    /// `overwrite`: the synced file holds an overwrite not yet durable.
    fn sync_allowed(&self, reply: ReplyEmpty, overwrite: bool) -> Option<ReplyEmpty> {
        self.cut
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pass(reply, overwrite)
    }
}

fn errno(e: tree::Errno) -> Errno {
    Errno::from_i32(e)
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.meta.atime,
        mtime: a.meta.mtime,
        ctime: a.meta.ctime,
        crtime: a.meta.ctime,
        kind: file_type(a.kind),
        perm: a.meta.perm,
        nlink: a.nlink,
        uid: a.meta.uid,
        gid: a.meta.gid,
        rdev: 0,
        blksize: BLOCK as u32,
        flags: 0,
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn perm(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

fn entry(reply: ReplyEntry, result: tree::Result<Attr>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &file_attr(&attr), Generation(0)),
        Err(e) => reply.error(errno(e)),
    }
}

fn empty(reply: ReplyEmpty, result: tree::Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        entry(reply, self.tree().lookup(parent.0, name));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.tree().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut tree = self.tree();
        let result = (|| {
            if let Some(size) = size {
                tree.set_size(ino.0, size)?;
            }
            tree.set_meta(
                ino.0,
                mode.map(|m| (m & 0o7777) as u16),
                uid,
                gid,
                atime.map(time),
                mtime.map(time),
            )?;
            tree.attr(ino.0)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Regular files only: mknod(2) answers EPERM for a type the filesystem lacks.
        if mode & libc::S_IFMT != libc::S_IFREG {
            reply.error(Errno::EPERM);
            return;
        }
        let result = self.tree().create(
            parent.0,
            name,
            Kind::File,
            perm(mode, umask),
            req.uid(),
            req.gid(),
        );
        entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let result = self.tree().create(
            parent.0,
            name,
            Kind::Dir,
            perm(mode, umask),
            req.uid(),
            req.gid(),
        );
        entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.tree().unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.tree().rmdir(parent.0, name));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            // RENAME_EXCHANGE and RENAME_WHITEOUT: what a filesystem without them says.
            reply.error(Errno::EINVAL);
            return;
        }
        let result = self
            .tree()
            .rename(parent.0, name, newparent.0, newname, noreplace);
        empty(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let append = flags.0 & libc::O_APPEND != 0;
        match self.tree().open(ino.0, append) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            reply.error(Errno::EPERM);
            return;
        }
        let mut tree = self.tree();
        let result = tree
            .create(
                parent.0,
                name,
                Kind::File,
                perm(mode, umask),
                req.uid(),
                req.gid(),
            )
            .and_then(|attr| Ok((attr, tree.open(attr.ino, flags & libc::O_APPEND != 0)?)));
        match result {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &file_attr(&attr),
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.tree().read(ino.0, offset, size) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.tree().write(ino.0, fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.tree().release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let at_overwrite = self
            .cut
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .at_overwrite();
        let overwrite = at_overwrite && self.tree().overwrite_pending(ino.0);
        if let Some(reply) = self.sync_allowed(reply, overwrite) {
            empty(reply, self.tree().fsync(ino.0, datasync));
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let list = match self.tree().list(ino.0) {
            Ok(list) => list,
            Err(e) => {
                reply.error(errno(e));
                return;
            }
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (child, kind, name)) in list.into_iter().enumerate().skip(skip) {
            // The offset is where the next call resumes.
            if reply.add(INodeNo(child), i as u64 + 1, file_type(kind), name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        if let Some(reply) = self.sync_allowed(reply, false) {
            empty(reply, self.tree().fsyncdir(ino.0));
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let (bytes, inodes) = self.tree().usage();
        let used = bytes.div_ceil(BLOCK);
        let free = CAPACITY_BLOCKS.saturating_sub(used);
        reply.statfs(
            CAPACITY_BLOCKS,
            free,
            free,
            CAPACITY_INODES,
            CAPACITY_INODES.saturating_sub(inodes),
            BLOCK as u32,
            tree::MAX_NAME as u32,
            BLOCK as u32,
        );
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
            // Punching holes and the like.
            reply.error(Errno::EOPNOTSUPP);
            return;
        }
        let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        empty(
            reply,
            self.tree().allocate(ino.0, offset, length, keep_size),
        );
    }
}
