//! The gossip tests: topologies, workloads and faults, and what each checks beyond
//! the judgement of [`GossipTest::finish`] (progress, integrity, convergence and,
//! outside the `broadcast` group, per-origin order).

use rand::Rng;
use serde_json::Value;
use specs::node_protocol::{Body, Message};

use super::run::{self, latency, GossipTest, Topology, CLIENT, MS};
use super::{CONVERGENCE, OVERHEAD};
use crate::nemesis::{Fault, Schedule};
use crate::network::{NetConfig, Partition};
use crate::suite::{property, Context};

/// Runs `body` on nodes with `topology` and judges the run.
pub(super) fn with_nodes(cx: &mut Context, topology: Topology, body: impl FnOnce(&mut GossipTest)) {
    if let Some(mut t) = GossipTest::start(cx, topology) {
        body(&mut t);
        t.finish();
    }
}

/// Runs `body` like [`with_nodes`]; the run's journal, or `None` if the nodes did not
/// start.
pub(super) fn journal_of(
    cx: &mut Context,
    topology: Topology,
    body: impl FnOnce(&mut GossipTest),
) -> Option<String> {
    let mut t = GossipTest::start(cx, topology)?;
    body(&mut t);
    Some(t.finish())
}

/// Broadcasts through random nodes every `gap` from now on; when the last is sent.
fn spread_broadcasts(t: &mut GossipTest, count: u64, gap: u64, stream: u64) -> u64 {
    let mut rng = t.cx.rng(stream);
    let start = t.now();
    let n = t.names.len();
    for k in 0..count {
        let node = rng.gen_range(0..n);
        t.broadcast_at(node, start + k * gap);
    }
    start + count.saturating_sub(1) * gap
}

/// Runs the requests made so far with `schedule`'s faults, until both are done (a
/// schedule ends healed).
fn run_with(t: &mut GossipTest, schedule: Schedule) {
    let end = schedule.faults.last().map_or(0, |(at, _)| *at);
    t.cluster.schedule(&schedule);
    t.run();
    let now = t.now();
    if end >= now {
        t.idle(end - now + MS);
    }
}

/// Maelstrom's challenge 3a: one node, broadcasts and reads.
pub(super) fn single_node(t: &mut GossipTest) {
    t.check_order = false;
    spread_broadcasts(t, 20, 10 * MS, 1);
    t.run();
}

/// Maelstrom's challenge 3b: five nodes on a grid, broadcasts through random nodes.
pub(super) fn multi_node(t: &mut GossipTest) {
    t.check_order = false;
    spread_broadcasts(t, 30, 30 * MS, 1);
    t.run();
}

/// Maelstrom's challenge 3c: partitions come and go (a random minority, one node
/// isolated) while broadcasts go on; after the heal every node must have everything.
pub(super) fn partitions(t: &mut GossipTest) {
    t.check_order = false;
    let names = t.names.clone();
    let mut rng = t.cx.rng(2);
    let start = t.now();
    let mut schedule = Schedule::new();
    let mut at = start + 50 * MS;
    while at < start + 1_500 * MS {
        let p = if rng.gen_bool(0.5) {
            Partition::majority_minority(&names, &mut rng)
        } else {
            Partition::isolate(&names[rng.gen_range(0..names.len())], &names)
        };
        schedule = schedule.at(at, Fault::Partition(p));
        at += rng.gen_range(150..400) * MS;
        schedule = schedule.at(at, Fault::Heal);
        at += rng.gen_range(50..150) * MS;
    }
    spread_broadcasts(t, 40, 40 * MS, 1);
    run_with(t, schedule);
}

