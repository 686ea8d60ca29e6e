#!/usr/bin/env bash
# Benchmarks wserver against nginx on the same 1 KiB file with wrk, persistent
# connections (keep-alive) and one connection per request (Connection: close), and
# prints a Markdown table to paste into docs/webserver.md.
#
#   impls/webserver/bench/wrk_vs_nginx.sh            # 2 workers each, 5 rounds of 6 s runs
#   WORKERS=4 DURATION=20s CONNECTIONS=100 ROUNDS=3 impls/webserver/bench/wrk_vs_nginx.sh
#
# Needs Debian's nginx-light and wrk (apt-get install -y nginx-light wrk). Runs under
# `flock /tmp/bench.lock` so that two benchmarks on a shared machine never overlap.
# Only loopback traffic; every run is bounded by DURATION.
set -euo pipefail
[ -n "${WRK_VS_NGINX_TRACE:-}" ] && set -x

WORKERS=${WORKERS:-2}
DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
ROUNDS=${ROUNDS:-5}

for tool in wrk nginx python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "wrk_vs_nginx: $tool not found; install with: apt-get install -y nginx-light wrk" >&2
    exit 1
  fi
done

if [ "${WRK_VS_NGINX_LOCKED:-}" != 1 ]; then
  export WRK_VS_NGINX_LOCKED=1
  exec flock /tmp/bench.lock bash "${BASH_SOURCE[0]}" "$@"
fi

repo=$(cd "$(dirname "$0")/../../.." && pwd)
cargo build --release -q -p webserver --manifest-path "$repo/Cargo.toml"
wserver="$repo/target/release/wserver"

work=$(mktemp -d /tmp/wrk-vs-nginx.XXXXXX)
# nginx workers run as www-data and must be able to read the root.
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/root" "$work/nginx"
head -c 1024 /dev/zero | tr '\0' 'a' > "$work/root/1k.html"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nginx_port=$(free_port)
wserver_port=$(free_port)

cat > "$work/nginx/nginx.conf" <<CONF
worker_processes $WORKERS;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/root;
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
nginx_pid=$!
pids+=($nginx_pid)
"$wserver" -d "$work/root" -p "$wserver_port" -t "$WORKERS" -b 256 2>"$work/wserver.log" &
wserver_pid=$!
pids+=($wserver_pid)

wait_up() {
  for _ in $(seq 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$1/1k.html"; then return 0; fi
    sleep 0.05
  done
  echo "wrk_vs_nginx: nothing answers on port $1" >&2
  exit 1
}
wait_up "$nginx_port"
wait_up "$wserver_port"

# CPU time (user + system, in clock ticks) a server has used so far: its process (all
# its threads) and its children (nginx's workers; wserver has none here).
ticks=$(getconf CLK_TCK)
server_ticks() {
  local ps
  ps="$1 $(pgrep -P "$1" | tr '\n' ' ' || true)"
  # shellcheck disable=SC2086
  for p in $ps; do cat "/proc/$p/stat"; done | awk '{sub(/.*\) /, ""); t += $12 + $13} END {print t}'
}

# One wrk run; prints "requests/s avg-latency non-2xx+socket-errors cpu-us-per-request".
# The server's CPU per request is its own cost, apart from wrk's and the machine's:
# with both on 2 cores, the rate ratio moves less than the servers' costs differ.
run() {
  local port=$1 header=$2 pid=$3 out before after
  before=$(server_ticks "$pid")
  out=$(wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$DURATION" -H "$header" \
        "http://127.0.0.1:$port/1k.html")
  after=$(server_ticks "$pid")
  local rps lat errs cpu
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  lat=$(awk '/^    Latency/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",",""); n+=$4+$6+$8+$10} END {print n+0}' <<<"$out")
  cpu=$(awk -v d=$((after - before)) -v hz="$ticks" '/ requests in / {printf "%.1f", d * 1e6 / hz / $1}' <<<"$out")
  echo "$rps $lat $errs $cpu"
}

# Rounds alternate the servers so that load from elsewhere on the machine hits both
# alike; the median of the rounds is the headline, the best is shown too.
declare -A all cpus
for round in $(seq "$ROUNDS"); do
  for mode in keep-alive close; do
    for server in nginx wserver; do
      port=$nginx_port pid=$nginx_pid
      [ "$server" = wserver ] && port=$wserver_port pid=$wserver_pid
      read -r r l e c < <(run "$port" "Connection: $mode" "$pid")
      echo "round $round: $server $mode: $r req/s, latency $l, errors $e, server CPU $c us/request" >&2
      all[$server/$mode]+="$r "
      cpus[$server/$mode]+="$c "
      [ "$e" = 0 ] || echo "wrk_vs_nginx: $server $mode had $e errors" >&2
    done
  done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
best() { tr ' ' '\n' <<<"$1" | grep . | sort -g | tail -1; }

cpu=$(awk -F: '/model name/ {sub(/^ /,"",$2); print $2; exit}' /proc/cpuinfo)
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($cpu), load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "$WORKERS workers each, wrk -t $WRK_THREADS -c $CONNECTIONS -d $DURATION on a 1 KiB file, $ROUNDS rounds:"
echo
echo "| mode | nginx median req/s | wserver -t $WORKERS median req/s | wserver / nginx (median) | nginx best | wserver best | rounds wserver >= nginx | server CPU us/request, nginx / wserver (median) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for mode in keep-alive close; do
  n=$(median "${all[nginx/$mode]}") w=$(median "${all[wserver/$mode]}")
  ratio=$(awk -v a="$w" -v b="$n" 'BEGIN{printf "%.2f", a/b}')
  read -ra ns <<<"${all[nginx/$mode]}"
  read -ra ws <<<"${all[wserver/$mode]}"
  wins=0
  for i in "${!ns[@]}"; do
    awk -v a="${ws[$i]}" -v b="${ns[$i]}" 'BEGIN{exit !(a>=b)}' && wins=$((wins+1))
  done
  echo "| $mode | $n | $w | $ratio | $(best "${all[nginx/$mode]}") | $(best "${all[wserver/$mode]}") | $wins of ${#ns[@]} | $(median "${cpus[nginx/$mode]}") / $(median "${cpus[wserver/$mode]}") |"
done
