//! Known-bad variants, switched on with `SHARDKV_BUG=<name>`, so the suite can show it
//! rejects them. They are not features: each breaks the contract on purpose.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bug {
    /// `serve-before-data`: a group serves a shard it gains as soon as it takes the
    /// configuration, from an empty store, instead of waiting for the data.
    ServeBeforeData,
    /// `skip-config`: a group asks the controller for the latest configuration and
    /// jumps to it, skipping the ones between.
    SkipConfig,
    /// `no-dedup-move`: a shard moves without its duplicate table, so a retry that
    /// reaches the new owner is applied a second time.
    NoDedupMove,
    /// `never-delete`: a group keeps the data of shards it gave away forever.
    NeverDelete,
    /// `stale-delete`: a group drops a shard it is giving away on a Delete for any
    /// configuration, not only the one it gives the shard away in: a late copy of an
    /// older Delete loses the shard before its new owner pulled it.
    StaleDelete,
    /// `never-compact`: a group member never snapshots, so its Raft log grows with
    /// every command, whatever `SHARDKV_MAXRAFTSTATE` says.
    NeverCompact,
    /// `no-fsync`: state files are written without fsync, so a member acknowledges
    /// entries (and with them its group's shard moves) before they are durable, and a
    /// power failure loses them.
    NoFsync,
}

impl Bug {
    pub const NAMES: [&'static str; 7] = [
        "serve-before-data",
        "skip-config",
        "no-dedup-move",
        "never-delete",
        "stale-delete",
        "never-compact",
        "no-fsync",
    ];

    pub fn from_name(name: &str) -> Option<Bug> {
        match name {
            "serve-before-data" => Some(Bug::ServeBeforeData),
            "skip-config" => Some(Bug::SkipConfig),
            "no-dedup-move" => Some(Bug::NoDedupMove),
            "never-delete" => Some(Bug::NeverDelete),
            "stale-delete" => Some(Bug::StaleDelete),
            "never-compact" => Some(Bug::NeverCompact),
            "no-fsync" => Some(Bug::NoFsync),
            _ => None,
        }
    }
}
