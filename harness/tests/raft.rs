//! Conformance tests of Raft (system 7), after 6.5840's Raft lab tests 3A-3D, with
//! its thresholds, and tests beyond them.
//!
//! The implementation is `RAFT_IMPL` (any command speaking `specs::raft_protocol`), by
//! default our `raft`. Tests run in simulated time (`HARNESS_TIME=real` for the wall
//! clock); every test prints its seed and `SEED=<n>` replays it. Safety (one leader
//! per term, in-order application, no two nodes applying different commands at an
//! index) is checked on every report the nodes send; see `raft/tester.rs`.
//!
//! 6.5840 counts RPCs; the harness sees messages, so an RPC is a request and its
//! reply and the RPC thresholds are doubled into message thresholds.

#[path = "raft/tester.rs"]
mod tester;

/// Every test is under `raft::`, so `-E 'test(/^raft::/)'` selects the system.
mod raft {
    pub use super::tester::{Tester, ELECTION_TIMEOUT, MS};
    use harness::cluster::Durability;
    use serde_json::{json, Value};

    /// 3A: leader election.
    mod election {
        use super::*;

        #[test]
        fn initial_election() {
            let mut t = Tester::new(3);
            t.check_one_leader();
            t.sleep(50 * MS);
            let term1 = t.check_terms();
            assert!(term1 >= 1, "term is {term1}, but should be at least 1");
            t.sleep(2 * ELECTION_TIMEOUT);
            let term2 = t.check_terms();
            if term1 != term2 {
                eprintln!("warning: term changed even though there were no failures");
            }
            t.check_one_leader();
        }

        #[test]
        fn reelection() {
            let mut t = Tester::new(3);
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

        #[test]
        fn many_elections() {
            use rand::Rng;
            let mut t = Tester::new(7);
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
    }

    /// 3B: log replication.
    mod agreement {
        use super::*;

        #[test]
        fn basic_agree() {
            let mut t = Tester::new(3);
            let n = t.n;
            for index in 1..=3u64 {
                let (nd, _) = t.n_committed(index);
                assert_eq!(nd, 0, "some have committed before start()");
                let xindex = t.one(json!(index * 100), n, false);
                assert_eq!(xindex, index, "got index {xindex} but expected {index}");
            }
        }

        /// Each command is sent to each peer once: bytes between nodes stay within
        /// 6.5840's bound of servers x payload + 50,000.
        #[test]
        fn rpc_bytes() {
            use rand::distributions::Alphanumeric;
            use rand::Rng;
            let mut t = Tester::new(3);
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
                assert_eq!(xindex, index, "got index {xindex} but expected {index}");
                sent += cmd.len() as u64;
            }
            let (_, bytes1) = t.peer_traffic();
            let got = bytes1 - bytes0;
            let expected = n as u64 * sent;
            eprintln!("payload {sent} bytes, peer traffic {got} bytes");
            assert!(
                got <= expected + 50_000,
                "too many RPC bytes; got {got}, expected {expected}"
            );
        }

        #[test]
        fn follower_failure() {
            let mut t = Tester::new(3);
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
            assert!(ok, "leader rejected start()");
            assert_eq!(index, 4, "expected index 4, got {index}");
            t.sleep(2 * ELECTION_TIMEOUT);
            let (nd, _) = t.n_committed(index);
            assert_eq!(nd, 0, "{nd} committed but no majority");
        }

        #[test]
        fn leader_failure() {
            let mut t = Tester::new(3);
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
            let (nd, _) = t.n_committed(4);
            assert_eq!(nd, 0, "{nd} committed but no majority");
        }

        #[test]
        fn fail_agree() {
            let mut t = Tester::new(3);
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

        #[test]
        fn fail_no_agree() {
            let mut t = Tester::new(5);
            let n = t.n;
            t.one(json!(10), n, false);
            // Three of five followers gone.
            let leader = t.check_one_leader();
            for k in 1..=3 {
                t.disconnect((leader + k) % n);
            }
            let (index, _, ok) = t.start(leader, json!(20));
            assert!(ok, "leader rejected start()");
            assert_eq!(index, 2, "expected index 2, got {index}");
            t.sleep(2 * ELECTION_TIMEOUT);
            let (nd, _) = t.n_committed(index);
            assert_eq!(nd, 0, "{nd} committed but no majority");
            for k in 1..=3 {
                t.connect((leader + k) % n);
            }
            // The disconnected majority may have chosen a leader among themselves,
            // forgetting index 2; or the old leader may still be leader.
            let leader2 = t.check_one_leader();
            let (index2, _, ok2) = t.start(leader2, json!(30));
            assert!(ok2, "leader2 rejected start()");
            assert!((2..=3).contains(&index2), "unexpected index {index2}");
            t.one(json!(1000), n, true);
        }

        #[test]
        fn concurrent_starts() {
            let mut t = Tester::new(3);
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
                    assert!(cmds.contains(&x), "cmd {x} missing in {cmds:?}");
                }
                success = true;
                break;
            }
            assert!(success, "term changed too often");
        }

