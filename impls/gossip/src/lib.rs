//! Gossip chat: every live peer ends with the same log, by rumor mongering and
//! anti-entropy between neighbours.
//!
//! [`Gossip`] is the sans-IO core (`core`); it has two faces:
//! - [`GossipNode`] (binary `gossip`): Maelstrom's broadcast workload over the
//!   harness's node protocol, so the harness is the network and injects the faults;
//! - the course's chat server and proxy over TCP (binaries `gossip-chat`,
//!   `gossip-proxy`).
//!
//! The known-bad variants the suite must reject are [`Bug`].

pub mod bug;
pub mod chat;
pub mod core;
pub mod node;
pub mod wire;

pub use crate::core::{Config, Gossip, Output, Rumor, Status, Wire};
pub use bug::Bug;
pub use node::GossipNode;

/// The core's periods from `GOSSIP_ANTI_ENTROPY_MS` and `GOSSIP_RUMOR_TIMEOUT_MS`
/// (defaults otherwise).
pub fn config_from_env() -> Result<Config, String> {
    let mut config = Config::default();
    for (var, field) in [
        ("GOSSIP_ANTI_ENTROPY_MS", &mut config.anti_entropy_period),
        ("GOSSIP_RUMOR_TIMEOUT_MS", &mut config.rumor_timeout),
    ] {
        if let Ok(v) = std::env::var(var) {
            let ms: u64 =
                v.trim().parse().ok().filter(|&ms| ms > 0).ok_or_else(|| {
                    format!("{var}={v:?} is not a positive number of milliseconds")
                })?;
            *field = ms * core::MS;
        }
    }
    Ok(config)
}
