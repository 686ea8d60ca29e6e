//! External applications: a map and a reduce executable, Hadoop Streaming style.
//!
//! - The map command gets the split's bytes on stdin and writes `key<TAB>value` lines
//!   on stdout. `MAPREDUCE_MAP_INPUT_FILE` holds the input's name.
//! - The reduce command gets its partition's `key<TAB>value` lines on stdin, sorted by
//!   key, and writes `key<TAB>value` output lines.
//! - A line without a tab is a key with an empty value; a non-zero exit fails the task
//!   (it is then handed out again).
//!
//! So `cat input | map | sort | reduce` computes the same result on one machine, and
//! the same executables run unchanged under Hadoop Streaming.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::app::{App, Group};

pub struct External {
    map: Vec<String>,
    reduce: Vec<String>,
}

impl External {
    /// Each command is split at whitespace (`"python3 map.py"`); no shell quoting.
    pub fn new(map: &str, reduce: &str) -> anyhow::Result<External> {
        let split = |cmd: &str| -> anyhow::Result<Vec<String>> {
            let words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                bail!("empty command");
            }
            Ok(words)
        };
        Ok(External {
            map: split(map).context("--map")?,
            reduce: split(reduce).context("--reduce")?,
        })
    }
}

/// Runs `argv` with `input` on stdin, calling `line` for every stdout line.
fn pipe(
    argv: &[String],
    envs: &[(&str, &str)],
    input: Vec<u8>,
    mut line: impl FnMut(&str, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {:?}", argv.join(" ")))?;
    let mut stdin = child.stdin.take().expect("piped");
    // A separate writer, so a command that writes before it has read everything
    // cannot deadlock against us.
    let writer = std::thread::spawn(move || {
        // A command may exit without reading all its input; that is its business.
        let _ = stdin.write_all(&input);
    });
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for l in stdout.lines() {
        let l = l.context("output is not UTF-8")?;
        let (k, v) = l.split_once('\t').unwrap_or((&l, ""));
        line(k, v)?;
    }
    let _ = writer.join();
    let status = child.wait()?;
    if !status.success() {
        bail!("{:?} failed: {status}", argv.join(" "));
    }
    Ok(())
}

impl App for External {
    fn map(
        &self,
        name: &str,
        contents: &[u8],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()> {
        pipe(
            &self.map,
            &[("MAPREDUCE_MAP_INPUT_FILE", name)],
            contents.to_vec(),
            |k, v| {
                emit(k, v);
                Ok(())
            },
        )
    }

    fn reduce(&self, _: &str, _: &[&str]) -> anyhow::Result<String> {
        bail!("an external reducer reduces whole partitions")
    }

    fn reduce_all(
        &self,
        groups: &[Group<'_>],
        emit: &mut dyn FnMut(&str, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut input = Vec::new();
        for group in groups {
            for v in &group.values {
                for part in [group.key.as_ref(), "\t", v.as_ref(), "\n"] {
                    input.extend_from_slice(part.as_bytes());
                }
            }
        }
        pipe(&self.reduce, &[], input, emit)
    }
}
