//! The key/value server: one node that executes read, write, cas and append exactly
//! once per client request, however often the network delivers it.
//!
//! [`KvServer`] is the sans-IO core (requests in, replies out); [`KvNode`] adapts it to
//! the node runtime. The contract is `specs::kvsrv_protocol`; the known-bad variants
//! the suite must reject are [`Bug`].

pub mod bug;
pub mod core;
pub mod node;

pub use crate::core::KvServer;
pub use bug::Bug;
pub use node::KvNode;
