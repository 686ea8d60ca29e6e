//! The kvsrv tests: workloads, faults and the property each one checks beyond
//! progress and linearizability (which [`Test::finish`] judges for all).

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::Rng;
use specs::kv_fetch_append::FetchAppendInput;

use super::run::{self, Test};
use super::{BOUNDED_MEMORY, EXACTLY_ONCE, RETRIES_ANSWERED};
use crate::client::Workload;
use crate::history::Completion;
use crate::nemesis::{Fault, Schedule};
use crate::network::{Latency, NetConfig, Partition};
use crate::suite::{property, Context};

/// Runs `body` against a fresh server and judges the run.
pub(super) fn with_server(cx: &mut Context, body: impl FnOnce(&mut Test)) {
    if let Some(mut t) = run::start(cx) {
        body(&mut t);
        t.finish();
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Get,
    Put,
    Append,
    Cas,
}

const ALL: &[Kind] = &[Kind::Get, Kind::Put, Kind::Append, Kind::Cas];
const LIN_KV: &[Kind] = &[Kind::Get, Kind::Put, Kind::Cas];

/// `ops` random operations per client over `keys` keys. Appended pieces name their
/// client and position, so they are unique.
fn mixed(keys: usize, ops: usize, kinds: &'static [Kind]) -> impl Workload<FetchAppendInput> {
    let mut issued: HashMap<usize, usize> = HashMap::new();
    move |client: usize, rng: &mut StdRng| {
        let n = issued.entry(client).or_insert(0);
        if *n >= ops {
            return None;
        }
        *n += 1;
        let key = format!("k{}", rng.gen_range(0..keys));
        let small = |rng: &mut StdRng| format!("v{}", rng.gen_range(0..3));
        Some(match kinds[rng.gen_range(0..kinds.len())] {
            Kind::Get => FetchAppendInput::Get { key },
            Kind::Put => FetchAppendInput::Put {
                key,
                value: small(rng),
            },
            Kind::Append => FetchAppendInput::Append {
                key,
                value: format!("{client}.{n};"),
            },
            Kind::Cas => FetchAppendInput::Cas {
                key,
                from: small(rng),
                to: small(rng),
            },
        })
    }
}

/// Each client runs `ops` in order.
fn scripted(ops: Vec<Vec<FetchAppendInput>>) -> impl Workload<FetchAppendInput> {
    let mut queues: Vec<std::collections::VecDeque<FetchAppendInput>> =
        ops.into_iter().map(Into::into).collect();
    move |client: usize, _: &mut StdRng| queues.get_mut(client).and_then(|q| q.pop_front())
}

pub(super) fn basic_one_client(t: &mut Test) {
    t.run(1, mixed(3, 150, ALL));
}

/// Only Maelstrom lin-kv's operations, so a lin-kv node can be tested too.
pub(super) fn basic_lin_kv_ops(t: &mut Test) {
    t.run(1, mixed(2, 150, LIN_KV));
}

pub(super) fn concurrent_many_clients(t: &mut Test) {
    t.net(NetConfig {
        latency: Latency::Uniform {
            min: 100_000,
            max: 3_000_000,
        },
        ..NetConfig::reliable()
    });
    t.run(10, mixed(3, 40, ALL));
}

pub(super) fn unreliable_lossy_duplicating(t: &mut Test) {
    t.net(NetConfig::unreliable());
    let done = t.run(5, mixed(3, 40, ALL));
    let retried = done.iter().filter(|d| d.ret - d.call > 20_000_000).count();
    if retried == 0 {
        t.cx.fail(
            property::HARNESS,
            "no operation needed a retry: the network was not unreliable",
        );
    }
    // The server is up and every link delivers most messages, and clients resend
    // for seconds: an operation left without an answer was resent and ignored.
    let unanswered = done
        .iter()
        .filter(|d| matches!(d.completion, Completion::Info))
        .count();
    if unanswered > 0 {
        t.cx.fail(
            RETRIES_ANSWERED,
            format!(
                "{unanswered} of {} operations never got an answer although the server was up \
                 and the network only lost and duplicated some messages: a request sent again \
                 after its answer was lost (same client and seq) must be answered again, \
                 with the first answer",
                done.len()
            ),
        );
    }
}

/// Clients lose the server in both directions, then only its answers (a one-way
/// cut), while the network also loses and duplicates.
pub(super) fn unreliable_partitions(t: &mut Test) {
    let clients: Vec<String> = (0..5).map(|i| format!("c{}", i + 1)).collect();
    let mut all = clients.clone();
    all.push("n1".into());
    let start = t.cluster.now();
    let replies_cut = clients
        .iter()
        .map(|c| Partition::one_way("n1", c))
        .reduce(Partition::and)
        .expect("clients");
    let schedule = Schedule::new()
        .at(
            start + 30_000_000,
            Fault::Partition(Partition::isolate("n1", &all)),
        )
        .at(start + 130_000_000, Fault::Heal)
        .at(start + 200_000_000, Fault::Partition(replies_cut))
        .at(start + 300_000_000, Fault::Heal)
        .at(
            start + 350_000_000,
            Fault::Partition(Partition::isolate("n1", &all)),
        )
        .at(start + 500_000_000, Fault::Heal);
    t.cluster.schedule(&schedule);
    t.net(NetConfig {
        loss: 0.1,
        duplicate: 0.1,
        ..NetConfig::unreliable()
    });
    t.run(5, mixed(2, 40, ALL));
}

/// The server is stopped (SIGSTOP) twice while clients keep resending; requests queue
/// up and every copy reaches it on resume.
pub(super) fn unreliable_server_paused(t: &mut Test) {
    let start = t.cluster.now();
    let schedule = Schedule::new()
        .at(start + 20_000_000, Fault::Pause("n1".into()))
        .at(start + 220_000_000, Fault::Resume("n1".into()))
        .at(start + 300_000_000, Fault::Pause("n1".into()))
        .at(start + 400_000_000, Fault::Resume("n1".into()));
    t.cluster.schedule(&schedule);
    t.net(NetConfig {
        loss: 0.1,
        duplicate: 0.1,
        ..NetConfig::unreliable()
    });
    let done = t.run(4, mixed(2, 40, ALL));
    let waited = done
        .iter()
        .filter(|d| d.ret - d.call >= 100_000_000)
        .count();
    if waited == 0 {
        t.cx.fail(
            property::HARNESS,
            "no operation spanned a pause: the pause had no effect",
        );
    }
}

/// 6.5840's "one key, many appenders": every append lands exactly once and each
/// client's appends appear in the order it made them.
pub(super) fn append_one_key_many_appenders(t: &mut Test) {
    let (clients, per_client) = (8, 15);
    t.net(NetConfig::unreliable());
    let appends = (0..clients)
        .map(|c| {
            (0..per_client)
                .map(|i| FetchAppendInput::Append {
                    key: "log".into(),
                    value: format!("{c}.{i};"),
                })
                .collect()
        })
        .collect();
    let done = t.run(clients, scripted(appends));
    t.net(NetConfig::reliable());
    let read = t.run(
        1,
        scripted(vec![vec![FetchAppendInput::Get { key: "log".into() }]]),
    );
    let Some(Completion::Ok(out)) = read.first().map(|d| &d.completion) else {
        t.cx.fail(
            property::PROGRESS,
            "no progress: the final read did not complete",
        );
        return;
    };
    let value = out.value.clone().unwrap_or_default();
    let pieces: Vec<&str> = value.split(';').filter(|p| !p.is_empty()).collect();
    // Ordered, so a replayed seed reports the same pieces in the same order.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &pieces {
        *seen.entry(p).or_default() += 1;
    }
    for (piece, n) in &seen {
        if *n > 1 {
            t.cx.fail(
                EXACTLY_ONCE,
                format!("append {piece:?} is present {n} times in the final value"),
            );
        }
    }
    for d in &done {
        let FetchAppendInput::Append { value, .. } = &d.input else {
            continue;
        };
        let piece = value.trim_end_matches(';');
        let present = seen.contains_key(piece);
        match d.completion {
            Completion::Ok(_) if !present => t.cx.fail(
                EXACTLY_ONCE,
                format!("append {piece:?} was acknowledged but is missing"),
            ),
            Completion::Fail if present => t.cx.fail(
                EXACTLY_ONCE,
                format!("append {piece:?} failed definitely but is present"),
            ),
            _ => {}
        }
    }
    for c in 0..clients {
        let order: Vec<usize> = pieces
            .iter()
            .filter_map(|p| p.split_once('.'))
            .filter(|(client, _)| client.parse() == Ok(c))
            .filter_map(|(_, i)| i.parse().ok())
            .collect();
        if order.windows(2).any(|w| w[0] >= w[1]) {
            t.cx.fail(
                property::LINEARIZABLE,
                format!("client {c}'s appends are out of order in the final value: {order:?}"),
            );
        }
    }
}

