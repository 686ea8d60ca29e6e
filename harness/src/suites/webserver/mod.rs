//! The concurrent web server's suite (system 1, after OSTEP's
//! concurrency-webserver project).
//!
//! Each test starts the server under test as a real process on a reserved port,
//! `-d root -p port` plus the test's options from the seed's command line
//! (`[-t threads] [-b buffers] [-s FIFO|SFF]`), speaks HTTP to it over TCP, and
//! reads its threads, CPU time, children and sockets from /proc. A server other
//! than ours is expected to time out silent clients within `WEBSERVER_TIMEOUT`
//! seconds (default 5) and CGI programs within `WEBSERVER_CGI_TIMEOUT` (default:
//! the client timeout); ours is started with `--timeout 2 --cgi-timeout 4`.

mod bounded_buffer;
mod browser;
mod checks;
mod cli;
mod concurrency;
mod http;
mod memory;
mod scheduling;
mod security;
mod self_check;
mod support;

use crate::suite::{KnownBad, Program, Suite, TestCase};

/// Our binary.
pub const BIN: &str = "wserver";

/// The process keeps exactly threads + 1 threads (the pool and the master), before,
/// during and after a burst of requests.
pub const FIXED_POOL: &str = "fixed-pool";
/// With every worker busy and every slot of the buffer taken, the master stops
/// accepting connections.
pub const BOUNDED_BUFFER: &str = "bounded-buffer";
/// Idle, or blocked with the buffer full, the server uses next to no CPU.
pub const NO_BUSY_WAITING: &str = "no-busy-waiting";
/// `-s SFF` serves the smallest queued file first.
pub const SFF_ORDER: &str = "sff-order";
/// No request reaches a file outside the document root.
pub const STAYS_IN_ROOT: &str = "stays-in-root";
/// A request on a kept-alive connection is answered as promptly as one on a new
/// connection.
pub const KEEP_ALIVE: &str = "keep-alive";
/// A request on a new connection is answered about as promptly as a loopback
/// exchange: the server does not nap between accepts.
pub const PROMPT: &str = "prompt";
/// Memory does not grow with the connections served: 25,000 of them, kept-alive
/// and refused, leave the server as large as it was.
pub const BOUNDED_MEMORY: &str = crate::suite::property::BOUNDED_MEMORY;
/// The server goes on serving after any request, however bad.
pub const KEEPS_SERVING: &str = "keeps-serving";
/// A connection its client closes or resets in the middle of a request head is
/// closed at once, not held until the client timeout.
pub const RELEASES_CONNECTIONS: &str = "releases-connections";

pub static SUITE: Suite = Suite {
    name: "webserver",
    title: "concurrent web server",
    programs: &[Program {
        var: "WEBSERVER_IMPL",
        bin: BIN,
        key: "webserver",
        run_as:
            "CMD -d ROOT -p PORT [-t threads] [-b buffers] [-s FIFO|SFF]: an HTTP server on PORT",
    }],
    bug_var: "WEBSERVER_BUG",
    simulated: false,
    tests: TESTS,
    self_checks: self_check::CHECKS,
    known_bad: &[
        KnownBad {
            variant: "thread-per-request",
            what: "starts a thread for every request instead of a fixed pool",
            test: "concurrency::fixed_pool",
            property: FIXED_POOL,
        },
        KnownBad {
            variant: "busy-wait",
            what: "workers poll the buffer in a loop",
            test: "concurrency::no_busy_waiting",
            property: NO_BUSY_WAITING,
        },
        KnownBad {
            variant: "ignore-sff",
            what: "accepts -s SFF but serves in arrival order",
            test: "scheduling::sff_serves_smallest_first",
            property: SFF_ORDER,
        },
        KnownBad {
            variant: "follow-dotdot",
            what: "joins request paths to the root unchecked, so `..` escapes it",
            test: "security::path_traversal_refused",
            property: STAYS_IN_ROOT,
        },
    ],
    docs: "docs/webserver.md",
};

const OSTEP: &str = "OSTEP concurrency-webserver";

