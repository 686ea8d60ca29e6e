//! The `lin_kv` group: Maelstrom's lin-kv workload and fault model, so that an
//! unmodified Maelstrom lin-kv node (several nodes, any language) can be judged with
//! `--impl ... --time real`, beside our own service.
//!
//! Only what Maelstrom's lin-kv clients send: `read {key}`, `write {key, value}` and
//! `cas {key, from, to}`, with integer keys and values, no `client` or `seq` field,
//! and each operation sent once (a node need not deduplicate anything). Errors are
//! read as Maelstrom reads them: 20 (a read or cas of a missing key) and 22 (a cas
//! whose `from` did not hold) are definite failures, not observations, so the
//! operation is left out of the check; 11 is definite and retried after a backoff
//! (nothing was done); 0 (timeout), 13 (crash) and codes the protocol does not
//! define are indefinite, and so is an attempt left unanswered: the operation may
//! have happened at any time after its call. Faults are Maelstrom's: partitions
//! between nodes (never between a client and its node) and message latency; no
//! loss of client messages, no duplication.
//!
//! The history is checked against `specs::KvFetchAppend` (one register per key, with
//! compare-and-set), keys and values written as their decimal text.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::node_protocol::{Body, ErrorCode};

use super::run::{self, Test};
use super::SUITE;
use crate::client::{ClientConfig, Clients, Protocol, Reply};
use crate::cluster::TimeMode;
use crate::implementation::Implementation;
use crate::nemesis::Fault;
use crate::network::{Latency, NetConfig, Partition};
use crate::suite::{fail, property, self_check, Context, TestCase};
use crate::tools;

/// Keys per test (Maelstrom's lin-kv keys are small integers).
const KEYS: i64 = 3;
/// Values are drawn from `0..VALUES`, as Maelstrom's `rand-int 5`.
const VALUES: i64 = 5;
/// The first pause before a request refused with error 11 goes to the next node
/// (it doubles up to 16 times this).
const RETRY_BACKOFF: u64 = 50_000_000;
/// An operation unanswered this long after its call ends as unknown (Maelstrom's
/// client timeout); one refused with error 11 until then ends as failed.
const OP_TIMEOUT: u64 = 2_000_000_000;
/// Clients whose phase must make progress stop when nothing succeeded for this long.
const STALL_TIMEOUT: u64 = 10_000_000_000;
/// Under a partition a correct implementation may serve nothing (a primary cut off
/// from the rest): its clients stop sooner.
const PARTITION_STALL: u64 = 3_000_000_000;
/// Virtual (or real) time one phase may take before it is cut off.
const PHASE_LIMIT: u64 = 120_000_000_000;

/// What the nodes' answers showed: operations that ended with a definite answer.
#[derive(Debug, Default)]
struct Tally {
    reads_with_value: Cell<u64>,
    writes: Cell<u64>,
    swaps: Cell<u64>,
    /// Answered, including reads of missing keys and cas refused (20, 22).
    answered: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Maelstrom's lin-kv requests, sent once each.
#[derive(Debug, Clone)]
struct LinKv(Rc<Tally>);

/// A key or value of the history (decimal text) as the integer on the wire.
fn int(text: &str) -> i64 {
    text.parse().expect("the workload writes integers")
}

impl Protocol for LinKv {
    type Input = FetchAppendInput;
    type Output = FetchAppendOutput;

    fn request(&self, input: &FetchAppendInput, _client: u64, _seq: u64) -> Body {
        match input {
            FetchAppendInput::Get { key } => Body::new("read").with("key", int(key)),
            FetchAppendInput::Put { key, value } => Body::new("write")
                .with("key", int(key))
                .with("value", int(value)),
            FetchAppendInput::Cas { key, from, to } => Body::new("cas")
                .with("key", int(key))
                .with("from", int(from))
                .with("to", int(to)),
            FetchAppendInput::Append { .. } => unreachable!("lin-kv has no append"),
        }
    }

