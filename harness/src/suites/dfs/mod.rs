//! The distributed file server's suite (system 2): OSTEP's MFS over UDP.
//!
//! The server under test is the `server` program (`DFS_IMPL`, `--impl CMD`; ours:
//! `mfs-server`), run as `CMD PORT IMAGE`. Every reply is compared with the
//! sequential spec in `specs::mfs`; after crashes and power failures the image is
//! checked with the `fsck` program (`DFS_FSCK`, `--impl fsck=CMD`; ours: `mfsck`, and
//! `none` skips the check) and the served tree compared with the spec. The C client
//! tests link a client library: `DFS_LIBMFS` (a `.so` path) or our `libmfs.so`. The
//! protocol, the spec and how to plug in a server are in docs/dfs.md.
//!
//! Known-bad runs set `DFS_BUG=<variant>` for our server and our client library alike;
//! each reads only its own variants (the library's start with `client-`).

mod basic;
mod c_client;
mod crash;
mod damage;
mod lossy;
mod self_check;
mod support;

use crate::suite::{KnownBad, Program, Suite, TestCase};

/// Every reply equals the sequential spec's (`specs::mfs::FsSpec`).
pub const SPEC: &str = "spec";
/// A retried or duplicated request runs once: replies and the tree equal the spec
/// applied once per request, whatever the network did.
pub const EXACTLY_ONCE: &str = "exactly-once";
/// An acknowledged change survives a SIGKILL, a power failure and a restart.
pub const DURABILITY: &str = "durability";
/// After a crash or a power failure the image passes the checker and the server boots
/// on it.
pub const RECOVERY: &str = "recovery";
/// Malformed datagrams get error replies and never stop the server.
pub const BAD_INPUT: &str = "bad-input";
/// A damaged image is refused at boot with an error (a non-zero exit and a message,
/// no crash) or served without the server dying; one the checker passes is served.
pub const DAMAGED_IMAGE: &str = "damaged-image";
/// Shutdown is answered, then the server exits with status 0.
pub const SHUTDOWN: &str = "shutdown";
/// A C program using `mfs.h` and the client library sees the seed's results.
pub const C_INTERFACE: &str = "c-interface";
/// The client library sends a request again when its datagram is lost.
pub const CLIENT_RETRY: &str = "client-retry";

/// The variable of the image checker program.
pub const FSCK: &str = "DFS_FSCK";

pub static SUITE: Suite = Suite {
    name: "dfs",
    title: "distributed file server (OSTEP MFS over UDP)",
    programs: &[
        Program {
            var: "DFS_IMPL",
            bin: "mfs-server",
            key: "server",
            run_as: "CMD PORT IMAGE: serves wire protocol v1 on UDP PORT, creates IMAGE if absent",
        },
        Program {
            var: FSCK,
            bin: "mfsck",
            key: "fsck",
            run_as: "CMD IMAGE: exit 0 = consistent, run after crashes; `none` skips it (ours \
                     checks only our server's images)",
        },
    ],
    bug_var: "DFS_BUG",
    simulated: false,
    tests: TESTS,
    self_checks: self_check::CHECKS,
    known_bad: &[
        KnownBad {
            variant: "no-fsync",
            what: "acknowledges changes without ever calling fdatasync",
            test: "power::power_loss_during_writes_1",
            property: DURABILITY,
        },
        KnownBad {
            variant: "reply-before-fsync",
            what: "replies before the change's record is written and synced",
            test: "crash::kill_during_writes_1",
            property: DURABILITY,
        },
        KnownBad {
            variant: "checkpoint-first",
            what: "stores the checkpoint region before the log it covers",
            test: "crash::kill_during_writes_1",
            property: RECOVERY,
        },
        KnownBad {
            variant: "no-dedup",
            what: "runs retried and duplicated requests again",
            test: "lossy::delayed_duplicates_run_once",
            property: EXACTLY_ONCE,
        },
        KnownBad {
            variant: "client-no-retry",
            what: "the client library gives up after one timeout",
            test: "c_client::program_resends_a_dropped_request",
            property: CLIENT_RETRY,
        },
    ],
    docs: "docs/dfs.md",
};

