//! Oracles for MapReduce jobs: is what a job left on disk exactly the reference result,
//! under the names the spec gives, with no temp or partial file left?
//!
//! Two layouts are judged:
//!
//! - the word-count front end's output directory: `map.part-M-R.txt` for every map
//!   task M and partition R, `reduce.part-R.txt` (`word count` lines sorted by word)
//!   and `output.txt` (`word count` lines by count descending, then word ascending),
//!   and nothing else;
//! - the 6.5840 job directory: `mr-out-R` files whose `key value` lines together hold
//!   each expected key exactly once, beside intermediates `mr-X-Y`, the inputs and the
//!   test applications' `mr-worker-*` markers, and nothing else.
//!
//! [`OutputWatcher`] samples a directory while a job runs, so a test can tell that a
//! final name never showed partial content.
//!
//! Every check returns `Err` with a message saying what is wrong and where, so a
//! failing test reads as a diagnosis; a job that left nothing at all is reported as
//! "no progress". The module needs only std (and `tempfile` in its tests): it shares
//! no code with the reference implementation, and the expected results come from the
//! caller.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How many differences a message lists before it says "and N more".
const SHOWN: usize = 8;

fn names_in(dir: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn read(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| format!("{} is not UTF-8: {e}", path.display()))
}

/// Parses `<prefix><n><suffix>` into n.
fn number(name: &str, prefix: &str, suffix: &str) -> Option<usize> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `map.part-M-R.txt` -> (M, R).
fn map_part(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("map.part-")?.strip_suffix(".txt")?;
    let (m, r) = rest.split_once('-')?;
    Some((number(m, "", "")?, number(r, "", "")?))
}

/// What the word-count checker learned about a correct output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordCountLayout {
    /// Number of map tasks (distinct M in `map.part-M-R.txt`).
    pub map_tasks: usize,
}

/// Checks a word-count front end's output directory against the reference counts.
pub fn check_wordcount_dir(
    dir: &Path,
    expected: &BTreeMap<String, u64>,
    nreduce: usize,
) -> Result<WordCountLayout, String> {
    if !dir.exists() {
        return Err(format!(
            "no progress: the output directory {} was never created (output.txt never appeared, 0 of {nreduce} reduce.part files)",
            dir.display()
        ));
    }
    let mut problems = Vec::new();
    let mut maps: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut reduces = BTreeSet::new();
    let mut has_output = false;
    for name in names_in(dir)? {
        if name == "output.txt" {
            has_output = true;
        } else if let Some(r) = number(&name, "reduce.part-", ".txt") {
            reduces.insert(r);
        } else if let Some((m, r)) = map_part(&name) {
            maps.entry(m).or_default().insert(r);
        } else {
            problems.push(format!(
                "unexpected file {name:?} in the output directory (a temp or partial file left behind?)"
            ));
        }
    }
    let all_r: BTreeSet<usize> = (0..nreduce).collect();
    if reduces != all_r {
        problems.push(format!(
            "reduce.part files are for partitions {reduces:?}, expected 0..{nreduce}"
        ));
    }
    let map_ids: Vec<usize> = maps.keys().copied().collect();
    if map_ids != (0..maps.len()).collect::<Vec<_>>() {
        problems.push(format!(
            "map tasks are numbered {map_ids:?}, expected 0..{}",
            maps.len()
        ));
    }
    for (m, rs) in &maps {
        if *rs != all_r {
            problems.push(format!(
                "map task {m} has map.part files for partitions {rs:?}, expected 0..{nreduce}"
            ));
        }
    }
    if !has_output && reduces.is_empty() {
        return Err(format!(
            "no progress: output.txt never appeared and 0 of {nreduce} reduce.part files did, in {}",
            dir.display()
        ));
    }
    if !has_output {
        problems.push("output.txt is missing".into());
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }

    // The reduce parts: sorted `word count` lines, each word in one partition only.
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for r in 0..nreduce {
        let path = dir.join(format!("reduce.part-{r}.txt"));
        let text = read(&path)?;
        let mut previous: Option<&str> = None;
        for (n, line) in text.lines().enumerate() {
            let at = format!("{} line {}", path.display(), n + 1);
            let (word, count) = line
                .rsplit_once(' ')
                .ok_or_else(|| format!("{at}: {line:?} is not `word count`"))?;
            let count: u64 = count
                .parse()
                .map_err(|_| format!("{at}: count in {line:?} is not a number"))?;
            if previous.is_some_and(|p| p >= word) {
                return Err(format!(
                    "{at}: {word:?} comes after {:?}; reduce.part lines must be sorted by word, each once",
                    previous.unwrap()
                ));
            }
            previous = Some(word);
            if found.insert(word.to_string(), count).is_some() {
                return Err(format!(
                    "{at}: word {word:?} is in more than one reduce.part file"
                ));
            }
        }
    }
    compare_maps("the reduce.part files", &found, expected)?;

    let want = ranked_text(expected);
    let got = read(&dir.join("output.txt"))?;
    if got != want {
        return Err(first_difference("output.txt", &got, &want));
    }
    Ok(WordCountLayout {
        map_tasks: maps.len(),
    })
}

