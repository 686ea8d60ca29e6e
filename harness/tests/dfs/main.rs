//! The distributed file server's suite under nextest: every entry of
//! `harness::suites::dfs`'s table is a test named `dfs::<test>`.
//!
//! The server is `DFS_IMPL` (default: our `mfs-server`), the image checker `DFS_FSCK`
//! (default: our `mfsck` for our server; `none` skips it), the C client library
//! `DFS_LIBMFS` (default: our `libmfs.so`); `SEED=<n>` replays a run. A failing test
//! prints its evidence directory and the commands that replay it.

fn main() {
    harness::suite::libtest::main(&harness::suites::dfs::SUITE)
}
