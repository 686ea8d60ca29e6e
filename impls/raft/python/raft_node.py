#!/usr/bin/env python3
"""A Raft node in Python (6.5840's 3A-3D): an example of another-language
implementation of the Raft test interface (specs::raft_protocol).

    RAFT_IMPL="python3 /path/to/raft_node.py" cargo nextest run -p harness --test raft

It speaks the node protocol (specs::node_protocol): JSON lines on stdin/stdout,
init/init_ok, and the lockstep extension (every input line carries "now" in virtual
nanoseconds; every step ends with step_done carrying wake_at). Without lockstep it
runs on the wall clock. Standard library only.

Protocol: randomised election timeouts of 300-600 ms, heartbeats every 100 ms,
pipelined AppendEntries repaired by the follower's conflict hint (first index of the
conflicting term, or its log length), commit by counting only entries of the current
term (Figure 8), snapshots sent whole by InstallSnapshot.

Durability, in the data dir given by init's data_dir (written in this order):
  raft_meta  {"term":T,"vote":V}                         replaced atomically
  snapshot   {"index":I,"term":T,"data":D}               replaced atomically
  raft_log   header line {"start":S,"start_term":T}, then one {"t":term,"c":command}
             a line; appended and fdatasynced, replaced atomically when entries are
             cut (a conflict) or compacted (a snapshot).
"Replaced atomically" is: write a temporary file, fsync it, rename it, fsync the
directory. Every write of a step is durable before any message of the step leaves,
and the snapshot is written before the log it compacts. At start-up a torn tail of the
log (an append cut short by a power loss) is dropped, a snapshot newer than the log's
start cuts the log (a crash between the two writes), and the log is then rewritten
whole before anything is appended to it.
"""
import json
import os
import random
import select
import sys
import time

MS = 1_000_000
ELECTION_MIN = 300 * MS
ELECTION_MAX = 600 * MS
HEARTBEAT = 100 * MS
MAX_BATCH = 64  # most entries in one AppendEntries

META, LOG, SNAP = "raft_meta", "raft_log", "snapshot"

FOLLOWER, CANDIDATE, LEADER = "follower", "candidate", "leader"


def dumps(value):
    return json.dumps(value, separators=(",", ":"))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Fatal(Exception):
    """The data dir cannot be made sense of: starting empty would forget votes or
    acknowledged entries, so the node stops instead."""


# ---------------------------------------------------------------------------------
# Disk


class Disk:
    def __init__(self, directory):
        self.dir = directory
        self.sizes = {META: 0, LOG: 0, SNAP: 0}
        self.log_fd = None
        if directory:
            os.makedirs(directory, exist_ok=True)
            for name in os.listdir(directory):
                if name.endswith(".tmp"):
                    try:
                        os.unlink(os.path.join(directory, name))
                    except OSError:
                        pass
            for name in self.sizes:
                path = os.path.join(directory, name)
                if os.path.exists(path):
                    self.sizes[name] = os.path.getsize(path)

    def read(self, name):
        if not self.dir:
            return None
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def exists(self, name):
        return self.sizes[name] > 0

    @staticmethod
    def _write_all(fd, data):
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def _fsync_dir(self):
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, name, data):
        """Replaces `name` atomically and durably."""
        self.sizes[name] = len(data)
        if not self.dir:
            return
        if name == LOG and self.log_fd is not None:
            os.close(self.log_fd)
            self.log_fd = None
        path = os.path.join(self.dir, name)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self._write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        self._fsync_dir()

    def append_log(self, data):
        """Appends to the (existing) log file and fdatasyncs it."""
        self.sizes[LOG] += len(data)
        if not self.dir:
            return
        if self.log_fd is None:
            self.log_fd = os.open(os.path.join(self.dir, LOG), os.O_WRONLY | os.O_APPEND)
        self._write_all(self.log_fd, data)
        os.fdatasync(self.log_fd)


