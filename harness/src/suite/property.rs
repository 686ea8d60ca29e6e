//! Names of the properties a failure can be about, shared by every system; a system
//! adds its own (a `&'static str` constant in its suite module).
//!
//! A known-bad variant names the property it must be rejected for, so a suite that
//! rejects it for another reason (a timeout, a crash) does not count as proof.

/// Operations succeeded, outputs appeared, clients progressed after faults healed.
pub const PROGRESS: &str = "progress";
/// The history has a linearization.
pub const LINEARIZABLE: &str = "linearizable";
/// Messages and replies follow the protocol (types, fields, line format).
pub const PROTOCOL: &str = "protocol";
/// A node starts again from whatever its own writes left on its disk (after a
/// crash or a power failure anywhere, a torn append included) and keeps what it
/// acknowledged.
pub const PERSISTENCE: &str = "persistence";
/// With snapshots on, what a node keeps (its Raft state, its data dir) stays within
/// the bounds 6.5840 sets from `maxraftstate`.
pub const LOG_COMPACTION: &str = "log-compaction";
/// What a process keeps stays within a bound however long it serves: memory does not
/// grow with the requests, connections or clients it has seen and let go.
pub const BOUNDED_MEMORY: &str = "bounded-memory";
/// The implementation could not be started (a missing program, a crash at start).
pub const SETUP: &str = "setup";
/// A plain `assert!` in a test, or any other panic: a failure without a named
/// property.
pub const ASSERTION: &str = "assertion";
/// The harness itself failed (it could not save artifacts, a tool is missing).
pub const HARNESS: &str = "harness";
