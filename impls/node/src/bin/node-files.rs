//! `node-files`: the smallest node with files in its data dir, for the harness's
//! tests of durability (power loss against plain crashes).
//!
//! `{"type":"write","name":N,"value":V}` persists `V` as the file `N` through the
//! runtime (temporary file, fsync, rename, directory fsync) and answers `write_ok`.
//! With `"durable": false` it writes the file in place and syncs nothing, as a
//! careless implementation would; that write is the one piece of I/O a node does
//! itself, which is why this is a test binary. `{"type":"read","name":N}` answers
//! `read_ok` with `value`: what this process wrote to `N`, else what it found in
//! its data dir at start, else `null`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use node::{Body, ErrorCode, Message, Node, Outbox};

struct Files {
    dir: Option<PathBuf>,
    values: BTreeMap<String, String>,
}

/// A plain file name of the data dir, never a temporary or a path elsewhere.
fn valid(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.starts_with('.') && !name.ends_with(".tmp")
}

impl Files {
    fn write(
        &mut self,
        name: String,
        value: String,
        durable: bool,
        out: &mut Outbox,
    ) -> Result<(), String> {
        if durable {
            out.persist(name.clone(), value.clone().into_bytes());
        } else if let Some(dir) = &self.dir {
            std::fs::write(dir.join(&name), &value).map_err(|e| format!("writing {name}: {e}"))?;
        }
        self.values.insert(name, value);
        Ok(())
    }
}

impl Node for Files {
    fn on_message(&mut self, _now: u64, message: Message, out: &mut Outbox) {
        let body = &message.body;
        let Some(name) = body.str("name").filter(|n| valid(n)).map(str::to_string) else {
            out.error(
                &message,
                ErrorCode::MalformedRequest,
                "name: a plain file name",
            );
            return;
        };
        match body.kind.as_str() {
            "read" => {
                let value = self.values.get(&name).cloned();
                out.reply(&message, Body::new("read_ok").with("value", value));
            }
            "write" => {
                let Some(value) = body.str("value").map(str::to_string) else {
                    out.error(&message, ErrorCode::MalformedRequest, "value: a string");
                    return;
                };
                let durable = body
                    .get("durable")
                    .and_then(|d| d.as_bool())
                    .unwrap_or(true);
                match self.write(name, value, durable, out) {
                    Ok(()) => out.reply(&message, Body::new("write_ok")),
                    Err(e) => out.error(&message, ErrorCode::Crash, e),
                }
            }
            _ => out.error(&message, ErrorCode::NotSupported, "only read and write"),
        }
    }
}

fn main() {
    let result = node::run(|_, storage| Files {
        dir: storage.dir().map(PathBuf::from),
        values: storage
            .files()
            .map(|(name, bytes)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(bytes).into_owned(),
                )
            })
            .collect(),
    });
    if let Err(e) = result {
        eprintln!("node-files: {e}");
        std::process::exit(1);
    }
}
