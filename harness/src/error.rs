//! The harness's own errors: what went wrong before an implementation could be judged.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HarnessError {
    /// An implementation command (`--impl`, `<SYSTEM>_IMPL`) that cannot be run.
    #[error("{command:?} is not a usable command: {reason}")]
    BadCommand { command: String, reason: String },
    /// Our reference binary could not be built from the current sources.
    #[error("building {bin} failed (try `cargo build --workspace --bins`):\n{output}")]
    Build { bin: String, output: String },
    /// A suite, test or known-bad variant that does not exist.
    #[error("{0}")]
    Unknown(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
