//! The replica groups' tests (6.5840 lab 5B and its challenges): a controller of
//! three and groups of three; clients route every key through the controller;
//! every history is judged linearizable by [`Test::kv`]'s finish.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::FetchAppendInput;

use super::run::{self, key2shard, key_in, Test, FIRST_GID, NSHARDS};
use super::{CONFIG_VALID, DELETION, LOG_COMPACTION, SINGLE_OWNER};
use crate::client::Workload;
use crate::cluster::Durability;
use crate::nemesis::{Fault, Schedule};
use crate::network::{NetConfig, Partition};
use crate::suite::{property, Context};

const G0: u64 = FIRST_GID;
const G1: u64 = FIRST_GID + 1;
const G2: u64 = FIRST_GID + 2;
/// Controller changes made while clients run are this far apart (6.5840 sleeps
/// about as long between its joins and leaves).
const CHANGE_PAUSE: u64 = 300_000_000;
/// How long a read of a shard nobody can serve is given to (wrongly) complete.
const MUST_NOT_COMPLETE_WITHIN: u64 = 3_000_000_000;

/// Runs `body` against a controller and `groups` groups whose members snapshot at
/// `max_raft_state` bytes (`-1`: never), and judges the run.
pub(super) fn with_groups(
    cx: &mut Context,
    groups: usize,
    max_raft_state: &str,
    body: impl FnOnce(&mut Test) -> Option<()>,
) {
    if let Some(mut t) = run::start(cx, groups, max_raft_state) {
        if body(&mut t).is_some() && t.kv.cx.passing() {
            // Every fault is healed by now: the controller answers.
            t.check_single_owner();
        }
        t.kv.finish();
    }
}

/// One key per shard.
fn shard_keys() -> Vec<String> {
    (0..NSHARDS).map(|s| key_in(s, 0)).collect()
}

/// `ops` operations per client over `keys`: appends of unique pieces (two in
/// three) and reads, so every read checks every append before it.
fn appends(keys: Vec<String>, ops: usize) -> impl Workload<FetchAppendInput> {
    let mut issued: HashMap<usize, usize> = HashMap::new();
    move |client: usize, rng: &mut StdRng| {
        let n = issued.entry(client).or_insert(0);
        if *n >= ops {
            return None;
        }
        *n += 1;
        let key = keys[rng.gen_range(0..keys.len())].clone();
        Some(if rng.gen_range(0..3) == 0 {
            FetchAppendInput::Get { key }
        } else {
            let tag: u32 = rng.gen();
            FetchAppendInput::Append {
                key,
                value: format!("{client}.{n}.{tag:x};"),
            }
        })
    }
}

/// Each client `i` writes `values[i]` to `keys[i]`, once.
fn writes(keys: Vec<String>, values: Vec<String>) -> impl Workload<FetchAppendInput> {
    let mut done = vec![false; keys.len()];
    move |client: usize, _: &mut StdRng| {
        if std::mem::replace(&mut done[client], true) {
            return None;
        }
        Some(FetchAppendInput::Put {
            key: keys[client].clone(),
            value: values[client].clone(),
        })
    }
}

/// Each client `i` reads `keys[i]` once.
fn reads(keys: Vec<String>) -> impl Workload<FetchAppendInput> {
    let mut done = vec![false; keys.len()];
    move |client: usize, _: &mut StdRng| {
        (!std::mem::replace(&mut done[client], true)).then(|| FetchAppendInput::Get {
            key: keys[client].clone(),
        })
    }
}

/// Every key read once, all of which must succeed: every shard is served.
fn read_all(t: &mut Test, keys: &[String]) {
    t.run(keys.len(), reads(keys.to_vec()), 100);
}

/// Waits until every shard of `keys` is served by its owner in the latest
/// configuration: the clients learn it first, so their reads go to the new owners
/// (an old owner that has not moved on would otherwise still answer them).
fn settle(t: &mut Test, keys: &[String]) -> Option<()> {
    t.query(-1)?;
    read_all(t, keys);
    Some(())
}

