//! External applications: a map and a reduce executable in the Hadoop Streaming
//! contract run through the framework (`mrworker --map CMD --reduce CMD`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::support::{exit_guard, finish, hang_guard, or_fail, streaming_script as script, LabJob};
use super::{ERRORS, EXIT, OUTPUT, TASK_RETRY};
use crate::suite::{fail, property, Context};

/// The word-count script pair gives the same result through the framework as piped
/// through `cat | map | sort | reduce`.
pub fn script_pair_matches_pipeline(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-streaming", 20_000);
    let (map, reduce) = (script("wc-map.sh"), script("wc-reduce.sh"));
    let mut coordinator = job.coordinator();
    let mut workers: Vec<_> = (0..2).map(|_| job.external_worker(&map, &reduce)).collect();
    or_fail(
        finish(&mut coordinator, hang_guard()).map_err(|e| job.diagnose(e)),
        OUTPUT,
    );
    for w in &mut workers {
        or_fail(finish(w, exit_guard()), EXIT);
    }
    let through_framework = or_fail(job.outputs(), OUTPUT);
    let piped = pipeline(&job, &map, &reduce);
    or_fail(job.check(&piped), OUTPUT);
    if through_framework != piped {
        fail(
            OUTPUT,
            "the framework's outputs differ from the pipeline's, though the directory checked out",
        );
    }
}

/// A map command that always fails makes the job fail with an error, instead of being
/// retried forever; the workers exit too.
pub fn an_application_that_always_fails_fails_the_job(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-failing-app", 1_000);
    let mut coordinator = job.coordinator();
    let mut workers: Vec<_> = (0..2)
        .map(|_| job.external_worker(&PathBuf::from("false"), &PathBuf::from("cat")))
        .collect();
    let Some(status) = coordinator.wait_timeout(hang_guard()).unwrap() else {
        fail(
            ERRORS,
            format!(
                "the job still runs after {} s of failing map tasks",
                hang_guard().as_secs()
            ),
        )
    };
    if status.success() {
        fail(ERRORS, "the coordinator reported success for a failed job");
    }
    for w in &mut workers {
        let exited = w.wait_timeout(exit_guard()).unwrap();
        if exited.is_none() {
            fail(
                EXIT,
                format!("{} did not exit after the job failed", w.name()),
            );
        }
    }
    if job.dir.join("mr-out-0").exists() {
        fail(OUTPUT, "a failed job left an output that looks final");
    }
}

/// A map command that fails on its first run and works on every later one: the
/// failed task is handed out again and the job ends with the right output. A
/// framework that gives up on the first failure, or crashes on it, would turn every
/// transient fault (a full disk, a killed child) into a failed job.
pub fn a_failed_task_is_retried(cx: &mut Context) {
    let mut job = LabJob::new(cx, "mr-flaky-app", 20_000);
    let flaky_dir = job.scratch("flaky");
    let marker = flaky_dir.join("first-map-failed");
    let flaky = flaky_dir.join("flaky-map.sh");
    std::fs::write(
        &flaky,
        format!(
            "#!/bin/sh\n# Fails once: the first run to create the marker exits 1.\n\
             if mkdir '{}' 2>/dev/null; then cat >/dev/null; exit 1; fi\nexec '{}'\n",
            marker.display(),
            script("wc-map.sh").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&flaky, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let reduce = script("wc-reduce.sh");
    let mut coordinator = job.coordinator();
    let mut workers: Vec<_> = (0..2)
        .map(|_| job.external_worker(&flaky, &reduce))
        .collect();
    let finished = finish(&mut coordinator, hang_guard()).map_err(|e| job.diagnose(e));
    if !marker.exists() {
        // No map command ever ran: nothing failed, so nothing was retried.
        or_fail(finished, TASK_RETRY);
        fail(
            property::PROGRESS,
            "no progress: the job ended without running a map command",
        );
    }
    if let Err(e) = finished {
        // Judged by what happened, not by whether files were left: the first map
        // command did fail, so whatever the job did next is the retry under test.
        fail(
            TASK_RETRY,
            format!("one failed run of a map command made the job fail: {e}"),
        );
    }
    for w in &mut workers {
        or_fail(finish(w, exit_guard()), EXIT);
    }
    // The script pair's own result, piped: what the job must produce.
    let piped = pipeline(&job, &script("wc-map.sh"), &reduce);
    or_fail(job.check(&piped), OUTPUT);
}

/// `cat inputs | map | sort | reduce` in the job directory: what the framework must
/// produce with the pair `map` and `reduce`.
fn pipeline(job: &LabJob, map: &Path, reduce: &Path) -> BTreeMap<String, String> {
    let pipeline = format!(
        "cat {} | {} | LC_ALL=C sort | {}",
        job.inputs.join(" "),
        map.display(),
        reduce.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&pipeline)
        .current_dir(&job.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{pipeline} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let piped: BTreeMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    assert!(
        piped.len() > 50,
        "the pipeline found only {} words",
        piped.len()
    );
    piped
}
