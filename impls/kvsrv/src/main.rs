//! `kvsrv`: the key/value server as a node process (see the crate README).

use kvsrv::{Bug, KvNode};

fn main() {
    let bug = match std::env::var("KVSRV_BUG") {
        Ok(name) if !name.is_empty() => match Bug::from_name(&name) {
            Some(bug) => Some(bug),
            None => {
                eprintln!(
                    "kvsrv: unknown KVSRV_BUG={name:?}; known: {}",
                    Bug::NAMES.join(", ")
                );
                std::process::exit(2);
            }
        },
        _ => None,
    };
    if let Err(e) = node::run(|_, _| KvNode::new(bug)) {
        eprintln!("kvsrv: {e}");
        std::process::exit(1);
    }
}
