//! Face 1: the core as a [`node::Node`] on Maelstrom's broadcast workload
//! (`topology`, `broadcast`, `read`) over the harness's node protocol.
//!
//! A broadcast value (any JSON, ints in Maelstrom) is a message whose text is its
//! compact JSON; a value already known is acknowledged without a new message, so a
//! client's retry is no duplicate. `read` lists the values in the order this node
//! delivered them (each origin's in its order). The origin of a node's own messages
//! is `<node id>#<incarnation>`, the incarnation counted in the data dir (the only
//! thing kept there), so a restarted node, which keeps no messages, never reuses the
//! sequence numbers of its past.

use std::collections::HashSet;

use node::{Context, ErrorCode, Node, Outbox, Storage};
use serde_json::Value;
use specs::node_protocol::{Body, Message};

use crate::bug::Bug;
use crate::core::{Config, Gossip, Output};
use crate::wire;

/// The file holding the number of the node's process runs.
const INCARNATION: &str = "incarnation";

pub struct GossipNode {
    core: Gossip,
    incarnation: u64,
    delivered: Vec<Value>,
    known: HashSet<String>,
}

impl GossipNode {
    pub fn new(ctx: &Context, storage: &Storage, config: Config, bug: Option<Bug>) -> GossipNode {
        let incarnation = storage
            .get(INCARNATION)
            .and_then(|b| std::str::from_utf8(b).ok()?.trim().parse::<u64>().ok())
            .map_or(0, |k| k + 1);
        let origin = format!("{}#{incarnation}", ctx.node_id);
        let seed = ctx.seed ^ incarnation.wrapping_mul(0x2545_F491_4F6C_DD1D);
        GossipNode {
            core: Gossip::new(origin, config, seed, bug),
            incarnation,
            delivered: Vec::new(),
            known: HashSet::new(),
        }
    }

    /// Sends what the core asked for, records deliveries, and asks for its next tick.
    fn flush(&mut self, out: &mut Outbox) {
        for o in self.core.drain() {
            match o {
                Output::Send { to, wire } => {
                    let (kind, fields) = wire::encode(&wire);
                    let mut body = Body::new(kind);
                    body.fields = fields;
                    out.send(to, body);
                }
                Output::Deliver(rumor) => {
                    // Two clients may broadcast one value through two nodes: one value
                    // is one message to a reader.
                    if self.known.insert(rumor.text.clone()) {
                        match serde_json::from_str(&rumor.text) {
                            Ok(v) => self.delivered.push(v),
                            Err(_) => self.delivered.push(Value::String(rumor.text)),
                        }
                    }
                }
            }
        }
        if let Some(at) = self.core.next_wake() {
            out.wake_at(at);
        }
    }

    fn topology(&mut self, now: u64, message: &Message, out: &mut Outbox) {
        let me = &message.dest;
        let mine = message
            .body
            .get("topology")
            .and_then(|t| t.get(me))
            .and_then(Value::as_array)
            .and_then(|ns| {
                ns.iter()
                    .map(|n| n.as_str().map(str::to_string))
                    .collect::<Option<Vec<String>>>()
            });
        match mine {
            Some(neighbours) => {
                let neighbours = neighbours.into_iter().filter(|n| n != me).collect();
                self.core.set_neighbours(now, neighbours);
                out.reply(message, Body::new("topology_ok"));
            }
            None => {
                eprintln!("rejecting a topology without a list of names for {me}");
                out.error(
                    message,
                    ErrorCode::MalformedRequest,
                    format!("topology must map {me} to a list of node names"),
                );
            }
        }
    }

    fn broadcast(&mut self, now: u64, message: &Message, out: &mut Outbox) {
        let Some(value) = message.body.get("message") else {
            eprintln!("rejecting a broadcast without \"message\"");
            out.error(
                message,
                ErrorCode::MalformedRequest,
                "broadcast needs \"message\"",
            );
            return;
        };
        let text = value.to_string();
        if self.known.contains(&text) {
            out.reply(message, Body::new("broadcast_ok"));
            return;
        }
        match self.core.broadcast(now, text) {
            Ok(_) => out.reply(message, Body::new("broadcast_ok")),
            Err(e) => {
                eprintln!("rejecting a broadcast: {e}");
                out.error(message, ErrorCode::MalformedRequest, e.to_string());
            }
        }
    }
}

impl Node for GossipNode {
    fn on_start(&mut self, _now: u64, out: &mut Outbox) {
        out.persist(INCARNATION, self.incarnation.to_string().into_bytes());
    }

    fn on_message(&mut self, now: u64, message: Message, out: &mut Outbox) {
        match message.body.kind.as_str() {
            "topology" => self.topology(now, &message, out),
            "broadcast" => self.broadcast(now, &message, out),
            "read" => {
                let body =
                    Body::new("read_ok").with("messages", Value::Array(self.delivered.clone()));
                out.reply(&message, body);
            }
            kind => match wire::decode(kind, &message.body.fields) {
                Some(Ok(w)) => self.core.on_wire(now, &message.src, w),
                Some(Err(e)) => eprintln!("ignoring a {kind} from {}: {e}", message.src),
                None if message.body.in_reply_to.is_some() => {
                    eprintln!("ignoring an unexpected {kind} reply from {}", message.src)
                }
                None => {
                    eprintln!("rejecting an unknown {kind:?} from {}", message.src);
                    out.error(
                        &message,
                        ErrorCode::NotSupported,
                        format!("unknown type {kind:?}"),
                    );
                }
            },
        }
        self.flush(out);
    }

    fn on_tick(&mut self, now: u64, out: &mut Outbox) {
        self.core.on_tick(now);
        self.flush(out);
    }
}
