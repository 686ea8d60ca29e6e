//! How changes become durable, and what a power failure leaves: the part of the
//! [`Tree`] a disk's write ordering decides (the rules are in the `lazyfs` module doc).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;

use super::{root, Body, Ino, Inode, Result, Tree, ROOT};

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
            } => {
                if *dirty {
                    durable.clone_from(data);
                    *dirty = false;
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

    /// A write under way when the power went: every file whose live contents are its
    /// durable contents plus bytes appended since keeps the first `keep(appended)`
    /// of those bytes (at most all), as a disk that wrote part of an append does.
    /// Call it just before [`Tree::power_fail`]; nothing else becomes durable.
    pub fn tear_appends(&mut self, mut keep: impl FnMut(usize) -> usize) {
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
                    },
                ..
            }) = self.inodes.get_mut(&ino)
            else {
                continue;
            };
            if !*dirty || data.len() <= durable.len() || !data.starts_with(durable) {
                continue;
            }
            let appended = data.len() - durable.len();
            let kept = keep(appended).min(appended);
            durable.extend_from_slice(&data[data.len() - appended..][..kept]);
            *dirty = durable.len() != data.len();
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
                } => {
                    data.clone_from(durable);
                    *dirty = false;
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
