//! Every system's suite, one module each: its descriptor ([`crate::suite::Suite`]), its
//! test table and the tests themselves. The command line and the nextest entries
//! (`tests/<system>/main.rs`) both run these tables.

pub mod dfs;
pub mod gossip;
/// What the suites of kvsrv and kvraft share: a key/value cluster under test.
mod kv_cluster;
pub mod kvraft;
pub mod kvsrv;
pub mod mapreduce;
pub mod raft;
pub mod shardkv;
pub mod webserver;

use crate::suite::Suite;

/// Every registered suite, in the order `harness list` and `harness test all` use:
/// the systems' numbers in the README.
pub fn all() -> &'static [&'static Suite] {
    static ALL: &[&Suite] = &[
        &webserver::SUITE,
        &dfs::SUITE,
        &gossip::SUITE,
        &mapreduce::SUITE,
        &kvsrv::SUITE,
        &raft::SUITE,
        &kvraft::SUITE,
        &shardkv::SUITE,
    ];
    ALL
}

/// The suite named `name`.
pub fn find(name: &str) -> Option<&'static Suite> {
    all().iter().copied().find(|s| s.name == name)
}
