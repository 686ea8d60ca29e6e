//! MapReduce's suite under nextest: every entry of `harness::suites::mapreduce`'s
//! table is a test named `mapreduce::<test>`.
//!
//! The implementation is `MAPREDUCE_IMPL` (word count), `MRCOORDINATOR_IMPL` and
//! `MRWORKER_IMPL` (the 6.5840 pair), each defaulting to our binary; `SEED=<n>`
//! replays a run, `MR_HANG_GUARD_S` sets the hang guard. A failing test prints its
//! evidence directory and the commands that replay it.

fn main() {
    harness::suite::libtest::main(&harness::suites::mapreduce::SUITE)
}
