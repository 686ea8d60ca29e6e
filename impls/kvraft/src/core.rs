//! The service's state machine, with no Raft and no IO: what a committed command
//! does to the store and the duplicate table, what a client is answered, what a
//! snapshot holds, when to take one, and which waiting requests to answer how.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use specs::kv_fetch_append::FetchAppendInput;
use specs::kvsrv_protocol::{cas_refused, no_such_key, RequestId};
use specs::node_protocol::{Body, ErrorCode};

/// How long a proposed request waits for its entry to be applied before it is
/// answered with an indefinite error (2 s): long enough for a few elections, short
/// enough that a leader cut off in a minority does not keep its clients forever.
pub const PENDING_TIMEOUT: u64 = 2_000_000_000;

/// The raft state size (bytes of term, vote and log on disk) at which a node
/// snapshots when `KVRAFT_MAXRAFTSTATE` is not set: 1 MiB.
pub const DEFAULT_MAX_RAFT_STATE: usize = 1 << 20;

/// Who sent a request, as it travels in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSeq {
    pub client: u64,
    pub seq: u64,
}

impl From<RequestId> for ClientSeq {
    fn from(id: RequestId) -> ClientSeq {
        ClientSeq {
            client: id.client,
            seq: id.seq,
        }
    }
}

/// A log entry's command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// What a new leader appends so that entries of earlier terms commit (Raft commits
    /// only by counting entries of the current term) and reads do not wait for the
    /// next write.
    Noop,
    Op {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<ClientSeq>,
        op: FetchAppendInput,
    },
}

impl Command {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("commands serialise")
    }

    pub fn from_value(value: &Value) -> Result<Command, String> {
        serde_json::from_value(value.clone()).map_err(|e| format!("bad command {value}: {e}"))
    }
}

/// The answer a client's last request got, kept so a retry gets it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Answer {
    /// Reads change nothing: a retry is executed again, at its own log position
    /// (which is inside the retried operation's interval).
    Read,
    Write,
    /// `None` when it swapped, else the error code.
    Cas {
        code: Option<u64>,
    },
    Append {
        old: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Last {
    seq: u64,
    answer: Answer,
}

/// What applying a command gives the client that sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The reply (the first answer again, for a duplicate).
    Reply(Body),
    /// A request older than the client's latest: not applied, and its client has
    /// moved on.
    Stale,
    /// A no-op: nobody to answer.
    Nothing,
}

/// The replicated state: the store and the duplicate table. Every node applies the
/// same committed commands in the same order, so every node holds the same state at
/// the same index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvState {
    store: BTreeMap<String, String>,
    clients: BTreeMap<u64, Last>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotData {
    store: BTreeMap<String, String>,
    /// Absent only in the snapshots of the known-bad `dedup-not-in-snapshot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clients: Option<BTreeMap<u64, Last>>,
}

impl KvState {
    /// Applies one committed command.
    pub fn apply(&mut self, command: &Command) -> Outcome {
        let Command::Op { id, op } = command else {
            return Outcome::Nothing;
        };
        let Some(id) = id else {
            let answer = self.execute(op);
            return Outcome::Reply(self.render(op, &answer));
        };
        match self.clients.get(&id.client) {
            Some(last) if id.seq < last.seq => return Outcome::Stale,
            Some(last) if id.seq == last.seq => {
                let answer = last.answer.clone();
                let answer = match answer {
                    Answer::Read => self.execute(op),
                    other => other,
                };
                return Outcome::Reply(self.render(op, &answer));
            }
            _ => {}
        }
        let answer = self.execute(op);
        let body = self.render(op, &answer);
        self.clients.insert(
            id.client,
            Last {
                seq: id.seq,
                answer,
            },
        );
        Outcome::Reply(body)
    }

    /// A read answered from this node's state, without the log (only the known-bad
    /// `stale-read` does this).
    pub fn read_local(&self, key: &str) -> Body {
        let op = FetchAppendInput::Get { key: key.into() };
        self.render(&op, &Answer::Read)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.store.get(key).map(String::as_str)
    }

