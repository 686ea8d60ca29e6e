//! The core as a [`node::Node`]: peer messages and the Raft test interface
//! (`specs::raft_protocol`) in, the core's `Ready` out through the runtime.

use node::{Context, ErrorCode, Node, Outbox, Storage};
use specs::node_protocol::{Body, Message};
use specs::raft_protocol::{self, Applied, SnapshotReport, TESTER};

use crate::bug::Bug;
use crate::core::{Config, LogWrite, Raft, Snapshot};
use crate::disk::{self, Files};
use crate::wire::{self, PeerMessage};

pub struct RaftNode {
    raft: Raft,
    /// The durable files, with their sizes for `persisted_size`.
    files: Files,
    /// The log file ended in a torn line: rewritten whole at start.
    repair_log: bool,
    /// Most entries in one AppendEntries, as the core sends them.
    max_batch: usize,
    /// The last log index handed to the runtime and not yet reported durable.
    writing: Option<u64>,
    /// `RAFT_BUG=log-before-snapshot`: the log file written before the snapshot.
    log_before_snapshot: bool,
    /// `RAFT_BUG=log-kept-on-disk`: the log file never compacted.
    log_kept_on_disk: bool,
    /// `RAFT_BUG=size-underreported`: no Raft state reported to `persisted_size`.
    size_underreported: bool,
}

