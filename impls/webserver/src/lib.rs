//! Reference implementation of the concurrent web server (system 1).
//!
//! One master thread accepts connections and reads request heads (epoll, never
//! blocking on a client); a fixed pool of workers serves them from a bounded buffer
//! ordered FIFO or smallest-file-first. Persistent connections go back to the master
//! between requests. See README.md for the design and docs/webserver.md for the
//! protocol the conformance suite checks.

pub mod buffer;
pub mod bug;
pub mod master;
pub mod request;
pub mod server;
pub mod site;
pub mod status;
pub mod target;
pub mod worker;
