//! One shape for every system's conformance suite.
//!
//! A system registers one [`Suite`]: its name, the variables naming its
//! implementation's programs, its table of named tests, and its known-bad variants
//! with the test and the property expected to reject each. Everything else comes from
//! that descriptor: the nextest tests (`tests/<system>/main.rs` hands the table to
//! [`libtest::main`]), the command line (`harness list`, `harness test <system>`),
//! the replay lines and the artifacts of a failing run. Adding a system is one module
//! in `suites/` plus its table, like a Maelstrom workload.
//!
//! A test is a function of a [`Context`]: it gets the seed, the time mode, scratch
//! space and the implementation to launch, and it reports what it saw as typed
//! [`Failure`]s (`cx.fail(property, message)`), or panics (an `assert!`, or
//! [`fail`] for a typed failure that stops the test). The runner turns both into an
//! [`Outcome`].

pub mod context;
pub mod libtest;
pub mod outcome;
pub mod property;
pub mod runner;
pub mod self_check;
pub mod summary;

pub use context::{Context, Evidence};
pub use outcome::{Failure, Outcome, TestStats};
pub use runner::{fail, RunOptions};

/// One program of a system's implementation (most systems have one; MapReduce has a
/// coordinator and a worker).
#[derive(Debug)]
pub struct Program {
    /// The environment variable naming another implementation's command.
    pub var: &'static str,
    /// Our binary.
    pub bin: &'static str,
    /// The name `--impl NAME=CMD` uses for it on the command line.
    pub key: &'static str,
    /// How the suite starts it (arguments it appends), for `harness list`.
    pub run_as: &'static str,
}

/// One named test.
#[derive(Debug)]
pub struct TestCase {
    /// Its name within the system, `group::name` (the nextest name is
    /// `<system>::group::name`).
    pub name: &'static str,
    /// The course or seed test it corresponds to, where one exists.
    pub after: Option<&'static str>,
    pub run: fn(&mut Context),
}

/// A known-bad variant of our implementation and the proof that the suite rejects it.
#[derive(Debug)]
pub struct KnownBad {
    /// The value of the system's bug switch (`<SYSTEM>_BUG=variant`).
    pub variant: &'static str,
    /// What is wrong with it, in a few words.
    pub what: &'static str,
    /// The test expected to reject it.
    pub test: &'static str,
    /// The property that test must name when it rejects it.
    pub property: &'static str,
}

/// A system's suite.
#[derive(Debug)]
pub struct Suite {
    /// The name on the command line and the prefix of every test name.
    pub name: &'static str,
    pub title: &'static str,
    /// The programs of an implementation; the first is the one `--impl CMD` names.
    pub programs: &'static [Program],
    /// Our binaries' switch for known-bad variants (`<SYSTEM>_BUG`).
    pub bug_var: &'static str,
    /// True for message-passing systems, whose tests run in simulated time by default
    /// (`--time real` for the wall clock); false for real protocols over sockets,
    /// which always run on the wall clock.
    pub simulated: bool,
    /// The conformance tests: what `harness test <system>` runs against an
    /// implementation.
    pub tests: &'static [TestCase],
    /// Tests of the suite itself (it rejects do-nothing nodes, replays a seed...):
    /// nextest runs them as `<system>::self_check::*`; the command line does not,
    /// since they do not judge the implementation named with `--impl`.
    pub self_checks: &'static [TestCase],
    pub known_bad: &'static [KnownBad],
    /// The page that documents the system and its protocol.
    pub docs: &'static str,
}

impl Suite {
    pub fn test(&self, name: &str) -> Option<&'static TestCase> {
        self.tests
            .iter()
            .chain(self.self_checks)
            .find(|t| t.name == name)
    }

    /// The program named `key` or read from `var`.
    pub fn program(&self, key_or_var: &str) -> Option<&'static Program> {
        self.programs
            .iter()
            .find(|p| p.key == key_or_var || p.var == key_or_var)
    }

    /// The nextest name of a known-bad test: `known_bad::<variant>`.
    pub fn known_bad_name(variant: &str) -> String {
        format!("known_bad::{}", variant.replace('-', "_"))
    }
}
