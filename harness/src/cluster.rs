//! A cluster of node processes behind the simulated network, and the one event loop
//! that runs it in simulated (lockstep) or real time.
//!
//! Nodes never talk to each other directly: every line a node writes is parsed, given
//! a fate by the [`Network`] and delivered later as an event. Harness-side actors (the
//! clients of a workload) are a [`Driver`] that sends through the same network and is
//! woken by the same loop.
//!
//! In **simulated time** the loop pops the earliest event, sets the virtual clock to
//! its time and, for a node, writes the line with `"now"` and waits for the node's
//! `step_done` before anything else happens. Only one process runs at a time and
//! every random choice comes from the seed, so a run is a function of the seed: the
//! journal of two runs with one seed is identical. Idle time costs nothing, so a
//! suite that waits on timeouts runs many times faster than the wall clock.
//!
//! In **real time** nodes run freely on their own clocks; the loop sleeps until the
//! next event is due or a node writes a line.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use specs::node_protocol::{Body, Init, Message, HARNESS};

use crate::error::HarnessError;
use crate::history::HistoryLog;
use crate::implementation::Implementation;
use crate::journal::Journal;
use crate::lazyfs::LazyFs;
use crate::nemesis::{Fault, Schedule};
use crate::network::{Fate, NetConfig, Network};
use crate::node_process::{Line, NodeOutput, NodeProcess, Output, MAX_LINE_BYTES};

/// Which clock a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMode {
    /// Lockstep with a virtual clock: deterministic by seed, fast.
    Sim,
    /// The wall clock: nodes run freely.
    Real,
}

impl TimeMode {
    /// `HARNESS_TIME=real|sim` (default sim).
    pub fn from_env() -> TimeMode {
        match std::env::var("HARNESS_TIME").as_deref() {
            Ok("real") => TimeMode::Real,
            Ok("sim") | Ok("") | Err(_) => TimeMode::Sim,
            Ok(other) => panic!("HARNESS_TIME={other:?}: expected \"real\" or \"sim\""),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimeMode::Sim => "sim",
            TimeMode::Real => "real",
        }
    }
}

/// What a node's data dir lives on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A directory on the real disk: a crash loses what the process had in memory,
    /// never what it wrote, synced or not (the page cache survives).
    #[default]
    Disk,
    /// A [`LazyFs`] mount of its own, so [`Fault::PowerLoss`] can also discard every
    /// write the node did not fsync.
    LazyFs,
}

/// Everything a cluster needs to start.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub nodes: usize,
    pub implementation: Implementation,
    /// Extra environment for the node processes (known-bad variant switches).
    pub env: Vec<(String, String)>,
    pub mode: TimeMode,
    pub seed: u64,
    pub net: NetConfig,
    /// Where node logs and data dirs go.
    pub dir: PathBuf,
    /// Wall-clock limit for one lockstep step (or for `init_ok` in real time) before a
    /// node is declared hung.
    pub step_timeout: Duration,
}

/// Harness-side actors driven by the event loop (a workload's clients).
pub trait Driver {
    /// Called once when [`Cluster::run`] starts.
    fn start(&mut self, cluster: &mut Cluster);
    /// A message addressed to one of the driver's endpoints arrived.
    fn on_message(&mut self, cluster: &mut Cluster, message: Message);
    /// A wake-up the driver asked for with [`Cluster::wake`] is due.
    fn on_wake(&mut self, cluster: &mut Cluster, token: u64);
    /// True when the driver has nothing more to do.
    fn done(&self) -> bool;
}

/// How often the harness looks for a struck power cut while it waits on a node.
const POWER_CUT_POLL: Duration = Duration::from_millis(1);

/// The seed the `init` of node `i` carries: drawn from the run's seed, so a run
/// replays, and unrelated to every other node's. A seed XORed with a multiple of a
/// constant, as this was before, handed a node whose generator steps its state by that
/// constant (SplitMix64, a common choice, ours among them) its neighbour's stream
/// shifted by one draw, and two candidates then timed out together election after
/// election. Each process of a node gets the node's seed: a restarted node draws what
/// it drew before.
fn node_seed(seed: u64, i: usize) -> u64 {
    // `seed_from_u64` expands its input through PCG and ChaCha: inputs that differ
    // in a bit give unrelated outputs.
    StdRng::seed_from_u64(seed ^ (i as u64 + 1)).gen()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Up,
    Down,
    Paused,
}

#[derive(Debug)]
struct NodeSlot {
    name: String,
    process: Option<NodeProcess>,
    state: NodeState,
    incarnation: u64,
    /// Deliveries waiting for a paused node.
    held: Vec<(u64, Box<Message>)>,
    tick_at: Option<u64>,
    /// The node said in `init_ok` that it reads its stdin as a stream of steps
    /// (`"pipeline": true`), so several lines may be written to it at once.
    pipeline: bool,
    /// Deliveries at the head of the queue whose lines are already in the node's stdin.
    written_ahead: usize,
    data_dir: PathBuf,
    log: PathBuf,
    /// The filesystem on `data_dir` with [`Durability::LazyFs`]. Declared after
    /// `process` so the node is killed before its mount goes.
    fs: Option<LazyFs>,
    /// Power cuts at a sync (`Fault::PowerLossAtSync`) that struck this node.
    power_cuts_struck: u64,
}

#[derive(Debug)]
enum Event {
    /// Boxed, so the queue moves a pointer when it reorders, not a whole message.
    Deliver {
        id: u64,
        message: Box<Message>,
    },
    Tick {
        node: usize,
        incarnation: u64,
    },
    Wake {
        token: u64,
    },
    Fault(Fault),
}

#[derive(Debug)]
struct Scheduled {
    time: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    /// Time on the run's clock (virtual in sim) at the end.
    pub elapsed_ns: u64,
    pub wall: Duration,
    /// Messages the network routed (node and client messages, not control lines).
    pub routed: u64,
    /// Lockstep steps taken.
    pub steps: u64,
    /// Lockstep steps whose line was written to the node together with other steps'
    /// (see `"pipeline"` in `specs::node_protocol`).
    pub pipelined: u64,
}

/// A running cluster. Dropping it kills and reaps every node.
pub struct Cluster {
    config: ClusterConfig,
    names: Vec<String>,
    slots: Vec<NodeSlot>,
    net: Network,
    rng: StdRng,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    now: u64,
    start: Instant,
    pub journal: Journal,
    pub history: HistoryLog,
    /// Protocol violations and hangs by nodes; a test fails on any.
    pub errors: Vec<String>,
    next_client: u64,
    next_message: u64,
    stats: RunStats,
    /// Messages between nodes kept for `Fault::Replay`, once `Fault::Record` came.
    recorded: Option<Vec<Message>>,
    /// Whether new messages are kept: from `Fault::Record` to `Fault::StopRecording`.
    recording: bool,
    /// Copies sent by `Fault::Replay` so far (cut ones too).
    replayed: u64,
}

impl Cluster {
    /// Starts `config.nodes` nodes (`n1`, `n2`, ...) on the real disk and initialises
    /// them.
    pub fn start(config: ClusterConfig) -> Result<Cluster, HarnessError> {
        Cluster::start_with(config, Durability::Disk)
    }

