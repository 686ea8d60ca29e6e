//! The key/value server's suite under nextest: every entry of
//! `harness::suites::kvsrv`'s table is a test named `kvsrv::<test>`.
//!
//! The implementation is `KVSRV_IMPL` (default: our `kvsrv`), `HARNESS_TIME=sim|real`
//! picks the clock, `SEED=<n>` replays a run. A failing test prints its evidence
//! directory and the commands that replay it.

// Every message, journal entry, history line and checker state allocates.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    harness::suite::libtest::main(&harness::suites::kvsrv::SUITE)
}
