#!/usr/bin/env python3
"""Word count with MapReduce, to the contract of docs/mapreduce.md, in Python 3
(standard library only): a second, independent implementation of the `mapreduce`
front end, to show what another language needs to plug into the suite.

    wordcount.py --input DIR --output DIR --nworkers N --nreduce R

The master (this process) plans the map tasks, runs them and then the reduce tasks
in at most N worker processes at a time (this script again, one process a task),
and merges the reduce outputs into output.txt. Unlike the reference it starts a
process for every task and hands it its task on the command line: a worker that
dies (the suite kills some) is noticed when its process ends, and its task is run
again by a new one.

- Map tasks: files under input / N bytes are packed together in name order; larger
  files are cut at line boundaries into pieces of about input / N bytes, so one big
  file still keeps every worker busy. A task counts its pieces' words in one table
  (each piece's words its own: pieces are not joined) and writes one
  `map.part-M-R.txt` a partition, `word<TAB>count` lines.
- Reduce task R adds up `map.part-*-R.txt` and writes `reduce.part-R.txt`, `word
  count` lines in byte order of the words.
- Every file is written to a temp file in the output directory and renamed into
  place, so a killed worker never leaves a partial file under a final name; the
  master removes the temp files of killed workers at the end.
- Words (specs::wordcount): maximal runs of Latin letters (ASCII letters,
  U+00C0..U+024F but the multiplication and division signs, U+1E00..U+1EFF),
  lowercased one character for one (Unicode's simple mapping); anything else,
  invalid UTF-8 included, separates words.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import zlib

MAX_ATTEMPTS = 10


def is_letter(c):
    o = ord(c)
    return (
        ("a" <= c <= "z")
        or ("A" <= c <= "Z")
        or (0xC0 <= o <= 0x24F and o not in (0xD7, 0xF7))
        or (0x1E00 <= o <= 0x1EFF)
    )


def lowercase(word):
    # str.lower is Unicode's full mapping ("İ" becomes "i" and a combining dot);
    # the contract's is the simple one, a character for a character.
    return "".join(c.lower()[0] for c in word)


def count_words(data, counts):
    text = data.decode("utf-8", errors="replace")
    start = None
    for i, c in enumerate(text):
        if is_letter(c):
            if start is None:
                start = i
        elif start is not None:
            w = lowercase(text[start:i])
            counts[w] = counts.get(w, 0) + 1
            start = None
    if start is not None:
        w = lowercase(text[start:])
        counts[w] = counts.get(w, 0) + 1


def partition(word, nreduce):
    return zlib.crc32(word.encode("utf-8")) % nreduce


def write_atomically(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def run_map(task):
    counts = {}
    for path, start, end in task["pieces"]:
        with open(path, "rb") as f:
            f.seek(start)
            count_words(f.read(end - start), counts)
    parts = [[] for _ in range(task["nreduce"])]
    for w, n in counts.items():
        parts[partition(w, task["nreduce"])].append(f"{w}\t{n}\n")
    for r, lines in enumerate(parts):
        write_atomically(os.path.join(task["output"], f"map.part-{task['id']}-{r}.txt"), "".join(lines))


def run_reduce(task):
    counts = {}
    for m in range(task["nmap"]):
        path = os.path.join(task["output"], f"map.part-{m}-{task['id']}.txt")
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                word, sep, n = line.rstrip("\n").partition("\t")
                if not sep or not n.isdigit():
                    raise SystemExit(f"wordcount.py: {path}:{number}: not a word<TAB>count line")
                counts[word] = counts.get(word, 0) + int(n)
    words = sorted(counts, key=lambda w: w.encode("utf-8"))
    write_atomically(
        os.path.join(task["output"], f"reduce.part-{task['id']}.txt"),
        "".join(f"{w} {counts[w]}\n" for w in words),
    )


def pieces_of(path, size, target):
    """(path, start, end) pieces of about `target` bytes, each ending after a newline
    (or at the end of the file)."""
    if size <= target:
        return [(path, 0, size)]
    pieces = []
    with open(path, "rb") as f:
        start = 0
        while start < size:
            cut = start + target
            if cut >= size:
                end = size
            else:
                f.seek(cut)
                rest = f.read(1 << 16)
                while rest and b"\n" not in rest:
                    more = f.read(1 << 16)
                    if not more:
                        break
                    rest += more
                nl = rest.find(b"\n")
                end = size if nl < 0 else cut + nl + 1
            pieces.append((path, start, end))
            start = end
    return pieces


def plan(input_dir, nworkers):
    files = []
    for name in sorted(os.listdir(input_dir)):
        path = os.path.join(input_dir, name)
        if os.path.isfile(path):
            files.append((path, os.path.getsize(path)))
    total = sum(size for _, size in files)
    target = max(1, total // nworkers)
    tasks, current, current_bytes = [], [], 0
    for path, size in files:
        for piece in pieces_of(path, size, target):
            current.append(piece)
            current_bytes += piece[2] - piece[1]
            if current_bytes >= target:
                tasks.append(current)
                current, current_bytes = [], 0
    if current:
        tasks.append(current)
    return tasks


def run_tasks(kind, specs, nworkers):
    """Runs every task in `specs`, at most `nworkers` worker processes at a time; a
    task whose worker dies or fails is run again."""
    pending = list(specs)
    attempts = {}
    running = {}
    while pending or running:
        while pending and len(running) < nworkers:
            spec = pending.pop(0)
            attempts[spec["id"]] = attempts.get(spec["id"], 0) + 1
            proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", kind, json.dumps(spec)],
                stdin=subprocess.DEVNULL,
            )
            running[proc.pid] = (proc, spec)
        time.sleep(0.002)
        for pid, (proc, spec) in list(running.items()):
            status = proc.poll()
            if status is None:
                continue
            del running[pid]
            if status != 0:
                if attempts[spec["id"]] >= MAX_ATTEMPTS:
                    for p, _ in running.values():
                        p.kill()
                    raise SystemExit(
                        f"wordcount.py: {kind} task {spec['id']} failed {MAX_ATTEMPTS} times (last exit status {status})"
                    )
                pending.append(spec)


def master(args):
    if args.nworkers < 1:
        raise SystemExit("wordcount.py: --nworkers must be at least 1")
    if args.nreduce < 1:
        raise SystemExit("wordcount.py: --nreduce must be at least 1")
    if not os.path.isdir(args.input):
        raise SystemExit(f"wordcount.py: input {args.input} is not a directory")
    if os.path.exists(args.output):
        if not os.path.isdir(args.output):
            raise SystemExit(f"wordcount.py: output {args.output} exists and is not a directory")
        if os.listdir(args.output):
            raise SystemExit(f"wordcount.py: output directory {args.output} is not empty")
    else:
        os.makedirs(args.output)
    tasks = plan(args.input, args.nworkers)
    maps = [
        {"id": m, "pieces": pieces, "nreduce": args.nreduce, "output": args.output}
        for m, pieces in enumerate(tasks)
    ]
    run_tasks("map", maps, args.nworkers)
    reduces = [{"id": r, "nmap": len(maps), "output": args.output} for r in range(args.nreduce)]
    run_tasks("reduce", reduces, args.nworkers)
    counts = []
    for r in range(args.nreduce):
        with open(os.path.join(args.output, f"reduce.part-{r}.txt"), encoding="utf-8") as f:
            for line in f:
                word, _, n = line.rstrip("\n").rpartition(" ")
                counts.append((int(n), word))
    counts.sort(key=lambda c: (-c[0], c[1].encode("utf-8")))
    write_atomically(os.path.join(args.output, "output.txt"), "".join(f"{w} {n}\n" for n, w in counts))
    for name in os.listdir(args.output):
        if ".tmp-" in name:
            os.remove(os.path.join(args.output, name))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        task = json.loads(sys.argv[3])
        {"map": run_map, "reduce": run_reduce}[sys.argv[2]](task)
        return
    parser = argparse.ArgumentParser(description="Word count with MapReduce (docs/mapreduce.md)")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--nworkers", type=int, required=True)
    parser.add_argument("--nreduce", type=int, required=True)
    master(parser.parse_args())


if __name__ == "__main__":
    main()
