//! Jobs whose verdict is returned, not asserted, so the same scenario serves a
//! conformance test and a check of the suite (a correct but slow coordinator must
//! pass it): each failure is a [`Failure`] variant, and each variant names the
//! property it shows missing ([`Failure::property`]), which is what a known-bad
//! variant must be rejected for.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use checkers::mapreduce::OutputWatcher;
use rand::rngs::StdRng;
use rand::Rng;

use super::support::{
    exit_guard, finish, fixture, hang_guard, slow_expected, streaming_script, LabJob,
    SHORT_TIMEOUT_MS,
};
use super::{ATOMIC_OUTPUT, EXIT, OUTPUT, REDUCE_AFTER_ALL_MAPS, TASK_REASSIGNMENT};
use crate::process::Process;
use crate::suite::property;

/// Why a scenario failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The job produced nothing: no task was handed out, or no file appeared.
    NoProgress(String),
    /// A reduce call ran while a map task was still running: it saw `seen` of the
    /// `maps` map tasks' end markers.
    EarlyReduce {
        key: String,
        seen: String,
        maps: usize,
    },
    /// A final name showed content other than what it ended with.
    PartialVisible(String),
    /// The map tasks of `inputs` were held by a worker that was SIGKILLed, and were
    /// never handed out again: another worker mapped every other input and the job
    /// then sat with exactly these tasks outstanding for `waited`.
    NeverReassigned {
        inputs: Vec<String>,
        waited: Duration,
        allowed: Duration,
    },
    /// A process of the job did not exit once the job was over.
    NoExit(String),
    /// Anything else: wrong output, a process that failed or hung.
    Other(String),
}

impl Failure {
    /// The property the failure shows missing.
    pub fn property(&self) -> &'static str {
        match self {
            Failure::NoProgress(_) => property::PROGRESS,
            Failure::EarlyReduce { .. } => REDUCE_AFTER_ALL_MAPS,
            Failure::PartialVisible(_) => ATOMIC_OUTPUT,
            Failure::NeverReassigned { .. } => TASK_REASSIGNMENT,
            Failure::NoExit(_) => EXIT,
            Failure::Other(_) => OUTPUT,
        }
    }

    /// Stops the test with this failure, under its property.
    pub fn raise(self) -> ! {
        crate::suite::fail(self.property(), self.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoProgress(why) => write!(f, "{why}"),
            Failure::EarlyReduce { key, seen, maps } => write!(
                f,
                "a reduce ran before the last map ended: reducing {key:?} it saw {seen} of {maps} map tasks finished"
            ),
            Failure::PartialVisible(what) => write!(f, "{what}"),
            Failure::NeverReassigned {
                inputs,
                waited,
                allowed,
            } => write!(
                f,
                "the map task of {inputs:?}, held by a worker SIGKILLed {:.1} s earlier, was never handed out again: \
                 another worker mapped every other input, then the job sat with only that task outstanding \
                 (allowed {:.1} s: 3 times the re-assign timeout accepted plus 20 times what the other maps took)",
                waited.as_secs_f64(),
                allowed.as_secs_f64()
            ),
            Failure::NoExit(why) | Failure::Other(why) => write!(f, "{why}"),
        }
    }
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        if why.starts_with("no progress") {
            Failure::NoProgress(why)
        } else {
            Failure::Other(why)
        }
    }
}

