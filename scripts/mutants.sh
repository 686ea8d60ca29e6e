#!/usr/bin/env bash
# Mutation score of one system's suite against our own implementation of it.
#
#   scripts/mutants.sh SYSTEM [--budget MINUTES] [--sample K/N] [--jobs J | --in-place] [-- CARGO-MUTANTS-ARGS]
#   scripts/mutants.sh --table          # the table row of every system already run
#
# Every mutant cargo-mutants makes in the system's logic (an operator flipped, a
# branch removed, a return value replaced) is tested with that system's conformance
# suite only: the nextest binary `harness --test SYSTEM`, without its self-checks and
# known-bad runs (those test the suite, not the implementation). The suite launches
# our binaries as processes and builds each one through `cargo build --bin` in the
# tree it was compiled from, which for cargo-mutants is the scratch copy holding the
# mutant: so each mutant's binary is rebuilt before its tests run.
#
# --budget stops the run after MINUTES (the mutants tested so far are scored and the
# row says how many of all were examined); --sample K/N tests every N-th mutant
# (cargo-mutants' round-robin shard K of N), a uniform sample for systems whose full
# run takes hours. --in-place mutates this tree itself instead of a scratch copy, so
# the warm target/ is reused and no first build of the harness is needed: use it in a
# worktree of its own (`git worktree add`), never in one being edited; cargo-mutants
# restores each file after its mutant. Results go to target/mutants/SYSTEM/: cargo-mutants' own output
# (mutants.out/: caught.txt, missed.txt, timeout.txt, unviable.txt, logs) and row.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# SYSTEM -> packages to mutate, files of its logic (cargo-mutants globs), suite binary,
# and the seconds after which a mutant's suite run counts as hung: about eight times
# the suite's own run (raft and kvraft: 15 s in simulated time), 300 s for the suites
# in real time, whose hang guards are 60 s a test. cargo-mutants would derive it from
# the baseline, whose time is mostly building the harness in its scratch tree.
system_config() {
    case "$1" in
        kvsrv) packages=(kvsrv) files=(impls/kvsrv/src/core.rs impls/kvsrv/src/node.rs) suite=kvsrv timeout=180 ;;
        raft) packages=(raft) files=(impls/raft/src/core.rs) suite=raft timeout=120 ;;
        # Raft's persistence (what a node writes, and reads back at start), tested by
        # the same suite: its own row, so that the core's row stays comparable with
        # its earlier runs.
        raft-disk) packages=(raft) files=(impls/raft/src/disk.rs) suite=raft timeout=120 ;;
        dfs) packages=(dfs) files=(impls/dfs/src/core.rs impls/dfs/src/fsck.rs impls/dfs/src/disk.rs) suite=dfs timeout=300 ;;
        mapreduce) packages=(mapreduce) files=(impls/mapreduce/src/core.rs) suite=mapreduce timeout=300 ;;
        webserver) packages=(webserver) files=(impls/webserver/src/buffer.rs impls/webserver/src/master.rs) suite=webserver timeout=300 ;;
        kvraft) packages=(kvraft) files=(impls/kvraft/src/core.rs) suite=kvraft timeout=120 ;;
        # The Raft member both services run on (kvraft's `replica`) stays in shardkv's
        # row, where it has been since the first run.
        shardkv) packages=(shardkv kvraft) files=(impls/shardkv/src/ctrl.rs impls/shardkv/src/group.rs impls/kvraft/src/replica.rs) suite=shardkv timeout=300 ;;
        *)
            echo "mutants.sh: unknown system '$1' (kvsrv, raft, raft-disk, dfs, mapreduce, webserver, kvraft, shardkv)" >&2
            exit 2
            ;;
    esac
}

