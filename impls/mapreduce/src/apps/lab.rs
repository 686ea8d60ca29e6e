//! The applications of 6.5840's MapReduce tests, which observe the framework from
//! inside a job. They leave `mr-worker-*` marker files in the working directory (the
//! job's shared directory), as the originals do.
//!
//! | app | map | reduce | what a test reads from the output |
//! |---|---|---|---|
//! | `mtiming` | `times-<pid>` -> start time, `parallel-<n>` -> `1`, where n is how many workers were in a map at once | values sorted, space-joined | two worker pids mapped, and some map saw 2 at once |
//! | `rtiming` | `a`..`j` -> `1` | how many workers were in a reduce at once | some reduces saw 2 at once |
//! | `jobcount` | leaves one marker per map call, sleeps 200-500 ms, `a` -> `x` | number of markers | exactly one map call per input file |
//! | `early_exit` | file name -> `1` | sleeps 1 s for names containing `sherlock` or `tom`; number of values | output complete when the first process exits |
//! | `crash` | may exit or stall, then `a` -> name, `b` -> len(name), `c` -> len(contents), `d` -> `xyzzy` | may exit or stall; values sorted, space-joined | same output as `nocrash` |
//! | `nocrash` | as `crash`, never exits or stalls | as `crash` | |
//!
//! `crash` exits (status 1) with probability 1/3 and stalls with probability 1/3 at
//! the start of each map and reduce call. A stall lasts up to
//! `MR_CRASH_MAX_STALL_MS` (10000 by default, as in 6.5840).

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::app::App;

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// How many workers are in `phase` right now, this one included: each announces itself
/// with a marker, counts the markers of live processes, and stays a second so that
/// workers running in parallel see each other.
fn nparallel(phase: &str) -> anyhow::Result<usize> {
    let prefix = format!("mr-worker-{phase}-");
    let me = format!("{prefix}{}", std::process::id());
    fs::write(&me, b"x")?;
    let mut n = 0;
    for entry in fs::read_dir(".")? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse().ok()) {
            if alive(pid) {
                n += 1;
            }
        }
    }
    sleep(Duration::from_secs(1));
    fs::remove_file(&me)?;
    Ok(n)
}

fn sorted_joined(values: &[&str]) -> String {
    let mut v = values.to_vec();
    v.sort();
    v.join(" ")
}

/// A small generator seeded from the pid and the clock: crashes must differ between
/// workers and runs, and need no reproducibility beyond the test's own seed.
fn random_below(n: u64) -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ nanos
        ^ (u64::from(std::process::id()) << 32);
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x % n.max(1)
}

pub struct MapTiming;

impl App for MapTiming {
    fn map(&self, _: &str, _: &[u8], emit: &mut dyn FnMut(&str, &str)) -> anyhow::Result<()> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let n = nparallel("map")?;
        emit(
            &format!("times-{}", std::process::id()),
            &format!("{now:.1}"),
        );
        emit(&format!("parallel-{n}"), "1");
        Ok(())
    }

    fn reduce(&self, _: &str, values: &[&str]) -> anyhow::Result<String> {
        Ok(sorted_joined(values))
    }
}

pub struct ReduceTiming;

impl App for ReduceTiming {
    fn map(&self, _: &str, _: &[u8], emit: &mut dyn FnMut(&str, &str)) -> anyhow::Result<()> {
        for key in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            emit(key, "1");
        }
        Ok(())
    }

    fn reduce(&self, _: &str, _: &[&str]) -> anyhow::Result<String> {
        Ok(nparallel("reduce")?.to_string())
    }
}

#[derive(Default)]
pub struct JobCount {
    calls: AtomicU64,
}

impl App for JobCount {
    fn map(&self, _: &str, _: &[u8], emit: &mut dyn FnMut(&str, &str)) -> anyhow::Result<()> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        fs::write(
            format!("mr-worker-jobcount-{}-{n}", std::process::id()),
            b"x",
        )?;
        sleep(Duration::from_millis(200 + random_below(300)));
        emit("a", "x");
        Ok(())
    }

    fn reduce(&self, _: &str, _: &[&str]) -> anyhow::Result<String> {
        Ok(super::count_markers("mr-worker-jobcount")?.to_string())
    }
}

pub struct EarlyExit;

impl App for EarlyExit {
    fn map(&self, name: &str, _: &[u8], emit: &mut dyn FnMut(&str, &str)) -> anyhow::Result<()> {
        emit(name, "1");
        Ok(())
    }

    fn reduce(&self, key: &str, values: &[&str]) -> anyhow::Result<String> {
        if key.contains("sherlock") || key.contains("tom") {
            sleep(Duration::from_secs(1));
        }
        Ok(values.len().to_string())
    }
}

pub struct Crash {
    crashes: bool,
    max_stall_ms: u64,
}

impl Crash {
    pub fn new(crashes: bool) -> Crash {
        let max_stall_ms = std::env::var("MR_CRASH_MAX_STALL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        Crash {
            crashes,
            max_stall_ms,
        }
    }

    fn maybe_crash(&self) {
        if !self.crashes {
            return;
        }
        let r = random_below(1000);
        if r < 333 {
            std::process::exit(1);
        } else if r < 666 {
            sleep(Duration::from_millis(random_below(self.max_stall_ms)));
        }
    }
}

impl App for Crash {
    fn map(
        &self,
        name: &str,
        contents: &[u8],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()> {
        self.maybe_crash();
        emit("a", name);
        emit("b", &name.len().to_string());
        emit("c", &contents.len().to_string());
        emit("d", "xyzzy");
        Ok(())
    }

    fn reduce(&self, _: &str, values: &[&str]) -> anyhow::Result<String> {
        self.maybe_crash();
        Ok(sorted_joined(values))
    }
}
