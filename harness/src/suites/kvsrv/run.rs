//! One kvsrv test's run: the operations over the wire, and one server as a
//! [`KvCluster`] (shared with kvraft).

use specs::kv_fetch_append::{FetchAppendInput, FetchAppendOutput};
use specs::kvsrv_protocol::{reply_outcome, request_body, ReplyOutcome, RequestId};
use specs::node_protocol::Body;

use crate::client::{Protocol, Reply};
use crate::suite::Context;
use crate::suites::kv_cluster::{KvCluster, Shape};

/// The operations over the wire (`specs::kvsrv_protocol`).
#[derive(Debug, Clone, Copy)]
pub struct KvProtocol;

impl Protocol for KvProtocol {
    type Input = FetchAppendInput;
    type Output = FetchAppendOutput;

    fn request(&self, input: &FetchAppendInput, client: u64, seq: u64) -> Body {
        request_body(input, Some(RequestId { client, seq }))
    }

    fn reply(&self, input: &FetchAppendInput, reply: &Body) -> Reply<FetchAppendOutput> {
        match reply_outcome(input, reply) {
            ReplyOutcome::Ok(o) => Reply::Ok(o),
            ReplyOutcome::Fail(e) => Reply::Fail(e),
            ReplyOutcome::Retry(e) => Reply::Retry(e),
            ReplyOutcome::Unknown(e) => Reply::Unknown(e),
            ReplyOutcome::Invalid(e) => Reply::Invalid(e),
        }
    }
}

/// A test's server and clients.
pub(super) type Test<'a> = KvCluster<'a>;

/// One server, clients that resend after 25 ms, and three quarters of each phase's
/// operations must succeed.
pub(super) fn start(cx: &mut Context) -> Option<Test<'_>> {
    let shape = Shape {
        nodes: 1,
        env: Vec::new(),
        attempt_timeout: 25_000_000,
        think_max: 1_000_000,
        min_percent: 75,
    };
    KvCluster::start(cx, shape)
}
