//! `shardkv`: one node of the sharded key/value service, speaking the node protocol.
//!
//! `SHARDKV_LAYOUT=ctrl=n1,n2,n3;100=n4,n5,n6;...` says which nodes form the
//! controller and each replica group; `SHARDKV_MAXRAFTSTATE=<bytes>` (or `-1`) when
//! a node (group member or controller) snapshots; `SHARDKV_BUG=<name>` selects a known-bad variant.

use shardkv::node::{Settings, ShardNode};
use shardkv::{Bug, Layout};

const DEFAULT_MAX_RAFT_STATE: usize = 1 << 20;

fn settings() -> Result<Settings, String> {
    let layout = std::env::var("SHARDKV_LAYOUT")
        .map_err(|_| "SHARDKV_LAYOUT is not set (e.g. ctrl=n1,n2,n3;100=n4,n5,n6)".to_string())
        .and_then(|t| Layout::parse(&t).map_err(|e| format!("SHARDKV_LAYOUT: {e}")))?;
    let bug = match std::env::var("SHARDKV_BUG") {
        Ok(name) if !name.is_empty() => Some(Bug::from_name(&name).ok_or_else(|| {
            format!(
                "unknown SHARDKV_BUG={name:?}; known: {}",
                Bug::NAMES.join(", ")
            )
        })?),
        _ => None,
    };
    let max_raft_state = match std::env::var("SHARDKV_MAXRAFTSTATE") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(format!(
                    "SHARDKV_MAXRAFTSTATE={v:?}: expected a number of bytes, or -1 for no snapshots"
                ))
            }
        },
        _ => Some(DEFAULT_MAX_RAFT_STATE),
    };
    let max_raft_state = max_raft_state.filter(|_| bug != Some(Bug::NeverCompact));
    Ok(Settings {
        layout,
        max_raft_state,
        bug,
    })
}

fn main() {
    let settings = settings().unwrap_or_else(|e| {
        eprintln!("shardkv: {e}");
        std::process::exit(2)
    });
    let options = node::Options {
        fsync: settings.bug != Some(Bug::NoFsync),
    };
    let result = node::run_with(options, |ctx, storage| {
        ShardNode::new(ctx, storage, &settings).unwrap_or_else(|e| {
            eprintln!("shardkv: {e}");
            std::process::exit(1)
        })
    });
    if let Err(e) = result {
        eprintln!("shardkv: {e}");
        std::process::exit(1);
    }
}
