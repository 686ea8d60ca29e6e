//! The server as a [`node::Node`].

use node::{Node, Outbox};
use specs::kvsrv_protocol::parse_request;
use specs::node_protocol::Message;

use crate::bug::Bug;
use crate::core::KvServer;

pub struct KvNode {
    server: KvServer,
}

impl KvNode {
    pub fn new(bug: Option<Bug>) -> KvNode {
        KvNode {
            server: KvServer::new(bug),
        }
    }
}

impl Node for KvNode {
    fn on_message(&mut self, _now: u64, message: Message, out: &mut Outbox) {
        match parse_request(&message.body) {
            Ok((input, id)) => {
                if let Some(body) = self.server.handle(&input, id) {
                    out.reply(&message, body);
                }
            }
            Err(error) => {
                eprintln!("rejecting {:?} from {}", message.body.kind, message.src);
                out.reply(&message, error);
            }
        }
    }
}