/// TestStaticShards5B: two groups; with one group down, exactly the keys of the
/// shards it owns must not complete (nobody else may serve them) and the others
/// must; after it restarts, all complete.
pub(super) fn static_shards(t: &mut Test) -> Option<()> {
    t.join(&[G0, G1])?;
    let keys = shard_keys();
    let values: Vec<String> = (0..NSHARDS).map(|i| format!("v{i}")).collect();
    t.run(keys.len(), writes(keys.clone(), values), 100);
    settle(t, &keys)?;
    let config = t.query(-1)?;
    t.crash_group(G1);
    let completed = t.reads_within(&keys, MUST_NOT_COMPLETE_WITHIN);
    for (key, done) in keys.iter().zip(completed) {
        let owner = config.shards[key2shard(key)];
        if owner == G1 {
            t.kv.cx.check(!done, SINGLE_OWNER, || {
                format!(
                    "a read of {key:?} (shard {}, owned by group {G1}, which is down) completed",
                    key2shard(key)
                )
            });
        } else {
            t.kv.cx.check(done, property::PROGRESS, || {
                format!(
                    "no progress: a read of {key:?} (shard {}, owned by group {owner}, which is up) did not complete within {} s",
                    key2shard(key),
                    MUST_NOT_COMPLETE_WITHIN / 1_000_000_000
                )
            });
        }
    }
    t.restart_group(G1);
    read_all(t, &keys);
    Some(())
}

/// A request for a key sent straight to every node of a group that does not own it
/// is refused, by its leader with the definite "wrong group" error, and never
/// applied (a later read would show it).
pub(super) fn rejection(t: &mut Test) -> Option<()> {
    t.join(&[G0, G1])?;
    let keys = shard_keys();
    let values: Vec<String> = (0..NSHARDS).map(|i| format!("v{i}")).collect();
    t.run(keys.len(), writes(keys.clone(), values), 100);
    let config = t.query(-1)?;
    for (i, key) in keys.iter().enumerate() {
        let owner = config.shards[key2shard(key)];
        let other = if owner == G0 { G1 } else { G0 };
        let nodes = t.groups[&other].clone();
        let body = specs::kvsrv_protocol::request_body(
            &FetchAppendInput::Put {
                key: key.clone(),
                value: "misrouted".into(),
            },
            Some(specs::kvsrv_protocol::RequestId {
                client: 1_000_000 + i as u64,
                seq: 1,
            }),
        );
        let answers = t.ask_each(&nodes, body);
        let mut wrong_group = false;
        for (node, answer) in nodes.iter().zip(&answers) {
            let Some(a) = answer else { continue };
            t.kv.cx.check(a.kind == "error", SINGLE_OWNER, || {
                format!(
                    "{node} (group {other}) answered a write of {key:?}, whose shard {} group {owner} owns in configuration {}, with {}",
                    key2shard(key),
                    config.num,
                    a.to_json()
                )
            });
            wrong_group |= a.get("wrong_group") == Some(&serde_json::Value::Bool(true));
        }
        t.kv.cx.check(wrong_group, property::PROTOCOL, || {
            format!(
                "no node of group {other} refused a write of {key:?} (shard {}, owned by {owner}) with the \
                 \"wrong group\" error (11 with \"wrong_group\": true); answers: {answers:?}",
                key2shard(key)
            )
        });
    }
    read_all(t, &keys);
    Some(())
}

/// TestJoinLeave5B: data follows its shards through a join and a leave, and stays
/// available when the group that left is shut down.
pub(super) fn join_leave(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0])?;
    t.run(5, appends(keys.clone(), 20), 90);
    t.join(&[G1])?;
    t.run(5, appends(keys.clone(), 20), 90);
    t.leave(&[G0])?;
    t.run(5, appends(keys.clone(), 20), 90);
    t.crash_group(G0);
    t.run(5, appends(keys.clone(), 20), 90);
    read_all(t, &keys);
    Some(())
}

