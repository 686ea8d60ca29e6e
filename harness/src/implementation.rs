//! Which implementation a conformance test runs.
//!
//! Every system's tests take the command from an environment variable
//! (`WEBSERVER_IMPL`, `DFS_IMPL`, ...) and default to our reference binary. A command
//! from the environment is split like a shell would (`python3 "my server.py"`), so any
//! language works; it is then run with the arguments the system's spec defines.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A command to launch: the program and the arguments that come before the ones the
/// test adds.
#[derive(Debug, Clone)]
pub struct Implementation {
    program: PathBuf,
    args: Vec<String>,
    ours: bool,
    from: String,
}

impl Implementation {
    /// The command in `env_var` if set, else our binary `bin` of this workspace.
    ///
    /// Panics with a clear message if the variable does not parse or our binary cannot
    /// be built, since no test of the system can run then.
    pub fn from_env(env_var: &str, bin: &str) -> Implementation {
        match std::env::var(env_var) {
            Ok(cmd) if !cmd.trim().is_empty() => {
                let mut words = shell_words::split(&cmd)
                    .unwrap_or_else(|e| panic!("{env_var}={cmd:?} is not a valid command: {e}"));
                let program = PathBuf::from(words.remove(0));
                Implementation {
                    program,
                    args: words,
                    ours: false,
                    from: format!("{env_var}={cmd}"),
                }
            }
            _ => Implementation {
                program: workspace_binary(bin),
                args: Vec::new(),
                ours: true,
                from: format!("reference binary {bin} (set {env_var} to test another)"),
            },
        }
    }

    /// Our binary `bin`, whatever the environment says (the known-bad variants are
    /// switches of our binary, so tests of the suite itself use it).
    pub fn ours(bin: &str) -> Implementation {
        Implementation {
            program: workspace_binary(bin),
            args: Vec::new(),
            ours: true,
            from: format!("reference binary {bin}"),
        }
    }

    /// A command given directly (a CLI flag), split like a shell would.
    pub fn from_command(cmd: &str) -> Result<Implementation, String> {
        let mut words =
            shell_words::split(cmd).map_err(|e| format!("{cmd:?} is not a valid command: {e}"))?;
        if words.is_empty() {
            return Err("the implementation command is empty".into());
        }
        let program = PathBuf::from(words.remove(0));
        Ok(Implementation {
            program,
            args: words,
            ours: false,
            from: format!("--impl {cmd}"),
        })
    }

    /// True when this is our reference implementation, so tests that rely on our own
    /// extras (known-bad variant flags, say) know whether they apply.
    pub fn is_ours(&self) -> bool {
        self.ours
    }

    /// Where the command came from, for messages.
    pub fn describe(&self) -> &str {
        &self.from
    }

    /// A `Command` ready for the test's own arguments.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command
    }
}

/// The directory cargo puts this test's binaries in (`target/debug` or `target/release`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // Integration tests run from target/<profile>/deps/<test>-<hash>.
    let deps = exe.parent().expect("test exe has a parent");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness sits in the workspace root")
}

/// Path of a binary of this workspace, building it if `cargo nextest run -p harness`
/// left it unbuilt (a whole-workspace run builds every binary first).
pub fn workspace_binary(bin: &str) -> PathBuf {
    let dir = profile_dir();
    let path = dir.join(bin);
    if path.exists() {
        return path;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace_root())
        .args(["build", "--bin", bin]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    assert!(
        status.success() && path.exists(),
        "building {bin} failed; try `cargo build --workspace --bins`"
    );
    path
}
