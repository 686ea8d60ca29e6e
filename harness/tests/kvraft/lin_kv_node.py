#!/usr/bin/env python3
"""Maelstrom lin-kv nodes of two kinds, to show what the kvraft suite's lin_kv tests
say about implementations they did not come with. Plain Maelstrom: JSON lines on
stdin/stdout, no lockstep, so the suite runs them on the wall clock.

    lin_kv_node.py forward   every node forwards each request to the first node,
                             which alone holds the store and answers: linearizable
                             (and unavailable while the first node is cut off)
    lin_kv_node.py local     every node answers from its own store and never tells
                             the others: each serves everything, and the cluster is
                             not linearizable
"""
import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else None
if mode not in ("forward", "local"):
    sys.exit(f"unknown mode {mode!r}: forward or local")

node_id = None
primary = None
store = {}
next_id = 0
# Our msg_id of a forwarded request -> (client, the client's msg_id).
forwarded = {}


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def reply(msg, body):
    body["in_reply_to"] = msg["body"]["msg_id"]
    send(msg["src"], body)


def apply(body):
    """The answer of this node's store to a lin-kv request."""
    kind, key = body["type"], body.get("key")
    if kind == "read":
        if key not in store:
            return {"type": "error", "code": 20, "text": "key does not exist"}
        return {"type": "read_ok", "value": store[key]}
    if kind == "write":
        store[key] = body["value"]
        return {"type": "write_ok"}
    if kind == "cas":
        if key not in store:
            return {"type": "error", "code": 20, "text": "key does not exist"}
        if store[key] != body["from"]:
            return {"type": "error", "code": 22, "text": "precondition failed"}
        store[key] = body["to"]
        return {"type": "cas_ok"}
    return {"type": "error", "code": 10, "text": f"unsupported request {kind!r}"}


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    if kind == "init":
        node_id = body["node_id"]
        primary = body["node_ids"][0]
        reply(msg, {"type": "init_ok"})
    elif "in_reply_to" in body:
        # The primary's answer to a request this node forwarded.
        client = forwarded.pop(body["in_reply_to"], None)
        if client is not None:
            answer = dict(body)
            answer["in_reply_to"] = client[1]
            answer.pop("msg_id", None)
            send(client[0], answer)
    elif mode == "local" or node_id == primary:
        reply(msg, apply(body))
    else:
        next_id += 1
        forwarded[next_id] = (msg["src"], body["msg_id"])
        request = dict(body)
        request["msg_id"] = next_id
        send(primary, request)