const fn test(name: &'static str, run: fn(&mut crate::suite::Context)) -> TestCase {
    TestCase {
        name,
        after: None,
        run,
    }
}

const TESTS: &[TestCase] = &[
    test(
        "basic::root_has_dot_and_dotdot",
        basic::root_has_dot_and_dotdot,
    ),
    test("basic::creat_lookup_stat", basic::creat_lookup_stat),
    test("basic::dot_and_dotdot", basic::dot_and_dotdot),
    test(
        "basic::names_of_27_and_28_bytes",
        basic::names_of_27_and_28_bytes,
    ),
    test(
        "basic::file_limit_is_14_blocks",
        basic::file_limit_is_14_blocks,
    ),
    test("basic::reads_of_holes", basic::reads_of_holes),
    test(
        "basic::writes_to_directories_fail",
        basic::writes_to_directories_fail,
    ),
    test("basic::lookups_in_files_fail", basic::lookups_in_files_fail),
    test(
        "basic::unlink_of_non_empty_directory_fails",
        basic::unlink_of_non_empty_directory_fails,
    ),
    test(
        "basic::invalid_inode_numbers_fail",
        basic::invalid_inode_numbers_fail,
    ),
    test("basic::full_directories", basic::full_directories),
    test("basic::inode_exhaustion", basic::inode_exhaustion),
    test(
        "basic::malformed_datagrams_get_errors_not_crashes",
        basic::malformed_datagrams_get_errors_not_crashes,
    ),
    test(
        "basic::random_workload_matches_the_spec",
        basic::random_workload_matches_the_spec,
    ),
    test(
        "basic::shutdown_exits_cleanly",
        basic::shutdown_exits_cleanly,
    ),
    test(
        "restart::same_tree_after_clean_shutdown",
        basic::same_tree_after_clean_shutdown,
    ),
    test(
        "restart::a_missing_image_is_created_consistent",
        basic::a_missing_image_is_created_consistent,
    ),
    test(
        "restart::damaged_images_are_refused_or_served",
        damage::damaged_images_are_refused_or_served,
    ),
    test(
        "lossy::results_equal_the_spec_applied_once",
        lossy::results_equal_the_spec_applied_once,
    ),
    test(
        "lossy::delayed_duplicates_run_once",
        lossy::delayed_duplicates_run_once,
    ),
    test("crash::kill_during_writes_1", |cx| {
        crash::crash_points(cx, 1, 60)
    }),
    test("crash::kill_during_writes_2", |cx| {
        crash::crash_points(cx, 2, 60)
    }),
    test("crash::kill_during_writes_3", |cx| {
        crash::crash_points(cx, 3, 60)
    }),
    test("crash::kill_during_writes_4", |cx| {
        crash::crash_points(cx, 4, 60)
    }),
    test("power::power_loss_during_writes_1", |cx| {
        crash::power_loss_points(cx, 1, 110)
    }),
    test("power::power_loss_during_writes_2", |cx| {
        crash::power_loss_points(cx, 2, 110)
    }),
    test("power::power_loss_with_concurrent_writers", |cx| {
        crash::concurrent_points(cx, 60)
    }),
    test("power::power_loss_while_overwriting", |cx| {
        crash::overwrite_points(cx, 16)
    }),
    test(
        "c_client::program_linked_with_libmfs",
        c_client::program_linked_with_libmfs,
    ),
    test(
        "c_client::program_through_a_lossy_relay",
        c_client::program_through_a_lossy_relay,
    ),
    test(
        "c_client::program_resends_a_dropped_request",
        c_client::program_resends_a_dropped_request,
    ),
];