/// Answers to appends are prefixes of a value the server holds: remembering them for
/// retries must not copy the value. 40 clients append to a 128 KiB value; copies
/// would cost 5 MiB (our server's RSS does not grow measurably).
pub(super) fn memory_append_answers_not_copied(t: &mut Test) {
    const MIB: usize = 1 << 20;
    let big = "a".repeat(MIB / 8);
    let warm = vec![
        FetchAppendInput::Put {
            key: "big".into(),
            value: big,
        },
        FetchAppendInput::Get { key: "big".into() },
        FetchAppendInput::Append {
            key: "big".into(),
            value: "w".into(),
        },
    ];
    let warmed = t.run(1, scripted(vec![warm]));
    if !t.all_ok(&warmed, "the warm-up") {
        return;
    }
    let Some(before) = t.rss() else { return };
    let clients = 40;
    // One after another: concurrent appends to a megabyte value would make the
    // linearizability search copy it for every order it tries.
    for c in 0..clients {
        let append = FetchAppendInput::Append {
            key: "big".into(),
            value: format!("{c};"),
        };
        let appended = t.run(1, scripted(vec![vec![append]]));
        if !t.all_ok(&appended, "the measured appends") {
            return;
        }
    }
    let Some(after) = t.rss() else { return };
    let grew = after.saturating_sub(before);
    t.cx.note(format!(
        "server RSS grew by {:.2} MiB over {clients} appends",
        grew as f64 / MIB as f64
    ));
    if grew > 2 * MIB as u64 {
        t.cx.fail(
            BOUNDED_MEMORY,
            format!(
            "the server's memory grew by {:.1} MiB after {clients} appends to a 128 KiB value: \
             the answers remembered for retries seem to be copies of the old value \
             (at most 2 MiB allowed)",
            grew as f64 / MIB as f64
        ),
        );
    }
}