/// A line with its middle node crashed: what is broadcast on one side cannot reach
/// the other (nodes talk to neighbours only) but spreads on its own side; once the
/// node is restarted (knowing nothing) both sides converge, the restarted node too.
pub(super) fn line_crash_restart(t: &mut GossipTest) {
    let (n1, n2, n3, n4, n5) = (0, 1, 2, 3, 4);
    t.broadcast_many(n1, 2);
    t.broadcast_many(n5, 2);
    t.fault(Fault::Crash(t.names[n3].clone()));
    let mut left = Vec::new();
    let mut right = Vec::new();
    for _ in 0..3 {
        t.broadcast(n1);
        left.push(t.broadcasts_made());
        t.broadcast(n5);
        right.push(t.broadcasts_made());
    }
    let reached_left = t.await_value(&[n2], *left.last().expect("made"));
    let reached_right = t.await_value(&[n4], *right.last().expect("made"));
    if reached_left.is_none() || reached_right.is_none() {
        t.cx.fail(
            CONVERGENCE,
            "with n3 down, a broadcast through n1 (n5) did not reach its neighbour n2 (n4)",
        );
    }
    for v in &left {
        t.require_not_reached(*v, &[n4, n5], "n3, the only way there, is down");
    }
    for v in &right {
        t.require_not_reached(*v, &[n1, n2], "n3, the only way there, is down");
    }
    t.fault(Fault::Restart(t.names[n3].clone()));
    t.broadcast(n3);
    t.broadcast(n1);
}

/// A message is present iff a live node received it: one broadcast through a node
/// isolated and then crashed is nowhere; one that reached another node before its
/// node crashed is everywhere.
pub(super) fn crashed_origin(t: &mut GossipTest) {
    // A 2x2 grid: n1-n2, n1-n3, n2-n4, n3-n4; without n3 the rest stays connected.
    let (n1, n2, n3) = (0, 1, 2);
    t.broadcast(n1);
    let names = t.names.clone();
    t.fault(Fault::Partition(Partition::isolate(&names[n2], &names)));
    t.broadcast(n2);
    let unseen = t.broadcasts_made();
    t.fault(Fault::Crash(names[n2].clone()));
    t.fault(Fault::Heal);
    t.fault(Fault::Restart(names[n2].clone()));
    t.broadcast(n3);
    let seen = t.broadcasts_made();
    if t.await_value(&[n1], seen).is_none() {
        t.cx.fail(
            CONVERGENCE,
            format!("a broadcast through n3 did not reach its neighbour n1 ({seen})"),
        );
        return;
    }
    t.fault(Fault::Crash(names[n3].clone()));
    t.broadcast(n2);
    if t.await_convergence().is_none() {
        return; // finish says what is missing
    }
    let live = t.live_nodes();
    let reads = t.read(&live);
    for (&i, r) in live.iter().zip(&reads) {
        let Some(list) = r else { continue };
        if list.contains(&Value::from(unseen)) {
            t.cx.fail(
                CONVERGENCE,
                format!(
                    "{} lists {unseen}, broadcast through n2 while it was isolated and lost \
                     with it: no live node ever received it",
                    t.names[i]
                ),
            );
        }
        if !list.contains(&Value::from(seen)) {
            t.cx.fail(
                CONVERGENCE,
                format!(
                    "{} lacks {seen}: n1 had received it before its origin n3 crashed",
                    t.names[i]
                ),
            );
        }
    }
}

/// A 3x3 grid cut into two halves: each half converges on its own broadcasts while
/// cut, and the whole grid after the heal.
pub(super) fn partition_heal(t: &mut GossipTest) {
    let names = t.names.clone();
    let (top, bottom) = names.split_at(6);
    let halves = Partition::groups("rows 1-2 | row 3", &[top.to_vec(), bottom.to_vec()]);
    t.fault(Fault::Partition(halves));
    let mut rng = t.cx.rng(3);
    for _ in 0..5 {
        t.broadcast(rng.gen_range(0..6));
        t.broadcast(rng.gen_range(6..9));
    }
    let last_top = t.broadcasts_made() - 1;
    let last_bottom = t.broadcasts_made();
    let top_nodes: Vec<usize> = (0..6).collect();
    let bottom_nodes: Vec<usize> = (6..9).collect();
    if t.await_value(&top_nodes, last_top).is_none()
        || t.await_value(&bottom_nodes, last_bottom).is_none()
    {
        t.cx.fail(
            CONVERGENCE,
            "while cut, a half of the grid did not converge on its own broadcasts",
        );
    }
    t.fault(Fault::Heal);
    t.broadcast(0);
}

