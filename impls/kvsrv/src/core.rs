//! The server's state machine: the store and the duplicate table.

use std::collections::HashMap;

use specs::kv_fetch_append::FetchAppendInput;
use specs::kvsrv_protocol::{cas_refused, no_such_key, RequestId};
use specs::node_protocol::{Body, ErrorCode};

use crate::bug::Bug;

/// A key's value. `generation` changes whenever the value is replaced (write, cas)
/// rather than extended (append), so "the first `len` bytes of generation `g`" names
/// any value an append ever returned without copying it.
#[derive(Debug, Default)]
struct Entry {
    value: String,
    generation: u64,
    /// Remembered append answers that point into this generation.
    refs: u32,
}

/// A replaced value that remembered append answers still point into. It lives only
/// until those clients send their next request.
#[derive(Debug)]
struct Retired {
    value: String,
    refs: u32,
}

/// The answer a client's last request got, small enough to keep for every client.
#[derive(Debug)]
enum Answer {
    Write,
    Cas(Result<(), ErrorCode>),
    /// An append's old value: absent, or a prefix of a (possibly retired) generation.
    Append(Option<Prefix>),
    /// Only with [`Bug::CopyReplies`]: the old value copied.
    AppendCopy(Option<String>),
    /// Reads are re-executed on a retry; nothing to keep.
    Read,
}

#[derive(Debug)]
struct Prefix {
    key: String,
    generation: u64,
    len: usize,
}

#[derive(Debug)]
struct Last {
    seq: u64,
    answer: Answer,
}

/// The key/value server.
#[derive(Debug, Default)]
pub struct KvServer {
    store: HashMap<String, Entry>,
    retired: HashMap<(String, u64), Retired>,
    clients: HashMap<u64, Last>,
    next_generation: u64,
    bug: Option<Bug>,
    /// The stale copy reads come from under [`Bug::StaleRead`].
    stale: HashMap<String, String>,
    writes_since_copy: u32,
}

impl KvServer {
    pub fn new(bug: Option<Bug>) -> KvServer {
        KvServer {
            bug,
            ..KvServer::default()
        }
    }

    /// Handles one request; `None` means "send nothing" (a stale duplicate whose client
    /// has already moved on).
    pub fn handle(&mut self, input: &FetchAppendInput, id: Option<RequestId>) -> Option<Body> {
        let Some(id) = id else {
            let answer = self.execute(input);
            return Some(self.render(input, &answer));
        };
        let retry_applies = matches!(
            (self.bug, input),
            (Some(Bug::DoubleAppend), FetchAppendInput::Append { .. })
        );
        match self.clients.get(&id.client) {
            Some(last) if id.seq < last.seq => return None,
            Some(last) if id.seq == last.seq && !retry_applies => {
                if matches!(last.answer, Answer::Read) {
                    let answer = self.execute(input);
                    return Some(self.render(input, &answer));
                }
                return Some(self.render(input, &last.answer));
            }
            _ => {}
        }
        // A higher seq acknowledges the previous answer, which can now be forgotten.
        if let Some(old) = self.clients.remove(&id.client) {
            self.release(old.answer);
        }
        let answer = self.execute(input);
        let body = self.render(input, &answer);
        self.clients.insert(
            id.client,
            Last {
                seq: id.seq,
                answer,
            },
        );
        Some(body)
    }