/// TestSnapshot5B: joins and leaves of three groups that snapshot at 1000 bytes,
/// then every group restarted from its snapshots.
pub(super) fn snapshot(t: &mut Test) -> Option<()> {
    let keys: Vec<String> = (0..30).map(|i| key_in(i % NSHARDS, i / NSHARDS)).collect();
    t.join(&[G0])?;
    t.run(5, appends(keys.clone(), 20), 90);
    t.join(&[G1])?;
    t.join(&[G2])?;
    t.leave(&[G0])?;
    t.run(5, appends(keys.clone(), 20), 90);
    t.leave(&[G1])?;
    t.join(&[G0])?;
    t.run(5, appends(keys.clone(), 20), 90);
    for g in t.gids() {
        t.crash_group(g);
    }
    for g in t.gids() {
        t.restart_group(g);
    }
    t.run(5, appends(keys.clone(), 20), 90);
    read_all(t, &keys);
    require_compacted(t, 1000)
}

/// 6.5840's `checklogs` at the end of TestSnapshot5B: every group member's Raft
/// state at most 8 x `maxraftstate`. Not on a node's word alone: its data dir, which
/// the harness measures, holds its Raft state and its snapshot, with room for a copy
/// of each being replaced (a temporary file a crash left), so it may hold at most
/// twice the bound plus its snapshot; a node that never compacts, whatever it
/// reports, holds its whole log there.
fn require_compacted(t: &mut Test, max_raft_state: u64) -> Option<()> {
    let state_limit = 8 * max_raft_state;
    for s in t.node_sizes()? {
        t.kv.cx.check(s.raft_state <= state_limit, LOG_COMPACTION, || {
            format!(
                "logs were not trimmed: {} reports {} bytes of Raft state (at most 8 x {max_raft_state})",
                s.node, s.raft_state
            )
        });
        let dir_limit = 2 * (state_limit + s.snapshot);
        t.kv.cx.check(s.on_disk <= dir_limit, LOG_COMPACTION, || {
            format!(
                "logs were not trimmed: {}'s data dir holds {} bytes, more than twice 8 x \
                 {max_raft_state} of Raft state and the {} bytes of snapshot it reports",
                s.node, s.on_disk, s.snapshot
            )
        });
    }
    Some(())
}

/// TestMissChange5B: one node of each group is down while configurations change,
/// then another; the nodes that missed changes catch up (from snapshots).
pub(super) fn miss_change(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0])?;
    t.run(5, appends(keys.clone(), 10), 90);
    t.join(&[G1])?;
    for round in 0..2 {
        let down: Vec<String> = t.groups.values().map(|n| n[round].clone()).collect();
        for n in &down {
            t.kv.fault(Fault::Crash(n.clone()));
        }
        t.join(&[G2])?;
        t.leave(&[G1])?;
        t.leave(&[G0])?;
        t.run(5, appends(keys.clone(), 10), 90);
        t.join(&[G1])?;
        t.join(&[G0])?;
        t.run(5, appends(keys.clone(), 10), 90);
        for n in down {
            t.kv.fault(Fault::Restart(n));
        }
        t.run(5, appends(keys.clone(), 10), 90);
    }
    read_all(t, &keys);
    Some(())
}

/// The configuration changes of the concurrent and unreliable tests: every group
/// joins and leaves while clients run.
fn changes(t: &Test) -> Vec<specs::node_protocol::Body> {
    vec![
        run::join(&[G1], &t.groups),
        run::join(&[G2], &t.groups),
        run::leave(&[G0]),
        run::leave(&[G1]),
        run::join(&[G0], &t.groups),
        run::join(&[G1], &t.groups),
        run::leave(&[G2]),
        run::join(&[G2], &t.groups),
    ]
}

/// TestConcurrent1_5B: clients append while every group joins and leaves.
pub(super) fn concurrent1(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0])?;
    let changes = changes(t);
    t.run_during(5, appends(keys.clone(), 60), 90, changes, CHANGE_PAUSE);
    read_all(t, &keys);
    Some(())
}

