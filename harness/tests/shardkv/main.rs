//! The sharded key/value service's suite under nextest: every entry of
//! `harness::suites::shardkv`'s table is a test named `shardkv::<test>`.
//!
//! The implementation is `SHARDKV_IMPL` (default: our `shardkv`), `HARNESS_TIME=sim|real`
//! picks the clock, `SEED=<n>` replays a run. A failing test prints its evidence
//! directory and the commands that replay it.

// Every message, journal entry, history line and checker state allocates.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    harness::suite::libtest::main(&harness::suites::shardkv::SUITE)
}
