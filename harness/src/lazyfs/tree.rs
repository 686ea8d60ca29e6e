//! The in-memory tree behind a [`LazyFs`](super::LazyFs): the live state programs see
//! and, beside it, the durable state a disk would hold after a power cut. The rules
//! that carry changes from one to the other are in [`durability`].
//!
//! Nothing here knows about FUSE: operations take inode numbers and names and return
//! an errno on failure, so the FUSE layer is a thin translation.

mod durability;

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

pub use durability::{Lost, Torn};

pub type Ino = u64;
pub const ROOT: Ino = 1;

/// An errno (`libc::ENOENT`, ...).
pub type Errno = i32;
pub type Result<T> = std::result::Result<T, Errno>;

/// Largest file size: a write far past the end must fail cleanly, not try to
/// allocate the gap in memory.
pub const MAX_FILE_SIZE: u64 = 4 << 30;
/// Longest name, as on ext4.
pub const MAX_NAME: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// The attributes a disk keeps in an inode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta {
    /// Permission bits (`0o7777`).
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

impl Meta {
    fn new(perm: u16, uid: u32, gid: u32) -> Meta {
        let now = SystemTime::now();
        Meta {
            perm: perm & 0o7777,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    fn modified(&mut self) {
        let now = SystemTime::now();
        self.mtime = now;
        self.ctime = now;
    }
}

/// What `stat` reports about an inode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub nlink: u32,
    pub meta: Meta,
}

/// Counters for tests and journals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `fsync` and `fdatasync` calls on files.
    pub fsyncs: u64,
    /// `fsync` calls on directories.
    pub fsyncdirs: u64,
    pub power_failures: u64,
    /// What the last power failure discarded.
    pub last_loss: Lost,
}

#[derive(Debug)]
enum Body {
    File {
        data: Vec<u8>,
        /// The contents as of the last fsync: what a power failure leaves.
        durable: Vec<u8>,
        /// `data` differs from `durable`.
        dirty: bool,
        /// Cut below its durable length since the last sync: a power failure in the
        /// middle of a write keeps none of its changes (see `Tree::tear_writes`).
        shrunk: bool,
    },
    Dir {
        entries: BTreeMap<OsString, Ino>,
        /// The entries as of the last fsync of this directory.
        durable: BTreeMap<OsString, Ino>,
    },
}

#[derive(Debug)]
struct Inode {
    meta: Meta,
    durable_meta: Meta,
    body: Body,
    /// Where the live tree links it (parent directory and name): `None` for the root
    /// and for an inode that was unlinked (and is kept for an open handle or because
    /// a durable entry still names it).
    link: Option<(Ino, OsString)>,
    /// Open handles.
    opens: u32,
    /// Durable directory entries naming it.
    durable_links: u32,
}

impl Inode {
    fn kind(&self) -> Kind {
        match self.body {
            Body::File { .. } => Kind::File,
            Body::Dir { .. } => Kind::Dir,
        }
    }
}

#[derive(Debug)]
struct Handle {
    ino: Ino,
    append: bool,
}

/// The filesystem's whole state.
#[derive(Debug)]
pub struct Tree {
    inodes: HashMap<Ino, Inode>,
    handles: HashMap<u64, Handle>,
    /// Inode numbers are never reused, so the kernel can never confuse a file that a
    /// power failure discarded with a new one.
    next_ino: Ino,
    next_fh: u64,
    stats: Stats,
    owner: (u32, u32),
}

