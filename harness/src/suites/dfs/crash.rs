//! Crashes: SIGKILLs at random instants of a write-heavy workload, and power failures
//! with the image on the power-loss filesystem (`crate::lazyfs`), so what was not
//! fsynced is lost: the only crashes that can show a missing fsync.

use std::time::{Duration, Instant};

use rand::Rng;

use super::support::*;
use crate::suite::Context;

/// Crash points per image before starting over, so images and checks stay small.
const CRASH_POINTS_PER_IMAGE: usize = 30;
/// Power-loss points per image before starting over.
const POWER_POINTS_PER_IMAGE: usize = 25;

/// Many short crash points: a server is killed at a random instant of a write-heavy
/// workload, then the image must pass the checker and the restarted server must hold
/// every acknowledged change. `stream` keeps the four crash tests' points apart under
/// one seed.
pub(super) fn crash_points(cx: &mut Context, stream: u64, points: usize) {
    let mut rng = cx.rng(stream);
    let mut crasher = Crasher::new(cx);
    for i in 0..points {
        if i % CRASH_POINTS_PER_IMAGE == 0 {
            crasher.reset();
        }
        let kill_after = Duration::from_micros(rng.gen_range(0..30_000));
        ok(crasher.point(&mut rng, kill_after));
    }
    cx.note(format!(
        "{points} crash points, {} acknowledged requests checked",
        crasher.acknowledged
    ));
}

/// Power-loss points of up to 12 acknowledged random requests each.
pub(super) fn power_loss_points(cx: &mut Context, stream: u64, points: usize) {
    let mut rng = cx.rng(stream);
    let mut power = PowerLoss::new(cx);
    let started = Instant::now();
    for i in 0..points {
        if i > 0 && i % POWER_POINTS_PER_IMAGE == 0 {
            power.reset();
        }
        ok(power.point(&mut rng, 12));
    }
    cx.note(format!(
        "{points} power-loss points in {:.1} s ({} in the middle of a request's sync): {} \
         acknowledged requests checked, {} unsynced byte(s) discarded by the power failures",
        started.elapsed().as_secs_f64(),
        power.in_sync,
        power.acknowledged,
        power.lost_bytes
    ));
}

/// Power-loss points with 4 clients writing at once.
pub(super) fn concurrent_points(cx: &mut Context, points: usize) {
    let mut rng = cx.rng(3);
    let mut power = PowerLoss::new(cx);
    let started = Instant::now();
    for i in 0..points {
        // Writers fill images fast, and every check reads the whole image.
        if i > 0 && i % 10 == 0 {
            power.reset();
        }
        ok(power.writers_point(&mut rng, 4));
    }
    cx.note(format!(
        "{points} power-loss points with 4 concurrent writers in {:.1} s: {} acknowledged \
         writes checked, {} unsynced byte(s) discarded by the power failures",
        started.elapsed().as_secs_f64(),
        power.acknowledged,
        power.lost_bytes
    ));
}

/// Requests a power-loss point at an overwrite may take before the power goes: a
/// server that rewrites its checkpoint every few dozen changes gets there.
const OVERWRITE_WITHIN: usize = 400;

/// Power-loss points at overwrites: at each, random requests until the power goes in
/// the first sync of the image while it holds bytes written in place over durable
/// ones (a checkpoint region rewritten where it was), and the overwritten sectors are
/// torn, each left old, new, or new before a byte and old after it. Boot must tell a
/// torn checkpoint and fall back on what the log holds: the image must pass the
/// checker and the restarted server must hold every acknowledged change.
pub(super) fn overwrite_points(cx: &mut Context, points: usize) {
    let mut rng = cx.rng(4);
    let mut power = PowerLoss::new(cx);
    let started = Instant::now();
    let mut struck = 0;
    for i in 0..points {
        if i > 0 && i % POWER_POINTS_PER_IMAGE == 0 {
            power.reset();
        }
        if ok(power.overwrite_point(&mut rng, OVERWRITE_WITHIN)) {
            struck += 1;
        }
    }
    if struck == 0 {
        cx.note(format!(
            "the server wrote nothing in place over durable bytes within \
             {OVERWRITE_WITHIN} requests, {points} times: torn overwrites were not tested \
             (a server that only appends has none)"
        ));
    } else {
        cx.note(format!(
            "{struck} of {points} power-loss points struck in the sync of an overwrite, in \
             {:.1} s: {} acknowledged requests checked",
            started.elapsed().as_secs_f64(),
            power.acknowledged
        ));
    }
}
