//! What the MapReduce tests share: generated inputs, jobs of either front end run as
//! processes in the test's scratch directory, and the reference results.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use checkers::mapreduce::{check_lab_dir, lab_outputs, LabDir};
use rand::rngs::StdRng;
use rand::Rng;

use crate::implementation::Implementation;
use crate::process::Process;
use crate::suite::{fail, property, Context, Evidence};

/// The re-assign timeout the crash tests give implementations (`MR_TASK_TIMEOUT_MS`).
pub const SHORT_TIMEOUT_MS: &str = "1000";

/// Hang guard of a whole job: how long a test waits for a job that should take a
/// second or two before it calls the job stuck. Not a performance bound: it only
/// turns "never" into a failure, and is some 30 times what a job needs on an idle
/// machine so that a loaded one does not trip it. `MR_HANG_GUARD_S` changes it (60 by
/// default): up for a very slow machine, down to judge a stuck implementation fast.
/// A check of the suite may shorten it for the tests it runs on its own thread
/// ([`with_hang_guard`]).
pub fn hang_guard() -> Duration {
    if let Some(guard) = HANG_GUARD.with(Cell::get) {
        return guard;
    }
    match std::env::var("MR_HANG_GUARD_S") {
        Err(_) => Duration::from_secs(60),
        Ok(v) => {
            Duration::from_secs(v.trim().parse().ok().filter(|s| *s > 0).unwrap_or_else(|| {
                panic!("MR_HANG_GUARD_S={v:?} is not a positive number of seconds")
            }))
        }
    }
}

thread_local! {
    static HANG_GUARD: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// Runs `f` with [`hang_guard`] at `guard` on this thread (the tests a check of the
/// suite runs in-process run on its thread, where the environment cannot differ).
pub fn with_hang_guard<T>(guard: Duration, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Duration>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HANG_GUARD.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(HANG_GUARD.with(|g| g.replace(Some(guard))));
    f()
}

/// Stops the test with a failure of `property`, or of progress when the message says
/// the job made none (the checks and waits say "no progress: ..." for a job that left
/// nothing behind).
pub fn fail_as(property: &'static str, message: impl Into<String>) -> ! {
    let message = message.into();
    if message.starts_with("no progress") {
        fail(property::PROGRESS, message)
    }
    fail(property, message)
}

/// The value, or the test stops with a failure of `property` (or of progress, see
/// [`fail_as`]).
pub fn or_fail<T>(result: Result<T, String>, property: &'static str) -> T {
    result.unwrap_or_else(|e| fail_as(property, e))
}

/// Hang guard for a process that has been told (or should see) that the job is over:
/// a quarter of [`hang_guard`] (15 s by default).
pub fn exit_guard() -> Duration {
    hang_guard() / 4
}

/// Where the test's own scripts live.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mapreduce/fixtures")
        .join(name)
}

/// Our streaming scripts (`impls/mapreduce/streaming`).
pub fn streaming_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../impls/mapreduce/streaming")
        .join(name)
}

/// 6.5840's input names; `early_exit` sleeps on the ones with `sherlock` and `tom`.
pub const LAB_INPUTS: [&str; 8] = [
    "pg-being_ernest.txt",
    "pg-dorian_gray.txt",
    "pg-frankenstein.txt",
    "pg-grimm.txt",
    "pg-huckleberry_finn.txt",
    "pg-metamorphosis.txt",
    "pg-sherlock_holmes.txt",
    "pg-tom_sawyer.txt",
];

const COMMON: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "that", "it", "was", "he", "i", "his", "you", "with",
    "for", "had", "is", "not", "her", "as", "at", "on", "be", "but", "she", "my", "him", "all",
    "by", "so", "which", "this", "have", "said", "from", "they", "were", "one", "me", "what",
    "there", "would", "when", "no", "an", "if", "we", "could", "been", "out", "them", "into",
    "more", "up", "time", "little", "man", "great", "upon", "old", "house", "night", "door",
    "hand", "eyes", "water",
];
const ACCENTED: &[&str] = &[
    "café",
    "naïve",
    "Straße",
    "STRAẞE",
    "Łódź",
    "über",
    "ĐẠI",
    "façade",
    "Ærø",
    "smörgåsbord",
    "İstanbul",
    "crème",
    "jalapeño",
    "Ångström",
    "ŒUVRE",
];
const FOREIGN: &[&str] = &["καλημέρα", "привет", "東京", "مرحبا", "שלום", "Ελλάδα"];
const SEPARATORS: &[&str] = &[
    " ", " ", " ", " ", ", ", ". ", "; ", " -- ", "'", "-", " 42 ", " (", ") ", "_", "\t",
];