    fn reply(&self, input: &FetchAppendInput, reply: &Body) -> Reply<FetchAppendOutput> {
        let tally = &self.0;
        if let Some(code) = reply.error_code() {
            let text = format!(
                "error {} {}",
                code.code(),
                reply.str("text").unwrap_or_default()
            );
            return match (input, code) {
                (FetchAppendInput::Get { .. }, ErrorCode::KeyDoesNotExist)
                | (
                    FetchAppendInput::Cas { .. },
                    ErrorCode::KeyDoesNotExist | ErrorCode::PreconditionFailed,
                ) => {
                    bump(&tally.answered);
                    Reply::Fail(text)
                }
                (_, code) if code.is_retryable() => Reply::Retry(text),
                (_, code) if code.is_definite() => Reply::Fail(text),
                _ => Reply::Unknown(text),
            };
        }
        let expected = match input {
            FetchAppendInput::Get { .. } => "read_ok",
            FetchAppendInput::Put { .. } => "write_ok",
            FetchAppendInput::Cas { .. } => "cas_ok",
            FetchAppendInput::Append { .. } => unreachable!("lin-kv has no append"),
        };
        if reply.kind != expected {
            return Reply::Invalid(format!(
                "expected {expected} or error, got {:?}",
                reply.kind
            ));
        }
        bump(&tally.answered);
        let output = match input {
            FetchAppendInput::Get { .. } => match reply.get("value") {
                None | Some(Value::Null) => FetchAppendOutput::default(),
                Some(Value::Number(n)) if n.is_i64() => {
                    bump(&tally.reads_with_value);
                    FetchAppendOutput {
                        value: Some(n.to_string()),
                        ok: None,
                    }
                }
                Some(other) => {
                    return Reply::Invalid(format!(
                        "read_ok's value must be one of the integers written, got {other}"
                    ))
                }
            },
            FetchAppendInput::Put { .. } => {
                bump(&tally.writes);
                FetchAppendOutput::default()
            }
            _ => {
                bump(&tally.swaps);
                FetchAppendOutput {
                    value: None,
                    ok: Some(true),
                }
            }
        };
        Reply::Ok(output)
    }

    fn resends(&self) -> bool {
        false
    }
}

/// Maelstrom's lin-kv mix: reads, writes and cas in equal parts on random keys with
/// random small values; `ops` per client.
fn workload(ops: usize) -> impl FnMut(usize, &mut StdRng) -> Option<FetchAppendInput> {
    let mut issued: HashMap<usize, usize> = HashMap::new();
    move |client, rng| {
        let n = issued.entry(client).or_insert(0);
        if *n >= ops {
            return None;
        }
        *n += 1;
        let key = rng.gen_range(0..KEYS).to_string();
        let value = |rng: &mut StdRng| rng.gen_range(0..VALUES).to_string();
        Some(match rng.gen_range(0..3) {
            0 => FetchAppendInput::Get { key },
            1 => FetchAppendInput::Put {
                key,
                value: value(rng),
            },
            _ => FetchAppendInput::Cas {
                key,
                from: value(rng),
                to: value(rng),
            },
        })
    }
}

/// What a phase of clients must show.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// Nothing: under a partition a correct implementation may be unavailable (a
    /// primary cut off from the rest).
    Nothing,
    /// Service soon: an operation succeeds within [`STALL_TIMEOUT`] and the clients
    /// finish (a starting or healed cluster may first hold an election, and answer
    /// nothing meanwhile).
    Recovery,
    /// At least this share of the operations answered definitely (served, or
    /// refused with 20 or 22), in percent, and no stall.
    Share(u64),
}

/// One lin-kv test: its cluster and what the answers showed so far.
struct LinKvTest<'a> {
    t: Test<'a>,
    tally: Rc<Tally>,
}

impl LinKvTest<'_> {
    /// Runs `clients` clients of `ops` operations each, requiring `need` of them.
    fn phase(&mut self, clients: usize, ops: usize, need: Need) {
        let t = &mut self.t;
        let config = ClientConfig {
            attempt_timeout: RETRY_BACKOFF,
            op_timeout: OP_TIMEOUT,
            think: Latency::Uniform {
                min: 0,
                max: 10_000_000,
            },
            targets: t.cluster.node_names().to_vec(),
            stall_timeout: match need {
                Need::Nothing => PARTITION_STALL,
                _ => STALL_TIMEOUT,
            },
        };
        let seed = t.cluster.seed() ^ t.cluster.new_client_ids(0).start;
        let before = self.tally.answered.get();
        let mut driver = Clients::new(
            LinKv(self.tally.clone()),
            workload(ops),
            config,
            clients,
            seed,
        );
        let limit = t.cluster.now() + PHASE_LIMIT;
        t.cluster.run(&mut driver, limit);
        let stalled = driver.stalled_at().map(|at| {
            format!(
                "; the clients stopped at {:.3} s after {} s without a successful operation",
                at as f64 / 1e9,
                STALL_TIMEOUT / 1_000_000_000
            )
        });
        let total = driver.done.len() as u64;
        let answered = self.tally.answered.get() - before;
        let unfinished = !crate::cluster::Driver::done(&driver);
        match need {
            Need::Nothing => {}
            Need::Recovery => {
                if stalled.is_some() || unfinished {
                    t.cx.fail(
                        property::PROGRESS,
                        format!(
                            "no progress once the cluster started or healed: {answered} of \
                             {total} operations were answered definitely{}",
                            stalled.unwrap_or_default()
                        ),
                    );
                }
            }
            Need::Share(min_percent) => {
                let min = (total * min_percent).div_ceil(100).max(1);
                if answered < min || stalled.is_some() || unfinished {
                    t.cx.fail(
                        property::PROGRESS,
                        format!(
                            "no progress: {answered} of {total} operations were answered \
                             definitely (at least {min} must be){}",
                            stalled.unwrap_or_default()
                        ),
                    );
                }
            }
        }
    }

    fn fault(&mut self, fault: Fault) {
        self.t.fault(fault);
    }

    fn passing(&self) -> bool {
        self.t.cx.passing()
    }

    /// The judgement: a pass must have seen a read return a written value, a write
    /// and a swap succeed, then the whole history must be linearizable.
    fn finish(self) {
        let LinKvTest { t, tally } = self;
        if t.cx.passing() {
            for (count, what) in [
                (tally.reads_with_value.get(), "read returned a value"),
                (tally.writes.get(), "write succeeded"),
                (tally.swaps.get(), "cas swapped"),
            ] {
                if count == 0 {
                    t.cx.fail(
                        property::PROGRESS,
                        format!("no progress: no {what} in the whole run"),
                    );
                }
            }
        }
        t.finish();
    }
}

