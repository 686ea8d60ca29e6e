//! `harness`: runs the systems' conformance suites against an implementation.
//!
//! ```text
//! harness list
//! harness test <system>|all [--impl CMD | --impl NAME=CMD]... [--seed N]
//!                           [--time sim|real] [--only PATTERN] [--known-bad]
//! ```
//!
//! Without `--impl` each program's command comes from the system's environment
//! variable (`KVSRV_IMPL`, ...) and defaults to our reference binary, built from the
//! current sources. Exit status: 0 when every test passed (with `--known-bad`: when
//! every variant was rejected for its property), 1 when one did not, 2 for unusable
//! arguments.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use harness::cluster::TimeMode;
use harness::suite::context::Target;
use harness::suite::runner::{self, KnownBadVerdict, RunOptions};
use harness::suite::{summary, KnownBad, Outcome, Suite};
use harness::{suites, Implementation};

// A suite run allocates for every message, journal entry and history line, and
// the linearizability check for every model state; mimalloc makes that cheaper than
// the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "harness", about = "Conformance suites for distributed systems")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the systems, their tests, known-bad variants and the variables they read.
    List,
    /// Run a system's suite (or every system's: `all`).
    Test {
        /// The system (see `harness list`), or `all`.
        system: String,
        /// The command of the implementation under test: `CMD` for the system's main
        /// program, `NAME=CMD` for one of several (MapReduce's `coordinator=...`).
        /// Default: the system's variables, else our binaries.
        #[arg(long = "impl", value_name = "CMD")]
        implementation: Vec<String>,
        /// Replay this seed (default: a fresh one, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Simulated lockstep time (fast, deterministic) or the wall clock, for
        /// message-passing systems; real protocols always run on the wall clock.
        #[arg(long, value_enum)]
        time: Option<Time>,
        /// Run only the tests (with --known-bad: the variants) whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Run every known-bad variant of our implementation against the test that must
        /// reject it: the suite's proof that it can fail an implementation.
        #[arg(long)]
        known_bad: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Time {
    Sim,
    Real,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::List => {
            list();
            ExitCode::SUCCESS
        }
        Command::Test {
            system,
            implementation,
            seed,
            time,
            only,
            known_bad,
        } => {
            let chosen: Vec<&'static Suite> = if system == "all" {
                suites::all().to_vec()
            } else {
                match suites::find(&system) {
                    Some(s) => vec![s],
                    None => {
                        eprintln!(
                            "harness: no system {system:?}; systems: {}, all",
                            names().join(", ")
                        );
                        return ExitCode::from(2);
                    }
                }
            };
            if chosen.len() > 1 && !implementation.is_empty() {
                eprintln!("harness: --impl names one system's implementation; pick the system");
                return ExitCode::from(2);
            }
            let seed = seed.unwrap_or_else(rand::random);
            let mut failed = 0;
            let mut ran = 0;
            let mut summaries = Vec::new();
            for suite in chosen {
                let target = match target(suite, &implementation) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("harness: {e}");
                        return ExitCode::from(2);
                    }
                };
                let mode = match (suite.simulated, time) {
                    (false, Some(Time::Sim)) => {
                        println!(
                            "{}: real protocols over sockets run on the wall clock",
                            suite.name
                        );
                        TimeMode::Real
                    }
                    (false, _) | (true, Some(Time::Real)) => TimeMode::Real,
                    (true, _) => TimeMode::Sim,
                };
                let options = RunOptions {
                    seed,
                    mode,
                    target,
                    save_artifacts: true,
                    quiet: true,
                };
                let (n, bad) = if known_bad {
                    run_known_bad(suite, &options, only.as_deref())
                } else {
                    run_tests(suite, &options, only.as_deref())
                };
                ran += n;
                failed += bad;
                summaries.push((suite.name, n, bad));
            }
            if ran == 0 {
                eprintln!(
                    "harness: nothing matches --only {:?} (see `harness list`)",
                    only.unwrap_or_default()
                );
                return ExitCode::from(2);
            }
            if summaries.len() > 1 {
                println!(
                    "{:<12} {:>6} {:>6} {:>6}",
                    "system", "tests", "passed", "failed"
                );
                for (name, n, bad) in &summaries {
                    println!("{name:<12} {n:>6} {:>6} {bad:>6}", n - bad);
                }
            }
            let what = if known_bad {
                "known-bad variants rejected"
            } else {
                "passed"
            };
            println!("{} {what}, {failed} failed (seed {seed})", ran - failed);
            if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn names() -> Vec<&'static str> {
    suites::all().iter().map(|s| s.name).collect()
}

/// The implementation named by `--impl` flags: `CMD` for the first program, `NAME=CMD`
/// for a named one.
fn target(suite: &'static Suite, flags: &[String]) -> Result<Target, String> {
    let mut target = Target::default();
    for flag in flags {
        let (program, command) = match flag.split_once('=') {
            Some((name, cmd)) if suite.program(name).is_some() => {
                (suite.program(name).expect("checked"), cmd)
            }
            _ => (&suite.programs[0], flag.as_str()),
        };
        let implementation =
            Implementation::from_command(command).map_err(|e| format!("--impl: {e}"))?;
        target.overrides.retain(|(v, _)| v != program.var);
        target
            .overrides
            .push((program.var.to_string(), implementation));
    }
    Ok(target)
}