    /// Clients in the duplicate table.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// The state as a snapshot's data; without the duplicate table only for the
    /// known-bad variant.
    pub fn snapshot(&self, with_dedup: bool) -> Value {
        serde_json::to_value(SnapshotData {
            store: self.store.clone(),
            clients: with_dedup.then(|| self.clients.clone()),
        })
        .expect("state serialises")
    }

    /// The state a snapshot's data holds.
    pub fn restore(data: &Value) -> Result<KvState, String> {
        let data: SnapshotData = serde_json::from_value(data.clone())
            .map_err(|e| format!("the snapshot's data is not a kvraft state: {e}"))?;
        Ok(KvState {
            store: data.store,
            clients: data.clients.unwrap_or_default(),
        })
    }

    fn execute(&mut self, op: &FetchAppendInput) -> Answer {
        match op {
            FetchAppendInput::Get { .. } => Answer::Read,
            FetchAppendInput::Put { key, value } => {
                self.store.insert(key.clone(), value.clone());
                Answer::Write
            }
            FetchAppendInput::Cas { key, from, to } => {
                let code = match self.store.get(key) {
                    None => Some(ErrorCode::KeyDoesNotExist.code()),
                    Some(v) if v != from => Some(ErrorCode::PreconditionFailed.code()),
                    Some(_) => None,
                };
                if code.is_none() {
                    self.store.insert(key.clone(), to.clone());
                }
                Answer::Cas { code }
            }
            FetchAppendInput::Append { key, value } => {
                let entry = self.store.entry(key.clone());
                let old = match entry {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(value.clone());
                        None
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        let old = o.get().clone();
                        o.get_mut().push_str(value);
                        Some(old)
                    }
                };
                Answer::Append { old }
            }
        }
    }

    fn render(&self, op: &FetchAppendInput, answer: &Answer) -> Body {
        match answer {
            Answer::Read => {
                let key = op.key();
                match self.store.get(key) {
                    Some(v) => Body::new("read_ok").with("value", v.as_str()),
                    None => no_such_key(key),
                }
            }
            Answer::Write => Body::new("write_ok"),
            Answer::Cas { code: None } => Body::new("cas_ok"),
            Answer::Cas { code: Some(code) } => cas_refused(ErrorCode::from_code(*code)),
            Answer::Append { old } => Body::new("append_ok").with("value", old.clone()),
        }
    }
}

/// Whether a node whose term, vote and log take `raft_state_bytes` on disk should
/// snapshot (6.5840's rule: when the Raft state reaches `maxraftstate`).
pub fn should_snapshot(raft_state_bytes: usize, max_raft_state: Option<usize>) -> bool {
    max_raft_state.is_some_and(|max| raft_state_bytes >= max)
}

/// The answer to a request sent to a node that does not lead: definite (nothing was
/// proposed), retryable, naming the leader when this node knows it.
pub fn not_leader(leader: Option<&str>) -> Body {
    let body = Body::error(ErrorCode::TemporarilyUnavailable, "not the leader");
    match leader {
        Some(l) => body.with("leader", l),
        None => body,
    }
}

/// An indefinite answer (Maelstrom's 0, timeout): the request was proposed and may
/// still commit, so the client must not take it as not done.
fn indefinite(text: String, leader: Option<&str>) -> Body {
    let body = Body::error(ErrorCode::Timeout, text);
    match leader {
        Some(l) => body.with("leader", l),
        None => body,
    }
}

/// A node's view of its own leadership, for [`Waiting::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderView {
    pub is_leader: bool,
    pub term: u64,
    pub leader: Option<String>,
}

#[derive(Debug)]
struct Wait<T> {
    term: u64,
    token: T,
    deadline: u64,
}

/// Requests proposed by this node and waiting for their entry to be applied, by log
/// index. `T` is how the caller replies (the request message).
#[derive(Debug)]
pub struct Waiting<T> {
    waits: BTreeMap<u64, Vec<Wait<T>>>,
}