impl Tree {
    /// An empty tree whose root is owned by `uid`/`gid`, durable as it is.
    pub fn new(uid: u32, gid: u32) -> Tree {
        let mut tree = Tree {
            inodes: HashMap::new(),
            handles: HashMap::new(),
            next_ino: ROOT + 1,
            next_fh: 1,
            stats: Stats::default(),
            owner: (uid, gid),
        };
        tree.inodes.insert(ROOT, root(uid, gid));
        tree
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes held by live files and the number of inodes, for `statfs`.
    pub fn usage(&self) -> (u64, u64) {
        let bytes = self
            .inodes
            .values()
            .map(|n| match &n.body {
                Body::File { data, .. } => data.len() as u64,
                Body::Dir { .. } => 0,
            })
            .sum();
        (bytes, self.inodes.len() as u64)
    }

    fn node(&self, ino: Ino) -> Result<&Inode> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<OsString, Ino>> {
        match &self.node(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            Body::File { .. } => Err(libc::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<OsString, Ino>> {
        match &mut self.node_mut(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            Body::File { .. } => Err(libc::ENOTDIR),
        }
    }

    fn child(&self, dir: Ino, name: &OsStr) -> Result<Ino> {
        self.entries(dir)?.get(name).copied().ok_or(libc::ENOENT)
    }

    fn touch(&mut self, dir: Ino) {
        if let Some(n) = self.inodes.get_mut(&dir) {
            n.meta.modified();
        }
    }

    pub fn attr(&self, ino: Ino) -> Result<Attr> {
        let n = self.node(ino)?;
        let (size, nlink) = match &n.body {
            Body::File { data, .. } => (data.len() as u64, u32::from(n.link.is_some())),
            Body::Dir { entries, .. } => {
                // `find` trusts a directory's link count to know how many
                // subdirectories it has.
                let subdirs = entries
                    .values()
                    .filter(|c| self.inodes.get(c).is_some_and(|c| c.kind() == Kind::Dir))
                    .count();
                (4096, 2 + subdirs as u32)
            }
        };
        Ok(Attr {
            ino,
            kind: n.kind(),
            size,
            nlink,
            meta: n.meta,
        })
    }

    pub fn lookup(&self, dir: Ino, name: &OsStr) -> Result<Attr> {
        self.attr(self.child(dir, name)?)
    }

    /// Creates an empty file or directory `name` in `dir`.
    pub fn create(
        &mut self,
        dir: Ino,
        name: &OsStr,
        kind: Kind,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Attr> {
        check_name(name)?;
        if self.entries(dir)?.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let meta = Meta::new(perm, uid, gid);
        let body = match kind {
            Kind::File => Body::File {
                data: Vec::new(),
                durable: Vec::new(),
                dirty: false,
                shrunk: false,
            },
            Kind::Dir => Body::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
            },
        };
        self.inodes.insert(
            ino,
            Inode {
                meta,
                durable_meta: meta,
                body,
                link: Some((dir, name.to_os_string())),
                opens: 0,
                durable_links: 0,
            },
        );
        self.entries_mut(dir)?.insert(name.to_os_string(), ino);
        self.touch(dir);
        self.attr(ino)
    }

    /// Opens a file; returns the handle.
    pub fn open(&mut self, ino: Ino, append: bool) -> Result<u64> {
        let n = self.node_mut(ino)?;
        if n.kind() == Kind::Dir {
            return Err(libc::EISDIR);
        }
        n.opens += 1;
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, append });
        Ok(fh)
    }

    /// Closes a handle. A handle from before a power failure is no longer known and
    /// is ignored.
    pub fn release(&mut self, fh: u64) {
        if let Some(handle) = self.handles.remove(&fh) {
            if let Some(n) = self.inodes.get_mut(&handle.ino) {
                n.opens = n.opens.saturating_sub(1);
            }
            self.drop_unused(vec![handle.ino]);
        }
    }

    fn file(&self, ino: Ino) -> Result<&Vec<u8>> {
        match &self.node(ino)?.body {
            Body::File { data, .. } => Ok(data),
            Body::Dir { .. } => Err(libc::EISDIR),
        }
    }

    /// The live data of `ino` and a flag to set when it changes.
    fn file_mut(&mut self, ino: Ino) -> Result<(&mut Vec<u8>, &mut bool, &mut Meta)> {
        let n = self.node_mut(ino)?;
        match &mut n.body {
            Body::File { data, dirty, .. } => Ok((data, dirty, &mut n.meta)),
            Body::Dir { .. } => Err(libc::EISDIR),
        }
    }

    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<&[u8]> {
        let data = self.file(ino)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(size as usize).min(data.len());
        Ok(&data[start..end])
    }

    /// Writes at `offset`, or at the end for a handle opened with `O_APPEND` (without
    /// a writeback cache the kernel leaves appending to the filesystem).
    pub fn write(&mut self, ino: Ino, fh: u64, offset: u64, bytes: &[u8]) -> Result<u32> {
        let append = self
            .handles
            .get(&fh)
            .is_some_and(|h| h.ino == ino && h.append);
        let (data, dirty, meta) = self.file_mut(ino)?;
        let start = if append { data.len() as u64 } else { offset };
        let end = start
            .checked_add(bytes.len() as u64)
            .filter(|end| *end <= MAX_FILE_SIZE)
            .ok_or(libc::EFBIG)?;
        let (start, end) = (start as usize, end as usize);
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        *dirty = true;
        meta.modified();
        Ok(bytes.len() as u32)
    }

    /// Truncates or extends (with zeros) to `size`.
    pub fn set_size(&mut self, ino: Ino, size: u64) -> Result<()> {
        if size > MAX_FILE_SIZE {
            return Err(libc::EFBIG);
        }
        let n = self.node_mut(ino)?;
        let Body::File {
            data,
            durable,
            dirty,
            shrunk,
        } = &mut n.body
        else {
            return Err(libc::EISDIR);
        };
        if data.len() as u64 != size {
            data.resize(size as usize, 0);
            *dirty = true;
            *shrunk |= data.len() < durable.len();
        }
        n.meta.modified();
        Ok(())
    }

    /// `fallocate`: mode 0 extends the file to cover the range; `keep_size` only
    /// reserves space, which memory does not need.
    pub fn allocate(&mut self, ino: Ino, offset: u64, length: u64, keep_size: bool) -> Result<()> {
        let end = offset.checked_add(length).ok_or(libc::EFBIG)?;
        let len = self.file(ino)?.len() as u64;
        if keep_size || end <= len {
            return Ok(());
        }
        self.set_size(ino, end)
    }

    /// chmod, chown and utimes.
    pub fn set_meta(
        &mut self,
        ino: Ino,
        perm: Option<u16>,
        uid: Option<u32>,
        gid: Option<u32>,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> Result<()> {
        let meta = &mut self.node_mut(ino)?.meta;
        if let Some(perm) = perm {
            meta.perm = perm & 0o7777;
        }
        if let Some(uid) = uid {
            meta.uid = uid;
        }
        if let Some(gid) = gid {
            meta.gid = gid;
        }
        if let Some(atime) = atime {
            meta.atime = atime;
        }
        if let Some(mtime) = mtime {
            meta.mtime = mtime;
        }
        meta.ctime = SystemTime::now();
        Ok(())
    }

    /// Forgets inodes nothing refers to any more (no live name, no open handle, no
    /// durable entry), and what only they referred to.
    fn drop_unused(&mut self, mut candidates: Vec<Ino>) {
        while let Some(ino) = candidates.pop() {
            let unused = ino != ROOT
                && self
                    .inodes
                    .get(&ino)
                    .is_some_and(|n| n.link.is_none() && n.opens == 0 && n.durable_links == 0);
            if !unused {
                continue;
            }
            let n = self.inodes.remove(&ino).expect("checked above");
            if let Body::Dir { durable, .. } = n.body {
                for child in durable.into_values() {
                    if let Some(c) = self.inodes.get_mut(&child) {
                        c.durable_links = c.durable_links.saturating_sub(1);
                        candidates.push(child);
                    }
                }
            }
        }
    }

    /// Takes `ino` out of the live tree (its name is already gone).
    fn unlinked(&mut self, ino: Ino) {
        if let Some(n) = self.inodes.get_mut(&ino) {
            n.link = None;
            n.meta.ctime = SystemTime::now();
        }
        self.drop_unused(vec![ino]);
    }

    pub fn unlink(&mut self, dir: Ino, name: &OsStr) -> Result<()> {
        let ino = self.child(dir, name)?;
        if self.node(ino)?.kind() == Kind::Dir {
            return Err(libc::EISDIR);
        }
        self.entries_mut(dir)?.remove(name);
        self.touch(dir);
        self.unlinked(ino);
        Ok(())
    }

    pub fn rmdir(&mut self, dir: Ino, name: &OsStr) -> Result<()> {
        let ino = self.child(dir, name)?;
        if !self.entries(ino)?.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.entries_mut(dir)?.remove(name);
        self.touch(dir);
        self.unlinked(ino);
        Ok(())
    }

    /// `rename(2)`, replacing an existing target as POSIX says; `noreplace` is
    /// `RENAME_NOREPLACE`.
    pub fn rename(
        &mut self,
        from_dir: Ino,
        from: &OsStr,
        to_dir: Ino,
        to: &OsStr,
        noreplace: bool,
    ) -> Result<()> {
        check_name(to)?;
        let ino = self.child(from_dir, from)?;
        let kind = self.node(ino)?.kind();
        let target = self.entries(to_dir)?.get(to).copied();
        if let Some(target) = target {
            if noreplace {
                return Err(libc::EEXIST);
            }
            if target == ino {
                return Ok(());
            }
            match (kind, self.node(target)?.kind()) {
                (Kind::Dir, Kind::Dir) if !self.entries(target)?.is_empty() => {
                    return Err(libc::ENOTEMPTY)
                }
                (Kind::Dir, Kind::File) => return Err(libc::ENOTDIR),
                (Kind::File, Kind::Dir) => return Err(libc::EISDIR),
                _ => {}
            }
        }
        if kind == Kind::Dir && self.is_within(to_dir, ino) {
            return Err(libc::EINVAL);
        }
        self.entries_mut(from_dir)?.remove(from);
        self.entries_mut(to_dir)?.insert(to.to_os_string(), ino);
        let n = self.node_mut(ino)?;
        n.link = Some((to_dir, to.to_os_string()));
        n.meta.ctime = SystemTime::now();
        self.touch(from_dir);
        self.touch(to_dir);
        if let Some(target) = target {
            self.unlinked(target);
        }
        Ok(())
    }

    /// True when `dir` is `ancestor` or lies under it.
    fn is_within(&self, mut dir: Ino, ancestor: Ino) -> bool {
        loop {
            if dir == ancestor {
                return true;
            }
            match self.inodes.get(&dir).and_then(|n| n.link.as_ref()) {
                Some((parent, _)) => dir = *parent,
                None => return false,
            }
        }
    }

    /// The entries of `dir`, `.` and `..` first.
    pub fn list(&self, dir: Ino) -> Result<Vec<(Ino, Kind, OsString)>> {
        let entries = self.entries(dir)?;
        let parent = self
            .node(dir)?
            .link
            .as_ref()
            .map_or(ROOT, |(parent, _)| *parent);
        let mut list = vec![
            (dir, Kind::Dir, OsString::from(".")),
            (parent, Kind::Dir, OsString::from("..")),
        ];
        for (name, ino) in entries {
            let kind = self.node(*ino).map_or(Kind::File, Inode::kind);
            list.push((*ino, kind, name.clone()));
        }
        Ok(list)
    }

    /// Every live file and directory below the root, parents before children, with
    /// the path relative to the root and a file's contents.
    pub fn walk(&self) -> Vec<(std::path::PathBuf, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut queue = vec![(ROOT, std::path::PathBuf::new())];
        while let Some((dir, path)) = queue.pop() {
            let Ok(entries) = self.entries(dir) else {
                continue;
            };
            for (name, ino) in entries {
                let path = path.join(name);
                match self.inodes.get(ino).map(|n| &n.body) {
                    Some(Body::File { data, .. }) => out.push((path, Some(data.clone()))),
                    Some(Body::Dir { .. }) => {
                        out.push((path.clone(), None));
                        queue.push((*ino, path));
                    }
                    None => {}
                }
            }
        }
        out
    }
}

fn root(uid: u32, gid: u32) -> Inode {
    let meta = Meta::new(0o755, uid, gid);
    Inode {
        meta,
        durable_meta: meta,
        body: Body::Dir {
            entries: BTreeMap::new(),
            durable: BTreeMap::new(),
        },
        link: None,
        opens: 0,
        durable_links: 0,
    }
}

fn check_name(name: &OsStr) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(libc::ENAMETOOLONG);
    }
    if name.is_empty() || name == "." || name == ".." {
        return Err(libc::EINVAL);
    }
    Ok(())
}
