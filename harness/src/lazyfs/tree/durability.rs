//! How changes become durable, and what a power failure leaves: the part of the
//! [`Tree`] a disk's write ordering decides (the rules are in the `lazyfs` module doc).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;

use super::{root, Body, Ino, Inode, Result, Tree, ROOT};

/// The unit a disk writes in place: a sector.
pub const SECTOR: usize = 512;

/// What a power failure in the middle of a write leaves of one sector the write
/// overwrote: the old bytes, the new ones, or (a disk that does not write a sector
/// atomically) the new ones before a byte of the sector and the old from it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Torn {
    Old,
    New,
    NewUpTo(usize),
}

/// What one power failure discarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lost {
    /// Bytes of live file contents that differ from what survived (a file that
    /// vanished counts whole).
    pub bytes: u64,
    /// Files and directories of the live tree that did not survive.
    pub files: u64,
}

impl Tree {
    /// `fsync` (`datasync` false) or `fdatasync` of a file: its contents and size
    /// become durable, and with fsync its attributes too.
    pub fn fsync(&mut self, ino: Ino, datasync: bool) -> Result<()> {
        self.stats.fsyncs += 1;
        let n = self.node_mut(ino)?;
        match &mut n.body {
            Body::File {
                data,
                durable,
                dirty,
                shrunk,
            } => {
                if *dirty {
                    durable.clone_from(data);
                    *dirty = false;
                    *shrunk = false;
                }
            }
            // fsync on a directory handle arrives as fsyncdir; nothing else to do.
            Body::Dir { .. } => return Err(libc::EISDIR),
        }
        if !datasync {
            n.durable_meta = n.meta;
        }
        Ok(())
    }

    /// `fsync` of a directory: its entries become durable as they are now.
    ///
    /// A rename is one step on a journaled disk, so a name is never durable in two
    /// places: a rename out of this directory stays undone here until its destination
    /// is synced, and syncing the destination drops the old durable name.
    pub fn fsyncdir(&mut self, dir: Ino) -> Result<()> {
        self.stats.fsyncdirs += 1;
        let (live, old) = match &self.node(dir)?.body {
            Body::Dir { entries, durable } => (entries.clone(), durable.clone()),
            Body::File { .. } => return Err(libc::ENOTDIR),
        };
        let mut new = live;
        for (name, ino) in &old {
            if new.contains_key(name) {
                continue;
            }
            let moved_away = self
                .inodes
                .get(ino)
                .and_then(|n| n.link.as_ref())
                .is_some_and(|(parent, _)| *parent != dir);
            if moved_away {
                new.insert(name.clone(), *ino);
            }
        }
        let departed: Vec<Ino> = old
            .iter()
            .filter(|(name, ino)| new.get(*name) != Some(ino))
            .map(|(_, ino)| *ino)
            .collect();
        let arrived: Vec<Ino> = new
            .iter()
            .filter(|(name, ino)| old.get(*name) != Some(ino))
            .map(|(_, ino)| *ino)
            .collect();
        let n = self.node_mut(dir)?;
        n.durable_meta = n.meta;
        if let Body::Dir { durable, .. } = &mut n.body {
            *durable = new;
        }
        let mut unused = departed.clone();
        for ino in &departed {
            if let Some(n) = self.inodes.get_mut(ino) {
                n.durable_links = n.durable_links.saturating_sub(1);
            }
        }
        for ino in arrived {
            let Some(n) = self.inodes.get_mut(&ino) else {
                continue;
            };
            n.durable_links += 1;
            if n.durable_links > 1 {
                self.forget_durable_names_outside(ino, dir);
            }
        }
        unused.sort_unstable();
        unused.dedup();
        self.drop_unused(unused);
        Ok(())
    }

    /// Removes every durable entry naming `ino` in directories other than `dir`.
    fn forget_durable_names_outside(&mut self, ino: Ino, dir: Ino) {
        let mut removed = 0;
        for (at, n) in self.inodes.iter_mut() {
            if *at == dir {
                continue;
            }
            if let Body::Dir { durable, .. } = &mut n.body {
                let before = durable.len();
                durable.retain(|_, target| *target != ino);
                removed += before - durable.len();
            }
        }
        if let Some(n) = self.inodes.get_mut(&ino) {
            n.durable_links = n.durable_links.saturating_sub(removed as u32);
        }
    }

    /// Whether `ino` is a file that holds bytes written in place over durable ones
    /// since its last sync (and was not cut shorter meanwhile), where some durable
    /// byte replaced was not zero: a rewrite of data, the window a torn overwrite
    /// damages. Writing over durable zeros is how a log appends into space it wrote
    /// ahead (so that its syncs need not record a new file size), an append in all
    /// but name; [`Tree::tear_writes`] tears both sector by sector all the same.
    pub fn overwrite_pending(&self, ino: Ino) -> bool {
        match self.inodes.get(&ino).map(|n| &n.body) {
            Some(Body::File {
                data,
                durable,
                dirty: true,
                shrunk: false,
            }) => {
                // Page by page, so that the pages a write left alone cost a memcmp:
                // this runs at every sync of a file while a cut waits for it.
                data.chunks(4096)
                    .zip(durable.chunks(4096))
                    .any(|(new, old)| {
                        new != old && new.iter().zip(old).any(|(n, o)| n != o && *o != 0)
                    })
            }
            _ => false,
        }
    }

