//! 3A: leader election.

use rand::Rng;

use super::{require, Tester, ELECTION_TIMEOUT, LEADER_ELECTION, MS};
use crate::suite::Context;

pub(super) fn initial_election(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    t.check_one_leader();
    t.sleep(50 * MS);
    let term1 = t.check_terms();
    require(term1 >= 1, LEADER_ELECTION, || {
        format!("term is {term1} after an election, but should be at least 1")
    });
    t.sleep(2 * ELECTION_TIMEOUT);
    let term2 = t.check_terms();
    if term1 != term2 {
        cx.note(format!(
            "warning: the term changed from {term1} to {term2} even though there were no failures"
        ));
    }
    t.check_one_leader();
}

pub(super) fn reelection(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    let leader1 = t.check_one_leader();
    // If the leader disconnects, a new one should be elected.
    t.disconnect(leader1);
    t.check_one_leader();
    // The old leader rejoining must not disturb the new one.
    t.connect(leader1);
    let leader2 = t.check_one_leader();
    // Without a quorum, no new leader.
    t.disconnect(leader2);
    t.disconnect((leader2 + 1) % n);
    t.sleep(2 * ELECTION_TIMEOUT);
    t.check_no_leader();
    // With a quorum again, a leader.
    t.connect((leader2 + 1) % n);
    t.check_one_leader();
    t.connect(leader2);
    t.check_one_leader();
}

pub(super) fn many_elections(cx: &mut Context) {
    let mut t = Tester::new(cx, 7);
    t.check_one_leader();
    for _ in 0..10 {
        let i1 = t.rng.gen_range(0..t.n);
        let i2 = t.rng.gen_range(0..t.n);
        let i3 = t.rng.gen_range(0..t.n);
        t.disconnect(i1);
        t.disconnect(i2);
        t.disconnect(i3);
        // Either the current leader is alive or the rest elect one.
        t.check_one_leader();
        t.connect(i1);
        t.connect(i2);
        t.connect(i3);
    }
    t.check_one_leader();
}
