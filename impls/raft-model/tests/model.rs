//! The reference core, model-checked. The exhaustive checks enumerate every state
//! within their bounds (up to renaming servers); the random walks sample bounds too
//! large to enumerate; the known-bad variant must be caught with a counterexample.

use std::time::Instant;

use raft::Bug;
use raft_model::{RaftChecked, RaftModel};
use stateright::{Checker, Expectation, HasDiscoveries, Model, UniformChooser};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Every `always` property holds and every `sometimes` property is reached (so the
/// bounds leave something to check); otherwise the counterexample or the gap.
fn judge(test: &str, checker: &impl Checker<RaftChecked>, every_sometimes: bool) {
    let model = checker.model();
    for property in model.properties() {
        let found = checker.discovery(property.name);
        match (property.expectation, found) {
            (Expectation::Always, Some(path)) => panic!(
                "{:?} broken by this trace:\n{}\nreplay: cargo test --release -p raft-model --test model {test}\n\
                 explore: cargo run --release -p raft-model --example explore",
                property.name,
                model.trace(&path)
            ),
            (Expectation::Sometimes, None) if every_sometimes => panic!(
                "{:?} is never reached within {:?}: the check would be vacuous",
                property.name,
                model.config()
            ),
            _ => {}
        }
    }
}

fn exhaustively(test: &str, model: RaftModel) {
    let started = Instant::now();
    let checker = model
        .into_model()
        .checker()
        .symmetry()
        .threads(threads())
        .spawn_dfs()
        .join();
    println!(
        "{test}: {} states ({} unique up to symmetry), depth {}, in {:.1?}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed()
    );
    assert!(checker.is_done(), "the search stopped before the end");
    judge(test, &checker, true);
}

#[test]
fn one_term_with_a_restart_is_safe() {
    exhaustively("one_term_with_a_restart_is_safe", RaftModel::one_term());
}

#[test]
fn two_terms_are_safe() {
    exhaustively("two_terms_are_safe", RaftModel::two_terms());
}

#[test]
fn snapshots_are_safe() {
    exhaustively("snapshots_are_safe", RaftModel::snapshots());
}

/// Random walks through the wide bounds (snapshots, InstallSnapshot, drops, more
/// terms and restarts), from a seed: `MODEL_SEED=<n>` replays one.
#[test]
fn random_walks_with_snapshots_are_safe() {
    let seed = std::env::var("MODEL_SEED")
        .ok()
        .map(|s| s.parse().expect("MODEL_SEED is a number"))
        .unwrap_or(1);
    let started = Instant::now();
    let checker = RaftModel::wide()
        .into_model()
        .checker()
        .target_state_count(1_000_000)
        .spawn_simulation(seed, UniformChooser)
        .join();
    println!(
        "random walks from seed {seed}: {} states, depth {}, in {:.1?}",
        checker.state_count(),
        checker.max_depth(),
        started.elapsed()
    );
    let test = format!("random_walks_with_snapshots_are_safe (MODEL_SEED={seed})");
    // Walks need not reach every `sometimes`: the exhaustive checks show each is
    // reachable.
    judge(&test, &checker, false);
}

/// A node that forgets its vote in a restart votes twice in one term: the
/// shortest such history (breadth first) is the counterexample.
#[test]
fn forgotten_vote_breaks_election_safety() {
    let checker = RaftModel::one_term()
        .with_bug(Some(Bug::ForgetVote))
        .into_model()
        .checker()
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    let path = checker
        .discovery("election safety")
        .expect("two leaders in one term once the vote is forgotten");
    let trace = checker.model().trace(&path);
    println!("the counterexample:\n{trace}");
    let last = path.last_state();
    let leaders_of_1 = last
        .actor_states
        .iter()
        .filter(|s| s.ghost.led.contains(&1))
        .count();
    assert_eq!(leaders_of_1, 2, "two servers led term 1:\n{trace}");
    assert!(
        last.actor_states.iter().any(|s| s.ghost.restarts == 1),
        "a restart is what made the vote be forgotten:\n{trace}"
    );
}
