//! `harness`: runs a system's conformance suite against an implementation.
//!
//! ```text
//! harness test kvsrv [--impl CMD] [--seed N] [--time real|sim] [--only PATTERN]
//! ```
//!
//! Without `--impl` the command comes from the system's environment variable
//! (`KVSRV_IMPL`) and defaults to our reference binary.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use harness::cluster::TimeMode;
use harness::kvsrv::{self, SuiteConfig, TestOutcome};
use harness::Implementation;

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
    /// Run a system's suite.
    Test {
        /// The system: kvsrv.
        system: System,
        /// The command that starts one node (default: $KVSRV_IMPL, else our binary).
        #[arg(long = "impl", value_name = "CMD")]
        implementation: Option<String>,
        /// Replay this seed (default: a fresh one, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Simulated lockstep time (fast, deterministic) or the wall clock.
        #[arg(long, value_enum, default_value_t = Time::Sim)]
        time: Time,
        /// Run only the tests whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Run one of our binary's known-bad variants (to see the suite reject it).
        #[arg(long, hide = true)]
        bug: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum System {
    Kvsrv,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Time {
    Sim,
    Real,
}

fn main() -> ExitCode {
    let Cli {
        command:
            Command::Test {
                system: System::Kvsrv,
                implementation,
                seed,
                time,
                only,
                bug,
            },
    } = Cli::parse();
    let implementation = match implementation {
        Some(cmd) => match Implementation::from_command(&cmd) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("harness: --impl: {e}");
                return ExitCode::from(2);
            }
        },
        None if bug.is_some() => Implementation::ours(kvsrv::BIN),
        None => Implementation::from_env(kvsrv::IMPL_VAR, kvsrv::BIN),
    };
    let seed = seed.unwrap_or_else(rand::random);
    let mode = match time {
        Time::Sim => TimeMode::Sim,
        Time::Real => TimeMode::Real,
    };
    let scratch = match tempfile::Builder::new().prefix("harness-kvsrv-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("harness: cannot create a scratch directory: {e}");
            return ExitCode::from(2);
        }
    };
    let config = SuiteConfig {
        implementation,
        mode,
        seed,
        bug,
        dir: scratch.path().to_path_buf(),
        save_artifacts: true,
    };
    let tests: Vec<&str> = kvsrv::TESTS
        .iter()
        .copied()
        .filter(|t| only.as_deref().is_none_or(|o| t.contains(o)))
        .collect();
    if tests.is_empty() {
        eprintln!(
            "harness: no kvsrv test matches; tests: {}",
            kvsrv::TESTS.join(", ")
        );
        return ExitCode::from(2);
    }
    println!(
        "kvsrv suite: {} test(s), {} time, seed {seed}, implementation: {}",
        tests.len(),
        mode.name(),
        config.implementation.describe()
    );
    let start = Instant::now();
    let mut outcomes: Vec<TestOutcome> = Vec::new();
    for (i, name) in tests.iter().enumerate() {
        print!("[{}/{}] {name} ... ", i + 1, tests.len());
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let outcome = kvsrv::run_test(name, &config);
        println!(
            "{} ({:.2} s)",
            if outcome.passed() { "ok" } else { "FAILED" },
            outcome.stats.wall.as_secs_f64()
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
    print_table(&outcomes);
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    println!(
        "{} passed, {failed} failed in {:.2} s (seed {seed})",
        outcomes.len() - failed,
        start.elapsed().as_secs_f64()
    );
    if failed > 0 {
        let bug = config
            .bug
            .as_deref()
            .map_or(String::new(), |b| format!(" --bug {b}"));
        println!(
            "replay: harness test kvsrv --seed {seed} --time {}{bug} --only <test> \
             (with the same --impl or KVSRV_IMPL)",
            mode.name()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_table(outcomes: &[TestOutcome]) {
    println!();
    println!(
        "{:<36} {:>6} {:>6} {:>5} {:>5} {:>5} {:>9} {:>10} {:>8}",
        "test", "result", "ops", "ok", "fail", "info", "messages", "clock (s)", "wall (s)"
    );
    for o in outcomes {
        let (calls, ok, fail, info) = o.counts;
        println!(
            "{:<36} {:>6} {:>6} {:>5} {:>5} {:>5} {:>9} {:>10.3} {:>8.3}",
            o.name,
            if o.passed() { "ok" } else { "FAIL" },
            calls,
            ok,
            fail,
            info,
            o.stats.routed,
            o.stats.elapsed_ns as f64 / 1e9,
            o.stats.wall.as_secs_f64()
        );
    }
    println!();
}
