//! Reading histories: Jepsen's etcd logs, porcupine's kv logs, and our JSON lines.
//!
//! Every format is read into the same event stream, with inputs and outputs as JSON
//! values in the shape of the model's serde types; `Events` then turns them into the
//! model's types. So a format knows nothing of models, and a model knows nothing of
//! formats: any model can be checked against any file whose operations it understands.

pub mod edn_kv;
pub mod jepsen;
pub mod jsonl;

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use specs::Model;

use crate::history::{History, HistoryBuilder, Outcome};

/// The formats [`parse`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Jepsen's log lines (`INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]`).
    Jepsen,
    /// porcupine's kv logs (`{:process 0, :type :invoke, :f :get, :key "1", :value nil}`).
    EdnKv,
    /// Our JSON lines (see [`jsonl`]).
    JsonLines,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Jepsen => "Jepsen log",
            Format::EdnKv => "EDN kv log",
            Format::JsonLines => "JSON lines",
        })
    }
}

/// A history that cannot be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

/// The non-blank lines of a history with their 0-based index: every format skips
/// blank lines, numbers errors from 1 and uses the index as the default time.
pub(crate) fn records(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Recognises a history's format from its first non-blank line; `None` for an empty
/// file (which is the empty history in any format).
pub fn detect(text: &str) -> Result<Option<Format>, ParseError> {
    let Some((index, line)) = records(text).next() else {
        return Ok(None);
    };
    let line = line.trim_start();
    if let Some(rest) = line.strip_prefix('{') {
        match rest.trim_start().chars().next() {
            Some('"') | Some('}') => return Ok(Some(Format::JsonLines)),
            Some(':') => return Ok(Some(Format::EdnKv)),
            _ => {}
        }
    }
    if jepsen::looks_like(line) {
        return Ok(Some(Format::Jepsen));
    }
    Err(ParseError::new(
        index + 1,
        "unrecognised history format: expected JSON lines ({\"type\":\"call\",...}), \
         an EDN kv log ({:process 0, :type :invoke, ...}) or a Jepsen log (... jepsen.util - 0\t:invoke\t:read\tnil)",
    ))
}

/// A model's history, and the format it was read from (`None`: empty).
pub type Parsed<M> = (
    Option<Format>,
    History<<M as Model>::Input, <M as Model>::Output>,
);

/// Reads a history in any recognised format.
pub fn parse<M: Model>(model: &M, text: &str) -> Result<Parsed<M>, ParseError> {
    let format = detect(text)?;
    let history = match format {
        None => History::default(),
        Some(Format::Jepsen) => jepsen::parse(model, text)?,
        Some(Format::EdnKv) => edn_kv::parse(model, text)?,
        Some(Format::JsonLines) => jsonl::parse(model, text)?,
    };
    Ok((format, history))
}

/// How an event says an operation ended, before conversion to the model's types.
pub(crate) enum RawOutcome {
    Ok(Value),
    Failed,
    Unknown,
}

/// Converts format-neutral events into a model's history, with line numbers on errors.
pub(crate) struct Events<'m, M: Model> {
    model: &'m M,
    builder: HistoryBuilder<M::Input, M::Output>,
    /// For formats that identify calls by process: the open call of each process.
    open_by_process: HashMap<u64, u64>,
    next_id: u64,
}

impl<'m, M: Model> Events<'m, M> {
    pub(crate) fn new(model: &'m M) -> Self {
        Events {
            model,
            builder: HistoryBuilder::new(),
            open_by_process: HashMap::new(),
            next_id: 0,
        }
    }

    pub(crate) fn call(
        &mut self,
        line: usize,
        id: u64,
        client: u64,
        input: Value,
        time: u64,
    ) -> Result<(), ParseError> {
        // From a reference: the value stays whole for the message, and is not copied.
        let input = M::Input::deserialize(&input).map_err(|e| {
            ParseError::new(
                line,
                format!("model {} cannot take input {input}: {e}", self.model.name()),
            )
        })?;
        self.builder
            .call(id, client, input, time)
            .map_err(|e| ParseError::new(line, e.to_string()))
    }

    pub(crate) fn ret(
        &mut self,
        line: usize,
        id: u64,
        outcome: RawOutcome,
        time: u64,
    ) -> Result<(), ParseError> {
        let outcome = match outcome {
            RawOutcome::Failed => Outcome::Failed,
            RawOutcome::Unknown => Outcome::Unknown,
            RawOutcome::Ok(value) => {
                let output = M::Output::deserialize(&value).map_err(|e| {
                    ParseError::new(
                        line,
                        format!(
                            "model {} cannot take output {value}: {e}",
                            self.model.name()
                        ),
                    )
                })?;
                if let Some(input) = self.builder.pending_input(id) {
                    self.model
                        .validate(input, &output)
                        .map_err(|e| ParseError::new(line, e))?;
                }
                Outcome::Ok(output)
            }
        };
        self.builder
            .ret(id, outcome, time)
            .map_err(|e| ParseError::new(line, e.to_string()))
    }

    /// A call by `process`, which must have no call open (Jepsen's rule).
    pub(crate) fn process_call(
        &mut self,
        line: usize,
        process: u64,
        input: Value,
        time: u64,
    ) -> Result<(), ParseError> {
        if self.open_by_process.contains_key(&process) {
            return Err(ParseError::new(
                line,
                format!("process {process} invokes while its previous operation is still open"),
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.open_by_process.insert(process, id);
        self.call(line, id, process, input, time)
    }

    /// The completion of `process`'s open call.
    pub(crate) fn process_return(
        &mut self,
        line: usize,
        process: u64,
        outcome: RawOutcome,
        time: u64,
    ) -> Result<(), ParseError> {
        let id = self.open_by_process.remove(&process).ok_or_else(|| {
            ParseError::new(
                line,
                format!("process {process} completes an operation it never invoked"),
            )
        })?;
        self.ret(line, id, outcome, time)
    }

    pub(crate) fn annotate(&mut self, time: u64, text: String) {
        self.builder.annotate(time, text);
    }

    pub(crate) fn finish(self) -> History<M::Input, M::Output> {
        self.builder.finish()
    }
}