/// Crashes and restarts of whole groups at times from now, `gap` apart.
fn group_restarts(t: &Test, gap: u64) -> Schedule {
    let mut schedule = Schedule::new();
    let now = t.kv.cluster.now();
    for (i, (_, nodes)) in t.groups.iter().enumerate() {
        let at = now + gap * (2 * i as u64 + 1);
        for n in nodes {
            schedule = schedule
                .at(at, Fault::Crash(n.clone()))
                .at(at + gap / 2, Fault::Restart(n.clone()));
        }
    }
    schedule
}

/// TestConcurrent2_5B: the same, with every group crashed and restarted in turn
/// while it happens.
pub(super) fn concurrent2(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0])?;
    let schedule = group_restarts(t, 800_000_000);
    t.kv.cluster.schedule(&schedule);
    let changes = changes(t);
    t.run_during(5, appends(keys.clone(), 60), 75, changes, CHANGE_PAUSE);
    read_all(t, &keys);
    Some(())
}

/// TestConcurrent3_5B: the same with groups that snapshot (the test runs with a
/// small `maxraftstate`), restarted from their snapshots.
pub(super) fn concurrent3(t: &mut Test) -> Option<()> {
    concurrent2(t)
}

/// TestUnreliable1_5B..3_5B: the churn on a network that loses, duplicates and
/// reorders; `one_key` makes every client append to one key (Unreliable3's
/// linearizability check at its sharpest).
fn unreliable(t: &mut Test, one_key: bool) -> Option<()> {
    let keys = if one_key {
        vec![key_in(3, 0)]
    } else {
        shard_keys()
    };
    t.join(&[G0])?;
    t.kv.fault(Fault::Net(NetConfig::unreliable()));
    let changes = changes(t);
    t.run_during(5, appends(keys.clone(), 40), 75, changes, CHANGE_PAUSE);
    t.kv.fault(Fault::Net(NetConfig::reliable()));
    read_all(t, &keys);
    Some(())
}

pub(super) fn unreliable1(t: &mut Test) -> Option<()> {
    unreliable(t, false)
}

/// Unreliable2 adds restarts of whole groups to the lossy churn.
pub(super) fn unreliable2(t: &mut Test) -> Option<()> {
    let schedule = group_restarts(t, 1_000_000_000);
    t.kv.cluster.schedule(&schedule);
    unreliable(t, false)
}

pub(super) fn unreliable3(t: &mut Test) -> Option<()> {
    unreliable(t, true)
}

/// What the deletion challenge allows three groups of three to keep on disk after
/// the 30 values of 1000 bytes went round: 6.5840's 3 * ((n - 3) * 1000 + 2 * 3 *
/// 1000 + 6000), a little more than every replica holding each value once.
pub(super) const DELETION_LIMIT: u64 = 117_000;
/// How long the deletions may take after the last move was served.
const DELETION_WAIT: u64 = 20_000_000_000;

/// Challenge 1 (TestChallenge1Delete): groups that snapshot at every entry move 30
/// values of 1000 bytes around; afterwards the nine group members together hold
/// at most [`DELETION_LIMIT`] bytes, so shards given away were deleted.
pub(super) fn challenge1_delete(t: &mut Test) -> Option<()> {
    t.join(&[G0, G1, G2])?;
    let keys: Vec<String> = (0..30).map(|i| key_in(i % NSHARDS, i / NSHARDS)).collect();
    let values: Vec<String> = (0..30)
        .map(|i| {
            let c = (b'a' + i as u8 % 26) as char;
            std::iter::repeat_n(c, 1000).collect()
        })
        .collect();
    t.run(keys.len(), writes(keys.clone(), values), 100);
    for _ in 0..2 {
        t.leave(&[G0])?;
        t.join(&[G0])?;
        t.leave(&[G1])?;
        t.join(&[G1])?;
    }
    settle(t, &keys)?;
    let deadline = t.kv.cluster.now() + DELETION_WAIT;
    let mut bytes = t.group_bytes()?;
    while bytes > DELETION_LIMIT && t.kv.cluster.now() < deadline {
        t.idle(DELETION_WAIT / 10);
        bytes = t.group_bytes()?;
    }
    t.kv.cx.check(bytes <= DELETION_LIMIT, DELETION, || {
        format!(
            "the group members hold {bytes} bytes of Raft state and snapshots {} s after the last move \
             (at most {DELETION_LIMIT}): shards given away were not deleted",
            DELETION_WAIT / 1_000_000_000
        )
    });
    Some(())
}

