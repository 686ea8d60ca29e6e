//! Locating the public histories with known verdicts.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$DSCONF_DATA/linearizability/porcupine`, or `None` (with a note on how to get it)
/// outside CI. In CI a missing directory is a failure, never a skip.
pub fn porcupine_data() -> Option<PathBuf> {
    match std::env::var_os("DSCONF_DATA") {
        Some(dir) => {
            let dir = PathBuf::from(dir).join("linearizability/porcupine");
            assert!(
                dir.join("verdicts.tsv").is_file(),
                "DSCONF_DATA is set but {} has no verdicts.tsv",
                dir.display()
            );
            Some(dir)
        }
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set DSCONF_DATA (see .ci/run)"
            );
            eprintln!(
                "skipped: set DSCONF_DATA to the shared data directory (the one holding \
                 linearizability/porcupine/verdicts.tsv, with porcupine's public test histories)"
            );
            None
        }
    }
}

/// (file, expected linearizable, model) rows of verdicts.tsv.
pub fn verdicts(dir: &std::path::Path) -> Vec<(String, bool, String)> {
    let text = std::fs::read_to_string(dir.join("verdicts.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1] == "true", f[2].to_string())
        })
        .collect()
}
