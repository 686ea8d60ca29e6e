//! `raft`: a Raft node speaking the node protocol and the Raft test interface.

use raft::raft_node::RaftNode;
use raft::Bug;

fn main() {
    let bug = match std::env::var("RAFT_BUG") {
        Ok(name) if !name.is_empty() => match Bug::from_name(&name) {
            Some(bug) => Some(bug),
            None => {
                eprintln!(
                    "raft: unknown RAFT_BUG={name:?}; known: {}",
                    Bug::NAMES.join(", ")
                );
                std::process::exit(2);
            }
        },
        _ => None,
    };
    let options = node::Options {
        fsync: bug != Some(Bug::NoFsync),
    };
    let result = node::run_with(options, |ctx, storage| {
        RaftNode::new(ctx, storage, bug).unwrap_or_else(|e| {
            // Refusing to start beats starting empty and forgetting a vote.
            eprintln!("raft: {e}");
            std::process::exit(1)
        })
    });
    if let Err(e) = result {
        eprintln!("raft: {e}");
        std::process::exit(1);
    }
}