/// Challenge 2 (TestChallenge2Unaffected): a group that leaves and dies keeps its
/// shards from moving, but the shards that do not move keep being served.
pub(super) fn challenge2_unaffected(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0])?;
    t.run(5, appends(keys.clone(), 10), 90);
    t.join(&[G1])?;
    settle(t, &keys)?;
    let config = t.query(-1)?;
    let kept: Vec<String> = keys
        .iter()
        .filter(|k| config.shards[key2shard(k)] == G1)
        .cloned()
        .collect();
    t.crash_group(G0);
    t.leave(&[G0])?;
    t.run(5, appends(kept.clone(), 20), 100);
    Some(())
}

/// Challenge 2 (TestChallenge2Partial): a group gaining shards from a live group
/// and a dead one serves those that arrived, while those of the dead one stay
/// unserved.
pub(super) fn challenge2_partial(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0, G1, G2])?;
    t.run(5, appends(keys.clone(), 10), 90);
    settle(t, &keys)?;
    let config = t.query(-1)?;
    let (alive, dead): (Vec<String>, Vec<String>) = keys
        .iter()
        .cloned()
        .partition(|k| config.shards[key2shard(k)] != G2);
    t.crash_group(G2);
    t.leave(&[G0, G2])?;
    t.run(5, appends(alive.clone(), 20), 100);
    let completed = t.reads_within(&dead, MUST_NOT_COMPLETE_WITHIN);
    for (key, done) in dead.iter().zip(completed) {
        t.kv.cx.check(!done, SINGLE_OWNER, || {
            format!("a read of {key:?}, whose data only the dead group {G2} holds, completed")
        });
    }
    Some(())
}

/// Beyond: an append's replies from the group that applied it are lost (a one-way
/// partition from that group to the client), the shard moves to another group,
/// and the client's retry reaches the new owner, which must recognise it from the
/// duplicate table that moved with the shard instead of appending again.
pub(super) fn dedup_moves_with_shard(t: &mut Test) -> Option<()> {
    let key = key_in(4, 0);
    t.join(&[G0])?;
    t.run(1, writes(vec![key.clone()], vec!["a".into()]), 100);
    t.join(&[G1])?;
    settle(t, &shard_keys())?;
    let config = t.query(-1)?;
    let (from, to) = if config.shards[key2shard(&key)] == G0 {
        (G0, G1)
    } else {
        (G1, G0)
    };
    let client = t.next_client_names(1).remove(0);
    let cut = Partition::one_way_between(&t.groups[&from], &[client]);
    t.kv.fault(Fault::Partition(cut));
    let mut step = 0;
    let workload = move |_: usize, _: &mut StdRng| {
        step += 1;
        match step {
            1 => Some(FetchAppendInput::Append {
                key: key.clone(),
                value: "x".into(),
            }),
            2 => Some(FetchAppendInput::Get { key: key.clone() }),
            _ => None,
        }
    };
    // A query first, so the leave comes after the append was applied.
    let changes = vec![run::query(-1), run::leave(&[from])];
    t.run_during(1, workload, 100, changes, CHANGE_PAUSE);
    t.kv.fault(Fault::Heal);
    let now = t.query(-1)?;
    t.kv.cx
        .check(now.shards.iter().all(|&g| g == to), CONFIG_VALID, || {
            format!(
                "after group {from} left, configuration {} still gives it shards",
                now.num
            )
        });
    Some(())
}

