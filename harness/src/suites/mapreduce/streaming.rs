//! External applications: a map and a reduce executable in the Hadoop Streaming
//! contract run through the framework (`mrworker --map CMD --reduce CMD`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use super::support::{exit_guard, finish, hang_guard, or_fail, streaming_script as script, LabJob};
use super::{ERRORS, EXIT, OUTPUT};
use crate::suite::{fail, Context};

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
