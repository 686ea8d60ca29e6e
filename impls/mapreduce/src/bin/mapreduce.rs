//! `mapreduce --input DIR --output DIR --nworkers N --nreduce R`: word count over every
//! regular file in DIR, by a master (this process, the coordinator) and N worker
//! processes. Leaves `map.part-M-R.txt`, `reduce.part-R.txt` and the merged, ranked
//! `output.txt` in the output directory (format in `docs/mapreduce.md`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use mapreduce::apps::wordcount::WordCount;
use mapreduce::bug::Bug;
use mapreduce::core::Coordinator;
use mapreduce::merge::merge_counts;
use mapreduce::output::remove_temp_files;
use mapreduce::plan::{directory_files, file_splits, pack, tasks, Layout, PartLayout};
use mapreduce::server::{timeout_from_env, Server};

/// Set in the environment of the worker processes this command starts (itself again).
const WORKER_ENV: &str = "MAPREDUCE_WORKER_SOCKET";

#[derive(Parser)]
#[command(about = "Word count with MapReduce: a master and N worker processes")]
struct Args {
    /// Directory whose regular files are the input.
    #[arg(long)]
    input: PathBuf,
    /// Directory for map.part-*, reduce.part-* and output.txt; created if missing,
    /// must be empty if present.
    #[arg(long)]
    output: PathBuf,
    /// Number of worker processes.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    nworkers: u16,
    /// Number of reduce tasks (and reduce.part files).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    nreduce: u16,
    /// Bytes a map task reads: files smaller than this are packed together, larger
    /// ones cut at line boundaries [default: input size / nworkers, at most 64 MiB;
    /// files are cut into pieces of that size, at least 1 MiB].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    split_size: Option<u64>,
}

fn main() {
    let result = match std::env::var_os(WORKER_ENV) {
        Some(socket) => mapreduce::worker::run(Path::new(&socket), &WordCount, bug_or_exit()),
        None => master(Args::parse()),
    };
    if let Err(e) = result {
        eprintln!("mapreduce: error: {e:#}");
        std::process::exit(1);
    }
}

fn bug_or_exit() -> Option<Bug> {
    Bug::from_env().unwrap_or_else(|e| {
        eprintln!("mapreduce: error: {e:#}");
        std::process::exit(2);
    })
}

fn check_dirs(args: &Args) -> anyhow::Result<()> {
    match fs::metadata(&args.input) {
        Err(e) => bail!("input directory {}: {e}", args.input.display()),
        Ok(m) if !m.is_dir() => bail!("input {} is not a directory", args.input.display()),
        Ok(_) => {}
    }
    match fs::metadata(&args.output) {
        Err(_) => fs::create_dir_all(&args.output)
            .with_context(|| format!("cannot create output directory {}", args.output.display()))?,
        Ok(m) if !m.is_dir() => bail!(
            "output {} exists and is not a directory",
            args.output.display()
        ),
        Ok(_) => {
            if fs::read_dir(&args.output)?.next().is_some() {
                bail!(
                    "output directory {} is not empty; give a new or empty one",
                    args.output.display()
                );
            }
        }
    }
    Ok(())
}

fn master(args: Args) -> anyhow::Result<()> {
    let bug = Bug::from_env()?;
    let timeout = timeout_from_env()?;
    check_dirs(&args)?;
    let nworkers = usize::from(args.nworkers);
    let files = directory_files(&args.input)?;
    let (target, cut) = match args.split_size {
        Some(s) => (s, s),
        None => {
            let total: u64 = files.iter().map(|f| f.size).sum();
            // A task a worker, of at most 64 MiB: every map task emits its split's
            // whole vocabulary, which the reducers read and add up again, so each
            // task costs more than its bytes (docs/mapreduce.md, Performance). A
            // second task a worker evens out only a worker twice as fast as the
            // other, since equal tasks go out two at a time. Files are not cut into
            // pieces under 1 MiB (not worth a task) and tasks stay within 64 MiB (a
            // lost task's work).
            let target = (total / nworkers as u64).clamp(1, 64 << 20);
            (target, target.clamp(1 << 20, 64 << 20))
        }
    };
    let groups = pack(file_splits(&files, cut)?, target);
    let layout = PartLayout(args.output.clone());
    let nreduce = usize::from(args.nreduce);
    let (maps, reduces) = tasks(groups, nreduce, &layout);
    let socket = std::env::temp_dir().join(format!(
        "mapreduce-{}-{}.sock",
        std::process::id(),
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos()
    ));
    let server = Server::start(&socket, Coordinator::new(maps, reduces, timeout, bug))?;
    let mut workers = Workers::start(&socket, nworkers)?;
    loop {
        match server.wait_done_for(Duration::from_millis(20)) {
            Ok(true) => break,
            Ok(false) => workers.replace_crashed()?,
            Err(e) => {
                // Workers are told to exit; the partial outputs stay for inspection.
                server.mark_finished();
                workers.wait(Duration::from_secs(10));
                server.close();
                return Err(e);
            }
        }
    }
    let parts: Vec<PathBuf> = (0..nreduce).map(|r| layout.output(r)).collect();
    merge_counts(&parts, &args.output.join("output.txt"), bug)?;
    remove_temp_files(&args.output, "")?;
    // Workers hear "exit" at their next request; once they are gone, so is the socket.
    server.mark_finished();
    workers.wait(Duration::from_secs(10));
    server.close();
    Ok(())
}

/// The worker processes, restarted when one dies before the job is done so a crash
/// costs a task's time, not the job.
struct Workers {
    socket: PathBuf,
    children: Vec<Child>,
    restarts: usize,
}

impl Workers {
    fn start(socket: &Path, n: usize) -> anyhow::Result<Workers> {
        let mut workers = Workers {
            socket: socket.to_path_buf(),
            children: Vec::new(),
            restarts: 0,
        };
        for _ in 0..n {
            let child = workers.spawn()?;
            workers.children.push(child);
        }
        Ok(workers)
    }

    fn spawn(&self) -> anyhow::Result<Child> {
        Command::new(std::env::current_exe()?)
            .env(WORKER_ENV, &self.socket)
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start a worker process")
    }

    fn replace_crashed(&mut self) -> anyhow::Result<()> {
        for i in 0..self.children.len() {
            if let Some(status) = self.children[i].try_wait()? {
                if status.success() {
                    continue;
                }
                self.restarts += 1;
                if self.restarts > 100 * self.children.len() {
                    bail!("workers keep dying (last: {status}); giving up");
                }
                eprintln!(
                    "mapreduce: worker {} died ({status}); starting another",
                    self.children[i].id()
                );
                self.children[i] = self.spawn()?;
            }
        }
        Ok(())
    }

    /// Waits for the workers to see the job is over; a worker that hangs is killed.
    fn wait(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for child in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    // A worker exits about a millisecond after it hears the job is
                    // over; polling every 10 ms cost the job up to 10 ms of its end.
                    Ok(None) => sleep(Duration::from_millis(1)),
                }
            }
        }
    }
}
