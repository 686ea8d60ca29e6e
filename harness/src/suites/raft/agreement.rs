//! 3B: log replication.

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::json;

use super::{
    require, Tester, AGREEMENT, ELECTION_TIMEOUT, LEADER_ELECTION, MESSAGE_EFFICIENCY, MS,
};
use crate::suite::Context;

/// Nothing commits without a majority: `index` must not have been applied anywhere.
fn nothing_committed(t: &Tester, index: u64) {
    let (nd, _) = t.n_committed(index);
    require(nd == 0, AGREEMENT, || {
        format!("{nd} nodes applied index {index}, but no majority was connected")
    });
}

/// `Start` on the leader gave the index the test expects.
fn started_at(ok: bool, index: u64, expected: u64) {
    require(ok, LEADER_ELECTION, || {
        "the leader rejected start()".to_string()
    });
    require(index == expected, AGREEMENT, || {
        format!("start() gave index {index}, expected {expected}")
    });
}

pub(super) fn basic_agree(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    for index in 1..=3u64 {
        let (nd, _) = t.n_committed(index);
        require(nd == 0, AGREEMENT, || {
            format!("{nd} nodes applied index {index} before start()")
        });
        let xindex = t.one(json!(index * 100), n, false);
        require(xindex == index, AGREEMENT, || {
            format!("got index {xindex} but expected {index}")
        });
    }
}

/// Each command is sent to each peer once: bytes between nodes stay within 6.5840's
/// bound of servers x payload + 50,000.
pub(super) fn rpc_bytes(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one(json!(99), n, false);
    let (_, bytes0) = t.peer_traffic();
    let mut sent = 0u64;
    for index in 2..12u64 {
        let cmd: String = (&mut t.rng)
            .sample_iter(Alphanumeric)
            .take(5000)
            .map(char::from)
            .collect();
        let xindex = t.one(json!(cmd), n, false);
        require(xindex == index, AGREEMENT, || {
            format!("got index {xindex} but expected {index}")
        });
        sent += cmd.len() as u64;
    }
    let (_, bytes1) = t.peer_traffic();
    let got = bytes1 - bytes0;
    let expected = n as u64 * sent;
    cx.note(format!("payload {sent} bytes, peer traffic {got} bytes"));
    require(got <= expected + 50_000, MESSAGE_EFFICIENCY, || {
        format!("too many RPC bytes: {got} between nodes for a payload of {sent} (at most {expected} + 50,000)")
    });
}

pub(super) fn follower_failure(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one(json!(101), n, false);
    let leader1 = t.check_one_leader();
    t.disconnect((leader1 + 1) % n);
    // The leader and the remaining follower still agree.
    t.one(json!(102), n - 1, false);
    t.sleep(ELECTION_TIMEOUT);
    t.one(json!(103), n - 1, false);
    // Both followers gone: nothing commits.
    let leader2 = t.check_one_leader();
    t.disconnect((leader2 + 1) % n);
    t.disconnect((leader2 + 2) % n);
    let (index, _, ok) = t.start(leader2, json!(104));
    started_at(ok, index, 4);
    t.sleep(2 * ELECTION_TIMEOUT);
    nothing_committed(&t, index);
}

pub(super) fn leader_failure(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one(json!(101), n, false);
    let leader1 = t.check_one_leader();
    t.disconnect(leader1);
    // The remaining followers elect a new leader.
    t.one(json!(102), n - 1, false);
    t.sleep(ELECTION_TIMEOUT);
    t.one(json!(103), n - 1, false);
    let leader2 = t.check_one_leader();
    t.disconnect(leader2);
    // With only one node connected, nothing commits.
    let all = (0..n).map(|i| (i, json!(104))).collect();
    t.start_many(all);
    t.sleep(2 * ELECTION_TIMEOUT);
    nothing_committed(&t, 4);
}

