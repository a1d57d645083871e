#!/usr/bin/env bash
# Network benchmark: a berth daemon with bridge networking inside a network namespace of its
# own (only loopback and the bridges it makes). Prints:
#   - what network setup adds to `run --rm busybox true` (default bridge vs --network none);
#   - published-port throughput on loopback against a direct connection to the container;
#   - 100 containers on one user network, each resolving every other by name.
#
#   bash bench/network.sh            # uses target/release/berth (builds it)
#   BERTH_CONFIG='{"userland-proxy": true}' bash bench/network.sh    # loopback through the proxy
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_prepare hyperfine curl busybox-static
RUNS=${RUNS:-30}
NS=berth-bench-$$

bench_cleanup_extra() {
  BERTH_HOST=unix://$BSOCK $BERTH rm -f $(BERTH_HOST=unix://$BSOCK $BERTH ps -aq) >/dev/null 2>&1
  ip netns del "$NS" 2>/dev/null
}
bench_dirs berth-network
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
printf '%s\n' "${BERTH_CONFIG:-"{}"}" > "$work/berth.json"
nsenter --net=/run/netns/$NS -- $BERTH daemon --data-root "$work/berth" --exec-root "$bexec" \
  --config-file "$work/berth.json" -H "unix://$BSOCK" 2>"$work/berth.log" & bpid=$!
for _ in $(seq 100); do [ -S "$BSOCK" ] && break; sleep 0.1; done
export BERTH_HOST=unix://$BSOCK
bench_busybox_tar
$BERTH import -c 'CMD ["sh"]' "$work/busybox.tar" busybox >/dev/null

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/run.json" \
  -n "network none" "$BERTH run --rm --network none busybox true" \
  -n "default bridge" "$BERTH run --rm busybox true" >/dev/null
python3 - "$work/run.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
n, b = r["network none"], r["default bridge"]
print(f"run --rm busybox true: --network none {n*1000:.1f} ms, default bridge {b*1000:.1f} ms, network setup adds {(b-n)*1000:.1f} ms")
PY

# 1 GiB from a tmpfs, through the published port on 127.0.0.1 and straight to the container.
$BERTH run -d --name big -p 18999:80 --tmpfs /www:size=1100m busybox \
  sh -c 'dd if=/dev/zero of=/www/big bs=1M count=1024 2>/dev/null && httpd -f -p 80 -h /www' >/dev/null
ip=$($BERTH inspect -f '{{.NetworkSettings.IPAddress}}' big)
for _ in $(seq 100); do
  ip netns exec "$NS" curl -sf -o /dev/null -r 0-0 "http://$ip/big" && break; sleep 0.1
done
speed() { ip netns exec "$NS" curl -s -o /dev/null -w '%{speed_download}' "$1"; }
# Pairs taken back to back, direct then published, so that both sides of a ratio see the same
# machine (this VM's speed swings by a quarter from minute to minute); the median of 9 ratios.
ratios=()
for _ in $(seq 9); do
  d=$(speed "http://$ip/big"); p=$(speed "http://127.0.0.1:18999/big")
  ratios+=("$d:$p")
done
python3 - "${ratios[@]}" <<'PY'
import statistics, sys
pairs = [tuple(map(float, a.split(":"))) for a in sys.argv[1:]]
r = statistics.median(p / d for d, p in pairs)
d = statistics.median(d for d, _ in pairs)
p = statistics.median(p for _, p in pairs)
print(f"1 GiB: direct {d/1e6:.0f} MB/s, through -p on 127.0.0.1 {p/1e6:.0f} MB/s "
      f"(median of {len(pairs)} paired ratios: {100*r:.0f}% of direct)")
PY

# 100 containers on one user network; one of them resolves all the others.
$BERTH network create many >/dev/null
start=$(date +%s%N)
seq 100 | xargs -P 6 -I{} $BERTH run -d --name "n{}" --network many busybox sleep 600 >/dev/null
end=$(date +%s%N)
echo "100 x run -d on one user network: $(( (end - start) / 1000000 )) ms"
start=$(date +%s%N)
resolved=$($BERTH exec n1 sh -c 'ok=0; for i in $(seq 100); do nslookup n$i 127.0.0.11 >/dev/null 2>&1 && ok=$((ok+1)); done; echo $ok')
end=$(date +%s%N)
echo "names resolved by n1: $resolved/100 in $(( (end - start) / 1000000 )) ms"