impl<T> Default for Waiting<T> {
    fn default() -> Self {
        Waiting {
            waits: BTreeMap::new(),
        }
    }
}

impl<T> Waiting<T> {
    /// A request proposed at `now` as entry `index` of `term`.
    pub fn add(&mut self, index: u64, term: u64, token: T, now: u64) {
        self.waits.entry(index).or_default().push(Wait {
            term,
            token,
            deadline: now.saturating_add(PENDING_TIMEOUT),
        });
    }

    pub fn len(&self) -> usize {
        self.waits.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }

    /// Entry `index` of `term` was applied, and `reply` is what its command answers.
    /// A request proposed at `index` in another term did not commit there, and never
    /// will (an index commits once): a definite, retryable error.
    pub fn applied(&mut self, index: u64, term: u64, reply: &Body) -> Vec<(T, Body)> {
        let Some(waits) = self.waits.remove(&index) else {
            return Vec::new();
        };
        waits
            .into_iter()
            .map(|w| {
                let body = if w.term == term {
                    reply.clone()
                } else {
                    Body::error(
                        ErrorCode::TemporarilyUnavailable,
                        format!(
                            "log index {index} was committed with an entry of term {term}, \
                             not this request (proposed in term {}); it was not applied",
                            w.term
                        ),
                    )
                };
                (w.token, body)
            })
            .collect()
    }

    /// Answers the requests that can no longer be answered by their entry: this node
    /// lost the leadership of their term (the entry may still commit under another
    /// leader, so the error is indefinite), or they waited past their deadline.
    pub fn check(&mut self, now: u64, view: &LeaderView) -> Vec<(T, Body)> {
        let mut answers = Vec::new();
        let leader = view.leader.as_deref();
        for (index, waits) in std::mem::take(&mut self.waits) {
            let mut kept = Vec::new();
            for w in waits {
                if !view.is_leader || view.term != w.term {
                    let text = format!(
                        "leadership of term {} was lost before entry {index} was applied; \
                         it may still commit",
                        w.term
                    );
                    answers.push((w.token, indefinite(text, leader)));
                } else if now >= w.deadline {
                    let text = format!(
                        "entry {index} was not applied within {} s; it may still commit",
                        PENDING_TIMEOUT / 1_000_000_000
                    );
                    answers.push((w.token, indefinite(text, leader)));
                } else {
                    kept.push(w);
                }
            }
            if !kept.is_empty() {
                self.waits.insert(index, kept);
            }
        }
        answers
    }

