//! The seed's C interface: a C program includes our `mfs.h`, links the client library
//! (`DFS_LIBMFS` or our `libmfs.so`) and runs its checks against the server.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use specs::mfs::wire::Request;

use super::support::*;
use super::{CLIENT_RETRY, C_INTERFACE, SHUTDOWN};
use crate::suite::property::HARNESS;
use crate::suite::{fail, Context};
use crate::tools;
use crate::udp_relay::{Faults, UdpRelay};

/// The C program compiled against the client library, or `None` when gcc is missing
/// and `DSCONF_SKIP=gcc` opts out (announced); missing without it fails the test.
fn compile(cx: &Context) -> Option<PathBuf> {
    let usable = tools::require(
        "gcc",
        tools::runs("gcc", "--version"),
        "apt-get install gcc",
        &std::env::var(tools::SKIP_VAR).unwrap_or_default(),
        "the C client tests (a program including mfs.h, linked with libmfs.so)",
    )
    .unwrap_or_else(|e| fail(HARNESS, e));
    if !usable {
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let lib = libmfs(cx);
    let exe = cx.dir().join("client");
    let out = Command::new("gcc")
        .arg("-Wall")
        .arg("-I")
        .arg(root.join("impls/dfs/include"))
        .arg(root.join("harness/tests/dfs/client.c"))
        .arg("-o")
        .arg(&exe)
        .arg(&lib)
        .arg(format!(
            "-Wl,-rpath,{}",
            lib.parent().unwrap_or(Path::new(".")).display()
        ))
        .output()
        .unwrap_or_else(|e| fail(HARNESS, format!("cannot run gcc: {e}")));
    if !out.status.success() {
        fail(
            C_INTERFACE,
            format!(
                "the C program does not compile and link with mfs.h and {}:\n{}",
                lib.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
    Some(exe)
}

/// Runs the C program against `port`, with the known-bad switch (if any) and `env`.
fn run(cx: &Context, program: &Path, port: u16, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.arg("127.0.0.1")
        .arg(port.to_string())
        .env("MFS_TIMEOUT_MS", "50");
    for (k, v) in bug_env(cx) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = crate::Process::spawn(
        "C client",
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()),
    )
    .unwrap_or_else(|e| fail(HARNESS, format!("cannot run the C program: {e}")));
    // A guard against a program that hangs, not a judgement of its speed (its
    // checks judge it): a minute is hundreds of times what it takes.
    match child.wait_timeout(Duration::from_secs(60)) {
        Ok(Some(_)) => {}
        _ => fail(
            C_INTERFACE,
            "the C program hung: it did not finish within 60 s",
        ),
    }
    let child = child.child_mut();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut stderr);
    }
    Output {
        status: child
            .try_wait()
            .ok()
            .flatten()
            .expect("the program has exited"),
        stdout,
        stderr,
    }
}

/// The program's checks must all hold.
fn passed(cx: &Context, out: &Output, context: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    cx.evidence().file(
        "c-program.txt",
        format!("stdout:\n{stdout}\nstderr:\n{stderr}"),
    );
    if !out.status.success() || !stdout.contains("all checks passed") {
        fail(
            C_INTERFACE,
            format!(
                "the C program {context} failed ({}): {stderr}{stdout}",
                out.status
            ),
        );
    }
}

/// libmfs's per-attempt timeout for a test where exactly one datagram is lost: 50
/// times the slowest of 20 round trips measured now, and at least 1 s, so a loaded
/// machine's slow replies are not mistaken for the loss.
fn attempt_timeout(server: &Server) -> Duration {
    (ok(server.slowest_round_trip()) * 50).max(Duration::from_secs(1))
}

pub(super) fn program_linked_with_libmfs(cx: &mut Context) {
    // The server first: a server that does nothing fails for progress even where gcc
    // is missing and skipped.
    let mut server = Server::first(cx, &cx.dir().join("fs.img"));
    let Some(program) = compile(cx) else {
        return;
    };
    let out = run(cx, &program, server.addr.port(), &[]);
    passed(cx, &out, "talking to the server directly");
    server.wait_exit().unwrap_or_else(|e| {
        fail(
            SHUTDOWN,
            format!("MFS_Shutdown did not stop the server: {e}"),
        )
    });
}

pub(super) fn program_through_a_lossy_relay(cx: &mut Context) {
    let mut server = Server::first(cx, &cx.dir().join("fs.img"));
    let Some(program) = compile(cx) else {
        return;
    };
    let faults = Faults {
        drop: 0.25,
        duplicate: 0.25,
        max_delay: Duration::from_millis(10),
        duplicate_lag: Duration::ZERO,
    };
    let relay = UdpRelay::start(server.addr, faults, cx.seed)
        .unwrap_or_else(|e| fail(HARNESS, format!("cannot start the UDP relay: {e}")));
    let out = run(cx, &program, relay.addr().port(), &[]);
    passed(
        cx,
        &out,
        "through a relay that drops and duplicates 25% of datagrams",
    );
    let stats = relay.stats();
    if !(stats.dropped > 0 && stats.duplicated > 0) {
        fail(
            HARNESS,
            format!("the relay neither dropped nor duplicated anything: {stats:?}"),
        );
    }
    server.wait_exit().unwrap_or_else(|e| {
        fail(
            SHUTDOWN,
            format!("MFS_Shutdown did not stop the server: {e}"),
        )
    });
}

/// The C program's 8th request is its first Write (block 0 of `dir/file`). The relay
/// drops that request's first copy and nothing else: the library must send it again,
/// and the program passes. A library that never retries fails exactly there, having
/// sent it once.
pub(super) fn program_resends_a_dropped_request(cx: &mut Context) {
    let server = Server::first(cx, &cx.dir().join("fs.img"));
    let Some(program) = compile(cx) else {
        return;
    };
    let timeout = attempt_timeout(&server);
    let relay = DropOnce::start(server.addr, 8);
    let ms = timeout.as_millis().to_string();
    let out = run(
        cx,
        &program,
        relay.addr().port(),
        &[("MFS_TIMEOUT_MS", &ms)],
    );
    let log = relay.log();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    cx.evidence().file(
        "c-program.txt",
        format!(
            "stdout:\n{}\nstderr:\n{stderr}\nrelay: {log:?}\n",
            String::from_utf8_lossy(&out.stdout)
        ),
    );
    if !matches!(log.dropped, Some(Request::Write { block: 0, .. })) {
        fail(
            HARNESS,
            format!("the relay did not drop the first Write: {log:?}"),
        );
    }
    let copies = log.copies.get(7).map_or(0, |c| c.1);
    if copies < 2 {
        fail(
            CLIENT_RETRY,
            format!(
                "the client library never sent the lost request again: the relay dropped the \
                 only copy of the program's 8th request ({:?}) and saw {} request(s) in all, \
                 so the operation failed for want of a retry (per-attempt timeout {ms} ms); \
                 the program said: {}",
                log.dropped,
                log.copies.len(),
                stderr.trim()
            ),
        );
    }
    passed(
        cx,
        &out,
        "through a relay that dropped one request (which the library sent again)",
    );
}