/// Runs `body` on a fresh cluster, once it serves, and judges the run. A cluster
/// may take a moment to start (an election, etcd's members finding each other): the
/// first clients only need an operation to succeed within [`STALL_TIMEOUT`], so the
/// shares the test then requires measure the running cluster, not its start.
fn with_lin_kv(cx: &mut Context, body: impl FnOnce(&mut LinKvTest)) {
    if let Some(t) = run::start(cx) {
        let mut test = LinKvTest {
            t,
            tally: Rc::default(),
        };
        test.phase(5, 4, Need::Recovery);
        if test.passing() {
            body(&mut test);
        }
        test.finish();
    }
}

/// Five clients on a perfect network.
pub(super) fn basic(cx: &mut Context) {
    with_lin_kv(cx, |t| t.phase(5, 40, Need::Share(90)));
}

/// Maelstrom's partition nemesis: three rounds of a random partition (a random
/// majority and minority, one node cut off, or two majorities bridged by one node)
/// while clients run, then healed, after which the cluster must serve again; then
/// clients on the healed cluster.
pub(super) fn partitions(cx: &mut Context) {
    let mut rng = cx.rng(0x6c69_6e5f_6b76);
    with_lin_kv(cx, |t| {
        let nodes = t.t.cluster.node_names().to_vec();
        for _ in 0..3 {
            let partition = match rng.gen_range(0..3) {
                0 => Partition::majority_minority(&nodes, &mut rng),
                1 => {
                    let node = &nodes[rng.gen_range(0..nodes.len())];
                    Partition::isolate(node, &nodes)
                }
                _ => Partition::overlapping_majorities(&nodes),
            };
            t.fault(Fault::Partition(partition));
            t.phase(5, 15, Need::Nothing);
            t.fault(Fault::Heal);
            t.phase(5, 5, Need::Recovery);
            if !t.passing() {
                return;
            }
        }
        t.phase(5, 10, Need::Share(75));
    });
}

/// Maelstrom's `--latency`: every message between nodes and clients takes an
/// exponentially distributed time (mean 25 ms), so messages overtake each other.
pub(super) fn latency(cx: &mut Context) {
    with_lin_kv(cx, |t| {
        t.fault(Fault::Net(NetConfig {
            latency: Latency::Exponential {
                min: 0,
                mean: 25_000_000,
            },
            ..NetConfig::reliable()
        }));
        t.phase(5, 25, Need::Share(90));
    });
}

/// The lin_kv group's tests in the suite's table.
fn lin_kv_tests() -> impl Iterator<Item = &'static TestCase> {
    SUITE
        .tests
        .iter()
        .filter(|t| t.name.starts_with("lin_kv::"))
}

/// Checks of the group itself, against foreign nodes that speak only Maelstrom's
/// protocol (`harness/tests/kvraft/lin_kv_node.py`), on the wall clock as such
/// nodes need.
pub(super) const CHECKS: &[TestCase] = &[
    TestCase {
        name: "lin_kv_forwarding_nodes_pass",
        after: None,
        run: forwarding_nodes_pass,
    },
    TestCase {
        name: "lin_kv_local_nodes_fail_for_linearizability",
        after: None,
        run: local_nodes_fail_for_linearizability,
    },
    TestCase {
        name: "lin_kv_silent_nodes_fail_for_progress",
        after: None,
        run: silent_nodes_fail_for_progress,
    },
    TestCase {
        name: "lin_kv_etcd_passes",
        after: None,
        run: etcd_passes,
    },
];

