//! Beyond 6.5840: faults its tests do not have (power failures are in
//! `persistence`), staged scenarios for the bugs 6.5840's tests rarely catch, each
//! swept over seeds (see [`super::sweep`]).

use rand::Rng;
use serde_json::json;

use super::{
    require, sweep, Tester, AGREEMENT, BACKUP_EFFICIENCY, ELECTION_TIMEOUT, LEADER_ELECTION,
    LOG_COMPACTION, MS, SPEED, STATE_MACHINE_SAFETY,
};
use crate::network::Partition;
use crate::suite::{property, Context};

/// Figure 8 of the Raft paper, staged with partitions and crashes (5 nodes):
/// a leader of a later term replicates an entry of an earlier term to a majority,
/// and a node that never had it can still be elected and overwrite it. An
/// implementation that commits by counting replicas applies the old entry first
/// and a different one later.
fn figure_8_staged_scenario(t: &mut Tester) {
    let n = t.n;
    assert_eq!(n, 5);
    t.one(json!("c1"), n, true);
    // (a) The leader L gets index 2 to one follower A only.
    let l = t.check_one_leader();
    let a = (l + 1) % n;
    let others: Vec<usize> = (0..n).filter(|&i| i != l && i != a).collect();
    for &i in &others {
        t.disconnect(i);
    }
    let (index, _, ok) = t.start(l, json!("old"));
    assert!(
        ok && index == 2,
        "leader took index {index} (is leader: {ok})"
    );
    t.sleep(50 * MS);
    // (b) L crashes; the other three elect W, which takes index 2 alone.
    t.crash(l);
    t.disconnect(a);
    for &i in &others {
        t.connect(i);
    }
    let w = t.check_one_leader();
    t.disconnect(w);
    let (index_w, _, ok) = t.start(w, json!("new"));
    assert!(
        ok && index_w == 2,
        "W took index {index_w} (is leader: {ok})"
    );
    t.crash(w);
    let rest: Vec<usize> = others.iter().copied().filter(|&i| i != w).collect();
    let (e, f) = (rest[0], rest[1]);
    // (c) L restarts; L or A leads a new term and copies "old" to E: a majority
    // (L, A, E) stores it, but it is of an earlier term and must not commit.
    t.restart(l);
    t.connect(l);
    t.connect(a);
    t.connect(e);
    t.check_one_leader();
    t.sleep(ELECTION_TIMEOUT);
    // (d) L and A crash; W restarts and, with the most up-to-date log, wins E and
    // F and commits its own index 2.
    t.crash(l);
    t.crash(a);
    t.restart(w);
    t.connect(w);
    t.connect(f);
    t.one(json!("after"), 3, true);
}

/// A restarted node must remember whom it voted for. Staged on 3 nodes: A wins
/// term T with V's vote; V crashes and restarts; then B asks V for its vote in the
/// same term T. A node that forgot its vote grants it, and B becomes a second
/// leader of T. (The staging relies on a node whose election timeout passed
/// while it was paused campaigning as soon as it resumes, as 6.5840's Raft does.)
fn vote_survives_restart_scenario(t: &mut Tester) {
    assert_eq!(t.n, 3);
    t.one(json!("c1"), 3, true);
    let v = t.check_one_leader();
    let (a, b) = ((v + 1) % 3, (v + 2) % 3);
    let (term, _) = t.get_state(v);
    // A and B stop hearing V and each other, and freeze before they time out.
    t.cut(v, a);
    t.cut(v, b);
    t.cut(a, b);
    t.cut(b, a);
    t.sleep(5 * MS);
    t.pause(a);
    t.pause(b);
    t.sleep(ELECTION_TIMEOUT);
    // A campaigns for term + 1 and gets V's vote.
    t.uncut(v, a);
    t.resume(a);
    t.sleep(100 * MS);
    assert_eq!(
        t.get_state(a),
        (term + 1, true),
        "staging: n{} should lead term {} with n{}'s vote",
        a + 1,
        term + 1,
        v + 1
    );
    // V restarts; then B campaigns for the same term and asks V.
    t.restart(v);
    t.connect(v);
    t.uncut(v, b);
    t.resume(b);
    t.sleep(100 * MS);
    t.heal();
    t.one(json!("c2"), 3, true);
}

