//! Rounds and messages for one broadcast to reach every node, against n (5 to 100)
//! on a line, a grid and a binary tree, beside the epidemic bound and Maelstrom's
//! figures for its naive flood; prints the tables and writes the plot
//! `docs/gossip-convergence.svg`.
//!
//! `cargo bench -p gossip --bench convergence`
//!
//! The core runs in-process on a discrete-event network (the harness's nodes would
//! add nothing but process switches to a sweep to 100 nodes): every message takes
//! [`LATENCY`], the periods are the node's defaults (anti-entropy every 200 ms,
//! jittered, rumor timeout 100 ms). A *round* is one anti-entropy period, the time
//! in which every node gossips once, as in the epidemic bound log2 n + ln n for push
//! gossip on a complete graph. Messages are every node-to-node message from the
//! broadcast until the last node has it, statuses included.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

use gossip::core::{Config, Gossip, Output, Wire, MS};
use node::rng::SplitMix;

/// One message delay.
const LATENCY: u64 = 10 * MS;
const SEEDS: u64 = 20;
const SIZES: [usize; 7] = [5, 10, 20, 25, 50, 75, 100];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Line,
    Grid,
    Tree,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Line => "line",
            Shape::Grid => "grid",
            Shape::Tree => "tree",
        }
    }

    /// Neighbours by index: Maelstrom's line, grid (rows of ceil(sqrt n)) and tree2.
    fn neighbours(self, n: usize) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); n];
        let mut link = |a: usize, b: usize| {
            adj[a].push(b);
            adj[b].push(a);
        };
        match self {
            Shape::Line => (1..n).for_each(|i| link(i - 1, i)),
            Shape::Tree => (1..n).for_each(|i| link((i - 1) / 2, i)),
            Shape::Grid => {
                let side = (1..).find(|s| s * s >= n).expect("a side");
                for i in 0..n {
                    if i % side + 1 < side && i + 1 < n {
                        link(i, i + 1);
                    }
                    if i + side < n {
                        link(i, i + side);
                    }
                }
            }
        }
        adj
    }
}

