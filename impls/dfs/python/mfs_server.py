#!/usr/bin/env python3
"""An MFS server in Python, kept as an example of plugging another implementation
into the dfs suite: `python3 mfs_server.py PORT IMAGE`.

Wire protocol v1 (specs/src/mfs/wire.rs) and the spec's semantics
(specs/src/mfs/spec.rs). The image is a log of the requests that changed something:
each record is a u32 length, a u32 CRC-32, then the request's operation code and body,
appended and fdatasynced before the reply. Boot replays the records and cuts a torn
tail (a short last record or one whose CRC does not match). Nothing is overwritten in
place, so the suite's torn-overwrite points find nothing to tear.
"""
import os, socket, struct, sys, zlib

BLOCK = 4096
MAX_INODES = 4096
DIRECT = 14
PER_BLOCK = 128
NAME_MAX = 27
FAILED, MALFORMED, BAD_VERSION = -1, -2, -3


class Malformed(Exception):
    pass


class Body:
    def __init__(self, b):
        self.b, self.at = b, 0

    def take(self, n):
        if self.at + n > len(self.b):
            raise Malformed()
        out = self.b[self.at:self.at + n]
        self.at += n
        return out

    def i32(self):
        return struct.unpack('<i', self.take(4))[0]

    def name(self):
        return bytes(self.take(self.take(1)[0]))


def parse(op, body):
    """(op, args) of a request body, or Malformed."""
    b = Body(body)
    if op in (1, 6):
        args = (b.i32(), b.name())
    elif op == 2:
        args = (b.i32(),)
    elif op == 3:
        args = (b.i32(), b.i32(), bytes(b.take(BLOCK)))
    elif op == 4:
        args = (b.i32(), b.i32())
    elif op == 5:
        args = (b.i32(), b.i32(), b.name())
    elif op == 7:
        args = ()
    else:
        raise Malformed()
    if b.at != len(body):
        raise Malformed()
    return args


def valid(name):
    return 0 < len(name) <= NAME_MAX and b'\0' not in name


class Fs:
    def __init__(self):
        self.nodes = [None] * MAX_INODES
        self.nodes[0] = self.new_dir(0, 0)

    @staticmethod
    def new_dir(inum, parent):
        slots = [None] * PER_BLOCK
        slots[0], slots[1] = (b'.', inum), (b'..', parent)
        return ['d', slots]

    def node(self, inum):
        return self.nodes[inum] if 0 <= inum < MAX_INODES else None

    def dir(self, inum):
        n = self.node(inum)
        return n[1] if n and n[0] == 'd' else None

    def find(self, pinum, name):
        slots = self.dir(pinum)
        if slots is None:
            return None
        for i, s in enumerate(slots):
            if s and s[0] == name:
                return i, s[1]
        return None

    def apply(self, op, args):
        """(status, extra bytes, changed)."""
        if op == 1:
            pinum, name = args
            f = self.find(pinum, name) if valid(name) else None
            return (f[1], b'', False) if f else (FAILED, b'', False)
        if op == 2:
            n = self.node(args[0])
            if n is None:
                return FAILED, b'', False
            if n[0] == 'd':
                return 0, struct.pack('<ii', 0, len(n[1]) * 32), False
            return 0, struct.pack('<ii', 1, n[2]), False
        if op == 3:
            inum, block, data = args
            n = self.node(inum)
            if not 0 <= block < DIRECT or n is None or n[0] != 'f':
                return FAILED, b'', False
            n[1][block] = data
            n[2] = max(n[2], (block + 1) * BLOCK)
            return 0, b'', True
        if op == 4:
            inum, block = args
            n = self.node(inum)
            if n is None:
                return FAILED, b'', False
            if n[0] == 'd':
                if not 0 <= block < len(n[1]) // PER_BLOCK:
                    return FAILED, b'', False
                out = bytearray()
                for s in n[1][block * PER_BLOCK:(block + 1) * PER_BLOCK]:
                    name, inum2 = s if s else (b'', -1)
                    out += name.ljust(28, b'\0') + struct.pack('<i', inum2)
                return 0, bytes(out), False
            if not 0 <= block < n[2] // BLOCK:
                return FAILED, b'', False
            return 0, n[1][block] or bytes(BLOCK), False
        if op == 5:
            pinum, kind, name = args
            if not valid(name) or self.dir(pinum) is None:
                return FAILED, b'', False
            if self.find(pinum, name):
                return 0, b'', False
            if kind not in (0, 1):
                return FAILED, b'', False
            free = next((i for i, n in enumerate(self.nodes) if n is None), None)
            if free is None:
                return FAILED, b'', False
            slots = self.dir(pinum)
            slot = next((i for i, s in enumerate(slots) if s is None), None)
            if slot is None:
                if len(slots) >= DIRECT * PER_BLOCK:
                    return FAILED, b'', False
                slot = len(slots)
                slots.extend([None] * PER_BLOCK)
            slots[slot] = (name, free)
            self.nodes[free] = self.new_dir(free, pinum) if kind == 0 else ['f', [None] * DIRECT, 0]
            return 0, b'', True
        if op == 6:
            pinum, name = args
            if not valid(name) or name in (b'.', b'..') or self.dir(pinum) is None:
                return FAILED, b'', False
            f = self.find(pinum, name)
            if f is None:
                return 0, b'', False
            slot, inum = f
            child = self.node(inum)
            if child[0] == 'd' and sum(1 for s in child[1] if s) > 2:
                return FAILED, b'', False
            self.dir(pinum)[slot] = None
            self.nodes[inum] = None
            return 0, b'', True
        return 0, b'', False  # Shutdown