/// A leader repairs a follower whose log diverges for 50 entries of one term in a
/// few round trips (6.5840's accelerated log backtracking), not one per entry.
/// Returns the messages the new leader sent the rejoining node until it caught up.
fn backup_messages(t: &mut Tester) -> u64 {
    assert_eq!(t.n, 3);
    t.one(json!("c1"), 3, true);
    let old = t.check_one_leader();
    t.disconnect(old);
    t.start_random(old, 50);
    for _ in 0..50 {
        let c = t.random_command();
        t.one(c, 2, true);
    }
    let new = t.check_one_leader();
    let sent0 = t.link_sent(new, old);
    t.connect(old);
    // Straight to the new leader: the old one may not know yet that it is not.
    let c = t.random_command();
    let (last, _, ok) = t.start(new, c);
    require(ok, LEADER_ELECTION, || {
        format!("n{} stopped leading though nothing happened to it", new + 1)
    });
    let caught_up = t.run_until_applied(old, last, 10 * ELECTION_TIMEOUT);
    require(caught_up, property::PROGRESS, || {
        format!(
            "no progress: n{} never caught up to index {last} in {} s",
            old + 1,
            10 * ELECTION_TIMEOUT / 1_000_000_000
        )
    });
    t.link_sent(new, old) - sent0
}

/// How many messages `backup_in_few_messages` allows the leader to send the
/// rejoining node: one rejection per conflicting term, a batch of entries, and
/// heartbeats, with room to spare; a leader backing up one entry at a time needs
/// 50 or more.
const BACKUP_MESSAGES: u64 = 20;

/// Random faults of every kind the harness has, on a lossy, duplicating,
/// reordering network with snapshots on, while commands keep arriving; then
/// everything heals and the cluster must agree again.
fn nemesis(t: &mut Tester) {
    let n = t.n;
    t.snapshot_every(10);
    t.set_unreliable(true);
    for _ in 0..12 {
        let names = t.names();
        let victim = t.rng.gen_range(0..n);
        let mut crashed = None;
        let mut paused = None;
        match t.rng.gen_range(0..6) {
            0 => t.disconnect(victim),
            1 => {
                let shape = Partition::majority_minority(&names, &mut t.rng);
                t.set_shape(Some(shape));
            }
            2 => t.set_shape(Some(Partition::overlapping_majorities(&names))),
            3 => t.cut_outgoing(victim),
            4 => {
                t.crash(victim);
                crashed = Some(victim);
            }
            _ => {
                t.pause(victim);
                paused = Some(victim);
            }
        }
        for _ in 0..6 {
            let up: Vec<usize> = (0..n)
                .filter(|&i| t.is_alive(i) && !t.is_paused(i))
                .collect();
            let starts = up.into_iter().map(|i| (i, t.random_command())).collect();
            t.start_many(starts);
            let ms = t.rng.gen_range(10..100);
            t.sleep(ms * MS);
        }
        t.heal();
        t.connect(victim);
        if let Some(i) = crashed {
            t.restart(i);
            t.connect(i);
        }
        if let Some(i) = paused {
            t.resume(i);
        }
    }
    t.set_unreliable(false);
    t.sleep(ELECTION_TIMEOUT);
    let c = t.random_command();
    t.one(c, n, true);
}

pub(super) fn random_nemesis(cx: &mut Context) {
    sweep(cx, 5, nemesis);
}

pub(super) fn vote_survives_restart(cx: &mut Context) {
    sweep(cx, 3, vote_survives_restart_scenario);
}

pub(super) fn figure_8_staged(cx: &mut Context) {
    sweep(cx, 5, |t| {
        figure_8_staged_scenario(t);
        let (nd, cmd) = t.n_committed(2);
        require(nd >= 3 && cmd == Some(json!("new")), AGREEMENT, || {
            format!(
                "index 2 should hold W's \"new\" on at least 3 nodes, but holds {cmd:?} on {nd}"
            )
        });
    });
}

