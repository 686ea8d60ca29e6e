//! The state-machine interface a system implements.

use specs::node_protocol::Message;

use crate::outbox::Outbox;

/// What a node knows about where it runs, fixed at `init`.
#[derive(Debug, Clone)]
pub struct Context {
    pub node_id: String,
    pub node_ids: Vec<String>,
    /// The seed from `init`, or one derived from the node id, for the node's own
    /// random choices.
    pub seed: u64,
}

/// A node of a message-passing system, as a pure state machine.
///
/// Time is a number of nanoseconds handed in by the caller (the real clock, the
/// harness's virtual clock, or a model checker's), never read by the node.
pub trait Node {
    /// A message from another node or a client.
    fn on_message(&mut self, now: u64, message: Message, out: &mut Outbox);

    /// The time asked for with [`Outbox::wake_at`] has come (or passed).
    fn on_tick(&mut self, _now: u64, _out: &mut Outbox) {}

    /// Called once after `init`, at the time of `init` (0 in real time): a node with
    /// timers of its own (an election timeout) asks for its first wake-up here, since
    /// nothing else may ever arrive to start it.
    fn on_start(&mut self, _now: u64, _out: &mut Outbox) {}

    /// A batch of steps has ended and its effects are about to be applied: every
    /// persist of the batch, then every send. The runtime calls it after `on_start`,
    /// after every step in lockstep, and in real time after the lines that were
    /// already waiting have all been stepped (group commit: one write and one fsync
    /// per file for all of them). A node that coalesces work across steps (one
    /// message per peer instead of one per request) does it here.
    fn on_batch_end(&mut self, _out: &mut Outbox) {}

    /// Every write of the batch just applied is durable (and its messages sent).
    /// Called after each batch that wrote anything or sent early
    /// ([`Outbox::send_before_durable`]); what the node asks for here is applied
    /// at once, before the next message is stepped.
    fn on_durable(&mut self, _out: &mut Outbox) {}
}