    /// A write under way when the power went, for each file changed since its last
    /// sync and not cut shorter meanwhile: every 512-byte sector it overwrote in place
    /// (below its durable length) ends as `sector(first, last)` says (see [`Torn`];
    /// `first` and `last` are the first and last bytes of the sector that differ
    /// from the durable ones, where a tear can be seen), and of
    /// the bytes appended after its durable length it keeps the first
    /// `appended(len)` (at most all), as a disk that wrote part of an append does.
    /// Zeros at the end of what was appended are left out of `len`, and kept only
    /// with everything before them: a program that writes space ahead of its data
    /// (zeros its next writes land in) would otherwise make almost every draw keep
    /// all of its unsynced data, and a lost write could never be seen.
    /// A file cut shorter since its sync keeps none of it. Call it just before
    /// [`Tree::power_fail`]; nothing else becomes durable.
    pub fn tear_writes(
        &mut self,
        mut sector: impl FnMut(usize, usize) -> Torn,
        mut appended: impl FnMut(usize) -> usize,
    ) {
        let mut files: Vec<Ino> = self.inodes.keys().copied().collect();
        // In inode order, so one seed tears the same way every run.
        files.sort_unstable();
        for ino in files {
            let Some(Inode {
                body:
                    Body::File {
                        data,
                        durable,
                        dirty,
                        shrunk,
                    },
                ..
            }) = self.inodes.get_mut(&ino)
            else {
                continue;
            };
            if !*dirty || *shrunk || data.len() < durable.len() {
                continue;
            }
            for start in (0..durable.len()).step_by(SECTOR) {
                let end = (start + SECTOR).min(durable.len());
                let (new, old) = (&data[start..end], &mut durable[start..end]);
                let differs = |i: &usize| new[*i] != old[*i];
                let Some(first) = (0..new.len()).find(differs) else {
                    continue;
                };
                let last = (0..new.len()).rev().find(differs).unwrap_or(first);
                match sector(first, last) {
                    Torn::Old => {}
                    Torn::New => old.copy_from_slice(new),
                    Torn::NewUpTo(n) => {
                        let n = n.min(new.len());
                        old[..n].copy_from_slice(&new[..n]);
                    }
                }
            }
            let from = durable.len();
            let extra = data.len() - from;
            let data_end = data[from..]
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |last| last + 1);
            let drawn = appended(data_end).min(data_end);
            let kept = if drawn == data_end { extra } else { drawn };
            durable.extend_from_slice(&data[from..from + kept]);
            *dirty = durable != data;
        }
    }

    /// Power failure: the live tree becomes the durable one. Every open handle is
    /// forgotten; the machine it belonged to is gone.
    pub fn power_fail(&mut self) -> Lost {
        // What a disk would show: everything reachable from the root by durable names.
        let mut links: HashMap<Ino, (Ino, OsString)> = HashMap::new();
        let mut seen = HashSet::from([ROOT]);
        let mut queue = vec![ROOT];
        while let Some(dir) = queue.pop() {
            if let Some(Inode {
                body: Body::Dir { durable, .. },
                ..
            }) = self.inodes.get(&dir)
            {
                for (name, ino) in durable {
                    if self.inodes.contains_key(ino) && seen.insert(*ino) {
                        links.insert(*ino, (dir, name.clone()));
                        queue.push(*ino);
                    }
                }
            }
        }
        let mut lost = Lost::default();
        for (ino, n) in &self.inodes {
            if n.link.is_none() {
                continue;
            }
            let survives = seen.contains(ino);
            if !survives {
                lost.files += 1;
            }
            if let Body::File {
                data,
                durable,
                dirty,
                ..
            } = &n.body
            {
                lost.bytes += match (survives, dirty) {
                    (false, _) => data.len() as u64,
                    (true, true) => differing(data, durable),
                    (true, false) => 0,
                };
            }
        }
        let mut inodes = HashMap::with_capacity(seen.len());
        for ino in seen {
            let mut n = self.inodes.remove(&ino).expect("reached inodes exist");
            n.meta = n.durable_meta;
            n.opens = 0;
            n.link = links.get(&ino).cloned();
            n.durable_links = u32::from(ino != ROOT);
            match &mut n.body {
                Body::File {
                    data,
                    durable,
                    dirty,
                    shrunk,
                } => {
                    data.clone_from(durable);
                    *dirty = false;
                    *shrunk = false;
                }
                Body::Dir { entries, durable } => {
                    // Keep only the names the walk took, so no inode ends up with two.
                    durable.retain(|name, child| {
                        links
                            .get(child)
                            .is_some_and(|(parent, n)| *parent == ino && n == name)
                    });
                    entries.clone_from(durable);
                }
            }
            inodes.insert(ino, n);
        }
        self.inodes = inodes;
        self.handles.clear();
        self.stats.power_failures += 1;
        self.stats.last_loss = lost;
        lost
    }

    /// An empty disk (amnesia): no file survives, live or durable.
    pub fn wipe(&mut self) {
        self.inodes.clear();
        self.handles.clear();
        let (uid, gid) = self.owner;
        self.inodes.insert(ROOT, root(uid, gid));
    }
}

/// Bytes of `live` that `durable` does not hold at the same offset.
fn differing(live: &[u8], durable: &[u8]) -> u64 {
    let common = live.len().min(durable.len());
    let changed = live[..common]
        .iter()
        .zip(&durable[..common])
        .filter(|(a, b)| a != b)
        .count();
    (changed + live.len() - common) as u64
}