pub(super) fn backup_in_few_messages(cx: &mut Context) {
    let counts = std::cell::RefCell::new(Vec::new());
    sweep(cx, 3, |t| {
        let sent = backup_messages(t);
        counts.borrow_mut().push(sent);
        require(sent <= BACKUP_MESSAGES, BACKUP_EFFICIENCY, || {
            format!(
                "the leader sent {sent} messages to repair a 50-entry divergence (at most {BACKUP_MESSAGES})"
            )
        });
    });
    cx.note(format!(
        "messages to repair the follower, per run: {:?} (at most {BACKUP_MESSAGES})",
        counts.into_inner()
    ));
}

/// Half the messages between nodes arrive twice, many out of order, while
/// followers and leaders fail and return: duplicates must be harmless.
pub(super) fn duplicated_messages(cx: &mut Context) {
    sweep(cx, 5, |t| {
        let n = t.n;
        t.set_duplication(0.5);
        for round in 0..5 {
            let c = t.random_command();
            t.one(c, n, true);
            let leader = t.check_one_leader();
            let victim = if round % 2 == 0 {
                leader
            } else {
                (leader + 1) % n
            };
            t.disconnect(victim);
            for _ in 0..3 {
                let c = t.random_command();
                t.one(c, n - 1, true);
            }
            t.restart(victim);
            t.connect(victim);
        }
        let c = t.random_command();
        t.one(c, n, true);
    });
}

/// A follower's disk is wiped (amnesia) while a leader is stable, one at a
/// time: it must come back as an empty node, relearn the whole log (or the
/// snapshot, with compaction on) and apply it again in order. Raft does not
/// survive amnesia in general (a wiped node may vote twice in a term, or drop
/// an entry a majority needed), so it strikes only where that cannot matter.
fn amnesia(t: &mut Tester, snapshots: bool) {
    let n = t.n;
    if snapshots {
        t.snapshot_every(10);
    }
    for round in 0..4 {
        for _ in 0..7 {
            let c = t.random_command();
            t.one(c, n, true);
        }
        let leader = t.check_one_leader();
        let victim = (leader + 1 + round % (n - 1)) % n;
        t.restart_wiped(victim);
        t.connect(victim);
        let c = t.random_command();
        t.one(c, n, true);
    }
}

pub(super) fn amnesia_on_a_follower(cx: &mut Context) {
    sweep(cx, 5, |t| amnesia(t, false));
}

pub(super) fn amnesia_on_a_follower_with_snapshots(cx: &mut Context) {
    sweep(cx, 5, |t| {
        amnesia(t, true);
        require(t.snapshots_installed() > 0, LOG_COMPACTION, || {
            "no wiped node was caught up by a snapshot".to_string()
        });
    });
}

/// A leader that can hear but not speak is replaced, and steps down once it
/// hears of the new term; agreement resumes when its links heal.
pub(super) fn one_way_partition_of_the_leader(cx: &mut Context) {
    sweep(cx, 3, |t| {
        let n = t.n;
        t.one(json!(101), n, true);
        let leader1 = t.check_one_leader();
        let (term1, _) = t.get_state(leader1);
        t.cut_outgoing(leader1);
        t.sleep(2 * ELECTION_TIMEOUT);
        let (term, is_leader) = t.get_state(leader1);
        require(!is_leader && term > term1, LEADER_ELECTION, || {
            format!(
                "n{} still leads (term {term}, was {term1}, leader: {is_leader}) though nobody hears it",
                leader1 + 1
            )
        });
        t.one(json!(102), n - 1, true);
        t.heal();
        t.one(json!(103), n, true);
    });
}

/// A paused (SIGSTOP) leader is replaced; when it resumes, the messages that
/// waited for it are stale and it must not disturb the new leader's log.
pub(super) fn paused_leader(cx: &mut Context) {
    sweep(cx, 5, |t| {
        let n = t.n;
        t.one(json!(101), n, true);
        let leader1 = t.check_one_leader();
        t.pause(leader1);
        t.one(json!(102), n - 1, true);
        t.sleep(ELECTION_TIMEOUT);
        t.one(json!(103), n - 1, true);
        t.resume(leader1);
        t.one(json!(104), n, true);
        t.check_one_leader();
    });
}

