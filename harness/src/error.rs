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
    /// A node of a cluster that could not be started or initialised.
    #[error("{node} could not be started: {reason}")]
    NodeStart { node: String, reason: String },
    /// A node name the cluster does not have.
    #[error("no node {0:?}")]
    NoNode(String),
    /// A node that is not running when something needs its process.
    #[error("{0} is not running")]
    NotRunning(String),
    /// A fault that cannot be applied as asked.
    #[error("{0}")]
    Fault(String),
    /// The power-loss filesystem could not be mounted.
    #[error("cannot mount the power-loss filesystem on {path}: {reason}")]
    Mount { path: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