/// The longest shortest path, in hops: no protocol on this topology is faster.
fn diameter(adj: &[Vec<usize>]) -> usize {
    let n = adj.len();
    (0..n)
        .map(|s| {
            let mut dist = vec![usize::MAX; n];
            dist[s] = 0;
            let mut queue = std::collections::VecDeque::from([s]);
            while let Some(u) = queue.pop_front() {
                for &v in &adj[u] {
                    if dist[v] == usize::MAX {
                        dist[v] = dist[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            dist.into_iter().max().unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

/// Nodes on a network with a fixed delay; links between groups of a partition are
/// cut.
struct Sim {
    nodes: Vec<Gossip>,
    queue: BinaryHeap<Reverse<(u64, u64, usize, usize)>>,
    wires: Vec<Option<Wire>>,
    now: u64,
    seq: u64,
    sent: u64,
    /// Per node, how many messages it has delivered.
    holds: Vec<std::collections::BTreeSet<String>>,
    /// Partition group of each node (all 0: no partition).
    group: Vec<u8>,
    /// The sender of each wire, by index.
    from: Vec<usize>,
}

impl Sim {
    fn new(shape: Shape, n: usize, seed: u64) -> Sim {
        let adj = shape.neighbours(n);
        let mut nodes: Vec<Gossip> = (0..n)
            .map(|i| {
                Gossip::new(
                    format!("n{i}"),
                    Config::default(),
                    seed.wrapping_mul(1_000_003) ^ i as u64,
                    None,
                )
            })
            .collect();
        for (i, node) in nodes.iter_mut().enumerate() {
            node.set_neighbours(0, adj[i].iter().map(|j| format!("n{j}")).collect());
        }
        Sim {
            nodes,
            queue: BinaryHeap::new(),
            wires: Vec::new(),
            now: 0,
            seq: 0,
            sent: 0,
            holds: vec![Default::default(); n],
            group: vec![0; n],
            from: Vec::new(),
        }
    }

    fn collect(&mut self, i: usize) {
        for o in self.nodes[i].drain() {
            match o {
                Output::Deliver(r) => {
                    self.holds[i].insert(r.text);
                }
                Output::Send { to, wire } => {
                    self.sent += 1;
                    let j: usize = to[1..].parse().expect("n<i>");
                    if self.group[i] != self.group[j] {
                        continue;
                    }
                    self.seq += 1;
                    self.wires.push(Some(wire));
                    self.queue.push(Reverse((
                        self.now + LATENCY,
                        self.seq,
                        j,
                        self.wires.len() - 1,
                    )));
                    self.from.push(i);
                }
            }
        }
    }

    fn broadcast(&mut self, i: usize, text: &str) {
        self.nodes[i]
            .broadcast(self.now, text)
            .expect("a short text");
        self.collect(i);
    }

    /// Runs events until `until`, or until `stop` holds after one.
    fn run(&mut self, until: u64, stop: &dyn Fn(&Sim) -> bool) -> bool {
        loop {
            let next_msg = self.queue.peek().map(|Reverse(e)| e.0);
            let next_tick = (0..self.nodes.len())
                .filter_map(|i| self.nodes[i].next_wake().map(|t| (t, i)))
                .min();
            let t = match (next_msg, next_tick) {
                (Some(m), Some((k, _))) => m.min(k),
                (Some(m), None) => m,
                (None, Some((k, _))) => k,
                (None, None) => until,
            };
            if t > until {
                self.now = until;
                return false;
            }
            self.now = t;
            if next_msg == Some(t) {
                let Reverse((_, _, to, w)) = self.queue.pop().expect("peeked");
                let wire = self.wires[w].take().expect("delivered once");
                let from = format!("n{}", self.from[w]);
                self.nodes[to].on_wire(t, &from, wire);
                self.collect(to);
            } else {
                let (_, i) = next_tick.expect("a tick");
                self.nodes[i].on_tick(t);
                self.collect(i);
            }
            if stop(self) {
                return true;
            }
        }
    }
}

/// One broadcast from a random node into a settled cluster: (time, messages) until
/// every node has it.
fn one_broadcast(shape: Shape, n: usize, seed: u64) -> (u64, u64) {
    let mut sim = Sim::new(shape, n, seed);
    // Let the anti-entropy timers spread out first.
    sim.run(1_000 * MS, &|_| false);
    let mut rng = SplitMix::new(seed);
    let origin = rng.below(n as u64) as usize;
    let (start, sent) = (sim.now, sim.sent);
    sim.broadcast(origin, "m");
    let done = sim.run(start + 600_000 * MS, &|s| {
        s.holds.iter().all(|h| h.contains("m"))
    });
    assert!(done, "{} of {n}: no convergence in 600 s", shape.name());
    (sim.now - start, sim.sent - sent)
}

/// Maelstrom's workload on 25 nodes: 50 broadcasts a second (its 100 ops/s, half of
/// them reads) for 10 s, until every node holds every message: node messages per
/// broadcast.
fn steady(shape: Shape, seed: u64) -> f64 {
    let n = 25;
    let mut sim = Sim::new(shape, n, seed);
    sim.run(1_000 * MS, &|_| false);
    let sent = sim.sent;
    let mut rng = SplitMix::new(seed ^ 7);
    let count = 500;
    for k in 0..count {
        let at = sim.now + 20 * MS;
        sim.run(at, &|_| false);
        sim.broadcast(rng.below(n as u64) as usize, &format!("m{k}"));
    }
    sim.run(sim.now + 600_000 * MS, &|s| {
        s.holds.iter().all(|h| h.len() == 500)
    });
    (sim.sent - sent) as f64 / count as f64
}

/// Maelstrom's partition nemesis on 5 nodes (grid): random halves cut and healed
/// during 20 s at 10 broadcasts a second, then healed; broadcasts not on every node
/// after 10 s of quiet.
fn lost_under_partitions(seed: u64) -> usize {
    let n = 5;
    let mut sim = Sim::new(Shape::Grid, n, seed);
    let mut rng = SplitMix::new(seed ^ 11);
    let count = 200;
    for k in 0..count {
        if k % 20 == 0 {
            // A new partition every 2 s: each node on a random side (or all healed).
            let heal = rng.coin();
            for g in sim.group.iter_mut() {
                *g = if heal { 0 } else { rng.coin() as u8 };
            }
        }
        let at = sim.now + 100 * MS;
        sim.run(at, &|_| false);
        sim.broadcast(rng.below(n as u64) as usize, &format!("m{k}"));
    }
    sim.group = vec![0; n];
    sim.run(sim.now + 10_000 * MS, &|_| false);
    (0..count)
        .filter(|k| {
            let m = format!("m{k}");
            !sim.holds.iter().all(|h| h.contains(&m))
        })
        .count()
}

struct Row {
    shape: Shape,
    n: usize,
    rounds: f64,
    hops_min: usize,
    messages: f64,
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let mut rows = Vec::new();
    for shape in [Shape::Line, Shape::Grid, Shape::Tree] {
        for n in SIZES {
            let runs: Vec<(u64, u64)> = (0..SEEDS).map(|s| one_broadcast(shape, n, s)).collect();
            let time = runs.iter().map(|r| r.0).sum::<u64>() as f64 / SEEDS as f64;
            let messages = runs.iter().map(|r| r.1).sum::<u64>() as f64 / SEEDS as f64;
            rows.push(Row {
                shape,
                n,
                rounds: time / Config::default().anti_entropy_period as f64,
                hops_min: diameter(&shape.neighbours(n)),
                messages,
            });
        }
    }
    let mut table = String::from(
        "| topology | n | rounds to converge | diameter (hops) | epidemic bound log2 n + ln n | messages per broadcast | minimum n-1 |\n|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let _ = writeln!(
            table,
            "| {} | {} | {:.2} | {} | {:.1} | {:.1} | {} |",
            r.shape.name(),
            r.n,
            r.rounds,
            r.hops_min,
            epidemic(r.n as f64),
            r.messages,
            r.n - 1
        );
    }
    println!(
        "One broadcast, {SEEDS} seeds, {} ms a message, rounds of {} ms:\n",
        LATENCY / MS,
        Config::default().anti_entropy_period / MS
    );
    println!("{table}");
    println!("Maelstrom's workload on 25 nodes (50 broadcasts/s for 10 s), node messages per broadcast:\n");
    println!("| topology | ours | Maelstrom's naive flood (its msgs-per-op x 2: half its operations are reads) |\n|---|---|---|");
    for (shape, theirs) in [
        (Shape::Line, "24.0 (12.0 per op)"),
        (Shape::Grid, "55.6 (27.8 per op)"),
    ] {
        let ours = (0..5).map(|s| steady(shape, s)).sum::<f64>() / 5.0;
        println!("| {} | {ours:.1} | {theirs} |", shape.name());
    }
    let lost: Vec<usize> = (0..5).map(lost_under_partitions).collect();
    println!(
        "\nPartitions (5-node grid, 200 broadcasts, 5 seeds): lost {lost:?}; Maelstrom's naive flood lost 8 in its guide's run.\n"
    );
    let svg = plot(&rows);
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/gossip-convergence.svg");
    std::fs::write(&path, svg).expect("writing the plot");
    println!("wrote {}", path.display());
}

fn epidemic(n: f64) -> f64 {
    n.log2() + n.ln()
}

/// Two panels side by side: rounds against n, messages per broadcast against n.
fn plot(rows: &[Row]) -> String {
    let (w, h) = (980.0, 420.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let colors = [
        (Shape::Line, "#d62728"),
        (Shape::Grid, "#1f77b4"),
        (Shape::Tree, "#2ca02c"),
    ];
    let max_rounds = rows
        .iter()
        .map(|r| r.rounds)
        .fold(epidemic(100.0), f64::max)
        * 1.1;
    let max_msgs = rows.iter().map(|r| r.messages).fold(99.0, f64::max) * 1.1;
    let panels = [
        (
            60.0,
            "rounds to converge (anti-entropy periods)",
            max_rounds,
        ),
        (560.0, "node messages per broadcast", max_msgs),
    ];
    for (p, (x0, title, ymax)) in panels.iter().enumerate() {
        let (pw, ph, y0) = (380.0, 300.0, 60.0);
        let x = |n: f64| x0 + n / 100.0 * pw;
        let y = |v: f64| y0 + ph - v / ymax * ph;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"30\" text-anchor=\"middle\" font-size=\"14\">{title}</text>",
            x0 + pw / 2.0
        );
        let _ = writeln!(
            s,
            "<line x1=\"{x0}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
            y0 + ph,
            x0 + pw,
            y0 + ph
        );
        let _ = writeln!(
            s,
            "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{}\" stroke=\"black\"/>",
            y0 + ph
        );
        for n in [0, 25, 50, 75, 100] {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
                x(n as f64),
                y0 + ph + 16.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">nodes (n)</text>",
            x0 + pw / 2.0,
            y0 + ph + 34.0
        );
        for k in 0..=4 {
            let v = ymax * k as f64 / 4.0;
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.0}</text>",
                x0 - 6.0,
                y(v) + 4.0
            );
            let _ = writeln!(
                s,
                "<line x1=\"{x0}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#ddd\"/>",
                y(v),
                x0 + pw
            );
        }
        // The reference curve: the epidemic bound, or the minimum n - 1.
        let reference: Vec<(f64, f64)> = (5..=100)
            .map(|n| {
                let n = n as f64;
                (n, if p == 0 { epidemic(n) } else { n - 1.0 })
            })
            .collect();
        let path: Vec<String> = reference
            .iter()
            .map(|(n, v)| format!("{:.1},{:.1}", x(*n), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"black\" stroke-dasharray=\"5,4\"/>",
            path.join(" ")
        );
        for (shape, color) in colors {
            let pts: Vec<String> = rows
                .iter()
                .filter(|r| r.shape == shape)
                .map(|r| {
                    format!(
                        "{:.1},{:.1}",
                        x(r.n as f64),
                        y(if p == 0 { r.rounds } else { r.messages })
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
                pts.join(" ")
            );
            for pt in &pts {
                let (cx, cy) = pt.split_once(',').expect("x,y");
                let _ = writeln!(
                    s,
                    "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
        }
        if p == 1 {
            // Maelstrom's naive flood at 25 nodes, per broadcast.
            for (v, label, color) in [
                (24.0, "Maelstrom line", "#d62728"),
                (55.6, "Maelstrom grid", "#1f77b4"),
            ] {
                let (cx, cy) = (x(25.0), y(v));
                let _ = writeln!(s, "<rect x=\"{}\" y=\"{}\" width=\"8\" height=\"8\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>", cx - 4.0, cy - 4.0);
                let _ = writeln!(
                    s,
                    "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{label}</text>",
                    cx + 8.0,
                    cy - 6.0
                );
            }
        }
        // Legend.
        let mut ly = y0 + 10.0;
        let reference = if p == 0 {
            "epidemic bound log2 n + ln n"
        } else {
            "minimum n - 1"
        };
        let _ = writeln!(s, "<line x1=\"{0}\" y1=\"{ly}\" x2=\"{1}\" y2=\"{ly}\" stroke=\"black\" stroke-dasharray=\"5,4\"/><text x=\"{2}\" y=\"{3}\">{reference}</text>", x0 + 10.0, x0 + 34.0, x0 + 40.0, ly + 4.0);
        for (shape, color) in colors {
            ly += 16.0;
            let _ = writeln!(s, "<line x1=\"{0}\" y1=\"{ly}\" x2=\"{1}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/><text x=\"{2}\" y=\"{3}\">{4}</text>", x0 + 10.0, x0 + 34.0, x0 + 40.0, ly + 4.0, shape.name());
        }
    }
    s.push_str("</svg>\n");
    s
}