/// Followers restarted under a healthy leader, eight times: each must wait out an
/// election timeout of its own before it campaigns, and the leader's heartbeats reach
/// it first. A node that takes its election deadline from before the restart (a timer
/// never started again, a time of the last heartbeat read as zero) campaigns at once
/// and deposes the leader on every restart. The term may change in two of the eight
/// (a heartbeat can be late on a loaded machine); more is no accident.
pub(super) fn restarted_followers_leave_the_leader_be(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one_random(n);
    let mut changed = Vec::new();
    for round in 0..8 {
        let leader = t.check_one_leader();
        let term = t.check_terms();
        let follower = (leader + 1 + round % 2) % n;
        t.crash(follower);
        t.sleep(100 * MS);
        t.restart(follower);
        t.connect(follower);
        t.sleep(ELECTION_TIMEOUT);
        t.one_random(n);
        let after = t.check_terms();
        if after != term {
            changed.push(format!(
                "restart {} of n{}: term {term} -> {after}",
                round + 1,
                follower + 1
            ));
        }
    }
    require(changed.len() <= 2, LEADER_ELECTION, || {
        format!(
            "the term changed after {} of 8 restarts of a follower while the leader was \
             healthy and connected ({}): a restarted follower must hear the leader before \
             its election timeout runs out, counted from its restart",
            changed.len(),
            changed.join("; ")
        )
    });
}

/// 6.5840's speed test of KV on Raft (`TestSpeed4A`), a level down: commands one at a
/// time on a reliable network, each started on the leader once the one before is
/// applied there. The mean time from `start` to the leader applying the command must
/// be at most a third of 100 ms, the shortest heartbeat interval the protocol allows.
/// A leader that sends a new entry only with its next heartbeat takes an interval a
/// command (the acknowledgements of one command come back with a heartbeat, so the
/// next waits for the one after); it fails here, before a service on it fails its
/// own speed test.
pub(super) fn commands_commit_without_waiting_for_heartbeats(cx: &mut Context) {
    const COMMANDS: u64 = 100;
    const PER_COMMAND: u64 = 100 * MS / 3;
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one_random(n);
    let mut leader = t.check_one_leader();
    let mut done = 0;
    let mut took = 0;
    while done < COMMANDS {
        let command = t.random_command();
        let t0 = t.now();
        let (index, _, is_leader) = t.start(leader, command);
        if !is_leader {
            // Not this test's concern: the time from here on is a new leader's.
            leader = t.check_one_leader();
            continue;
        }
        require(
            t.run_until_applied(leader, index, 2_000 * MS),
            property::PROGRESS,
            || {
                format!(
                    "no progress: n{} did not apply index {index} within 2 s of starting it",
                    leader + 1
                )
            },
        );
        took += t.now() - t0;
        done += 1;
    }
    let mean = took / COMMANDS;
    require(mean <= PER_COMMAND, SPEED, || {
        format!(
            "{COMMANDS} commands, one at a time, took {:.1} ms each from start to the leader \
             applying them (at most {:.1} ms, a third of the 100 ms heartbeat interval): a \
             leader must send a new entry when it is started, not with its next heartbeat",
            mean as f64 / MS as f64,
            PER_COMMAND as f64 / MS as f64
        )
    });
}

/// Messages held back for up to seconds (6.5840's long reordering, on a network that
/// also loses and duplicates) while snapshots come every 3 entries from a log's first
/// entry on, and a follower falls behind and returns, again and again: an
/// AppendEntries from before a snapshot reaches a follower that has since taken or
/// installed it. Its entries up to the snapshot must be skipped and the rest kept at
/// their own indices, and its answer must claim no more than the follower holds; a
/// node that indexes its log from the wrong end, or dies of it, fails. The log is
/// short on purpose: early on, one message can hold more entries than the log has
/// before them.
pub(super) fn stale_appends_after_snapshots(cx: &mut Context) {
    sweep(cx, 3, |t| {
        let n = t.n;
        t.snapshot_every(3);
        t.set_unreliable(true);
        t.set_long_reordering();
        let mut leader = t.check_one_leader();
        for round in 0..6 {
            fall_behind_and_return(t, leader, (leader + 1 + round % 2) % n, 2..=8);
            let count = t.rng.gen_range(2..=8);
            t.start_random(leader, count);
            t.one_random(n);
            leader = t.check_one_leader();
        }
    });
}