    /// Number of clients in the duplicate table (for tests of its bound).
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    fn execute(&mut self, input: &FetchAppendInput) -> Answer {
        match input {
            FetchAppendInput::Get { .. } => Answer::Read,
            FetchAppendInput::Put { key, value } => {
                self.replace(key, value.clone());
                Answer::Write
            }
            FetchAppendInput::Cas { key, from, to } => {
                let result = match self.store.get(key) {
                    None => Err(ErrorCode::KeyDoesNotExist),
                    Some(entry) if entry.value != *from => Err(ErrorCode::PreconditionFailed),
                    Some(_) => Ok(()),
                };
                if result.is_ok() {
                    self.replace(key, to.clone());
                }
                Answer::Cas(result)
            }
            FetchAppendInput::Append { key, value } => {
                self.note_write();
                let copy = self.bug == Some(Bug::CopyReplies);
                match self.store.get_mut(key) {
                    None => {
                        self.next_generation += 1;
                        self.store.insert(
                            key.clone(),
                            Entry {
                                value: value.clone(),
                                generation: self.next_generation,
                                refs: 0,
                            },
                        );
                        if copy {
                            Answer::AppendCopy(None)
                        } else {
                            Answer::Append(None)
                        }
                    }
                    Some(entry) if copy => {
                        let old = entry.value.clone();
                        entry.value.push_str(value);
                        Answer::AppendCopy(Some(old))
                    }
                    Some(entry) => {
                        let len = entry.value.len();
                        entry.value.push_str(value);
                        entry.refs += 1;
                        Answer::Append(Some(Prefix {
                            key: key.clone(),
                            generation: entry.generation,
                            len,
                        }))
                    }
                }
            }
        }
    }

    /// Sets `key` to a new generation; the old value is kept aside only while
    /// remembered answers point into it.
    fn replace(&mut self, key: &str, value: String) {
        self.note_write();
        self.next_generation += 1;
        let new = Entry {
            value,
            generation: self.next_generation,
            refs: 0,
        };
        if let Some(old) = self.store.insert(key.to_string(), new) {
            if old.refs > 0 {
                self.retired.insert(
                    (key.to_string(), old.generation),
                    Retired {
                        value: old.value,
                        refs: old.refs,
                    },
                );
            }
        }
    }

    fn note_write(&mut self) {
        if self.bug == Some(Bug::StaleRead) {
            self.writes_since_copy += 1;
            if self.writes_since_copy >= 4 {
                self.writes_since_copy = 0;
                self.stale = self
                    .store
                    .iter()
                    .map(|(k, e)| (k.clone(), e.value.clone()))
                    .collect();
            }
        }
    }

    fn release(&mut self, answer: Answer) {
        let Answer::Append(Some(prefix)) = answer else {
            return;
        };
        if let Some(entry) = self.store.get_mut(&prefix.key) {
            if entry.generation == prefix.generation {
                entry.refs -= 1;
                return;
            }
        }
        let slot = (prefix.key, prefix.generation);
        if let Some(retired) = self.retired.get_mut(&slot) {
            retired.refs -= 1;
            if retired.refs == 0 {
                self.retired.remove(&slot);
            }
        }
    }

    fn prefix(&self, prefix: &Prefix) -> &str {
        let value = match self.store.get(&prefix.key) {
            Some(entry) if entry.generation == prefix.generation => &entry.value,
            _ => &self.retired[&(prefix.key.clone(), prefix.generation)].value,
        };
        &value[..prefix.len]
    }

