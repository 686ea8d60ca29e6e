//! The word-count front end: `mapreduce --input DIR --output DIR --nworkers N --nreduce R`.

use std::fs;
use std::time::{Duration, Instant};

use checkers::mapreduce::check_wordcount_dir;
use rand::Rng;

use super::support::{
    descendants, exit_guard, hang_guard, kill_pid, or_fail, spawn, text, WordCountJob,
    SHORT_TIMEOUT_MS,
};
use super::{ERRORS, OUTPUT};
use crate::suite::{fail, Context};

/// Runs a job and checks the output directory; returns the number of map tasks.
fn run_and_check(job: &WordCountJob, nworkers: usize, nreduce: usize) -> usize {
    or_fail(job.run(nworkers, nreduce), OUTPUT);
    or_fail(
        check_wordcount_dir(&job.output, &job.expected(), nreduce),
        OUTPUT,
    )
    .map_tasks
}

/// A job over `files` generated inputs of about `size` bytes.
fn generated(cx: &mut Context, label: &str, files: usize, size: usize) -> WordCountJob {
    let job = WordCountJob::new(cx, label);
    let mut rng = cx.rng(1);
    for i in 0..files {
        job.add_input(&format!("part-{i}.txt"), &text(&mut rng, size, false));
    }
    job
}

/// The file layout (`map.part-M-R.txt`, `reduce.part-R.txt`, `output.txt`, nothing
/// else) and the order of `output.txt`. How many map tasks there are is the
/// implementation's choice, but with three workers and 800 KB of input there must be
/// more than one (the contract shares the input out among the workers), and the
/// layout checked is then that of several tasks.
pub fn layout_and_order(cx: &mut Context) {
    let job = generated(cx, "wc-layout", 4, 200_000);
    let maps = run_and_check(&job, 3, 5);
    if maps < 2 {
        fail(
            OUTPUT,
            format!("{maps} map task for 4 input files and 3 workers: the input must be shared out among the workers"),
        );
    }
}

/// An empty input directory gives empty reduce parts and an empty `output.txt`.
pub fn empty_input(cx: &mut Context) {
    let job = WordCountJob::new(cx, "wc-empty");
    run_and_check(&job, 2, 3);
    let output = fs::read_to_string(job.output.join("output.txt")).unwrap();
    if !output.is_empty() {
        fail(
            OUTPUT,
            format!("output.txt of an empty input is not empty: {output:?}"),
        );
    }
}

/// Empty files and files without a single word are inputs like any other.
pub fn empty_and_wordless_files(cx: &mut Context) {
    let job = WordCountJob::new(cx, "wc-empty-files");
    job.add_input("empty.txt", b"");
    job.add_input("digits.txt", b"123 456\n--- 789\n");
    job.add_input("one.txt", b"word");
    run_and_check(&job, 2, 2);
    let output = fs::read_to_string(job.output.join("output.txt")).unwrap();
    if output != "word 1\n" {
        fail(
            OUTPUT,
            format!("output.txt is {output:?}, expected \"word 1\\n\""),
        );
    }
}

/// One big file is split into several map tasks, so every worker has work.
pub fn one_huge_file(cx: &mut Context) {
    let job = WordCountJob::new(cx, "wc-huge");
    // Eight copies of 512 KiB of generated lines: generating 4 MiB word by word
    // would be most of the test's time.
    let chunk = text(&mut cx.rng(1), 512 << 10, false);
    job.add_input("huge.txt", &chunk.repeat(8));
    let maps = run_and_check(&job, 2, 4);
    if maps < 2 {
        fail(
            OUTPUT,
            "a 4 MiB file was one map task: large files must be split so every worker has work",
        );
    }
}

/// A directory of many short documents, which an implementation may read several
/// to a map task: each file's words are its own. Every file starts and ends with a
/// letter and has no final newline, so a task that runs one file's text into the
/// next counts words such as `tailhead` that no file holds.
pub fn many_small_files(cx: &mut Context) {
    let job = WordCountJob::new(cx, "wc-many");
    let mut rng = cx.rng(1);
    for i in 0..300 {
        let size = rng.gen_range(100..3000);
        let mut body = b"head ".to_vec();
        body.extend(text(&mut rng, size, false));
        body.extend_from_slice(b" tail");
        job.add_input(&format!("doc-{i:03}.txt"), &body);
    }
    run_and_check(&job, 3, 4);
}

/// Accented Latin letters make words; other scripts, digits and invalid UTF-8 separate.
pub fn non_latin_and_invalid_utf8(cx: &mut Context) {
    let job = WordCountJob::new(cx, "wc-unicode");
    let mut rng = cx.rng(1);
    job.add_input("mixed.txt", &text(&mut rng, 300_000, true));
    job.add_input(
        "pinned.txt",
        "Café CAFÉ café\nStraße STRAẞE\nκαλημέρα привет 東京 x²y\nİstanbul\n".as_bytes(),
    );
    job.add_input("broken.txt", b"caf\xc3 na\xffve \xe2\x82 end\xed\xa0\x80s");
    run_and_check(&job, 2, 3);
    let output = fs::read_to_string(job.output.join("output.txt")).unwrap();
    for line in [
        "café ",
        "straße ",
        "istanbul ",
        "x ",
        "y ",
        "caf ",
        "na ",
        "ve ",
        "end ",
        "s ",
    ] {
        if !output.lines().any(|l| l.starts_with(line)) {
            fail(OUTPUT, format!("no {line:?} line in output.txt"));
        }
    }
    if output.contains("привет") {
        fail(OUTPUT, "a Cyrillic word was counted");
    }
}