/// The fixture node in `mode` (`forward`, `local`); `None` when the user opted out
/// of python3.
fn fixture(cx: &mut Context, mode: &str) -> Option<Implementation> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kvraft/lin_kv_node.py");
    let command = format!(
        "{} {} {mode}",
        self_check::python3(cx)?,
        shell_words::quote(&script.to_string_lossy())
    );
    Some(Implementation::from_command(&command).expect("a command"))
}

/// Nodes that forward every request to `n1`, which alone holds the store, are
/// linearizable (and unavailable while `n1` is cut off, which lin-kv allows): every
/// lin_kv test passes them.
fn forwarding_nodes_pass(cx: &mut Context) {
    let Some(node) = fixture(cx, "forward") else {
        return;
    };
    for test in lin_kv_tests() {
        let outcome = self_check::run_against(cx, &SUITE, test, &node, TimeMode::Real);
        if outcome.passed() {
            cx.note(format!("{}: passed", outcome.test));
        } else {
            cx.fail(
                property::HARNESS,
                format!(
                    "{} failed linearizable forwarding nodes:\n{}",
                    outcome.name(),
                    outcome.report()
                ),
            );
        }
    }
}

/// Nodes that each answer from their own store and never replicate serve everything,
/// so only the checker can catch them: lin_kv::basic must fail them for
/// linearizability.
fn local_nodes_fail_for_linearizability(cx: &mut Context) {
    let Some(node) = fixture(cx, "local") else {
        return;
    };
    let test = SUITE
        .test("lin_kv::basic")
        .expect("lin_kv::basic is in the table");
    let outcome = self_check::run_against(cx, &SUITE, test, &node, TimeMode::Real);
    self_check::require_failed_for(
        cx,
        &outcome,
        property::LINEARIZABLE,
        "nodes that never replicate",
    );
}

/// A real etcd cluster of three members (Debian's `etcd-server`), each behind our
/// `etcd-adapter` with its peer traffic through the harness's network: a system
/// known to be linearizable passes every lin_kv test, faults included.
fn etcd_passes(cx: &mut Context) {
    let etcd = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
    let what = format!("{}::self_check::{}", cx.suite.name, cx.test);
    let opt_outs = std::env::var(tools::SKIP_VAR).unwrap_or_default();
    let skip = |cx: &mut Context| {
        cx.note(format!(
            "SKIPPED: {what} needs etcd ({}=etcd)",
            tools::SKIP_VAR
        ))
    };
    let install = "apt-get install etcd-server";
    match tools::require(
        "etcd",
        tools::runs(&etcd, "--version"),
        install,
        &opt_outs,
        &what,
    ) {
        Ok(true) => {}
        Ok(false) => return skip(cx),
        Err(e) => fail(property::HARNESS, e),
    }
    // The adapter gives each member its own /etc/hosts in a mount namespace.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if tools::opted_out_in(&opt_outs, "etcd") {
            tools::announce_skip(&format!("{what}: the etcd adapter needs root"));
            return skip(cx);
        }
        fail(
            property::HARNESS,
            format!(
                "{what} needs root: the etcd adapter gives each member a private /etc/hosts \
                 in a mount namespace; run as root or set {}=etcd to skip it",
                tools::SKIP_VAR
            ),
        );
    }
    let adapter = Implementation::ours("etcd-adapter");
    for test in lin_kv_tests() {
        let outcome = self_check::run_against(cx, &SUITE, test, &adapter, TimeMode::Real);
        if outcome.passed() {
            cx.note(format!("{}: passed", outcome.test));
        } else {
            cx.fail(
                property::HARNESS,
                format!("{} failed etcd:\n{}", outcome.name(), outcome.report()),
            );
        }
    }
}