/// An AppendEntries from early in the log, sent before the leader compacted, reaches
/// a follower the moment it has installed a snapshot and holds nothing after it,
/// and carries entries past the snapshot: the follower must skip the entries the
/// snapshot covers and keep the rest at their own indices (or refuse the message).
/// The long message is staged: with both followers cut off, the leader appends a
/// dozen commands it cannot commit; one follower returns and is sent them in one
/// repair, and the snapshot at entry 9 comes after. Then that follower's disk is
/// wiped, the leader sends it the snapshot, and every message between the nodes
/// since the follower's return is delivered again as soon as it reports the
/// snapshot installed, before the leader's next AppendEntries can reach it. Entries
/// kept at the wrong indices carry the leader's term, so the leader's next
/// AppendEntries finds no conflict and the follower applies the wrong commands.
/// Each seed runs twice: once with a command committed everywhere before the cut
/// (the repair starts after entry 1), once with the log empty until then (the
/// repair starts at the log's beginning, previous entry 0).
pub(super) fn stale_append_past_an_installed_snapshot(cx: &mut Context) {
    let count = super::sweep_count(cx.mode);
    let runs: Vec<(u64, u64)> = super::sweep_seeds(cx.seed, count)
        .into_iter()
        .flat_map(|seed| [(seed, 1), (seed, 0)])
        .collect();
    let shapes = std::cell::RefCell::new(Vec::new());
    super::sweep_over(
        cx,
        &runs,
        |&(seed, held)| {
            let before = if held == 0 { "nothing" } else { "a command" };
            format!("seed {seed}, {before} committed before the cut; alone: RAFT_SWEEP=1 with seed {seed}")
        },
        |cx, &(seed, held)| {
            let mut t = Tester::with_seed(cx, 3, seed);
            shapes
                .borrow_mut()
                .push(past_an_installed_snapshot(&mut t, held));
        },
    );
    cx.note(format!(
        "{} runs passed ({count} seeds, RAFT_SWEEP={count}); old messages between nodes \
         sent again at the install, per run: {:?}",
        runs.len(),
        shapes.into_inner()
    ));
}

/// One run of [`stale_append_past_an_installed_snapshot`] with `held` commands (0 or
/// 1) committed everywhere first; returns how many old messages went again.
fn past_an_installed_snapshot(t: &mut Tester, held: u64) -> u64 {
    const BURST: u64 = 12;
    let n = t.n;
    t.snapshot_every(10);
    if held > 0 {
        t.one_random(n);
    }
    let leader = t.check_one_leader();
    let (follower, other) = repair_in_one_message(t, leader, BURST, held + BURST);
    t.connect(other);
    t.one_random(n);
    t.restart_wiped(follower);
    t.connect(follower);
    require_installed(t, follower);
    let replayed = t.replay_peer_messages(0);
    for _ in 0..3 {
        t.one_random(n);
    }
    replayed
}