impl RaftNode {
    /// Recovers from `storage` if a previous run left state there. A file that does
    /// not parse, or files that contradict each other, are a fatal error: starting
    /// empty would forget votes and acknowledged entries.
    pub fn new(ctx: &Context, storage: &Storage, bug: Option<Bug>) -> Result<RaftNode, String> {
        let loaded = disk::load(storage)?;
        let torn = loaded.log_torn;
        let disk::Recovered {
            hard_state,
            snapshot,
            rewrite_log,
        } = loaded.reconcile()?;
        // The known-bad variant rewrites the log only for a torn tail.
        let rewrite_log = match bug {
            Some(Bug::StaleLogHeader) => torn,
            _ => rewrite_log,
        };
        let mut config = Config::new(ctx.node_id.clone(), ctx.node_ids.clone());
        config.bug = bug;
        config.leader_sends_before_durable = true;
        let max_batch = config.max_batch;
        Ok(RaftNode {
            max_batch,
            raft: Raft::new(config, hard_state, snapshot, ctx.seed, 0),
            files: Files::measure(storage),
            repair_log: rewrite_log,
            writing: None,
            log_before_snapshot: bug == Some(Bug::LogBeforeSnapshot),
            log_kept_on_disk: bug == Some(Bug::LogKeptOnDisk),
            size_underreported: bug == Some(Bug::SizeUnderreported),
        })
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Hands the core's obligations to the runtime: persist first (the runtime writes
    /// every persist of a batch, in order, before any send), then messages, then
    /// reports. Called once a batch, so the entries of every request in it are one
    /// append (one fsync) and one AppendEntries per peer.
    fn flush(&mut self, out: &mut Outbox) {
        let mut ready = self.raft.ready();
        ready.messages = join_appends(std::mem::take(&mut ready.messages), self.max_batch);
        // A leader's AppendEntries leave before its own log write is durable, so
        // the followers write theirs meanwhile (Raft thesis 10.2.1): the core counts
        // the leader's copy toward a commit only after `on_durable`. Not when the
        // batch changes the term, the vote or the snapshot, or rewrites the log:
        // then everything waits for the disk, as every other message does.
        let early = self.raft.is_leader()
            && ready.snapshot.is_none()
            && ready.term_vote.is_none()
            && !matches!(ready.log, Some(LogWrite::Rewrite { .. }));
        if ready.log.is_some() {
            self.writing = Some(self.raft.last_index());
        }
        // The known-bad variants: `log-before-snapshot` swaps the two writes, and
        // `log-kept-on-disk` skips the rewrite that a snapshot of the service's makes
        // (it only drops a prefix, so the file still reads back right).
        let compaction = ready.snapshot.is_some()
            && ready.apply_snapshot.is_none()
            && matches!(ready.log, Some(LogWrite::Rewrite { .. }));
        if self.log_before_snapshot {
            self.files.write_log(&ready, &self.raft, out);
            self.files.write_snapshot_and_vote(&ready, out);
        } else if self.log_kept_on_disk && compaction {
            self.files.write_snapshot_and_vote(&ready, out);
            self.files.count_log_as_rewritten(&self.raft);
        } else {
            self.files.write(&ready, &self.raft, out);
        }
        for (to, message) in &ready.messages {
            if early && matches!(message, PeerMessage::AppendEntries { .. }) {
                out.send_before_durable(to.clone(), message.to_body());
            } else {
                out.send(to.clone(), message.to_body());
            }
        }
        if let Some(term) = ready.became_leader {
            out.send(TESTER, raft_protocol::leader(term));
        }
        if let Some(snapshot) = ready.apply_snapshot {
            out.send(TESTER, report(snapshot));
        }
        if !ready.applied.is_empty() {
            let applied: Vec<Applied> = ready
                .applied
                .into_iter()
                .map(|(index, e)| Applied {
                    index,
                    term: e.term,
                    command: e.command,
                })
                .collect();
            out.send(TESTER, raft_protocol::applied(&applied));
        }
        out.wake_at(self.raft.next_deadline());
    }

    fn on_request(&mut self, message: &Message, out: &mut Outbox) {
        if message.body.in_reply_to.is_some() {
            // We send no requests that are answered this way (peers' replies are peer
            // messages); answering a stray reply, say a peer's error about a line it
            // could not read, is how two nodes start answering each other forever.
            eprintln!(
                "ignoring a reply from {} that answers nothing: {}",
                message.src,
                message.body.to_json()
            );
            return;
        }
        let body = match message.body.kind.as_str() {
            "start" => match message.body.get("command") {
                Some(command) => match self.raft.propose(command.clone()) {
                    Ok((index, term)) => Body::new("start_ok")
                        .with("index", index)
                        .with("term", term)
                        .with("is_leader", true),
                    Err(term) => Body::new("start_ok")
                        .with("term", term)
                        .with("is_leader", false),
                },
                None => Body::error(
                    ErrorCode::MalformedRequest,
                    "start needs a \"command\" field",
                ),
            },
            "get_state" => Body::new("get_state_ok")
                .with("term", self.raft.term())
                .with("is_leader", self.raft.is_leader()),
            "snapshot" => match raft_protocol::parse_snapshot_request(&message.body) {
                Ok((index, data)) => match self.raft.snapshot(index, data) {
                    Ok(()) => Body::new("snapshot_ok"),
                    Err(e) => Body::error(ErrorCode::PreconditionFailed, e.to_string()),
                },
                Err(e) => Body::error(ErrorCode::MalformedRequest, e),
            },
            "persisted_size" => Body::new("persisted_size_ok")
                .with(
                    "raft_state",
                    if self.size_underreported {
                        0
                    } else {
                        self.files.raft_state()
                    },
                )
                .with("snapshot", self.files.snapshot()),
            other => Body::error(
                ErrorCode::NotSupported,
                format!("a Raft node does not handle {other:?} messages"),
            ),
        };
        out.reply(message, body);
    }
}

/// Joins AppendEntries to one peer that continue one another (same term, the second
/// starting where the first ends) into one, up to `max_batch` entries: the core
/// sends one per request as it arrives (pipelining), and a batch of requests would
/// otherwise cost each follower one message, and one reply, per request. The peer
/// ends in the same state as after the messages one by one; only messages to the
/// same peer with nothing between them are joined, so what each peer sees stays in
/// order.
fn join_appends(
    messages: Vec<(String, PeerMessage)>,
    max_batch: usize,
) -> Vec<(String, PeerMessage)> {
    let mut joined: Vec<(String, PeerMessage)> = Vec::with_capacity(messages.len());
    // Where the last message to each peer is in `joined`.
    let mut last: Vec<(String, usize)> = Vec::new();
    for (to, message) in messages {
        let previous = last.iter().find(|(peer, _)| *peer == to).map(|&(_, at)| at);
        if let Some(at) = previous {
            if let (
                PeerMessage::AppendEntries {
                    term,
                    prev_index,
                    entries,
                    commit,
                    ..
                },
                PeerMessage::AppendEntries {
                    term: next_term,
                    prev_index: next_prev,
                    entries: next_entries,
                    commit: next_commit,
                    ..
                },
            ) = (&mut joined[at].1, &message)
            {
                if term == next_term
                    && *prev_index + entries.len() as u64 == *next_prev
                    && entries.len() + next_entries.len() <= max_batch
                {
                    entries.extend(next_entries.iter().cloned());
                    *commit = (*commit).max(*next_commit);
                    continue;
                }
            }
        }
        match last.iter_mut().find(|(peer, _)| *peer == to) {
            Some(entry) => entry.1 = joined.len(),
            None => last.push((to.clone(), joined.len())),
        }
        joined.push((to, message));
    }
    joined
}

fn report(snapshot: Snapshot) -> Body {
    raft_protocol::snapshot_report(&SnapshotReport {
        index: snapshot.index,
        term: snapshot.term,
        data: snapshot.data,
    })
}

impl Node for RaftNode {
    fn on_start(&mut self, now: u64, out: &mut Outbox) {
        if std::mem::take(&mut self.repair_log) {
            self.files.rewrite_log(&self.raft, out);
        }
        // The service restarts from the snapshot; say so before applying anything.
        if let Some(snapshot) = self.raft.current_snapshot() {
            out.send(TESTER, report(snapshot.clone()));
        }
        self.raft.restart_timers(now);
    }

