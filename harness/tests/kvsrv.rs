//! Conformance tests of the key/value server (6.5840's kvsrv, with Maelstrom's
//! lin-kv operations plus fetch-and-append).
//!
//! The implementation is `KVSRV_IMPL` (any command speaking `specs::node_protocol`),
//! by default our `kvsrv`. `HARNESS_TIME=real` runs on the wall clock instead of
//! simulated time; `SEED=<n>` replays a run. Every test checks its whole history for
//! linearizability; a failing one leaves its evidence under `target/harness-runs/kvsrv/`.

// A suite run allocates for every message, journal entry and history line, and
// the linearizability check for every model state; mimalloc makes that cheaper than
// the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every test is under `kvsrv::`, so `-E 'test(/^kvsrv::/)'` selects the system.
mod kvsrv {
    use harness::cluster::TimeMode;
    use harness::kvsrv::{run_test, SuiteConfig, TestOutcome, BIN, IMPL_VAR};
    use harness::{Implementation, Seed, TestDir};

    fn config(seed: &Seed, dir: &TestDir, implementation: Implementation) -> SuiteConfig {
        SuiteConfig {
            implementation,
            mode: TimeMode::from_env(),
            seed: seed.value(),
            bug: None,
            dir: dir.path().to_path_buf(),
            save_artifacts: true,
        }
    }

    /// Runs one suite test against the implementation under test and fails with its
    /// report.
    fn conforms(name: &str) {
        let seed = Seed::for_this_test();
        let dir = TestDir::new("kvsrv");
        let implementation = Implementation::from_env(IMPL_VAR, BIN);
        eprintln!("testing {}", implementation.describe());
        let outcome = run_test(name, &config(&seed, &dir, implementation));
        assert!(outcome.passed(), "{}", outcome.report());
        eprint!("{}", outcome.report());
    }

    /// Runs a suite test against a known-bad variant of our binary and returns what it
    /// found; the caller asserts the suite rejected it.
    fn against_bug(name: &str, bug: &str, seed: u64, mode: TimeMode) -> TestOutcome {
        let dir = TestDir::new("kvsrv-bug");
        let config = SuiteConfig {
            bug: Some(bug.to_string()),
            mode,
            seed,
            save_artifacts: false,
            ..config(&Seed::for_this_test(), &dir, Implementation::ours(BIN))
        };
        let outcome = run_test(name, &config);
        eprint!("{}", outcome.report());
        outcome
    }

    mod basic {
        #[test]
        fn one_client() {
            super::conforms("basic::one_client");
        }

        #[test]
        fn lin_kv_ops() {
            super::conforms("basic::lin_kv_ops");
        }
    }

    mod concurrent {
        #[test]
        fn many_clients() {
            super::conforms("concurrent::many_clients");
        }
    }

    mod unreliable {
        #[test]
        fn lossy_duplicating() {
            super::conforms("unreliable::lossy_duplicating");
        }

        #[test]
        fn partitions() {
            super::conforms("unreliable::partitions");
        }

        #[test]
        fn server_paused() {
            super::conforms("unreliable::server_paused");
        }
    }

    mod append {
        #[test]
        fn one_key_many_appenders() {
            super::conforms("append::one_key_many_appenders");
        }
    }

    mod memory {
        #[test]
        fn append_answers_not_copied() {
            super::conforms("memory::append_answers_not_copied");
        }

        #[test]
        fn many_clients_cost_bytes() {
            super::conforms("memory::many_clients_cost_bytes");
        }
    }

    /// A node in another language, kept as an example, passes through `KVSRV_IMPL`-style
    /// plugging (here the command is given directly).
    mod example_node {
        use super::*;

        #[test]
        fn python_passes_basic() {
            let python = std::process::Command::new("python3")
                .arg("--version")
                .output();
            if python.is_err() {
                assert!(
                    std::env::var("CI").is_err(),
                    "python3 is missing; .ci/run installs it"
                );
                eprintln!("skipping: python3 is not installed (apt-get install python3)");
                return;
            }
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../impls/kvsrv/python/kvsrv_node.py");
            let command = format!("python3 {}", script.display());
            let implementation = Implementation::from_command(&command).unwrap();
            let seed = Seed::for_this_test();
            for name in ["basic::one_client", "basic::lin_kv_ops"] {
                let dir = TestDir::new("kvsrv-python");
                let outcome = run_test(name, &config(&seed, &dir, implementation.clone()));
                assert!(outcome.passed(), "{}", outcome.report());
                assert!(outcome.counts.1 >= 150, "{}", outcome.report());
            }
        }
    }