/// Generated text: Zipf-like common words, invented words, accented Latin words,
/// words of other scripts, digits and punctuation, in lines of 5-15 words.
/// `invalid` sprinkles bytes that are not UTF-8 between and inside words.
pub fn text(rng: &mut StdRng, bytes: usize, invalid: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 64);
    let mut in_line = 0;
    while out.len() < bytes {
        let roll: f64 = rng.gen();
        let word: String = if roll < 0.80 {
            let u: f64 = rng.gen();
            COMMON[(u.powf(2.5) * COMMON.len() as f64) as usize].to_string()
        } else if roll < 0.90 {
            // Invented words, so the vocabulary is larger than any list.
            let n = rng.gen_range(2..9);
            (0..n)
                .map(|_| (b'a' + rng.gen_range(0..26)) as char)
                .collect()
        } else if roll < 0.96 {
            ACCENTED[rng.gen_range(0..ACCENTED.len())].to_string()
        } else {
            FOREIGN[rng.gen_range(0..FOREIGN.len())].to_string()
        };
        let word = match rng.gen_range(0..20) {
            0 => word.to_uppercase(),
            1 | 2 => {
                let mut c = word.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            }
            _ => word,
        };
        out.extend_from_slice(word.as_bytes());
        if invalid && rng.gen_range(0..8) == 0 {
            let junk: &[&[u8]] = &[b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8"];
            out.extend_from_slice(junk[rng.gen_range(0..junk.len())]);
            if rng.gen() {
                out.extend_from_slice(b"tail");
            }
        }
        in_line += 1;
        if in_line >= rng.gen_range(5..16) {
            out.push(b'\n');
            in_line = 0;
        } else {
            out.extend_from_slice(SEPARATORS[rng.gen_range(0..SEPARATORS.len())].as_bytes());
        }
    }
    out
}

/// Polls `done` until it says true or `limit` passes.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A log file for a process's stdout and stderr, kept as evidence of a failing run.
fn log_to(command: &mut Command, path: &Path, evidence: &Evidence) {
    let log = File::create(path).expect("create log");
    let err = log.try_clone().expect("clone log");
    command.stdin(Stdio::null()).stdout(log).stderr(err);
    evidence.copy(path);
}

/// A directory under the test's scratch space, named `label` (a second one with the
/// same label gets a suffix).
fn job_root(cx: &Context, label: &str) -> PathBuf {
    let mut root = cx.dir().join(label);
    let mut n = 1;
    while root.exists() {
        n += 1;
        root = cx.dir().join(format!("{label}-{n}"));
    }
    fs::create_dir_all(&root).expect("create the job's directory");
    root
}

/// One 6.5840 job: a directory holding the inputs, where the coordinator and workers
/// run, with the coordinator and worker under test (from the context: the command
/// given, or our binaries, with the bug switch of a known-bad run).
pub struct LabJob {
    root: PathBuf,
    pub dir: PathBuf,
    pub inputs: Vec<String>,
    coordinator: Implementation,
    worker: Implementation,
    evidence: Evidence,
    env: Vec<(String, String)>,
    started: usize,
}

impl LabJob {
    /// A job over the eight lab inputs, `size` bytes each, generated from the seed.
    pub fn new(cx: &mut Context, label: &str, size: usize) -> LabJob {
        let root = job_root(cx, label);
        let dir = root.join("job");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(root.join("logs")).unwrap();
        let mut rng = cx.rng(1);
        for name in LAB_INPUTS {
            let n = rng.gen_range(size / 2..=size);
            fs::write(dir.join(name), text(&mut rng, n, false)).unwrap();
        }
        let coordinator = cx.program("MRCOORDINATOR_IMPL");
        let worker = cx.program("MRWORKER_IMPL");
        cx.note(format!(
            "coordinator: {}; worker: {}",
            coordinator.describe(),
            worker.describe()
        ));
        LabJob {
            root,
            dir,
            inputs: LAB_INPUTS.iter().map(|s| s.to_string()).collect(),
            coordinator,
            worker,
            evidence: cx.evidence(),
            env: Vec::new(),
            started: 0,
        }
    }

    /// The same job with our binaries, whatever the run tests (a check of the suite
    /// that needs a correct implementation).
    pub fn with_our_binaries(mut self) -> LabJob {
        self.coordinator = Implementation::ours("mrcoordinator");
        self.worker = Implementation::ours("mrworker");
        self
    }