const TESTS: &[TestCase] = &[
    TestCase {
        name: "cli::defaults",
        after: Some(OSTEP),
        run: cli::defaults,
    },
    TestCase {
        name: "cli::rejects_bad_arguments",
        after: None,
        run: cli::rejects_bad_arguments,
    },
    TestCase {
        name: "http::responses_are_well_formed",
        after: Some(OSTEP),
        run: http::responses_are_well_formed,
    },
    TestCase {
        name: "http::content_types",
        after: Some(OSTEP),
        run: http::content_types,
    },
    TestCase {
        name: "http::error_statuses",
        after: Some(OSTEP),
        run: http::error_statuses,
    },
    TestCase {
        name: "http::wclient_request_form",
        after: Some("OSTEP concurrency-webserver wclient"),
        run: http::wclient_request_form,
    },
    TestCase {
        name: "http::index_html_for_a_trailing_slash",
        after: None,
        run: http::index_html_for_a_trailing_slash,
    },
    TestCase {
        name: "http::percent_escapes_are_decoded",
        after: None,
        run: http::percent_escapes_are_decoded,
    },
    TestCase {
        name: "http::redirects_stay_on_this_host",
        after: None,
        run: http::redirects_stay_on_this_host,
    },
    TestCase {
        name: "http::request_target_is_not_reflected_as_markup",
        after: None,
        run: http::request_target_is_not_reflected_as_markup,
    },
    TestCase {
        name: "http::keep_alive",
        after: None,
        run: http::keep_alive,
    },
    TestCase {
        name: "http::request_head_in_pieces",
        after: None,
        run: http::request_head_in_pieces,
    },
    TestCase {
        name: "http::kept_alive_requests_are_not_held_back",
        after: None,
        run: http::kept_alive_requests_are_not_held_back,
    },
    TestCase {
        name: "http::new_connections_are_not_held_back",
        after: None,
        run: http::new_connections_are_not_held_back,
    },
    TestCase {
        name: "http::idle_keep_alive_does_not_hold_a_worker",
        after: None,
        run: http::idle_keep_alive_does_not_hold_a_worker,
    },
    TestCase {
        name: "concurrency::requests_overlap",
        after: Some("OSTEP concurrency-webserver: multi-threaded"),
        run: concurrency::requests_overlap,
    },
    TestCase {
        name: "concurrency::slow_cgi_does_not_hold_workers",
        after: None,
        run: concurrency::slow_cgi_does_not_hold_workers,
    },
    TestCase {
        name: "concurrency::one_thread_serializes",
        after: Some("OSTEP concurrency-webserver: multi-threaded"),
        run: concurrency::one_thread_serializes,
    },
    TestCase {
        name: "concurrency::fixed_pool",
        after: Some("OSTEP concurrency-webserver: fixed-size pool of worker threads"),
        run: concurrency::fixed_pool,
    },
    TestCase {
        name: "concurrency::no_busy_waiting",
        after: Some("OSTEP concurrency-webserver: condition variables, no spin-waiting"),
        run: concurrency::no_busy_waiting,
    },
    TestCase {
        name: "memory::served_connections_leave_nothing_behind",
        after: None,
        run: memory::served_connections_leave_nothing_behind,
    },
    TestCase {
        name: "bounded_buffer::acceptor_blocks_when_full",
        after: Some("OSTEP concurrency-webserver: the master blocks on a full buffer"),
        run: bounded_buffer::acceptor_blocks_when_full,
    },
    TestCase {
        name: "scheduling::fifo_serves_in_arrival_order",
        after: Some("OSTEP concurrency-webserver: scheduling policies (FIFO)"),
        run: scheduling::fifo_serves_in_arrival_order,
    },
    TestCase {
        name: "scheduling::sff_serves_smallest_first",
        after: Some("OSTEP concurrency-webserver: scheduling policies (SFF)"),
        run: scheduling::sff_serves_smallest_first,
    },
    TestCase {
        name: "security::path_traversal_refused",
        after: Some("OSTEP concurrency-webserver: security (no access above the root)"),
        run: security::path_traversal_refused,
    },
    TestCase {
        name: "security::malformed_and_oversized_requests",
        after: None,
        run: security::malformed_and_oversized_requests,
    },
    TestCase {
        name: "security::slowloris_does_not_starve_others",
        after: None,
        run: security::slowloris_does_not_starve_others,
    },
    TestCase {
        name: "security::no_zombie_cgi_children",
        after: None,
        run: security::no_zombie_cgi_children,
    },
    TestCase {
        name: "security::survives_stop_and_continue",
        after: None,
        run: security::survives_stop_and_continue,
    },
    TestCase {
        name: "security::abandoned_connections_are_released",
        after: None,
        run: security::abandoned_connections_are_released,
    },
    TestCase {
        name: "security::survives_running_out_of_descriptors",
        after: None,
        run: security::survives_running_out_of_descriptors,
    },
    TestCase {
        name: "browser::chromium_renders_page_with_css_and_image",
        after: None,
        run: browser::chromium_renders_page_with_css_and_image,
    },
];
