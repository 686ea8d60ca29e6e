//! Jobs whose verdict is returned, not asserted, so the same scenario is both a
//! conformance test (it must pass) and the proof that a known-bad variant fails it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use checkers::mapreduce::{lab_outputs, OutputWatcher};
use harness::{Process, Seed};
use rand::Rng;

use crate::support::{slow_expected, LabJob, SHORT_TIMEOUT_MS};

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
pub fn reduce_after_last_map(job: &mut LabJob, limit: Duration) -> Result<(), String> {
    job.run("barrier", 3, limit)?;
    let out = lab_outputs(&job.dir)?;
    let n = job.inputs.len().to_string();
    for (key, seen) in &out {
        if *seen != n {
            return Err(format!(
                "a reduce ran before the last map ended: reducing {key:?} it saw {seen} of {n} map tasks finished"
            ));
        }
    }
    let expected: BTreeMap<String, String> =
        (0..10).map(|i| (format!("k{i}"), n.clone())).collect();
    job.check(&expected)
}

/// Final names never show partial content while a job runs.
pub fn outputs_appear_whole(job: &mut LabJob, limit: Duration) -> Result<(), String> {
    let watcher = OutputWatcher::start(&job.dir, is_lab_output);
    job.run("slow", 2, limit)?;
    let seen = watcher.check(&job.dir)?;
    if seen == 0 {
        return Err("the watcher saw no output file at all".into());
    }
    job.check(&slow_expected(&job.inputs))
}

/// Workers are SIGKILLed mid-task and replaced; the job still finishes with the exact
/// output, and no final name ever shows a partial file.
pub fn survives_sigkill(job: &mut LabJob, seed: &Seed, limit: Duration) -> Result<(), String> {
    job.env("MR_TASK_TIMEOUT_MS", SHORT_TIMEOUT_MS);
    let watcher = OutputWatcher::start(&job.dir, is_lab_output);
    let mut rng = seed.rng(2);
    let mut coordinator = job.coordinator();
    let mut workers: Vec<Process> = (0..3).map(|_| job.worker("slow")).collect();
    let start = Instant::now();
    // The first kill lands while every worker is still in its first map task.
    let mut next_kill = start + Duration::from_millis(rng.gen_range(50..200));
    let mut kills = 0;
    let finished = loop {
        if coordinator.try_wait().map_err(|e| e.to_string())?.is_some() {
            break true;
        }
        let now = Instant::now();
        if now >= start + limit {
            break false;
        }
        if kills < 6 && now >= next_kill {
            let i = rng.gen_range(0..workers.len());
            workers[i].kill().map_err(|e| e.to_string())?;
            workers[i] = job.worker("slow");
            kills += 1;
            next_kill = now + Duration::from_millis(rng.gen_range(150..450));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if !finished {
        return Err(format!(
            "the job did not finish within {} s after {kills} workers were killed (is a dead worker's task ever re-assigned?)",
            limit.as_secs()
        ));
    }
    if kills == 0 {
        return Err("the job ended before any worker could be killed".into());
    }
    let status = coordinator
        .try_wait()
        .map_err(|e| e.to_string())?
        .expect("exited");
    if !status.success() {
        return Err(format!("the coordinator failed: {status}"));
    }
    for w in &mut workers {
        if w.wait_timeout(Duration::from_secs(10))
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Err(format!("{} did not exit after the job was done", w.name()));
        }
    }
    watcher.check(&job.dir)?;
    job.check(&slow_expected(&job.inputs))
}
