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

/// Every map and reduce task for these splits.
pub fn tasks(
    splits: Vec<Split>,
    nreduce: usize,
    layout: &dyn Layout,
) -> (Vec<MapTask>, Vec<ReduceTask>) {
    let nmap = splits.len();
    let maps = splits
        .into_iter()
        .enumerate()
        .map(|(id, split)| MapTask {
            id,
            split,
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

/// Every regular file in `dir` (by name, not recursing), cut into splits of about
/// `split_size` bytes at line boundaries.
pub fn directory_splits(dir: &Path, split_size: u64) -> anyhow::Result<Vec<Split>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)
        .with_context(|| format!("cannot read input directory {}", dir.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        // Follows symlinks: a link to a regular file is an input too.
        if fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
            files.push(path);
        }
    }
    files.sort();
    let mut splits = Vec::new();
    for path in files {
        let size = fs::metadata(&path)?.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (start, end) in line_splits(&path, size, split_size)? {
            splits.push(Split {
                path: path.clone(),
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
        let (maps, reduces) = tasks(splits, 2, &LabLayout);
        assert_eq!(maps[2].outputs, [PathBuf::from("mr-2-0"), "mr-2-1".into()]);
        assert_eq!(
            reduces[1].inputs,
            [PathBuf::from("mr-0-1"), "mr-1-1".into(), "mr-2-1".into()]
        );
        assert_eq!(reduces[1].output, PathBuf::from("mr-out-1"));
    }
}
