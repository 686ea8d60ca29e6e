//! Exhaustive checks of the group state machine under migration: ours keeps every
//! property; each known-bad variant yields its counterexample.

use std::time::Instant;

use shardkv::Bug;
use shardkv_model::ShardModel;
use stateright::{Checker, HasDiscoveries, Model};

#[test]
fn migration_keeps_every_property() {
    let started = Instant::now();
    let checker = ShardModel::new(None).checker().spawn_bfs().join();
    println!(
        "{} states ({} unique), depth {}, in {:.1?}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed()
    );
    assert!(checker.is_done(), "the search stopped before the end");
    checker.assert_properties();
}

fn counterexample(bug: Bug) -> String {
    let checker = ShardModel::new(Some(bug))
        .checker()
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    let path = checker
        .discovery("no acknowledged write lost or applied twice")
        .unwrap_or_else(|| panic!("{bug:?}: no counterexample found"));
    let last = path.last_state().clone();
    println!(
        "{bug:?}: {:?}\nread {:?}",
        path.into_actions(),
        last.lost_or_doubled
    );
    last.lost_or_doubled.expect("the property failed on a read")
}

#[test]
fn serving_before_the_data_arrived_loses_the_write() {
    assert_eq!(counterexample(Bug::ServeBeforeData), "");
}

#[test]
fn moving_a_shard_without_its_duplicate_table_applies_a_retry_twice() {
    assert_eq!(counterexample(Bug::NoDedupMove), "xx");
}
