//! The `raft` binary, as a process, survives bad input on its stdin: a line that is
//! not UTF-8, not JSON, not a message or too long is answered (when its sender can be
//! read) or logged, and the next request is served as usual, in both time modes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

/// A running `raft` node, killed and reaped when dropped (even when a test panics).
struct Raft {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Raft {
    fn start(lockstep: bool) -> Raft {
        let mut child = Command::new(env!("CARGO_BIN_EXE_raft"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run the raft binary");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut raft = Raft {
            child,
            stdin,
            stdout,
        };
        let mut init = json!({"src": "harness", "dest": "n1", "body": {
            "type": "init", "msg_id": 1, "node_id": "n1", "node_ids": ["n1"],
            "seed": 1, "lockstep": lockstep,
        }});
        if lockstep {
            init["now"] = json!(0);
        }
        raft.write(format!("{init}\n").as_bytes());
        let ok = raft.next_to("harness");
        assert_eq!(ok["body"]["type"], "init_ok", "{ok}");
        if lockstep {
            assert_eq!(raft.next_to("harness")["body"]["type"], "step_done");
        }
        raft
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message the node writes to `dest`, skipping those to others (the
    /// tester's leader and apply reports). Stdout closing means the node exited: the
    /// failure this file is about.
    fn next_to(&mut self, dest: &str) -> Value {
        loop {
            let message = self.next_to_any();
            if message["dest"] == dest {
                return message;
            }
        }
    }

    /// The next message the node writes, to anyone.
    fn next_to_any(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "the node exited (its stdout closed)");
        serde_json::from_str(&line).expect("the node writes JSON")
    }
}

impl Drop for Raft {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines that are not messages, each with the `msg_id` of the error that answers it
/// (`None`: nobody to answer).
fn bad_lines(now: Option<u64>) -> Vec<(Vec<u8>, Option<u64>)> {
    let now = now.map_or(String::new(), |t| format!(",\"now\":{t}"));
    vec![
        (b"\xff\xfe\x00 not UTF-8".to_vec(), None),
        (b"{not json".to_vec(), None),
        (
            // Invalid UTF-8 inside a string value.
            [
                format!("{{\"src\":\"c1\",\"dest\":\"n1\"{now},\"body\":{{\"type\":\"get_state\",\"msg_id\":2,\"x\":\"").as_bytes(),
                b"\xff\"}}",
            ]
            .concat(),
            Some(2),
        ),
        (
            format!("{{\"src\":\"c1\",\"dest\":\"n1\"{now},\"body\":{{\"msg_id\":3}}}}").into_bytes(),
            Some(3),
        ),
    ]
}

fn get_state(id: u64, now: Option<u64>) -> Vec<u8> {
    let mut m = json!({"src": "c1", "dest": "n1", "body": {"type": "get_state", "msg_id": id}});
    if let Some(now) = now {
        m["now"] = json!(now);
    }
    format!("{m}\n").into_bytes()
}

#[test]
fn garbage_then_a_request_gets_answers_in_real_time() {
    let mut raft = Raft::start(false);
    for (line, answered) in bad_lines(None) {
        raft.write(&line);
        raft.write(b"\n");
        if let Some(id) = answered {
            let error = raft.next_to("c1");
            assert_eq!(error["body"]["type"], "error", "{error}");
            assert_eq!(error["body"]["code"], 12, "malformed-request: {error}");
            assert_eq!(error["body"]["in_reply_to"], id, "{error}");
        }
    }
    // A line longer than the runtime keeps (16 MiB): skipped whole, nothing else lost.
    let mut long = vec![b'a'; 17 << 20];
    long.push(b'\n');
    raft.write(&long);
    raft.write(&get_state(10, None));
    let answer = raft.next_to("c1");
    assert_eq!(answer["body"]["type"], "get_state_ok", "{answer}");
    assert_eq!(answer["body"]["in_reply_to"], 10, "{answer}");
}

#[test]
fn garbage_then_a_request_gets_answers_in_lockstep() {
    let mut raft = Raft::start(true);
    for (line, answered) in bad_lines(Some(5)) {
        raft.write(&line);
        raft.write(b"\n");
        // Every line the harness writes is a step: it ends with step_done, answered
        // or not, or the harness would wait for it forever.
        let first = raft.next_to_any();
        if let Some(id) = answered {
            assert_eq!(first["dest"], "c1", "{first}");
            assert_eq!(first["body"]["code"], 12, "{first}");
            assert_eq!(first["body"]["in_reply_to"], id, "{first}");
            let done = raft.next_to_any();
            assert_eq!(done["body"]["type"], "step_done", "{done}");
        } else {
            assert_eq!(first["body"]["type"], "step_done", "{first}");
        }
    }
    raft.write(&get_state(10, Some(6)));
    let answer = raft.next_to("c1");
    assert_eq!(answer["body"]["type"], "get_state_ok", "{answer}");
    assert_eq!(answer["body"]["in_reply_to"], 10, "{answer}");
}
