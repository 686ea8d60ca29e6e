//! Damaged images: what a server does with an image no crash of it leaves (a byte
//! flipped by the disk, a file cut short, a sector lost). Each implementation's image
//! format is its own, so the suite damages blindly, and asks only what any server
//! owes bad input: a clear refusal or service, never a crash or a hang, and no
//! refusal of an image the implementation's own checker passes.

use std::process::ExitStatus;

use rand::rngs::StdRng;
use rand::Rng;
use specs::mfs::wire::{Reply, Request};
use specs::mfs::{BLOCK_SIZE, MAX_INODES};

use super::support::*;
use super::{DAMAGED_IMAGE, SHUTDOWN};
use crate::suite::property::HARNESS;
use crate::suite::{fail, Context};

/// Damaged copies of the image, a quarter of them each way.
const COPIES: usize = 24;
/// Requests the walk of a served damaged image may make (a damaged directory may
/// name thousands of inodes).
const WALK_LIMIT: usize = 3000;

/// An image the server made (a random workload, then Shutdown) is damaged in 24
/// copies: a byte flipped anywhere, a byte flipped in its first 16 (where a format
/// keeps its header), the file cut at a random length, a 512-byte sector zeroed. The
/// checker, when there is one, judges each copy first; then the server is started on
/// it and must either refuse it (exit with a non-zero status and a message, not by a
/// signal, a panic or a traceback) or serve it (answer a walk of whatever tree it
/// finds, any replies, and still run after). A copy the checker passes must be served.
pub(super) fn damaged_images_are_refused_or_served(cx: &mut Context) {
    let mut rng = cx.rng(1);
    let image = cx.dir().join("fs.img");
    let mut server = Server::first(cx, &image);
    let mut conn = server.conn();
    ok(random_workload(
        &mut conn,
        &mut specs::mfs::FsSpec::new(),
        &mut rng,
        200,
    ));
    if ok(conn.call(&Request::Shutdown)) != Reply::Ok(0) {
        fail(SHUTDOWN, "Shutdown was not answered with 0");
    }
    server.wait_exit().unwrap_or_else(|e| fail(SHUTDOWN, e));
    drop(server);
    let original = std::fs::read(&image)
        .unwrap_or_else(|e| fail(HARNESS, format!("reading {}: {e}", image.display())));
    let imp = cx.implementation();
    let fsck = fsck_for(cx, &imp);
    let (mut refused, mut served, mut checker_passed) = (0, 0, 0);
    for k in 0..COPIES {
        let (how, damaged) = damage(&original, k % 4, &mut rng);
        let path = cx.dir().join(format!("damaged-{k}.img"));
        std::fs::write(&path, &damaged)
            .unwrap_or_else(|e| fail(HARNESS, format!("writing {}: {e}", path.display())));
        let what = format!("copy {k} of the image ({how})");
        // Before the server: a server may repair the image it boots.
        let passed = fsck.as_ref().is_some_and(|f| check_image(f, &path).is_ok());
        checker_passed += usize::from(passed);
        match Server::boot(&imp, cx.dir(), &path, &cx.evidence()) {
            Ok(Boot::Serving(mut server)) => {
                served += 1;
                walk(&mut server.conn()).unwrap_or_else(|e| {
                    fail(
                        DAMAGED_IMAGE,
                        format!("serving {what}, the server stopped answering: {e}"),
                    )
                });
                if let Ok(Some(status)) = server.process.try_wait() {
                    fail(
                        DAMAGED_IMAGE,
                        format!(
                            "serving {what}, the server exited ({status}):\n{}",
                            server.log_tail()
                        ),
                    );
                }
            }
            Ok(Boot::Exited(status, log)) => {
                refused += 1;
                if let Some(why) = not_a_clear_refusal(status, &log) {
                    fail(
                        DAMAGED_IMAGE,
                        format!("started on {what}, the server {why}:\n{log}"),
                    );
                }
                if passed {
                    fail(
                        DAMAGED_IMAGE,
                        format!(
                            "the image checker passes {what}, but the server refuses it \
                             ({status}):\n{log}"
                        ),
                    );
                }
            }
            Ok(Boot::Hung(log)) => fail(
                DAMAGED_IMAGE,
                format!("started on {what}, the server neither served nor exited:\n{log}"),
            ),
            Err(e) => fail(HARNESS, e),
        }
    }
    cx.note(format!(
        "{COPIES} damaged copies of a {}-byte image: {refused} refused, {served} served; \
         {checker_passed} passed the checker{}",
        original.len(),
        if fsck.is_none() {
            " (there is none)"
        } else {
            ""
        }
    ));
}

/// The copy damaged one of four ways, and how.
fn damage(image: &[u8], way: usize, rng: &mut StdRng) -> (String, Vec<u8>) {
    let mut copy = image.to_vec();
    if copy.is_empty() {
        return ("empty, left as it is".into(), copy);
    }
    match way {
        0 | 1 => {
            let at = match way {
                0 => rng.gen_range(0..copy.len()),
                _ => rng.gen_range(0..copy.len().min(16)),
            };
            let flip = rng.gen_range(1..=255u8);
            copy[at] ^= flip;
            (format!("byte {at} xor {flip:#04x}"), copy)
        }
        2 => {
            let len = rng.gen_range(0..copy.len());
            copy.truncate(len);
            (format!("cut to {len} bytes"), copy)
        }
        _ => {
            let sector = rng.gen_range(0..copy.len().div_ceil(512));
            let end = (sector * 512 + 512).min(copy.len());
            copy[sector * 512..end].fill(0);
            (
                format!("sector {sector} (byte {}) zeroed", sector * 512),
                copy,
            )
        }
    }
}

/// Why an exit is not a clear refusal, if it is not: a clear one has a non-zero
/// status and a message, and is no crash (a signal, a Rust panic, a Python traceback).
fn not_a_clear_refusal(status: ExitStatus, log: &str) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        return Some(format!("was killed by signal {signal}"));
    }
    if status.success() {
        return Some("exited with status 0 without serving".into());
    }
    if log.contains("panicked at") || log.contains("Traceback (most recent call last)") {
        return Some(format!("crashed ({status})"));
    }
    if log.trim().is_empty() {
        return Some(format!("exited ({status}) without a word"));
    }
    None
}

/// Walks whatever tree a server serves from the root: each inode's Stat, each of its
/// blocks, and the inodes its directory blocks name. Any reply will do (the image was
/// damaged); every request must get one. Returns the requests made.
fn walk(conn: &mut Conn) -> Result<usize, String> {
    let mut seen = vec![false; MAX_INODES as usize];
    let mut stack = vec![0i32];
    seen[0] = true;
    let mut requests = 0;
    while let Some(inum) = stack.pop() {
        if requests >= WALK_LIMIT {
            break;
        }
        requests += 1;
        let Reply::Stat { kind, size } =
            conn.call(&Request::Stat { inum }).map_err(|f| f.message)?
        else {
            continue;
        };
        let blocks = (size.max(0) as usize / BLOCK_SIZE).min(14);
        for block in 0..blocks as i32 {
            requests += 1;
            let reply = conn
                .call(&Request::Read { inum, block })
                .map_err(|f| f.message)?;
            let Reply::Data(data) = reply else {
                continue;
            };
            if kind != 0 {
                continue;
            }
            for (_, child) in dir_entries(&data[..]) {
                if (0..MAX_INODES).contains(&child) && !seen[child as usize] {
                    seen[child as usize] = true;
                    stack.push(child);
                }
            }
        }
    }
    Ok(requests)
}
