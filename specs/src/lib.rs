//! The contracts every implementation is judged against.
//!
//! A sequential specification here is a [`Model`]: a plain record of an initial state
//! and a step function. The same model is the step function of the linearizability
//! checker in `checkers` and, for the replicated systems, the property that their
//! stateright models must uphold. Nothing here does I/O, so `impls` can depend on the
//! specs without pulling in the harness.
//!
//! | model | operations | used by |
//! |---|---|---|
//! | [`Register`] | read, write | plain registers |
//! | [`CasRegister`] | read, write, compare-and-set | Jepsen's etcd histories |
//! | [`Kv`] | get, put, append | porcupine's kv histories, 6.5840's KV |
//! | [`KvFetchAppend`] | get, put, append returning the old value, cas | the key/value server |

pub mod index;
pub mod json;
pub mod kv;
pub mod kv_fetch_append;
pub mod kvsrv_model;
pub mod kvsrv_protocol;
pub mod mfs;
pub mod model;
pub mod node_protocol;
pub mod raft_protocol;
pub mod register;
pub mod sequential_spec;
pub mod text;
pub mod wordcount;

pub use kv::Kv;
pub use kv_fetch_append::KvFetchAppend;
pub use model::Model;
pub use register::{CasRegister, Register};
pub use text::Text;