    /// Like [`Cluster::start`], with each node's data dir on `durability`.
    pub fn start_with(
        config: ClusterConfig,
        durability: Durability,
    ) -> Result<Cluster, HarnessError> {
        let names: Vec<String> = (1..=config.nodes).map(|i| format!("n{i}")).collect();
        let io = |path: &std::path::Path| {
            let what = path.display().to_string();
            move |source| HarnessError::Io { what, source }
        };
        fs::create_dir_all(&config.dir).map_err(io(&config.dir))?;
        let mut slots = Vec::with_capacity(names.len());
        for name in &names {
            let data_dir = config.dir.join(format!("{name}.data"));
            let fs = match durability {
                Durability::Disk => None,
                Durability::LazyFs => {
                    fs::create_dir_all(&data_dir).map_err(io(&data_dir))?;
                    Some(LazyFs::mount(&data_dir)?)
                }
            };
            slots.push(NodeSlot {
                name: name.clone(),
                process: None,
                state: NodeState::Down,
                incarnation: 0,
                held: Vec::new(),
                tick_at: None,
                pipeline: false,
                written_ahead: 0,
                data_dir,
                log: config.dir.join(format!("{name}.log")),
                fs,
                power_cuts_struck: 0,
            });
        }
        let mut cluster = Cluster {
            net: Network::new(config.net),
            rng: StdRng::seed_from_u64(config.seed ^ 0x6e65_7477_6f72_6b00),
            names,
            slots,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            start: Instant::now(),
            journal: Journal::new(),
            history: HistoryLog::new(),
            errors: Vec::new(),
            next_client: 1,
            next_message: 0,
            stats: RunStats::default(),
            recorded: None,
            recording: false,
            replayed: 0,
            config,
        };
        cluster.journal.record(
            0,
            "start",
            json!({"nodes": cluster.names, "seed": cluster.config.seed, "time": cluster.config.mode.name()}),
        );
        for i in 0..cluster.slots.len() {
            cluster.boot(i)?;
        }
        Ok(cluster)
    }

    pub fn mode(&self) -> TimeMode {
        self.config.mode
    }

    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    pub fn node_names(&self) -> &[String] {
        &self.names
    }

    /// Current time on the run's clock, in nanoseconds.
    pub fn now(&self) -> u64 {
        match self.config.mode {
            TimeMode::Sim => self.now,
            TimeMode::Real => self.start.elapsed().as_nanos() as u64,
        }
    }

