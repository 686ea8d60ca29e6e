//! The built-in applications and the external-executable adapter.

pub mod external;
pub mod indexer;
pub mod lab;
pub mod probes;
pub mod wordcount;
