//! A sans-IO node and the runtime that binds it to the harness's node protocol.
//!
//! See the crate README for how the pieces fit; `specs::node_protocol` for the
//! protocol itself.

pub mod node;
pub mod outbox;
pub mod rng;
pub mod runtime;
pub mod storage;

pub use node::{Context, Node};
pub use outbox::{Effect, Outbox};
pub use runtime::{run, run_with, Options};
pub use specs::node_protocol::{Body, ErrorCode, Init, Message};
pub use storage::Storage;
