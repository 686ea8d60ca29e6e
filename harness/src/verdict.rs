//! Judging a recorded history with the linearizability checker.

use std::time::Duration;

use checkers::{check, CheckOptions, Verdict};
use specs::Model;

/// The checker's answer about one history, with what a person needs to see.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    /// One paragraph: the verdict and, when Illegal, the operation that cannot be
    /// linearized.
    pub summary: String,
    /// The self-contained HTML timeline, drawn only when asked for (it is the slow
    /// part for histories with large values).
    pub html: Option<String>,
}

impl Judgement {
    /// Only Ok passes: Unknown (the checker ran out of time) is never a silent pass.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Ok
    }
}

/// Parses `history` (JSON lines) and checks it against `model` within `timeout`;
/// draws the timeline (titled `title`) when `timeline` is true.
pub fn judge<M: Model>(
    model: &M,
    history: &str,
    timeout: Duration,
    title: &str,
    timeline: bool,
) -> Judgement {
    let parsed = match checkers::formats::jsonl::parse(model, history) {
        Ok(h) => h,
        Err(e) => {
            return Judgement {
                verdict: Verdict::Unknown,
                summary: format!("the recorded history does not parse: {e}"),
                html: None,
            }
        }
    };
    // One thread: with several illegal parts, parallel workers race to report one,
    // and a replayed seed must name the same operation.
    let options = CheckOptions {
        timeout: Some(timeout),
        partition: true,
        threads: Some(1),
    };
    let result = check(model, &parsed, &options);
    // No durations here: a replayed run must produce the same words.
    let mut summary = format!(
        "{}: {} operations in {} part(s)",
        result.verdict,
        parsed.operations.len(),
        result.parts,
    );
    if let Some(failure) = &result.failure {
        let op = &parsed.operations[failure.stuck];
        let state = failure
            .states
            .last()
            .map(|s| model.describe_state(s))
            .unwrap_or_default();
        summary.push_str(&format!(
            "; first operation that cannot be linearized: client {} {} (called at {} ns), \
             after {} operations of its part, in state {}",
            op.client,
            model.describe_operation(&op.input, op.output()),
            op.call,
            failure.prefix.len(),
            state
        ));
    }
    if result.verdict == Verdict::Unknown {
        summary.push_str(&format!(
            "; the checker gave up after {timeout:?}, which fails the test"
        ));
    }
    let html = timeline.then(|| checkers::html::render(model, &parsed, &result, title));
    Judgement {
        verdict: result.verdict,
        summary,
        html,
    }
}
