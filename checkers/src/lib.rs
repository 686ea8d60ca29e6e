//! The suite's oracles: they read what happened and say whether it was allowed.
//!
//! The heart is a linearizability checker in the porcupine class: Wing & Gong's search
//! with Lowe's memoization ([`search`]), over histories ([`history`]) read from
//! Jepsen's, porcupine's or our own format ([`formats`]), split into independent parts
//! and checked in parallel ([`check`](fn@check)), with failures drawn as a self-contained HTML
//! timeline ([`html`]). Models (sequential specifications) come from `specs`; the
//! harness records histories in [`formats::jsonl`] and calls [`check`](fn@check).
//!
//! The batch systems have their own oracle: [`mapreduce`] compares what a MapReduce
//! job left on disk with the sequential reference in `specs`.
//!
//! ```
//! use checkers::{check, CheckOptions, Verdict};
//! use checkers::formats::parse;
//!
//! let log = "INFO  jepsen.util - 0\t:invoke\t:write\t1\n\
//!            INFO  jepsen.util - 0\t:ok\t:write\t1\n\
//!            INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
//!            INFO  jepsen.util - 1\t:ok\t:read\tnil\n";
//! let (_, history) = parse(&specs::CasRegister, log).unwrap();
//! let result = check(&specs::CasRegister, &history, &CheckOptions::default());
//! assert_eq!(result.verdict, Verdict::Illegal); // the read came after the write
//! ```

mod bitset;
mod cache;
pub mod check;
pub mod formats;
pub mod history;
pub mod html;
pub mod mapreduce;
pub mod search;

pub use check::{check, CheckOptions, CheckResult, Failure, Verdict};
pub use history::{History, ModelHistory, Operation, Outcome};
