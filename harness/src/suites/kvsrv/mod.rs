//! The key/value server's suite (6.5840's kvsrv, with Maelstrom's lin-kv operations
//! plus fetch-and-append).
//!
//! Each test starts one server node (`n1`) behind the simulated network, runs
//! harness clients against it, and judges the run: progress (most operations
//! succeed, every client makes progress), no protocol errors, the test's own property
//! (every append present once, memory bounds...) and, always, the whole history
//! checked for linearizability against `specs::KvFetchAppend`.

mod run;
mod self_check;
mod tests;

use crate::suite::{property, KnownBad, Program, Suite, TestCase};

pub use run::KvProtocol;

/// Our binary.
pub const BIN: &str = "kvsrv";

/// An acknowledged append is present exactly once, a failed one not at all.
pub const EXACTLY_ONCE: &str = "exactly-once";
/// A request sent again (same client and seq) after its answer was lost is answered
/// again, so a server that is up answers every operation in the end.
pub const RETRIES_ANSWERED: &str = "retries-answered";
/// Remembered answers and per-client state stay within their memory bounds.
pub const BOUNDED_MEMORY: &str = property::BOUNDED_MEMORY;

pub static SUITE: Suite = Suite {
    name: "kvsrv",
    title: "key/value server",
    programs: &[Program {
        var: "KVSRV_IMPL",
        bin: BIN,
        key: "kvsrv",
        run_as: "CMD: one node speaking the node protocol on stdin/stdout",
    }],
    bug_var: "KVSRV_BUG",
    simulated: true,
    tests: TESTS,
    self_checks: self_check::CHECKS,
    known_bad: &[
        KnownBad {
            variant: "double-append",
            what: "applies a retried append twice",
            test: "append::one_key_many_appenders",
            property: EXACTLY_ONCE,
        },
        KnownBad {
            variant: "stale-read",
            what: "answers reads from a stale copy",
            test: "basic::one_client",
            property: property::LINEARIZABLE,
        },
        KnownBad {
            variant: "copy-replies",
            what: "remembers append answers as copies of the value",
            test: "memory::append_answers_not_copied",
            property: BOUNDED_MEMORY,
        },
    ],
    docs: "docs/kvsrv.md",
};

const TESTS: &[TestCase] = &[
    TestCase {
        name: "basic::one_client",
        after: Some("6.5840 kvsrv TestBasic2"),
        run: |cx| tests::with_server(cx, tests::basic_one_client),
    },
    TestCase {
        name: "basic::lin_kv_ops",
        after: Some("Maelstrom lin-kv (read, write, cas)"),
        run: |cx| tests::with_server(cx, tests::basic_lin_kv_ops),
    },
    TestCase {
        name: "concurrent::many_clients",
        after: Some("6.5840 kvsrv TestConcurrent2"),
        run: |cx| tests::with_server(cx, tests::concurrent_many_clients),
    },
    TestCase {
        name: "unreliable::lossy_duplicating",
        after: Some("6.5840 kvsrv TestConcurrentUnreliable2"),
        run: |cx| tests::with_server(cx, tests::unreliable_lossy_duplicating),
    },
    TestCase {
        name: "unreliable::partitions",
        after: None,
        run: |cx| tests::with_server(cx, tests::unreliable_partitions),
    },
    TestCase {
        name: "unreliable::server_paused",
        after: None,
        run: |cx| tests::with_server(cx, tests::unreliable_server_paused),
    },
    TestCase {
        name: "append::one_key_many_appenders",
        after: Some("6.5840 kvsrv TestUnreliableOneKey2"),
        run: |cx| tests::with_server(cx, tests::append_one_key_many_appenders),
    },
    TestCase {
        name: "memory::append_answers_not_copied",
        after: Some("6.5840 kvsrv TestMemAppend2"),
        run: |cx| tests::with_server(cx, tests::memory_append_answers_not_copied),
    },
    TestCase {
        name: "memory::replaced_values_freed",
        after: None,
        run: |cx| tests::with_server(cx, tests::memory_replaced_values_freed),
    },
    TestCase {
        name: "memory::many_clients_cost_bytes",
        after: Some("6.5840 kvsrv TestMemPutManyClients"),
        run: |cx| tests::with_server(cx, tests::memory_many_clients_cost_bytes),
    },
];
