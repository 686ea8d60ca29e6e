//! Raft's suite under nextest: every entry of `harness::suites::raft`'s table is a
//! test named `raft::<test>`.
//!
//! The implementation is `RAFT_IMPL` (default: our `raft`), `HARNESS_TIME=sim|real`
//! picks the clock, `SEED=<n>` replays a run and `RAFT_SWEEP=<n>` sets how many runs
//! a sweep makes. A failing test prints its evidence directory and the commands that
//! replay it.

// Every message, journal entry and report allocates.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    harness::suite::libtest::main(&harness::suites::raft::SUITE)
}
