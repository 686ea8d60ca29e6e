//! What a node asks its runtime to do in one step.

use specs::node_protocol::{Body, ErrorCode, Message};

/// One effect of a step, in the order the node asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Message),
    /// Durably replace the file `name` in the data dir with `bytes`.
    Persist {
        name: String,
        bytes: Vec<u8>,
    },
    /// Durably add `bytes` at the end of the file `name` (created if missing).
    Append {
        name: String,
        bytes: Vec<u8>,
    },
}

/// Collects a step's effects. The runtime persists before it sends, so a message that
/// depends on durable state never leaves before the state is on disk; only messages
/// sent with [`Outbox::send_before_durable`] may leave earlier.
#[derive(Debug)]
pub struct Outbox {
    node_id: String,
    next_msg_id: u64,
    effects: Vec<Effect>,
    /// Messages that may leave before this batch's writes are durable.
    early: Vec<Message>,
    wake_at: Option<u64>,
}

impl Outbox {
    pub fn new(node_id: impl Into<String>) -> Outbox {
        Outbox {
            node_id: node_id.into(),
            next_msg_id: 1,
            effects: Vec::new(),
            early: Vec::new(),
            wake_at: None,
        }
    }

    /// Sends `body` to `dest`, giving it a fresh `msg_id` if it has none; returns it.
    pub fn send(&mut self, dest: impl Into<String>, mut body: Body) -> u64 {
        let id = *body.msg_id.get_or_insert_with(|| {
            let id = self.next_msg_id;
            self.next_msg_id += 1;
            id
        });
        self.effects.push(Effect::Send(Message {
            src: self.node_id.clone(),
            dest: dest.into(),
            now: None,
            body,
        }));
        id
    }

    /// Sends `body` to `dest` ahead of the batch's writes: it may leave before they
    /// are durable, and the runtime calls [`crate::Node::on_durable`] once they
    /// are. Only for a message that promises nothing about this node's disk (a Raft
    /// leader's AppendEntries, which it counts toward a commit only once durable);
    /// everything else waits for the writes.
    pub fn send_before_durable(&mut self, dest: impl Into<String>, body: Body) -> u64 {
        let id = self.send(dest, body);
        match self.effects.pop() {
            Some(Effect::Send(msg)) => self.early.push(msg),
            other => unreachable!("send pushed {other:?}"),
        }
        id
    }

    /// Answers `request` with `body`.
    pub fn reply(&mut self, request: &Message, mut body: Body) {
        body.in_reply_to = request.body.msg_id;
        self.send(request.src.clone(), body);
    }

    /// Answers `request` with an error.
    pub fn error(&mut self, request: &Message, code: ErrorCode, text: impl Into<String>) {
        self.reply(request, Body::error(code, text));
    }

    pub fn persist(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.effects.push(Effect::Persist {
            name: name.into(),
            bytes,
        });
    }

    /// Appends `bytes` to the file `name`: for logs that grow, so a step writes what
    /// it added rather than the whole file.
    pub fn append(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.effects.push(Effect::Append {
            name: name.into(),
            bytes,
        });
    }

    /// Asks for a tick at `at` (nanoseconds). Several requests keep the earliest; the
    /// request lasts until the tick is delivered, so a node re-asks in `on_tick`.
    pub fn wake_at(&mut self, at: u64) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    /// The pending wake-up time.
    pub fn next_wake(&self) -> Option<u64> {
        self.wake_at
    }

    /// Forgets the pending wake-up (the runtime calls this before a tick).
    pub fn clear_wake(&mut self) {
        self.wake_at = None;
    }

    /// Takes the effects collected so far (not the early messages: see
    /// [`Outbox::drain_early`]).
    pub fn drain(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Takes the messages sent with [`Outbox::send_before_durable`].
    pub fn drain_early(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.early)
    }

    /// Nothing to write or send.
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty() && self.early.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_pair_with_requests_and_ids_are_fresh() {
        let mut out = Outbox::new("n1");
        let request = Message {
            src: "c1".into(),
            dest: "n1".into(),
            now: None,
            body: Body {
                msg_id: Some(42),
                ..Body::new("read")
            },
        };
        out.reply(&request, Body::new("read_ok"));
        out.send("n2", Body::new("ping"));
        out.wake_at(50);
        out.wake_at(30);
        out.wake_at(70);
        assert_eq!(out.next_wake(), Some(30));
        let effects = out.drain();
        let [Effect::Send(a), Effect::Send(b)] = &effects[..] else {
            panic!("{effects:?}")
        };
        assert_eq!((a.dest.as_str(), a.body.in_reply_to), ("c1", Some(42)));
        assert_ne!(a.body.msg_id, b.body.msg_id);
        assert!(out.drain().is_empty());
    }
}
