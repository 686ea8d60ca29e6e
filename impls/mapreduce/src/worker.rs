//! The worker process: asks for tasks until the job is done or the coordinator is gone.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::app::{App, Group};
use crate::bug::Bug;
use crate::kvfile;
use crate::output::{Durability, OutputFile};
use crate::partition::partition;
use crate::protocol::{call, Kind, MapTask, ReduceTask, Reply, Request};
use crate::split::Mapped;

/// How long a worker started before its coordinator keeps trying to reach it.
const STARTUP_GRACE: Duration = Duration::from_secs(5);

pub fn run(socket: &Path, app: &dyn App, bug: Option<Bug>) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut contacted = false;
    // Kept from task to task: a fresh buffer costs a page fault per 4 KiB and
    // reallocations as it grows.
    let mut parts: Vec<Vec<u8>> = Vec::new();
    loop {
        let reply = match call(socket, &Request::GetTask) {
            Ok(reply) => reply,
            Err(_) if !contacted && started.elapsed() < STARTUP_GRACE => {
                sleep(Duration::from_millis(50));
                continue;
            }
            // The coordinator exits once the job is done, so "gone" means "done".
            Err(_) => return Ok(()),
        };
        contacted = true;
        let (kind, id, result) = match reply {
            Reply::Map(task) => (Kind::Map, task.id, run_map(&task, app, &mut parts, bug)),
            Reply::Reduce(task) => (Kind::Reduce, task.id, run_reduce(&task, app, bug)),
            Reply::Wait { ms } => {
                sleep(Duration::from_millis(ms));
                continue;
            }
            Reply::Exit => return Ok(()),
            Reply::Ok => continue,
        };
        let report = match result {
            Ok(()) => Request::Done { kind, id },
            Err(e) => {
                eprintln!(
                    "mrworker {}: {kind:?} task {id} failed: {e:#}",
                    std::process::id()
                );
                Request::Failed {
                    kind,
                    id,
                    error: format!("{e:#}"),
                }
            }
        };
        if call(socket, &report).is_err() {
            return Ok(());
        }
    }
}

fn run_map(
    task: &MapTask,
    app: &dyn App,
    buckets: &mut Vec<Vec<u8>>,
    bug: Option<Bug>,
) -> anyhow::Result<()> {
    let inputs = task
        .splits
        .iter()
        .map(|s| Mapped::open(&s.path, s.start, s.end))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pieces: Vec<(&str, &[u8])> = task
        .splits
        .iter()
        .zip(&inputs)
        .map(|(s, input)| (s.name.as_str(), input.bytes()))
        .collect();
    let nreduce = task.outputs.len();
    buckets.resize_with(nreduce, Vec::new);
    for bucket in buckets.iter_mut() {
        bucket.clear();
    }
    app.map_pieces(&pieces, &mut |key, value| {
        kvfile::push(&mut buckets[partition(key, nreduce)], key, value);
    })?;
    // Every partition gets a file, even an empty one, so a reducer can tell a map task
    // that emitted nothing for it from one that has not finished.
    for (bucket, path) in buckets.iter().zip(&task.outputs) {
        crate::output::write_file(path, bucket, Durability::Atomic, bug)?;
    }
    Ok(())
}

fn run_reduce(task: &ReduceTask, app: &dyn App, bug: Option<Bug>) -> anyhow::Result<()> {
    let mut texts = Vec::with_capacity(task.inputs.len());
    for path in &task.inputs {
        match fs::read_to_string(path) {
            Ok(text) => texts.push((path, text)),
            // The early-reduce variant reads whatever is there, as a careless worker would.
            Err(e) if e.kind() == ErrorKind::NotFound && bug == Some(Bug::EarlyReduce) => {}
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        }
    }
    // The output file is created at the first line (or at the end), so a partition
    // whose input turns out malformed leaves no temp file behind.
    let mut out: Option<OutputFile> = None;
    let mut line = Vec::new();
    let mut write = |key: &str, value: &str| -> anyhow::Result<()> {
        line.clear();
        line.extend_from_slice(key.as_bytes());
        line.push(b' ');
        line.extend_from_slice(value.as_bytes());
        line.push(b'\n');
        let file = match &mut out {
            Some(file) => file,
            None => out.insert(OutputFile::create(&task.output, Durability::Synced, bug)?),
        };
        file.write(&line)
    };
    let whole: Vec<(&Path, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    match app.reduce_texts(&whole, &mut write) {
        Some(result) => result?,
        None => {
            let groups = group(&texts)?;
            app.reduce_all(&groups, &mut write)?;
        }
    }
    match out {
        Some(file) => file.commit(),
        None => OutputFile::create(&task.output, Durability::Synced, bug)?.commit(),
    }
}

/// Every key of a partition with its values, keys in ascending order. Grouping by
/// hash and then sorting the distinct keys is the sort-and-group of the MapReduce
/// paper, with the sort done on keys instead of on every pair.
fn group<'a>(texts: &'a [(&PathBuf, String)]) -> anyhow::Result<Vec<Group<'a>>> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Cow<str>, usize, BuildHasherDefault<Fnv>> = HashMap::default();
    for (path, text) in texts {
        kvfile::for_each_pair(text, |key, value| match index.get(key.as_ref()) {
            Some(&i) => groups[i].values.push(value),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push(Group {
                    key,
                    values: vec![value],
                });
            }
        })
        .with_context(|| format!("in {}", path.display()))?;
    }
    drop(index);
    groups.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(groups)
}

/// FNV-1a for the reducer's grouping table: keys are short and come from our own
/// intermediate files, so a fast hash serves better than a DoS-resistant one.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        // Spread the low bits the table indexes by.
        self.0 ^ (self.0 >> 32)
    }
}
