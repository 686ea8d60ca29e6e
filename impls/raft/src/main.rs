//! `raft`: a Raft node speaking the node protocol and the Raft test interface.

use raft::raft_node::RaftNode;

fn main() {
    let result = node::run(|ctx, storage| {
        RaftNode::new(ctx, storage).unwrap_or_else(|e| {
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
