//! The seven MapReduce tests of MIT 6.5840 (`test-mr.sh`), on generated inputs.

use std::collections::BTreeMap;
use std::time::Duration;

use checkers::mapreduce::lab_outputs;

use super::support::{
    crash_expected, exit_guard, fail_as, finish, hang_guard, or_fail, wait_until, wc_expected,
    LabJob, SHORT_TIMEOUT_MS,
};
use super::{ERRORS, EXIT, OUTPUT, PARALLELISM, TASKS_RUN_ONCE};
use crate::process::Process;
use crate::suite::{fail, Context};

/// Word count with three workers gives the reference counts.
pub fn wc(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-wc", 60_000);
    or_fail(job.run("wc", 3, hang_guard()), OUTPUT);
    or_fail(job.check(&wc_expected(&job.contents())), OUTPUT);
}

/// The inverted index with two workers gives the reference index.
pub fn indexer(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-indexer", 30_000);
    or_fail(job.run("indexer", 2, hang_guard()), OUTPUT);
    let contents = job.contents();
    let expected =
        super::oracle::inverted_index(contents.iter().map(|(n, c)| (n.as_str(), c.as_slice())));
    or_fail(job.check(&expected), OUTPUT);
}

/// Two workers run map tasks at the same time.
pub fn map_parallelism(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-mtiming", 1_000);
    or_fail(job.run("mtiming", 2, hang_guard()), OUTPUT);
    let out = or_fail(job.outputs(), OUTPUT);
    let workers = out.keys().filter(|k| k.starts_with("times-")).count();
    if workers != 2 {
        fail(
            PARALLELISM,
            format!("map tasks ran in {workers} worker processes, expected 2: {out:?}"),
        );
    }
    if !out.contains_key("parallel-2") {
        fail(
            PARALLELISM,
            format!("no map task saw another worker mapping at the same time: {out:?}"),
        );
    }
}

/// Two workers run reduce tasks at the same time.
pub fn reduce_parallelism(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-rtiming", 1_000);
    or_fail(job.run("rtiming", 2, hang_guard()), OUTPUT);
    let out = or_fail(job.outputs(), OUTPUT);
    let parallel = out.values().filter(|v| *v == "2").count();
    if parallel < 2 {
        fail(
            PARALLELISM,
            format!(
                "only {parallel} reduce calls saw another worker reducing at the same time: {out:?}"
            ),
        );
    }
}

/// Without failures every map task runs exactly once.
pub fn job_count(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-jobcount", 1_000);
    or_fail(job.run("jobcount", 4, hang_guard()), OUTPUT);
    let n = job.inputs.len().to_string();
    or_fail(
        job.check(&BTreeMap::from([("a".to_string(), n)]))
            .map_err(|e| {
                if e.starts_with("no progress") {
                    e
                } else {
                    format!("map tasks did not run exactly once each: {e}")
                }
            }),
        TASKS_RUN_ONCE,
    );
}

/// No process of the job exits before the output is final.
pub fn early_exit(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-early-exit", 1_000);
    let mut all: Vec<Process> = vec![job.coordinator()];
    all.extend((0..3).map(|_| job.worker("early_exit")));
    let exited = wait_until(hang_guard(), || {
        all.iter_mut().any(|p| p.try_wait().unwrap().is_some())
    });
    if !exited {
        fail_as(
            EXIT,
            job.diagnose(format!(
                "no process of the job exited within {} s",
                hang_guard().as_secs()
            )),
        );
    }
    let first = all
        .iter_mut()
        .find_map(|p| p.try_wait().unwrap().map(|_| p.name().to_string()))
        .unwrap();
    let at_first_exit = lab_outputs(&job.dir);
    for p in &mut all {
        or_fail(finish(p, hang_guard()), EXIT);
    }
    let expected: BTreeMap<String, String> = job
        .inputs
        .iter()
        .map(|n| (n.clone(), "1".to_string()))
        .collect();
    or_fail(job.check(&expected), OUTPUT);
    if at_first_exit.as_ref() != Ok(&expected) {
        fail(
            EXIT,
            format!("when {first} exited the output was not final yet: it was {at_first_exit:?}"),
        );
    }
}

/// Workers that exit or stall at random: the output still matches `nocrash`.
pub fn crash(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-crash", 1_000);
    job.env("MR_TASK_TIMEOUT_MS", SHORT_TIMEOUT_MS)
        .env("MR_CRASH_MAX_STALL_MS", "2000");
    let mut coordinator = job.coordinator();
    // As test-mr.sh: keep three workers running until the coordinator is done.
    let mut workers: Vec<Process> = (0..3).map(|_| job.worker("crash")).collect();
    let done = wait_until(hang_guard(), || {
        if coordinator.try_wait().unwrap().is_some() {
            return true;
        }
        for w in workers.iter_mut() {
            if w.try_wait().unwrap().is_some() {
                *w = job.worker("crash");
            }
        }
        false
    });
    if !done {
        fail_as(
            OUTPUT,
            format!(
                "{}; logs in {}",
                job.diagnose(format!(
                    "the job did not finish within {} s",
                    hang_guard().as_secs()
                )),
                job.logs().display()
            ),
        );
    }
    or_fail(finish(&mut coordinator, Duration::ZERO), OUTPUT);
    // Stalled workers wake up to find the coordinator gone; a late attempt may still
    // rename an output into place, and must not change it.
    for w in &mut workers {
        let exited = w.wait_timeout(exit_guard()).unwrap();
        if exited.is_none() {
            fail(
                EXIT,
                format!("{} did not exit after the job was done", w.name()),
            );
        }
    }
    or_fail(job.check(&crash_expected(&job.contents())), OUTPUT);
}

/// A missing input file or an unknown application is a clear error and a non-zero
/// exit, not a hang or a crash.
pub fn bad_arguments(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-args", 100);
    job.inputs.push("no-such-input.txt".into());
    let mut coordinator = job.coordinator();
    let status = coordinator.wait_timeout(exit_guard()).unwrap();
    if status.is_none_or(|s| s.success()) {
        fail(
            ERRORS,
            format!("the coordinator did not fail on a missing input: {status:?}"),
        );
    }
    let log = std::fs::read_to_string(job.logs().join("coordinator.log")).unwrap();
    if !log.contains("no-such-input.txt") {
        fail(
            ERRORS,
            format!("the coordinator's error does not name the missing file: {log}"),
        );
    }

    let mut worker = job.worker("no-such-app");
    let status = worker.wait_timeout(exit_guard()).unwrap();
    if status.is_none_or(|s| s.success()) {
        fail(
            ERRORS,
            format!("the worker did not fail on an unknown application: {status:?}"),
        );
    }
    let log = std::fs::read_to_string(job.logs().join("worker-1.log")).unwrap();
    if !log.contains("no-such-app") {
        fail(
            ERRORS,
            format!("the worker's error does not name the application: {log}"),
        );
    }
}
