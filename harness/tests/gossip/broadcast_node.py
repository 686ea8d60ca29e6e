#!/usr/bin/env python3
"""A node of Maelstrom's broadcast challenge, as people write them for Maelstrom (no
lockstep: the suite runs it with --time real), to show what the gossip suite's
`broadcast` group makes of such nodes.

    broadcast_node.py correct         keeps every value and sends all it holds to each
                                      neighbour every 100 ms (naive but correct)
    broadcast_node.py never-forward   keeps the values broadcast to it and tells nobody
"""
import json
import sys
import threading

mode = sys.argv[1] if len(sys.argv) > 1 else None
if mode not in ("correct", "never-forward"):
    sys.exit(f"unknown mode {mode!r}: correct or never-forward")
lock = threading.Lock()
node_id, neighbours, values, next_id = None, [], [], 0


def send(dest, body):
    global next_id
    next_id += 1
    body["msg_id"] = next_id
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def reply(msg, body):
    body["in_reply_to"] = msg["body"].get("msg_id")
    send(msg["src"], body)


def keep(value):
    if value not in values:
        values.append(value)


def gossip_forever():
    while not stop.wait(0.1):
        with lock:
            if mode == "correct":
                for n in neighbours:
                    send(n, {"type": "gossip", "messages": list(values)})


stop = threading.Event()
threading.Thread(target=gossip_forever, daemon=True).start()
for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    with lock:
        kind = body.get("type")
        if kind == "init":
            node_id = body["node_id"]
            reply(msg, {"type": "init_ok"})
        elif kind == "topology":
            neighbours = body["topology"].get(node_id, [])
            reply(msg, {"type": "topology_ok"})
        elif kind == "broadcast":
            keep(body["message"])
            reply(msg, {"type": "broadcast_ok"})
        elif kind == "read":
            reply(msg, {"type": "read_ok", "messages": list(values)})
        elif kind == "gossip":
            for v in body["messages"]:
                keep(v)
stop.set()
