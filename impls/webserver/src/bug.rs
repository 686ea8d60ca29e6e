//! Known-bad variants, switched on by `WEBSERVER_BUG=<name>[,<name>...]`, so the
//! conformance suite can show that it rejects each of them. Undocumented in `--help`
//! on purpose: they exist only to prove the tests bite.

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Bugs {
    /// A new thread for every request instead of the fixed pool and bounded buffer.
    pub thread_per_request: bool,
    /// Workers poll the buffer in a loop instead of waiting on a condition variable.
    pub busy_wait: bool,
    /// `-s SFF` is accepted but requests are served in arrival order.
    pub ignore_sff: bool,
    /// Paths are joined to the root without any check, so `..` escapes it.
    pub follow_dotdot: bool,
}

pub const NAMES: [&str; 4] = [
    "thread-per-request",
    "busy-wait",
    "ignore-sff",
    "follow-dotdot",
];

impl Bugs {
    pub fn parse(spec: &str) -> Result<Bugs, String> {
        let mut bugs = Bugs::default();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "thread-per-request" => bugs.thread_per_request = true,
                "busy-wait" => bugs.busy_wait = true,
                "ignore-sff" => bugs.ignore_sff = true,
                "follow-dotdot" => bugs.follow_dotdot = true,
                other => {
                    return Err(format!(
                        "WEBSERVER_BUG: unknown variant {other:?} (known: {})",
                        NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(bugs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_unknown() {
        let b = Bugs::parse("busy-wait, follow-dotdot").unwrap();
        assert!(b.busy_wait && b.follow_dotdot && !b.ignore_sff);
        assert_eq!(Bugs::parse("").unwrap(), Bugs::default());
        assert!(Bugs::parse("nope").unwrap_err().contains("nope"));
    }
}
