//! `kvraft`: one replica of the key/value service, speaking the node protocol.
//!
//! `KVRAFT_MAXRAFTSTATE=<bytes>` (or `-1` for never) sets when to snapshot;
//! `KVRAFT_BUG=<name>` selects a known-bad variant.

use kvraft::node::{KvRaftNode, Settings};
use kvraft::{core, Bug};

fn settings() -> Result<Settings, String> {
    let bug = match std::env::var("KVRAFT_BUG") {
        Ok(name) if !name.is_empty() => Some(Bug::from_name(&name).ok_or_else(|| {
            format!(
                "unknown KVRAFT_BUG={name:?}; known: {}",
                Bug::NAMES.join(", ")
            )
        })?),
        _ => None,
    };
    let max_raft_state = match std::env::var("KVRAFT_MAXRAFTSTATE") {
        Ok(v) if !v.trim().is_empty() => parse_max(v.trim())?,
        _ => Some(core::DEFAULT_MAX_RAFT_STATE),
    };
    Ok(Settings {
        max_raft_state,
        bug,
    })
}

/// 6.5840's convention: a negative `maxraftstate` means no snapshots.
fn parse_max(v: &str) -> Result<Option<usize>, String> {
    match v.parse::<i64>() {
        Ok(n) if n < 0 => Ok(None),
        Ok(n) => Ok(Some(n as usize)),
        Err(_) => Err(format!(
            "KVRAFT_MAXRAFTSTATE={v:?}: expected a number of bytes, or -1 for no snapshots"
        )),
    }
}

fn main() {
    let settings = settings().unwrap_or_else(|e| {
        eprintln!("kvraft: {e}");
        std::process::exit(2)
    });
    let options = node::Options {
        fsync: settings.bug != Some(Bug::NoFsync),
    };
    let result = node::run_with(options, |ctx, storage| {
        KvRaftNode::new(ctx, storage, settings).unwrap_or_else(|e| {
            // Refusing to start beats starting empty and forgetting a vote.
            eprintln!("kvraft: {e}");
            std::process::exit(1)
        })
    });
    if let Err(e) = result {
        eprintln!("kvraft: {e}");
        std::process::exit(1);
    }
}
