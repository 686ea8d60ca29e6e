//! Known-bad variants, switched on with `KVRAFT_BUG=<name>`, so a suite can show it
//! rejects them. They are not features: each breaks the contract on purpose.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bug {
    /// `dedup-not-in-snapshot`: snapshots hold the store but not the duplicate table,
    /// so a node restored from one applies a retried request a second time.
    DedupNotInSnapshot,
    /// `stale-read`: a node that believes it leads answers reads from its own state
    /// without going through the log, so a deposed leader serves stale values.
    StaleRead,
    /// `apply-uncommitted`: a leader applies a command and answers its client as soon
    /// as it appends it, before a majority stores it, so a leader cut off in a
    /// minority acknowledges operations that never commit.
    ApplyUncommitted,
    /// `no-fsync`: state files are written without fsync, so an entry is
    /// acknowledged (to the leader, and so to the client) before it is durable and a
    /// power failure loses it.
    NoFsync,
}

impl Bug {
    pub const NAMES: [&'static str; 4] = [
        "dedup-not-in-snapshot",
        "stale-read",
        "apply-uncommitted",
        "no-fsync",
    ];

    pub fn from_name(name: &str) -> Option<Bug> {
        match name {
            "dedup-not-in-snapshot" => Some(Bug::DedupNotInSnapshot),
            "stale-read" => Some(Bug::StaleRead),
            "apply-uncommitted" => Some(Bug::ApplyUncommitted),
            "no-fsync" => Some(Bug::NoFsync),
            _ => None,
        }
    }
}
