//! Known-bad variants, switched on with `KVSRV_BUG=<name>`, that prove the conformance
//! tests bite. They are not features: each one breaks the contract on purpose.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// `double-append`: a retried append is applied again instead of answered from the
    /// duplicate table.
    DoubleAppend,
    /// `stale-read`: reads are answered from a copy of the store refreshed only every
    /// few writes.
    StaleRead,
    /// `copy-replies`: the duplicate table keeps a full copy of every append's answer
    /// (the old value), so memory grows with the values, not the clients.
    CopyReplies,
}

impl Bug {
    pub const NAMES: [&'static str; 3] = ["double-append", "stale-read", "copy-replies"];

    pub fn from_name(name: &str) -> Option<Bug> {
        match name {
            "double-append" => Some(Bug::DoubleAppend),
            "stale-read" => Some(Bug::StaleRead),
            "copy-replies" => Some(Bug::CopyReplies),
            _ => None,
        }
    }
}
