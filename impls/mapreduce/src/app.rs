//! Applications: the map and reduce functions a job runs.
//!
//! Built-ins are chosen by name (`mrworker wc`); an external application is any pair
//! of executables speaking Hadoop Streaming's line protocol (see [`crate::apps::external`]).

use std::borrow::Cow;
use std::path::Path;

use anyhow::bail;

use crate::apps;

/// A MapReduce application.
///
/// `map` sees one input split (a whole file in the 6.5840 front end) and emits
/// key/value pairs; the framework partitions them by key, sorts each partition by key
/// and hands `reduce_all` the pairs of one partition in key order.
pub trait App: Send + Sync {
    fn map(
        &self,
        name: &str,
        contents: &[u8],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()>;

    /// Maps a task's pieces of input, each with its name, in order. The default maps
    /// each piece on its own; an application that combines what it emits (word
    /// count) overrides it to combine across the pieces.
    fn map_pieces(
        &self,
        pieces: &[(&str, &[u8])],
        emit: &mut dyn FnMut(&str, &str),
    ) -> anyhow::Result<()> {
        for (name, contents) in pieces {
            self.map(name, contents, emit)?;
        }
        Ok(())
    }

    /// One output value for a key and all its values (in map-task order).
    fn reduce(&self, key: &str, values: &[&str]) -> anyhow::Result<String>;

    /// Reduces a whole partition straight from its intermediate files (each one's path
    /// and text, in map-task order), emitting output pairs in ascending key order, for
    /// an application that can do better than having every pair grouped first.
    /// `None`, the default, has the framework group the pairs and call
    /// [`App::reduce_all`].
    fn reduce_texts(
        &self,
        _texts: &[(&Path, &str)],
        _emit: &mut dyn FnMut(&str, &str) -> anyhow::Result<()>,
    ) -> Option<anyhow::Result<()>> {
        None
    }

    /// Reduces a whole partition, given as its keys in ascending order each with its
    /// values, emitting output pairs. The default calls [`App::reduce`] once per key.
    fn reduce_all(
        &self,
        groups: &[Group<'_>],
        emit: &mut dyn FnMut(&str, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut values: Vec<&str> = Vec::new();
        for group in groups {
            values.clear();
            values.extend(group.values.iter().map(|v| v.as_ref()));
            let out = self.reduce(&group.key, &values)?;
            emit(&group.key, &out)?;
        }
        Ok(())
    }
}

/// One key of a reduce partition and all its values, in map-task order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    pub key: Cow<'a, str>,
    pub values: Vec<Cow<'a, str>>,
}

/// The built-in application called `name`; `wc.so` and `path/to/wc.so` name `wc` too,
/// so 6.5840's command lines work unchanged.
pub fn builtin(name: &str) -> anyhow::Result<Box<dyn App>> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.strip_suffix(".so").unwrap_or(base);
    Ok(match base {
        "wc" => Box::new(apps::wordcount::WordCount),
        "indexer" => Box::new(apps::indexer::Indexer),
        "mtiming" => Box::new(apps::lab::MapTiming),
        "rtiming" => Box::new(apps::lab::ReduceTiming),
        "jobcount" => Box::new(apps::lab::JobCount::default()),
        "early_exit" => Box::new(apps::lab::EarlyExit),
        "crash" => Box::new(apps::lab::Crash::new(true)),
        "nocrash" => Box::new(apps::lab::Crash::new(false)),
        "barrier" => Box::new(apps::probes::Barrier),
        "slow" => Box::new(apps::probes::Slow),
        _ => bail!(
            "unknown application {name:?}; built-ins are wc, indexer, mtiming, rtiming, \
             jobcount, early_exit, crash, nocrash, barrier, slow \
             (or use --map CMD --reduce CMD for an external one)"
        ),
    })
}