pub(super) fn fail_agree(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one(json!(101), n, false);
    let leader = t.check_one_leader();
    t.disconnect((leader + 1) % n);
    t.one(json!(102), n - 1, false);
    t.one(json!(103), n - 1, false);
    t.sleep(ELECTION_TIMEOUT);
    t.one(json!(104), n - 1, false);
    t.one(json!(105), n - 1, false);
    // The follower rejoins and catches up.
    t.connect((leader + 1) % n);
    t.one(json!(106), n, true);
    t.sleep(ELECTION_TIMEOUT);
    t.one(json!(107), n, true);
}

pub(super) fn fail_no_agree(cx: &mut Context) {
    let mut t = Tester::new(cx, 5);
    let n = t.n;
    t.one(json!(10), n, false);
    // Three of five followers gone.
    let leader = t.check_one_leader();
    for k in 1..=3 {
        t.disconnect((leader + k) % n);
    }
    let (index, _, ok) = t.start(leader, json!(20));
    started_at(ok, index, 2);
    t.sleep(2 * ELECTION_TIMEOUT);
    nothing_committed(&t, index);
    for k in 1..=3 {
        t.connect((leader + k) % n);
    }
    // The disconnected majority may have chosen a leader among themselves,
    // forgetting index 2; or the old leader may still be leader.
    let leader2 = t.check_one_leader();
    let (index2, _, ok2) = t.start(leader2, json!(30));
    require(ok2, LEADER_ELECTION, || {
        "the new leader rejected start()".to_string()
    });
    require((2..=3).contains(&index2), AGREEMENT, || {
        format!("start() gave index {index2}, expected 2 or 3")
    });
    t.one(json!(1000), n, true);
}

pub(super) fn concurrent_starts(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            // Give the cluster a chance to settle.
            t.sleep(3_000 * MS);
        }
        let leader = t.check_one_leader();
        let (_, term, ok) = t.start(leader, json!(1));
        if !ok {
            continue;
        }
        let iters = 5u64;
        let starts = (0..iters).map(|i| (leader, json!(100 + i))).collect();
        let mut indices = Vec::new();
        for (index, term1, ok) in t.start_many(starts) {
            if term1 != term || !ok {
                continue 'tries;
            }
            indices.push(index);
        }
        for j in 0..n {
            if t.get_state(j).0 != term {
                continue 'tries;
            }
        }
        let mut cmds = Vec::new();
        for index in indices {
            match t.wait(index, n, Some(term)) {
                Some(cmd) => cmds.push(cmd),
                None => continue 'tries,
            }
        }
        for i in 0..iters {
            let x = json!(100 + i);
            require(cmds.contains(&x), AGREEMENT, || {
                format!("command {x} started concurrently is missing from the committed {cmds:?}")
            });
        }
        success = true;
        break;
    }
    require(success, LEADER_ELECTION, || {
        "the term changed too often: 5 attempts at concurrent starts in one term all failed"
            .to_string()
    });
}

pub(super) fn rejoin(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n;
    t.one(json!(101), n, true);
    // The leader, partitioned, takes entries it cannot commit.
    let leader1 = t.check_one_leader();
    t.disconnect(leader1);
    t.start_many(vec![
        (leader1, json!(102)),
        (leader1, json!(103)),
        (leader1, json!(104)),
    ]);
    // A new leader commits index 2 differently.
    t.one(json!(103), 2, true);
    let leader2 = t.check_one_leader();
    t.disconnect(leader2);
    // The old leader returns and must give up its uncommitted entries.
    t.connect(leader1);
    t.one(json!(104), 2, true);
    t.connect(leader2);
    t.one(json!(105), n, true);
}

