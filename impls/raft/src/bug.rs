//! Known-bad variants, switched on with `RAFT_BUG=<name>`. They exist only so the
//! suite can show it rejects them; never set one otherwise.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Commits an entry as soon as a majority stores it, whatever its term (the
    /// mistake Figure 8 of the Raft paper warns against).
    CountCommit,
}

impl Bug {
    pub const NAMES: [&'static str; 1] = ["count-commit"];

    pub fn from_name(name: &str) -> Option<Bug> {
        match name {
            "count-commit" => Some(Bug::CountCommit),
            _ => None,
        }
    }
}
