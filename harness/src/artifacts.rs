//! Where a failing run leaves its evidence.

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace's `target` directory (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("harness sits in the workspace root")
            .join("target"),
    }
}

/// `target/harness-runs/<system>/<test>-seed<seed>`, emptied, for one run's files.
pub fn run_dir(system: &str, test: &str, seed: u64) -> PathBuf {
    let name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    target_dir()
        .join("harness-runs")
        .join(system)
        .join(format!("{name}-seed{seed}"))
}

/// Writes `files` (name, contents) and copies `copies` (node logs) into `dir`.
pub fn save(dir: &Path, files: &[(&str, &str)], copies: &[PathBuf]) -> std::io::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    for (name, contents) in files {
        fs::write(dir.join(name), contents)?;
    }
    for path in copies {
        if let Some(name) = path.file_name() {
            if path.exists() {
                fs::copy(path, dir.join(name))?;
            }
        }
    }
    Ok(())
}
