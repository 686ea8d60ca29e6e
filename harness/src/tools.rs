//! Real tools the tests use where a user would (chromium, gcc, python3). Present, a
//! tool is used; missing, the test fails saying what to install, unless the user opts
//! out of it by name (`DSCONF_SKIP=chromium,gcc`), and then the skip is announced,
//! never silent.

/// The variable that opts out of tools, comma-separated.
pub const SKIP_VAR: &str = "DSCONF_SKIP";

/// True when `DSCONF_SKIP` names `tool`.
pub fn opted_out(tool: &str) -> bool {
    opted_out_in(&std::env::var(SKIP_VAR).unwrap_or_default(), tool)
}

/// True when the comma-separated `list` names `tool`.
pub fn opted_out_in(list: &str, tool: &str) -> bool {
    list.split(',').any(|t| t.trim() == tool)
}

/// Says on stderr, so that no one misses it, that something was not checked.
pub fn announce_skip(what: &str) {
    eprintln!("\n==== SKIPPED: {what} ====\n");
}

/// True when `program arg` runs and succeeds (`python3 --version`).
pub fn runs(program: &str, arg: &str) -> bool {
    std::process::Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a test may go on without `tool`, given whether it is `present` and the
/// user's opt-out list (`DSCONF_SKIP`'s value): `Ok(true)` to use it, `Ok(false)`
/// (after announcing the skip of `what`) to skip, `Err` with what to install.
pub fn require(
    tool: &str,
    present: bool,
    install: &str,
    opt_outs: &str,
    what: &str,
) -> Result<bool, String> {
    if present {
        return Ok(true);
    }
    if opted_out_in(opt_outs, tool) {
        announce_skip(&format!(
            "{what}: {tool} is not installed and {SKIP_VAR} opts out of it; nothing was checked"
        ));
        return Ok(false);
    }
    Err(format!(
        "{what} need {tool}, which is not installed: {install}, or set {SKIP_VAR}={tool} to \
         skip them"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_fails_unless_named() {
        assert_eq!(require("gcc", true, "x", "", "t"), Ok(true));
        let e = require(
            "gcc",
            false,
            "apt-get install gcc",
            "chromium",
            "the C tests",
        );
        assert!(e.unwrap_err().contains("apt-get install gcc"));
        assert_eq!(require("gcc", false, "x", "chromium, gcc", "t"), Ok(false));
        assert!(!opted_out_in("gccx", "gcc"));
    }
}