/// One-way links on a line: n3 hears neither neighbour but is heard by both. Its
/// statuses and rumors still go out while every answer to it is cut, for long enough
/// that mongering gives up and anti-entropy runs into the cut; after the heal all
/// converge, n3 included.
pub(super) fn one_way(t: &mut GossipTest) {
    let (n1, n3, n5) = (0, 2, 4);
    let names = t.names.clone();
    let cut =
        Partition::one_way(&names[1], &names[2]).and(Partition::one_way(&names[3], &names[2]));
    t.fault(Fault::Partition(cut));
    t.broadcast(n1);
    t.broadcast(n3);
    t.broadcast(n5);
    t.broadcast(n3);
    t.idle(1_000 * MS);
    t.fault(Fault::Heal);
    t.broadcast(n1);
}

/// A binary tree on a network that loses, duplicates and reorders: every node ends
/// with every message, once, each origin's in order.
pub(super) fn lossy_duplicating(t: &mut GossipTest) {
    t.fault(Fault::Net(NetConfig {
        latency: latency().latency,
        ..NetConfig::unreliable()
    }));
    let mut rng = t.cx.rng(4);
    for _ in 0..30 {
        let node = if rng.gen_bool(0.6) {
            0
        } else {
            rng.gen_range(0..7)
        };
        t.broadcast(node);
        t.idle(rng.gen_range(0..10) * MS);
    }
    t.fault(Fault::Net(latency()));
}

/// A node paused (SIGSTOP) while others broadcast catches up once resumed.
pub(super) fn paused_node(t: &mut GossipTest) {
    let n2 = t.names[1].clone();
    t.broadcast(0);
    t.fault(Fault::Pause(n2.clone()));
    for k in 0..6 {
        t.broadcast([0, 2, 3, 4][k % 4]);
    }
    t.idle(500 * MS);
    t.fault(Fault::Resume(n2));
    t.broadcast(1);
}

/// A rumor lost while nobody mongers it: n1 is cut off when it broadcasts, gives up
/// on its neighbour, and the cut heals with nothing more broadcast. Only the periodic
/// exchange of statuses (anti-entropy) can bring the message to the others.
pub(super) fn lost_rumor_repaired(t: &mut GossipTest) {
    let names = t.names.clone();
    t.fault(Fault::Partition(Partition::isolate(&names[0], &names)));
    t.broadcast(0);
    t.broadcast(0);
    t.idle(2_000 * MS);
    t.fault(Fault::Heal);
}

/// Broadcasts as Maelstrom's challenge 3d measures them: node-to-node messages from
/// the first broadcast until 1 s after every node had the last one, per broadcast.
/// The minimum is n-1 (a spanning tree); the bound is [`OVERHEAD_FACTOR`] * n.
fn overhead(t: &mut GossipTest, shape: &str) {
    let n = t.names.len() as u64;
    t.mark();
    let count = 20;
    spread_broadcasts(t, count, 50 * MS, 5);
    t.run();
    let value = t.broadcasts_made();
    let all: Vec<usize> = (0..t.names.len()).collect();
    if t.await_value(&all, value).is_none() {
        t.cx.fail(
            CONVERGENCE,
            format!("the last broadcast ({value}) did not reach every node"),
        );
        return;
    }
    t.idle(1_000 * MS);
    let messages = t.mark();
    let per = messages as f64 / count as f64;
    let bound = OVERHEAD_FACTOR * n;
    t.cx.note(format!(
        "{shape} of {n}: {per:.1} messages per broadcast (minimum {}, bound {bound})",
        run::minimum_messages(n as usize)
    ));
    if per > bound as f64 {
        t.cx.fail(
            OVERHEAD,
            format!(
                "{shape} of {n} nodes: {messages} node-to-node messages for {count} broadcasts, \
                 {per:.1} per broadcast, over the bound of {OVERHEAD_FACTOR} * n = {bound} \
                 (the minimum is {})",
                run::minimum_messages(n as usize)
            ),
        );
    }
}