    /// The wall-clock mode runs whatever HARNESS_TIME says, so CI (simulated time)
    /// still covers it: a few tests on real time, with real delays and a real pause.
    mod real_time {
        use super::*;

        #[test]
        fn tests_pass_on_the_wall_clock() {
            let seed = Seed::for_this_test();
            for name in [
                "basic::one_client",
                "unreliable::lossy_duplicating",
                "unreliable::server_paused",
            ] {
                let dir = TestDir::new("kvsrv-real");
                let config = SuiteConfig {
                    mode: TimeMode::Real,
                    ..config(&seed, &dir, Implementation::from_env(IMPL_VAR, BIN))
                };
                let outcome = run_test(name, &config);
                assert!(outcome.passed(), "{}", outcome.report());
                assert!(
                    outcome.stats.elapsed_ns >= 100_000_000,
                    "a real-time run takes real time: {}",
                    outcome.report()
                );
            }
        }
    }

    mod replay {
        use super::*;

        /// Simulated time is a function of the seed: one seed, run twice, gives the same
        /// journal (every message, fate and delivery) and the same history.
        #[test]
        fn same_seed_same_journal() {
            let seed = Seed::for_this_test();
            let run = || {
                let dir = TestDir::new("kvsrv-replay");
                let config = SuiteConfig {
                    mode: TimeMode::Sim,
                    ..config(&seed, &dir, Implementation::from_env(IMPL_VAR, BIN))
                };
                run_test("unreliable::lossy_duplicating", &config)
            };
            let (a, b) = (run(), run());
            assert!(a.passed(), "{}", a.report());
            assert!(
                a.journal.lines().count() > 100,
                "the journal recorded the run"
            );
            if a.journal != b.journal {
                let line = a
                    .journal
                    .lines()
                    .zip(b.journal.lines())
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.journal.lines().count().min(b.journal.lines().count()));
                panic!(
                    "journals of two runs with seed {} differ from line {}:\n{}\n{}",
                    seed.value(),
                    line + 1,
                    a.journal.lines().nth(line).unwrap_or("<end>"),
                    b.journal.lines().nth(line).unwrap_or("<end>")
                );
            }
            assert_eq!(a.history, b.history);
        }
    }

    /// The suite rejects known-bad servers (switches of our binary, `KVSRV_BUG`).
    mod known_bad {
        use super::*;
        use checkers::Verdict;

        fn rejected(outcome: &TestOutcome, expect: &str) {
            assert!(
                !outcome.passed(),
                "the suite accepted a known-bad server:\n{}",
                outcome.report()
            );
            assert!(
                outcome.failures.iter().any(|f| f.contains(expect)),
                "rejected, but not for the expected reason ({expect:?}):\n{}",
                outcome.report()
            );
        }

        #[test]
        fn double_append_rejected() {
            let seed = Seed::for_this_test().value();
            let outcome = against_bug(
                "append::one_key_many_appenders",
                "double-append",
                seed,
                TimeMode::Sim,
            );
            rejected(&outcome, "present 2 times");
            assert_eq!(outcome.verdict, Some(Verdict::Illegal));
        }

        #[test]
        fn stale_read_rejected() {
            let seed = Seed::for_this_test().value();
            let outcome = against_bug("basic::one_client", "stale-read", seed, TimeMode::Sim);
            rejected(&outcome, "linearizability: Illegal");
            assert_eq!(outcome.verdict, Some(Verdict::Illegal));
        }

        #[test]
        fn copied_answers_rejected() {
            let seed = Seed::for_this_test().value();
            let outcome = against_bug(
                "memory::append_answers_not_copied",
                "copy-replies",
                seed,
                TimeMode::Sim,
            );
            rejected(&outcome, "seem to be copies");
        }

        /// A failing seed replays: the same journal and the same verdict.
        #[test]
        fn failing_seed_replays() {
            let seed = Seed::for_this_test().value();
            let run = || {
                against_bug(
                    "unreliable::lossy_duplicating",
                    "double-append",
                    seed,
                    TimeMode::Sim,
                )
            };
            let (a, b) = (run(), run());
            assert!(!a.passed(), "{}", a.report());
            assert_eq!(a.verdict, b.verdict);
            assert_eq!(a.failures, b.failures);
            assert!(a.journal == b.journal, "journals differ for seed {seed}");
        }
    }
}