/// Beyond: one group cannot reach the controller while it takes configurations
/// that move the group's shards away and back, then the link heals and a further
/// change needs every group: each group must still take every configuration, in
/// order, and serve every key afterwards.
pub(super) fn ctrl_partitioned_during_join(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0, G1])?;
    t.run(5, appends(keys.clone(), 10), 90);
    settle(t, &keys)?;
    let cut_off: Vec<String> = t.groups[&G1].clone();
    let mut sides = vec![t.ctrl.clone(), cut_off];
    sides.sort();
    t.kv.fault(Fault::Partition(Partition::groups(
        format!("group {G1} | controller"),
        &sides,
    )));
    t.leave(&[G1])?;
    // Long enough for the other group to take the leave's configuration (and start
    // pulling from the cut-off group) before the next one exists: a group that
    // jumped over it would then disagree with it about where the shards are.
    t.idle(1_000_000_000);
    t.join(&[G1])?;
    t.idle(1_000_000_000);
    t.kv.fault(Fault::Heal);
    t.leave(&[G0])?;
    t.run(5, appends(keys.clone(), 20), 90);
    settle(t, &keys)?;
    Some(())
}

/// Beyond: the group giving shards away is paused (SIGSTOP) just as the receiver
/// starts pulling, and resumed two seconds later; clients keep going throughout.
pub(super) fn group_paused_during_handoff(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0])?;
    t.run(5, appends(keys.clone(), 10), 90);
    let now = t.kv.cluster.now();
    let mut schedule = Schedule::new();
    for n in &t.groups[&G0] {
        // The join goes in at about CHANGE_PAUSE; the receiver polls every 100 ms.
        schedule = schedule
            .at(now + CHANGE_PAUSE + 150_000_000, Fault::Pause(n.clone()))
            .at(now + CHANGE_PAUSE + 2_150_000_000, Fault::Resume(n.clone()));
    }
    t.kv.cluster.schedule(&schedule);
    let changes = vec![
        run::query(-1),
        run::join(&[G1], &t.groups),
        run::leave(&[G0]),
    ];
    t.run_during(5, appends(keys.clone(), 40), 75, changes, CHANGE_PAUSE);
    settle(t, &keys)?;
    Some(())
}

/// Beyond: replies from one group to another are lost (a one-way partition) while
/// the first must hand its shards to the second, for two seconds; then the link
/// heals and the handoff completes.
pub(super) fn one_way_between_groups(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0, G1])?;
    t.run(5, appends(keys.clone(), 10), 90);
    settle(t, &keys)?;
    let cut = Partition::one_way_between(&t.groups[&G1], &t.groups[&G0]);
    t.kv.fault(Fault::Partition(cut));
    let heal = Schedule::new().at(t.kv.cluster.now() + 2_000_000_000, Fault::Heal);
    t.kv.cluster.schedule(&heal);
    let changes = vec![run::leave(&[G1])];
    t.run_during(5, appends(keys.clone(), 40), 75, changes, CHANGE_PAUSE);
    settle(t, &keys)?;
    Some(())
}

/// How much later than usual every message from one group to the other arrives in
/// `stale_delete_after_a_shard_returns`.
const SLOW_LINK: u64 = 3_000_000_000;

