//! `lincheck`: is a recorded history linearizable?
//!
//! ```text
//! lincheck --model MODEL FILE [--no-partition] [--html OUT] [--timeout S]
//! ```
//! Prints the verdict and the time taken; exits 0 (Ok), 1 (Illegal), 2 (Unknown) or
//! 3 (the history or the arguments could not be used, clap's own argument errors
//! included: its usual exit code 2 would read as Unknown). `--help` and `--version`
//! exit 0.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use checkers::{check, formats, html, CheckOptions, Verdict};
use clap::{Parser, ValueEnum};
use specs::Model;

// Checking allocates a model state at most steps; mimalloc makes that several times
// cheaper than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModelName {
    /// Read/write register of integers (nil initially).
    Register,
    /// Register with compare-and-set: Jepsen's etcd logs.
    CasRegister,
    /// Key/value with get, put, append: porcupine's kv logs.
    #[value(alias = "kv-append")]
    Kv,
    /// Key/value whose append returns the old value, with cas: the key/value server.
    KvFetchAppend,
}

#[derive(Debug, Parser)]
#[command(
    name = "lincheck",
    version,
    about = "Checks a history for linearizability"
)]
struct Args {
    /// The sequential specification to check against.
    #[arg(long, value_enum)]
    model: ModelName,
    /// The history: JSON lines, a Jepsen log or an EDN kv log (recognised from content).
    file: PathBuf,
    /// Check the whole history as one part instead of key by key.
    #[arg(long)]
    no_partition: bool,
    /// Write a self-contained HTML timeline here.
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
    /// Give up after this many seconds (verdict Unknown).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    timeout: Option<f64>,
}

/// The exit code of a history or arguments that cannot be used.
const UNUSABLE: u8 = 3;

/// `--timeout` as a duration: positive, finite and within what a `Duration` holds
/// (`Duration::from_secs_f64` panics beyond that).
fn timeout(seconds: Option<f64>) -> Result<Option<Duration>> {
    let Some(s) = seconds else {
        return Ok(None);
    };
    if !(s.is_finite() && s > 0.0) {
        anyhow::bail!("--timeout must be a positive number of seconds, not {s}");
    }
    Duration::try_from_secs_f64(s).map(Some).map_err(|_| {
        anyhow::anyhow!("--timeout {s} is out of range (at most about 1.8e19 seconds)")
    })
}

fn run<M: Model>(model: &M, args: &Args) -> Result<Verdict> {
    let timeout = timeout(args.timeout)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let (format, history) =
        formats::parse(model, &text).with_context(|| format!("{}", args.file.display()))?;
    let options = CheckOptions {
        timeout,
        partition: !args.no_partition,
        threads: None,
    };
    let result = check(model, &history, &options);
    println!(
        "{}: {} ({} operations, {} part(s), {}, model {}) in {:.3} s",
        args.file.display(),
        result.verdict,
        history.len(),
        result.parts,
        format.map_or("empty".to_string(), |f| f.to_string()),
        model.name(),
        result.elapsed.as_secs_f64()
    );
    if let Some(failure) = &result.failure {
        let stuck = &history.operations[failure.stuck];
        println!(
            "longest linearizable prefix: {} of {} operations; cannot place {} by client {}",
            failure.prefix.len(),
            failure.part.len(),
            model.describe_operation(&stuck.input, stuck.output()),
            stuck.client
        );
    }
    if let Some(out) = &args.html {
        let title = file_name(&args.file);
        std::fs::write(out, html::render(model, &history, &result, &title))
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("timeline: {}", out.display());
    }
    Ok(result.verdict)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // --help and --version are "errors" that succeed.
            return if e.use_stderr() {
                ExitCode::from(UNUSABLE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let verdict = match args.model {
        ModelName::Register => run(&specs::Register, &args),
        ModelName::CasRegister => run(&specs::CasRegister, &args),
        ModelName::Kv => run(&specs::Kv, &args),
        ModelName::KvFetchAppend => run(&specs::KvFetchAppend, &args),
    };
    match verdict {
        Ok(v) => ExitCode::from(v.exit_code() as u8),
        Err(e) => {
            eprintln!("lincheck: {e:#}");
            ExitCode::from(UNUSABLE)
        }
    }
}
