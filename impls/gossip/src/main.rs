//! `gossip`: a gossip node on Maelstrom's broadcast workload (see the crate docs).

use gossip::{Bug, GossipNode};

fn main() {
    let setup = Bug::from_env().and_then(|bug| Ok((bug, gossip::config_from_env()?)));
    let (bug, config) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gossip: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = node::run(|ctx, storage| GossipNode::new(ctx, storage, config, bug)) {
        eprintln!("gossip: {e}");
        std::process::exit(1);
    }
}