def boot(path, fs):
    """Replays the log into fs; returns the file open for appending, torn tail cut."""
    if not os.path.exists(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.fsync(fd)
        d = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        os.fsync(d)
        os.close(d)
        return fd
    fd = os.open(path, os.O_RDWR)
    data = os.pread(fd, os.fstat(fd).st_size, 0)
    at = 0
    while at + 8 <= len(data):
        n, crc = struct.unpack_from('<II', data, at)
        rec = data[at + 8:at + 8 + n]
        if len(rec) < n or zlib.crc32(rec) != crc or n == 0:
            break
        op = rec[0]
        fs.apply(op, parse(op, rec[1:]))
        at += 8 + n
    if at != len(data):
        os.ftruncate(fd, at)
        os.fsync(fd)
    return fd


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    fs = Fs()
    fd = boot(path, fs)
    end = os.fstat(fd).st_size
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', port))
    last = {}  # client -> (seq, reply)
    while True:
        dgram, addr = sock.recvfrom(65536)
        if len(dgram) < 20 or dgram[:2] != b'MF':
            continue
        version, op = dgram[2], dgram[3]
        client, seq = struct.unpack_from('<QQ', dgram, 4)
        head = b'MF' + bytes([1, op | 0x80]) + dgram[4:20]
        if version != 1:
            sock.sendto(head + struct.pack('<i', BAD_VERSION), addr)
            continue
        try:
            args = parse(op, dgram[20:])
        except Malformed:
            sock.sendto(head + struct.pack('<i', MALFORMED), addr)
            continue
        seen = last.get(client)
        if seen and seen[0] == seq:
            sock.sendto(seen[1], addr)
            continue
        if seen and seen[0] > seq:
            continue
        status, extra, changed = fs.apply(op, args)
        if changed:
            rec = bytes([op]) + dgram[20:]
            os.pwrite(fd, struct.pack('<II', len(rec), zlib.crc32(rec)) + rec, end)
            end += 8 + len(rec)
            os.fdatasync(fd)
        reply = head + struct.pack('<i', status) + extra
        last[client] = (seq, reply)
        sock.sendto(reply, addr)
        if op == 7:
            os.fsync(fd)
            return


if __name__ == '__main__':
    main()