/// A single reduce task.
pub fn nreduce_1(cx: &mut Context) {
    let job = generated(cx, "wc-r1", 3, 100_000);
    run_and_check(&job, 2, 1);
}

/// Many more reduce tasks than workers or distinct words in some partitions.
pub fn nreduce_50(cx: &mut Context) {
    let job = generated(cx, "wc-r50", 3, 100_000);
    run_and_check(&job, 3, 50);
}

/// Bad arguments get a clear error naming the problem and a non-zero exit, and
/// nothing of the user's is touched.
pub fn bad_arguments(cx: &mut Context) {
    let job = WordCountJob::new(cx, "wc-args");
    job.add_input("a.txt", b"some words");
    let root = job.root().to_path_buf();
    let file = root.join("a-file");
    fs::write(&file, b"precious").unwrap();
    let input = job.input.to_str().unwrap().to_string();
    let missing = root.join("missing").to_str().unwrap().to_string();
    let out = root.join("out").to_str().unwrap().to_string();
    let file_s = file.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "missing input directory",
            vec![
                "--input",
                &missing,
                "--output",
                &out,
                "--nworkers",
                "2",
                "--nreduce",
                "2",
            ],
            "missing",
        ),
        (
            "input is a file",
            vec![
                "--input",
                &file_s,
                "--output",
                &out,
                "--nworkers",
                "2",
                "--nreduce",
                "2",
            ],
            "a-file",
        ),
        (
            "zero workers",
            vec![
                "--input",
                &input,
                "--output",
                &out,
                "--nworkers",
                "0",
                "--nreduce",
                "2",
            ],
            "nworkers",
        ),
        (
            "zero reduce tasks",
            vec![
                "--input",
                &input,
                "--output",
                &out,
                "--nworkers",
                "2",
                "--nreduce",
                "0",
            ],
            "nreduce",
        ),
        (
            "output is a file",
            vec![
                "--input",
                &input,
                "--output",
                &file_s,
                "--nworkers",
                "2",
                "--nreduce",
                "2",
            ],
            "a-file",
        ),
        (
            "workers not a number",
            vec![
                "--input",
                &input,
                "--output",
                &out,
                "--nworkers",
                "two",
                "--nreduce",
                "2",
            ],
            "nworkers",
        ),
        ("no arguments", vec![], ""),
    ];
    for (i, (what, args, mentions)) in cases.into_iter().enumerate() {
        // Through a file and with a limit: an implementation that hangs on bad
        // arguments fails here instead of hanging the suite.
        let log = root.join(format!("bad-arguments-{i}.log"));
        let mut command = job.command(&args);
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        let mut process = spawn("mapreduce", &mut command);
        let Some(status) = process.wait_timeout(exit_guard()).unwrap() else {
            fail(
                ERRORS,
                format!(
                    "{what}: still running {} s after it was started",
                    exit_guard().as_secs()
                ),
            )
        };
        let stderr = fs::read_to_string(&log).unwrap();
        if status.success() {
            fail(ERRORS, format!("{what}: exit status {status}"));
        }
        if stderr.trim().is_empty() {
            fail(ERRORS, format!("{what}: nothing on stderr"));
        }
        if !stderr.contains(mentions) {
            fail(
                ERRORS,
                format!("{what}: the error does not mention {mentions:?}: {stderr}"),
            );
        }
    }
    if fs::read(&file).unwrap() != b"precious" {
        fail(ERRORS, "a bad run changed a user's file");
    }
}

/// Worker processes of the job SIGKILLed mid-run: the job still finishes exactly.
/// Kills follow the job's progress, not the clock: the first as soon as a worker
/// exists and the output directory does (it is then in its first map task), the next
/// ones after a random number of further files appear in the output directory.
/// Waiting for the directory keeps the kills off a launcher's own helpers: a command
/// such as pyenv's `python3` shim runs programs of its own before it becomes the
/// implementation's master, and a helper killed would fail the launcher.
pub fn workers_killed(cx: &mut Context) {
    let mut job = generated(cx, "wc-kill", 4, 512 << 10);
    job.env("MR_TASK_TIMEOUT_MS", SHORT_TIMEOUT_MS);
    let mut rng = cx.rng(2);
    let mut master = job.start(2, 4);
    let files = |job: &WordCountJob| fs::read_dir(&job.output).map_or(0, |d| d.count());
    let mut kills = 0;
    let mut kill_at = 0;
    let deadline = Instant::now() + hang_guard();
    while kills < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        if master.try_wait().unwrap().is_some() {
            break;
        }
        let workers = descendants(master.pid());
        if workers.is_empty() || !job.output.is_dir() || files(&job) < kill_at {
            continue;
        }
        kill_pid(workers[rng.gen_range(0..workers.len())]);
        kills += 1;
        kill_at = files(&job) + rng.gen_range(1..=4);
    }
    or_fail(job.finish(&mut master), OUTPUT);
    or_fail(check_wordcount_dir(&job.output, &job.expected(), 4), OUTPUT);
    assert!(kills > 0, "the job ended before a worker could be killed");
}
