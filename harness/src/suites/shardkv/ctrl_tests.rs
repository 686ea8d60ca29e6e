//! The shard controller's tests (6.5840 lab 5A): a controller of three nodes and
//! its clerks; every configuration checked for what it must be, old ones included.

use std::collections::{BTreeMap, BTreeSet};

use specs::node_protocol::Body;

use super::run::{self, ShardConfig, Test, NSHARDS};
use super::{BALANCED, CONFIG_VALID, EXACTLY_ONCE, HISTORY_KEPT, MINIMAL_MOVES};
use crate::nemesis::Fault;
use crate::network::NetConfig;
use crate::suite::{property, Context};

/// Runs `body` against a controller of three nodes and no groups.
pub(super) fn with_ctrl(cx: &mut Context, body: impl FnOnce(&mut Test) -> Option<()>) {
    with_ctrl_at(cx, "-1", body)
}

/// [`with_ctrl`] with `SHARDKV_MAXRAFTSTATE` at `max_raft_state`.
pub(super) fn with_ctrl_at(
    cx: &mut Context,
    max_raft_state: &str,
    body: impl FnOnce(&mut Test) -> Option<()>,
) {
    if let Some(mut t) = run::start(cx, 0, max_raft_state) {
        let _ = body(&mut t);
        t.kv.finish();
    }
}

/// The latest configuration has exactly `groups`, gives every shard to one of them
/// (to nobody, group 0, only when there is none), and spreads the shards evenly.
fn check(t: &mut Test, groups: &[u64]) -> Option<ShardConfig> {
    let c = t.query(-1)?;
    let want: BTreeSet<u64> = groups.iter().copied().collect();
    let got: BTreeSet<u64> = c.groups.keys().copied().collect();
    t.kv.cx.check(got == want, CONFIG_VALID, || {
        format!(
            "configuration {} has groups {got:?}, expected {want:?}",
            c.num
        )
    });
    for (s, g) in c.shards.iter().enumerate() {
        let ok = if want.is_empty() {
            *g == 0
        } else {
            want.contains(g)
        };
        t.kv.cx.check(ok, CONFIG_VALID, || {
            format!(
                "configuration {}: shard {s} is assigned to group {g}, which is not in it",
                c.num
            )
        });
    }
    if !want.is_empty() {
        let counts = c.counts();
        let (min, max) = (
            counts.values().min().copied().unwrap_or(0),
            counts.values().max().copied().unwrap_or(0),
        );
        t.kv.cx.check(max - min <= 1, BALANCED, || {
            format!(
                "configuration {}: shards per group {counts:?} differ by {} (at most 1)",
                c.num,
                max - min
            )
        });
    }
    Some(c)
}

/// The fewest shards any balanced assignment to `after`'s groups must move from
/// `before`: every shard is kept but those of groups that left, and those a group
/// holds beyond its share (the larger shares going to the groups holding most).
fn minimal_moves(before: &ShardConfig, after: &ShardConfig) -> usize {
    let n = after.groups.len();
    if n == 0 {
        return 0;
    }
    let mut held: Vec<usize> = after
        .groups
        .keys()
        .map(|g| before.shards.iter().filter(|&&x| x == *g).count())
        .collect();
    held.sort_unstable_by(|a, b| b.cmp(a));
    let (base, extra) = (NSHARDS / n, NSHARDS % n);
    let kept: usize = held
        .iter()
        .enumerate()
        .map(|(i, &h)| h.min(base + usize::from(i < extra)))
        .sum();
    NSHARDS - kept
}

/// From `before` to `after`, shards moved only where they had to (to a group that
/// joined, or away from one that left) and no more of them than the fewest a
/// balanced assignment allows, judged on the groups of `after`.
fn check_minimal(t: &mut Test, before: &ShardConfig, after: &ShardConfig, what: &str) {
    let moved: Vec<usize> = (0..NSHARDS)
        .filter(|&s| before.shards[s] != after.shards[s])
        .collect();
    let least = minimal_moves(before, after);
    t.kv.cx.check(moved.len() == least, MINIMAL_MOVES, || {
        format!(
            "{what}: configuration {} -> {} moved shards {moved:?} ({}), the fewest possible is {least} \
             (before {:?}, after {:?})",
            before.num,
            after.num,
            moved.len(),
            before.shards,
            after.shards
        )
    });
    for &s in &moved {
        let (from, to) = (before.shards[s], after.shards[s]);
        let needed = !after.groups.contains_key(&from) || !before.groups.contains_key(&to);
        t.kv.cx.check(needed, MINIMAL_MOVES, || {
            format!(
                "{what}: shard {s} moved from group {from} to {to}, both in configurations {} and {}: \
                 a move between groups that stay",
                before.num, after.num
            )
        });
    }
}

