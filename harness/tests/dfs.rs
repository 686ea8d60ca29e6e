//! Conformance tests of the distributed file server (system 2): OSTEP's MFS over UDP.
//!
//! The server under test is `DFS_IMPL` (a command run as `CMD PORT IMAGE`) or our
//! `mfs-server`. Every reply is compared with the sequential spec in `specs::mfs`;
//! after crashes the image is checked with `DFS_FSCK` (ours: `mfsck`) and the tree
//! compared with the spec. `DFS_LIBMFS` names a `libmfs.so` to test instead of ours.
//! The protocol, the spec and how to plug in a server are in docs/dfs.md.

#[path = "dfs/support.rs"]
mod support;

use std::time::Duration;

use harness::{Seed, TestDir};
use specs::mfs::wire::{self, zero_block, Reply, Request};
use specs::mfs::FsSpec;
use support::*;

fn start(label: &str) -> (TestDir, Server, Conn, FsSpec) {
    let dir = TestDir::new(label);
    let server = Server::start(&implementation(), &dir, &dir.join("fs.img"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let conn = server.conn();
    (dir, server, conn, FsSpec::new())
}

/// Applies each request to server and spec and panics at the first disagreement.
fn expect_all(conn: &mut Conn, spec: &mut FsSpec, requests: &[Request]) {
    for r in requests {
        checked(conn, spec, r).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn creat(pinum: i32, kind: i32, n: &str) -> Request {
    Request::Creat {
        pinum,
        kind,
        name: name(n),
    }
}

fn lookup(pinum: i32, n: &str) -> Request {
    Request::Lookup {
        pinum,
        name: name(n),
    }
}

fn unlink(pinum: i32, n: &str) -> Request {
    Request::Unlink {
        pinum,
        name: name(n),
    }
}

fn write(inum: i32, block: i32, byte: u8) -> Request {
    let mut data = zero_block();
    data.fill(byte);
    Request::Write { inum, block, data }
}

fn must(conn: &mut Conn, spec: &mut FsSpec, r: Request, want: Reply) {
    let got = checked(conn, spec, &r).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, want, "{r:?}");
}

mod basic {
    use super::*;

    #[test]
    fn root_has_dot_and_dotdot() {
        let (_d, _s, mut c, mut spec) = start("dfs-root");
        must(
            &mut c,
            &mut spec,
            Request::Stat { inum: 0 },
            Reply::Stat {
                kind: 0,
                size: 4096,
            },
        );
        must(&mut c, &mut spec, lookup(0, "."), Reply::Ok(0));
        must(&mut c, &mut spec, lookup(0, ".."), Reply::Ok(0));
        expect_all(&mut c, &mut spec, &[Request::Read { inum: 0, block: 0 }]);
    }

    #[test]
    fn creat_lookup_stat() {
        let (_d, _s, mut c, mut spec) = start("dfs-creat");
        must(&mut c, &mut spec, creat(0, 1, "file"), Reply::Ok(0));
        must(&mut c, &mut spec, creat(0, 0, "dir"), Reply::Ok(0));
        must(&mut c, &mut spec, creat(0, 0, "file"), Reply::Ok(0));
        must(&mut c, &mut spec, lookup(0, "file"), Reply::Ok(1));
        must(&mut c, &mut spec, lookup(0, "dir"), Reply::Ok(2));
        must(
            &mut c,
            &mut spec,
            Request::Stat { inum: 1 },
            Reply::Stat { kind: 1, size: 0 },
        );
        must(
            &mut c,
            &mut spec,
            Request::Stat { inum: 2 },
            Reply::Stat {
                kind: 0,
                size: 4096,
            },
        );
        must(&mut c, &mut spec, lookup(0, "nope"), Reply::Failed);
        must(&mut c, &mut spec, creat(0, 7, "badtype"), Reply::Failed);
        must(&mut c, &mut spec, creat(1, 1, "in-a-file"), Reply::Failed);
        must(&mut c, &mut spec, creat(0, 1, ""), Reply::Failed);
        expect_all(&mut c, &mut spec, &[Request::Read { inum: 0, block: 0 }]);
    }

    #[test]
    fn dot_and_dotdot() {
        let (_d, _s, mut c, mut spec) = start("dfs-dots");
        expect_all(&mut c, &mut spec, &[creat(0, 0, "a"), creat(1, 0, "b")]);
        must(&mut c, &mut spec, lookup(2, ".."), Reply::Ok(1));
        must(&mut c, &mut spec, lookup(2, "."), Reply::Ok(2));
        must(&mut c, &mut spec, lookup(1, ".."), Reply::Ok(0));
        must(&mut c, &mut spec, unlink(1, "."), Reply::Failed);
        must(&mut c, &mut spec, unlink(1, ".."), Reply::Failed);
        must(&mut c, &mut spec, creat(1, 1, ".."), Reply::Ok(0));
        expect_all(&mut c, &mut spec, &[Request::Read { inum: 2, block: 0 }]);
    }

    #[test]
    fn names_of_27_and_28_bytes() {
        let (_d, _s, mut c, mut spec) = start("dfs-names");
        let n27 = "x".repeat(27);
        let n28 = "y".repeat(28);
        must(&mut c, &mut spec, creat(0, 1, &n27), Reply::Ok(0));
        must(&mut c, &mut spec, lookup(0, &n27), Reply::Ok(1));
        must(&mut c, &mut spec, creat(0, 1, &n28), Reply::Failed);
        must(&mut c, &mut spec, lookup(0, &n28), Reply::Failed);
        must(&mut c, &mut spec, unlink(0, &n28), Reply::Failed);
        expect_all(&mut c, &mut spec, &[Request::Read { inum: 0, block: 0 }]);
        must(&mut c, &mut spec, unlink(0, &n27), Reply::Ok(0));
    }

    #[test]
    fn file_limit_is_14_blocks() {
        let (_d, _s, mut c, mut spec) = start("dfs-14");
        expect_all(&mut c, &mut spec, &[creat(0, 1, "f")]);
        for b in 0..14 {
            must(&mut c, &mut spec, write(1, b, b as u8 + 1), Reply::Ok(0));
        }
        must(&mut c, &mut spec, write(1, 14, 9), Reply::Failed);
        must(&mut c, &mut spec, write(1, -1, 9), Reply::Failed);
        must(
            &mut c,
            &mut spec,
            Request::Stat { inum: 1 },
            Reply::Stat {
                kind: 1,
                size: 14 * 4096,
            },
        );
        for b in 0..14 {
            expect_all(&mut c, &mut spec, &[Request::Read { inum: 1, block: b }]);
        }
        must(
            &mut c,
            &mut spec,
            Request::Read { inum: 1, block: 14 },
            Reply::Failed,
        );
        // Overwrite keeps the size and replaces the data.
        must(&mut c, &mut spec, write(1, 3, 0xEE), Reply::Ok(0));
        expect_all(
            &mut c,
            &mut spec,
            &[
                Request::Read { inum: 1, block: 3 },
                Request::Stat { inum: 1 },
            ],
        );
    }

    #[test]
    fn reads_of_holes() {
        let (_d, _s, mut c, mut spec) = start("dfs-holes");
        expect_all(&mut c, &mut spec, &[creat(0, 1, "f")]);
        must(
            &mut c,
            &mut spec,
            Request::Read { inum: 1, block: 0 },
            Reply::Failed,
        );
        must(&mut c, &mut spec, write(1, 5, 7), Reply::Ok(0));
        must(
            &mut c,
            &mut spec,
            Request::Read { inum: 1, block: 2 },
            Reply::Data(zero_block()),
        );
        must(
            &mut c,
            &mut spec,
            Request::Read { inum: 1, block: 6 },
            Reply::Failed,
        );
        must(
            &mut c,
            &mut spec,
            Request::Stat { inum: 1 },
            Reply::Stat {
                kind: 1,
                size: 6 * 4096,
            },
        );
    }

    #[test]
    fn writes_to_directories_fail() {
        let (_d, _s, mut c, mut spec) = start("dfs-wdir");
        expect_all(&mut c, &mut spec, &[creat(0, 0, "d")]);
        must(&mut c, &mut spec, write(0, 0, 1), Reply::Failed);
        must(&mut c, &mut spec, write(1, 1, 1), Reply::Failed);
        expect_all(
            &mut c,
            &mut spec,
            &[
                Request::Read { inum: 0, block: 0 },
                Request::Stat { inum: 1 },
            ],
        );
    }

    #[test]
    fn lookups_in_files_fail() {
        let (_d, _s, mut c, mut spec) = start("dfs-lfile");
        expect_all(&mut c, &mut spec, &[creat(0, 1, "f")]);
        must(&mut c, &mut spec, lookup(1, "."), Reply::Failed);
        must(&mut c, &mut spec, lookup(1, "x"), Reply::Failed);
        must(&mut c, &mut spec, unlink(1, "x"), Reply::Failed);
    }

    #[test]
    fn unlink_of_non_empty_directory_fails() {
        let (_d, _s, mut c, mut spec) = start("dfs-unlink");
        expect_all(&mut c, &mut spec, &[creat(0, 0, "d"), creat(1, 1, "f")]);
        must(&mut c, &mut spec, unlink(0, "d"), Reply::Failed);
        must(&mut c, &mut spec, unlink(1, "f"), Reply::Ok(0));
        must(&mut c, &mut spec, unlink(1, "f"), Reply::Ok(0));
        must(&mut c, &mut spec, unlink(0, "d"), Reply::Ok(0));
        must(&mut c, &mut spec, unlink(0, "d"), Reply::Ok(0));
        must(&mut c, &mut spec, Request::Stat { inum: 1 }, Reply::Failed);
        // Freed inode numbers are taken again, lowest first.
        must(&mut c, &mut spec, creat(0, 1, "g"), Reply::Ok(0));
        must(&mut c, &mut spec, lookup(0, "g"), Reply::Ok(1));
    }

    #[test]
    fn invalid_inode_numbers_fail() {
        let (_d, _s, mut c, mut spec) = start("dfs-inum");
        for inum in [-1, 1, 4095, 4096, i32::MAX, i32::MIN] {
            must(&mut c, &mut spec, Request::Stat { inum }, Reply::Failed);
            must(
                &mut c,
                &mut spec,
                Request::Read { inum, block: 0 },
                Reply::Failed,
            );
            must(&mut c, &mut spec, write(inum, 0, 1), Reply::Failed);
            must(&mut c, &mut spec, lookup(inum, "."), Reply::Failed);
            must(&mut c, &mut spec, creat(inum, 1, "x"), Reply::Failed);
            must(&mut c, &mut spec, unlink(inum, "x"), Reply::Failed);
        }
    }

    #[test]
    fn full_directories() {
        let (_d, _s, mut c, mut spec) = start("dfs-fulldir");
        // 14 blocks of 128 entries, two of them `.` and `..`.
        for i in 0..(14 * 128 - 2) {
            must(
                &mut c,
                &mut spec,
                creat(0, 1, &format!("f{i}")),
                Reply::Ok(0),
            );
        }
        must(
            &mut c,
            &mut spec,
            creat(0, 1, "one-too-many"),
            Reply::Failed,
        );
        must(
            &mut c,
            &mut spec,
            Request::Stat { inum: 0 },
            Reply::Stat {
                kind: 0,
                size: 14 * 4096,
            },
        );
        must(&mut c, &mut spec, unlink(0, "f300"), Reply::Ok(0));
        must(&mut c, &mut spec, creat(0, 1, "fits-again"), Reply::Ok(0));
        let got = dump(&mut c).unwrap_or_else(|e| panic!("{e}"));
        let want = dump(&mut spec).unwrap();
        assert!(
            got == want,
            "trees differ: {}",
            first_difference(&got, &want)
        );
    }

    #[test]
    fn inode_exhaustion() {
        let (_d, _s, mut c, mut spec) = start("dfs-inodes");
        // 4096 inodes: the root, three directories and 4092 files spread over them.
        expect_all(
            &mut c,
            &mut spec,
            &[creat(0, 0, "a"), creat(0, 0, "b"), creat(0, 0, "c")],
        );
        let mut made = 4;
        for (dir, count) in [(1, 1790), (2, 1790), (3, 512)] {
            for i in 0..count {
                must(
                    &mut c,
                    &mut spec,
                    creat(dir, 1, &format!("f{i}")),
                    Reply::Ok(0),
                );
                made += 1;
            }
        }
        assert_eq!(made, 4096);
        must(
            &mut c,
            &mut spec,
            creat(3, 1, "no-inode-left"),
            Reply::Failed,
        );
        must(
            &mut c,
            &mut spec,
            creat(0, 0, "no-inode-left"),
            Reply::Failed,
        );
        must(&mut c, &mut spec, unlink(2, "f7"), Reply::Ok(0));
        must(&mut c, &mut spec, creat(3, 1, "reuses"), Reply::Ok(0));
        must(&mut c, &mut spec, lookup(3, "reuses"), Reply::Ok(1794 + 7));
    }

    #[test]
    fn malformed_datagrams_get_errors_not_crashes() {
        let (_d, mut server, mut c, mut spec) = start("dfs-malformed");
        expect_all(&mut c, &mut spec, &[creat(0, 1, "f"), write(1, 0, 3)]);
        // Replies to malformed datagrams are not retried: wait 50 times the slowest
        // round trip measured now (at least 300 ms), so a loaded machine is not a failure.
        let wait = (server.slowest_round_trip() * 50).max(Duration::from_millis(300));
        let valid = wire::encode_request(99, 1, &write(1, 0, 4));
        // Every truncation past the header gets a Malformed reply, and changes nothing.
        for cut in [20, 21, 24, 27, 28, 100, valid.len() - 1] {
            let reply = c
                .raw(&valid[..cut], wait)
                .unwrap_or_else(|| panic!("no reply to a Write truncated to {cut} bytes"));
            let (_, r) = wire::decode_reply(&reply).unwrap();
            assert_eq!(r, Reply::Malformed, "Write truncated to {cut} bytes");
        }
        let mut long = valid.clone();
        long.push(0);
        let (_, r) =
            wire::decode_reply(&c.raw(&long, wait).expect("reply to a long Write")).unwrap();
        assert_eq!(r, Reply::Malformed);
        let mut unknown = wire::encode_request(99, 2, &Request::Shutdown);
        unknown[3] = 42;
        let (_, r) = wire::decode_reply(&c.raw(&unknown, wait).expect("reply to op 42")).unwrap();
        assert_eq!(r, Reply::Malformed);
        let mut v2 = wire::encode_request(99, 3, &Request::Stat { inum: 0 });
        v2[2] = 2;
        let (_, r) = wire::decode_reply(&c.raw(&v2, wait).expect("reply to version 2")).unwrap();
        assert_eq!(r, Reply::BadVersion);
        // Not MFS at all: no reply is fine, a crash is not.
        for junk in [&b""[..], b"x", b"GET / HTTP/1.0\r\n\r\n", &[0xFF; 2000]] {
            let _ = c.raw(junk, Duration::from_millis(50));
        }
        let name300 = {
            let mut d = wire::encode_request(99, 4, &lookup(0, "a"));
            d[24] = 200; // claims a 200-byte name, carries 1
            d
        };
        let (_, r) = wire::decode_reply(&c.raw(&name300, wait).expect("reply")).unwrap();
        assert_eq!(r, Reply::Malformed);
        assert!(
            server.process.try_wait().unwrap().is_none(),
            "the server died:\n{}",
            server.log_tail()
        );
        expect_all(
            &mut c,
            &mut spec,
            &[
                Request::Read { inum: 1, block: 0 },
                Request::Stat { inum: 1 },
            ],
        );
    }

    #[test]
    fn random_workload_matches_the_spec() {
        let seed = Seed::for_this_test();
        let (_d, _s, mut c, mut spec) = start("dfs-random");
        let mut rng = seed.rng(1);
        random_workload(&mut c, &mut spec, &mut rng, 400).unwrap_or_else(|e| panic!("{e}"));
        let got = dump(&mut c).unwrap_or_else(|e| panic!("{e}"));
        let want = dump(&mut spec).unwrap();
        assert!(
            got == want,
            "trees differ: {}",
            first_difference(&got, &want)
        );
    }

    #[test]
    fn shutdown_exits_cleanly() {
        let (_d, mut server, mut c, mut spec) = start("dfs-shutdown");
        must(&mut c, &mut spec, Request::Shutdown, Reply::Ok(0));
        let status = server.wait_exit().unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "exit status {status}");
    }
}

mod restart {
    use super::*;

    #[test]
    fn same_tree_after_clean_shutdown() {
        let seed = Seed::for_this_test();
        let (dir, mut server, mut c, mut spec) = start("dfs-restart");
        let mut rng = seed.rng(1);
        random_workload(&mut c, &mut spec, &mut rng, 200).unwrap_or_else(|e| panic!("{e}"));
        let before = dump(&mut c).unwrap_or_else(|e| panic!("{e}"));
        must(&mut c, &mut spec, Request::Shutdown, Reply::Ok(0));
        server.wait_exit().unwrap_or_else(|e| panic!("{e}"));
        for round in 0..2 {
            let server = Server::start(&implementation(), &dir, &dir.join("fs.img"), None)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut c = server.conn();
            let after = dump(&mut c).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                before == after,
                "round {round}: {}",
                first_difference(&after, &before)
            );
            expect_all(&mut c, &mut spec.clone(), &[Request::Shutdown]);
        }
    }

    #[test]
    fn a_missing_image_is_created_consistent() {
        let (dir, server, mut c, mut spec) = start("dfs-create");
        assert!(dir.join("fs.img").exists(), "the image was not created");
        must(
            &mut c,
            &mut spec,
            Request::Stat { inum: 0 },
            Reply::Stat {
                kind: 0,
                size: 4096,
            },
        );
        drop(server);
        if let Some(fsck) = fsck_for(&implementation()) {
            let out = fsck.command().arg(dir.join("fs.img")).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

mod lossy {
    use super::*;
    use harness::udp_relay::{Faults, UdpRelay};

    /// `count` random requests through a relay that drops, duplicates and delays 20% /
    /// 20% / 0-15 ms each way; every reply and then the tree must equal the spec's.
    pub fn through_relay(server: &Server, seed: u64, count: usize) -> Result<(), String> {
        let faults = Faults {
            drop: 0.2,
            duplicate: 0.2,
            max_delay: Duration::from_millis(15),
            duplicate_lag: Duration::ZERO,
        };
        let relay = UdpRelay::start(server.addr, faults, seed).unwrap();
        let mut c = Conn::new(relay.addr());
        c.attempt = Duration::from_millis(40);
        let mut spec = FsSpec::new();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        random_workload(&mut c, &mut spec, &mut rng, count)?;
        let stats = relay.stats();
        assert!(
            stats.dropped > 10 && stats.duplicated > 10 && stats.reordered > 0,
            "the relay did not misbehave enough to mean anything: {stats:?}"
        );
        relay.set_faults(Faults::none());
        let got = dump(&mut c)?;
        let want = dump(&mut spec)?;
        if got != want {
            return Err(format!("trees differ: {}", first_difference(&got, &want)));
        }
        Ok(())
    }

    #[test]
    fn results_equal_the_spec_applied_once() {
        let seed = Seed::for_this_test();
        let (_d, server, _c, _spec) = start("dfs-lossy");
        through_relay(&server, seed.value(), 250).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Creat/Unlink and Write/Write pairs on one name and block, through a relay that
    /// duplicates half the datagrams and delays each copy independently: a copy of an
    /// old request often arrives after the request that followed it. A server that ran
    /// it again would bring back an unlinked name, remove a created one, or put old data
    /// over new.
    pub fn duplicates_run_once(server: &Server, seed: u64, rounds: usize) -> Result<(), String> {
        let faults = Faults {
            drop: 0.0,
            duplicate: 0.5,
            max_delay: Duration::from_millis(5),
            duplicate_lag: Duration::from_millis(25),
        };
        let relay = UdpRelay::start(server.addr, faults, seed).unwrap();
        let mut c = Conn::new(relay.addr());
        c.attempt = Duration::from_millis(100);
        let mut spec = FsSpec::new();
        checked(&mut c, &mut spec, &creat(0, 1, "f"))?;
        for i in 0..rounds {
            let step = |c: &mut Conn, spec: &mut FsSpec, r: Request| {
                checked(c, spec, &r).map_err(|e| format!("round {i}: {e}"))
            };
            // Each change is followed by reads that a late copy of it would upset.
            step(&mut c, &mut spec, creat(0, 1, "x"))?;
            step(&mut c, &mut spec, lookup(0, "x"))?;
            step(&mut c, &mut spec, unlink(0, "x"))?;
            for _ in 0..3 {
                step(&mut c, &mut spec, lookup(0, "x"))?;
            }
            step(&mut c, &mut spec, write(1, 0, (2 * i) as u8))?;
            step(&mut c, &mut spec, write(1, 0, (2 * i + 1) as u8))?;
            for _ in 0..3 {
                step(&mut c, &mut spec, Request::Read { inum: 1, block: 0 })?;
            }
        }
        let stats = relay.stats();
        assert!(stats.duplicated > 50 && stats.reordered > 10, "{stats:?}");
        Ok(())
    }

    #[test]
    fn delayed_duplicates_run_once() {
        let seed = Seed::for_this_test();
        let (_d, server, _c, _spec) = start("dfs-dups");
        duplicates_run_once(&server, seed.value(), 60).unwrap_or_else(|e| panic!("{e}"));
    }
}

mod crash {
    use super::*;

    /// Many short crash points: a server is killed at a random instant of a write-heavy
    /// workload, then the image must pass the checker and the restarted server must
    /// hold every acknowledged change.
    fn crash_points(label: &str, points: usize) {
        let seed = Seed::for_this_test();
        let dir = TestDir::new(label);
        let mut rng = seed.rng(1);
        let mut crasher = Crasher::new(implementation(), &dir, None);
        for i in 0..points {
            if i % 30 == 0 {
                crasher.reset();
            }
            let kill_after = Duration::from_micros(rand::Rng::gen_range(&mut rng, 0..30_000));
            crasher
                .point(&dir, &mut rng, kill_after)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        eprintln!(
            "{points} crash points, {} acknowledged requests checked",
            crasher.acknowledged
        );
    }

    #[test]
    fn kill_during_writes_1() {
        crash_points("dfs-crash1", 60);
    }

    #[test]
    fn kill_during_writes_2() {
        crash_points("dfs-crash2", 60);
    }

    #[test]
    fn kill_during_writes_3() {
        crash_points("dfs-crash3", 60);
    }

    #[test]
    fn kill_during_writes_4() {
        crash_points("dfs-crash4", 60);
    }
}

/// Power failures: the image on the power-loss filesystem, so what was not fsynced is
/// lost; the only crashes that can show a missing fsync.
mod power {
    use super::*;

    /// Points per image before starting over, so images and checks stay small.
    const POINTS_PER_IMAGE: usize = 25;

    pub fn power_loss_points(
        label: &str,
        bug: Option<&'static str>,
        points: usize,
    ) -> Result<PowerLoss, String> {
        let seed = Seed::for_this_test();
        let dir = TestDir::new(label);
        let mut rng = seed.rng(1);
        let imp = if bug.is_some() {
            our_server()
        } else {
            implementation()
        };
        let mut power = PowerLoss::new(imp, &dir, bug);
        let started = std::time::Instant::now();
        for i in 0..points {
            if i > 0 && i % POINTS_PER_IMAGE == 0 {
                power.reset();
            }
            power.point(&dir, &mut rng, 12)?;
        }
        eprintln!(
            "{points} power-loss points in {:.1} s: {} acknowledged requests checked, {} \
             unsynced byte(s) discarded by the power failures",
            started.elapsed().as_secs_f64(),
            power.acknowledged,
            power.lost_bytes
        );
        Ok(power)
    }

    pub fn concurrent_points(
        label: &str,
        bug: Option<&'static str>,
        points: usize,
    ) -> Result<PowerLoss, String> {
        let seed = Seed::for_this_test();
        let dir = TestDir::new(label);
        let mut rng = seed.rng(1);
        let imp = if bug.is_some() {
            our_server()
        } else {
            implementation()
        };
        let mut power = PowerLoss::new(imp, &dir, bug);
        let started = std::time::Instant::now();
        for i in 0..points {
            // Writers fill images fast, and every check reads the whole image.
            if i > 0 && i % 10 == 0 {
                power.reset();
            }
            power.writers_point(&dir, &mut rng, 4)?;
        }
        eprintln!(
            "{points} power-loss points with 4 concurrent writers in {:.1} s: {} acknowledged \
             writes checked, {} unsynced byte(s) discarded by the power failures",
            started.elapsed().as_secs_f64(),
            power.acknowledged,
            power.lost_bytes
        );
        Ok(power)
    }

    #[test]
    fn power_loss_with_concurrent_writers() {
        concurrent_points("dfs-power-writers", None, 60).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn power_loss_during_writes_1() {
        power_loss_points("dfs-power1", None, 110).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn power_loss_during_writes_2() {
        power_loss_points("dfs-power2", None, 110).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The known-bad variants: each must be rejected, and the test shows the message.
mod bad {
    use super::*;

    fn rejected_within(bug: &'static str, points: usize) -> String {
        let seed = Seed::for_this_test();
        let dir = TestDir::new(&format!("dfs-bad-{bug}"));
        let mut rng = seed.rng(1);
        let mut crasher = Crasher::new(our_server(), &dir, Some(bug));
        for i in 0..points {
            if i % 30 == 0 {
                crasher.reset();
            }
            let kill_after = Duration::from_micros(rand::Rng::gen_range(&mut rng, 0..30_000));
            if let Err(e) = crasher.point(&dir, &mut rng, kill_after) {
                eprintln!("DFS_BUG={bug} rejected: {e}");
                return e;
            }
        }
        panic!("DFS_BUG={bug} survived {points} crash points: the crash tests do not bite");
    }

    #[test]
    fn server_that_replies_before_fsync() {
        let e = rejected_within("reply-before-fsync", 150);
        assert!(e.contains("acknowledged change was lost"), "{e}");
    }

    #[test]
    fn server_that_acknowledges_without_fsync() {
        let e = match power::power_loss_points("dfs-bad-no-fsync", Some("no-fsync"), 40) {
            Ok(_) => panic!(
                "DFS_BUG=no-fsync survived 40 power failures: the power-loss tests do not bite"
            ),
            Err(e) => e,
        };
        eprintln!("DFS_BUG=no-fsync rejected: {e}");
        assert!(
            e.contains("acknowledged change ")
                && e.contains(
                    "was lost: the restarted server serves the tree as it was after only"
                ),
            "rejected, but not for losing an acknowledged change: {e}"
        );
        assert!(
            ["Write(", "Creat(", "Unlink("]
                .iter()
                .any(|op| e.contains(op)),
            "the message does not name the lost request: {e}"
        );
    }

    #[test]
    fn server_that_acknowledges_without_fsync_to_concurrent_writers() {
        let e = match power::concurrent_points("dfs-bad-no-fsync-w", Some("no-fsync"), 20) {
            Ok(_) => panic!(
                "DFS_BUG=no-fsync survived 20 power failures under concurrent writers: the \
                 test does not bite"
            ),
            Err(e) => e,
        };
        eprintln!("DFS_BUG=no-fsync rejected: {e}");
        assert!(
            e.contains("acknowledged") && e.contains("was lost"),
            "rejected, but not for losing an acknowledged change: {e}"
        );
    }

    #[test]
    fn server_that_writes_the_checkpoint_before_the_log() {
        let e = rejected_within("checkpoint-first", 150);
        assert!(
            e.contains("rejects the image") || e.contains("does not restart"),
            "{e}"
        );
    }

    #[test]
    fn server_that_runs_duplicates_twice() {
        let seed = Seed::for_this_test();
        let dir = TestDir::new("dfs-bad-dedup");
        for round in 0..3 {
            let image = dir.join(format!("fs{round}.img"));
            let server = Server::start(&our_server(), &dir, &image, Some("no-dedup")).unwrap();
            if let Err(e) = lossy::duplicates_run_once(&server, seed.value() + round, 60) {
                eprintln!("DFS_BUG=no-dedup rejected: {e}");
                return;
            }
        }
        panic!("DFS_BUG=no-dedup passed three duplicate-heavy workloads: the test does not bite");
    }

    /// The C program's 8th request is its first Write (block 0 of `dir/file`). The
    /// relay drops that request's first copy and nothing else: a client that never
    /// retries fails exactly there, having sent it once.
    #[test]
    fn client_that_never_retries() {
        let dir = TestDir::new("dfs-bad-client");
        let Some(program) = c_client::compile(&dir) else {
            return;
        };
        let server = Server::start(&our_server(), &dir, &dir.join("fs.img"), None).unwrap();
        let timeout = c_client::attempt_timeout(&server);
        let relay = DropOnce::start(server.addr, 8);
        let ms = timeout.as_millis().to_string();
        let out = c_client::run(
            &Some(program),
            relay.addr().port(),
            &[("MFS_BUG", "no-retry"), ("MFS_TIMEOUT_MS", &ms)],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let log = relay.log();
        eprintln!("MFS_BUG=no-retry: {stderr}relay: {log:?}");
        assert!(
            matches!(log.dropped, Some(Request::Write { block: 0, .. })),
            "the relay did not drop the first Write: {log:?}"
        );
        assert!(
            !out.status.success(),
            "a client that never retries passed although its Write was lost"
        );
        assert!(
            stderr.contains("FAIL") && stderr.contains("write block 0"),
            "the program failed, but not at the Write whose request was lost: {stderr}"
        );
        assert_eq!(
            log.copies.get(7).map(|c| c.1),
            Some(1),
            "the lost Write was sent again, so the failure is not a missing retry: {log:?}"
        );
        assert_eq!(
            log.copies.len(),
            8,
            "requests after the lost Write reached the relay: {log:?}"
        );
    }
}

/// What the suite does when a check cannot run: it says so, or it fails.
mod skips {
    use super::*;
    use std::process::Command;

    /// Runs one test of this file in a child process with `env`, and returns whether it
    /// passed and its stderr.
    fn run_test(name: &str, env: &[(&str, &str)]) -> (bool, String) {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", name, "--nocapture", "--test-threads", "1"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run the test binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    #[test]
    fn dfs_fsck_none_is_announced() {
        assert!(matches!(
            fsck_plan(Some("none"), true),
            FsckPlan::Skipped(why) if why.contains("DFS_FSCK=none")
        ));
        assert!(matches!(
            fsck_plan(None, false),
            FsckPlan::Skipped(why) if why.contains("not ours")
        ));
        assert_eq!(fsck_plan(None, true), FsckPlan::Ours);
        assert_eq!(fsck_plan(Some("my_fsck"), false), FsckPlan::Named);
        let (passed, text) = run_test(
            "restart::a_missing_image_is_created_consistent",
            &[("DFS_FSCK", "none")],
        );
        assert!(passed, "{text}");
        assert!(
            text.contains("==== SKIPPED: image check after crashes: DFS_FSCK=none"),
            "DFS_FSCK=none skipped the image check without saying so:\n{text}"
        );
    }

    #[test]
    fn a_missing_gcc_fails_unless_dsconf_skip_names_it() {
        let what = "the C client tests";
        let e = require_tool("gcc", false, "apt-get install gcc", None, what).unwrap_err();
        assert!(
            e.contains("apt-get install gcc") && e.contains("DSCONF_SKIP=gcc"),
            "{e}"
        );
        assert!(require_tool("gcc", false, "x", Some("chromium"), what).is_err());
        assert_eq!(
            require_tool("gcc", false, "x", Some("chromium, gcc"), what),
            Ok(false)
        );
        assert_eq!(require_tool("gcc", true, "x", None, what), Ok(true));
        // End to end: a PATH without gcc.
        let empty = TestDir::new("dfs-no-gcc");
        let path = empty.path().to_str().unwrap();
        let test = "c_client::program_linked_with_libmfs";
        let (passed, text) = run_test(test, &[("PATH", path)]);
        assert!(!passed, "a missing gcc did not fail the test:\n{text}");
        assert!(text.contains("apt-get install gcc"), "{text}");
        let (passed, text) = run_test(test, &[("PATH", path), ("DSCONF_SKIP", "gcc")]);
        assert!(passed, "{text}");
        assert!(
            text.contains("==== SKIPPED: the C client tests"),
            "the skip was silent:\n{text}"
        );
    }
}

/// The seed's C interface: a C program includes our `mfs.h`, links `libmfs.so`, runs.
mod c_client {
    use super::*;
    use harness::udp_relay::{Faults, UdpRelay};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    fn gcc_present() -> bool {
        Command::new("gcc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The C program compiled against libmfs.so, or `None` when gcc is missing and
    /// `DSCONF_SKIP=gcc` opts out (announced); missing without it fails the test.
    pub fn compile(dir: &TestDir) -> Option<PathBuf> {
        let usable = require_tool(
            "gcc",
            gcc_present(),
            "apt-get install gcc",
            std::env::var("DSCONF_SKIP").ok().as_deref(),
            "the C client tests (a program including mfs.h, linked with libmfs.so)",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        if !usable {
            return None;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let lib = libmfs();
        let exe = dir.join("client");
        let out = Command::new("gcc")
            .arg("-Wall")
            .arg("-I")
            .arg(root.join("impls/dfs/include"))
            .arg(root.join("harness/tests/dfs/client.c"))
            .arg("-o")
            .arg(&exe)
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.parent().unwrap().display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gcc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(exe)
    }

    pub fn run(program: &Option<PathBuf>, port: u16, env: &[(&str, &str)]) -> Output {
        let Some(program) = program else {
            panic!("no C program to run")
        };
        let mut cmd = Command::new(program);
        cmd.arg("127.0.0.1")
            .arg(port.to_string())
            .env("MFS_TIMEOUT_MS", "50");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = harness::Process::spawn(
            "C client",
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped()),
        )
        .unwrap();
        // A guard against a program that hangs, not a judgement of its speed (its
        // checks judge it): a minute is hundreds of times what it takes.
        child
            .wait_timeout(Duration::from_secs(60))
            .unwrap()
            .expect("the C client hung: it did not finish within 60 s");
        let child = child.child_mut();
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        use std::io::Read;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut stderr)
            .unwrap();
        Output {
            status: child.try_wait().unwrap().unwrap(),
            stdout,
            stderr,
        }
    }

    /// libmfs's per-attempt timeout for a test where exactly one datagram is lost: 50
    /// times the slowest of 20 round trips measured now, and at least 1 s, so a loaded
    /// machine's slow replies are not mistaken for the loss.
    pub fn attempt_timeout(server: &Server) -> Duration {
        (server.slowest_round_trip() * 50).max(Duration::from_secs(1))
    }

    /// The counterpart of `bad::client_that_never_retries`: the same single loss, and
    /// the library sends the request again and the program passes.
    #[test]
    fn program_resends_a_dropped_request() {
        let dir = TestDir::new("dfs-c-resend");
        let Some(program) = compile(&dir) else {
            return;
        };
        let server = Server::start(&implementation(), &dir, &dir.join("fs.img"), None).unwrap();
        let timeout = attempt_timeout(&server);
        let relay = DropOnce::start(server.addr, 8);
        let ms = timeout.as_millis().to_string();
        let out = run(
            &Some(program),
            relay.addr().port(),
            &[("MFS_TIMEOUT_MS", &ms)],
        );
        let log = relay.log();
        assert!(
            out.status.success(),
            "{}relay: {log:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(log.dropped.is_some(), "nothing was dropped: {log:?}");
        assert!(
            log.copies[7].1 >= 2,
            "the dropped request was never sent again: {log:?}"
        );
    }

    #[test]
    fn program_linked_with_libmfs() {
        let dir = TestDir::new("dfs-c");
        let program = compile(&dir);
        if program.is_none() {
            return;
        }
        let mut server = Server::start(&implementation(), &dir, &dir.join("fs.img"), None).unwrap();
        let out = run(&program, server.addr.port(), &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
        server
            .wait_exit()
            .unwrap_or_else(|e| panic!("MFS_Shutdown did not stop the server: {e}"));
    }

    #[test]
    fn program_through_a_lossy_relay() {
        let seed = Seed::for_this_test();
        let dir = TestDir::new("dfs-c-lossy");
        let program = compile(&dir);
        if program.is_none() {
            return;
        }
        let mut server = Server::start(&implementation(), &dir, &dir.join("fs.img"), None).unwrap();
        let faults = Faults {
            drop: 0.25,
            duplicate: 0.25,
            max_delay: Duration::from_millis(10),
            duplicate_lag: Duration::ZERO,
        };
        let relay = UdpRelay::start(server.addr, faults, seed.value()).unwrap();
        let out = run(&program, relay.addr().port(), &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stats = relay.stats();
        assert!(stats.dropped > 0 && stats.duplicated > 0, "{stats:?}");
        server
            .wait_exit()
            .unwrap_or_else(|e| panic!("MFS_Shutdown did not stop the server: {e}"));
    }
}
