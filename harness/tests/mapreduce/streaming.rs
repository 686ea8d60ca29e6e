//! External applications: a map and a reduce executable in the Hadoop Streaming
//! contract run through the framework (`mrworker --map CMD --reduce CMD`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use harness::Seed;

use crate::support::{exit_guard, finish, hang_guard, streaming_script as script, LabJob};

/// The word-count script pair gives the same result through the framework as piped
/// through `cat | map | sort | reduce`.
#[test]
fn script_pair_matches_pipeline() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-streaming", &seed, 20_000);
    let (map, reduce) = (script("wc-map.sh"), script("wc-reduce.sh"));
    let mut coordinator = job.coordinator();
    let mut workers: Vec<_> = (0..2).map(|_| job.external_worker(&map, &reduce)).collect();
    finish(&mut coordinator, hang_guard())
        .map_err(|e| job.diagnose(e))
        .unwrap();
    for w in &mut workers {
        finish(w, exit_guard()).unwrap();
    }
    let through_framework = job.outputs().unwrap();

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
    job.check(&piped).unwrap();
    assert_eq!(through_framework, piped);
}

/// A map command that always fails makes the job fail with an error, instead of being
/// retried forever; the workers exit too.
#[test]
fn an_application_that_always_fails_fails_the_job() {
    let seed = Seed::for_this_test();
    let mut job = LabJob::new("mr-failing-app", &seed, 1_000);
    let mut coordinator = job.coordinator();
    let mut workers: Vec<_> = (0..2)
        .map(|_| job.external_worker(&PathBuf::from("false"), &PathBuf::from("cat")))
        .collect();
    let status = coordinator
        .wait_timeout(hang_guard())
        .unwrap()
        .unwrap_or_else(|| {
            panic!(
                "the job still runs after {} s of failing map tasks",
                hang_guard().as_secs()
            )
        });
    assert!(
        !status.success(),
        "the coordinator reported success for a failed job"
    );
    for w in &mut workers {
        let exited = w.wait_timeout(exit_guard()).unwrap();
        assert!(
            exited.is_some(),
            "{} did not exit after the job failed",
            w.name()
        );
    }
    assert!(
        !job.dir.join("mr-out-0").exists(),
        "a failed job left an output that looks final"
    );
}
