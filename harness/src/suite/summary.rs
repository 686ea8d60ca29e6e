//! The command line's tables: one row a test, one row a known-bad variant.

use std::fmt::Write;

use super::outcome::Outcome;
use super::runner::KnownBadVerdict;
use super::KnownBad;

/// One row a test: result, operation counts, messages, clock and wall time.
pub fn tests_table(outcomes: &[Outcome]) -> String {
    let width = outcomes
        .iter()
        .map(|o| o.name().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<width$} {:>6} {:>6} {:>6} {:>5} {:>5} {:>9} {:>10} {:>8}",
        "test", "result", "ops", "ok", "fail", "info", "messages", "clock (s)", "wall (s)"
    );
    for o in outcomes {
        let result = if o.passed() { "ok" } else { "FAIL" };
        match &o.stats {
            Some(t) => {
                let _ = writeln!(
                    s,
                    "{:<width$} {:>6} {:>6} {:>6} {:>5} {:>5} {:>9} {:>10.3} {:>8.3}",
                    o.name(),
                    result,
                    t.ops,
                    t.ok,
                    t.fail,
                    t.info,
                    t.messages,
                    t.clock_ns as f64 / 1e9,
                    o.wall.as_secs_f64()
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "{:<width$} {:>6} {:>6} {:>6} {:>5} {:>5} {:>9} {:>10} {:>8.3}",
                    o.name(),
                    result,
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    o.wall.as_secs_f64()
                );
            }
        }
    }
    s
}

/// One row a known-bad variant: which test rejected it, for which property, with
/// which seed.
pub fn known_bad_table(rows: &[(&KnownBad, KnownBadVerdict, Outcome)]) -> String {
    let test_width = rows
        .iter()
        .map(|(k, _, _)| k.test.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<20} {:<test_width$} {:<12} {:<22} {:>20}  what it gets wrong",
        "variant", "test", "verdict", "property", "seed"
    );
    for (known_bad, verdict, outcome) in rows {
        let verdict = match verdict {
            KnownBadVerdict::Rejected => "rejected",
            KnownBadVerdict::WrongReason => "WRONG REASON",
            KnownBadVerdict::Accepted => "ACCEPTED",
        };
        let properties: Vec<&str> = outcome.failures.iter().map(|f| f.property).collect();
        let mut properties = properties;
        properties.dedup();
        let _ = writeln!(
            s,
            "{:<20} {:<test_width$} {:<12} {:<22} {:>20}  {}",
            known_bad.variant,
            known_bad.test,
            verdict,
            if properties.is_empty() {
                "-".to_string()
            } else {
                properties.join(",")
            },
            outcome.seed,
            known_bad.what
        );
    }
    s
}
