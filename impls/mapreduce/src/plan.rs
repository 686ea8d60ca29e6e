//! The task lists of a job: which input each map reads and where every file goes.
//!
//! The two front ends differ only here: file names, and whether big files are split.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::protocol::{MapTask, ReduceTask, Split};
use crate::split::line_splits;

/// Names of a job's files.
pub trait Layout {
    fn intermediate(&self, map: usize, reduce: usize) -> PathBuf;
    fn output(&self, reduce: usize) -> PathBuf;
}

/// 6.5840: `mr-X-Y` and `mr-out-Y` in the working directory.
pub struct LabLayout;

impl Layout for LabLayout {
    fn intermediate(&self, map: usize, reduce: usize) -> PathBuf {
        format!("mr-{map}-{reduce}").into()
    }
    fn output(&self, reduce: usize) -> PathBuf {
        format!("mr-out-{reduce}").into()
    }
}

/// The word-count front end: `map.part-M-R.txt` and `reduce.part-R.txt` in the output dir.
pub struct PartLayout(pub PathBuf);

impl Layout for PartLayout {
    fn intermediate(&self, map: usize, reduce: usize) -> PathBuf {
        self.0.join(format!("map.part-{map}-{reduce}.txt"))
    }
    fn output(&self, reduce: usize) -> PathBuf {
        self.0.join(format!("reduce.part-{reduce}.txt"))
    }
}

/// Every map and reduce task: a map task for each group of splits.
pub fn tasks(
    groups: Vec<Vec<Split>>,
    nreduce: usize,
    layout: &dyn Layout,
) -> (Vec<MapTask>, Vec<ReduceTask>) {
    let nmap = groups.len();
    let maps = groups
        .into_iter()
        .enumerate()
        .map(|(id, splits)| MapTask {
            id,
            splits,
            outputs: (0..nreduce).map(|r| layout.intermediate(id, r)).collect(),
        })
        .collect();
    let reduces = (0..nreduce)
        .map(|id| ReduceTask {
            id,
            inputs: (0..nmap).map(|m| layout.intermediate(m, id)).collect(),
            output: layout.output(id),
        })
        .collect();
    (maps, reduces)
}

/// A map task for each split (6.5840: a task for each input file).
pub fn one_a_task(splits: Vec<Split>) -> Vec<Vec<Split>> {
    splits.into_iter().map(|s| vec![s]).collect()
}

/// Splits in their order, packed into map tasks of about `target` bytes: a split
/// goes to the task its middle byte falls in when the input is laid end to end and
/// cut every `target` bytes. An input of `n * target` bytes makes `n` tasks, each
/// within a split of the target (a rule that lets a task run over the target by a
/// share instead can put five of eight equal files in the first of two tasks).
///
/// Every map task costs the same beyond its bytes (word count emits its whole
/// vocabulary, which the reducers read and add up again), so small files are better
/// read together; a split larger than the target (a file the cut left whole) is a
/// task of its own.
pub fn pack(splits: Vec<Split>, target: u64) -> Vec<Vec<Split>> {
    let target = target.max(1);
    let mut groups: Vec<Vec<Split>> = Vec::new();
    // The slot of the last task, while it may take more splits (not a large one's).
    let mut open = None;
    let mut before = 0u64;
    for split in splits {
        let size = split.end - split.start;
        let slot = (before + size / 2) / target;
        let small = size <= target;
        before += size;
        match groups.last_mut() {
            Some(group) if small && open == Some(slot) => group.push(split),
            _ => groups.push(vec![split]),
        }
        open = small.then_some(slot);
    }
    groups
}

/// One split per file, whole (6.5840 counts one map call per input file).
pub fn whole_files(files: &[PathBuf]) -> anyhow::Result<Vec<Split>> {
    files
        .iter()
        .map(|path| {
            let meta = fs::metadata(path).with_context(|| format!("input {}", path.display()))?;
            if !meta.is_file() {
                bail!("input {} is not a regular file", path.display());
            }
            Ok(Split {
                path: path.clone(),
                name: path.to_string_lossy().into_owned(),
                start: 0,
                end: meta.len(),
            })
        })
        .collect()
}

