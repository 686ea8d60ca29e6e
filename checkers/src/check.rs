//! Checking a whole history: split it into independent parts when the model allows,
//! search each part (in parallel), and turn the outcome into a verdict.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use specs::Model;

use crate::history::{History, Operation};
use crate::search::{search, Limits, SearchOutcome};

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Give up after this long; the verdict is then Unknown, never Ok.
    pub timeout: Option<Duration>,
    /// Split the history as the model allows (by key, for key/value models).
    pub partition: bool,
    /// Threads checking parts in parallel; `None` uses every core. The verdict never
    /// depends on it, but when several parts are Illegal, which one is reported can
    /// depend on timing with more than one thread; one thread makes the report
    /// reproducible (the harness replays by seed, so it uses one).
    pub threads: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: None,
            partition: true,
            threads: None,
        }
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, each inside its interval, satisfies the model.
    Ok,
    /// No such order exists.
    Illegal,
    /// The checker gave up (time budget) before deciding.
    Unknown,
}

impl Verdict {
    /// The CLI's exit code: 0 Ok, 1 Illegal, 2 Unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Illegal => 1,
            Verdict::Unknown => 2,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Ok => "Ok (linearizable)",
            Verdict::Illegal => "Illegal (not linearizable)",
            Verdict::Unknown => "Unknown (gave up)",
        })
    }
}

/// Why a history is not linearizable, for the part that failed.
#[derive(Debug, Clone)]
pub struct Failure<S> {
    /// Indices (into the history) of the operations of the failing part.
    pub part: Vec<usize>,
    /// The longest linearizable prefix found, as history indices in order.
    pub prefix: Vec<usize>,
    /// `states[k]` is the model state after `prefix[..k]`; `states[0]` is the initial one.
    pub states: Vec<S>,
    /// The operation that could not be placed after that prefix.
    pub stuck: usize,
}

#[derive(Debug, Clone)]
pub struct CheckResult<S> {
    pub verdict: Verdict,
    pub elapsed: Duration,
    /// How many independent parts were checked.
    pub parts: usize,
    /// Present when the verdict is Illegal.
    pub failure: Option<Failure<S>>,
}

/// Checks `history` against `model`.
pub fn check<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    options: &CheckOptions,
) -> CheckResult<M::State> {
    let start = Instant::now();
    // A budget beyond what the clock can count to never runs out (`+` would panic).
    let deadline = options.timeout.and_then(|t| start.checked_add(t));
    let parts = split(model, history, options.partition);
    let cancel = AtomicBool::new(false);
    let failure: Mutex<Option<Failure<M::State>>> = Mutex::new(None);
    let gave_up = AtomicBool::new(false);
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);

    // Parts are searched in rounds with a step budget that grows fourfold, so that
    // one hard part cannot hold back an easy Illegal one behind it (one Illegal part
    // decides the whole history). A part that runs out of steps starts again in the
    // next round; the geometric growth bounds the repeated work. When no more parts
    // are left than threads, the budget is lifted.
    let mut pending: Vec<usize> = (0..parts.len()).collect();
    let mut budget: u64 = 1 << 14;
    while !pending.is_empty() && !cancel.load(Ordering::Relaxed) {
        let max_steps = (pending.len() > threads).then_some(budget);
        let next = AtomicUsize::new(0);
        let unfinished = Mutex::new(Vec::new());
        let work = || loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= pending.len() || cancel.load(Ordering::Relaxed) {
                return;
            }
            let part = &parts[pending[k]];
            let ops: Vec<&Operation<M::Input, M::Output>> =
                part.iter().map(|&i| &history.operations[i]).collect();
            let limits = Limits {
                deadline,
                cancel: &cancel,
                max_steps,
            };
            match search(model, &ops, &limits) {
                SearchOutcome::Linearizable => {}
                SearchOutcome::OutOfSteps => unfinished.lock().unwrap().push(pending[k]),
                SearchOutcome::Stopped => gave_up.store(true, Ordering::Relaxed),
                SearchOutcome::Illegal { prefix, stuck } => {
                    // An Illegal part decides the whole history: stop the others.
                    cancel.store(true, Ordering::Relaxed);
                    let prefix: Vec<usize> = prefix.into_iter().map(|i| part[i]).collect();
                    let states = replay(model, history, &prefix);
                    let mut slot = failure.lock().unwrap();
                    if slot.is_none() {
                        *slot = Some(Failure {
                            part: part.clone(),
                            prefix,
                            states,
                            stuck: part[stuck],
                        });
                    }
                }
            }
        };
        let workers = threads.min(pending.len());
        if workers == 1 {
            work();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(work);
                }
            });
        }
        pending = unfinished.into_inner().unwrap();
        pending.sort_unstable();
        budget = budget.saturating_mul(4);
    }

    let failure = failure.into_inner().unwrap();
    let verdict = if failure.is_some() {
        Verdict::Illegal
    } else if gave_up.load(Ordering::Relaxed) {
        Verdict::Unknown
    } else {
        Verdict::Ok
    };
    CheckResult {
        verdict,
        elapsed: start.elapsed(),
        parts: parts.len(),
        failure,
    }
}

/// The parts to check, as history indices, without failed operations (they did not
/// take effect, so they constrain nothing).
fn split<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    partition: bool,
) -> Vec<Vec<usize>> {
    let live: Vec<usize> = (0..history.len())
        .filter(|&i| !history.operations[i].is_failed())
        .collect();
    if live.is_empty() {
        return Vec::new();
    }
    if partition {
        let inputs: Vec<&M::Input> = live.iter().map(|&i| &history.operations[i].input).collect();
        if let Some(parts) = model.partition(&inputs) {
            return parts
                .into_iter()
                .map(|part| part.into_iter().map(|k| live[k]).collect())
                .collect();
        }
    }
    vec![live]
}

/// The states along a linearization.
fn replay<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    order: &[usize],
) -> Vec<M::State> {
    let mut states = vec![model.init()];
    for &i in order {
        let op = &history.operations[i];
        let next = model
            .step(states.last().unwrap(), &op.input, op.output())
            .expect("a prefix found by the search replays");
        states.push(next);
    }
    states
}