/// An AppendEntries all of whose entries a snapshot covers, sent before the leader
/// compacted, reaches a follower that has since installed that snapshot and holds
/// nothing after it, while the leader holds many entries more that no majority has:
/// the follower's answer must claim no more than the snapshot (it holds nothing
/// else), or the leader counts the follower among those that hold entries it never
/// got and commits them. The long message is staged as in
/// `stale_append_past_an_installed_snapshot`: after a few commands everyone holds,
/// both followers are cut off while the leader appends commands up to the index at
/// which the nodes snapshot; one follower returns and is sent them in one repair.
/// The messages between the nodes are kept from its return to its applying them,
/// no longer. Then that follower is cut off again while the leader appends twice as
/// many commands as the snapshot holds, its disk is wiped, and it is sent the
/// snapshot; the kept messages are delivered again the moment it reports the
/// snapshot installed, and the leader's messages to it are cut from then on (its
/// answers still arrive). A leader that commits now on the follower's word applies
/// entries nobody else holds; it crashes, and the two others, which never had them,
/// elect a leader that commits other commands at the same indices.
pub(super) fn stale_append_covered_by_an_installed_snapshot(cx: &mut Context) {
    const SNAPSHOT_EVERY: u64 = 10;
    sweep(cx, 3, |t| {
        let n = t.n;
        t.snapshot_every(SNAPSHOT_EVERY);
        let mut held = 0;
        for _ in 0..3 {
            held = t.one_random(n);
        }
        // The first index the nodes snapshot at (one before a multiple of
        // SNAPSHOT_EVERY) that leaves 3 entries or more after what everyone holds.
        let snapshot = (held + 4).next_multiple_of(SNAPSHOT_EVERY) - 1;
        let leader = t.check_one_leader();
        let (follower, other) = repair_in_one_message(t, leader, snapshot - held, snapshot);
        t.stop_recording_peer_messages();
        t.disconnect(follower);
        t.start_random(leader, 2 * snapshot);
        t.restart_wiped(follower);
        // The follower's answers take longer than its report to the tester, so the
        // leader's messages to it are cut before it hears of the install.
        t.slow_link(follower, leader, 50 * MS);
        t.connect(follower);
        require_installed(t, follower);
        t.replay_peer_messages(0);
        t.cut(leader, follower);
        // Nothing past the snapshot may commit now: the leader holds it alone. A
        // leader that took a false answer commits within a round trip or two.
        t.run_until_applied(leader, snapshot + 1, ELECTION_TIMEOUT / 2);
        t.crash(leader);
        t.heal();
        t.connect(other);
        t.one_random(n - 1);
        t.restart(leader);
        t.connect(leader);
        t.one_random(n);
    });
}

/// Stages a long AppendEntries: both followers of `leader` are cut off while it
/// appends `burst` commands it cannot commit, the network starts keeping the
/// messages between nodes, and one follower returns, to be repaired with the whole
/// burst in one message (a leader sends each entry alone while a follower is away).
/// Returns that follower and the other, once the follower has applied entry `last`.
fn repair_in_one_message(t: &mut Tester, leader: usize, burst: u64, last: u64) -> (usize, usize) {
    let n = t.n;
    let (follower, other) = ((leader + 1) % n, (leader + 2) % n);
    t.disconnect(follower);
    t.disconnect(other);
    t.start_random(leader, burst);
    // Kept from here on, not before: the leader's one-entry AppendEntries of the
    // cut-off time, heard again first, would give the follower the entries after the
    // snapshot before the long one arrives.
    t.record_peer_messages();
    t.connect(follower);
    let caught_up = t.run_until_applied(follower, last, 2 * ELECTION_TIMEOUT);
    require(caught_up, property::PROGRESS, || {
        format!(
            "n{} did not apply entry {last} within 2 s of returning to n{}, which had \
             started it with the other follower cut off",
            follower + 1,
            leader + 1
        )
    });
    (follower, other)
}

/// Waits for `follower`, wiped, to report a snapshot installed: its leader has
/// compacted past everything it holds.
fn require_installed(t: &mut Tester, follower: usize) {
    let installed = t.run_until_installed(follower, 2 * ELECTION_TIMEOUT);
    require(installed, LOG_COMPACTION, || {
        format!(
            "n{}, wiped, reported no snapshot installed within 2 s: the leader had \
             compacted its log past what the wiped node holds",
            follower + 1
        )
    });
}

/// `follower` is cut off while a burst of `burst` commands commits on `leader`
/// without it, then connected again: with snapshots on, it catches up from one.
fn fall_behind_and_return(
    t: &mut Tester,
    leader: usize,
    follower: usize,
    burst: std::ops::RangeInclusive<u64>,
) {
    let n = t.n;
    t.disconnect(follower);
    let count = t.rng.gen_range(burst);
    t.start_random(leader, count);
    t.one_random(n - 1);
    t.connect(follower);
}

