//! What one test run found, and how it reads.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::TimeMode;

/// A property the implementation did not have, and what showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A name from [`super::property`] or the system's own.
    pub property: &'static str,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.property, self.message)
    }
}

/// Counts for the summary table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestStats {
    pub ops: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Messages the harness routed (0 where it is not the network).
    pub messages: u64,
    /// Time on the run's clock (virtual in simulated time).
    pub clock_ns: u64,
    /// Lockstep steps the nodes took (0 on the wall clock).
    pub steps: u64,
}

impl TestStats {
    pub fn add(&mut self, other: TestStats) {
        self.ops += other.ops;
        self.ok += other.ok;
        self.fail += other.fail;
        self.info += other.info;
        self.messages += other.messages;
        self.steps += other.steps;
        self.clock_ns = self.clock_ns.max(other.clock_ns);
    }
}

/// The result of one test against one implementation.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub system: &'static str,
    pub test: &'static str,
    pub seed: u64,
    pub mode: TimeMode,
    /// The known-bad variant run, if any.
    pub bug: Option<String>,
    pub implementation: String,
    pub failures: Vec<Failure>,
    pub notes: Vec<String>,
    pub stats: Option<TestStats>,
    pub wall: Duration,
    /// Where the evidence of a failing run is.
    pub artifacts: Option<PathBuf>,
    /// The scratch directory, kept when the run failed.
    pub scratch: Option<PathBuf>,
    /// The commands that replay this run.
    pub replay: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The full name, `<system>::<test>`.
    pub fn name(&self) -> String {
        format!("{}::{}", self.system, self.test)
    }

    /// True if some failure is about `property`.
    pub fn failed_for(&self, property: &str) -> bool {
        self.failures.iter().any(|f| f.property == property)
    }

    /// A readable account: what failed, the seed, the evidence and the replay.
    pub fn report(&self) -> String {
        let mut s = format!(
            "{} ({} time, seed {}{}): {}\n  implementation: {}\n",
            self.name(),
            self.mode.name(),
            self.seed,
            self.bug
                .as_deref()
                .map_or(String::new(), |b| format!(", known-bad variant {b}")),
            if self.passed() { "passed" } else { "FAILED" },
            self.implementation
        );
        for f in &self.failures {
            s.push_str(&format!("  - {f}\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("  {n}\n"));
        }
        if let Some(t) = &self.stats {
            s.push_str(&format!(
                "  {} operations ({} ok, {} failed, {} unknown), {} messages routed, {:.3} s on the run's clock, {:.3} s wall\n",
                t.ops,
                t.ok,
                t.fail,
                t.info,
                t.messages,
                t.clock_ns as f64 / 1e9,
                self.wall.as_secs_f64()
            ));
        }
        if let Some(dir) = &self.artifacts {
            s.push_str(&format!("  evidence: {}\n", dir.display()));
        }
        if let Some(dir) = &self.scratch {
            s.push_str(&format!("  scratch directory kept: {}\n", dir.display()));
        }
        if !self.passed() {
            for r in &self.replay {
                s.push_str(&format!("  replay: {r}\n"));
            }
        }
        s
    }
}
