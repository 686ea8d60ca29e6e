//! `mrworker APP` or `mrworker --map CMD --reduce CMD`: a worker of the 6.5840 front end.
//!
//! Run it in the job's directory, beside `mrcoordinator`. It exits when the job is done
//! or the coordinator is gone.

use std::path::PathBuf;

use anyhow::bail;
use clap::Parser;
use mapreduce::app::builtin;
use mapreduce::apps::external::External;
use mapreduce::bug::Bug;

#[derive(Parser)]
#[command(about = "MapReduce worker (6.5840 front end)")]
struct Args {
    /// A built-in application: wc, indexer, mtiming, rtiming, jobcount, early_exit,
    /// crash, nocrash, barrier, slow (`wc.so` works too).
    app: Option<String>,
    /// External map command (Hadoop Streaming: input on stdin, `key<TAB>value` lines out).
    #[arg(long, requires = "reduce", conflicts_with = "app")]
    map: Option<String>,
    /// External reduce command (sorted `key<TAB>value` lines in, `key<TAB>value` out).
    #[arg(long, requires = "map")]
    reduce: Option<String>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        // One line naming the problem, whatever RUST_BACKTRACE says.
        eprintln!("mrworker: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let bug = Bug::from_env()?;
    let app = match (&args.app, &args.map, &args.reduce) {
        (Some(name), None, None) => builtin(name)?,
        (None, Some(map), Some(reduce)) => Box::new(External::new(map, reduce)?),
        _ => bail!("name a built-in application, or give both --map and --reduce"),
    };
    let socket = PathBuf::from(std::env::var("MR_SOCKET").unwrap_or_else(|_| "mr-socket".into()));
    mapreduce::worker::run(&socket, app.as_ref(), bug)
}