    fn on_tick(&mut self, now: u64, _out: &mut Outbox) {
        self.raft.tick(now);
    }

    fn on_message(&mut self, now: u64, message: Message, out: &mut Outbox) {
        if wire::TYPES.contains(&message.body.kind.as_str()) {
            match PeerMessage::from_body(&message.body) {
                Ok(m) => self.raft.step(now, &message.src, m),
                Err(e) => eprintln!("ignoring message from {}: {e}", message.src),
            }
        } else {
            self.on_request(&message, out);
        }
    }

    fn on_batch_end(&mut self, out: &mut Outbox) {
        self.flush(out);
    }

    fn on_durable(&mut self, out: &mut Outbox) {
        if let Some(index) = self.writing.take() {
            self.raft.log_durable(index);
            // A leader's own copy may complete a quorum (always so alone).
            self.flush(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Entry;
    use crate::disk::{LOG_FILE, META_FILE};
    use node::Effect;
    use serde_json::json;

    /// Node n1 of three started on `dir` (none: in memory), with what it did at start.
    fn started(dir: Option<&std::path::Path>) -> (RaftNode, Vec<Effect>) {
        let storage = Storage::open(dir).unwrap();
        let ctx = Context {
            node_id: "n1".into(),
            node_ids: vec!["n1".into(), "n2".into(), "n3".into()],
            seed: 1,
        };
        let mut node = RaftNode::new(&ctx, &storage, None).unwrap();
        let mut out = Outbox::new("n1");
        node.on_start(0, &mut out);
        (node, out.drain())
    }

    #[test]
    fn stray_replies_are_not_answered_and_requests_are() {
        let (mut node, _) = started(None);
        let mut out = Outbox::new("n1");
        let message = |body: Body| Message {
            src: "n2".into(),
            dest: "n1".into(),
            now: None,
            body,
        };
        let mut error = Body::error(ErrorCode::MalformedRequest, "cannot read that");
        error.msg_id = Some(4);
        error.in_reply_to = Some(9);
        node.on_message(1, message(error), &mut out);
        let to_n2 = |out: &mut Outbox| {
            out.drain()
                .into_iter()
                .filter(|e| matches!(e, Effect::Send(m) if m.dest == "n2"))
                .count()
        };
        assert_eq!(to_n2(&mut out), 0);
        let mut request = Body::new("get_state");
        request.msg_id = Some(5);
        node.on_message(2, message(request), &mut out);
        assert_eq!(to_n2(&mut out), 1);
    }

    /// Group commit: the `start`s of one batch cost the leader one append (one
    /// fsync) and each follower one AppendEntries holding all of them.
    #[test]
    fn a_batch_of_starts_is_one_append_and_one_message_per_peer() {
        let storage = Storage::open(None).unwrap();
        let ctx = Context {
            node_id: "n1".into(),
            node_ids: vec!["n1".into(), "n2".into(), "n3".into()],
            seed: 1,
        };
        let mut node = RaftNode::new(&ctx, &storage, None).unwrap();
        let mut out = Outbox::new("n1");
        node.on_start(0, &mut out);
        node.on_batch_end(&mut out);
        out.drain();
        // Past any election timeout: n1 campaigns, and n2's vote makes it leader.
        node.on_tick(10_000_000_000, &mut out);
        node.on_batch_end(&mut out);
        out.drain();
        let vote = PeerMessage::RequestVoteReply {
            term: node.raft().term(),
            granted: true,
        };
        let from_n2 = |body: Body| Message {
            src: "n2".into(),
            dest: "n1".into(),
            now: None,
            body,
        };
        node.on_message(10_000_000_001, from_n2(vote.to_body()), &mut out);
        node.on_batch_end(&mut out);
        out.drain();
        out.drain_early();
        assert!(node.raft().is_leader());

        for k in 0..5u64 {
            let mut start = Body::new("start").with("command", k);
            start.msg_id = Some(100 + k);
            let start = Message {
                src: TESTER.into(),
                ..from_n2(start)
            };
            node.on_message(10_000_000_002 + k, start, &mut out);
        }
        node.on_batch_end(&mut out);
        let effects = out.drain();
        // The AppendEntries leave ahead of the leader's own fsync.
        let early = out.drain_early();
        let appends: Vec<&Vec<u8>> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Append { bytes, .. } | Effect::Persist { bytes, .. } => Some(bytes),
                Effect::Send(_) => None,
            })
            .collect();
        assert_eq!(appends.len(), 1, "{effects:?}");
        assert_eq!(
            appends[0].iter().filter(|&&b| b == b'\n').count(),
            6,
            "header and 5 entries"
        );
        for peer in ["n2", "n3"] {
            assert!(
                !effects
                    .iter()
                    .any(|e| matches!(e, Effect::Send(m) if m.dest == peer)),
                "{effects:?}"
            );
            let to_peer: Vec<PeerMessage> = early
                .iter()
                .filter(|m| m.dest == peer)
                .map(|m| PeerMessage::from_body(&m.body).unwrap())
                .collect();
            match to_peer.as_slice() {
                [PeerMessage::AppendEntries {
                    prev_index: 0,
                    entries,
                    ..
                }] => assert_eq!(entries.len(), 5),
                other => panic!("to {peer}: {other:?}"),
            }
        }
    }

    fn append(term: u64, prev_index: u64, n: u64, commit: u64) -> PeerMessage {
        PeerMessage::AppendEntries {
            term,
            prev_index,
            prev_term: term,
            entries: (0..n)
                .map(|c| Entry {
                    term,
                    command: json!(prev_index + c),
                })
                .collect(),
            commit,
        }
    }

    #[test]
    fn only_appends_that_continue_one_another_are_joined() {
        let vote = PeerMessage::RequestVote {
            term: 2,
            last_log_index: 0,
            last_log_term: 0,
        };
        let messages = vec![
            ("n2".to_string(), append(2, 0, 1, 0)),
            ("n3".to_string(), append(2, 0, 1, 0)),
            ("n2".to_string(), append(2, 1, 2, 1)),
            // Not where the last one ends: a repair, kept apart.
            ("n3".to_string(), append(2, 0, 1, 0)),
            ("n2".to_string(), vote.clone()),
            // After another message to n2: kept after it.
            ("n2".to_string(), append(2, 3, 1, 1)),
            ("n2".to_string(), append(3, 4, 1, 1)),
        ];
        let joined = join_appends(messages, 128);
        assert_eq!(
            joined,
            vec![
                ("n2".to_string(), {
                    let mut a = append(2, 0, 3, 1);
                    if let PeerMessage::AppendEntries { entries, .. } = &mut a {
                        entries[1].command = json!(1);
                        entries[2].command = json!(2);
                    }
                    a
                }),
                ("n3".to_string(), append(2, 0, 1, 0)),
                ("n3".to_string(), append(2, 0, 1, 0)),
                ("n2".to_string(), vote),
                ("n2".to_string(), append(2, 3, 1, 1)),
                ("n2".to_string(), append(3, 4, 1, 1)),
            ]
        );
        // No more than a batch's worth in one message.
        let many = (0..10)
            .map(|k| ("n2".to_string(), append(2, k, 1, 0)))
            .collect();
        let sizes: Vec<usize> = join_appends(many, 4)
            .iter()
            .map(|(_, m)| match m {
                PeerMessage::AppendEntries { entries, .. } => entries.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [4, 4, 2]);
    }

    /// The log a node writes first thing on start, if any.
    fn log_written_on_start(dir: &std::path::Path) -> (RaftNode, Option<Vec<u8>>) {
        let (node, effects) = started(Some(dir));
        let rewritten = effects.into_iter().find_map(|e| match e {
            Effect::Persist { name, bytes } if name == LOG_FILE => Some(bytes),
            _ => None,
        });
        (node, rewritten)
    }

    /// A crash between writing a snapshot and rewriting the log it cuts short leaves
    /// the old log, which the node cuts to the snapshot in memory. The file must be
    /// rewritten too before anything is appended to it: appended after the old header,
    /// entries would read back at the wrong indices at the next start (found by
    /// `raft::power::power_loss_at_sync_points`: a follower lost acknowledged entries).
    #[test]
    fn a_log_cut_to_the_snapshot_at_start_is_rewritten_before_anything_is_appended() {
        let dir = std::env::temp_dir().join(format!("raft-node-cut-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let entry = |command| Entry {
            term: 1,
            command: json!(command),
        };
        std::fs::write(
            dir.join(LOG_FILE),
            disk::log_file(0, 0, &[entry(7), entry(8)]),
        )
        .unwrap();
        std::fs::write(dir.join(META_FILE), br#"{"term":1,"voted_for":"n1"}"#).unwrap();
        let snapshot = Snapshot {
            index: 3,
            term: 1,
            data: json!([7, 8, 9]),
        };
        std::fs::write(
            dir.join(disk::SNAPSHOT_FILE),
            serde_json::to_vec(&snapshot).unwrap(),
        )
        .unwrap();
        let (node, rewritten) = log_written_on_start(&dir);
        assert_eq!(node.raft().log_start(), 3);
        assert_eq!(rewritten, Some(disk::log_file(3, 1, &[])));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_log_is_rewritten_before_anything_is_appended() {
        let dir = std::env::temp_dir().join(format!("raft-node-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let entry = Entry {
            term: 1,
            command: json!(7),
        };
        let mut log = disk::log_file(0, 0, std::slice::from_ref(&entry));
        log.extend(b"{\"term\":1,\"comm");
        std::fs::write(dir.join(LOG_FILE), &log).unwrap();
        std::fs::write(dir.join(META_FILE), br#"{"term":1,"voted_for":"n1"}"#).unwrap();
        let (node, rewritten) = log_written_on_start(&dir);
        assert_eq!(node.raft().entries(), std::slice::from_ref(&entry));
        assert_eq!(rewritten, Some(disk::log_file(0, 0, &[entry])));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
