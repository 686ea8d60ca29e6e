//! `mrcoordinator FILES...`: the coordinator of the 6.5840 front end.
//!
//! Run it in the job's directory; workers started there (`mrworker APP`) find it on
//! the socket `mr-socket` (or `$MR_SOCKET`). One map task per input file, 10 reduce
//! tasks, intermediates `mr-X-Y`, outputs `mr-out-Y`. Exits once every output is final.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use mapreduce::bug::Bug;
use mapreduce::core::{Coordinator, WAIT_MS};
use mapreduce::output::remove_temp_files;
use mapreduce::plan::{one_a_task, tasks, whole_files, LabLayout};
use mapreduce::server::{timeout_from_env, Server};

#[derive(Parser)]
#[command(about = "MapReduce coordinator (6.5840 front end)")]
struct Args {
    /// Number of reduce tasks.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    nreduce: u16,
    /// Input files, one map task each.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        // One line naming the problem, whatever RUST_BACKTRACE says.
        eprintln!("mrcoordinator: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let bug = Bug::from_env()?;
    let timeout = timeout_from_env()?;
    let socket = PathBuf::from(std::env::var("MR_SOCKET").unwrap_or_else(|_| "mr-socket".into()));
    let (maps, reduces) = tasks(
        one_a_task(whole_files(&args.files)?),
        args.nreduce.into(),
        &LabLayout,
    );
    let server = Server::start(&socket, Coordinator::new(maps, reduces, timeout, bug))?;
    let result = server.wait_done();
    remove_temp_files(std::path::Path::new("."), "mr-")?;
    server.finish(Duration::from_millis(4 * WAIT_MS), Duration::from_secs(2));
    result
}