/// The leader backs up quickly over long stretches of incorrect follower logs.
pub(super) fn backup(cx: &mut Context) {
    let mut t = Tester::new(cx, 5);
    let n = t.n;
    let c = t.random_command();
    t.one(c, n, true);
    // The leader and one follower end up in a minority.
    let leader1 = t.check_one_leader();
    for k in 2..=4 {
        t.disconnect((leader1 + k) % n);
    }
    // Many commands that will not commit.
    t.start_random(leader1, 50);
    t.sleep(ELECTION_TIMEOUT / 2);
    t.disconnect(leader1);
    t.disconnect((leader1 + 1) % n);
    // The other partition commits many.
    for k in 2..=4 {
        t.connect((leader1 + k) % n);
    }
    for _ in 0..50 {
        let c = t.random_command();
        t.one(c, 3, true);
    }
    // Now another partitioned leader and one follower.
    let leader2 = t.check_one_leader();
    let mut other = (leader1 + 2) % n;
    if leader2 == other {
        other = (leader2 + 1) % n;
    }
    t.disconnect(other);
    // More commands that will not commit.
    t.start_random(leader2, 50);
    t.sleep(ELECTION_TIMEOUT / 2);
    // Bring the original leader back to life.
    for i in 0..n {
        t.disconnect(i);
    }
    t.connect(leader1);
    t.connect((leader1 + 1) % n);
    t.connect(other);
    for _ in 0..50 {
        let c = t.random_command();
        t.one(c, 3, true);
    }
    // Now everyone.
    for i in 0..n {
        t.connect(i);
    }
    let c = t.random_command();
    t.one(c, n, true);
}

/// Not too many messages: to elect, to agree, and while idle (6.5840's RPC
/// thresholds, doubled for replies).
pub(super) fn count(cx: &mut Context) {
    let mut t = Tester::new(cx, 3);
    let n = t.n as u64;
    t.check_one_leader();
    let (total1, _) = t.peer_traffic();
    require((1..=2 * 30).contains(&total1), MESSAGE_EFFICIENCY, || {
        format!("too many or few messages ({total1}) to elect the initial leader (1 to 60)")
    });
    let mut success = false;
    let mut total2 = 0;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            t.sleep(3_000 * MS);
        }
        let leader = t.check_one_leader();
        let (total1, _) = t.peer_traffic();
        let iters = 10u64;
        let (starti, term, ok) = t.start(leader, json!(1));
        if !ok {
            continue;
        }
        let mut cmds = Vec::new();
        for i in 1..iters + 2 {
            let x = t.random_command();
            cmds.push(x.clone());
            let (index1, term1, ok) = t.start(leader, x);
            if term1 != term || !ok {
                continue 'tries;
            }
            require(index1 == starti + i, AGREEMENT, || {
                format!("start() gave index {index1}, expected {}", starti + i)
            });
        }
        for i in 1..iters + 1 {
            match t.wait(starti + i, n as usize, Some(term)) {
                None => continue 'tries,
                Some(cmd) => {
                    let want = &cmds[i as usize - 1];
                    require(cmd == *want, AGREEMENT, || {
                        format!(
                            "wrong value committed at index {}: {cmd}, started {want}",
                            starti + i
                        )
                    });
                }
            }
        }
        for j in 0..t.n {
            if t.get_state(j).0 != term {
                continue 'tries;
            }
        }
        let (total, _) = t.peer_traffic();
        total2 = total;
        let used = total2 - total1;
        cx.note(format!("{used} messages for {} agreements", iters + 1));
        let limit = 2 * (iters + 1 + 3) * 3;
        require(used <= limit, MESSAGE_EFFICIENCY, || {
            format!("too many messages ({used}) for {iters} entries (at most {limit})")
        });
        success = true;
        break;
    }
    require(success, LEADER_ELECTION, || {
        "the term changed too often: 5 attempts at agreement in one term all failed".to_string()
    });
    t.sleep(ELECTION_TIMEOUT);
    let (total3, _) = t.peer_traffic();
    let idle = total3 - total2;
    cx.note(format!("{idle} messages in 1 s idle"));
    require(idle <= 2 * 3 * 20, MESSAGE_EFFICIENCY, || {
        format!("too many messages ({idle}) for 1 second of idleness (at most 120)")
    });
}
