#!/usr/bin/env python3
"""A key/value server node in Python: an example of plugging another language into
the suite.

    KVSRV_IMPL="python3 /path/to/kvsrv_node.py" cargo nextest run -E 'test(/kvsrv::basic/)'

It speaks the node protocol (specs::node_protocol): JSON lines on stdin/stdout,
init/init_ok, and the lockstep extension (every line carries "now"; every step ends
with step_done). Requests are read/write/cas/append with "client" and "seq"
(specs::kvsrv_protocol); a resent request gets the first answer. For brevity it
remembers each client's last answer as a copy, so it does not meet the suite's
memory bound for append answers, which the Rust server does.
"""
import json
import sys

store = {}
last = {}  # client -> (seq, reply body)
node_id = None
lockstep = False
next_id = 0


def send(dest, body):
    global next_id
    next_id += 1
    body["msg_id"] = next_id
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")


def error(code, text):
    return {"type": "error", "code": code, "text": text}


def execute(body):
    kind, key = body["type"], body.get("key")
    if not isinstance(key, str):
        return error(12, "missing or non-string key")
    if kind == "read":
        if key not in store:
            return error(20, "no such key")
        return {"type": "read_ok", "value": store[key]}
    if kind == "write":
        store[key] = body["value"]
        return {"type": "write_ok"}
    if kind == "append":
        old = store.get(key)
        store[key] = (old or "") + body["value"]
        return {"type": "append_ok", "value": old}
    if kind == "cas":
        if key not in store:
            return error(20, "no such key")
        if store[key] != body["from"]:
            return error(22, "current value is not from")
        store[key] = body["to"]
        return {"type": "cas_ok"}
    return error(10, "unsupported request type %r" % kind)


def handle(msg):
    global node_id, lockstep
    body = msg["body"]
    if body["type"] == "init":
        node_id = body["node_id"]
        lockstep = bool(body.get("lockstep"))
        reply = {"type": "init_ok"}
    elif body["type"] == "tick":
        return
    else:
        client, seq = body.get("client"), body.get("seq")
        if client is None:
            reply = execute(body)
        else:
            seen = last.get(client)
            if seen and seq < seen[0]:
                return  # a stale duplicate; the client has moved on
            if seen and seq == seen[0] and body["type"] != "read":
                reply = dict(seen[1])
            else:
                reply = execute(body)
                last[client] = (seq, dict(reply))
    reply["in_reply_to"] = body.get("msg_id")
    send(msg["src"], reply)


for line in sys.stdin:
    if not line.strip():
        continue
    try:
        handle(json.loads(line))
    except (ValueError, KeyError, TypeError) as e:
        print("ignoring bad line (%s): %s" % (e, line.strip()), file=sys.stderr)
    if lockstep:
        sys.stdout.write(json.dumps({"src": node_id, "dest": "harness",
                                     "body": {"type": "step_done", "wake_at": None}}) + "\n")
    sys.stdout.flush()