    fn render(&self, input: &FetchAppendInput, answer: &Answer) -> Body {
        match answer {
            Answer::Read => {
                let key = input.key();
                let value = if self.bug == Some(Bug::StaleRead) {
                    self.stale.get(key)
                } else {
                    self.store.get(key).map(|e| &e.value)
                };
                match value {
                    Some(v) => Body::new("read_ok").with("value", v.as_str()),
                    None => no_such_key(key),
                }
            }
            Answer::Write => Body::new("write_ok"),
            Answer::Cas(Ok(())) => Body::new("cas_ok"),
            Answer::Cas(Err(code)) => cas_refused(*code),
            Answer::Append(old) => Body::new("append_ok")
                .with("value", old.as_ref().map(|p| self.prefix(p).to_string())),
            Answer::AppendCopy(old) => Body::new("append_ok").with("value", old.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use specs::kvsrv_protocol::{reply_outcome, ReplyOutcome};

    fn append(key: &str, value: &str) -> FetchAppendInput {
        FetchAppendInput::Append {
            key: key.into(),
            value: value.into(),
        }
    }

    fn put(key: &str, value: &str) -> FetchAppendInput {
        FetchAppendInput::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    fn get(key: &str) -> FetchAppendInput {
        FetchAppendInput::Get { key: key.into() }
    }

    fn value_of(server: &mut KvServer, input: &FetchAppendInput, id: RequestId) -> Option<String> {
        let body = server.handle(input, Some(id)).expect("an answer");
        match reply_outcome(input, &body) {
            ReplyOutcome::Ok(out) => out.value,
            other => panic!("{other:?}"),
        }
    }

    fn id(client: u64, seq: u64) -> RequestId {
        RequestId { client, seq }
    }

    #[test]
    fn a_retried_append_takes_effect_once_and_gets_the_first_answer() {
        let mut s = KvServer::new(None);
        assert_eq!(value_of(&mut s, &append("k", "a"), id(1, 1)), None);
        assert_eq!(
            value_of(&mut s, &append("k", "b"), id(1, 2)),
            Some("a".into())
        );
        assert_eq!(
            value_of(&mut s, &append("k", "b"), id(1, 2)),
            Some("a".into())
        );
        assert_eq!(value_of(&mut s, &get("k"), id(1, 3)), Some("ab".into()));
        // A stale copy of seq 2 arriving after seq 3 is ignored.
        assert!(s.handle(&append("k", "b"), Some(id(1, 2))).is_none());
        assert_eq!(value_of(&mut s, &get("k"), id(2, 1)), Some("ab".into()));
    }

    #[test]
    fn an_answer_into_a_replaced_value_survives_until_acknowledged() {
        let mut s = KvServer::new(None);
        value_of(&mut s, &put("k", "old"), id(1, 1));
        assert_eq!(
            value_of(&mut s, &append("k", "+"), id(2, 1)),
            Some("old".into())
        );
        value_of(&mut s, &put("k", "new"), id(1, 2));
        assert_eq!(s.retired.len(), 1);
        // The retry after the overwrite still gets the original answer.
        assert_eq!(
            value_of(&mut s, &append("k", "+"), id(2, 1)),
            Some("old".into())
        );
        assert_eq!(value_of(&mut s, &get("k"), id(2, 2)), Some("new".into()));
        assert!(
            s.retired.is_empty(),
            "acknowledged answers free retired values"
        );
        assert_eq!(s.store["k"].refs, 0);
    }

    #[test]
    fn the_double_append_bug_applies_retries_again() {
        let mut s = KvServer::new(Some(Bug::DoubleAppend));
        value_of(&mut s, &append("k", "a"), id(1, 1));
        value_of(&mut s, &append("k", "a"), id(1, 1));
        assert_eq!(value_of(&mut s, &get("k"), id(1, 2)), Some("aa".into()));
    }

    #[test]
    fn cas_and_missing_keys_use_maelstrom_errors() {
        let mut s = KvServer::new(None);
        let cas = FetchAppendInput::Cas {
            key: "k".into(),
            from: "a".into(),
            to: "b".into(),
        };
        let body = s.handle(&cas, None).unwrap();
        assert_eq!(body.error_code(), Some(ErrorCode::KeyDoesNotExist));
        s.handle(&put("k", "x"), None);
        let body = s.handle(&cas, None).unwrap();
        assert_eq!(body.error_code(), Some(ErrorCode::PreconditionFailed));
        s.handle(&put("k", "a"), None);
        assert_eq!(s.handle(&cas, None).unwrap().kind, "cas_ok");
        assert_eq!(s.handle(&get("k"), None).unwrap().str("value"), Some("b"));
        let body = s.handle(&get("nope"), None).unwrap();
        assert_eq!(body.error_code(), Some(ErrorCode::KeyDoesNotExist));
    }
}