row() {
    # One table row from cargo-mutants' outcome lists.
    local system=$1 out=$2 examined=$3 total=$4 note=$5
    local caught missed timeouts unviable viable score
    caught=$(wc -l <"$out/caught.txt")
    missed=$(wc -l <"$out/missed.txt")
    timeouts=$(wc -l <"$out/timeout.txt")
    unviable=$(wc -l <"$out/unviable.txt")
    # A mutant that makes the suite hang is caught: a user's run would fail on it.
    viable=$((caught + missed + timeouts))
    if [ "$viable" -gt 0 ]; then
        score=$(awk -v c=$((caught + timeouts)) -v v="$viable" 'BEGIN { printf "%.1f%%", 100 * c / v }')
    else
        score="n/a"
    fi
    local mutants=$total
    if [ "$examined" -lt "$total" ]; then
        mutants="$examined of $total"
        # A part of the mutants (cargo-mutants tests them in random order) estimates
        # the whole list's score: with its 95% Wilson interval.
        [ "$viable" -gt 0 ] && score="$score ($(awk -v c=$((caught + timeouts)) -v n="$viable" 'BEGIN {
            z = 1.96; p = c / n; d = 1 + z * z / n
            mid = (p + z * z / (2 * n)) / d
            half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
            printf "95%% CI %.0f-%.0f%%", 100 * (mid - half), 100 * (mid + half) }'))"
    fi
    echo "| $system | $mutants | $caught | $missed | $timeouts | $unviable | $score |$note"
}

table() {
    echo "| system | mutants | caught | missed | timeouts | unviable | score |"
    echo "|---|---|---|---|---|---|---|"
    for f in target/mutants/*/row.md; do
        [ -e "$f" ] && cat "$f"
    done
}

[ $# -ge 1 ] || usage
if [ "$1" = "--table" ]; then
    table
    exit 0
fi
system=$1
shift
budget="" sample="" jobs=(--jobs 1)
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --budget) budget=$2; shift 2 ;;
        --sample) sample=$2; shift 2 ;;
        --jobs) jobs=(--jobs "$2"); shift 2 ;;
        --in-place) jobs=(--in-place); shift ;;
        --) shift; extra=("$@"); break ;;
        *) usage ;;
    esac
done
system_config "$system"

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "mutants.sh: installing cargo-mutants (once)" >&2
    cargo install --locked cargo-mutants
fi

out=target/mutants/$system
rm -rf "$out"
mkdir -p "$out"

# .cargo/mutants.toml leaves out the bug switches' code.
# --shuffle: a run that the budget ends has tested a random part of the mutants, not
# the first functions of the first file.
args=("${packages[@]/#/--package=}" --test-tool nextest "${jobs[@]}" --shuffle --output "$out" --timeout "$timeout")
for f in "${files[@]}"; do
    args+=(--file "$f")
done
note=""
if [ -n "$sample" ]; then
    args+=(--shard "$sample" --sharding round-robin)
    note=" sample $sample of the mutants"
fi
total=$(cargo mutants "${args[@]}" --list "${extra[@]}" | wc -l)

# cargo-mutants builds and tests a mutant with the mutated package's tests only;
# naming the harness package in every cargo call adds the suite (built in the build
# phase, so the test timeout counts tests only), and the filter keeps the suite alone
# (the package's own unit tests are not what is measured).
args+=(--cargo-arg=--package=harness)
# --fail-fast: one failing test decides a mutant (the profiles run every test).
test_args=(--fail-fast -E "package(harness) & binary($suite) & not test(/::(known_bad|self_check)::/)")

echo "mutants.sh: $system: $total mutants in ${files[*]}, each tested by harness --test $suite" >&2
status=0
if [ -n "$budget" ]; then
    timeout --signal=INT --kill-after=60 "$((budget * 60))" \
        cargo mutants "${args[@]}" "${extra[@]}" -- "${test_args[@]}" || status=$?
else
    cargo mutants "${args[@]}" "${extra[@]}" -- "${test_args[@]}" || status=$?
fi
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts: results, not errors.
# 124/130 is the budget ending the run.
case $status in
    0 | 2 | 3 | 124 | 130) ;;
    *)
        echo "mutants.sh: cargo mutants failed (exit $status); see $out/mutants.out/log/" >&2
        exit "$status"
        ;;
esac

m=$out/mutants.out
examined=$(cat "$m"/{caught,missed,timeout,unviable}.txt | wc -l)
[ "$examined" -lt "$total" ] && note="$note (budget of $budget min ended the run)"
row "$system" "$m" "$examined" "$total" "$note" | tee "$out/row.md"
echo "mutants.sh: missed mutants: $m/missed.txt" >&2