/// A request the controller must refuse: it is answered with an error, and the
/// latest configuration is the same after it as before.
fn refused(t: &mut Test, request: Body, what: &str) -> Option<()> {
    let before = t.query(-1)?;
    let reply = t.calls(vec![vec![request.clone()]])?.remove(0).remove(0);
    t.kv.cx
        .check(reply.kind == "error", property::PROTOCOL, || {
            format!(
                "{what} ({}) was answered {}, not with an error",
                request.to_json(),
                reply.to_json()
            )
        });
    let after = t.query(-1)?;
    t.kv.cx.check(after == before, CONFIG_VALID, || {
        format!(
            "{what}, which must be refused, changed the latest configuration from {} to {}",
            before.num, after.num
        )
    });
    Some(())
}

/// TestBasic5A, "basic leave/join": the configuration follows joins and leaves, and
/// a group's servers are the ones it joined with.
pub(super) fn basic_join_leave(t: &mut Test) -> Option<()> {
    check(t, &[])?;
    t.join(&[1])?;
    let c = check(t, &[1])?;
    t.kv.cx.check(
        c.groups.get(&1) == Some(&vec!["x1a".to_string(), "x1b".to_string()]),
        CONFIG_VALID,
        || {
            format!(
                "group 1 joined with [x1a, x1b], configuration {} says {:?}",
                c.num,
                c.groups.get(&1)
            )
        },
    );
    // Group 0 is what an unassigned shard points to, so no group can be 0.
    let zero = run::join(&[0], &t.groups);
    refused(t, zero, "a join of group 0")?;
    t.join(&[2])?;
    check(t, &[1, 2])?;
    t.leave(&[1])?;
    check(t, &[2])?;
    t.leave(&[2])?;
    check(t, &[])?;
    Some(())
}

/// TestBasic5A, "historical queries": every configuration made is answered by
/// number, the same as when it was the latest, with each controller node down in
/// turn.
pub(super) fn historical_queries(t: &mut Test) -> Option<()> {
    let mut seen = vec![check(t, &[])?];
    for step in [&[1u64][..], &[2], &[3]] {
        t.join(step)?;
        seen.push(t.query(-1)?);
    }
    t.leave(&[2])?;
    seen.push(t.query(-1)?);
    for node in t.ctrl.clone() {
        t.kv.fault(Fault::Crash(node.clone()));
        for c in &seen {
            let again = t.query(c.num as i64)?;
            t.kv.cx.check(&again == c, HISTORY_KEPT, || {
                format!(
                    "query({}) with {node} down answered {again:?}; when it was the latest: {c:?}",
                    c.num
                )
            });
        }
        t.kv.fault(Fault::Restart(node));
    }
    Some(())
}

/// TestBasic5A, "move": Move puts a shard where it says, and a later join or leave
/// rebalances from there.
pub(super) fn move_shards(t: &mut Test) -> Option<()> {
    t.join(&[503])?;
    t.join(&[504])?;
    for s in 0..NSHARDS {
        let to = if s < NSHARDS / 2 { 503 } else { 504 };
        t.call(run::move_shard(s, to))?;
    }
    let c = t.query(-1)?;
    for s in 0..NSHARDS {
        let want = if s < NSHARDS / 2 { 503 } else { 504 };
        t.kv.cx.check(c.shards[s] == want, CONFIG_VALID, || {
            format!(
                "after move({s}, {want}) configuration {} gives shard {s} to {}",
                c.num, c.shards[s]
            )
        });
    }
    // A shard one past the last is no shard (a controller that took it would index
    // past its table, or record an impossible move).
    refused(
        t,
        run::move_shard(NSHARDS, 503),
        &format!("a move of shard {NSHARDS}, one past the last"),
    )?;
    // Nor is group 0 a group: a shard moved there would belong to nobody.
    refused(t, run::move_shard(0, 0), "a move of shard 0 to group 0")?;
    // Everything to one group, then a leave of the other: nothing to move.
    for s in 0..NSHARDS {
        t.call(run::move_shard(s, 503))?;
    }
    let before = t.query(-1)?;
    t.leave(&[504])?;
    let after = check(t, &[503])?;
    check_minimal(t, &before, &after, "leave after moves");
    Some(())
}

