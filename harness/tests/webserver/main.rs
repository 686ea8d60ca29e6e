//! The concurrent web server's suite under nextest: every entry of
//! `harness::suites::webserver`'s table is a test named `webserver::<test>`.
//!
//! The server is `WEBSERVER_IMPL` (default: our `wserver`); `WEBSERVER_TIMEOUT` and
//! `WEBSERVER_CGI_TIMEOUT` give another server's timeouts, `DSCONF_SKIP=chromium`
//! skips the browser test loudly, `SEED=<n>` replays a run. A failing test prints
//! its evidence directory and the commands that replay it.

fn main() {
    harness::suite::libtest::main(&harness::suites::webserver::SUITE)
}