    /// Sets a variable for every process of the job.
    pub fn env(&mut self, key: &str, value: &str) -> &mut LabJob {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets a variable unless the test has set it already.
    pub fn env_default(&mut self, key: &str, value: &str) -> &mut LabJob {
        if !self.env.iter().any(|(k, _)| k == key) {
            self.env(key, value);
        }
        self
    }

    fn command(&mut self, imp: &Implementation, name: &str) -> Command {
        let mut command = imp.command();
        command.current_dir(&self.dir);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        log_to(
            &mut command,
            &self.root.join("logs").join(format!("{name}.log")),
            &self.evidence,
        );
        command
    }

    pub fn coordinator(&mut self) -> Process {
        let imp = self.coordinator.clone();
        let mut command = self.command(&imp, "coordinator");
        command.args(&self.inputs);
        spawn("coordinator", &mut command)
    }

    pub fn worker(&mut self, app: &str) -> Process {
        self.started += 1;
        let name = format!("worker-{}", self.started);
        let imp = self.worker.clone();
        let mut command = self.command(&imp, &name);
        command.arg(app);
        spawn(name, &mut command)
    }

    /// A directory of the test beside the job directory (not inside it, where the
    /// checks would take its files for a job's leftovers).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Final and intermediate names (`mr-out-R`, `mr-X-Y`) in the job directory now.
    pub fn job_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| super::scenarios::is_lab_output(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The `mr-out-*` contents, or a "no progress" error when the job left none.
    pub fn outputs(&self) -> Result<BTreeMap<String, String>, String> {
        if !self.job_files().iter().any(|n| n.starts_with("mr-out-")) {
            return Err(no_lab_output(&self.dir));
        }
        lab_outputs(&self.dir)
    }

    /// A worker running an external map and reduce command.
    pub fn external_worker(&mut self, map: &Path, reduce: &Path) -> Process {
        self.started += 1;
        let name = format!("worker-{}", self.started);
        let imp = self.worker.clone();
        let mut command = self.command(&imp, &name);
        command.arg("--map").arg(map).arg("--reduce").arg(reduce);
        spawn(name, &mut command)
    }

    /// Runs a coordinator and `workers` workers of `app` to the end.
    pub fn run(&mut self, app: &str, workers: usize, limit: Duration) -> Result<(), String> {
        let mut coordinator = self.coordinator();
        let mut ws: Vec<Process> = (0..workers).map(|_| self.worker(app)).collect();
        finish(&mut coordinator, limit).map_err(|e| self.diagnose(e))?;
        for w in &mut ws {
            finish(w, exit_guard())?;
        }
        Ok(())
    }

    /// A job that did not finish and left no file at all made no progress: says so.
    pub fn diagnose(&self, error: String) -> String {
        if self.job_files().is_empty() {
            format!(
                "no progress: {error}, and no intermediate (mr-X-Y) or output (mr-out-R) file ever appeared in {}",
                self.dir.display()
            )
        } else {
            error
        }
    }

    pub fn contents(&self) -> Vec<(String, Vec<u8>)> {
        self.inputs
            .iter()
            .map(|n| (n.clone(), fs::read(self.dir.join(n)).unwrap()))
            .collect()
    }

    /// Checks the `mr-out-*` files and the directory's contents.
    pub fn check(&self, expected: &BTreeMap<String, String>) -> Result<(), String> {
        check_lab_dir(
            &self.dir,
            &LabDir {
                inputs: self.inputs.clone(),
            },
            expected,
        )
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
}

/// Starts a program of the implementation; one that cannot be started stops the test
/// with a setup failure.
pub fn spawn(name: impl Into<String>, command: &mut Command) -> Process {
    let name = name.into();
    Process::spawn(name.clone(), command).unwrap_or_else(|e| {
        fail(
            property::SETUP,
            format!("{e} (the program: {:?})", command.get_program()),
        )
    })
}

/// Waits for a process to exit by itself and succeed.
pub fn finish(process: &mut Process, limit: Duration) -> Result<(), String> {
    match process.wait_timeout(limit).unwrap() {
        None => Err(format!(
            "{} did not finish within {} s",
            process.name(),
            limit.as_secs()
        )),
        Some(status) if !status.success() => Err(format!("{} failed: {status}", process.name())),
        Some(_) => Ok(()),
    }
}

/// The message of a job that left no `mr-out-*` file.
pub fn no_lab_output(dir: &Path) -> String {
    format!(
        "no progress: no mr-out-* file appeared in {} (0 reduce outputs)",
        dir.display()
    )
}

/// Reference word counts as 6.5840's `wc` prints them, from the test's own oracle.
pub fn wc_expected(contents: &[(String, Vec<u8>)]) -> BTreeMap<String, String> {
    super::oracle::word_count(contents.iter().map(|(_, c)| c.as_slice()))
        .into_iter()
        .map(|(w, n)| (w, n.to_string()))
        .collect()
}

/// Reference output of the `crash` and `nocrash` applications.
pub fn crash_expected(contents: &[(String, Vec<u8>)]) -> BTreeMap<String, String> {
    let joined = |mut v: Vec<String>| {
        v.sort();
        v.join(" ")
    };
    BTreeMap::from([
        (
            "a".into(),
            joined(contents.iter().map(|(n, _)| n.clone()).collect()),
        ),
        (
            "b".into(),
            joined(contents.iter().map(|(n, _)| n.len().to_string()).collect()),
        ),
        (
            "c".into(),
            joined(contents.iter().map(|(_, c)| c.len().to_string()).collect()),
        ),
        (
            "d".into(),
            joined(contents.iter().map(|_| "xyzzy".to_string()).collect()),
        ),
    ])
}

/// Reference output of the `slow` application.
pub fn slow_expected(inputs: &[String]) -> BTreeMap<String, String> {
    let mut names = inputs.to_vec();
    names.sort();
    (0..30)
        .map(|i| (format!("k{i:02}"), names.join(",")))
        .collect()
}

/// The word-count front end under test: `mapreduce --input --output --nworkers --nreduce`.
pub struct WordCountJob {
    root: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
    imp: Implementation,
    evidence: Evidence,
    env: Vec<(String, String)>,
}

impl WordCountJob {
    pub fn new(cx: &mut Context, label: &str) -> WordCountJob {
        let root = job_root(cx, label);
        let input = root.join("input");
        fs::create_dir_all(&input).unwrap();
        let imp = cx.program("MAPREDUCE_IMPL");
        WordCountJob {
            output: root.join("output"),
            input,
            root,
            imp,
            evidence: cx.evidence(),
            env: Vec::new(),
        }
    }

    pub fn env(&mut self, key: &str, value: &str) -> &mut WordCountJob {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn add_input(&self, name: &str, bytes: &[u8]) {
        fs::write(self.input.join(name), bytes).unwrap();
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The command with arbitrary arguments (for the bad-argument tests).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.imp.command();
        command.args(args).current_dir(&self.root);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    pub fn start(&self, nworkers: usize, nreduce: usize) -> Process {
        let mut command = self.imp.command();
        command
            .arg("--input")
            .arg(&self.input)
            .arg("--output")
            .arg(&self.output)
            .arg("--nworkers")
            .arg(nworkers.to_string())
            .arg("--nreduce")
            .arg(nreduce.to_string());
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        log_to(
            &mut command,
            &self.root.join("mapreduce.log"),
            &self.evidence,
        );
        spawn("mapreduce", &mut command)
    }

    pub fn run(&self, nworkers: usize, nreduce: usize) -> Result<(), String> {
        let mut p = self.start(nworkers, nreduce);
        self.finish(&mut p)
    }

    /// Waits for a started job to end by itself and succeed; a job that did not and
    /// never created its output directory made no progress, and is told so.
    pub fn finish(&self, p: &mut Process) -> Result<(), String> {
        finish(p, hang_guard()).map_err(|e| {
            if self.output.exists() {
                e
            } else {
                format!("no progress: {e}, and the output directory was never created")
            }
        })
    }

    /// Reference counts of everything in the input directory, from the test's own
    /// oracle.
    pub fn expected(&self) -> BTreeMap<String, u64> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.input).unwrap() {
            files.push(fs::read(entry.unwrap().path()).unwrap());
        }
        super::oracle::word_count(files.iter().map(Vec::as_slice))
    }
}

/// All descendants of a process, from /proc (children of children too).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(children) = fs::read_to_string(task.path().join("children")) {
                for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                    out.push(c);
                    queue.push(c);
                }
            }
        }
    }
    out
}

/// SIGKILLs a process that is not our child (a worker of the process under test).
pub fn kill_pid(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions. The pid was read from
    // /proc just before; a worker already gone makes this a no-op (ESRCH).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}
