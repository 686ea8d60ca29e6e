//! Every request and failure mode against the spec, and restarts after a clean
//! Shutdown.

use std::time::Duration;

use specs::mfs::wire::{self, zero_block, Reply, Request};
use specs::mfs::{FsSpec, DIRENT_SIZE, NAME_FIELD};

use super::support::*;
use super::{BAD_INPUT, DURABILITY, RECOVERY, SHUTDOWN, SPEC};
use crate::suite::{fail, Context};

fn start(cx: &Context) -> (Server, Conn, FsSpec) {
    let server = Server::first(cx, &cx.dir().join("fs.img"));
    let conn = server.conn();
    (server, conn, FsSpec::new())
}

/// Applies each request to server and spec and stops at the first disagreement.
pub(super) fn expect_all(conn: &mut Conn, spec: &mut FsSpec, requests: &[Request]) {
    for r in requests {
        ok(checked(conn, spec, r));
    }
}

pub(super) fn creat(pinum: i32, kind: i32, n: &str) -> Request {
    Request::Creat {
        pinum,
        kind,
        name: name(n),
    }
}

pub(super) fn lookup(pinum: i32, n: &str) -> Request {
    Request::Lookup {
        pinum,
        name: name(n),
    }
}

pub(super) fn unlink(pinum: i32, n: &str) -> Request {
    Request::Unlink {
        pinum,
        name: name(n),
    }
}

pub(super) fn write(inum: i32, block: i32, byte: u8) -> Request {
    let mut data = zero_block();
    data.fill(byte);
    Request::Write { inum, block, data }
}

/// `r` must get `want` (which the spec agrees with).
fn must(conn: &mut Conn, spec: &mut FsSpec, r: Request, want: Reply) {
    let got = ok(checked(conn, spec, &r));
    if got != want {
        fail(
            SPEC,
            format!("{r:?}: the server replied {got:?}, expected {want:?}"),
        );
    }
}

/// The server's whole tree must be the spec's.
fn same_tree(conn: &mut Conn, spec: &mut FsSpec) {
    let got = ok(dump(conn));
    let want = ok(dump(spec));
    if got != want {
        fail(
            SPEC,
            format!("trees differ: {}", first_difference(&got, &want)),
        );
    }
}

/// `bytes`, sent once, must get the error reply `want` within `wait`.
fn expect_error(c: &Conn, bytes: &[u8], wait: Duration, want: Reply, what: &str) {
    let Some(reply) = c.raw(bytes, wait) else {
        fail(
            BAD_INPUT,
            format!("no reply to {what} within {wait:?} (expected {want:?})"),
        );
    };
    match wire::decode_reply(&reply) {
        Ok((_, r)) if r == want => {}
        Ok((_, r)) => fail(BAD_INPUT, format!("{what} got {r:?}, expected {want:?}")),
        Err(e) => fail(BAD_INPUT, format!("{what} got an undecodable reply: {e}")),
    }
}