def is_term(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def load(disk):
    """What a previous run left: (term, vote, snapshot, start, start_term, entries,
    rewrite_log). Raises Fatal on files that contradict each other or are corrupt
    beyond a torn tail."""
    term, vote, snapshot = 0, None, None
    raw = disk.read(META)
    if raw is not None:
        try:
            meta = json.loads(raw)
            term, vote = meta["term"], meta["vote"]
        except (ValueError, KeyError, TypeError) as e:
            raise Fatal("raft_meta is corrupt (%s): %r" % (e, raw[:200]))
    raw = disk.read(SNAP)
    if raw is not None:
        try:
            snapshot = json.loads(raw)
            snapshot["index"], snapshot["term"], snapshot["data"]
        except (ValueError, KeyError, TypeError) as e:
            raise Fatal("snapshot is corrupt (%s)" % e)
    start, start_term, entries, rewrite = 0, 0, [], False
    raw = disk.read(LOG)
    if raw is not None:
        lines = raw.split(b"\n")
        tail = lines.pop()  # what follows the last newline: a torn append
        if tail:
            log("dropping a torn tail of %d bytes from the log" % len(tail))
            rewrite = True
        if not lines:
            raise Fatal("raft_log has no header")
        try:
            header = json.loads(lines[0])
            start, start_term = header["start"], header["start_term"]
        except (ValueError, KeyError, TypeError) as e:
            raise Fatal("raft_log's header is corrupt (%s)" % e)
        body = lines[1:]
        for k, line in enumerate(body):
            try:
                e = json.loads(line)
                t, c = e["t"], e["c"]
                if not is_term(t):
                    raise ValueError("bad term")
                entries.append([t, c])
            except (ValueError, KeyError, TypeError):
                # Only the end of the last append can be torn; a bad line with good
                # ones after it is corruption.
                for later in body[k + 1:]:
                    try:
                        json.loads(later)["t"]
                        raise Fatal("raft_log line %d is corrupt: %r" % (k + 2, line[:200]))
                    except (ValueError, KeyError, TypeError):
                        pass
                log("dropping %d torn lines from the log" % (len(body) - k))
                rewrite = True
                break
    # The snapshot is written before the log it compacts: a crash between the two
    # leaves a snapshot newer than the log's start.
    if snapshot is not None:
        s_index, s_term = snapshot["index"], snapshot["term"]
        if start > s_index:
            raise Fatal("the log starts after entry %d but the snapshot covers only %d"
                        % (start, s_index))
        if start < s_index:
            last = start + len(entries)
            if start < s_index <= last and entries[s_index - start - 1][0] == s_term:
                entries = entries[s_index - start:]
            else:
                entries = []
            start, start_term = s_index, s_term
            rewrite = True
        elif start_term != s_term:
            raise Fatal("the log starts after entry %d of term %d but the snapshot says %d"
                        % (start, start_term, s_term))
    elif start != 0:
        raise Fatal("the log starts after entry %d but there is no snapshot" % start)
    return term, vote, snapshot, start, start_term, entries, rewrite


# ---------------------------------------------------------------------------------
# Raft


class Raft:
    def __init__(self, node_id, node_ids, disk, seed, now):
        self.id = node_id
        self.members = list(node_ids)
        self.peers = [n for n in node_ids if n != node_id]
        self.quorum = len(self.members) // 2 + 1
        self.disk = disk
        self.rng = random.Random(seed)
        (self.term, self.vote, self.snapshot, start, start_term, entries,
         rewrite) = load(disk)
        # log[0] stands for entry `offset` (the last one the snapshot covers, or the
        # sentinel entry 0 of term 0): only its term is kept. log[k] is entry
        # offset + k, as [term, command].
        self.offset = start
        self.log = [[start_term, None]] + entries
        self.commit = start
        self.applied = start
        self.role = FOLLOWER
        self.leader = None
        self.votes = set()
        self.next_index = {}
        self.match_index = {}
        self.election_deadline = 0
        self.heartbeat_due = 0
        self.meta_dirty = False
        self.snap_dirty = False
        self.log_rewrite = rewrite  # rewritten whole before anything is appended
        self.persisted_last = self.last_index()
        self.out = []  # (dest, body) in order, sent after the step's writes
        self.reset_election_timer(now)
        log("%s starts: term %d, vote %s, snapshot through %d, log %d..%d" % (
            self.id, self.term, self.vote, self.offset, self.offset + 1, self.last_index()))
        if self.snapshot is not None:
            # The service restarts from the snapshot: say so before applying anything.
            self.report_snapshot()

    # -- helpers

    def last_index(self):
        return self.offset + len(self.log) - 1

    def last_term(self):
        return self.log[-1][0]

    def term_at(self, index):
        if self.offset <= index <= self.last_index():
            return self.log[index - self.offset][0]
        return None

    def send(self, dest, body):
        self.out.append((dest, body))

    def reset_election_timer(self, now):
        self.election_deadline = now + self.rng.randrange(ELECTION_MIN, ELECTION_MAX)

    def wake_at(self):
        return self.heartbeat_due if self.role == LEADER else self.election_deadline

    def report_snapshot(self):
        s = self.snapshot
        self.send("tester", {"type": "snapshot", "index": s["index"], "term": s["term"],
                             "data": s["data"]})

    def compact(self, index, term):
        """Drops the log through `index` (of `term`), keeping what follows."""
        if index <= self.last_index():
            del self.log[1:index - self.offset + 1]
        else:
            del self.log[1:]
        self.log[0] = [term, None]
        self.offset = index
        self.log_rewrite = True

    # -- roles

    def become_follower(self, now, term):
        if term > self.term:
            self.term = term
            self.vote = None
            self.meta_dirty = True
            self.leader = None
        if self.role != FOLLOWER:
            log("%s: follower in term %d" % (self.id, self.term))
            self.role = FOLLOWER
            self.reset_election_timer(now)

    def campaign(self, now):
        self.term += 1
        self.role = CANDIDATE
        self.vote = self.id
        self.leader = None
        self.meta_dirty = True
        self.votes = {self.id}
        self.reset_election_timer(now)
        log("%s: campaigns in term %d" % (self.id, self.term))
        if len(self.votes) >= self.quorum:
            self.become_leader(now)
            return
        body = {"type": "rv", "term": self.term, "last_index": self.last_index(),
                "last_term": self.last_term()}
        for p in self.peers:
            self.send(p, dict(body))

    def become_leader(self, now):
        log("%s: leader of term %d" % (self.id, self.term))
        self.role = LEADER
        self.leader = self.id
        nxt = self.last_index() + 1
        self.next_index = {p: nxt for p in self.peers}
        self.match_index = {p: 0 for p in self.peers}
        self.match_index[self.id] = self.last_index()
        self.send("tester", {"type": "leader", "term": self.term})
        self.broadcast_append(now)
        self.maybe_commit()

    # -- events

    def tick(self, now):
        if self.role == LEADER:
            if now >= self.heartbeat_due:
                self.broadcast_append(now)
        elif now >= self.election_deadline:
            self.campaign(now)

    def propose(self, command):
        if self.role != LEADER:
            return None
        self.log.append([self.term, command])
        index = self.last_index()
        self.match_index[self.id] = index
        for p in self.peers:
            # Caught-up peers get it now; peers being repaired with their next batch.
            if self.next_index[p] == index:
                self.send_append(p)
        self.maybe_commit()
        return index

    def take_snapshot(self, index, data):
        """The service's state through `index` is `data`. Returns an error text, or
        None when done (or when it is no newer than what we have)."""
        if index <= self.offset:
            return None
        if index > self.applied:
            return "cannot snapshot through %d: only %d applied" % (index, self.applied)
        term = self.term_at(index)
        self.compact(index, term)
        self.snapshot = {"index": index, "term": term, "data": data}
        self.snap_dirty = True
        return None

    def step(self, now, src, body):
        if src not in self.peers:
            return
        kind = body["type"]
        term = body["term"]
        if not is_term(term):
            raise ValueError("bad term %r" % (term,))
        if term > self.term:
            self.become_follower(now, term)
        if kind == "rv":
            self.on_request_vote(now, src, term, body["last_index"], body["last_term"])
        elif kind == "rv_r":
            if term == self.term and self.role == CANDIDATE and body["granted"] is True:
                self.votes.add(src)
                if len(self.votes) >= self.quorum:
                    self.become_leader(now)
        elif kind == "ae":
            self.on_append(now, src, term, body["prev_index"], body["prev_term"],
                           body["entries"], body["commit"])
        elif kind == "ae_r":
            if term != self.term or self.role != LEADER:
                return  # an answer to an earlier term's leader: stale
            if body["success"]:
                self.on_match(src, body["match"])
            else:
                self.back_up(src, body["rejected"], body["conflict_index"],
                             body.get("conflict_term"))
        elif kind == "is":
            self.on_install_snapshot(now, src, term, body["index"], body["last_term"],
                                     body["data"])
        elif kind == "is_r":
            if term == self.term and self.role == LEADER:
                self.on_match(src, body["index"])
        else:
            log("%s: ignoring a peer message of type %r" % (self.id, kind))

    def on_request_vote(self, now, src, term, last_index, last_term):
        up_to_date = (last_term, last_index) >= (self.last_term(), self.last_index())
        free = self.vote is None or self.vote == src
        granted = term == self.term and self.role == FOLLOWER and free and up_to_date
        if granted:
            if self.vote is None:
                self.vote = src
                self.meta_dirty = True
            self.reset_election_timer(now)
        self.send(src, {"type": "rv_r", "term": self.term, "granted": granted})

    def on_append(self, now, src, term, prev_index, prev_term, entries, commit):
        rejected = prev_index

        def reply(success, match=0, conflict_index=0, conflict_term=None):
            self.send(src, {"type": "ae_r", "term": self.term, "success": success,
                            "match": match, "rejected": rejected,
                            "conflict_index": conflict_index,
                            "conflict_term": conflict_term})

        if term < self.term:
            reply(False)  # a stale leader: our term tells it
            return
        # A leader of our term: a candidate gives up, everyone waits for it.
        self.become_follower(now, term)
        self.leader = src
        self.reset_election_timer(now)
        if prev_index < self.offset:
            # Entries the snapshot covers are committed, so they are the leader's:
            # skip them and check the rest against the snapshot's last entry.
            covered = min(self.offset - prev_index, len(entries))
            entries = entries[covered:]
            if not entries:
                reply(True, match=prev_index + covered)
                return
            prev_index, prev_term = self.offset, self.log[0][0]
        if prev_index > self.last_index():
            reply(False, conflict_index=self.last_index() + 1)
            return
        have = self.log[prev_index - self.offset][0]
        if have != prev_term:
            first = prev_index
            while first - 1 > self.offset and self.log[first - 1 - self.offset][0] == have:
                first -= 1
            reply(False, conflict_index=first, conflict_term=have)
            return
        last_new = prev_index + len(entries)
        for k, entry in enumerate(entries):
            index = prev_index + 1 + k
            pos = index - self.offset
            if pos < len(self.log):
                if self.log[pos][0] == entry[0]:
                    continue
                # Only a conflict truncates: a stale, shorter message must not cut
                # entries a newer one added.
                if index <= self.commit:
                    log("%s: leader %s overwrites committed entry %d" % (self.id, src, index))
                del self.log[pos:]
                self.log_rewrite = True
            self.log.append([entry[0], entry[1]])
        if self.commit > self.last_index():
            self.commit = self.last_index()
        self.commit = max(self.commit, min(commit, last_new))
        reply(True, match=last_new)

    def on_install_snapshot(self, now, src, term, index, last_term, data):
        if term < self.term:
            # A deposed leader's snapshot: refused, our term tells it.
            self.send(src, {"type": "is_r", "term": self.term, "index": 0})
            return
        self.become_follower(now, term)
        self.leader = src
        self.reset_election_timer(now)
        # What is committed here already covers an older snapshot: nothing to do.
        if index > self.commit:
            if self.term_at(index) == last_term:
                self.compact(index, last_term)  # keeps the entries after it
            else:
                self.log = [[last_term, None]]
                self.offset = index
                self.log_rewrite = True
            self.commit = index
            self.applied = index
            self.snapshot = {"index": index, "term": last_term, "data": data}
            self.snap_dirty = True
            log("%s: installs a snapshot through %d from %s" % (self.id, index, src))
            self.report_snapshot()
        self.send(src, {"type": "is_r", "term": self.term, "index": index})

    def on_match(self, peer, index):
        if not is_term(index) or index > self.last_index():
            log("%s: %s claims index %r beyond our log" % (self.id, peer, index))
            return
        if index > self.match_index[peer]:
            self.match_index[peer] = index
        if index + 1 > self.next_index[peer]:
            self.next_index[peer] = index + 1
        self.maybe_commit()
        if self.next_index[peer] <= self.last_index():
            self.send_append(peer)

    def back_up(self, peer, rejected, conflict_index, conflict_term):
        hint = conflict_index
        if conflict_term is not None:
            # If we have entries of the follower's conflicting term, the logs may agree
            # up to our last one of them; otherwise skip the whole term.
            i = self.last_index()
            while i > self.offset and self.log[i - self.offset][0] > conflict_term:
                i -= 1
            if i > self.offset and self.log[i - self.offset][0] == conflict_term:
                hint = i + 1
        nxt = max(1, min(hint, rejected))
        if nxt < self.next_index[peer]:
            self.next_index[peer] = nxt
            self.send_append(peer)

    def broadcast_append(self, now):
        for p in self.peers:
            self.send_append(p)
        self.heartbeat_due = now + HEARTBEAT

    def send_append(self, peer):
        """Sends `peer` everything from its next_index (up to a batch), moving
        next_index past it (pipelining, repaired by rejections), or the snapshot when
        it needs entries compacted away."""
        nxt = min(max(self.next_index[peer], 1), self.last_index() + 1)
        if nxt <= self.offset:
            s = self.snapshot
            self.next_index[peer] = self.offset + 1
            self.send(peer, {"type": "is", "term": self.term, "index": s["index"],
                             "last_term": s["term"], "data": s["data"]})
            return
        end = min(self.last_index() + 1, nxt + MAX_BATCH)
        entries = self.log[nxt - self.offset:end - self.offset]
        self.next_index[peer] = end
        self.send(peer, {"type": "ae", "term": self.term, "prev_index": nxt - 1,
                         "prev_term": self.log[nxt - 1 - self.offset][0],
                         "entries": entries, "commit": self.commit})

    def maybe_commit(self):
        matched = sorted((self.match_index.get(m, 0) for m in self.members), reverse=True)
        n = matched[self.quorum - 1]
        # Figure 8: only an entry of the current term commits by counting.
        if n > self.commit and self.term_at(n) == self.term:
            self.commit = n

    # -- end of a step: persist, then send, then apply

    def finish(self):
        """Makes the step's changes durable and returns the messages to send, the
        applied entries last."""
        disk = self.disk
        # Term and vote first: no file may hold a term later than the current term
        # on disk. Then the snapshot, before the log it compacts.
        if self.meta_dirty:
            disk.replace(META, dumps({"term": self.term, "vote": self.vote}).encode())
        if self.snap_dirty:
            disk.replace(SNAP, dumps(self.snapshot).encode())
        last = self.last_index()
        if self.log_rewrite or (last > self.persisted_last and not disk.exists(LOG)):
            lines = [dumps({"start": self.offset, "start_term": self.log[0][0]})]
            lines.extend(dumps({"t": e[0], "c": e[1]}) for e in self.log[1:])
            disk.replace(LOG, ("\n".join(lines) + "\n").encode())
        elif last > self.persisted_last:
            first = self.persisted_last + 1 - self.offset
            data = "".join(dumps({"t": e[0], "c": e[1]}) + "\n" for e in self.log[first:])
            disk.append_log(data.encode())
        self.persisted_last = last
        self.snap_dirty = self.meta_dirty = self.log_rewrite = False
        if self.commit > self.applied:
            entries = [{"index": i, "term": self.log[i - self.offset][0],
                        "command": self.log[i - self.offset][1]}
                       for i in range(self.applied + 1, self.commit + 1)]
            self.applied = self.commit
            self.send("tester", {"type": "applied", "entries": entries})
        out, self.out = self.out, []
        return out


# ---------------------------------------------------------------------------------
# The node protocol


class Node:
    def __init__(self):
        self.id = None
        self.lockstep = False
        self.raft = None
        self.next_msg_id = 0
        self.lines = []

    def emit(self, dest, body):
        self.next_msg_id += 1
        body["msg_id"] = self.next_msg_id
        self.lines.append(dumps({"src": self.id, "dest": dest, "body": body}))

    def now(self, msg):
        if self.lockstep:
            return msg.get("now", 0)
        return time.monotonic_ns()

    def handle(self, msg):
        body = msg["body"]
        src = msg["src"]
        kind = body.get("type")
        if kind == "init":
            self.id = body["node_id"]
            self.lockstep = bool(body.get("lockstep"))
            now = self.now(msg)
            seed = body.get("seed")
            if seed is None:
                seed = int.from_bytes(os.urandom(8), "little")
            disk = Disk(body.get("data_dir"))
            self.raft = Raft(self.id, body["node_ids"], disk, seed, now)
            # "pipeline": each line is its own step, in order, however many are
            # buffered (the harness may then write several at once).
            self.emit(src, {"type": "init_ok", "in_reply_to": body.get("msg_id"),
                            "pipeline": True})
            return
        if self.raft is None:
            log("ignoring a message before init: %r" % (msg,))
            return
        raft = self.raft
        now = self.now(msg)
        if kind == "tick":
            pass
        elif src in raft.peers:
            raft.step(now, src, body)
        elif "in_reply_to" in body:
            log("ignoring a reply that answers nothing: %r" % (msg,))
        else:
            reply = self.request(body)
            reply["in_reply_to"] = body.get("msg_id")
            raft.send(src, reply)
        raft.tick(now)

    def request(self, body):
        raft = self.raft
        kind = body.get("type")
        if kind == "start":
            if "command" not in body:
                return {"type": "error", "code": 12, "text": "start needs a command"}
            index = raft.propose(body["command"])
            if index is None:
                return {"type": "start_ok", "index": 0, "term": raft.term, "is_leader": False}
            return {"type": "start_ok", "index": index, "term": raft.term, "is_leader": True}
        if kind == "get_state":
            return {"type": "get_state_ok", "term": raft.term, "is_leader": raft.role == LEADER}
        if kind == "snapshot":
            index = body.get("index")
            if not is_term(index) or index < 1 or "data" not in body:
                return {"type": "error", "code": 12, "text": "snapshot needs index and data"}
            err = raft.take_snapshot(index, body["data"])
            if err is not None:
                return {"type": "error", "code": 22, "text": err}
            return {"type": "snapshot_ok"}
        if kind == "persisted_size":
            sizes = raft.disk.sizes
            return {"type": "persisted_size_ok", "raft_state": sizes[META] + sizes[LOG],
                    "snapshot": sizes[SNAP]}
        return {"type": "error", "code": 10, "text": "unsupported request %r" % (kind,)}

    def end_step(self):
        """Persists, then writes the step's messages and (in lockstep) step_done."""
        if self.raft is not None:
            for dest, body in self.raft.finish():
                self.emit(dest, body)
        if self.lockstep:
            wake = self.raft.wake_at() if self.raft is not None else None
            self.lines.append(dumps({"src": self.id, "dest": "harness",
                                     "body": {"type": "step_done", "wake_at": wake}}))
        if self.lines:
            sys.stdout.write("\n".join(self.lines) + "\n")
            sys.stdout.flush()
            self.lines = []

    def on_line(self, line):
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict) or not isinstance(msg.get("body"), dict):
                raise ValueError("not a message")
        except ValueError as e:
            log("ignoring a line that is not a message (%s): %r" % (e, line[:200]))
            if self.lockstep:
                self.end_step()
            return
        try:
            self.handle(msg)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            log("ignoring a malformed message (%r): %r" % (e, line[:300]))
        self.end_step()

    def run(self):
        fd = sys.stdin.fileno()
        buf = b""
        while True:
            timeout = None
            if not self.lockstep and self.raft is not None:
                # At most 10 ms at a time: a select restarted after SIGSTOP/SIGCONT
                # waits out the time it had left, so a node paused past its election
                # timeout would otherwise campaign late instead of on resuming.
                timeout = (self.raft.wake_at() - time.monotonic_ns()) / 1e9
                timeout = min(0.01, max(0.0, timeout))
            readable = True
            if timeout is not None:
                readable = bool(select.select([fd], [], [], timeout)[0])
            if readable:
                data = os.read(fd, 1 << 16)
                if not data:
                    return
                buf += data
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    line, buf = buf[:nl], buf[nl + 1:]
                    if line.strip():
                        self.on_line(line.decode("utf-8", "replace"))
            if not self.lockstep and self.raft is not None \
                    and time.monotonic_ns() >= self.raft.wake_at():
                self.raft.tick(time.monotonic_ns())
                self.end_step()


def main():
    try:
        Node().run()
    except Fatal as e:
        log("raft: %s" % e)
        sys.exit(1)


if __name__ == "__main__":
    main()