fn progress(i: usize, n: usize, name: &str) {
    print!("[{i}/{n}] {name} ... ");
    let _ = std::io::stdout().flush();
}

/// Runs the suite's conformance tests; returns (run, failed).
fn run_tests(suite: &'static Suite, options: &RunOptions, only: Option<&str>) -> (usize, usize) {
    let tests: Vec<_> = suite
        .tests
        .iter()
        .filter(|t| only.is_none_or(|o| t.name.contains(o)))
        .collect();
    if tests.is_empty() {
        return (0, 0);
    }
    let implementation = suite
        .programs
        .iter()
        .map(|p| {
            options
                .target
                .overrides
                .iter()
                .find(|(v, _)| v == p.var)
                .map(|(_, i)| i.describe().to_string())
                .unwrap_or_else(|| match std::env::var(p.var) {
                    Ok(cmd) if !cmd.trim().is_empty() => format!("{}={cmd}", p.var),
                    _ => format!("our {}", p.bin),
                })
        })
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{} ({}) suite: {} test(s), {} time, seed {}, implementation: {implementation}",
        suite.name,
        suite.title,
        tests.len(),
        options.mode.name(),
        options.seed
    );
    let start = Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (i, test) in tests.iter().enumerate() {
        progress(i + 1, tests.len(), test.name);
        let outcome = runner::run(suite, test, options);
        println!(
            "{} ({:.2} s)",
            if outcome.passed() { "ok" } else { "FAILED" },
            outcome.wall.as_secs_f64()
        );
        if outcome.passed() {
            for note in &outcome.notes {
                println!("      {note}");
            }
        } else {
            print!("{}", outcome.report());
        }
        outcomes.push(outcome);
    }
    println!();
    print!("{}", summary::tests_table(&outcomes));
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    println!(
        "{}: {} passed, {failed} failed in {:.2} s (seed {})\n",
        suite.name,
        outcomes.len() - failed,
        start.elapsed().as_secs_f64(),
        options.seed
    );
    (outcomes.len(), failed)
}

/// Runs every known-bad variant against the test that must reject it; returns (run,
/// not rejected for their property).
fn run_known_bad(
    suite: &'static Suite,
    options: &RunOptions,
    only: Option<&str>,
) -> (usize, usize) {
    let variants: Vec<&KnownBad> = suite
        .known_bad
        .iter()
        .filter(|k| only.is_none_or(|o| k.variant.contains(o)))
        .collect();
    if variants.is_empty() {
        return (0, 0);
    }
    println!(
        "{} ({}): {} known-bad variant(s) of our implementation ({}), {} time, seed {}",
        suite.name,
        suite.title,
        variants.len(),
        suite.bug_var,
        options.mode.name(),
        options.seed
    );
    let mut rows = Vec::new();
    for (i, known_bad) in variants.iter().enumerate() {
        progress(i + 1, variants.len(), known_bad.variant);
        let (verdict, outcome) = runner::run_known_bad(suite, known_bad, options);
        match verdict {
            KnownBadVerdict::Rejected => println!(
                "rejected by {} for {} ({:.2} s)",
                known_bad.test,
                known_bad.property,
                outcome.wall.as_secs_f64()
            ),
            other => {
                println!("NOT REJECTED");
                print!("{}", other.complaint(suite, known_bad, &outcome));
            }
        }
        rows.push((*known_bad, verdict, outcome));
    }
    println!();
    print!("{}", summary::known_bad_table(&rows));
    let bad = rows
        .iter()
        .filter(|(_, v, _)| *v != KnownBadVerdict::Rejected)
        .count();
    println!();
    (rows.len(), bad)
}

fn list() {
    for suite in suites::all() {
        println!("{} - {} ({})", suite.name, suite.title, suite.docs);
        println!(
            "  time: {}",
            if suite.simulated {
                "simulated by default, --time real for the wall clock"
            } else {
                "wall clock (real protocol over sockets)"
            }
        );
        for p in suite.programs {
            println!(
                "  {}: {} (default: our {}; --impl {}=CMD){}",
                p.var,
                p.run_as,
                p.bin,
                p.key,
                if std::ptr::eq(p, &suite.programs[0]) {
                    " [--impl CMD]"
                } else {
                    ""
                }
            );
        }
        println!("  {}: our binaries' known-bad variants", suite.bug_var);
        println!("  tests:");
        for t in suite.tests {
            match t.after {
                Some(after) => println!("    {}::{}  ({after})", suite.name, t.name),
                None => println!("    {}::{}", suite.name, t.name),
            }
        }
        println!("  checks of the suite itself (nextest only):");
        for t in suite.self_checks {
            println!("    {}::self_check::{}", suite.name, t.name);
        }
        println!("  known-bad variants (--known-bad):");
        for k in suite.known_bad {
            println!(
                "    {}={:<18} {}, rejected by {} for {}",
                suite.bug_var, k.variant, k.what, k.test, k.property
            );
        }
        println!();
    }
    println!("common variables: SEED=<n> (replay), HARNESS_TIME=sim|real (nextest runs)");
}
