#!/usr/bin/env bash
# Build benchmark, berth vs Debian's docker.io (dockerd 20.10, its legacy builder), side by
# side on this machine. Needs root; installs what is missing from Debian.
#
#   bash bench/build.sh                 # RUNS=10 by default
#
# The Dockerfile has 6 steps with COPYs of a few MB (busybox base, imported into both):
#   cold      `build --no-cache`
#   cached    the same build again, every step from the cache
#   stages    a two-stage build whose stages are independent, against its slower stage alone
# Each figure is the median of RUNS runs, driven by the docker CLI (DOCKER_BUILDKIT=0) against
# each daemon, so the client is the same; the cached build also by `berth build`, berth's own
# client, against `docker build` on dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_prepare docker.io hyperfine busybox-static
DOCKER=${DOCKER:-docker}
RUNS=${RUNS:-10}

bench_dirs berth-build-bench
bench_start_daemons
bench_busybox_tar
B="env DOCKER_HOST=unix://$BSOCK DOCKER_BUILDKIT=0 $DOCKER"
D="env DOCKER_HOST=unix://$DSOCK DOCKER_BUILDKIT=0 $DOCKER"
$B import "$work/busybox.tar" busybox >/dev/null
$D import "$work/busybox.tar" busybox >/dev/null

ctx=$work/ctx; mkdir -p "$ctx"
head -c 3000000 /dev/urandom > "$ctx/a.bin"
head -c 3000000 /dev/urandom > "$ctx/b.bin"
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox
COPY a.bin /data/a.bin
RUN md5sum /data/a.bin > /data/sums
COPY b.bin /data/b.bin
ENV MODE=bench
CMD ["cat", "/data/sums"]
EOF
stages=$work/stages; mkdir -p "$stages"
cp "$ctx/a.bin" "$ctx/b.bin" "$stages/"
cat > "$stages/Dockerfile" <<'EOF'
FROM busybox AS one
COPY a.bin /a.bin
RUN sleep 1 && md5sum /a.bin > /one
FROM busybox AS two
COPY b.bin /b.bin
RUN sleep 1 && md5sum /b.bin > /two
FROM busybox
COPY --from=one /one /one
COPY --from=two /two /two
EOF
cat > "$stages/Dockerfile.one" <<'EOF'
FROM busybox AS one
COPY a.bin /a.bin
RUN sleep 1 && md5sum /a.bin > /one
EOF

# hyperfine discards the output itself; no shell in between.
q() { echo "$1 build -q $2"; }
BB="env BERTH_HOST=unix://$BSOCK $BERTH"
AB=$(bench_alone berth); AD=$(bench_alone docker)
hyperfine -N --runs "$RUNS" --export-json "$work/cold.json" \
  --prepare "$AB" --prepare "$AD" \
  -n "berth cold" "$(q "$B" "--no-cache $ctx")" \
  -n "docker cold" "$(q "$D" "--no-cache $ctx")" >/dev/null
bench_resume_all
# The cold builds leave dirty pages behind: flushed now, not in the middle of the next figures.
sync
hyperfine -N --runs "$RUNS" --warmup 3 --export-json "$work/cached.json" \
  --prepare "$AB" --prepare "$AB" --prepare "$AD" \
  -n "berth cached" "$(q "$B" "$ctx")" \
  -n "berth CLI cached" "$(q "$BB" "$ctx")" \
  -n "docker cached" "$(q "$D" "$ctx")" >/dev/null
bench_resume_all
sync
hyperfine -N --runs 3 --export-json "$work/stages.json" \
  --prepare "$AB" --prepare "$AB" --prepare "$AD" \
  -n "berth two stages" "$(q "$B" "--no-cache $stages")" \
  -n "berth slower stage" "$(q "$B" "--no-cache -f $stages/Dockerfile.one $stages")" \
  -n "docker two stages" "$(q "$D" "--no-cache $stages")" >/dev/null
bench_resume_all

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def medians(name):
    return {r["command"]: r["median"] for r in json.load(open(f"{work}/{name}.json"))["results"]}
for name in ["cold", "cached"]:
    m = medians(name)
    b, d = m[f"berth {name}"], m[f"docker {name}"]
    print(f"{name:7s} berth {b*1000:8.1f} ms   dockerd {d*1000:8.1f} ms   ({d/b:5.1f}x faster)")
    if name == "cached":
        c = m["berth CLI cached"]
        print(f"cached  berth build (our CLI) {c*1000:.1f} ms   ({d/c:5.1f}x faster than docker build on dockerd)")
m = medians("stages")
print(f"stages  berth {m['berth two stages']*1000:8.1f} ms (slower stage alone {m['berth slower stage']*1000:.1f} ms)"
      f"   dockerd {m['docker two stages']*1000:8.1f} ms")
PY