        #[test]
        fn rejoin() {
            let mut t = Tester::new(3);
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
        #[test]
        fn backup() {
            let mut t = Tester::new(5);
            let n = t.n;
            let c = t.random_command();
            t.one(c, n, true);
            // The leader and one follower end up in a minority.
            let leader1 = t.check_one_leader();
            for k in 2..=4 {
                t.disconnect((leader1 + k) % n);
            }
            // Many commands that will not commit.
            let lots = (0..50).map(|_| (leader1, t.random_command())).collect();
            t.start_many(lots);
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
            let lots = (0..50).map(|_| (leader2, t.random_command())).collect();
            t.start_many(lots);
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

        /// Not too many messages: to elect, to agree, and while idle (6.5840's
        /// RPC thresholds, doubled for replies).
        #[test]
        fn count() {
            let mut t = Tester::new(3);
            let n = t.n as u64;
            t.check_one_leader();
            let (total1, _) = t.peer_traffic();
            assert!(
                (1..=2 * 30).contains(&total1),
                "too many or few messages ({total1}) to elect initial leader"
            );
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
                    assert_eq!(index1, starti + i, "start() failed");
                }
                for i in 1..iters + 1 {
                    match t.wait(starti + i, n as usize, Some(term)) {
                        None => continue 'tries,
                        Some(cmd) => assert_eq!(cmd, cmds[i as usize - 1], "wrong value committed"),
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
                eprintln!("{used} messages for {} agreements", iters + 1);
                assert!(
                    used <= 2 * (iters + 1 + 3) * 3,
                    "too many messages ({used}) for {iters} entries"
                );
                success = true;
                break;
            }
            assert!(success, "term changed too often");
            t.sleep(ELECTION_TIMEOUT);
            let (total3, _) = t.peer_traffic();
            let idle = total3 - total2;
            eprintln!("{idle} messages in 1 s idle");
            assert!(
                idle <= 2 * 3 * 20,
                "too many messages ({idle}) for 1 second of idleness"
            );
        }
    }

    /// 3C: persistence (the reliable-network tests).
    mod persist {
        use super::*;

        #[test]
        fn persist1() {
            let mut t = Tester::new(3);
            let n = t.n;
            t.one(json!(11), n, true);
            // Crash and restart everyone.
            for i in 0..n {
                t.restart(i);
            }
            for i in 0..n {
                t.disconnect(i);
                t.connect(i);
            }
            t.one(json!(12), n, true);
            let leader1 = t.check_one_leader();
            t.disconnect(leader1);
            t.restart(leader1);
            t.connect(leader1);
            t.one(json!(13), n, true);
            let leader2 = t.check_one_leader();
            t.disconnect(leader2);
            t.one(json!(14), n - 1, true);
            t.restart(leader2);
            t.connect(leader2);
            // Wait for leader2 to join before killing i3.
            t.wait(4, n, None);
            let i3 = (t.check_one_leader() + 1) % n;
            t.disconnect(i3);
            t.one(json!(15), n - 1, true);
            t.restart(i3);
            t.connect(i3);
            t.one(json!(16), n, true);
        }

        #[test]
        fn persist2() {
            let mut t = Tester::new(5);
            let n = t.n;
            let mut index = 1;
            for _ in 0..5 {
                t.one(json!(10 + index), n, true);
                index += 1;
                let leader1 = t.check_one_leader();
                t.disconnect((leader1 + 1) % n);
                t.disconnect((leader1 + 2) % n);
                t.one(json!(10 + index), n - 2, true);
                index += 1;
                t.disconnect(leader1 % n);
                t.disconnect((leader1 + 3) % n);
                t.disconnect((leader1 + 4) % n);
                t.restart((leader1 + 1) % n);
                t.restart((leader1 + 2) % n);
                t.connect((leader1 + 1) % n);
                t.connect((leader1 + 2) % n);
                t.sleep(ELECTION_TIMEOUT);
                t.restart((leader1 + 3) % n);
                t.connect((leader1 + 3) % n);
                t.one(json!(10 + index), n - 2, true);
                index += 1;
                t.connect((leader1 + 4) % n);
                t.connect(leader1 % n);
            }
            t.one(json!(1000), n, true);
        }

        #[test]
        fn persist3() {
            let mut t = Tester::new(3);
            let n = t.n;
            t.one(json!(101), 3, true);
            let leader = t.check_one_leader();
            t.disconnect((leader + 2) % n);
            t.one(json!(102), 2, true);
            t.crash(leader % n);
            t.crash((leader + 1) % n);
            t.connect((leader + 2) % n);
            t.restart(leader % n);
            t.connect(leader % n);
            t.one(json!(103), 2, true);
            t.restart((leader + 1) % n);
            t.connect((leader + 1) % n);
            t.one(json!(104), n, true);
        }

        /// Leaders crash right after taking entries, over and over, so logs hold
        /// uncommitted entries of many terms: the Figure 8 situation, on a reliable
        /// network.
        #[test]
        fn figure_8() {
            use rand::Rng;
            let mut t = Tester::new(5);
            let n = t.n;
            let c = t.random_command();
            t.one(c, 1, true);
            let mut nup = n;
            for _ in 0..1000 {
                let alive: Vec<usize> = (0..n).filter(|&i| t.is_alive(i)).collect();
                let starts = alive.iter().map(|&i| (i, t.random_command())).collect();
                let mut leader = None;
                for (&i, (_, _, ok)) in alive.iter().zip(t.start_many(starts)) {
                    if ok {
                        leader = Some(i);
                    }
                }
                let ms = if t.rng.gen_range(0..1000) < 100 {
                    t.rng.gen_range(0..ELECTION_TIMEOUT / MS / 2)
                } else {
                    t.rng.gen_range(0..13)
                };
                t.sleep(ms * MS);
                if let Some(leader) = leader {
                    t.crash(leader);
                    nup -= 1;
                }
                if nup < 3 {
                    let s = t.rng.gen_range(0..n);
                    if !t.is_alive(s) {
                        t.restart(s);
                        t.connect(s);
                        nup += 1;
                    }
                }
            }
            for i in 0..n {
                if !t.is_alive(i) {
                    t.restart(i);
                    t.connect(i);
                }
            }
            let c = t.random_command();
            t.one(c, n, true);
        }
    }

    /// Power failures, beyond 6.5840's crashes (which lose only memory).
    mod power {
        use super::*;

        #[test]
        fn power_loss() {
            super::power_loss(&mut Tester::on_lazyfs(3));
        }
    }

    /// 3C: persistence on an unreliable network, and churn.
    mod persist_unreliable {
        use super::*;
        use rand::Rng;

        #[test]
        fn unreliable_agree() {
            let mut t = Tester::new(5);
            let n = t.n;
            t.set_unreliable(true);
            for iters in 1..50u64 {
                let batch = (0..4).map(|j| json!(100 * iters + j)).collect();
                t.one_concurrently(batch, 1);
                t.one(json!(iters), 1, true);
            }
            t.set_unreliable(false);
            t.one(json!(100), n, true);
        }

        #[test]
        fn figure_8_unreliable() {
            let mut t = Tester::new(5);
            let n = t.n;
            t.set_unreliable(true);
            let c = json!(t.rng.gen_range(0..10_000));
            t.one(c, 1, true);
            let mut nup = n;
            for iters in 0..1000 {
                if iters == 200 {
                    t.set_long_reordering();
                }
                let starts = (0..n)
                    .map(|i| (i, json!(t.rng.gen_range(0..10_000))))
                    .collect();
                let mut leader = None;
                for (i, (_, _, ok)) in t.start_many(starts).into_iter().enumerate() {
                    if ok && t.is_connected(i) {
                        leader = Some(i);
                    }
                }
                let ms = if t.rng.gen_range(0..1000) < 100 {
                    t.rng.gen_range(0..ELECTION_TIMEOUT / MS / 2)
                } else {
                    t.rng.gen_range(0..13)
                };
                t.sleep(ms * MS);
                if let Some(leader) = leader {
                    if t.rng.gen_range(0..1000) < ELECTION_TIMEOUT / MS / 2 {
                        t.disconnect(leader);
                        nup -= 1;
                    }
                }
                if nup < 3 {
                    let s = t.rng.gen_range(0..n);
                    if !t.is_connected(s) {
                        t.connect(s);
                        nup += 1;
                    }
                }
            }
            for i in 0..n {
                t.connect(i);
            }
            let c = json!(t.rng.gen_range(0..10_000));
            t.one(c, n, true);
        }

        /// One of 6.5840's churn clients: starts a random command on every running
        /// node, and if one leads, watches that index for a while; values it saw
        /// committed must survive everything that follows.
        struct ChurnClient {
            me: u64,
            next_at: u64,
            watching: Option<(u64, Value, usize)>,
            committed: Vec<Value>,
        }

        /// The waits between a churn client's checks of its index, in ms.
        const CHURN_WAITS: [u64; 5] = [10, 20, 50, 100, 200];

        impl ChurnClient {
            fn act(&mut self, t: &mut Tester) {
                let now = t.now();
                match self.watching.take() {
                    None => {
                        let x = t.random_command();
                        let running: Vec<usize> = (0..t.n).filter(|&i| t.is_alive(i)).collect();
                        let starts = running.iter().map(|&i| (i, x.clone())).collect();
                        let leader_index = t
                            .start_many(starts)
                            .into_iter()
                            .filter(|a| a.2)
                            .map(|a| a.0)
                            .next_back();
                        match leader_index {
                            Some(index) => {
                                self.watching = Some((index, x, 0));
                                self.next_at = now;
                            }
                            None => self.next_at = now + (79 + self.me * 17) * MS,
                        }
                    }
                    Some((index, x, k)) => {
                        let (nd, cmd) = t.n_committed(index);
                        if nd > 0 {
                            if cmd.as_ref() == Some(&x) {
                                self.committed.push(x);
                            }
                            self.next_at = now;
                        } else if k < CHURN_WAITS.len() {
                            self.watching = Some((index, x, k + 1));
                            self.next_at = now + CHURN_WAITS[k] * MS;
                        } else {
                            self.next_at = now;
                        }
                    }
                }
            }
        }

        /// Lets the clients act until `until` on the cluster's clock.
        fn run_clients(t: &mut Tester, clients: &mut [ChurnClient], until: u64) {
            loop {
                let (k, at) = clients
                    .iter()
                    .enumerate()
                    .map(|(k, c)| (k, c.next_at))
                    .min_by_key(|&(_, at)| at)
                    .expect("clients");
                let now = t.now();
                if at >= until {
                    if until > now {
                        t.sleep(until - now);
                    }
                    return;
                }
                if at > now {
                    t.sleep(at - now);
                }
                clients[k].act(t);
            }
        }

        /// 6.5840's `internalChurn`: nodes are cut off, reconnected, crashed and
        /// restarted at random while three clients keep starting commands; then
        /// everything heals and every value a client saw committed is in the log.
        fn churn(unreliable: bool) {
            let mut t = Tester::new(5);
            let n = t.n;
            if unreliable {
                t.set_unreliable(true);
            }
            let mut clients: Vec<ChurnClient> = (0..3)
                .map(|me| ChurnClient {
                    me,
                    next_at: 0,
                    watching: None,
                    committed: Vec::new(),
                })
                .collect();
            for _ in 0..20 {
                if t.rng.gen_range(0..1000) < 200 {
                    let i = t.rng.gen_range(0..n);
                    t.disconnect(i);
                }
                if t.rng.gen_range(0..1000) < 500 {
                    let i = t.rng.gen_range(0..n);
                    if !t.is_alive(i) {
                        t.restart(i);
                    }
                    t.connect(i);
                }
                if t.rng.gen_range(0..1000) < 200 {
                    let i = t.rng.gen_range(0..n);
                    if t.is_alive(i) {
                        t.crash(i);
                    }
                }
                let until = t.now() + ELECTION_TIMEOUT * 7 / 10;
                run_clients(&mut t, &mut clients, until);
            }
            t.sleep(ELECTION_TIMEOUT);
            t.set_unreliable(false);
            for i in 0..n {
                if !t.is_alive(i) {
                    t.restart(i);
                }
                t.connect(i);
            }
            t.sleep(ELECTION_TIMEOUT);
            let c = t.random_command();
            let last = t.one(c, n, true);
            let really: Vec<Value> = (1..=last)
                .map(|index| t.wait(index, n, None).expect("no term given"))
                .collect();
            let seen: Vec<Value> = clients.into_iter().flat_map(|c| c.committed).collect();
            eprintln!(
                "{} commands committed, {} seen by clients",
                last,
                seen.len()
            );
            for v in &seen {
                assert!(really.contains(v), "didn't find a value: {v}");
            }
        }

        #[test]
        fn reliable_churn() {
            churn(false);
        }

        #[test]
        fn unreliable_churn() {
            churn(true);
        }
    }

    /// 3D: log compaction. The tester is the service and asks every node to snapshot
    /// after each 10 entries; Raft state (without the snapshot) must stay small.
    mod snapshot {
        use super::*;
        use rand::Rng;

        const SNAPSHOT_INTERVAL: u64 = 10;
        /// 6.5840's `MAXLOGSIZE`.
        const MAX_LOG_SIZE: u64 = 2000;

        fn tester(n: usize, reliable: bool) -> Tester {
            let mut t = Tester::new(n);
            t.snapshot_every(SNAPSHOT_INTERVAL);
            if !reliable {
                t.set_unreliable(true);
            }
            t
        }

        /// 6.5840's `snapcommon`.
        fn snap_common(disconnect: bool, reliable: bool, crash: bool) -> Tester {
            let iters = 30;
            let mut t = tester(3, reliable);
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
                let starts = (0..nn).map(|_| (sender, t.random_command())).collect();
                t.start_many(starts);
                let c = t.random_command();
                if !disconnect && !crash {
                    // Every follower caught up, so no InstallSnapshot is needed.
                    t.one(c, n, true);
                } else {
                    t.one(c, n - 1, true);
                }
                let size = t.log_size();
                assert!(
                    size < MAX_LOG_SIZE,
                    "log size too large: {size} bytes of Raft state"
                );
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

        #[test]
        fn snapshot_basic() {
            snap_common(false, true, false);
        }

        /// `snap_common` in a variant where a lagging node must be caught up: it
        /// must have installed a snapshot at least once.
        fn snap_install(disconnect: bool, reliable: bool, crash: bool) {
            let t = snap_common(disconnect, reliable, crash);
            assert!(
                t.snapshots_installed() > 0,
                "no snapshot was ever installed"
            );
        }

        #[test]
        fn snapshot_install() {
            snap_install(true, true, false);
        }

        #[test]
        fn snapshot_install_unreliable() {
            snap_install(true, false, false);
        }

        #[test]
        fn snapshot_install_crash() {
            snap_install(false, true, true);
        }

        #[test]
        fn snapshot_install_unreliable_crash() {
            snap_install(false, false, true);
        }

        /// Crash and restart all servers repeatedly; the log index keeps growing.
        #[test]
        fn snapshot_all_crash() {
            let mut t = tester(3, true);
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
                assert!(index2 > index1, "index decreased from {index1} to {index2}");
            }
        }

        /// A node restarted from a snapshot serves from it at once, and again after a
        /// second restart with one more entry persisted.
        #[test]
        fn snapshot_init() {
            let mut t = tester(3, true);
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
            assert!(
                t.snapshots_installed() >= n as u64,
                "restarted nodes did not report the snapshot they restart from"
            );
        }
    }

    /// Figure 8 of the Raft paper, staged with partitions and crashes (5 nodes):
    /// a leader of a later term replicates an entry of an earlier term to a majority,
    /// and a node that never had it can still be elected and overwrite it. An
    /// implementation that commits by counting replicas applies the old entry first
    /// and a different one later.
    pub fn figure_8_staged(t: &mut Tester) {
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
    pub fn vote_survives_restart(t: &mut Tester) {
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
    pub fn backup_messages(t: &mut Tester) -> u64 {
        assert_eq!(t.n, 3);
        t.one(json!("c1"), 3, true);
        let old = t.check_one_leader();
        t.disconnect(old);
        let lost = (0..50).map(|_| (old, t.random_command())).collect();
        t.start_many(lost);
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
        assert!(ok, "n{} stopped leading", new + 1);
        assert!(
            t.run_until_applied(old, last, 10 * ELECTION_TIMEOUT),
            "n{} never caught up to index {last}",
            old + 1
        );
        t.link_sent(new, old) - sent0
    }

    /// Nodes lose power (not only the process: every write not fsynced is gone, see
    /// `harness::lazyfs`), all at once and one at a time, with snapshots on. A node
    /// that acknowledged an entry or a vote it had not made durable comes back
    /// without it.
    pub fn power_loss(t: &mut Tester) {
        let n = t.n;
        t.snapshot_every(10);
        for _ in 0..15 {
            let c = t.random_command();
            t.one(c, n, true);
        }
        for i in 0..n {
            t.power_loss(i);
        }
        for i in 0..n {
            t.restart(i);
            t.connect(i);
        }
        let c = t.random_command();
        t.one(c, n, true);
        for _ in 0..3 {
            let leader = t.check_one_leader();
            let c = t.random_command();
            t.start(leader, c);
            t.power_loss(leader);
            for _ in 0..3 {
                let c = t.random_command();
                t.one(c, n - 1, true);
            }
            t.restart(leader);
            t.connect(leader);
            let c = t.random_command();
            t.one(c, n, true);
        }
    }

    /// Runs `scenario` against our binary switched to the known-bad variant `bug` and
    /// returns what the safety checks found. A scenario that cannot go on once safety
    /// is broken (agreement can no longer be reached) ends there; what was found
    /// before counts.
    fn violations_of(t: &mut Tester, scenario: impl FnOnce(&mut Tester)) -> String {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(t)));
        let found = t.violations().join("\n");
        match outcome {
            Ok(()) => eprintln!("the suite found:\n{found}"),
            Err(_) => eprintln!("the scenario stopped; the suite had found:\n{found}"),
        }
        found
    }

    /// Known-bad variants of our binary, each rejected by a named test.
    mod known_bad {
        use super::*;

        #[test]
        fn count_commit_rejected_by_figure_8_staged() {
            let mut t = Tester::against_bug(5, "count-commit");
            let found = violations_of(&mut t, figure_8_staged);
            assert!(
                found.contains("state machine safety"),
                "committing by counting replicas went unnoticed"
            );
        }

        #[test]
        fn forget_vote_rejected_by_vote_survives_restart() {
            let mut t = Tester::against_bug(3, "forget-vote");
            let found = violations_of(&mut t, vote_survives_restart);
            assert!(
                found.contains("election safety"),
                "a node that forgets its vote went unnoticed"
            );
        }

        #[test]
        fn no_fsync_rejected_by_power_loss() {
            let mut t = Tester::against_bug_on(3, "no-fsync", Durability::LazyFs);
            let found = violations_of(&mut t, power_loss);
            assert!(
                found.contains("state machine safety"),
                "a node that never fsyncs went unnoticed"
            );
        }

        #[test]
        fn one_step_backup_rejected_by_backup_in_few_messages() {
            let mut t = Tester::against_bug(3, "one-step-backup");
            let sent = backup_messages(&mut t);
            eprintln!("{sent} messages to repair the follower");
            assert!(
                sent > BACKUP_MESSAGES,
                "backing up one entry per rejection went unnoticed ({sent} messages)"
            );
        }
    }

    /// How many messages `backup_in_few_messages` allows the leader to send the
    /// rejoining node: one rejection per conflicting term, a batch of entries, and
    /// heartbeats, with room to spare; a leader backing up one entry at a time needs
    /// 50 or more.
    const BACKUP_MESSAGES: u64 = 20;

    /// Runs `scenario` on a fresh `n`-node cluster once per seed of a sweep:
    /// `RAFT_SWEEP` seeds (default 8; 1 on the wall clock), or only `SEED` when it is
    /// set. Each run prints its seed, and a failing one the command replaying it.
    fn sweep(n: usize, scenario: impl Fn(&mut Tester)) {
        let default = match harness::cluster::TimeMode::from_env() {
            harness::cluster::TimeMode::Sim => 8,
            harness::cluster::TimeMode::Real => 1,
        };
        let count = std::env::var("RAFT_SWEEP").map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("RAFT_SWEEP={v:?} is not a number"))
        });
        for seed in harness::Seed::sweep(count) {
            let mut t = Tester::for_seed(n, seed);
            scenario(&mut t);
        }
    }

    /// Random faults of every kind the harness has, on a lossy, duplicating,
    /// reordering network with snapshots on, while commands keep arriving; then
    /// everything heals and the cluster must agree again.
    fn nemesis(t: &mut Tester) {
        use harness::network::Partition;
        use rand::Rng;
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

    /// Beyond 6.5840: faults its tests do not have, each scenario swept over many
    /// seeds, and replay by seed.
    mod beyond {
        use super::*;

        #[test]
        fn random_nemesis() {
            sweep(5, nemesis);
        }

        #[test]
        fn vote_survives_restart() {
            sweep(3, super::vote_survives_restart);
        }

        #[test]
        fn figure_8_staged() {
            sweep(5, |t| {
                super::figure_8_staged(t);
                let (nd, cmd) = t.n_committed(2);
                assert!(
                    nd >= 3 && cmd == Some(json!("new")),
                    "index 2: {cmd:?} on {nd}"
                );
            });
        }

        #[test]
        fn backup_in_few_messages() {
            sweep(3, |t| {
                let sent = backup_messages(t);
                eprintln!("{sent} messages to repair the follower");
                assert!(
                    sent <= BACKUP_MESSAGES,
                    "{sent} messages to repair a 50-entry divergence (at most {BACKUP_MESSAGES})"
                );
            });
        }

        /// Half the messages between nodes arrive twice, many out of order, while
        /// followers and leaders fail and return: duplicates must be harmless.
        #[test]
        fn duplicated_messages() {
            sweep(5, |t| {
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

        #[test]
        fn amnesia_on_a_follower() {
            sweep(5, |t| amnesia(t, false));
        }

        #[test]
        fn amnesia_on_a_follower_with_snapshots() {
            sweep(5, |t| {
                amnesia(t, true);
                assert!(
                    t.snapshots_installed() > 0,
                    "no wiped node was caught up by a snapshot"
                );
            });
        }

        /// A leader that can hear but not speak is replaced, and steps down once it
        /// hears of the new term; agreement resumes when its links heal.
        #[test]
        fn one_way_partition_of_the_leader() {
            sweep(3, |t| {
                let n = t.n;
                t.one(json!(101), n, true);
                let leader1 = t.check_one_leader();
                let (term1, _) = t.get_state(leader1);
                t.cut_outgoing(leader1);
                t.sleep(2 * ELECTION_TIMEOUT);
                let (term, is_leader) = t.get_state(leader1);
                assert!(
                    !is_leader && term > term1,
                    "n{} still leads (term {term}, was {term1}) though nobody hears it",
                    leader1 + 1
                );
                t.one(json!(102), n - 1, true);
                t.heal();
                t.one(json!(103), n, true);
            });
        }

        /// A paused (SIGSTOP) leader is replaced; when it resumes, the messages that
        /// waited for it are stale and it must not disturb the new leader's log.
        #[test]
        fn paused_leader() {
            sweep(5, |t| {
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

        /// One seed, one run: two runs of a scenario with faults produce the same
        /// journal byte for byte (simulated time only).
        #[test]
        fn same_seed_same_journal() {
            let seed = harness::Seed::for_this_test();
            let run = || {
                let mut t = Tester::with_seed(3, seed.value());
                let n = t.n;
                t.one(json!(1), n, true);
                let leader = t.check_one_leader();
                t.disconnect(leader);
                t.one(json!(2), n - 1, true);
                t.connect(leader);
                t.one(json!(3), n, true);
                t.journal()
            };
            let (a, b) = (run(), run());
            assert!(a.lines().count() > 100, "the scenario did something");
            assert!(a == b, "two runs of one seed diverged");
        }
    }
}
