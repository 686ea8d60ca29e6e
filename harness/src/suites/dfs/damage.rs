//! Damaged images: what a server does with an image no crash of it leaves (a byte
//! flipped by the disk, a file cut short, a sector lost). Each implementation's image
//! format is its own, so the suite damages blindly, and asks only what any server
//! owes bad input: a clear refusal or service, never a crash or a hang, and no
//! refusal of an image the implementation's own checker passes.

use std::collections::HashSet;
use std::process::ExitStatus;

use rand::rngs::StdRng;
use rand::Rng;
use specs::mfs::wire::{Reply, Request};
use specs::mfs::{BLOCK_SIZE, MAX_INODES};

use super::support::*;
use super::{DAMAGED_IMAGE, SHUTDOWN};
use crate::suite::property::HARNESS;
use crate::suite::{fail, Context};

/// Damaged copies of the image, as many each way.
const COPIES: usize = 36;
/// Requests the walk of a served damaged image may make (a damaged directory may
/// name thousands of inodes).
const WALK_LIMIT: usize = 3000;

/// An image the server made (a random workload, then Shutdown) is damaged in 36
/// copies: a byte flipped anywhere, a byte flipped in its first 16 (where a format
/// keeps its header), the file cut at a random length, a 512-byte sector zeroed, and
/// a byte outside the files' data flipped or moved by one. The
/// checker, when there is one, judges each copy first; then the server is started on
/// it and must either refuse it (exit with a non-zero status and a message, not by a
/// signal, a panic or a traceback) or serve it (answer a walk of whatever tree it
/// finds, any replies, and still run after). A copy the checker passes must be served.
pub(super) fn damaged_images_are_refused_or_served(cx: &mut Context) {
    let mut rng = cx.rng(1);
    let image = cx.dir().join("fs.img");
    let mut server = Server::first(cx, &image);
    let mut conn = server.conn();
    // The tags of every block written (`pattern_block`), to tell the files' data in
    // the image from the rest.
    let mut tags = HashSet::new();
    ok(random_workload_seen(
        &mut conn,
        &mut specs::mfs::FsSpec::new(),
        &mut rng,
        200,
        |request| {
            if let Request::Write { data, .. } = request {
                tags.insert(block_tag(&data[..]));
            }
        },
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
    let metadata = outside_data(&original, &tags);
    let (mut refused, mut served, mut checker_passed) = (0, 0, 0);
    for k in 0..COPIES {
        let (how, damaged) = damage(&original, &metadata, k % WAYS, &mut rng);
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
        "{COPIES} damaged copies of a {}-byte image ({} bytes of it neither the files' \
         data nor unused): {refused} refused, {served} served; {checker_passed} passed the checker{}",
        original.len(),
        metadata.len(),
        if fsck.is_none() {
            " (there is none)"
        } else {
            ""
        }
    ));
}

/// The first eight bytes of a block the workload wrote, which `pattern_block`
/// repeats at the start of each of its 512-byte pieces.
fn block_tag(block: &[u8]) -> [u8; 8] {
    block[..8].try_into().expect("a block holds 8 bytes")
}

/// The offsets of the image that hold neither the files' data nor unused space: every
/// 512-byte piece of a written block starts with its block's tag, so a piece is found
/// wherever a tag is, whatever the format, and a run of zeros a block long or longer
/// is taken for space not yet used. What is left is the format's own: headers, maps,
/// inodes, directories. (A format that transforms data leaves more here.)
fn outside_data(image: &[u8], tags: &HashSet<[u8; 8]>) -> Vec<usize> {
    let mut skip = vec![false; image.len()];
    for at in 0..image.len().saturating_sub(7) {
        if tags.contains(&block_tag(&image[at..])) {
            let end = (at + 512).min(image.len());
            skip[at..end].fill(true);
        }
    }
    let mut at = 0;
    while at < image.len() {
        let zeros = image[at..].iter().take_while(|&&b| b == 0).count();
        if zeros >= BLOCK_SIZE {
            skip[at..at + zeros].fill(true);
        }
        at += zeros.max(1);
    }
    (0..image.len()).filter(|&at| !skip[at]).collect()
}

/// The ways of damage, a copy each in turn.
const WAYS: usize = 6;

/// The copy damaged one of [`WAYS`] ways, and how.
fn damage(image: &[u8], metadata: &[usize], way: usize, rng: &mut StdRng) -> (String, Vec<u8>) {
    let mut copy = image.to_vec();
    if copy.is_empty() {
        return ("empty, left as it is".into(), copy);
    }
    // Most of an image is the files' data, which a format stores without reading it;
    // the last two ways aim at the rest, where a server's checks are.
    let in_metadata = |rng: &mut StdRng| match metadata {
        [] => rng.gen_range(0..image.len()),
        _ => metadata[rng.gen_range(0..metadata.len())],
    };
    match way {
        4 => {
            let at = in_metadata(rng);
            let flip = rng.gen_range(1..=255u8);
            copy[at] ^= flip;
            (
                format!("byte {at}, outside the files' data, xor {flip:#04x}"),
                copy,
            )
        }
        5 => {
            // Off by one: a length or a position just past, or short of, a bound.
            let at = in_metadata(rng);
            let up = rng.gen_bool(0.5);
            copy[at] = if up {
                copy[at].wrapping_add(1)
            } else {
                copy[at].wrapping_sub(1)
            };
            let by = if up { "plus" } else { "minus" };
            (format!("byte {at}, outside the files' data, {by} 1"), copy)
        }
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
