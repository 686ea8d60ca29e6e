//! Known-bad variants, switched on with `RAFT_BUG=<name>`. They exist only so the
//! suite can show it rejects them; never set one otherwise.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bug {
    /// Commits an entry as soon as a majority stores it, whatever its term (the
    /// mistake Figure 8 of the Raft paper warns against).
    CountCommit,
    /// Persists term and log but not the vote, so a restarted node can vote twice in
    /// one term.
    ForgetVote,
    /// Ignores the follower's hint and backs `next_index` up one entry per rejection.
    OneStepBackup,
    /// Writes its state files without fsync (of the file or of the directory), so a
    /// power failure can lose what a crash would not.
    NoFsync,
    /// Writes a log that a snapshot compacted before the snapshot itself, so a power
    /// failure between the two leaves a log that starts after the snapshot ends: the
    /// entries between are on neither, and the node cannot start again.
    LogBeforeSnapshot,
    /// After a crash between writing a snapshot and rewriting the log it compacts,
    /// starts from the snapshot but goes on appending to the old log file, under its
    /// old header: at the next start those entries read back at the wrong indices
    /// (the bug the power cut at a sync found in this node).
    StaleLogHeader,
    /// Trims its log in memory when the service snapshots, but never rewrites the
    /// log file, which keeps every entry since the node's start; it reports the Raft
    /// state its memory holds, so only a measure of its disk shows it.
    LogKeptOnDisk,
    /// Takes an InstallSnapshot of an earlier term for one from its leader: the term
    /// check its AppendEntries has is missing from its snapshots, so a deposed
    /// leader's late snapshot makes the current leader step down and follow it.
    OldTermSnapshot,
    /// Cuts its log after the last entry of every AppendEntries it takes, even one
    /// its log already holds and extends: a late copy of an old AppendEntries cuts
    /// entries a newer one added, which it had acknowledged (Figure 2 truncates only
    /// at a conflict).
    TruncateOnAppend,
    /// Answers `persisted_size` with no Raft state at all, whatever its log holds:
    /// a node that lets a log-size bound which reads its report pass unseen.
    SizeUnderreported,
    /// Sends a new entry only with the next heartbeat, not when it is started: every
    /// command waits up to a heartbeat interval, and one at a time a whole one.
    ReplicateOnHeartbeat,
    /// Cuts an AppendEntries that starts before its snapshot by the snapshot's index
    /// plus the message's previous index, where the difference is what the snapshot
    /// covers: a late AppendEntries from early in the log puts the entries after the
    /// snapshot at the wrong indices, under the leader's term, so the leader's next
    /// AppendEntries finds no conflict and the node applies the wrong commands.
    StaleAppendMisplaced,
    /// Answers an AppendEntries whose entries its snapshot covers whole with a match
    /// of the snapshot's index plus the message's entries, as if they followed the
    /// snapshot: it claims entries it does not hold, and a leader holding them
    /// counts it in the majority that commits them.
    StaleAppendOverclaimed,
}

impl Bug {
    pub const NAMES: [&'static str; 13] = [
        "count-commit",
        "forget-vote",
        "one-step-backup",
        "no-fsync",
        "log-before-snapshot",
        "stale-log-header",
        "log-kept-on-disk",
        "old-term-snapshot",
        "truncate-on-append",
        "size-underreported",
        "replicate-on-heartbeat",
        "stale-append-misplaced",
        "stale-append-overclaimed",
    ];

    pub fn from_name(name: &str) -> Option<Bug> {
        match name {
            "count-commit" => Some(Bug::CountCommit),
            "forget-vote" => Some(Bug::ForgetVote),
            "one-step-backup" => Some(Bug::OneStepBackup),
            "no-fsync" => Some(Bug::NoFsync),
            "log-before-snapshot" => Some(Bug::LogBeforeSnapshot),
            "stale-log-header" => Some(Bug::StaleLogHeader),
            "log-kept-on-disk" => Some(Bug::LogKeptOnDisk),
            "old-term-snapshot" => Some(Bug::OldTermSnapshot),
            "truncate-on-append" => Some(Bug::TruncateOnAppend),
            "size-underreported" => Some(Bug::SizeUnderreported),
            "replicate-on-heartbeat" => Some(Bug::ReplicateOnHeartbeat),
            "stale-append-misplaced" => Some(Bug::StaleAppendMisplaced),
            "stale-append-overclaimed" => Some(Bug::StaleAppendOverclaimed),
            _ => None,
        }
    }
}

/// [`Bug::StaleAppendMisplaced`]'s count of the entries of an AppendEntries that the
/// snapshot covers (here, so that the mistake is no mutant of the logic).
pub fn misplaced_cover(snapshot_index: u64, prev_index: u64) -> u64 {
    snapshot_index + prev_index
}

/// [`Bug::StaleAppendOverclaimed`]'s answer to an AppendEntries of `entries` entries,
/// all of which the snapshot covers (here, so that the mistake is no mutant of the
/// logic).
pub fn overclaimed_match(snapshot_index: u64, entries: u64) -> u64 {
    snapshot_index + entries
}