pub(super) fn root_has_dot_and_dotdot(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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

pub(super) fn creat_lookup_stat(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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

pub(super) fn dot_and_dotdot(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
    expect_all(&mut c, &mut spec, &[creat(0, 0, "a"), creat(1, 0, "b")]);
    must(&mut c, &mut spec, lookup(2, ".."), Reply::Ok(1));
    must(&mut c, &mut spec, lookup(2, "."), Reply::Ok(2));
    must(&mut c, &mut spec, lookup(1, ".."), Reply::Ok(0));
    must(&mut c, &mut spec, unlink(1, "."), Reply::Failed);
    must(&mut c, &mut spec, unlink(1, ".."), Reply::Failed);
    // In an empty directory too, where a server that took "." for an entry like
    // any other would find it empty and remove the directory from itself.
    must(&mut c, &mut spec, unlink(2, "."), Reply::Failed);
    must(&mut c, &mut spec, unlink(2, ".."), Reply::Failed);
    same_tree(&mut c, &mut spec);
    must(&mut c, &mut spec, creat(1, 1, ".."), Reply::Ok(0));
    expect_all(&mut c, &mut spec, &[Request::Read { inum: 2, block: 0 }]);
}

pub(super) fn names_of_27_and_28_bytes(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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

pub(super) fn file_limit_is_14_blocks(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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

pub(super) fn reads_of_holes(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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

pub(super) fn writes_to_directories_fail(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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

pub(super) fn lookups_in_files_fail(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
    expect_all(&mut c, &mut spec, &[creat(0, 1, "f")]);
    must(&mut c, &mut spec, lookup(1, "."), Reply::Failed);
    must(&mut c, &mut spec, lookup(1, "x"), Reply::Failed);
    must(&mut c, &mut spec, unlink(1, "x"), Reply::Failed);
    // A file whose first block reads like a directory's (`.`, `..` and `x` naming
    // the root): a server that searched a file's blocks for names would find them.
    let mut data = zero_block();
    for (slot, (n, inum)) in [(".", 1i32), ("..", 0), ("x", 0)].into_iter().enumerate() {
        let entry = &mut data[slot * DIRENT_SIZE..(slot + 1) * DIRENT_SIZE];
        entry[..n.len()].copy_from_slice(n.as_bytes());
        entry[NAME_FIELD..].copy_from_slice(&inum.to_le_bytes());
    }
    for entry in data[3 * DIRENT_SIZE..].chunks_mut(DIRENT_SIZE) {
        entry[NAME_FIELD..].copy_from_slice(&(-1i32).to_le_bytes());
    }
    expect_all(
        &mut c,
        &mut spec,
        &[Request::Write {
            inum: 1,
            block: 0,
            data,
        }],
    );
    must(&mut c, &mut spec, lookup(1, "."), Reply::Failed);
    must(&mut c, &mut spec, lookup(1, "x"), Reply::Failed);
    must(&mut c, &mut spec, unlink(1, "x"), Reply::Failed);
}

pub(super) fn unlink_of_non_empty_directory_fails(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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

pub(super) fn invalid_inode_numbers_fail(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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

pub(super) fn full_directories(cx: &mut Context) {
    let (server, mut c, mut spec) = start(cx);
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
    // The first two entries of the second block (where the first holds `.` and
    // `..`) freed: a sound image the checker must pass as it is.
    must(&mut c, &mut spec, unlink(0, "f126"), Reply::Ok(0));
    must(&mut c, &mut spec, unlink(0, "f127"), Reply::Ok(0));
    same_tree(&mut c, &mut spec);
    drop(c);
    drop(server);
    if let Some(fsck) = fsck_for(cx, &cx.implementation()) {
        let image = cx.dir().join("fs.img");
        ok(check_image(&fsck, &image).map_err(|f| within("a full directory's image", f)));
    }
}

pub(super) fn inode_exhaustion(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
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
    assert_eq!(made, 4096, "the test makes every inode");
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

pub(super) fn malformed_datagrams_get_errors_not_crashes(cx: &mut Context) {
    let (mut server, mut c, mut spec) = start(cx);
    expect_all(&mut c, &mut spec, &[creat(0, 1, "f"), write(1, 0, 3)]);
    // Replies to malformed datagrams are not retried: wait 50 times the slowest
    // round trip measured now (at least 300 ms), so a loaded machine is not a failure.
    let wait = (ok(server.slowest_round_trip()) * 50).max(Duration::from_millis(300));
    let valid = wire::encode_request(99, 1, &write(1, 0, 4));
    // Every truncation past the header gets a Malformed reply, and changes nothing.
    for cut in [20, 21, 24, 27, 28, 100, valid.len() - 1] {
        expect_error(
            &c,
            &valid[..cut],
            wait,
            Reply::Malformed,
            &format!("a Write truncated to {cut} bytes"),
        );
    }
    let mut long = valid.clone();
    long.push(0);
    expect_error(
        &c,
        &long,
        wait,
        Reply::Malformed,
        "a Write one byte too long",
    );
    let mut unknown = wire::encode_request(99, 2, &Request::Shutdown);
    unknown[3] = 42;
    expect_error(&c, &unknown, wait, Reply::Malformed, "op code 42");
    let mut v2 = wire::encode_request(99, 3, &Request::Stat { inum: 0 });
    v2[2] = 2;
    expect_error(
        &c,
        &v2,
        wait,
        Reply::BadVersion,
        "a Stat of protocol version 2",
    );
    // Not MFS at all: no reply is fine, a crash is not.
    for junk in [&b""[..], b"x", b"GET / HTTP/1.0\r\n\r\n", &[0xFF; 2000]] {
        let _ = c.raw(junk, Duration::from_millis(50));
    }
    let name300 = {
        let mut d = wire::encode_request(99, 4, &lookup(0, "a"));
        d[24] = 200; // claims a 200-byte name, carries 1
        d
    };
    expect_error(
        &c,
        &name300,
        wait,
        Reply::Malformed,
        "a Lookup whose name length says 200 bytes and carries 1",
    );
    if let Ok(Some(status)) = server.process.try_wait() {
        fail(
            BAD_INPUT,
            format!(
                "the server died ({status}) on malformed datagrams:\n{}",
                server.log_tail()
            ),
        );
    }
    expect_all(
        &mut c,
        &mut spec,
        &[
            Request::Read { inum: 1, block: 0 },
            Request::Stat { inum: 1 },
        ],
    );
}

pub(super) fn random_workload_matches_the_spec(cx: &mut Context) {
    let (_s, mut c, mut spec) = start(cx);
    let mut rng = cx.rng(1);
    ok(random_workload(&mut c, &mut spec, &mut rng, 400));
    same_tree(&mut c, &mut spec);
}

pub(super) fn shutdown_exits_cleanly(cx: &mut Context) {
    let (mut server, mut c, mut spec) = start(cx);
    must(&mut c, &mut spec, Request::Shutdown, Reply::Ok(0));
    let status = server.wait_exit().unwrap_or_else(|e| fail(SHUTDOWN, e));
    if !status.success() {
        fail(
            SHUTDOWN,
            format!("the server exited with {status} after Shutdown"),
        );
    }
}

pub(super) fn same_tree_after_clean_shutdown(cx: &mut Context) {
    let (mut server, mut c, mut spec) = start(cx);
    let mut rng = cx.rng(1);
    ok(random_workload(&mut c, &mut spec, &mut rng, 200));
    let before = ok(dump(&mut c));
    must(&mut c, &mut spec, Request::Shutdown, Reply::Ok(0));
    server.wait_exit().unwrap_or_else(|e| fail(SHUTDOWN, e));
    let image = cx.dir().join("fs.img");
    for round in 0..2 {
        let server = Server::start(&cx.implementation(), cx.dir(), &image, &cx.evidence())
            .unwrap_or_else(|e| {
                fail(
                    RECOVERY,
                    format!("restart {round} after a clean Shutdown: {e}"),
                )
            });
        let mut c = server.conn();
        let after = ok(dump(&mut c));
        if before != after {
            fail(
                DURABILITY,
                format!(
                    "restart {round} after a clean Shutdown serves another tree: {}",
                    first_difference(&after, &before)
                ),
            );
        }
        expect_all(&mut c, &mut spec.clone(), &[Request::Shutdown]);
    }
}

pub(super) fn a_missing_image_is_created_consistent(cx: &mut Context) {
    let (server, mut c, mut spec) = start(cx);
    let image = cx.dir().join("fs.img");
    if !image.exists() {
        fail(
            SPEC,
            format!(
                "the server did not create the missing image {}",
                image.display()
            ),
        );
    }
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
    if let Some(fsck) = fsck_for(cx, &cx.implementation()) {
        ok(check_image(&fsck, &image).map_err(|f| within("the image the server created", f)));
    }
}