/// The bound on node-to-node messages per broadcast, in messages per node.
pub const OVERHEAD_FACTOR: u64 = 8;

pub(super) fn overhead_line(t: &mut GossipTest) {
    overhead(t, "line");
}

pub(super) fn overhead_grid(t: &mut GossipTest) {
    overhead(t, "grid");
}

pub(super) fn overhead_tree(t: &mut GossipTest) {
    overhead(t, "tree");
}

/// Once in sync, nodes exchange statuses only: the traffic of an idle second does not
/// grow with the log. Measured after 5 messages and again after 25 (same origins);
/// idle messages and bytes may not grow by more than half.
pub(super) fn idle_only_status(t: &mut GossipTest) {
    let all: Vec<usize> = (0..t.names.len()).collect();
    let mut windows = Vec::new();
    for count in [5, 20] {
        for k in 0..count {
            t.broadcast(k % 2);
        }
        let last = t.broadcasts_made();
        if t.await_value(&all, last).is_none() {
            t.cx.fail(CONVERGENCE, format!("{last} did not reach every node"));
            return;
        }
        t.idle(500 * MS);
        t.mark();
        let bytes = t.node_bytes();
        t.idle(2_000 * MS);
        windows.push((t.mark(), t.node_bytes() - bytes));
    }
    let [(m1, b1), (m2, b2)] = windows[..] else {
        unreachable!("two windows")
    };
    t.cx.note(format!(
        "idle 2 s: {m1} messages, {b1} bytes with 5 messages held; {m2} messages, {b2} bytes with 25"
    ));
    let n = t.names.len() as u64;
    if m2 > m1 + m1 / 2 + n || b2 > b1 + b1 / 2 + 64 * n {
        t.cx.fail(
            OVERHEAD,
            format!(
                "idle traffic grows with the log: {m1} messages ({b1} bytes) in 2 idle seconds \
                 with 5 messages held, {m2} ({b2} bytes) with 25: messages are resent once in sync"
            ),
        );
    }
}

/// Malformed and oversized requests and node messages are refused or ignored, never
/// acknowledged as broadcasts, and the node goes on working.
pub(super) fn malformed_input(t: &mut GossipTest) {
    let target = t.names[0].clone();
    let huge = "x".repeat(1 << 20);
    let bad = [
        Body::new("broadcast"),
        Body::new("broadcast").with("message", huge),
        Body::new("topology").with("topology", "not a map"),
        Body::new("rumor").with("rumors", "not a list"),
        Body::new("rumor").with("rumors", serde_json::json!([{"origin": 5}])),
        Body::new("status").with("status", serde_json::json!({"n9#0": -3})),
        Body::new("status").with("status", serde_json::json!({"n9#0": u64::MAX})),
        Body::new("no_such_type"),
    ];
    let n = bad.len();
    for (k, body) in bad.into_iter().enumerate() {
        let mut body = body;
        body.msg_id = Some(1_000_000 + k as u64);
        t.cluster.send(Message {
            src: CLIENT.into(),
            dest: target.clone(),
            now: None,
            body,
        });
    }
    t.idle(200 * MS);
    let acks = t.stray_broadcast_oks();
    if acks > 0 {
        t.cx.fail(
            property::PROTOCOL,
            format!("{acks} malformed broadcast(s) answered broadcast_ok"),
        );
    }
    t.cx.note(format!("{n} malformed inputs sent to {target}"));
    for k in 0..5 {
        t.broadcast(k % 3);
    }
}
