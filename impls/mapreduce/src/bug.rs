//! Known-bad variants, switched on with `MAPREDUCE_BUG=<name>`.
//!
//! They exist only to prove that the conformance suite rejects them
//! (`harness/src/suites/mapreduce/mod.rs`, its `known_bad` table). Every process of a job reads
//! the variable, so a test sets it once for the coordinator and its workers.
//!
//! | name | what goes wrong |
//! |---|---|
//! | `early-reduce` | the coordinator hands out reduce tasks once every map task is handed out, not done; its workers read whatever intermediate files exist |
//! | `never-reassign` | the coordinator never hands a silent worker's task to another |
//! | `in-place` | workers write outputs straight to their final names, line by line, without a temp file and rename |

use anyhow::bail;

pub const ENV: &str = "MAPREDUCE_BUG";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    EarlyReduce,
    NeverReassign,
    InPlace,
}

impl Bug {
    /// The variant named in the environment, if any; an unknown name is an error so a
    /// typo cannot make a "known-bad" test run the correct code.
    pub fn from_env() -> anyhow::Result<Option<Bug>> {
        match std::env::var(ENV) {
            Err(_) => Ok(None),
            Ok(name) => match name.as_str() {
                "" => Ok(None),
                "early-reduce" => Ok(Some(Bug::EarlyReduce)),
                "never-reassign" => Ok(Some(Bug::NeverReassign)),
                "in-place" => Ok(Some(Bug::InPlace)),
                other => bail!(
                    "{ENV}={other:?} is not a known variant (early-reduce, never-reassign, in-place)"
                ),
            },
        }
    }
}
