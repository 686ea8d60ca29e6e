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
}

impl Bug {
    pub const NAMES: [&'static str; 2] = ["dedup-not-in-snapshot", "stale-read"];

    pub fn from_name(name: &str) -> Option<Bug> {
        match name {
            "dedup-not-in-snapshot" => Some(Bug::DedupNotInSnapshot),
            "stale-read" => Some(Bug::StaleRead),
            _ => None,
        }
    }
}