/// TestBasic5A, "concurrent leave/join": ten clerks at once, each joining two groups
/// and leaving one; the end has exactly the groups that stayed.
pub(super) fn concurrent_leave_join(t: &mut Test) -> Option<()> {
    let none = BTreeMap::new();
    let scripts = (1..=10u64)
        .map(|g| {
            vec![
                run::join(&[1000 + g], &none),
                run::join(&[g], &none),
                run::leave(&[1000 + g]),
            ]
        })
        .collect();
    t.calls(scripts)?;
    let stayed: Vec<u64> = (1..=10).collect();
    check(t, &stayed)?;
    Some(())
}

/// TestBasic5A, "minimal transfers after joins", checked on the groups that are
/// live: from ten groups to fifteen nothing needs to move (the original test's
/// loop looks at groups that do not exist and so checks nothing); then from two
/// groups to three, where some must, and two newcomers with the lowest ids.
pub(super) fn minimal_after_joins(t: &mut Test) -> Option<()> {
    let ten: Vec<u64> = (1..=10).collect();
    t.join(&ten)?;
    let before = check(t, &ten)?;
    for g in 11..=15 {
        t.join(&[g])?;
    }
    let all: Vec<u64> = (1..=15).collect();
    let after = check(t, &all)?;
    check_minimal(t, &before, &after, "five joins after ten groups");
    let mut prev = after;
    for step in [&ten[..], &[11, 12, 13, 14]] {
        t.leave(step)?;
        let now = t.query(-1)?;
        check_minimal(t, &prev, &now, "leaves");
        prev = now;
    }
    // One group (15) left; joins one at a time move only to the newcomer.
    for g in [21u64, 22, 23] {
        t.join(&[g])?;
        let now = t.query(-1)?;
        check_minimal(t, &prev, &now, &format!("join of {g}"));
        prev = now;
    }
    check(t, &[15, 21, 22, 23])?;
    // Two groups with lower ids than every group there at once: the four groups keep
    // two shards each only if the larger targets go to the groups that hold most, not
    // to the lowest ids (which would be the newcomers).
    t.join(&[3, 4])?;
    let now = check(t, &[3, 4, 15, 21, 22, 23])?;
    check_minimal(t, &prev, &now, "join of 3 and 4");
    Some(())
}

/// TestBasic5A, "minimal transfers after leaves": only the shards of the groups
/// that leave move, and they spread over the rest.
pub(super) fn minimal_after_leaves(t: &mut Test) -> Option<()> {
    let all: Vec<u64> = (1..=7).collect();
    for g in &all {
        t.join(&[*g])?;
    }
    let mut prev = check(t, &all)?;
    let mut left = Vec::new();
    for g in [2u64, 5, 7, 1] {
        t.leave(&[g])?;
        left.push(g);
        let stay: Vec<u64> = all.iter().copied().filter(|x| !left.contains(x)).collect();
        let now = check(t, &stay)?;
        check_minimal(t, &prev, &now, &format!("leave of {g}"));
        prev = now;
    }
    Some(())
}

/// Beyond the course: on a network that loses, duplicates and delays messages, the
/// clerks resend each join, move and leave (with its client and seq) until they
/// hear an answer, and the controller must apply each once: after thirteen changes
/// the latest configuration is number thirteen, with the groups that stayed. A
/// controller that applies a resent request again makes a configuration more.
pub(super) fn exactly_once_unreliable(t: &mut Test) -> Option<()> {
    let first = t.query(-1)?.num;
    t.kv.fault(Fault::Net(NetConfig::unreliable()));
    let mut changes = 0;
    for g in 1..=6 {
        t.join(&[g])?;
        changes += 1;
    }
    for s in 0..NSHARDS / 2 {
        t.call(run::move_shard(s, 1))?;
        changes += 1;
    }
    for g in [2, 4] {
        t.leave(&[g])?;
        changes += 1;
    }
    t.kv.fault(Fault::Net(NetConfig::reliable()));
    let c = check(t, &[1, 3, 5, 6])?;
    t.kv.cx.check(c.num == first + changes, EXACTLY_ONCE, || {
        format!(
            "{changes} changes, each answered once, on a lossy network made configuration {} \
             from {first}: a resent request was applied again",
            c.num
        )
    });
    Some(())
}