/// Beyond: a shard leaves a group, comes back and leaves again while copies of the
/// first departure's Delete are still on their way. While the shard first moves,
/// every message from the receiving group to the giving one is 3 s late (nothing
/// lost), so the Deletes the receiver sends for that configuration arrive seconds
/// after it sent them; the links are fast again for the shard's return, and then the
/// two groups are cut apart while it leaves once more, so that it waits at the giver
/// for its new owner when the old Deletes land. A Delete may only delete the shard
/// for the configuration it names: a group that drops the shard on a stale one loses
/// its data before the new owner pulled it, and the shard is never served again, or
/// served empty.
pub(super) fn stale_delete_after_a_shard_returns(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0, G1])?;
    t.run(5, appends(keys.clone(), 10), 90);
    settle(t, &keys)?;
    let config = t.query(-1)?;
    let Some(shard) = (0..NSHARDS).find(|&s| config.shards[s] == G0) else {
        t.kv.cx.fail(
            CONFIG_VALID,
            format!(
                "configuration {} gives group {G0} no shard after two joins",
                config.num
            ),
        );
        return None;
    };
    let links = |from: u64, to: u64| Partition::one_way_between(&t.groups[&from], &t.groups[&to]);
    let slow = links(G1, G0);
    let apart = slow.clone().and(links(G0, G1));
    // Away, with the receiver's pull and Deletes late.
    t.kv.fault(Fault::SlowLinks(slow, SLOW_LINK));
    t.call(run::move_shard(shard, G1))?;
    t.idle(SLOW_LINK + 1_000_000_000);
    t.kv.fault(Fault::SlowLinks(Partition::none(), 0));
    settle(t, &keys)?;
    // Back, on fast links, while the late Deletes are still on their way; then the
    // returned shard's own Delete is answered.
    t.call(run::move_shard(shard, G0))?;
    settle(t, &keys)?;
    t.idle(500_000_000);
    // Away again, to a group that cannot pull it yet: the late Deletes land meanwhile.
    t.kv.fault(Fault::Partition(apart));
    t.call(run::move_shard(shard, G1))?;
    t.idle(SLOW_LINK + 1_000_000_000);
    t.kv.fault(Fault::Heal);
    t.run(5, appends(keys.clone(), 20), 90);
    settle(t, &keys)?;
    Some(())
}

/// Beyond: a random nemesis (by seed) while every group joins and leaves: members
/// crashed and restarted, isolated, paused, a group cut from the controller, the
/// network made lossy; then everything heals and every key must be served.
pub(super) fn random_nemesis(t: &mut Test) -> Option<()> {
    let keys = shard_keys();
    t.join(&[G0])?;
    let mut rng = t.kv.cx.rng(0x0053_6861_7264_4b56);
    let start = t.kv.cluster.now();
    let members: Vec<String> = t.groups.values().flatten().cloned().collect();
    let all: Vec<String> = t.ctrl.iter().chain(&members).cloned().collect();
    let mut schedule = Schedule::new();
    let mut at = start;
    for _ in 0..6 {
        at += rng.gen_range(300_000_000..900_000_000);
        let end = at + rng.gen_range(300_000_000..1_200_000_000);
        let node = members[rng.gen_range(0..members.len())].clone();
        schedule = match rng.gen_range(0..5) {
            0 => schedule
                .at(at, Fault::Crash(node.clone()))
                .at(end, Fault::Restart(node)),
            1 => schedule
                .at(at, Fault::Partition(Partition::isolate(&node, &all)))
                .at(end, Fault::Heal),
            2 => schedule
                .at(at, Fault::Pause(node.clone()))
                .at(end, Fault::Resume(node)),
            3 => {
                let gids: Vec<&Vec<String>> = t.groups.values().collect();
                let group = gids[rng.gen_range(0..gids.len())].clone();
                let p = Partition::groups("a group | the controller", &[group, t.ctrl.clone()]);
                schedule.at(at, Fault::Partition(p)).at(end, Fault::Heal)
            }
            _ => schedule
                .at(at, Fault::Net(NetConfig::unreliable()))
                .at(end, Fault::Net(NetConfig::reliable())),
        };
        at = end;
    }
    t.kv.cluster.schedule(&schedule);
    let changes = changes(t);
    t.run_during(5, appends(keys.clone(), 60), 50, changes, CHANGE_PAUSE);
    // Whatever is left of the schedule happens before the closing reads.
    let rest = at.saturating_sub(t.kv.cluster.now());
    t.idle(rest + 1);
    t.kv.fault(Fault::Heal);
    t.kv.fault(Fault::Net(NetConfig::reliable()));
    settle(t, &keys)?;
    Some(())
}

/// The power tests' start: the first group joins, takes every shard and serves five
/// clients' appends to them.
fn serving_first_group(t: &mut Test, keys: &[String]) -> Option<()> {
    t.join(&[G0])?;
    t.run(5, appends(keys.to_vec(), 20), 90);
    Some(())
}