/// Nodes that answer `init` and nothing after it fail every lin_kv test for lack of
/// progress, on the wall clock too.
fn silent_nodes_fail_for_progress(cx: &mut Context) {
    let Some(node) = self_check::unhelpful_node(cx, "never-answer") else {
        return;
    };
    self_check::fails_for_progress(
        cx,
        &SUITE,
        lin_kv_tests(),
        &node,
        TimeMode::Real,
        "nodes that never answer",
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cluster::{Cluster, ClusterConfig};
    use crate::history::Completion;
    use crate::suites::kvsrv::KvProtocol;
    use crate::testdir::TestDir;

    /// How many requests one client sends for one read of a crashed node (nobody
    /// answers it), with `protocol`, and how the read ended.
    fn sends_to_a_crashed_node<P>(protocol: P) -> (u64, Completion<FetchAppendOutput>)
    where
        P: Protocol<Input = FetchAppendInput, Output = FetchAppendOutput>,
    {
        let dir = TestDir::new("lin-kv-sent-once");
        let mut cluster = Cluster::start(ClusterConfig {
            nodes: 1,
            implementation: Implementation::ours(super::super::BIN),
            env: Vec::new(),
            mode: TimeMode::Sim,
            seed: 5,
            net: NetConfig::reliable(),
            dir: dir.path().to_path_buf(),
            step_timeout: Duration::from_secs(10),
        })
        .unwrap();
        cluster.fault(Fault::Crash("n1".into())).unwrap();
        let config = ClientConfig {
            attempt_timeout: RETRY_BACKOFF,
            op_timeout: OP_TIMEOUT,
            think: Latency::Fixed(0),
            targets: vec!["n1".into()],
            stall_timeout: 0,
        };
        let mut ops = vec![FetchAppendInput::Get { key: "0".into() }];
        let workload = move |_: usize, _: &mut StdRng| ops.pop();
        let mut clients = Clients::new(protocol, workload, config, 1, 1);
        let limit = cluster.now() + 10 * OP_TIMEOUT;
        cluster.run(&mut clients, limit);
        let done = clients.done.pop().expect("the read ended");
        let sent = cluster
            .network()
            .links()
            .iter()
            .filter(|((_, to), _)| to == "n1")
            .map(|(_, s)| s.sent)
            .sum();
        (sent, done.completion)
    }

    /// A lin-kv client sends each operation once, as Maelstrom's do (a node without
    /// client ids cannot tell a resent write from a new one), and an unanswered one
    /// ends as unknown at its deadline; kvsrv's clients, whose requests carry
    /// `seq`, resend.
    #[test]
    fn an_unanswered_request_is_sent_once_and_ends_unknown() {
        let (sent, completion) = sends_to_a_crashed_node(LinKv(Rc::default()));
        assert_eq!(sent, 1, "the lin-kv read was sent {sent} times");
        assert_eq!(completion, Completion::Info);
        let (sent, completion) = sends_to_a_crashed_node(KvProtocol);
        assert!(sent > 1, "kvsrv's client resends");
        assert_eq!(completion, Completion::Info);
    }

    /// Maelstrom's reading of errors: 20 and 22 are definite failures (not
    /// observations), 11 is retried, 0 and 13 and codes past the protocol's are
    /// indefinite; values are integers.
    #[test]
    fn replies_are_read_as_maelstrom_reads_them() {
        let lin = LinKv(Rc::default());
        let read = FetchAppendInput::Get { key: "1".into() };
        let cas = FetchAppendInput::Cas {
            key: "1".into(),
            from: "2".into(),
            to: "3".into(),
        };
        let error = |code| Body::error(ErrorCode::from_code(code), "");
        assert!(matches!(lin.reply(&read, &error(20)), Reply::Fail(_)));
        assert!(matches!(lin.reply(&cas, &error(20)), Reply::Fail(_)));
        assert!(matches!(lin.reply(&cas, &error(22)), Reply::Fail(_)));
        assert!(matches!(lin.reply(&cas, &error(14)), Reply::Fail(_)));
        assert!(matches!(lin.reply(&cas, &error(11)), Reply::Retry(_)));
        for code in [0, 13, 1000] {
            assert!(matches!(lin.reply(&cas, &error(code)), Reply::Unknown(_)));
        }
        assert_eq!(lin.0.answered.get(), 3, "20 and 22 are answers");
        let ok = Body::new("read_ok").with("value", 4);
        assert_eq!(
            lin.reply(&read, &ok),
            Reply::Ok(FetchAppendOutput {
                value: Some("4".into()),
                ok: None
            })
        );
        let text = Body::new("read_ok").with("value", "4");
        assert!(matches!(lin.reply(&read, &text), Reply::Invalid(_)));
        assert_eq!(
            lin.reply(&cas, &Body::new("cas_ok")),
            Reply::Ok(FetchAppendOutput {
                value: None,
                ok: Some(true)
            })
        );
        let wire = lin.request(&cas, 1, 1);
        assert_eq!(wire.get("from"), Some(&Value::from(2)));
        assert_eq!(wire.get("client"), None, "no client id");
    }
}
