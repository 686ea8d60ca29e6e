//! What a test gets: its seed, its time mode, scratch space, the implementation to
//! launch, and where it reports failures, notes and evidence.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::outcome::{Failure, TestStats};
use super::Suite;
use crate::cluster::TimeMode;
use crate::implementation::Implementation;

/// Files a failing run leaves behind. A handle: a test's tester can keep a clone and
/// add its journal and logs even while the test unwinds from a panic.
#[derive(Debug, Clone, Default)]
pub struct Evidence(Arc<Mutex<EvidenceFiles>>);

#[derive(Debug, Default)]
pub(crate) struct EvidenceFiles {
    /// (file name, contents)
    pub files: Vec<(String, String)>,
    /// Files to copy (node and server logs), taken when the run ends.
    pub copies: Vec<PathBuf>,
}

impl Evidence {
    /// Adds (or replaces) a file of the evidence.
    pub fn file(&self, name: &str, contents: impl Into<String>) {
        let mut e = self.0.lock().unwrap_or_else(|e| e.into_inner());
        e.files.retain(|(n, _)| n != name);
        e.files.push((name.to_string(), contents.into()));
    }

    /// Copies `path` into the evidence when the run ends (if it still exists then).
    pub fn copy(&self, path: impl Into<PathBuf>) {
        let path = path.into();
        let mut e = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !e.copies.contains(&path) {
            e.copies.push(path);
        }
    }

    pub(crate) fn take(&self) -> EvidenceFiles {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Which implementation a run tests.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Commands given on the command line, by program variable.
    pub overrides: Vec<(String, Implementation)>,
    /// A known-bad variant of our binaries.
    pub bug: Option<String>,
}

/// One test's view of its run.
#[derive(Debug)]
pub struct Context {
    pub suite: &'static Suite,
    /// The test's name within the system.
    pub test: &'static str,
    pub seed: u64,
    pub mode: TimeMode,
    target: Target,
    dir: PathBuf,
    pub(crate) failures: Vec<Failure>,
    pub(crate) notes: Vec<String>,
    evidence: Evidence,
    /// Counts for the summary table, when the test has operations to count.
    pub stats: Option<TestStats>,
}

impl Context {
    pub(crate) fn new(
        suite: &'static Suite,
        test: &'static str,
        seed: u64,
        mode: TimeMode,
        target: Target,
        dir: PathBuf,
    ) -> Context {
        Context {
            suite,
            test,
            seed,
            mode,
            target,
            dir,
            failures: Vec::new(),
            notes: Vec::new(),
            evidence: Evidence::default(),
            stats: None,
        }
    }

    /// The system's main program (the first of the suite's programs).
    pub fn implementation(&self) -> Implementation {
        self.program(self.suite.programs[0].var)
    }

    /// The program read from variable `var` (or named `var` on the command line): a
    /// command given with `--impl`, else the variable's command, else our binary;
    /// always our binary, with its bug switch set, when the run tests a known-bad
    /// variant.
    pub fn program(&self, var: &str) -> Implementation {
        let program = self.suite.program(var).unwrap_or_else(|| {
            panic!(
                "the {} suite has no program {var:?} (programs: {:?})",
                self.suite.name,
                self.suite
                    .programs
                    .iter()
                    .map(|p| p.var)
                    .collect::<Vec<_>>()
            )
        });
        if let Some(bug) = &self.target.bug {
            return Implementation::ours(program.bin).with_env(self.suite.bug_var, bug);
        }
        match self.target.overrides.iter().find(|(v, _)| v == program.var) {
            Some((_, i)) => i.clone(),
            None => Implementation::from_env(program.var, program.bin),
        }
    }

    /// True when every program of the run is ours (tests that need our extras, such
    /// as a bug switch, know whether they apply).
    pub fn testing_ours(&self) -> bool {
        self.suite
            .programs
            .iter()
            .all(|p| self.program(p.var).is_ours())
    }

    /// The known-bad variant this run tests, if any.
    pub fn bug(&self) -> Option<&str> {
        self.target.bug.as_deref()
    }

    /// Scratch space for this test (kept, with its path printed, if the test fails).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A directory under the scratch space not used yet: `stem`, then `stem-2`,
    /// `stem-3`... (a test that starts several clusters gets one each).
    pub fn fresh_dir(&self, stem: &str) -> PathBuf {
        (1..)
            .map(|n| match n {
                1 => self.dir.join(stem),
                n => self.dir.join(format!("{stem}-{n}")),
            })
            .find(|d| !d.exists())
            .expect("a free name")
    }

    /// A fresh generator from the seed; `stream` keeps independent uses apart.
    pub fn rng(&self, stream: u64) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Records a failure of `property` and goes on.
    pub fn fail(&mut self, property: &'static str, message: impl Into<String>) {
        self.failures.push(Failure {
            property,
            message: message.into(),
        });
    }

    /// Records a failure of `property` unless `ok`.
    pub fn check(&mut self, ok: bool, property: &'static str, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(property, message());
        }
    }

    /// True while nothing has failed.
    pub fn passing(&self) -> bool {
        self.failures.is_empty()
    }

    /// A measurement worth showing even when the test passes.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Where to put what a failing run leaves behind.
    pub fn evidence(&self) -> Evidence {
        self.evidence.clone()
    }

    /// Requires that at least `min` of `total` operations succeeded: a history in
    /// which nothing succeeded is trivially correct, so every verdict includes
    /// progress. `what` names the operations ("operations", "appends").
    pub fn require_progress(&mut self, ok: u64, total: u64, min: u64, what: &str) {
        if ok < min {
            self.fail(
                super::property::PROGRESS,
                format!("no progress: {ok} of {total} {what} succeeded (at least {min} required)"),
            );
        }
    }
}