/// Every member of a group loses power at once, twice: once after it took shards and
/// served appends to them, once in the middle of handing shards over. What the group
/// acknowledged (the appends, the shards it took or gave) must come back with it, so
/// each member made its state durable before acknowledging it: a group that only
/// wrote it loses acknowledged appends, which the history shows.
pub(super) fn power_loss_of_a_group(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, 2, "1000", Durability::LazyFs) else {
        return;
    };
    let body = |t: &mut Test| -> Option<()> {
        let keys = shard_keys();
        serving_first_group(t, &keys)?;
        t.power_loss_group(G0);
        t.restart_group(G0);
        t.run(5, appends(keys.clone(), 20), 75);
        let now = t.kv.cluster.now();
        let mut schedule = Schedule::new();
        for m in &t.groups[&G0] {
            schedule = schedule.at(
                now + CHANGE_PAUSE + 200_000_000,
                Fault::PowerLoss(m.clone()),
            );
            schedule = schedule.at(
                now + CHANGE_PAUSE + 1_500_000_000,
                Fault::Restart(m.clone()),
            );
        }
        t.kv.cluster.schedule(&schedule);
        let changes = vec![run::query(-1), run::join(&[G1], &t.groups)];
        t.run_during(5, appends(keys.clone(), 40), 75, changes, CHANGE_PAUSE);
        settle(t, &keys)?;
        Some(())
    };
    if body(&mut t).is_some() && t.kv.cx.passing() {
        t.check_single_owner();
    }
    t.kv.finish();
}

/// Beyond: power fails on one member of the giving group (a minority: it loses
/// every write it did not fsync) while its shards move, in the middle of one of its
/// next 8 syncs (so an append under way leaves a torn tail, and a crash between a
/// snapshot and the log it cuts short is as likely as anywhere), and it restarts
/// from what its disk kept; nothing acknowledged may be lost. Data dirs are on the
/// harness's power-loss filesystem (FUSE: needs /dev/fuse and root, as on CI).
pub(super) fn power_loss_of_a_minority(cx: &mut Context) {
    let Some(mut t) = run::start_with(cx, 2, "1000", Durability::LazyFs) else {
        return;
    };
    let body = |t: &mut Test| -> Option<()> {
        let keys = shard_keys();
        serving_first_group(t, &keys)?;
        let victim = t.groups[&G0][0].clone();
        let sync = t.kv.cx.rng(0x0070_6f77_6572).gen_range(1..=8);
        let now = t.kv.cluster.now();
        let schedule = Schedule::new()
            .at(
                now + CHANGE_PAUSE + 200_000_000,
                Fault::PowerLossAtSync(victim.clone(), sync),
            )
            .at(
                now + CHANGE_PAUSE + 1_500_000_000,
                Fault::Restart(victim.clone()),
            );
        t.kv.cluster.schedule(&schedule);
        let changes = vec![run::query(-1), run::join(&[G1], &t.groups)];
        t.run_during(5, appends(keys.clone(), 40), 75, changes, CHANGE_PAUSE);
        // The restarted member must catch up: the others of its group go down.
        let others: Vec<String> = t.groups[&G0][1..].to_vec();
        t.kv.fault(Fault::Crash(others[0].clone()));
        t.leave(&[G1])?;
        t.run(5, appends(keys.clone(), 20), 75);
        t.kv.fault(Fault::Restart(others[0].clone()));
        settle(t, &keys)?;
        if t.kv.cluster.power_cuts_struck(&victim) == 0 {
            t.kv.cx.fail(
                property::PERSISTENCE,
                format!(
                    "the power cut at the sync {sync} from then of {victim} never struck: it \
                     made fewer syncs while its group handed its shards over, and a node \
                     that does not sync what it acknowledges loses it when the power fails"
                ),
            );
        }
        Some(())
    };
    if body(&mut t).is_some() && t.kv.cx.passing() {
        t.check_single_owner();
    }
    t.kv.finish();
}