    /// Reserves `n` fresh client ids, unique for the whole run.
    pub fn new_client_ids(&mut self, n: u64) -> std::ops::Range<u64> {
        let first = self.next_client;
        self.next_client += n;
        first..self.next_client
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Exempts every link of `endpoint` from loss, duplication and reordering; see
    /// [`Network::make_reliable`].
    pub fn make_reliable(&mut self, endpoint: &str) {
        let now = self.now();
        self.journal
            .record(now, "reliable", json!({"endpoint": endpoint}));
        self.net.make_reliable(endpoint);
    }

    /// Resident memory of a node's process.
    pub fn rss_bytes(&mut self, node: &str) -> Result<u64, HarnessError> {
        let i = self.index(node)?;
        let slot = &self.slots[i];
        slot.process
            .as_ref()
            .ok_or_else(|| HarnessError::NotRunning(node.to_string()))?
            .rss_bytes()
            .map_err(|source| HarnessError::Io {
                what: format!("the memory of {node}"),
                source,
            })
    }

    /// Bytes of the files in a node's data dir, as the harness sees them: what a
    /// compaction bound is checked against without trusting the node's own report.
    pub fn data_bytes(&self, node: &str) -> Result<u64, HarnessError> {
        let dir = &self.slots[self.index(node)?].data_dir;
        dir_bytes(dir).map_err(|source| HarnessError::Io {
            what: format!("measuring {}", dir.display()),
            source,
        })
    }

    pub fn log_path(&self, node: &str) -> Option<PathBuf> {
        self.index(node).ok().map(|i| self.slots[i].log.clone())
    }

    fn index(&self, node: &str) -> Result<usize, HarnessError> {
        self.names
            .iter()
            .position(|n| n == node)
            .ok_or_else(|| HarnessError::NoNode(node.to_string()))
    }

    /// Sends `signal` (`name` in an error) to the process of node `i`, if it has one.
    fn signal(&mut self, i: usize, signal: libc::c_int, name: &str) -> Result<(), HarnessError> {
        let node = &self.names[i];
        match self.slots[i].process.as_mut() {
            Some(p) => p
                .process()
                .signal(signal)
                .map_err(|source| HarnessError::Io {
                    what: format!("{name} {node}"),
                    source,
                }),
            None => Ok(()),
        }
    }

    /// Sends a message from a harness endpoint (a client) through the network.
    pub fn send(&mut self, message: Message) {
        self.route(message);
    }

    /// Asks for `driver.on_wake(token)` at `time`, from the driver of the current run
    /// (or of the next, between runs). Wake-ups still pending when a run ends are
    /// dropped with it.
    pub fn wake(&mut self, time: u64, token: u64) {
        self.push(time, Event::Wake { token });
    }

    /// Applies the faults of `schedule` at their times (from the start of the run).
    pub fn schedule(&mut self, schedule: &Schedule) {
        for (time, fault) in &schedule.faults {
            self.push(*time, Event::Fault(fault.clone()));
        }
    }

    /// Applies a fault now.
    pub fn fault(&mut self, fault: Fault) -> Result<(), HarnessError> {
        if let Fault::PowerLoss(node) | Fault::PowerLossAtSync(node, _) = &fault {
            // Refused before anything happens, so the node is not killed for nothing.
            let i = self.index(node)?;
            if self.slots[i].fs.is_none() {
                return Err(HarnessError::Fault(format!(
                    "power loss on {node} needs the power-loss filesystem under its data \
                     dir: start the cluster with Cluster::start_with(config, Durability::LazyFs)"
                )));
            }
        }
        if let Fault::PowerLossAtSync(node, 0) = &fault {
            return Err(HarnessError::Fault(format!(
                "power loss on {node} in its sync 0: syncs are counted from 1 (the next)"
            )));
        }
        let now = self.now();
        let what = fault.describe();
        self.journal.record(now, "nemesis", json!({"what": what}));
        self.history.nemesis(now, &what);
        match fault {
            Fault::Crash(node) => {
                let i = self.index(&node)?;
                self.kill(i);
            }
            Fault::Restart(node) => {
                let i = self.index(&node)?;
                self.kill(i);
                self.boot(i)?;
            }
            Fault::RestartWiped(node) => {
                let i = self.index(&node)?;
                self.kill(i);
                let dir = &self.slots[i].data_dir;
                if let Some(lazy) = &self.slots[i].fs {
                    // The data dir is a mount point: empty the disk, keep the mount.
                    lazy.wipe();
                } else if dir.exists() {
                    fs::remove_dir_all(dir).map_err(|source| HarnessError::Io {
                        what: format!("wiping {}", dir.display()),
                        source,
                    })?;
                }
                self.boot(i)?;
            }
            Fault::PowerLoss(node) => {
                let i = self.index(&node)?;
                self.lose_power(i, false)?;
            }
            Fault::PowerLossAtSync(node, n) => {
                let i = self.index(&node)?;
                if self.slots[i].state == NodeState::Down {
                    return Err(HarnessError::Fault(format!(
                        "power loss on {node} in its sync {n}: {node} is down, and a power \
                         cut at a sync needs a running node"
                    )));
                }
                self.slots[i]
                    .fs
                    .as_ref()
                    .expect("checked above")
                    .cut_power_at_sync(n);
            }
            Fault::Pause(node) => {
                let i = self.index(&node)?;
                if self.slots[i].state == NodeState::Up {
                    self.signal(i, libc::SIGSTOP, "SIGSTOP")?;
                    self.slots[i].state = NodeState::Paused;
                }
            }
            Fault::Resume(node) => {
                let i = self.index(&node)?;
                if self.slots[i].state == NodeState::Paused {
                    self.signal(i, libc::SIGCONT, "SIGCONT")?;
                    self.slots[i].state = NodeState::Up;
                    for (id, message) in std::mem::take(&mut self.slots[i].held) {
                        self.push(now, Event::Deliver { id, message });
                    }
                    if let Some(at) = self.slots[i].tick_at {
                        let incarnation = self.slots[i].incarnation;
                        self.slots[i].tick_at = Some(at.max(now));
                        self.push(
                            at.max(now),
                            Event::Tick {
                                node: i,
                                incarnation,
                            },
                        );
                    }
                }
            }
            Fault::Partition(p) => self.net.partition = p,
            Fault::Heal => self.net.partition = crate::network::Partition::none(),
            Fault::SlowLinks(links, delay) => self.net.slow = (links, delay),
            Fault::Net(c) => self.net.config = c,
            Fault::Record => {
                self.recorded.get_or_insert_with(Vec::new);
                self.recording = true;
            }
            Fault::StopRecording => {
                if self.recorded.is_none() {
                    return Err(HarnessError::Fault(
                        "stop recording with nothing recorded: apply Fault::Record first".into(),
                    ));
                }
                self.recording = false;
            }
            Fault::Replay(span) => {
                self.replay(span)?;
            }
        }
        Ok(())
    }

    /// `Fault::Replay`: each kept message goes again, as a new message of the journal
    /// whose fate says it is a copy of an old one.
    fn replay(&mut self, span: u64) -> Result<(), HarnessError> {
        let Some(kept) = self.recorded.clone() else {
            return Err(HarnessError::Fault(
                "replay with nothing recorded: apply Fault::Record first".into(),
            ));
        };
        self.replayed += kept.len() as u64;
        let now = self.now();
        for message in kept {
            let body = message.body.to_json();
            let id = self.next_message;
            self.next_message += 1;
            if self.net.partition.blocks(&message.src, &message.dest) {
                self.journal
                    .record_send(now, id, &message.src, &message.dest, &Fate::Cut, &body);
                continue;
            }
            let delay = self.rng.gen_range(0..=span);
            let fate = format!("replayed, delay [{delay}]");
            self.journal
                .record_send(now, id, &message.src, &message.dest, fate, &body);
            let message = Box::new(message);
            self.push(now + delay, Event::Deliver { id, message });
        }
        Ok(())
    }

    /// Runs the event loop until the driver is done, nothing can happen any more
    /// (simulated time), or the clock passes `limit_ns`.
    pub fn run(&mut self, driver: &mut dyn Driver, limit_ns: u64) -> RunStats {
        let wall = Instant::now();
        driver.start(self);
        match self.config.mode {
            TimeMode::Sim => {
                while !driver.done() {
                    let Some(Reverse(mut next)) = self.queue.pop() else {
                        break;
                    };
                    if next.time > limit_ns {
                        self.queue.push(Reverse(next));
                        break;
                    }
                    self.now = self.now.max(next.time);
                    self.write_ahead(&mut next, limit_ns);
                    self.handle(driver, next.event);
                }
            }
            TimeMode::Real => {
                while !driver.done() {
                    let now = self.now();
                    if now >= limit_ns {
                        break;
                    }
                    if let Some(Reverse(next)) = self.queue.peek() {
                        if next.time <= now {
                            let Reverse(next) = self.queue.pop().expect("peeked");
                            self.handle(driver, next.event);
                            continue;
                        }
                    }
                    let due = self.queue.peek().map_or(limit_ns, |Reverse(n)| n.time);
                    let mut wait = Duration::from_nanos(due.min(limit_ns) - now);
                    let cuts = (0..self.slots.len()).any(|i| self.power_cut_armed(i));
                    if cuts {
                        wait = wait.min(POWER_CUT_POLL);
                    }
                    for output in self.poll_outputs(wait) {
                        self.on_output(output);
                    }
                    if cuts {
                        self.strike_power_cuts();
                    }
                }
            }
        }
        // Wake-ups are the driver's, and it is done: left in the queue they would wake
        // the next run's driver with tokens that mean something else to it (a finished
        // client's resend timer would make a new client resend at once).
        self.queue
            .retain(|Reverse(s)| !matches!(s.event, Event::Wake { .. }));
        debug_assert!(
            self.slots.iter().all(|s| s.written_ahead == 0),
            "a run ended with lines written ahead but not handled"
        );
        self.stats.elapsed_ns = self.now();
        self.stats.wall += wall.elapsed();
        self.stats
    }

    pub fn stats(&self) -> RunStats {
        self.stats
    }

    fn push(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            time,
            seq: self.seq,
            event,
        }));
    }

    fn handle(&mut self, driver: &mut dyn Driver, event: Event) {
        match event {
            Event::Deliver { id, message } => {
                let now = self.now();
                match self.names.iter().position(|n| *n == message.dest) {
                    Some(i) => match self.slots[i].state {
                        NodeState::Down => {
                            self.journal
                                .record(now, "drop", json!({"id": id, "why": "node down"}));
                        }
                        NodeState::Paused => self.slots[i].held.push((id, message)),
                        NodeState::Up => {
                            self.journal.record_recv(now, id);
                            self.net.delivered(&message.src, &message.dest);
                            if self.slots[i].written_ahead > 0 {
                                self.slots[i].written_ahead -= 1;
                                self.stats.pipelined += 1;
                                self.finish_step(i);
                            } else {
                                self.deliver_to_node(i, *message);
                            }
                        }
                    },
                    None => {
                        self.journal.record_recv(now, id);
                        self.net.delivered(&message.src, &message.dest);
                        driver.on_message(self, *message);
                    }
                }
            }
            Event::Tick { node, incarnation } => {
                let slot = &self.slots[node];
                if slot.incarnation != incarnation
                    || slot.state != NodeState::Up
                    || slot.tick_at != Some(self.now)
                {
                    return;
                }
                self.slots[node].tick_at = None;
                let tick = Message {
                    src: HARNESS.into(),
                    dest: self.names[node].clone(),
                    now: None,
                    body: Body::new("tick"),
                };
                self.journal
                    .record(self.now, "tick", json!({"node": self.names[node]}));
                self.deliver_to_node(node, tick);
            }
            Event::Wake { token } => driver.on_wake(self, token),
            Event::Fault(fault) => {
                let what = fault.describe();
                if let Err(e) = self.fault(fault) {
                    self.errors.push(format!("applying fault {what}: {e}"));
                }
            }
        }
    }

    /// In lockstep, writes the delivery `first` (about to be handled) together with the
    /// deliveries to the same node that follow it in the queue at the same time, if the
    /// node reads its stdin as a stream (`"pipeline": true`). The node still takes them
    /// as separate steps, and they are handled one by one in queue order as always:
    /// nothing a step does can come before them (new events are later in time or in
    /// order), so the run, and its journal, are exactly those of writing one line per
    /// step; only the process switches between the steps are saved.
    fn write_ahead(&mut self, first: &mut Scheduled, limit: u64) {
        let Event::Deliver { message, .. } = &mut first.event else {
            return;
        };
        let Some(i) = self.names.iter().position(|n| *n == message.dest) else {
            return;
        };
        let slot = &self.slots[i];
        let Some(process) = slot.process.as_ref() else {
            return;
        };
        if !slot.pipeline || slot.state != NodeState::Up || slot.written_ahead > 0 {
            return;
        }
        // The pipe is empty (the node has read every line it answered), so a batch
        // that fits in it is written without blocking, whatever the node does.
        let budget = process.stdin_capacity() / 2;
        message.now = Some(self.now);
        let mut lines = message.to_json();
        lines.push('\n');
        let mut batch = Vec::new();
        while let Some(Reverse(next)) = self.queue.peek() {
            let same_node =
                matches!(&next.event, Event::Deliver { message: m, .. } if m.dest == self.names[i]);
            if !same_node || next.time > self.now || next.time > limit || lines.len() >= budget {
                break;
            }
            let Reverse(mut next) = self.queue.pop().expect("peeked");
            let Event::Deliver { message, .. } = &mut next.event else {
                unreachable!("checked above")
            };
            message.now = Some(self.now);
            let line = message.to_json();
            if lines.len() + line.len() + 1 > budget {
                self.queue.push(Reverse(next));
                break;
            }
            lines.push_str(&line);
            lines.push('\n');
            batch.push(next);
        }
        if batch.is_empty() {
            return;
        }
        let written = batch.len() + 1;
        // Back in the queue with their sequence numbers: the same order as before.
        self.queue.extend(batch.into_iter().map(Reverse));
        let process = self.slots[i].process.as_mut().expect("checked above");
        // On failure nothing is marked written: the delivery's own write fails the
        // same way (the pipe is broken) and reports it where it always does.
        if process.send_lines(&lines).is_ok() {
            self.slots[i].written_ahead = written;
        }
    }

    /// Writes `message` to node `i`; in lockstep, runs the step to its end.
    fn deliver_to_node(&mut self, i: usize, mut message: Message) {
        if self.config.mode == TimeMode::Sim {
            message.now = Some(self.now);
        }
        let line = message.to_json();
        let Some(process) = self.slots[i].process.as_mut() else {
            return;
        };
        if let Err(e) = process.send_line(&line) {
            let name = self.names[i].clone();
            self.node_failed(i, format!("{name}: cannot write to its stdin: {e}"));
            return;
        }
        if self.config.mode == TimeMode::Sim {
            self.finish_step(i);
        }
    }

    /// Reads node `i`'s output until its `step_done`, routing what it sends.
    fn finish_step(&mut self, i: usize) {
        self.stats.steps += 1;
        let deadline = Instant::now() + self.config.step_timeout;
        let incarnation = self.slots[i].incarnation;
        // A node whose power cut may strike is looked at often: in its sync it ends
        // no step.
        let cut = self.power_cut_armed(i);
        loop {
            let mut wait = deadline.saturating_duration_since(Instant::now());
            if cut {
                wait = wait.min(POWER_CUT_POLL);
            }
            let Some(process) = self.slots[i].process.as_mut() else {
                return;
            };
            let name = self.names[i].clone();
            let line = match process.read_line(wait) {
                Ok(Some(Line::Text(line))) => line,
                Ok(Some(line)) => {
                    if self.on_bad_line(i, line) {
                        continue;
                    }
                    return;
                }
                Ok(None) => {
                    self.node_failed(i, format!("{name} exited in the middle of a step"));
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    if cut && (self.strike_power_cut(i) || Instant::now() < deadline) {
                        if self.slots[i].state == NodeState::Down {
                            return;
                        }
                        continue;
                    }
                    let timeout = self.config.step_timeout;
                    self.node_failed(
                        i,
                        format!(
                            "{name} did not end its step with step_done within {timeout:?} \
                             (lockstep time, see specs::node_protocol); a node without \
                             lockstep support runs with HARNESS_TIME=real"
                        ),
                    );
                    return;
                }
                Err(e) => {
                    self.node_failed(i, format!("{name}: cannot read its stdout: {e}"));
                    return;
                }
            };
            if let Some(done) = self.on_line(i, &line) {
                if let Some(at) = done {
                    let at = at.max(self.now);
                    self.slots[i].tick_at = Some(at);
                    self.push(
                        at,
                        Event::Tick {
                            node: i,
                            incarnation,
                        },
                    );
                }
                return;
            }
        }
    }

    /// A line from a node outside a lockstep step (real time, or a stray line).
    fn on_output(&mut self, output: NodeOutput) {
        let slot = &self.slots[output.node];
        if slot.incarnation != output.incarnation || slot.process.is_none() {
            return;
        }
        let name = &self.names[output.node];
        match output.output {
            Output::Line(Line::Text(line)) => {
                self.on_line(output.node, &line);
            }
            Output::Line(line) => {
                self.on_bad_line(output.node, line);
            }
            Output::Closed => {
                let error = format!("{name} exited by itself");
                self.node_failed(output.node, error);
            }
            Output::StdinFailed(e) => {
                let error = format!("{name}: cannot write to its stdin: {e}");
                self.node_failed(output.node, error);
            }
        }
    }

    /// A line from node `i` that is not text, the same in both time modes: one that
    /// is not UTF-8 is a protocol error and skipped (true: the node reads on); one
    /// over [`MAX_LINE_BYTES`] leaves the protocol's framing, and fails the node.
    fn on_bad_line(&mut self, i: usize, line: Line) -> bool {
        let name = &self.names[i];
        match line {
            Line::Text(_) => unreachable!("text is a line like any other"),
            Line::NotUtf8(what) => {
                self.bad_output(i, format!("{name} wrote a line that is not UTF-8 ({what})"));
                true
            }
            Line::TooLong => {
                let error = format!(
                    "{name} wrote more than {MAX_LINE_BYTES} bytes without a newline: not a \
                     line of the node protocol (one JSON message a line)"
                );
                self.node_failed(i, error);
                false
            }
        }
    }

    /// Records a protocol error of node `i`'s output.
    fn bad_output(&mut self, i: usize, error: String) {
        self.journal.record(
            self.now(),
            "bad-output",
            json!({"node": self.names[i], "error": error}),
        );
        self.errors.push(error);
    }

    /// Handles one line from node `i`. Returns `Some(wake_at)` for a `step_done`.
    fn on_line(&mut self, i: usize, line: &str) -> Option<Option<u64>> {
        let message: Message = match serde_json::from_str(line) {
            Ok(m) => m,
            Err(e) => {
                let shown: String = line.chars().take(200).collect();
                let more = if shown.len() < line.len() { "..." } else { "" };
                let error = format!(
                    "{} wrote a line that is not a message ({e}): {shown}{more}",
                    self.names[i]
                );
                self.bad_output(i, error);
                return None;
            }
        };
        if message.src != self.names[i] {
            self.errors.push(format!(
                "{} sent a message with src {:?}: {line}",
                self.names[i], message.src
            ));
        }
        if message.dest == HARNESS {
            return match message.body.kind.as_str() {
                "step_done" => Some(message.body.u64("wake_at")),
                "init_ok" => {
                    self.slots[i].pipeline = message.body.get("pipeline") == Some(&true.into());
                    None
                }
                _ => None,
            };
        }
        self.route(message);
        None
    }

    fn route(&mut self, message: Message) {
        let now = self.now();
        if let Some(kept) = self.recorded.as_mut().filter(|_| self.recording) {
            if self.names.contains(&message.src) && self.names.contains(&message.dest) {
                kept.push(message.clone());
            }
        }
        let body = message.body.to_json();
        let fate = self
            .net
            .route(&mut self.rng, &message.src, &message.dest, body.len());
        self.stats.routed += 1;
        let id = self.next_message;
        self.next_message += 1;
        self.journal
            .record_send(now, id, &message.src, &message.dest, &fate, &body);
        if let Fate::Delivered(delays) = fate {
            let (last, copies) = delays.split_last().expect("delivered at least once");
            let message = Box::new(message);
            for delay in copies {
                let message = message.clone();
                self.push(now + delay, Event::Deliver { id, message });
            }
            self.push(now + last, Event::Deliver { id, message });
        }
    }

    fn node_failed(&mut self, i: usize, error: String) {
        let now = self.now();
        self.journal.record(
            now,
            "node-failed",
            json!({"node": self.names[i], "error": error}),
        );
        self.errors.push(error);
        self.kill(i);
    }

    fn kill(&mut self, i: usize) {
        // A node that already exited is reaped all the same; nothing to report.
        let _ = self.kill_and_reap(i);
    }

    /// Kills node `i`, reaps it and fails the power of its disk; `torn`: in the middle
    /// of a write, so each file appended to since its last sync keeps a random prefix
    /// of what was appended.
    fn lose_power(&mut self, i: usize, torn: bool) -> Result<(), HarnessError> {
        let node = self.names[i].clone();
        // Reaped before the power goes: a process still running could write after it,
        // onto the disk as it is after the power failure.
        self.kill_and_reap(i).map_err(|source| HarnessError::Io {
            what: format!("power loss on {node}: reaping it"),
            source,
        })?;
        let seed = torn.then(|| self.rng.gen::<u64>());
        let fs = self.slots[i]
            .fs
            .as_ref()
            .expect("a power loss needs the power-loss filesystem");
        let lost = match seed {
            Some(seed) => fs.power_fail_torn(seed),
            None => fs.power_fail(),
        };
        self.journal.record(
            self.now(),
            "power-loss",
            json!({"node": node, "lost_bytes": lost.bytes, "lost_files": lost.files, "torn": torn}),
        );
        Ok(())
    }

    /// True if node `i`'s disk has a power cut (`Fault::PowerLossAtSync`) waiting.
    fn power_cut_armed(&self, i: usize) -> bool {
        self.slots[i]
            .fs
            .as_ref()
            .is_some_and(|fs| fs.power_cut_armed() || fs.power_is_cut())
    }

    /// If node `i`'s power cut struck (it waits in the sync the power went in), the
    /// power loss: the node is killed and its disk keeps what it made durable before,
    /// and of what it appended since, a prefix (the sync was under way).
    fn strike_power_cut(&mut self, i: usize) -> bool {
        if !self.slots[i].fs.as_ref().is_some_and(LazyFs::power_is_cut) {
            return false;
        }
        self.slots[i].power_cuts_struck += 1;
        let now = self.now();
        let what = format!("power loss on {} in the middle of a sync", self.names[i]);
        self.journal.record(now, "nemesis", json!({"what": what}));
        self.history.nemesis(now, &what);
        if let Err(e) = self.lose_power(i, true) {
            self.errors.push(format!("{what}: {e}"));
        }
        true
    }

    /// Strikes every power cut that struck (real time: nothing waits in a step).
    fn strike_power_cuts(&mut self) {
        for i in 0..self.slots.len() {
            self.strike_power_cut(i);
        }
    }

    /// How many power cuts at a sync (`Fault::PowerLossAtSync`) struck `node` so far.
    pub fn power_cuts_struck(&self, node: &str) -> u64 {
        self.index(node)
            .map_or(0, |i| self.slots[i].power_cuts_struck)
    }

    /// How many power cuts at a sync struck any node so far.
    pub fn power_cuts_struck_anywhere(&self) -> u64 {
        self.slots.iter().map(|s| s.power_cuts_struck).sum()
    }

    /// How many copies of old messages `Fault::Replay` has sent so far.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// True if node `i` runs (or is paused): not crashed, not powered off.
    pub fn is_up(&self, node: &str) -> bool {
        self.index(node)
            .is_ok_and(|i| self.slots[i].state != NodeState::Down)
    }

    /// SIGKILLs node `i` and waits until it is reaped.
    fn kill_and_reap(&mut self, i: usize) -> std::io::Result<()> {
        let slot = &mut self.slots[i];
        let mut reaped = Ok(());
        if let Some(mut p) = slot.process.take() {
            if slot.state == NodeState::Paused {
                let _ = p.process().signal(libc::SIGCONT);
            }
            reaped = match &slot.fs {
                Some(fs) => fs.kill(p.process()),
                None => p.process().kill(),
            }
            .map(|_| ());
        }
        slot.state = NodeState::Down;
        slot.incarnation += 1;
        slot.held.clear();
        slot.tick_at = None;
        slot.pipeline = false;
        slot.written_ahead = 0;
        reaped
    }

    /// Spawns node `i` and runs its `init`.
    fn boot(&mut self, i: usize) -> Result<(), HarnessError> {
        let slot = &mut self.slots[i];
        slot.incarnation += 1;
        let mut command = self.config.implementation.command();
        command.envs(self.config.env.iter().map(|(k, v)| (k, v)));
        let sim = self.config.mode == TimeMode::Sim;
        let process = NodeProcess::spawn(&slot.name, command, &slot.log, !sim).map_err(|e| {
            HarnessError::NodeStart {
                node: slot.name.clone(),
                reason: format!("{} ({e})", self.config.implementation.describe()),
            }
        })?;
        slot.process = Some(process);
        slot.state = NodeState::Up;
        let init = Init {
            node_id: slot.name.clone(),
            node_ids: self.names.clone(),
            data_dir: Some(slot.data_dir.to_string_lossy().into_owned()),
            seed: Some(node_seed(self.config.seed, i)),
            lockstep: sim,
        };
        let message = Message {
            src: HARNESS.into(),
            dest: slot.name.clone(),
            now: None,
            body: init.to_body(1),
        };
        let name = slot.name.clone();
        let incarnation = slot.incarnation;
        self.journal.record(
            self.now(),
            "boot",
            json!({"node": name, "incarnation": incarnation}),
        );
        self.deliver_to_node(i, message);
        if !sim {
            self.await_init_ok(i)?;
        }
        match self.slots[i].state {
            NodeState::Up => Ok(()),
            _ => Err(HarnessError::NodeStart {
                reason: self
                    .errors
                    .last()
                    .cloned()
                    .unwrap_or_else(|| "it stopped during init".into()),
                node: name,
            }),
        }
    }

    fn await_init_ok(&mut self, i: usize) -> Result<(), HarnessError> {
        let failed = |node: &str, reason: String| HarnessError::NodeStart {
            node: node.to_string(),
            reason,
        };
        let deadline = Instant::now() + self.config.step_timeout;
        let incarnation = self.slots[i].incarnation;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                let timeout = self.config.step_timeout;
                let reason = format!("it did not answer init with init_ok within {timeout:?}");
                return Err(failed(&self.names[i], reason));
            }
            // Every output read is handled, the other nodes' too, before returning.
            let mut result = None;
            for output in self.poll_outputs(wait) {
                let ours = output.node == i && output.incarnation == incarnation;
                if ours && result.is_none() {
                    match &output.output {
                        Output::Closed => {
                            // Reaped now: an ended stdout would show up at every poll.
                            self.kill(i);
                            let reason = "it exited before init_ok".into();
                            result = Some(Err(failed(&self.names[i], reason)));
                            continue;
                        }
                        Output::Line(Line::Text(line)) => {
                            if let Ok(m) = serde_json::from_str::<Message>(line) {
                                if m.dest == HARNESS && m.body.kind == "init_ok" {
                                    result = Some(Ok(()));
                                    continue;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                self.on_output(output);
                if ours && result.is_none() && self.slots[i].process.is_none() {
                    // Its output failed it (a line too long, a broken stdin).
                    let reason = self.errors.last().cloned().unwrap_or_default();
                    result = Some(Err(failed(&self.names[i], reason)));
                }
            }
            if let Some(result) = result {
                return result;
            }
        }
    }

    /// Real time: waits at most `wait` for output from any node, meanwhile writing
    /// what stdin pipes did not take before, and returns what was read, in order.
    fn poll_outputs(&mut self, wait: Duration) -> Vec<NodeOutput> {
        let mut fds = Vec::with_capacity(2 * self.slots.len());
        // For each entry of `fds`: the node, and whether it is its stdin.
        let mut owners = Vec::with_capacity(fds.capacity());
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(process) = slot.process.as_ref() else {
                continue;
            };
            fds.push(libc::pollfd {
                fd: process.stdout_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            owners.push((i, false));
            if process.has_unsent() {
                fds.push(libc::pollfd {
                    fd: process.stdin_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                });
                owners.push((i, true));
            }
        }
        let timeout = libc::timespec {
            tv_sec: wait.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds that outlives the call.
        let ready = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &timeout,
                std::ptr::null(),
            )
        };
        let mut outputs = Vec::new();
        if ready <= 0 {
            // Nothing in time, or a signal (EINTR): the caller's loop looks again.
            return outputs;
        }
        for (fd, (i, stdin)) in fds.iter().zip(owners) {
            if fd.revents == 0 {
                continue;
            }
            let incarnation = self.slots[i].incarnation;
            let Some(process) = self.slots[i].process.as_mut() else {
                continue;
            };
            if stdin {
                if let Err(e) = process.write_unsent() {
                    let output = Output::StdinFailed(e);
                    outputs.push(NodeOutput {
                        node: i,
                        incarnation,
                        output,
                    });
                }
            } else {
                outputs.extend(process.read_ready().into_iter().map(|output| NodeOutput {
                    node: i,
                    incarnation,
                    output,
                }));
            }
        }
        outputs
    }
}

/// Bytes of the files in `dir` and below (none if it does not exist yet).
fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    if !dir.exists() {
        return Ok(0);
    }
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match fs::metadata(entry.path()) {
            Ok(meta) => meta,
            // A running node may replace a file (write a new one, rename it over)
            // while it is measured.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientConfig, Clients};
    use crate::network::Latency;
    use crate::suites::kvsrv::KvProtocol;
    use crate::testdir::TestDir;
    use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};

    fn config(dir: &TestDir, implementation: Implementation) -> ClusterConfig {
        ClusterConfig {
            nodes: 1,
            implementation,
            env: Vec::new(),
            mode: TimeMode::Sim,
            seed: 3,
            net: NetConfig::reliable(),
            dir: dir.path().to_path_buf(),
            step_timeout: Duration::from_secs(2),
        }
    }

    fn kvsrv() -> Implementation {
        Implementation::ours("kvsrv")
    }

    /// Runs one operation from a fresh client; returns its completion and how long it
    /// took on the cluster's clock.
    fn one(cluster: &mut Cluster, op: FetchAppendInput) -> (Completion<FetchAppendOutput>, u64) {
        let config = ClientConfig {
            attempt_timeout: 20_000_000,
            op_timeout: 300_000_000,
            think: Latency::Fixed(0),
            targets: vec!["n1".into()],
            stall_timeout: 0,
        };
        let mut ops = vec![op];
        let mut clients = Clients::new(
            KvProtocol,
            move |_: usize, _: &mut StdRng| ops.pop(),
            config,
            1,
            1,
        );
        let limit = cluster.now() + 10_000_000_000;
        cluster.run(&mut clients, limit);
        let done = clients.done.pop().expect("the operation ended");
        (done.completion, done.ret - done.call)
    }

    use crate::history::Completion;

    fn get() -> FetchAppendInput {
        FetchAppendInput::Get { key: "k".into() }
    }

    /// A node using SplitMix64 (state += 0x9E37_79B9_7F4A_7C15 each draw) must not get
    /// another node's stream shifted by a few draws: with small run seeds, the old
    /// derivation gave n3 exactly n2's stream one draw later (run seeds 2 and 10), and
    /// two candidates split the vote for ever.
    #[test]
    fn node_seeds_are_unrelated_streams() {
        const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
        for seed in (0..200).chain([u64::MAX, 1 << 63, 0x9E37_79B9]) {
            let seeds: Vec<u64> = (0..7).map(|i| node_seed(seed, i)).collect();
            for (a, x) in seeds.iter().enumerate() {
                for y in &seeds[a + 1..] {
                    let apart = y.wrapping_sub(*x);
                    let close = (0..=1000u64).any(|k| {
                        apart == k.wrapping_mul(GOLDEN)
                            || apart.wrapping_neg() == k.wrapping_mul(GOLDEN)
                    });
                    assert!(!close, "run seed {seed}: node seeds {x} and {y} are streams within 1000 draws of each other");
                }
            }
        }
        assert_eq!(node_seed(10, 1), node_seed(10, 1), "a run replays");
    }

    #[test]
    fn crash_loses_messages_and_restart_starts_a_fresh_process() {
        let dir = TestDir::new("cluster-crash");
        let mut cluster = Cluster::start(config(&dir, kvsrv())).unwrap();
        let put = FetchAppendInput::Put {
            key: "k".into(),
            value: "v".into(),
        };
        assert!(matches!(one(&mut cluster, put).0, Completion::Ok(_)));
        cluster.fault(Fault::Crash("n1".into())).unwrap();
        let (completion, took) = one(&mut cluster, get());
        assert_eq!(
            completion,
            Completion::Info,
            "nobody answers a crashed node's client"
        );
        assert!(took >= 300_000_000);
        assert!(cluster.journal.text().contains("\"why\":\"node down\""));
        std::fs::create_dir_all(dir.join("n1.data")).unwrap();
        std::fs::write(dir.join("n1.data/state"), b"x").unwrap();
        cluster.fault(Fault::Restart("n1".into())).unwrap();
        assert!(
            dir.join("n1.data/state").exists(),
            "a restart keeps the data dir"
        );
        // Our server keeps its store in memory: the restarted process starts empty.
        let (completion, _) = one(&mut cluster, get());
        assert_eq!(completion, Completion::Ok(FetchAppendOutput::default()));
        cluster.fault(Fault::RestartWiped("n1".into())).unwrap();
        assert!(
            !dir.join("n1.data/state").exists(),
            "amnesia wipes the data dir"
        );
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
        assert!(cluster.history.text().contains("crash n1"));
    }

    #[test]
    fn a_paused_node_answers_after_resume() {
        let dir = TestDir::new("cluster-pause");
        let mut cluster = Cluster::start(config(&dir, kvsrv())).unwrap();
        let now = cluster.now();
        cluster.fault(Fault::Pause("n1".into())).unwrap();
        cluster.schedule(&Schedule::new().at(now + 100_000_000, Fault::Resume("n1".into())));
        let (completion, took) = one(&mut cluster, get());
        assert_eq!(completion, Completion::Ok(FetchAppendOutput::default()));
        assert!(
            took >= 100_000_000,
            "answered after {took} ns, before the resume"
        );
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
    }

    /// A driver that asks `node-ticker` for `count` ticks `period` apart and keeps
    /// the times it reports.
    struct TickClient {
        period: u64,
        count: u64,
        ticks: Option<Vec<u64>>,
        started: u64,
    }

    impl Driver for TickClient {
        fn start(&mut self, cluster: &mut Cluster) {
            self.started = cluster.now();
            cluster.send(Message {
                src: "c1".into(),
                dest: "n1".into(),
                now: None,
                body: Body {
                    msg_id: Some(1),
                    ..Body::new("start")
                        .with("period", self.period)
                        .with("count", self.count)
                },
            });
        }

        fn on_message(&mut self, _: &mut Cluster, message: Message) {
            let ticks = message
                .body
                .get("ticks")
                .and_then(|t| t.as_array())
                .map(|t| t.iter().filter_map(|x| x.as_u64()).collect());
            self.ticks = ticks;
        }

        fn on_wake(&mut self, _: &mut Cluster, _: u64) {}

        fn done(&self) -> bool {
            self.ticks.is_some()
        }
    }

    fn ticks(mode: TimeMode) -> (Vec<u64>, u64, RunStats) {
        let dir = TestDir::new("cluster-ticks");
        let mut config = config(&dir, Implementation::ours("node-ticker"));
        config.mode = mode;
        let mut cluster = Cluster::start(config).unwrap();
        let mut driver = TickClient {
            period: 20_000_000,
            count: 5,
            ticks: None,
            started: 0,
        };
        let stats = cluster.run(&mut driver, cluster.now() + 5_000_000_000);
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
        (
            driver.ticks.expect("the node answered"),
            driver.started,
            stats,
        )
    }

    #[test]
    fn lockstep_ticks_come_exactly_when_asked() {
        let (ticks, _, stats) = ticks(TimeMode::Sim);
        // The start request arrives after 1 ms (the reliable network's latency).
        let want: Vec<u64> = (1..=5).map(|k| 1_000_000 + k * 20_000_000).collect();
        assert_eq!(ticks, want);
        assert!(stats.wall < Duration::from_millis(100), "{stats:?}");
    }

    #[test]
    fn real_time_ticks_follow_the_wall_clock() {
        let (ticks, started, stats) = ticks(TimeMode::Real);
        assert_eq!(ticks.len(), 5);
        assert!(
            ticks.windows(2).all(|w| w[1] - w[0] >= 20_000_000),
            "{ticks:?}"
        );
        let elapsed = stats.elapsed_ns - started;
        assert!(
            elapsed >= 100_000_000,
            "5 ticks 20 ms apart took {elapsed} ns"
        );
    }

    #[test]
    fn a_node_without_lockstep_is_reported_clearly() {
        let dir = TestDir::new("cluster-silent");
        let silent = Implementation::from_command("sh -c 'echo not-json; cat >/dev/null'").unwrap();
        let error = Cluster::start(config(&dir, silent))
            .err()
            .expect("start fails");
        assert!(
            matches!(&error, HarnessError::NodeStart { node, .. } if node == "n1"),
            "{error:?}"
        );
        assert!(error.to_string().contains("step_done"), "{error}");
    }

    /// A driver that sends one request from `c1` to `n1` and keeps the answer, if one
    /// comes within a second.
    struct Ask {
        body: Option<Body>,
        token: u64,
        answer: Option<Body>,
        gave_up: bool,
    }

    impl Driver for Ask {
        fn start(&mut self, cluster: &mut Cluster) {
            let body = self.body.take().expect("asked once");
            cluster.send(Message {
                src: "c1".into(),
                dest: "n1".into(),
                now: None,
                body: Body {
                    msg_id: Some(self.token),
                    ..body
                },
            });
            cluster.wake(cluster.now() + 1_000_000_000, self.token);
        }

        fn on_message(&mut self, _: &mut Cluster, message: Message) {
            if message.body.in_reply_to == Some(self.token) {
                self.answer = Some(message.body);
            }
        }

        fn on_wake(&mut self, _: &mut Cluster, token: u64) {
            self.gave_up |= token == self.token;
        }

        fn done(&self) -> bool {
            self.answer.is_some() || self.gave_up
        }
    }

    fn ask(cluster: &mut Cluster, body: Body) -> Option<Body> {
        let mut driver = Ask {
            body: Some(body),
            token: cluster.new_client_ids(1).start,
            answer: None,
            gave_up: false,
        };
        let limit = cluster.now() + 2_000_000_000;
        cluster.run(&mut driver, limit);
        driver.answer
    }

    fn write_file(cluster: &mut Cluster, name: &str, value: &str, durable: bool) {
        let body = Body::new("write")
            .with("name", name)
            .with("value", value)
            .with("durable", durable);
        let answer = ask(cluster, body).expect("the write was answered");
        assert_eq!(answer.kind, "write_ok", "{answer:?}");
    }

    /// What node `n1` reads for `name` (`None` for no file), or `Err` without answer.
    fn read_file(cluster: &mut Cluster, name: &str) -> Result<Option<String>, ()> {
        let answer = ask(cluster, Body::new("read").with("name", name)).ok_or(())?;
        assert_eq!(answer.kind, "read_ok", "{answer:?}");
        Ok(answer.str("value").map(str::to_string))
    }

    fn files_cluster(dir: &TestDir) -> Cluster {
        let config = config(dir, Implementation::ours("node-files"));
        Cluster::start_with(config, Durability::LazyFs).unwrap()
    }

    #[test]
    fn power_loss_keeps_only_what_the_node_made_durable() {
        let dir = TestDir::new("cluster-power-loss");
        let mut cluster = files_cluster(&dir);
        write_file(&mut cluster, "a", "1111", true);
        write_file(&mut cluster, "a", "22222", false);
        write_file(&mut cluster, "b", "22222", false);
        // A crash keeps everything: the page cache outlives the process.
        cluster.fault(Fault::Crash("n1".into())).unwrap();
        cluster.fault(Fault::Restart("n1".into())).unwrap();
        assert_eq!(read_file(&mut cluster, "a"), Ok(Some("22222".into())));
        assert_eq!(read_file(&mut cluster, "b"), Ok(Some("22222".into())));
        cluster.fault(Fault::PowerLoss("n1".into())).unwrap();
        assert_eq!(
            read_file(&mut cluster, "a"),
            Err(()),
            "down until restarted"
        );
        cluster.fault(Fault::Restart("n1".into())).unwrap();
        assert_eq!(read_file(&mut cluster, "a"), Ok(Some("1111".into())));
        assert_eq!(read_file(&mut cluster, "b"), Ok(None));
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
        assert!(cluster.history.text().contains("power loss on n1"));
        let journal = cluster.journal.text();
        let line = journal
            .lines()
            .find(|l| l.contains("\"ev\":\"power-loss\""))
            .expect("the power loss is journaled");
        // All five bytes of a's careless version, and b with its five.
        assert!(line.contains("\"lost_bytes\":10"), "{line}");
        assert!(line.contains("\"lost_files\":1"), "{line}");
    }

    #[test]
    fn power_loss_at_a_sync_strikes_inside_it_and_keeps_the_syncs_before() {
        let dir = TestDir::new("cluster-power-at-sync");
        let mut cluster = files_cluster(&dir);
        write_file(&mut cluster, "a", "1111", true);
        // A durable write is two syncs: the new version's file, then the directory
        // that renames it over the old. The power goes in the second.
        cluster
            .fault(Fault::PowerLossAtSync("n1".into(), 2))
            .unwrap();
        assert!(cluster.is_up("n1"), "armed, not yet struck");
        let body = Body::new("write")
            .with("name", "a")
            .with("value", "22222")
            .with("durable", true);
        assert_eq!(
            ask(&mut cluster, body),
            None,
            "a write whose sync never ended"
        );
        assert!(!cluster.is_up("n1"), "the node lost power in its sync");
        assert_eq!(cluster.power_cuts_struck("n1"), 1);
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
        assert!(cluster
            .history
            .text()
            .contains("n1 in the middle of a sync"));
        cluster.fault(Fault::Restart("n1".into())).unwrap();
        assert_eq!(
            read_file(&mut cluster, "a"),
            Ok(Some("1111".into())),
            "the rename was never made durable"
        );
        // The restarted node's syncs go ahead: the cut struck once.
        write_file(&mut cluster, "a", "333", true);
        cluster.fault(Fault::PowerLoss("n1".into())).unwrap();
        cluster.fault(Fault::Restart("n1".into())).unwrap();
        assert_eq!(read_file(&mut cluster, "a"), Ok(Some("333".into())));
        assert!(
            cluster
                .fault(Fault::PowerLossAtSync("n1".into(), 0))
                .is_err(),
            "sync 0 does not exist"
        );
        cluster.fault(Fault::Crash("n1".into())).unwrap();
        assert!(
            cluster
                .fault(Fault::PowerLossAtSync("n1".into(), 1))
                .is_err(),
            "a node that is down makes no sync"
        );
    }

    #[test]
    fn amnesia_on_the_power_loss_filesystem_empties_the_disk() {
        let dir = TestDir::new("cluster-lazy-wipe");
        let mut cluster = files_cluster(&dir);
        write_file(&mut cluster, "a", "durable", true);
        cluster.fault(Fault::RestartWiped("n1".into())).unwrap();
        assert_eq!(read_file(&mut cluster, "a"), Ok(None));
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
    }

    #[test]
    fn power_loss_on_the_real_disk_is_refused_and_harms_nothing() {
        let dir = TestDir::new("cluster-power-refused");
        let config = config(&dir, Implementation::ours("node-files"));
        let mut cluster = Cluster::start(config).unwrap();
        write_file(&mut cluster, "a", "v", true);
        let error = cluster.fault(Fault::PowerLoss("n1".into())).unwrap_err();
        assert!(matches!(error, HarnessError::Fault(_)), "{error:?}");
        assert!(error.to_string().contains("Durability::LazyFs"), "{error}");
        assert_eq!(
            read_file(&mut cluster, "a"),
            Ok(Some("v".into())),
            "still up"
        );
        assert!(!cluster.history.text().contains("power loss"));
    }

    #[test]
    fn replay_needs_a_recording_and_keeps_only_messages_between_nodes() {
        let dir = TestDir::new("cluster-replay");
        let config = config(&dir, Implementation::ours("node-files"));
        let mut cluster = Cluster::start(config).unwrap();
        let error = cluster.fault(Fault::Replay(1_000_000)).unwrap_err();
        assert!(error.to_string().contains("Fault::Record"), "{error}");
        cluster.fault(Fault::Record).unwrap();
        write_file(&mut cluster, "a", "v", true);
        cluster.fault(Fault::Replay(1_000_000)).unwrap();
        assert_eq!(
            cluster.replayed(),
            0,
            "a client's request is not a node's message"
        );
        assert_eq!(read_file(&mut cluster, "a"), Ok(Some("v".into())));
    }

    #[test]
    fn replay_after_a_stop_sends_only_the_recorded_window() {
        let dir = TestDir::new("cluster-replay-window");
        let config = ClusterConfig {
            nodes: 3,
            ..config(&dir, Implementation::ours("raft"))
        };
        let mut cluster = Cluster::start(config).unwrap();
        let error = cluster.fault(Fault::StopRecording).unwrap_err();
        assert!(error.to_string().contains("Fault::Record"), "{error}");
        let run_a_second = |cluster: &mut Cluster| {
            let mut sleeper = Sleeper {
                token: 10,
                patient: true,
                woken: Vec::new(),
            };
            cluster.run(&mut sleeper, u64::MAX);
        };
        // Three Raft nodes elect a leader and send heartbeats without being asked.
        cluster.fault(Fault::Record).unwrap();
        run_a_second(&mut cluster);
        cluster.fault(Fault::StopRecording).unwrap();
        cluster.fault(Fault::Replay(0)).unwrap();
        let window = cluster.replayed();
        assert!(window > 0, "the nodes sent each other nothing in a second");
        run_a_second(&mut cluster);
        cluster.fault(Fault::Replay(0)).unwrap();
        assert_eq!(
            cluster.replayed(),
            2 * window,
            "a message sent after the stop was kept"
        );
    }

    /// Runs `clients` clients that each write once, all at the same time, so the server
    /// gets their requests at one virtual time.
    fn simultaneous_writes(implementation: Implementation, clients: usize) -> (String, RunStats) {
        let dir = TestDir::new("cluster-pipeline");
        let mut cluster = Cluster::start(config(&dir, implementation)).unwrap();
        let config = ClientConfig {
            attempt_timeout: 20_000_000,
            op_timeout: 300_000_000,
            think: Latency::Fixed(0),
            targets: vec!["n1".into()],
            stall_timeout: 0,
        };
        let mut left = vec![true; clients];
        let workload = move |c: usize, _: &mut StdRng| {
            std::mem::take(&mut left[c]).then(|| FetchAppendInput::Put {
                key: "k".into(),
                value: format!("{c}"),
            })
        };
        let mut driver = Clients::new(KvProtocol, workload, config, clients, 1);
        let stats = cluster.run(&mut driver, 10_000_000_000);
        assert!(cluster.errors.is_empty(), "{:?}", cluster.errors);
        assert_eq!(driver.done.len(), clients);
        (cluster.journal.text().to_string(), stats)
    }

    #[test]
    fn same_time_deliveries_share_a_write_and_change_nothing() {
        let clients = 40;
        let (journal, stats) = simultaneous_writes(kvsrv(), clients);
        assert!(
            stats.pipelined >= clients as u64 / 2,
            "our node offers pipelining; {stats:?}"
        );
        // The same server with "pipeline" taken out of its init_ok gets its lines one
        // at a time, and the run is the same.
        let script = format!(
            "{} | sed -u 's/,\"pipeline\":true//'",
            shell_words::quote(&crate::implementation::workspace_binary("kvsrv").to_string_lossy())
        );
        let plain = Implementation::from_command(&format!("sh -c {}", shell_words::quote(&script)))
            .unwrap();
        let (plain_journal, plain_stats) = simultaneous_writes(plain, clients);
        assert_eq!(plain_stats.pipelined, 0, "{plain_stats:?}");
        assert_eq!(plain_stats.steps, stats.steps);
        assert!(journal == plain_journal, "the journals differ");
    }

    /// Asks for one wake-up and keeps every token it is woken with; done once its own
    /// wake-up came, or at once when `patient` is false.
    struct Sleeper {
        token: u64,
        patient: bool,
        woken: Vec<u64>,
    }

    impl Driver for Sleeper {
        fn start(&mut self, cluster: &mut Cluster) {
            cluster.wake(cluster.now() + 100_000_000 * self.token, self.token);
        }

        fn on_message(&mut self, _: &mut Cluster, _: Message) {}

        fn on_wake(&mut self, _: &mut Cluster, token: u64) {
            self.woken.push(token);
        }

        fn done(&self) -> bool {
            !self.patient || self.woken.contains(&self.token)
        }
    }

    #[test]
    fn a_run_ends_its_drivers_wake_ups() {
        let dir = TestDir::new("cluster-wakes");
        let mut cluster = Cluster::start(config(&dir, kvsrv())).unwrap();
        let mut first = Sleeper {
            token: 1,
            patient: false,
            woken: Vec::new(),
        };
        cluster.run(&mut first, u64::MAX);
        let mut second = Sleeper {
            token: 2,
            patient: true,
            woken: Vec::new(),
        };
        cluster.run(&mut second, u64::MAX);
        assert_eq!(second.woken, [2], "woken with the first driver's token");
    }

    #[test]
    fn one_way_partition_loses_only_the_answers() {
        let dir = TestDir::new("cluster-oneway");
        let mut cluster = Cluster::start(config(&dir, kvsrv())).unwrap();
        cluster
            .fault(Fault::Partition(crate::network::Partition::one_way(
                "n1", "c1",
            )))
            .unwrap();
        let put = FetchAppendInput::Put {
            key: "k".into(),
            value: "v".into(),
        };
        assert_eq!(one(&mut cluster, put).0, Completion::Info);
        cluster.fault(Fault::Heal).unwrap();
        // The request got through: the write happened though its answer was lost.
        let (completion, _) = one(&mut cluster, get());
        let Completion::Ok(out) = completion else {
            panic!("{completion:?}")
        };
        assert_eq!(out.value.as_deref(), Some("v"));
        let links = cluster.network().links();
        let answers = links[&("n1".to_string(), "c1".to_string())];
        assert!(answers.cut > 0 && answers.delivered == 0, "{answers:?}");
    }
}
