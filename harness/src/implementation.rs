//! Which implementation a conformance test runs.
//!
//! Every system's tests take the command from an environment variable
//! (`WEBSERVER_IMPL`, `DFS_IMPL`, ...) and default to our reference binary. A command
//! from the environment is split like a shell would (`python3 "my server.py"`), so any
//! language works; it is then run with the arguments the system's spec defines.
//!
//! Our binary is always built from the current sources: cargo is asked once per
//! process and binary (a no-op build takes a few hundredths of a second), so an edit
//! to a reference implementation reaches the next test run instead of a stale binary
//! that merely exists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::error::HarnessError;

/// A command to launch: the program, the arguments that come before the ones the test
/// adds, and extra environment (a known-bad variant's switch).
#[derive(Debug, Clone)]
pub struct Implementation {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
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
                let mut i = Implementation::from_command(&cmd)
                    .unwrap_or_else(|e| panic!("{env_var}={cmd:?}: {e}"));
                i.from = format!("{env_var}={cmd}");
                i
            }
            _ => Implementation {
                from: format!("reference binary {bin} (set {env_var} to test another)"),
                ..Implementation::ours(bin)
            },
        }
    }

    /// Our binary `bin`, whatever the environment says (the known-bad variants are
    /// switches of our binary, so tests of the suite itself use it).
    pub fn ours(bin: &str) -> Implementation {
        let program = workspace_binary(bin);
        Implementation {
            program,
            args: Vec::new(),
            env: Vec::new(),
            ours: true,
            from: format!("reference binary {bin}"),
        }
    }

    /// A command given directly (a CLI flag), split like a shell would.
    pub fn from_command(cmd: &str) -> Result<Implementation, HarnessError> {
        let words = shell_words::split(cmd).map_err(|e| HarnessError::BadCommand {
            command: cmd.to_string(),
            reason: e.to_string(),
        })?;
        if words.is_empty() {
            return Err(HarnessError::BadCommand {
                command: cmd.to_string(),
                reason: "the command is empty".into(),
            });
        }
        let mut words = anchored(words, &invocation_dirs());
        let program = PathBuf::from(words.remove(0));
        Ok(Implementation {
            program,
            args: words,
            env: Vec::new(),
            ours: false,
            from: format!("--impl {cmd}"),
        })
    }

    /// The same command with `key=value` in its environment (a known-bad switch).
    pub fn with_env(mut self, key: &str, value: &str) -> Implementation {
        self.env.push((key.to_string(), value.to_string()));
        self.from = format!("{} with {key}={value}", self.from);
        self
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

    /// The program (the first word of the command).
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The command line as a shell would read it (for messages and replay lines).
    pub fn command_line(&self) -> String {
        let mut words = vec![self.program.to_string_lossy().into_owned()];
        words.extend(self.args.iter().cloned());
        shell_words::join(words)
    }

    /// A `Command` ready for the test's own arguments, with the extra environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }
}

/// Where a relative path on a command line is taken from: the directory the user
/// ran the command in first. A test under `cargo nextest` or `cargo test` runs in its
/// package's directory (`harness/`), where `python3 my_raft.py` typed at the
/// workspace's root names nothing, but the shell's `PWD` still says where the user
/// was; the CLI (`cargo run -p harness`) runs where it was started, so both agree.
fn invocation_dirs() -> Vec<PathBuf> {
    let pwd = std::env::var_os("PWD")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir());
    let cwd = std::env::current_dir().ok();
    let mut dirs: Vec<PathBuf> = pwd.into_iter().chain(cwd).collect();
    dirs.dedup();
    dirs
}

/// `words` with the relative paths that name a file from the first of `dirs` that
/// has it made absolute: the program, when it is a path (`./node`, `bin/node`), and
/// any argument that names an existing file (an interpreter's script: `python3
/// node.py`). Nodes and workers run in directories of their own, where a relative
/// path would name nothing. A program that names no file stays relative to the first
/// dir, so the error names where it was looked for; a program named by one word is
/// looked up in `PATH` and stays as it is, as do arguments that name no file
/// (options, a directory).
fn anchored(words: Vec<String>, dirs: &[PathBuf]) -> Vec<String> {
    words
        .into_iter()
        .enumerate()
        .map(|(i, word)| {
            let path = Path::new(&word);
            if path.is_absolute() || (i == 0 && path.components().count() < 2) {
                return word;
            }
            let found = dirs.iter().map(|d| d.join(path)).find(|p| p.is_file());
            let fallback = || {
                (i == 0)
                    .then(|| dirs.first().map(|d| d.join(path)))
                    .flatten()
            };
            match found.or_else(fallback) {
                Some(absolute) => absolute.to_string_lossy().into_owned(),
                None => word,
            }
        })
        .collect()
}