/// An input file and its size in bytes.
pub struct InputFile {
    pub path: PathBuf,
    pub size: u64,
}

/// Every regular file in `dir` (by name, not recursing), with its size.
pub fn directory_files(dir: &Path) -> anyhow::Result<Vec<InputFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)
        .with_context(|| format!("cannot read input directory {}", dir.display()))?
    {
        let path = entry?.path();
        // Follows symlinks: a link to a regular file is an input too.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push(InputFile {
                path,
                size: meta.len(),
            }),
            _ => {}
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// `files` cut into splits of about `split_size` bytes at line boundaries.
pub fn file_splits(files: &[InputFile], split_size: u64) -> anyhow::Result<Vec<Split>> {
    let mut splits = Vec::new();
    for file in files {
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (start, end) in line_splits(&file.path, file.size, split_size)? {
            splits.push(Split {
                path: file.path.clone(),
                name: name.clone(),
                start,
                end,
            });
        }
    }
    Ok(splits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reducer_reads_its_partition_from_every_map() {
        let splits = (0..3)
            .map(|i| Split {
                path: format!("f{i}").into(),
                name: format!("f{i}"),
                start: 0,
                end: 0,
            })
            .collect();
        let (maps, reduces) = tasks(one_a_task(splits), 2, &LabLayout);
        assert_eq!(maps[2].outputs, [PathBuf::from("mr-2-0"), "mr-2-1".into()]);
        assert_eq!(
            reduces[1].inputs,
            [PathBuf::from("mr-0-1"), "mr-1-1".into(), "mr-2-1".into()]
        );
        assert_eq!(reduces[1].output, PathBuf::from("mr-out-1"));
    }

    fn sizes(groups: &[Vec<Split>]) -> Vec<Vec<u64>> {
        groups
            .iter()
            .map(|g| g.iter().map(|s| s.end - s.start).collect())
            .collect()
    }

    fn splits_of(sizes: &[u64]) -> Vec<Split> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Split {
                path: format!("f{i}").into(),
                name: format!("f{i}"),
                start: 7,
                end: 7 + size,
            })
            .collect()
    }

    #[test]
    fn small_splits_are_packed_by_where_their_middle_falls() {
        // Files a few bytes over half the target still go two to a task.
        let groups = pack(splits_of(&[16, 17, 16, 16, 30, 41, 2, 0, 45]), 32);
        assert_eq!(
            sizes(&groups),
            [
                vec![16, 17],
                vec![16, 16],
                vec![30],
                vec![41],
                vec![2, 0],
                vec![45]
            ]
        );
        // In order, each split once.
        let names: Vec<String> = groups.concat().into_iter().map(|s| s.name).collect();
        assert_eq!(names, (0..9).map(|i| format!("f{i}")).collect::<Vec<_>>());
    }

    /// Eight files a few bytes over an eighth of the input, packed for two tasks,
    /// make two tasks of four: the share a task may run over its target does not
    /// take a fifth file into the first.
    #[test]
    fn equal_files_are_shared_out_evenly() {
        let files = [16 << 20 | 5; 8];
        let total: u64 = files.iter().sum();
        for tasks in [1, 2, 4, 8] {
            let groups = pack(splits_of(&files), total / tasks);
            assert_eq!(groups.len() as u64, tasks);
            assert!(
                groups.iter().all(|g| g.len() as u64 == 8 / tasks),
                "{tasks}"
            );
        }
    }

    #[test]
    fn splits_larger_than_the_target_stay_tasks_of_their_own() {
        assert_eq!(
            sizes(&pack(splits_of(&[100, 1, 100]), 10)),
            [vec![100], vec![1], vec![100]]
        );
        // Nor does a small one before it join it, though the large one's middle
        // falls in its task.
        assert_eq!(
            sizes(&pack(splits_of(&[2, 14, 3]), 10)),
            [vec![2], vec![14], vec![3]]
        );
        assert_eq!(sizes(&pack(Vec::new(), 10)), Vec::<Vec<u64>>::new());
    }
}