/// The text `output.txt` must hold: by count descending, then word ascending in byte
/// order. Written here, plainly, so that the checker shares no code with what it
/// judges.
fn ranked_text(counts: &BTreeMap<String, u64>) -> String {
    let mut lines: Vec<(&String, u64)> = counts.iter().map(|(w, n)| (w, *n)).collect();
    // A stable sort of a list already in word order: equal counts keep word order.
    lines.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    lines.iter().map(|(w, n)| format!("{w} {n}\n")).collect()
}

/// Lists keys missing, unexpected or with the wrong value.
fn compare_maps<V: PartialEq + std::fmt::Debug>(
    what: &str,
    got: &BTreeMap<String, V>,
    want: &BTreeMap<String, V>,
) -> Result<(), String> {
    let mut diffs = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => diffs.push(format!("missing {k:?} (expected {v:?})")),
            Some(g) if g != v => diffs.push(format!("{k:?} is {g:?}, expected {v:?}")),
            Some(_) => {}
        }
    }
    for (k, v) in got {
        if !want.contains_key(k) {
            diffs.push(format!("unexpected {k:?} = {v:?}"));
        }
    }
    if diffs.is_empty() {
        return Ok(());
    }
    let mut msg = format!("{what} differ from the reference in {} keys:", diffs.len());
    for d in diffs.iter().take(SHOWN) {
        let _ = write!(msg, "\n  {d}");
    }
    if diffs.len() > SHOWN {
        let _ = write!(msg, "\n  and {} more", diffs.len() - SHOWN);
    }
    Err(msg)
}

fn first_difference(what: &str, got: &str, want: &str) -> String {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    for i in 0..g.len().max(w.len()) {
        if g.get(i) != w.get(i) {
            return format!(
                "{what} line {}: got {:?}, expected {:?} ({} lines, expected {})",
                i + 1,
                g.get(i),
                w.get(i),
                g.len(),
                w.len()
            );
        }
    }
    format!("{what} differs only in line endings or a final newline")
}

/// Which files may sit in a 6.5840 job directory besides `mr-out-*`.
#[derive(Debug, Clone, Default)]
pub struct LabDir {
    /// Names of the inputs (and any other file the test put there).
    pub inputs: Vec<String>,
}