/// The directory cargo puts this process's binaries in (`target/debug` or
/// `target/release`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // Integration tests run from target/<profile>/deps/<test>-<hash>; the CLI and
    // benchmarks from target/<profile>/ or its deps/.
    let dir = exe.parent().expect("an executable has a parent");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness sits in the workspace root")
}

/// Path of our binary `bin`, built from the current sources; panics with cargo's
/// output if it does not build (no test of the system can run then).
pub fn workspace_binary(bin: &str) -> PathBuf {
    build_binary(bin).unwrap_or_else(|e| panic!("{e}"))
}

/// Path of our binary `bin`, built from the current sources.
///
/// The first call for a binary in a process runs `cargo build --bin BIN` in the
/// profile of this process and lets cargo decide whether anything changed. Without a
/// workspace (the harness copied elsewhere) an existing binary beside this one is used.
pub fn build_binary(bin: &str) -> Result<PathBuf, HarnessError> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Held across the build, so concurrent tests of one process build once.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(bin) {
        return Ok(path.clone());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let path = build_with(Path::new(&cargo), workspace_root(), &profile_dir(), bin)?;
    built.insert(bin.to_string(), path.clone());
    Ok(path)
}

/// Asks `cargo` to build `bin` of the workspace at `root` into `dir`, whether or not a
/// binary is already there: only cargo knows whether the sources changed since.
fn build_with(cargo: &Path, root: &Path, dir: &Path, bin: &str) -> Result<PathBuf, HarnessError> {
    let path = dir.join(bin);
    if !root.join("Cargo.toml").exists() {
        return if path.exists() {
            Ok(path)
        } else {
            Err(HarnessError::Build {
                bin: bin.to_string(),
                output: format!(
                    "no workspace at {} to build it in, and no {}",
                    root.display(),
                    path.display()
                ),
            })
        };
    }
    let mut build = Command::new(cargo);
    build.current_dir(root).args(["build", "--bin", bin]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let output = build.output().map_err(|e| HarnessError::Build {
        bin: bin.to_string(),
        output: format!("cannot run {}: {e}", cargo.display()),
    })?;
    if !output.status.success() || !path.exists() {
        return Err(HarnessError::Build {
            bin: bin.to_string(),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A binary that exists is not trusted: cargo is asked every time (once per
    /// process), so an edit to a reference implementation reaches the next run. The
    /// stand-in for cargo records its arguments and writes a new binary.
    #[test]
    fn an_existing_binary_is_rebuilt_through_cargo() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        let out = root.join("target/debug");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(out.join("node"), "stale").unwrap();
        let cargo = dir.path().join("cargo");
        std::fs::write(
            &cargo,
            format!(
                "#!/bin/sh\necho \"$@\" > {log}\necho fresh > {bin}\n",
                log = dir.path().join("args").display(),
                bin = out.join("node").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = build_with(&cargo, &root, &out, "node").unwrap();
        assert_eq!(path, out.join("node"));
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(args.trim(), "build --bin node", "cargo was asked to build");
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), "fresh");
    }

    /// Relative paths that name a file from the first directory that has it are made
    /// absolute, the program's and an interpreter's script alike; other words (a
    /// program looked up in `PATH`, a directory, a file that is not there, an
    /// option) stay.
    #[test]
    fn relative_paths_on_a_command_line_are_anchored() {
        let user = tempfile::tempdir().unwrap();
        let package = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(user.path().join("mr")).unwrap();
        std::fs::write(user.path().join("mr/wc.py"), "").unwrap();
        std::fs::write(package.path().join("Cargo.toml"), "").unwrap();
        let dirs = [user.path().to_path_buf(), package.path().to_path_buf()];
        let line = |command: &str| {
            let words = command.split(' ').map(String::from).collect();
            anchored(words, &dirs).join(" ")
        };
        let (u, p) = (user.path().display(), package.path().display());
        assert_eq!(
            line("python3 mr/wc.py --mode a/b mr"),
            format!("python3 {u}/mr/wc.py --mode a/b mr")
        );
        assert_eq!(line("./mr/wc.py x"), format!("{u}/./mr/wc.py x"));
        assert_eq!(
            line("python3 Cargo.toml"),
            format!("python3 {p}/Cargo.toml")
        );
        assert_eq!(line("bin/missing"), format!("{u}/bin/missing"));
        assert_eq!(line("python3 -u wc.py"), "python3 -u wc.py");
    }

    #[test]
    fn a_failed_build_says_what_cargo_said() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\n").unwrap();
        let cargo = dir.path().join("cargo");
        std::fs::write(
            &cargo,
            "#!/bin/sh\necho 'error: no bin target named x' >&2\nexit 101\n",
        )
        .unwrap();
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = build_with(&cargo, dir.path(), dir.path(), "x").unwrap_err();
        assert!(e.to_string().contains("no bin target named x"), "{e}");
    }
}
