#!/usr/bin/env bash
# Operate benchmark, berth vs Debian's docker.io side by side on this machine: `exec` of `true`
# in a running container, through each CLI. Needs root; installs docker.io and hyperfine from
# Debian when missing.
#
#   bash bench/operate.sh            # uses target/release/berth (builds it)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_prepare docker.io hyperfine busybox-static
RUNS=${RUNS:-30}

bench_cleanup_extra() {
  DOCKER_HOST=unix://$DSOCK docker rm -f $(DOCKER_HOST=unix://$DSOCK docker ps -aq) >/dev/null 2>&1
  BERTH_HOST=unix://$BSOCK $BERTH rm -f $(BERTH_HOST=unix://$BSOCK $BERTH ps -aq) >/dev/null 2>&1
}
bench_dirs berth-operate
bench_start_daemons
bench_busybox_tar
BERTH_HOST=unix://$BSOCK $BERTH import "$work/busybox.tar" busybox >/dev/null
DOCKER_HOST=unix://$DSOCK docker import "$work/busybox.tar" busybox >/dev/null
BERTH_HOST=unix://$BSOCK $BERTH run -d --name target busybox sleep 600 >/dev/null
DOCKER_HOST=unix://$DSOCK docker run -d --name target busybox sleep 600 >/dev/null

# Each engine alone: the other's daemons are stopped while it is measured (bench_alone).
AB=$(bench_alone berth); AD=$(bench_alone docker)
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/exec.json" \
  --prepare "$AB" --prepare "$AB" --prepare "$AD" \
  -n "berth CLI -> berthd" "env BERTH_HOST=unix://$BSOCK $BERTH exec target true" \
  -n "docker CLI -> berthd" "env DOCKER_HOST=unix://$BSOCK docker exec target true" \
  -n "docker CLI -> dockerd" "env DOCKER_HOST=unix://$DSOCK docker exec target true" >/dev/null
bench_resume_all
python3 - "$work/exec.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
d = r["docker CLI -> dockerd"]
for k, v in r.items():
    print(f"exec target true: {k:24s} {v*1000:8.1f} ms  ({d/v:5.1f}x vs dockerd)")
PY
