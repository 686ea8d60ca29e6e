//! Requests through a relay that loses, duplicates, delays and reorders datagrams:
//! each must still run exactly once.

use std::time::Duration;

use specs::mfs::wire::Request;
use specs::mfs::FsSpec;

use super::basic::{creat, lookup, unlink, write};
use super::support::*;
use super::{EXACTLY_ONCE, SPEC};
use crate::suite::property::HARNESS;
use crate::suite::{fail, Context, Failure};
use crate::udp_relay::{Faults, UdpRelay};

/// A reply or tree that differs from the spec's in a test where every request is
/// sent again and again: the server did not run each exactly once.
fn as_exactly_once(f: Failure) -> Failure {
    if f.property == SPEC {
        failure(
            EXACTLY_ONCE,
            format!(
                "{} (through a relay that duplicates and reorders: a request that ran twice, \
                 or a retry that was not answered from the table of replies, shows this way)",
                f.message
            ),
        )
    } else {
        f
    }
}

fn relay(server: &Server, faults: Faults, seed: u64) -> UdpRelay {
    UdpRelay::start(server.addr, faults, seed)
        .unwrap_or_else(|e| fail(HARNESS, format!("cannot start the UDP relay: {e}")))
}

/// `count` random requests through a relay that drops, duplicates and delays 20% /
/// 20% / 0-15 ms each way; every reply and then the tree must equal the spec's.
fn through_relay(server: &Server, seed: u64, count: usize) -> Result<(), Failure> {
    let faults = Faults {
        drop: 0.2,
        duplicate: 0.2,
        max_delay: Duration::from_millis(15),
        duplicate_lag: Duration::ZERO,
    };
    let relay = relay(server, faults, seed);
    let mut c = Conn::new(relay.addr());
    c.attempt = Duration::from_millis(40);
    let mut spec = FsSpec::new();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    random_workload(&mut c, &mut spec, &mut rng, count)?;
    let stats = relay.stats();
    if !(stats.dropped > 10 && stats.duplicated > 10 && stats.reordered > 0) {
        return Err(failure(
            HARNESS,
            format!("the relay did not misbehave enough to mean anything: {stats:?}"),
        ));
    }
    relay.set_faults(Faults::none());
    let got = dump(&mut c)?;
    let want = dump(&mut spec)?;
    if got != want {
        return Err(failure(
            SPEC,
            format!("trees differ: {}", first_difference(&got, &want)),
        ));
    }
    Ok(())
}

pub(super) fn results_equal_the_spec_applied_once(cx: &mut Context) {
    let server = Server::first(cx, &cx.dir().join("fs.img"));
    ok(through_relay(&server, cx.seed, 250).map_err(as_exactly_once));
}

/// Creat/Unlink and Write/Write pairs on one name and block, through a relay that
/// duplicates half the datagrams and delays each copy independently: a copy of an
/// old request often arrives after the request that followed it. A server that ran
/// it again would bring back an unlinked name, remove a created one, or put old data
/// over new.
fn duplicates_run_once(server: &Server, seed: u64, rounds: usize) -> Result<(), Failure> {
    let faults = Faults {
        drop: 0.0,
        duplicate: 0.5,
        max_delay: Duration::from_millis(5),
        duplicate_lag: Duration::from_millis(25),
    };
    let relay = relay(server, faults, seed);
    let mut c = Conn::new(relay.addr());
    c.attempt = Duration::from_millis(100);
    let mut spec = FsSpec::new();
    checked(&mut c, &mut spec, &creat(0, 1, "f"))?;
    for i in 0..rounds {
        let step = |c: &mut Conn, spec: &mut FsSpec, r: Request| {
            checked(c, spec, &r).map_err(|f| within(format_args!("round {i}"), f))
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
    if !(stats.duplicated > 50 && stats.reordered > 10) {
        return Err(failure(
            HARNESS,
            format!("the relay did not duplicate and reorder enough to mean anything: {stats:?}"),
        ));
    }
    Ok(())
}

pub(super) fn delayed_duplicates_run_once(cx: &mut Context) {
    let server = Server::first(cx, &cx.dir().join("fs.img"));
    ok(duplicates_run_once(&server, cx.seed, 60).map_err(as_exactly_once));
}
