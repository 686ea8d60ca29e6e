//! The conformance harness: it launches implementations as processes, talks to them
//! only through pipes and sockets, and judges what they do.
//!
//! The modules here are the pieces every conformance test shares; the tests
//! themselves live in `tests/`, one file per system. See the crate README.

pub mod artifacts;
pub mod client;
pub mod cluster;
pub mod error;
pub mod history;
pub mod implementation;
pub mod journal;
pub mod lazyfs;
pub mod nemesis;
pub mod network;
pub mod node_process;
pub mod ports;
pub mod process;
pub mod suite;
pub mod suites;
pub mod testdir;
pub mod tools;
pub mod udp_relay;
pub mod verdict;

pub use error::HarnessError;
pub use implementation::Implementation;
pub use ports::Port;
pub use process::Process;
pub use testdir::TestDir;
