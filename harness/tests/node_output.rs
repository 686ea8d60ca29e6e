//! How the harness takes a node's stdout when it breaks the protocol's framing: the
//! same in simulated (lockstep) and real time. A line that is not UTF-8 is a protocol
//! error recorded against the node, which goes on running; a line that never ends
//! fails the node once it passes `MAX_LINE_BYTES`, instead of hanging the run or
//! growing the harness's memory without bound.
//!
//! In real time, a node that stops reading its stdin must not stop the harness either.
//!
//! The nodes are `tests/fixtures/bad_output_node.py` (python3; `DSCONF_SKIP=python3`
//! skips these tests, loudly).

use std::sync::mpsc;
use std::time::Duration;

use harness::cluster::{Cluster, ClusterConfig, Driver, TimeMode};
use harness::network::NetConfig;
use harness::node_process::MAX_LINE_BYTES;
use harness::{tools, Implementation, TestDir};
use specs::node_protocol::{Body, Message};

const MS: u64 = 1_000_000;

/// False (after a loud line) when the user opted out of tests that need python3; a
/// missing python3 otherwise fails the test with what to install.
fn python3_available() -> bool {
    let opt_outs = std::env::var(tools::SKIP_VAR).unwrap_or_default();
    let present = tools::runs("python3", "--version");
    tools::require(
        "python3",
        present,
        "apt-get install python3",
        &opt_outs,
        "the node output tests",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn start(dir: &TestDir, mode: TimeMode, behaviour: &str) -> Cluster {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad_output_node.py");
    let command = format!("python3 {} {behaviour}", script.display());
    let config = ClusterConfig {
        nodes: 1,
        implementation: Implementation::from_command(&command).unwrap(),
        env: Vec::new(),
        mode,
        seed: 1,
        net: NetConfig::reliable(),
        dir: dir.path().to_path_buf(),
        step_timeout: Duration::from_secs(20),
    };
    Cluster::start(config).expect("the node starts")
}

/// Sends one request to n1 and waits for its answer, or for an error the test does
/// not expect (`expected` is a part of the errors it does), whichever comes first.
struct Ask {
    expected: &'static str,
    reply: Option<Message>,
    unexpected: bool,
}

/// Sends n1 `body` (an echo request) from client c1 with message id `id`.
fn echo(cluster: &mut Cluster, id: u64, mut body: Body) {
    body.msg_id = Some(id);
    cluster.send(Message {
        src: "c1".into(),
        dest: "n1".into(),
        now: None,
        body,
    });
}

impl Driver for Ask {
    fn start(&mut self, cluster: &mut Cluster) {
        echo(cluster, 1, Body::new("echo"));
        cluster.wake(cluster.now() + 10 * MS, 0);
    }

    fn on_message(&mut self, _: &mut Cluster, message: Message) {
        if message.body.in_reply_to == Some(1) {
            self.reply = Some(message);
        }
    }

    fn on_wake(&mut self, cluster: &mut Cluster, _: u64) {
        self.unexpected = cluster.errors.iter().any(|e| !e.contains(self.expected));
        cluster.wake(cluster.now() + 10 * MS, 0);
    }

    fn done(&self) -> bool {
        self.reply.is_some() || self.unexpected
    }
}

fn lines_not_utf8_are_protocol_errors(mode: TimeMode) {
    if !python3_available() {
        return;
    }
    let dir = TestDir::new("node-output-utf8");
    let mut cluster = start(&dir, mode, "not-utf8");
    let mut ask = Ask {
        expected: "n1 wrote a line that is not UTF-8",
        reply: None,
        unexpected: false,
    };
    cluster.run(&mut ask, cluster.now() + 60_000 * MS);
    let errors = &cluster.errors;
    assert!(
        !ask.unexpected,
        "{}: only the lines that are not UTF-8 are errors: {errors:?}",
        mode.name()
    );
    let reply = ask.reply.as_ref().unwrap_or_else(|| {
        panic!(
            "{}: the reply after the bad lines never came: {errors:?}",
            mode.name()
        )
    });
    assert_eq!(reply.body.kind, "echo_ok");
    // Both bad lines, one of them a message with an invalid byte (never routed with
    // the byte replaced), and nothing else.
    assert_eq!(errors.len(), 2, "{}: {errors:?}", mode.name());
    assert!(
        errors[0].contains("invalid utf-8") && errors[1].contains("garbage"),
        "{}: {errors:?}",
        mode.name()
    );
    assert!(cluster.journal.text().contains("\"bad-output\""));
    assert!(!cluster.journal.text().contains("node-failed"));
}

fn an_endless_line_fails_the_node(mode: TimeMode) {
    if !python3_available() {
        return;
    }
    let dir = TestDir::new("node-output-endless");
    let mut cluster = start(&dir, mode, "endless");
    let mut ask = Ask {
        expected: "never matches",
        reply: None,
        unexpected: false,
    };
    cluster.run(&mut ask, cluster.now() + 60_000 * MS);
    let errors = &cluster.errors;
    assert!(ask.reply.is_none());
    assert_eq!(errors.len(), 1, "{}: {errors:?}", mode.name());
    assert!(
        errors[0].contains(&format!(
            "n1 wrote more than {MAX_LINE_BYTES} bytes without a newline"
        )),
        "{}: {errors:?}",
        mode.name()
    );
    assert!(cluster.journal.text().contains("node-failed"));
}

#[test]
fn lines_not_utf8_are_protocol_errors_in_simulated_time() {
    lines_not_utf8_are_protocol_errors(TimeMode::Sim);
}

#[test]
fn lines_not_utf8_are_protocol_errors_in_real_time() {
    lines_not_utf8_are_protocol_errors(TimeMode::Real);
}

#[test]
fn an_endless_line_fails_the_node_in_simulated_time() {
    an_endless_line_fails_the_node(TimeMode::Sim);
}

#[test]
fn an_endless_line_fails_the_node_in_real_time() {
    an_endless_line_fails_the_node(TimeMode::Real);
}

/// Asks n1 once, then, once answered, sends it a megabyte of messages (its stdin pipe
/// holds 64 KiB) and waits 100 ms.
struct Flood {
    answered: bool,
    woke: bool,
}

impl Driver for Flood {
    fn start(&mut self, cluster: &mut Cluster) {
        echo(cluster, 1, Body::new("echo"));
    }

    fn on_message(&mut self, cluster: &mut Cluster, message: Message) {
        if message.body.in_reply_to != Some(1) || self.answered {
            return;
        }
        self.answered = true;
        let payload = "x".repeat(1024);
        for id in 2..1026u64 {
            echo(
                cluster,
                id,
                Body::new("echo").with("payload", payload.as_str()),
            );
        }
        cluster.wake(cluster.now() + 100 * MS, 0);
    }

    fn on_wake(&mut self, _: &mut Cluster, _: u64) {
        self.woke = true;
    }

    fn done(&self) -> bool {
        self.woke
    }
}

/// In real time the harness writes to a node's stdin without blocking: what a full
/// pipe does not take waits in the harness. A harness that blocked writing to a node
/// that stopped reading (it sleeps, it is stuck) would stop routing for every node
/// and hang the test. The run here must end by the driver's 100 ms wake-up, well
/// within 30 s, with no error recorded (not reading is slow, not wrong).
#[test]
fn a_node_that_stops_reading_does_not_block_the_harness() {
    if !python3_available() {
        return;
    }
    let dir = TestDir::new("node-output-deaf");
    let mut cluster = start(&dir, TimeMode::Real, "deaf");
    let (done_tx, done_rx) = mpsc::channel();
    // On a thread of its own, so that a harness that does block fails the test
    // instead of hanging it (the node exits by itself after a minute).
    std::thread::spawn(move || {
        let mut flood = Flood {
            answered: false,
            woke: false,
        };
        cluster.run(&mut flood, cluster.now() + 20_000 * MS);
        let outcome = (flood.answered, flood.woke, cluster.errors.clone());
        // The node killed and reaped before the test may end.
        drop(cluster);
        let _ = done_tx.send(outcome);
    });
    let (answered, woke, errors) = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the run did not end within 30 s: the harness blocked writing to a node that stopped reading its stdin");
    assert!(
        answered,
        "n1's answer to the first request never came: {errors:?}"
    );
    assert!(
        woke,
        "the run ended before the driver's wake-up: {errors:?}"
    );
    assert!(errors.is_empty(), "{errors:?}");
}
