//! The seven MapReduce tests of MIT 6.5840 (`test-mr.sh`), on generated inputs.

use std::collections::BTreeMap;
use std::time::Duration;

use checkers::mapreduce::lab_outputs;
use harness::{Process, Seed};

use crate::support::{
    crash_expected, exit_guard, finish, hang_guard, wait_until, wc_expected, LabJob,
    SHORT_TIMEOUT_MS,
};

/// Word count with three workers gives the reference counts.
#[test]
fn wc() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-wc", &seed, 60_000);
    job.run("wc", 3, hang_guard()).unwrap();
    job.check(&wc_expected(&job.contents())).unwrap();
}

/// The inverted index with two workers gives the reference index.
#[test]
fn indexer() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-indexer", &seed, 30_000);
    job.run("indexer", 2, hang_guard()).unwrap();
    let contents = job.contents();
    let expected =
        crate::oracle::inverted_index(contents.iter().map(|(n, c)| (n.as_str(), c.as_slice())));
    job.check(&expected).unwrap();
}

/// Two workers run map tasks at the same time.
#[test]
fn map_parallelism() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-mtiming", &seed, 1_000);
    job.run("mtiming", 2, hang_guard()).unwrap();
    let out = job.outputs().unwrap();
    let workers = out.keys().filter(|k| k.starts_with("times-")).count();
    assert_eq!(
        workers, 2,
        "map tasks ran in {workers} worker processes, expected 2: {out:?}"
    );
    assert!(
        out.contains_key("parallel-2"),
        "no map task saw another worker mapping at the same time: {out:?}"
    );
}

/// Two workers run reduce tasks at the same time.
#[test]
fn reduce_parallelism() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-rtiming", &seed, 1_000);
    job.run("rtiming", 2, hang_guard()).unwrap();
    let out = job.outputs().unwrap();
    let parallel = out.values().filter(|v| *v == "2").count();
    assert!(
        parallel >= 2,
        "only {parallel} reduce calls saw another worker reducing at the same time: {out:?}"
    );
}

/// Without failures every map task runs exactly once.
#[test]
fn job_count() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-jobcount", &seed, 1_000);
    job.run("jobcount", 4, hang_guard()).unwrap();
    let n = job.inputs.len().to_string();
    job.check(&BTreeMap::from([("a".to_string(), n)]))
        .map_err(|e| format!("map tasks did not run exactly once each: {e}"))
        .unwrap();
}

/// No process of the job exits before the output is final.
#[test]
fn early_exit() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-early-exit", &seed, 1_000);
    let mut all: Vec<Process> = vec![job.coordinator()];
    all.extend((0..3).map(|_| job.worker("early_exit")));
    let exited = wait_until(hang_guard(), || {
        all.iter_mut().any(|p| p.try_wait().unwrap().is_some())
    });
    assert!(
        exited,
        "{}",
        job.diagnose(format!(
            "no process of the job exited within {} s",
            hang_guard().as_secs()
        ))
    );
    let first = all
        .iter_mut()
        .find_map(|p| p.try_wait().unwrap().map(|_| p.name().to_string()))
        .unwrap();
    let at_first_exit = lab_outputs(&job.dir);
    for p in &mut all {
        finish(p, hang_guard()).unwrap();
    }
    let expected: BTreeMap<String, String> = job
        .inputs
        .iter()
        .map(|n| (n.clone(), "1".to_string()))
        .collect();
    job.check(&expected).unwrap();
    assert_eq!(
        at_first_exit.as_ref(),
        Ok(&expected),
        "when {first} exited the output was not final yet"
    );
}

/// Workers that exit or stall at random: the output still matches `nocrash`.
#[test]
fn crash() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-crash", &seed, 1_000);
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
    assert!(
        done,
        "{}; logs in {}",
        job.diagnose(format!(
            "the job did not finish within {} s",
            hang_guard().as_secs()
        )),
        job.logs().display()
    );
    finish(&mut coordinator, Duration::ZERO).unwrap();
    // Stalled workers wake up to find the coordinator gone; a late attempt may still
    // rename an output into place, and must not change it.
    for w in &mut workers {
        let exited = w.wait_timeout(exit_guard()).unwrap();
        assert!(
            exited.is_some(),
            "{} did not exit after the job was done",
            w.name()
        );
    }
    job.check(&crash_expected(&job.contents())).unwrap();
}

/// A missing input file or an unknown application is a clear error and a non-zero
/// exit, not a hang or a crash.
#[test]
fn bad_arguments() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-args", &seed, 100);
    job.inputs.push("no-such-input.txt".into());
    let mut coordinator = job.coordinator();
    let status = coordinator.wait_timeout(exit_guard()).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "the coordinator did not fail on a missing input: {status:?}"
    );
    let log = std::fs::read_to_string(job.logs().join("coordinator.log")).unwrap();
    assert!(
        log.contains("no-such-input.txt"),
        "the error does not name the file: {log}"
    );

    let mut worker = job.worker("no-such-app");
    let status = worker.wait_timeout(exit_guard()).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "the worker did not fail on an unknown application: {status:?}"
    );
    let log = std::fs::read_to_string(job.logs().join("worker-1.log")).unwrap();
    assert!(
        log.contains("no-such-app"),
        "the error does not name the application: {log}"
    );
}