/// Final names in a 6.5840 job directory: `mr-out-R` and `mr-X-Y`.
pub fn is_lab_output(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("mr-") else {
        return false;
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('-') {
        Some(("out", r)) => numeric(r),
        Some((x, y)) => numeric(x) && numeric(y),
        None => false,
    }
}

/// No reduce call starts before every map task has ended: the `barrier` application's
/// reducers count the markers its mappers leave when they end.
pub fn reduce_after_last_map(job: &mut LabJob, limit: Duration) -> Result<(), Failure> {
    job.run("barrier", 3, limit)?;
    let out = job.outputs()?;
    let maps = job.inputs.len();
    for (key, seen) in &out {
        if *seen != maps.to_string() {
            return Err(Failure::EarlyReduce {
                key: key.clone(),
                seen: seen.clone(),
                maps,
            });
        }
    }
    let expected: BTreeMap<String, String> = (0..10)
        .map(|i| (format!("k{i}"), maps.to_string()))
        .collect();
    Ok(job.check(&expected)?)
}

/// Final names never show partial content while a job runs.
pub fn outputs_appear_whole(job: &mut LabJob, limit: Duration) -> Result<(), Failure> {
    let watcher = OutputWatcher::start(&job.dir, is_lab_output);
    job.run("slow", 2, limit)?;
    job.outputs()?;
    watcher.check(&job.dir).map_err(Failure::PartialVisible)?;
    Ok(job.check(&slow_expected(&job.inputs))?)
}

/// Waits until `done` gives a value, failing with "no progress" if the coordinator
/// exits first or nothing happens within the hang guard.
fn await_event<T>(
    job: &LabJob,
    coordinator: &mut Process,
    what: &str,
    mut done: impl FnMut() -> Option<T>,
) -> Result<T, Failure> {
    let deadline = Instant::now() + hang_guard();
    loop {
        if let Some(v) = done() {
            return Ok(v);
        }
        if let Some(status) = coordinator.try_wait().map_err(|e| e.to_string())? {
            return Err(Failure::NoProgress(format!(
                "no progress: the coordinator exited ({status}) before {what}; job files: {:?}",
                job.job_files()
            )));
        }
        if Instant::now() >= deadline {
            return Err(Failure::NoProgress(format!(
                "no progress: after {} s still no sign that {what}; job files: {:?}",
                hang_guard().as_secs(),
                job.job_files()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Workers are SIGKILLed mid-task and replaced; the job still finishes with the exact
/// output, and no final name ever shows a partial file. Kills follow the job's
/// progress, not the clock: the first once the first intermediate file appears (the
/// other workers are then inside their first map tasks), the next ones after a random
/// number of further files, so they land in the map and the reduce phase however fast
/// or slow the machine is.
pub fn survives_sigkill(job: &mut LabJob, mut rng: StdRng, limit: Duration) -> Result<(), Failure> {
    job.env("MR_TASK_TIMEOUT_MS", SHORT_TIMEOUT_MS);
    let watcher = OutputWatcher::start(&job.dir, is_lab_output);
    let mut coordinator = job.coordinator();
    let mut workers: Vec<Process> = (0..3).map(|_| job.worker("slow")).collect();
    await_event(
        job,
        &mut coordinator,
        "any intermediate file appeared",
        || (!job.job_files().is_empty()).then_some(()),
    )?;
    let start = Instant::now();
    let mut kill_at = 1;
    let mut kills = 0;
    let finished = loop {
        if coordinator.try_wait().map_err(|e| e.to_string())?.is_some() {
            break true;
        }
        if start.elapsed() >= limit {
            break false;
        }
        let files = job.job_files().len();
        if kills < 6 && files >= kill_at {
            let i = rng.gen_range(0..workers.len());
            workers[i].kill().map_err(|e| e.to_string())?;
            workers[i] = job.worker("slow");
            kills += 1;
            kill_at = files + rng.gen_range(1..=12);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if !finished {
        return Err(Failure::Other(format!(
            "the job did not finish within {} s after {kills} workers were killed; job files: {:?}",
            limit.as_secs(),
            job.job_files()
        )));
    }
    let status = coordinator
        .try_wait()
        .map_err(|e| e.to_string())?
        .expect("exited");
    if !status.success() {
        return Err(Failure::Other(format!("the coordinator failed: {status}")));
    }
    job.outputs()?;
    for w in &mut workers {
        if w.wait_timeout(exit_guard())
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Err(Failure::NoExit(format!(
                "{} did not exit after the job was done",
                w.name()
            )));
        }
    }
    watcher.check(&job.dir).map_err(Failure::PartialVisible)?;
    job.check(&slow_expected(&job.inputs))?;
    if kills == 0 {
        return Err(Failure::Other(
            "the job ended before any worker could be killed".into(),
        ));
    }
    Ok(())
}

/// How long a dead worker's task may stay outstanding before the scenario calls it
/// never re-assigned: `timeouts` times the re-assign timeout, plus 20 times what the
/// live worker took for every other map task in the same run (so a loaded machine
/// gets longer).
#[derive(Debug, Clone, Copy)]
pub struct ReassignAllowance {
    pub timeout: Duration,
}

impl ReassignAllowance {
    /// For any implementation: one that ignores `MR_TASK_TIMEOUT_MS` may use
    /// 6.5840's default of 10 s.
    pub const ANY: ReassignAllowance = ReassignAllowance {
        timeout: Duration::from_secs(10),
    };
    /// For our binary, which honours `MR_TASK_TIMEOUT_MS` (1000 here).
    pub const GIVEN: ReassignAllowance = ReassignAllowance {
        timeout: Duration::from_millis(1000),
    };
}

fn markers(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter_map(|n| n.strip_prefix(prefix).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A worker is SIGKILLed while it holds a map task; the task must be handed out
/// again. Worker A runs a map command that records its input and never finishes
/// (`fixtures/hold-map.sh`); once it holds a task it is killed, and worker B, whose
/// map command records each input it maps (`fixtures/record-map.sh`), must end up
/// mapping that input too. Everything is seen through the map commands' records and
/// the job's files, so it holds for any implementation of the streaming contract.
pub fn reassigns_a_dead_workers_task(
    job: &mut LabJob,
    allowance: ReassignAllowance,
) -> Result<(), Failure> {
    let probes = job.scratch("probes");
    job.env_default("MR_TASK_TIMEOUT_MS", SHORT_TIMEOUT_MS)
        .env("MR_PROBE_DIR", probes.to_str().expect("a UTF-8 temp path"));
    let (hold, record, reduce) = (
        fixture("hold-map.sh"),
        fixture("record-map.sh"),
        streaming_script("wc-reduce.sh"),
    );
    let mut coordinator = job.coordinator();
    let mut holder = job.external_worker(&hold, &reduce);
    await_event(job, &mut coordinator, "any map task was handed out", || {
        (!markers(&probes, "held-").is_empty()).then_some(())
    })?;
    holder.kill().map_err(|e| e.to_string())?;
    let killed = Instant::now();
    // Read after the kill: a worker running tasks in parallel may have taken more.
    let held = markers(&probes, "held-");
    let mut mapper = job.external_worker(&record, &reduce);
    let mapped_inputs = || -> Vec<String> {
        let mut names: Vec<String> = markers(&probes, "mapped-")
            .into_iter()
            .filter_map(|m| m.rsplit_once('-').map(|(name, _pid)| name.to_string()))
            .collect();
        names.dedup();
        names
    };
    let others: Vec<String> = job
        .inputs
        .iter()
        .filter(|i| !held.contains(i))
        .cloned()
        .collect();
    // The pace of this run: how long the live worker takes for every other input.
    await_event(
        job,
        &mut coordinator,
        "the second worker mapped every input the killed one did not hold",
        || {
            let m = mapped_inputs();
            others.iter().all(|o| m.contains(o)).then_some(())
        },
    )?;
    let others_took = killed.elapsed();
    let allowed = allowance.timeout * 3 + others_took * 20;
    loop {
        let m = mapped_inputs();
        if held.iter().all(|h| m.contains(h)) {
            break;
        }
        if coordinator.try_wait().map_err(|e| e.to_string())?.is_some() {
            return Err(Failure::Other(format!(
                "the coordinator exited while the map task of {held:?} (its worker SIGKILLed) had never run to the end"
            )));
        }
        if killed.elapsed() >= allowed {
            let outputs: Vec<String> = job
                .job_files()
                .into_iter()
                .filter(|n| n.starts_with("mr-out-"))
                .collect();
            if !outputs.is_empty() {
                return Err(Failure::Other(format!(
                    "outputs {outputs:?} appeared while the map task of {held:?} had never run to the end"
                )));
            }
            return Err(Failure::NeverReassigned {
                inputs: held,
                waited: killed.elapsed(),
                allowed,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    finish(&mut coordinator, hang_guard()).map_err(|e| job.diagnose(e))?;
    finish(&mut mapper, exit_guard())?;
    let expected: BTreeMap<String, String> = job
        .inputs
        .iter()
        .map(|i| (i.clone(), "1".to_string()))
        .collect();
    Ok(job.check(&expected)?)
}
