//! The gossip suite under nextest: every entry of `harness::suites::gossip`'s table is
//! a test named `gossip::<test>`. `GOSSIP_IMPL` names the node (default: our
//! `gossip`), `HARNESS_TIME=sim|real` picks the clock, `SEED=<n>` replays a run.

fn main() {
    harness::suite::libtest::main(&harness::suites::gossip::SUITE)
}
