//! 3D: log compaction. The tester is the service and asks every node to snapshot
//! after each 10 entries; Raft state (without the snapshot) must stay small.

use rand::Rng;

use super::{require, Tester, LOG_COMPACTION, PERSISTENCE};
use crate::suite::Context;

const SNAPSHOT_INTERVAL: u64 = 10;
/// 6.5840's `MAXLOGSIZE`.
const MAX_LOG_SIZE: u64 = 2000;

fn tester(cx: &Context, n: usize, reliable: bool) -> Tester {
    let mut t = Tester::new(cx, n);
    t.snapshot_every(SNAPSHOT_INTERVAL);
    if !reliable {
        t.set_unreliable(true);
    }
    t
}

/// 6.5840's `snapcommon`.
fn snap_common(cx: &Context, disconnect: bool, reliable: bool, crash: bool) -> Tester {
    let iters = 30;
    let mut t = tester(cx, 3, reliable);
    let n = t.n;
    let c = t.random_command();
    t.one(c, n, true);
    let mut leader1 = t.check_one_leader();
    for i in 0..iters {
        let (mut victim, mut sender) = ((leader1 + 1) % n, leader1);
        if i % 3 == 1 {
            sender = (leader1 + 1) % n;
            victim = leader1;
        }
        if disconnect {
            t.disconnect(victim);
            let c = t.random_command();
            t.one(c, n - 1, true);
        }
        if crash {
            t.crash(victim);
            let c = t.random_command();
            t.one(c, n - 1, true);
        }
        // Perhaps enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + t.rng.gen_range(0..SNAPSHOT_INTERVAL);
        t.start_random(sender, nn);
        let c = t.random_command();
        if !disconnect && !crash {
            // Every follower caught up, so no InstallSnapshot is needed.
            t.one(c, n, true);
        } else {
            t.one(c, n - 1, true);
        }
        let size = t.log_size();
        require(size < MAX_LOG_SIZE, LOG_COMPACTION, || {
            format!("log size too large: {size} bytes of Raft state (less than {MAX_LOG_SIZE} with a snapshot every {SNAPSHOT_INTERVAL} entries)")
        });
        t.require_disk_compacted(MAX_LOG_SIZE);
        if disconnect {
            // A follower that may be behind and need a snapshot to catch up.
            t.connect(victim);
            let c = t.random_command();
            t.one(c, n, true);
            leader1 = t.check_one_leader();
        }
        if crash {
            t.restart(victim);
            t.connect(victim);
            let c = t.random_command();
            t.one(c, n, true);
            leader1 = t.check_one_leader();
        }
    }
    t
}

pub(super) fn snapshot_basic(cx: &mut Context) {
    snap_common(cx, false, true, false);
}

/// `snap_common` in a variant where a lagging node must be caught up: it
/// must have installed a snapshot at least once.
fn snap_install(cx: &Context, disconnect: bool, reliable: bool, crash: bool) {
    let t = snap_common(cx, disconnect, reliable, crash);
    require(t.snapshots_installed() > 0, LOG_COMPACTION, || {
        "no snapshot was ever installed, though a node fell behind the leader's snapshot"
            .to_string()
    });
}

pub(super) fn snapshot_install(cx: &mut Context) {
    snap_install(cx, true, true, false);
}

pub(super) fn snapshot_install_unreliable(cx: &mut Context) {
    snap_install(cx, true, false, false);
}

pub(super) fn snapshot_install_crash(cx: &mut Context) {
    snap_install(cx, false, true, true);
}

pub(super) fn snapshot_install_unreliable_crash(cx: &mut Context) {
    snap_install(cx, false, false, true);
}

/// Crash and restart all servers repeatedly; the log index keeps growing.
pub(super) fn snapshot_all_crash(cx: &mut Context) {
    let mut t = tester(cx, 3, true);
    let n = t.n;
    let c = t.random_command();
    t.one(c, n, true);
    for _ in 0..5 {
        let nn = SNAPSHOT_INTERVAL / 2 + t.rng.gen_range(0..SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let c = t.random_command();
            t.one(c, n, true);
        }
        let c = t.random_command();
        let index1 = t.one(c, n, true);
        for i in 0..n {
            t.crash(i);
        }
        for i in 0..n {
            t.restart(i);
            t.connect(i);
        }
        let c = t.random_command();
        let index2 = t.one(c, n, true);
        require(index2 > index1, PERSISTENCE, || {
            format!("the log index went back from {index1} to {index2} after every node restarted")
        });
    }
}

/// A node restarted from a snapshot serves from it at once, and again after a
/// second restart with one more entry persisted.
pub(super) fn snapshot_init(cx: &mut Context) {
    let mut t = tester(cx, 3, true);
    let n = t.n;
    let c = t.random_command();
    t.one(c, n, true);
    // Enough to make a snapshot.
    for _ in 0..=SNAPSHOT_INTERVAL {
        let c = t.random_command();
        t.one(c, n, true);
    }
    for _ in 0..2 {
        for i in 0..n {
            t.crash(i);
        }
        for i in 0..n {
            t.restart(i);
            t.connect(i);
        }
        // One op, to get something written back to persistent storage.
        let c = t.random_command();
        t.one(c, n, true);
    }
    require(t.snapshots_installed() >= n as u64, LOG_COMPACTION, || {
        format!(
            "restarted nodes did not report the snapshot they restart from ({} snapshot reports, at least {n} expected)",
            t.snapshots_installed()
        )
    });
}