    /// When [`Waiting::check`] next has a deadline to enforce.
    pub fn next_deadline(&self) -> Option<u64> {
        self.waits.values().flatten().map(|w| w.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use specs::kvsrv_protocol::{reply_outcome, ReplyOutcome};

    fn op(client: u64, seq: u64, op: FetchAppendInput) -> Command {
        Command::Op {
            id: Some(ClientSeq { client, seq }),
            op,
        }
    }

    fn append(key: &str, value: &str) -> FetchAppendInput {
        FetchAppendInput::Append {
            key: key.into(),
            value: value.into(),
        }
    }

    fn get(key: &str) -> FetchAppendInput {
        FetchAppendInput::Get { key: key.into() }
    }

    fn reply(outcome: Outcome) -> Body {
        match outcome {
            Outcome::Reply(b) => b,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_duplicate_in_the_log_is_applied_once_and_answered_alike() {
        let mut s = KvState::default();
        let first = reply(s.apply(&op(1, 1, append("k", "a"))));
        // The same request again, as a second log entry (a retry through another
        // leader): not applied, same answer.
        let again = reply(s.apply(&op(1, 1, append("k", "a"))));
        assert_eq!(first, again);
        assert_eq!(s.get("k"), Some("a"));
        reply(s.apply(&op(1, 2, append("k", "b"))));
        assert_eq!(s.apply(&op(1, 1, append("k", "a"))), Outcome::Stale);
        assert_eq!(s.get("k"), Some("ab"));
        let read = reply(s.apply(&op(2, 1, get("k"))));
        assert!(
            matches!(reply_outcome(&get("k"), &read), ReplyOutcome::Ok(o) if o.value.as_deref() == Some("ab"))
        );
    }

    #[test]
    fn a_snapshot_holds_the_duplicate_table_and_restores_it() {
        let mut s = KvState::default();
        reply(s.apply(&op(7, 3, append("k", "a"))));
        let data = s.snapshot(true);
        let mut restored = KvState::restore(&data).unwrap();
        assert_eq!(restored, s);
        assert_eq!(restored.clients(), 1);
        // The retry after the restore is recognised.
        reply(restored.apply(&op(7, 3, append("k", "a"))));
        assert_eq!(restored.get("k"), Some("a"));
        // Without the table (the known-bad variant) the retry applies again.
        let mut forgetful = KvState::restore(&s.snapshot(false)).unwrap();
        assert_eq!(forgetful.clients(), 0);
        reply(forgetful.apply(&op(7, 3, append("k", "a"))));
        assert_eq!(forgetful.get("k"), Some("aa"));
        assert!(KvState::restore(&serde_json::json!({"nope": 1}))
            .unwrap_err()
            .contains("not a kvraft state"));
    }

    #[test]
    fn commands_round_trip_through_the_log() {
        for c in [
            Command::Noop,
            op(1, 2, append("k", "v")),
            Command::Op {
                id: None,
                op: get("k"),
            },
        ] {
            assert_eq!(Command::from_value(&c.to_value()).unwrap(), c);
        }
        assert!(Command::from_value(&serde_json::json!(3)).is_err());
    }

    #[test]
    fn the_snapshot_trigger_is_maxraftstate() {
        assert!(!should_snapshot(999, Some(1000)));
        assert!(should_snapshot(1000, Some(1000)));
        assert!(!should_snapshot(usize::MAX, None));
    }

    #[test]
    fn non_leaders_redirect_with_a_definite_retryable_error() {
        let body = not_leader(Some("n2"));
        assert_eq!(body.error_code(), Some(ErrorCode::TemporarilyUnavailable));
        assert!(ErrorCode::TemporarilyUnavailable.is_definite());
        assert_eq!(body.str("leader"), Some("n2"));
        assert_eq!(not_leader(None).get("leader"), None);
    }

    #[test]
    fn waiting_requests_are_answered_by_their_entry_or_an_error() {
        let mut w: Waiting<&str> = Waiting::default();
        w.add(5, 2, "a", 0);
        w.add(6, 2, "b", 0);
        w.add(7, 2, "c", 0);
        let ok = Body::new("write_ok");
        // Index 5 committed with our entry: the real reply.
        assert_eq!(w.applied(5, 2, &ok), vec![("a", ok.clone())]);
        // Index 6 committed with another term's entry: definite, retryable.
        let taken = w.applied(6, 3, &ok);
        assert_eq!(taken.len(), 1);
        assert_eq!(
            taken[0].1.error_code(),
            Some(ErrorCode::TemporarilyUnavailable)
        );
        // Leadership lost: indefinite, with the new leader.
        let view = LeaderView {
            is_leader: false,
            term: 3,
            leader: Some("n3".into()),
        };
        let lost = w.check(1, &view);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].1.error_code(), Some(ErrorCode::Timeout));
        assert!(!ErrorCode::Timeout.is_definite());
        assert_eq!(lost[0].1.str("leader"), Some("n3"));
        assert!(w.is_empty());
        // Still leader but nothing commits: answered at the deadline, not before.
        w.add(8, 3, "d", 10);
        let leading = LeaderView {
            is_leader: true,
            term: 3,
            leader: Some("n1".into()),
        };
        assert!(w.check(10 + PENDING_TIMEOUT - 1, &leading).is_empty());
        assert_eq!(w.next_deadline(), Some(10 + PENDING_TIMEOUT));
        assert_eq!(w.check(10 + PENDING_TIMEOUT, &leading).len(), 1);
    }
}
