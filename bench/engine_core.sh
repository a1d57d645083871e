#!/usr/bin/env bash
# Engine-core benchmark, berth vs Debian's docker.io (dockerd + containerd + runc), side by side
# on this machine. Prints each figure and the ratio. Needs root; installs docker.io and
# hyperfine from Debian when missing.
#
#   bash bench/engine_core.sh            # uses target/release/berth (builds it)
#
# Figures: `run --rm busybox true` end to end through each CLI; daemon idle RSS; RSS of one
# running container's shim; 30 `run -d` issued 6 at a time until all are running.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_prepare docker.io hyperfine busybox-static
RUNS=${RUNS:-30}

bench_cleanup_extra() {
  DOCKER_HOST=unix://$DSOCK docker rm -f $(DOCKER_HOST=unix://$DSOCK docker ps -aq) >/dev/null 2>&1
  BERTH_HOST=unix://$BSOCK $BERTH rm -f $(BERTH_HOST=unix://$BSOCK $BERTH ps -aq) >/dev/null 2>&1
}
bench_dirs berth-bench
bench_start_daemons
bench_busybox_tar
BERTH_HOST=unix://$BSOCK $BERTH import "$work/busybox.tar" busybox >/dev/null
DOCKER_HOST=unix://$DSOCK docker import "$work/busybox.tar" busybox >/dev/null

rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }
sleep 2
b_idle=$(rss_kb $bpid)
cpid=$(pgrep -f "containerd --config $dexec" | head -1 || true)
d_idle=$(( $(rss_kb $dpid) + ${cpid:+$(rss_kb $cpid)} + 0 ))
echo "daemon idle RSS: berth ${b_idle} KiB, dockerd+containerd ${d_idle} KiB"

# Each engine alone: the other's daemons are stopped while it is measured (bench_alone).
AB=$(bench_alone berth); AD=$(bench_alone docker)
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/run.json" \
  --prepare "$AB" --prepare "$AB" --prepare "$AD" \
  -n "berth CLI -> berthd" "env BERTH_HOST=unix://$BSOCK $BERTH run --rm busybox true" \
  -n "docker CLI -> berthd" "env DOCKER_HOST=unix://$BSOCK docker run --rm busybox true" \
  -n "docker CLI -> dockerd" "env DOCKER_HOST=unix://$DSOCK docker run --rm busybox true" >/dev/null
bench_resume_all
python3 - "$work/run.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
d = r["docker CLI -> dockerd"]
for k, v in r.items():
    print(f"run --rm busybox true: {k:24s} {v*1000:8.1f} ms  ({d/v:5.1f}x vs dockerd)")
PY

cid=$(BERTH_HOST=unix://$BSOCK $BERTH run -d busybox sleep 600)
sleep 1
shim=$(pgrep -f "berth-shim shim .*$cid" | head -1)
echo "running container's shim RSS: $(rss_kb "$shim") KiB"
dcid=$(DOCKER_HOST=unix://$DSOCK docker run -d busybox sleep 600)
dshim=$(pgrep -f "containerd-shim-runc-v2 .*-id $dcid" | head -1 || true)
[ -n "$dshim" ] && echo "containerd-shim RSS: $(rss_kb "$dshim") KiB"

burst() { # $1 = env var assignment, $2 = CLI
  local start end
  start=$(date +%s%N)
  seq 30 | xargs -P 6 -I{} env "$1" $2 run -d busybox sleep 600 >/dev/null
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
}
b=$(burst "BERTH_HOST=unix://$BSOCK" "$BERTH")
d=$(burst "DOCKER_HOST=unix://$DSOCK" docker)
echo "30 x run -d, 6 at a time: berth ${b} ms, dockerd ${d} ms ($(python3 -c "print(round($d/$b,1))")x)"
