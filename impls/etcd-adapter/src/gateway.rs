//! Maelstrom lin-kv requests served by etcd through its v3 JSON gateway (HTTP/1.1
//! POST to `/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`, keys and values in base64).
//!
//! The gateway rather than gRPC: a request is a small JSON document over a kept-alive
//! loopback connection, written with the JSON library every crate here already uses,
//! where gRPC would bring an async runtime, HTTP/2 and generated protobuf code (and
//! `protoc` at build time) for the same three calls. The gateway forwards to etcd's
//! own gRPC server inside the process, so the semantics are etcd's: ranges are
//! linearizable reads unless asked to be serializable, which they are not here.
//!
//! A key is stored as `k/` and the JSON text of the key (`k/0`), a value as its JSON
//! text (`3`, `"x"`), so integer and string keys and values come back as they went in.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use specs::node_protocol::{Body, ErrorCode};

use crate::b64;

/// How long one request to etcd may take before its outcome is unknown: longer than
/// the harness's clients wait, so an answer never arrives after a guess.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request to etcd got no answer.
#[derive(Debug)]
pub enum Failed {
    /// It never left: etcd is not listening yet. Nothing happened.
    NotSent(String),
    /// It may have been applied (timeout, connection lost, an error from etcd).
    Unknown(String),
}

/// A pool of kept-alive connections to one etcd member's client port.
pub struct Gateway {
    addr: SocketAddr,
    idle: Mutex<Vec<TcpStream>>,
}

impl Gateway {
    pub fn new(addr: SocketAddr) -> Gateway {
        Gateway {
            addr,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// POSTs `body` to `path` and returns the JSON answer of a 200 response.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, Failed> {
        let payload = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{payload}",
            self.addr,
            payload.len()
        );
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (mut stream, reused) = match pooled {
            Some(s) => (s, true),
            None => (self.connect()?, false),
        };
        if let Err(e) = stream.write_all(request.as_bytes()) {
            if !reused {
                return Err(Failed::NotSent(format!("cannot send to etcd: {e}")));
            }
            // A kept-alive connection the server had closed: nothing was read from
            // it, so nothing was sent; once more on a fresh one.
            stream = self.connect()?;
            stream
                .write_all(request.as_bytes())
                .map_err(|e| Failed::NotSent(format!("cannot send to etcd: {e}")))?;
        }
        let (status, answer, keep) =
            read_response(&mut stream).map_err(|e| Failed::Unknown(format!("etcd: {e}")))?;
        if keep {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(stream);
        }
        let value: Value = serde_json::from_slice(&answer).map_err(|e| {
            Failed::Unknown(format!(
                "etcd answered {status} with something not JSON ({e}): {}",
                String::from_utf8_lossy(&answer)
            ))
        })?;
        if status != 200 {
            let message = value["message"]
                .as_str()
                .or(value["error"].as_str())
                .unwrap_or("no message");
            return Err(Failed::Unknown(format!(
                "etcd answered {status}: {message}"
            )));
        }
        Ok(value)
    }

    fn connect(&self) -> Result<TcpStream, Failed> {
        let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1))
            .map_err(|e| Failed::NotSent(format!("etcd is not reachable yet: {e}")))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
        Ok(stream)
    }
}

/// Reads one HTTP/1.1 response: status, body (by `Content-Length` or chunked), and
/// whether the connection may be used again.
fn read_response(stream: &mut TcpStream) -> Result<(u16, Vec<u8>, bool), String> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut keep = true;
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    } else {
        reader.read_to_end(&mut body).map_err(|e| e.to_string())?;
        keep = false;
    }
    // Nothing may be left buffered: the next response on this connection starts
    // with the next request.
    if !reader.buffer().is_empty() {
        keep = false;
    }
    Ok((status, body, keep))
}

fn key_of(body: &Body) -> Result<String, Body> {
    match body.get("key") {
        Some(k) => Ok(b64::encode(format!("k/{k}").as_bytes())),
        None => Err(Body::error(
            ErrorCode::MalformedRequest,
            format!("{}: missing field \"key\"", body.kind),
        )),
    }
}

fn field(body: &Body, name: &str) -> Result<String, Body> {
    match body.get(name) {
        Some(v) => Ok(b64::encode(v.to_string().as_bytes())),
        None => Err(Body::error(
            ErrorCode::MalformedRequest,
            format!("{}: missing field {name:?}", body.kind),
        )),
    }
}

/// The value of the first key-value pair of a range answer, if any.
fn first_value(range: &Value) -> Result<Option<Value>, String> {
    let Some(kv) = range["kvs"].as_array().and_then(|kvs| kvs.first()) else {
        return Ok(None);
    };
    // The gateway leaves out empty fields: an empty value has no "value".
    let bytes = b64::decode(kv["value"].as_str().unwrap_or(""))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("a value in etcd that this adapter did not write: {e}"))
}

/// The answer to one lin-kv request (read, write, cas).
pub fn serve(gateway: &Gateway, body: &Body) -> Body {
    match try_serve(gateway, body) {
        Ok(answer) | Err(answer) => answer,
    }
}

fn try_serve(gateway: &Gateway, body: &Body) -> Result<Body, Body> {
    let key = key_of(body)?;
    let read = body.kind == "read";
    let failed = |f: Failed| match f {
        Failed::NotSent(text) => Body::error(ErrorCode::TemporarilyUnavailable, text),
        // A read changes nothing: whatever happened to it, it is as if it was not
        // done, and the client may try again.
        Failed::Unknown(text) if read => Body::error(ErrorCode::TemporarilyUnavailable, text),
        Failed::Unknown(text) => Body::error(ErrorCode::Timeout, text),
    };
    match body.kind.as_str() {
        "read" => {
            let range = gateway
                .post("/v3/kv/range", &json!({ "key": key }))
                .map_err(failed)?;
            match first_value(&range).map_err(|e| Body::error(ErrorCode::Crash, e))? {
                Some(value) => Ok(Body::new("read_ok").with("value", value)),
                None => Err(Body::error(
                    ErrorCode::KeyDoesNotExist,
                    "key does not exist",
                )),
            }
        }
        "write" => {
            let value = field(body, "value")?;
            gateway
                .post("/v3/kv/put", &json!({ "key": key, "value": value }))
                .map_err(failed)?;
            Ok(Body::new("write_ok"))
        }
        "cas" => {
            let from = field(body, "from")?;
            let to = field(body, "to")?;
            let txn = json!({
                "compare": [{ "key": key, "target": "VALUE", "result": "EQUAL", "value": from }],
                "success": [{ "request_put": { "key": key, "value": to } }],
                "failure": [{ "request_range": { "key": key } }],
            });
            let answer = gateway.post("/v3/kv/txn", &txn).map_err(failed)?;
            if answer["succeeded"].as_bool() == Some(true) {
                return Ok(Body::new("cas_ok"));
            }
            let range = &answer["responses"][0]["response_range"];
            match first_value(range).map_err(|e| Body::error(ErrorCode::Crash, e))? {
                Some(_) => Err(Body::error(
                    ErrorCode::PreconditionFailed,
                    "the value is not \"from\"",
                )),
                None => Err(Body::error(
                    ErrorCode::KeyDoesNotExist,
                    "key does not exist",
                )),
            }
        }
        other => Err(Body::error(
            ErrorCode::NotSupported,
            format!("unsupported request {other:?}: lin-kv's read, write and cas only"),
        )),
    }
}
