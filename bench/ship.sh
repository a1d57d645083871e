#!/usr/bin/env bash
# Ship benchmark, berth vs Debian's docker.io (dockerd 20.10), side by side on this machine
# against the same local docker-registry. Needs root; installs what is missing from Debian.
#
#   bash bench/ship.sh                 # RUNS=5 by default
#
# The image: a Debian bookworm root filesystem made by debootstrap (cached under
# /var/tmp/berth-bench-cache), imported into dockerd and pushed by it, so the registry holds
# one gzip layer exactly as docker makes them. Figures:
#   floor      curl <blob> | gzip -d | tar -x  (the cost of the bytes themselves)
#   pull       `pull` of that image after `rmi`, through each engine
#   push       `push` of the pulled image to an empty registry (restarted empty each run)
#   save+load  `save -o f` + `rmi` + `load -i f`
# Each figure is the median of RUNS runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
for c in dockerd:docker.io hyperfine:hyperfine debootstrap:debootstrap \
  docker-registry:docker-registry curl:curl; do
  command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
done
if [ ${#need[@]} -gt 0 ]; then apt-get update -q && apt-get install -y -q "${need[@]}"; fi
cargo build --release --locked -p berth >/dev/null
BERTH=$PWD/target/release/berth
DOCKER=${DOCKER:-docker}
RUNS=${RUNS:-5}
HF=(hyperfine -N --runs "$RUNS")
[ -n "${BENCH_DEBUG:-}" ] && HF+=(--show-output)

cache=/var/tmp/berth-bench-cache
if [ ! -f "$cache/debian.tar" ]; then
  mkdir -p "$cache"
  [ -x "$cache/debian/bin/sh" ] || debootstrap bookworm "$cache/debian" http://deb.debian.org/debian
  tar -C "$cache/debian" -c . > "$cache/debian.tar.tmp" && mv "$cache/debian.tar.tmp" "$cache/debian.tar"
fi

. bench/lib.sh
bench_dirs berth-ship
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SRC=$(free_port)
DST=$(free_port)
registry_config() { # $1 port, $2 storage dir
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$2" "$1"
}
registry_config "$SRC" "$work/src-registry" > "$work/src.yml"
registry_config "$DST" "$work/dst-registry" > "$work/dst.yml"
bench_cleanup_extra() {
  [ -n "${spid:-}" ] && kill "$spid"
  [ -f "$work/dst.pid" ] && kill "$(cat "$work/dst.pid")"
}

docker-registry serve "$work/src.yml" >"$work/src.log" 2>&1 & spid=$!
# The push target is restarted empty before each push run, so every run uploads everything.
cat > "$work/reset-dst.sh" <<EOF
[ -f "$work/dst.pid" ] && kill \$(cat "$work/dst.pid") 2>/dev/null && sleep 0.2
rm -rf "$work/dst-registry"
docker-registry serve "$work/dst.yml" >"$work/dst.log" 2>&1 & echo \$! > "$work/dst.pid"
for _ in \$(seq 100); do curl -sf http://127.0.0.1:$DST/v2/ >/dev/null && exit 0; sleep 0.05; done
exit 1
EOF
bench_start_daemons
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$SRC/v2/" >/dev/null && break; sleep 0.1; done

B="env BERTH_HOST=unix://$BSOCK $BERTH"
D="env DOCKER_HOST=unix://$DSOCK $DOCKER"
IMG=127.0.0.1:$SRC/bench/debian:12
OUT=127.0.0.1:$DST/bench/debian:12
$D import "$cache/debian.tar" "$IMG" >/dev/null
$D push "$IMG" >/dev/null
$D rmi "$IMG" >/dev/null

manifest=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://127.0.0.1:$SRC/v2/bench/debian/manifests/12")
blob=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["layers"][0]["digest"])' "$manifest")
size=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["layers"][0]["size"])' "$manifest")
echo "image: one gzip layer of $((size / 1000000)) MB, $(( $(stat -c %s "$cache/debian.tar") / 1000000 )) MB unpacked"

mkdir -p "$work/floor"
"${HF[@]}" --export-json "$work/floor.json" \
  --prepare "bash -c 'rm -rf $work/floor && mkdir $work/floor'" \
  -n floor "bash -c 'curl -sf http://127.0.0.1:$SRC/v2/bench/debian/blobs/$blob | gzip -d | tar -x -C $work/floor'" >/dev/null
"${HF[@]}" --export-json "$work/pull.json" \
  -n "berth pull" --prepare "bash -c '$B rmi -f $IMG >/dev/null 2>&1 || true'" "$B pull -q $IMG" \
  -n "docker pull" --prepare "bash -c '$D rmi -f $IMG >/dev/null 2>&1 || true'" "$D pull -q $IMG" >/dev/null
$B tag "$IMG" "$OUT"
$D tag "$IMG" "$OUT"
"${HF[@]}" --export-json "$work/push.json" --prepare "bash $work/reset-dst.sh" \
  -n "berth push" "$B push -q $OUT" \
  -n "docker push" "$D push -q $OUT" >/dev/null
"${HF[@]}" --export-json "$work/saveload.json" \
  -n "berth save+load" "bash -c '$B save -o $work/b.tar $IMG && $B rmi -f $IMG $OUT >/dev/null && $B load -q -i $work/b.tar >/dev/null && $B tag $IMG $OUT'" \
  -n "docker save+load" "bash -c '$D save -o $work/d.tar $IMG && $D rmi -f $IMG $OUT >/dev/null && $D load -q -i $work/d.tar >/dev/null && $D tag $IMG $OUT'" >/dev/null

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def medians(name):
    # Medians: the first run of each command pays for cold caches.
    return {r["command"]: r["median"] for r in json.load(open(f"{work}/{name}.json"))["results"]}
floor = medians("floor")["floor"]
print(f"floor  curl | gzip -d | tar -x      {floor:7.2f} s")
for name, b, d in [("pull", "berth pull", "docker pull"), ("push", "berth push", "docker push"),
                   ("saveload", "berth save+load", "docker save+load")]:
    m = medians(name)
    extra = f", {m[b]/floor:.2f}x the floor" if name == "pull" else ""
    print(f"{name:9s} berth {m[b]:7.2f} s   dockerd {m[d]:7.2f} s   ({m[d]/m[b]:5.1f}x faster{extra})")
PY