/// Old messages heard again. The harness keeps a copy of every message between nodes
/// (delivered, lost or cut by a partition) and sends them all again, in bursts
/// (`Fault::Replay`): while a follower that fell behind catches up from a snapshot,
/// while a deposed leader returns, and once the cluster is whole and settled. An
/// asynchronous network may deliver any message again however late, and nothing in
/// Raft dates a message but its term, so a node must take an old AppendEntries,
/// InstallSnapshot, vote or answer for what it is: entries a snapshot covers skipped
/// and the rest kept at their own indices, a snapshot or an AppendEntries of an
/// earlier term refused, a vote of a finished election ignored. Safety is checked
/// throughout; the burst to the settled cluster may not change the term (no message
/// of an earlier term, or of an earlier moment of this one, may depose a healthy
/// leader); and when the leader crashes in a last burst, the next one must hold
/// every entry applied before (an old AppendEntries must not cut a log it extends).
pub(super) fn replayed_messages(cx: &mut Context) {
    let counts = std::cell::RefCell::new(Vec::new());
    sweep(cx, 3, |t| {
        let n = t.n;
        t.snapshot_every(3);
        t.record_peer_messages();
        let mut leader = t.check_one_leader();
        // Each node falls behind (and is sent a snapshot) at least once, each time in
        // a term that a later round ends: so whichever node leads the settled cluster
        // has an InstallSnapshot of an earlier term among the copies it is sent.
        let mut behind = vec![0usize; n];
        let mut round = 0;
        while round < 4 || (behind.contains(&0) && round < 4 * n) {
            // The other nodes, starting from one or the other as rounds go; the
            // first of those behind the fewest times.
            let follower = (0..n - 1)
                .map(|k| (leader + 1 + (k + round) % (n - 1)) % n)
                .min_by_key(|&i| behind[i])
                .expect("a follower");
            behind[follower] += 1;
            round += 1;
            fall_behind_and_return(t, leader, follower, 4..=9);
            t.replay_peer_messages(300 * MS);
            t.one_random(n);
            t.disconnect(leader);
            t.check_one_leader();
            t.one_random(n - 1);
            t.connect(leader);
            t.replay_peer_messages(300 * MS);
            t.one_random(n);
            leader = t.check_one_leader();
        }
        t.sleep(ELECTION_TIMEOUT);
        let term = t.check_terms();
        let last = t.replay_peer_messages(ELECTION_TIMEOUT);
        counts.borrow_mut().push((round, last));
        for _ in 0..5 {
            t.one_random(n);
        }
        t.sleep(ELECTION_TIMEOUT);
        t.one_random(n);
        let after = t.check_terms();
        require(after == term, LEADER_ELECTION, || {
            format!(
                "the term went from {term} to {after} while old messages between the \
                 nodes were delivered again to a whole, settled cluster: a message of an \
                 earlier term, or from earlier in this one, must not depose the leader"
            )
        });
        // Copies once more, and the leader crashes while they arrive. Snapshots stop
        // first, so the followers' logs grow and an old AppendEntries of this term
        // has entries after it to cut: only a conflict may truncate a log, or
        // entries the leader committed on a follower's acknowledgement are gone
        // from it, and the next leader, lacking them, puts new commands at their
        // indices.
        t.snapshot_every(0);
        for _ in 0..10 {
            t.one_random(n);
        }
        let old = t.check_one_leader();
        let (old_term, _) = t.get_state(old);
        t.replay_peer_messages(2 * ELECTION_TIMEOUT);
        t.one_random(n);
        t.crash(old);
        let committed = t.last_applied_anywhere();
        let next = t.check_one_leader();
        let command = t.random_command();
        let (index, term, is_leader) = t.start(next, command);
        require(
            !is_leader || term <= old_term || index > committed,
            STATE_MACHINE_SAFETY,
            || {
                format!(
                    "after n{} (leader of term {old_term}) crashed, n{} leads term {term} and \
                     put a new command at index {index}, but entries up to {committed} \
                     were committed and applied: a leader's log must hold every entry \
                     committed before its term (Leader Completeness). Old AppendEntries \
                     had just been delivered again; one that a follower's log already \
                     holds and extends must not cut the entries after it",
                    old + 1,
                    next + 1
                )
            },
        );
        t.one_random(n - 1);
        t.restart(old);
        t.connect(old);
        t.one_random(n);
    });
    let (rounds, copies): (Vec<usize>, Vec<u64>) = counts.into_inner().into_iter().unzip();
    cx.note(format!(
        "rounds of a follower falling behind, per run: {rounds:?}; old messages between \
         nodes sent again to the settled cluster, per run: {copies:?}"
    ));
}