/// Duplicate detection costs a few hundred bytes per client at most.
/// An append's remembered answer points into the value it was appended to; when a put
/// replaces that value, the old one is kept aside until the client moves on. A server
/// that never lets go of those old values (a reference count that is never dropped)
/// grows by one replaced value per round, which this test measures.
pub(super) fn memory_replaced_values_freed(t: &mut Test) {
    const KIB: usize = 1 << 10;
    const MIB: u64 = 1 << 20;
    let rounds = 60;
    let script = |client: usize, rounds: usize| {
        let big = format!("{client}").repeat(64 * KIB);
        (0..rounds)
            .flat_map(|r| {
                [
                    FetchAppendInput::Append {
                        key: "k".into(),
                        value: format!("{client}.{r};"),
                    },
                    FetchAppendInput::Put {
                        key: "k".into(),
                        value: big.clone(),
                    },
                ]
            })
            .collect::<Vec<_>>()
    };
    let warmed = t.run(2, scripted(vec![script(0, 4), script(1, 4)]));
    if !t.all_ok(&warmed, "the warm-up") {
        return;
    }
    let Some(before) = t.rss() else { return };
    // Two clients, so a put of one often replaces a value the other's last answer
    // still points into, and that answer is released only later.
    let measured = t.run(2, scripted(vec![script(0, rounds), script(1, rounds)]));
    if !t.all_ok(&measured, "the measured rounds") {
        return;
    }
    let Some(after) = t.rss() else { return };
    let grew = after.saturating_sub(before);
    t.cx.note(format!(
        "server RSS grew by {:.2} MiB over {} puts of 64 KiB values",
        grew as f64 / MIB as f64,
        2 * rounds
    ));
    if grew > 2 * MIB {
        t.cx.fail(
            BOUNDED_MEMORY,
            format!(
                "the server's memory grew by {:.1} MiB over {} puts of 64 KiB values to one \
                 key (at most 2 MiB allowed, about two values are live at once): values \
                 replaced while an append's answer pointed into them are never freed",
                grew as f64 / MIB as f64,
                2 * rounds
            ),
        );
    }
}

pub(super) fn memory_many_clients_cost_bytes(t: &mut Test) {
    let one_put = |n: usize| {
        (0..n)
            .map(|c| {
                vec![FetchAppendInput::Put {
                    key: "k".into(),
                    value: format!("{}", c % 10),
                }]
            })
            .collect::<Vec<_>>()
    };
    let warmed = t.run(200, scripted(one_put(200)));
    if !t.all_ok(&warmed, "the warm-up") {
        return;
    }
    let Some(before) = t.rss() else { return };
    let clients = 2000;
    let measured = t.run(clients, scripted(one_put(clients)));
    if !t.all_ok(&measured, "the measured clients") {
        return;
    }
    let Some(after) = t.rss() else { return };
    let per_client = after.saturating_sub(before) / clients as u64;
    t.cx.note(format!("{per_client} bytes of server RSS per client"));
    if per_client > 300 {
        t.cx.fail(
            BOUNDED_MEMORY,
            format!(
                "each client costs the server {per_client} bytes (at most 300 allowed): \
             {} KiB for {clients} clients",
                after.saturating_sub(before) / 1024
            ),
        );
    }
}
