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

#[cfg(test)]
mod tests {
    use super::*;
    use node::Effect;

    fn node(storage: &Storage) -> GossipNode {
        let ctx = Context {
            node_id: "n1".into(),
            node_ids: vec!["n1".into(), "n2".into()],
            seed: 1,
        };
        GossipNode::new(&ctx, storage, Config::default(), None)
    }

    fn request(id: u64, body: Body) -> Message {
        Message {
            src: "c1".into(),
            dest: "n1".into(),
            now: None,
            body: Body {
                msg_id: Some(id),
                ..body
            },
        }
    }

    /// The bodies sent to `dest`.
    fn sent_to(out: &mut Outbox, dest: &str) -> Vec<Body> {
        out.drain()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send(m) if m.dest == dest => Some(m.body),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_retried_broadcast_is_one_message_and_reads_keep_delivery_order() {
        let storage = Storage::open(None).unwrap();
        let mut n = node(&storage);
        let mut out = Outbox::new("n1");
        let topology = serde_json::json!({"n1": ["n2"], "n2": ["n1"]});
        n.on_message(
            0,
            request(1, Body::new("topology").with("topology", topology)),
            &mut out,
        );
        for (id, v) in [(2, 7), (3, 3), (4, 7)] {
            n.on_message(
                0,
                request(id, Body::new("broadcast").with("message", v)),
                &mut out,
            );
        }
        let answers: Vec<String> = sent_to(&mut out, "c1")
            .into_iter()
            .map(|b| b.kind)
            .collect();
        assert_eq!(
            answers,
            [
                "topology_ok",
                "broadcast_ok",
                "broadcast_ok",
                "broadcast_ok"
            ]
        );
        n.on_message(0, request(5, Body::new("read")), &mut out);
        let read = sent_to(&mut out, "c1").remove(0);
        assert_eq!(read.get("messages"), Some(&serde_json::json!([7, 3])));
    }

    #[test]
    fn bad_requests_get_errors_and_bad_peer_messages_are_ignored() {
        let storage = Storage::open(None).unwrap();
        let mut n = node(&storage);
        let mut out = Outbox::new("n1");
        for (id, body) in [
            (1, Body::new("topology").with("topology", "a line")),
            (2, Body::new("broadcast")),
            (
                3,
                Body::new("broadcast").with("message", "x".repeat(crate::core::MAX_TEXT + 1)),
            ),
            (4, Body::new("frobnicate")),
        ] {
            n.on_message(0, request(id, body), &mut out);
        }
        let codes: Vec<Option<u64>> = sent_to(&mut out, "c1")
            .iter()
            .map(|b| b.u64("code"))
            .collect();
        assert_eq!(codes, [Some(12), Some(12), Some(12), Some(10)]);
        // A malformed rumor from a peer: no answer, nothing delivered.
        let mut rumor = request(5, Body::new("rumor").with("rumors", "garbage"));
        rumor.src = "n2".into();
        n.on_message(0, rumor, &mut out);
        assert!(out.drain().iter().all(|e| !matches!(e, Effect::Send(_))));
        n.on_message(0, request(6, Body::new("read")), &mut out);
        let read = sent_to(&mut out, "c1").remove(0);
        assert_eq!(read.get("messages"), Some(&serde_json::json!([])));
    }

    #[test]
    fn each_life_is_a_new_origin() {
        let dir = std::env::temp_dir().join(format!("gossip-node-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut origins = Vec::new();
        for _ in 0..2 {
            let mut storage = Storage::open(Some(&dir)).unwrap();
            let mut n = node(&storage);
            let mut out = Outbox::new("n1");
            n.on_start(0, &mut out);
            for e in out.drain() {
                if let Effect::Persist { name, bytes } = e {
                    storage.write(&name, bytes).unwrap();
                }
            }
            origins.push(n.core.origin().to_string());
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(origins, ["n1#0", "n1#1"]);
    }
}