/// The controller is a replicated service, so it must survive losing every node at
/// once: all three crash together and restart from their disks, then every
/// configuration made before is answered by number as it was, and the next change
/// follows the latest. Run with `maxraftstate` 1000, so that a controller that
/// compacts its log (ours does) restarts from its snapshot; twenty queries, each an
/// entry of a controller that logs them, take it past that.
pub(super) fn survives_a_full_restart(t: &mut Test) -> Option<()> {
    let mut seen = vec![check(t, &[])?];
    for step in [&[1u64, 2][..], &[3], &[4]] {
        t.join(step)?;
        seen.push(t.query(-1)?);
    }
    t.call(run::move_shard(0, 3))?;
    seen.push(t.query(-1)?);
    t.leave(&[1])?;
    seen.push(t.query(-1)?);
    for _ in 0..20 {
        t.query(-1)?;
    }
    for node in t.ctrl.clone() {
        t.kv.fault(Fault::Crash(node));
    }
    for node in t.ctrl.clone() {
        t.kv.fault(Fault::Restart(node));
    }
    for c in &seen {
        let again = t.query(c.num as i64)?;
        t.kv.cx.check(&again == c, property::PERSISTENCE, || {
            format!(
                "after every controller node crashed and restarted, query({}) answered \
                 {again:?}; before: {c:?}",
                c.num
            )
        });
    }
    let latest = seen.last().expect("configuration 0").num;
    t.join(&[5])?;
    let next = check(t, &[2, 3, 4, 5])?.num;
    t.kv.cx
        .check(next == latest + 1, property::PERSISTENCE, || {
            format!(
                "the first join after the controller restarted made configuration {next}; the \
             latest before was {latest}"
            )
        });
    Some(())
}

/// TestMulti5A: joins and leaves of several groups at once, concurrent clerks doing
/// them, minimal transfers after each, and every controller node answering the
/// same latest configuration.
pub(super) fn multi(t: &mut Test) -> Option<()> {
    t.join(&[1, 2, 3])?;
    check(t, &[1, 2, 3])?;
    t.join(&[4, 5])?;
    let before = check(t, &[1, 2, 3, 4, 5])?;
    t.leave(&[1, 3])?;
    let after = check(t, &[2, 4, 5])?;
    check_minimal(t, &before, &after, "a leave of two");
    t.leave(&[2, 4, 5])?;
    check(t, &[])?;
    // Concurrent multi-group joins and leaves.
    let none = BTreeMap::new();
    let scripts = (0..10u64)
        .map(|i| {
            let (a, b) = (100 + 2 * i, 101 + 2 * i);
            vec![run::join(&[a, b], &none), run::leave(&[b])]
        })
        .collect();
    t.calls(scripts)?;
    let stayed: Vec<u64> = (0..10).map(|i| 100 + 2 * i).collect();
    let before = check(t, &stayed)?;
    // Minimal transfers after a multi-join and a multi-leave.
    t.join(&[500, 501, 502])?;
    let mut all = stayed.clone();
    all.extend([500, 501, 502]);
    let after = check(t, &all)?;
    check_minimal(t, &before, &after, "a join of three");
    t.leave(&stayed[..8])?;
    let mut rest = stayed[8..].to_vec();
    rest.extend([500, 501, 502]);
    let last = check(t, &rest)?;
    check_minimal(t, &after, &last, "a leave of eight");
    // Every node, with each other one down in turn, answers the same latest one.
    for node in t.ctrl.clone() {
        t.kv.fault(Fault::Crash(node.clone()));
        let c = t.query(-1)?;
        t.kv.cx.check(c == last, CONFIG_VALID, || {
            format!("with {node} down the latest configuration is {c:?}, before it was {last:?}")
        });
        t.kv.fault(Fault::Restart(node));
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(num: u64, shards: [u64; NSHARDS], groups: &[u64]) -> ShardConfig {
        ShardConfig {
            num,
            shards: shards.to_vec(),
            groups: groups.iter().map(|&g| (g, vec![])).collect(),
        }
    }

    #[test]
    fn the_fewest_moves_are_counted_on_the_groups_that_stay() {
        let two = config(1, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2], &[1, 2]);
        let three = config(2, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2], &[1, 2, 3]);
        // 4/3/3: one group keeps 4, the other 3, the newcomer gets 3.
        assert_eq!(minimal_moves(&two, &three), 3);
        let one = config(2, [0; NSHARDS], &[2]);
        assert_eq!(minimal_moves(&two, &one), 5);
        let ten: Vec<u64> = (1..=10).collect();
        let spread = config(1, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &ten);
        let fifteen: Vec<u64> = (1..=15).collect();
        let more = config(2, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &fifteen);
        assert_eq!(minimal_moves(&spread, &more), 0);
    }
}