/// Checks the `mr-out-*` files of a 6.5840 job directory: together they hold every
/// expected key once with its value, and no file but inputs, `mr-X-Y`
/// intermediates and `mr-worker-*` markers is left.
pub fn check_lab_dir(
    dir: &Path,
    allowed: &LabDir,
    expected: &BTreeMap<String, String>,
) -> Result<(), String> {
    let found = lab_outputs(dir)?;
    let has_output = names_in(dir)?
        .iter()
        .any(|n| number(n, "mr-out-", "").is_some());
    if !has_output && !expected.is_empty() {
        return Err(format!(
            "no progress: no mr-out-* file appeared in {} (0 reduce outputs, {} keys expected)",
            dir.display(),
            expected.len()
        ));
    }
    let mut problems = Vec::new();
    for name in names_in(dir)? {
        let known = allowed.inputs.contains(&name)
            || number(&name, "mr-out-", "").is_some()
            || name.starts_with("mr-worker-")
            || name
                .strip_prefix("mr-")
                .and_then(|r| r.split_once('-'))
                .is_some_and(|(x, y)| number(x, "", "").is_some() && number(y, "", "").is_some());
        if !known {
            problems.push(format!(
                "unexpected file {name:?} in the job directory (a temp or partial file left behind?)"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    compare_maps("the mr-out files", &found, expected)
}

/// Every `key value` line of the `mr-out-*` files; a key in two lines is an error.
pub fn lab_outputs(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut found = BTreeMap::new();
    for name in names_in(dir)? {
        if number(&name, "mr-out-", "").is_none() {
            continue;
        }
        let path = dir.join(&name);
        for (n, line) in read(&path)?.lines().enumerate() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            if found.insert(key.to_string(), value.to_string()).is_some() {
                return Err(format!(
                    "{name} line {}: key {key:?} appears a second time in the output",
                    n + 1
                ));
            }
        }
    }
    Ok(found)
}

/// What one output name held over a job, sample by sample.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// Distinct contents seen under the name, in the order first seen.
    pub contents: Vec<Vec<u8>>,
}

/// Samples the files of a directory whose names `is_output` accepts, every few
/// milliseconds, until stopped.
pub struct OutputWatcher {
    stop: Arc<AtomicBool>,
    passes: Arc<AtomicU64>,
    thread: Option<JoinHandle<HashMap<String, Observed>>>,
}

impl OutputWatcher {
    pub fn start(dir: &Path, is_output: fn(&str) -> bool) -> OutputWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let passes = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&passes);
        let dir: PathBuf = dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            let mut seen: HashMap<String, Observed> = HashMap::new();
            while !flag.load(Ordering::Relaxed) {
                for name in names_in(&dir).unwrap_or_default() {
                    if !is_output(&name) {
                        continue;
                    }
                    // A file renamed away between listing and reading is just missed.
                    if let Ok(bytes) = fs::read(dir.join(&name)) {
                        let entry = seen.entry(name).or_default();
                        if !entry.contents.contains(&bytes) {
                            entry.contents.push(bytes);
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        });
        OutputWatcher {
            stop,
            passes,
            thread: Some(thread),
        }
    }

    /// Waits until the watcher has gone over the whole directory at least once after
    /// this call: what is there now has then been seen, however slowly a loaded
    /// machine runs the watcher's thread. False if that took over `limit`.
    pub fn sync(&self, limit: Duration) -> bool {
        // The pass running now may have listed the directory before the call.
        let target = self.passes.load(Ordering::SeqCst) + 2;
        let deadline = std::time::Instant::now() + limit;
        while self.passes.load(Ordering::SeqCst) < target {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Stops sampling and checks that every output name only ever showed the content
    /// it ends with: a file that was seen with other content was visible while being
    /// written (or was written twice with different data).
    /// Before it stops, the watcher finishes a pass over the final directory, so every
    /// output the job left is counted even if the thread was starved during the job.
    pub fn check(mut self, dir: &Path) -> Result<usize, String> {
        if !self.sync(Duration::from_secs(30)) {
            return Err("the output watcher did not get to run for 30 s".into());
        }
        self.stop.store(true, Ordering::Relaxed);
        let seen = self
            .thread
            .take()
            .expect("checked once")
            .join()
            .map_err(|_| "the watcher thread panicked".to_string())?;
        let mut problems = Vec::new();
        for (name, observed) in &seen {
            let last = fs::read(dir.join(name)).unwrap_or_default();
            for content in &observed.contents {
                if *content != last {
                    problems.push(format!(
                        "{name} was seen with {} bytes, then ended with {} bytes: a partial file was visible under its final name",
                        content.len(),
                        last.len()
                    ));
                    break;
                }
            }
        }
        if problems.is_empty() {
            Ok(seen.len())
        } else {
            problems.sort();
            Err(problems.join("\n"))
        }
    }
}

impl Drop for OutputWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(w, n)| (w.to_string(), *n)).collect()
    }

    fn good_dir() -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (m, r) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            fs::write(dir.path().join(format!("map.part-{m}-{r}.txt")), "").unwrap();
        }
        fs::write(dir.path().join("reduce.part-0.txt"), "a 3\nc 1\n").unwrap();
        fs::write(dir.path().join("reduce.part-1.txt"), "b 3\n").unwrap();
        fs::write(dir.path().join("output.txt"), "a 3\nb 3\nc 1\n").unwrap();
        dir
    }

    #[test]
    fn a_correct_word_count_dir_passes() {
        let dir = good_dir();
        let want = counts(&[("a", 3), ("b", 3), ("c", 1)]);
        assert_eq!(
            check_wordcount_dir(dir.path(), &want, 2),
            Ok(WordCountLayout { map_tasks: 2 })
        );
    }

    #[test]
    fn a_left_over_temp_file_fails() {
        let dir = good_dir();
        fs::write(dir.path().join("reduce.part-1.txt.tmp-12-0"), "b").unwrap();
        let want = counts(&[("a", 3), ("b", 3), ("c", 1)]);
        let err = check_wordcount_dir(dir.path(), &want, 2).unwrap_err();
        assert!(
            err.contains("unexpected file \"reduce.part-1.txt.tmp-12-0\""),
            "{err}"
        );
    }

    #[test]
    fn wrong_order_wrong_counts_and_missing_parts_fail() {
        let dir = good_dir();
        fs::write(dir.path().join("output.txt"), "b 3\na 3\nc 1\n").unwrap();
        let want = counts(&[("a", 3), ("b", 3), ("c", 1)]);
        let err = check_wordcount_dir(dir.path(), &want, 2).unwrap_err();
        assert!(err.starts_with("output.txt line 1"), "{err}");

        let want = counts(&[("a", 3), ("b", 4), ("c", 1)]);
        let err = check_wordcount_dir(dir.path(), &want, 2).unwrap_err();
        assert!(err.contains("\"b\" is 3, expected 4"), "{err}");

        fs::remove_file(dir.path().join("map.part-1-1.txt")).unwrap();
        let err = check_wordcount_dir(dir.path(), &want, 2).unwrap_err();
        assert!(err.contains("map task 1"), "{err}");
    }

    #[test]
    fn a_word_in_two_partitions_fails() {
        let dir = good_dir();
        fs::write(dir.path().join("reduce.part-1.txt"), "a 3\nb 3\n").unwrap();
        let want = counts(&[("a", 3), ("b", 3), ("c", 1)]);
        let err = check_wordcount_dir(dir.path(), &want, 2).unwrap_err();
        assert!(err.contains("more than one reduce.part"), "{err}");
    }

    #[test]
    fn lab_dir_checks_keys_and_stray_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pg-a.txt"), "x").unwrap();
        fs::write(dir.path().join("mr-0-0"), "").unwrap();
        fs::write(dir.path().join("mr-out-0"), "a 1\nb 2\n").unwrap();
        fs::write(dir.path().join("mr-worker-jobcount-1-0"), "x").unwrap();
        let allowed = LabDir {
            inputs: vec!["pg-a.txt".into()],
        };
        let want: BTreeMap<String, String> = [("a", "1"), ("b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        check_lab_dir(dir.path(), &allowed, &want).unwrap();
        fs::write(dir.path().join("mr-out-1"), "b 2\n").unwrap();
        let err = check_lab_dir(dir.path(), &allowed, &want).unwrap_err();
        assert!(err.contains("second time"), "{err}");
        fs::remove_file(dir.path().join("mr-out-1")).unwrap();
        fs::write(dir.path().join("mr-tmp-123"), "").unwrap();
        let err = check_lab_dir(dir.path(), &allowed, &want).unwrap_err();
        assert!(err.contains("mr-tmp-123"), "{err}");
    }

    #[test]
    fn the_watcher_sees_a_file_that_grows_under_its_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let limit = Duration::from_secs(30);
        let watcher = OutputWatcher::start(dir.path(), |n| n.starts_with("out"));
        fs::write(dir.path().join("out-0"), "half").unwrap();
        assert!(watcher.sync(limit));
        fs::write(dir.path().join("out-0"), "half and the rest").unwrap();
        let err = watcher.check(dir.path()).unwrap_err();
        assert!(err.contains("partial file"), "{err}");

        let watcher = OutputWatcher::start(dir.path(), |n| n.starts_with("out"));
        fs::write(dir.path().join("tmp"), "whole").unwrap();
        fs::rename(dir.path().join("tmp"), dir.path().join("out-1")).unwrap();
        assert_eq!(watcher.check(dir.path()), Ok(2));
    }

    #[test]
    fn a_job_that_left_nothing_is_reported_as_no_progress() {
        let dir = tempfile::tempdir().unwrap();
        let want = counts(&[("a", 1)]);
        let err = check_wordcount_dir(&dir.path().join("never-made"), &want, 4).unwrap_err();
        assert!(
            err.starts_with("no progress: the output directory"),
            "{err}"
        );
        assert!(err.contains("0 of 4 reduce.part"), "{err}");
        let err = check_wordcount_dir(dir.path(), &want, 4).unwrap_err();
        assert!(
            err.starts_with("no progress: output.txt never appeared and 0 of 4"),
            "{err}"
        );
        fs::write(dir.path().join("pg-a.txt"), "a").unwrap();
        let allowed = LabDir {
            inputs: vec!["pg-a.txt".into()],
        };
        let want: BTreeMap<String, String> = BTreeMap::from([("a".into(), "1".into())]);
        let err = check_lab_dir(dir.path(), &allowed, &want).unwrap_err();
        assert!(err.starts_with("no progress: no mr-out-* file"), "{err}");
        // With nothing expected, no output is the right output.
        check_lab_dir(dir.path(), &allowed, &BTreeMap::new()).unwrap();
    }

    #[test]
    fn output_order_is_count_descending_then_bytes_ascending() {
        let want = counts(&[("b", 2), ("a", 1), ("é", 2), ("z", 2), ("c", 1)]);
        assert_eq!(ranked_text(&want), "b 2\nz 2\né 2\na 1\nc 1\n");
    }
}
