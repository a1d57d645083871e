# Shared by the benchmarks (sourced after `set -euo pipefail`): a berth daemon and a dockerd
# side by side on private data roots and sockets, cleaned up on exit, and a busybox image tar.
# Scripts source it first and call bench_prepare, which sets BERTH.

# bench_prepare <package>...: installs the Debian packages not yet installed, then builds the
# release binary and sets BERTH to it.
bench_prepare() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
  cargo build --release --locked -p berth >/dev/null
  BERTH=$PWD/target/release/berth
}

# bench_dirs <name>: work, bexec, dexec, BSOCK and DSOCK, removed again on exit. A script that
# has more to undo defines bench_cleanup_extra, which runs first.
bench_dirs() {
  work=$(mktemp -d "/var/tmp/$1.XXXXXX")
  bexec=$(mktemp -d /tmp/bb.XXXXXX)
  dexec=$(mktemp -d /tmp/bd.XXXXXX)
  BSOCK=$bexec/berth.sock
  DSOCK=$dexec/docker.sock
  trap bench_cleanup EXIT
}

bench_cleanup() {
  set +e
  bench_resume_all
  declare -F bench_cleanup_extra >/dev/null && bench_cleanup_extra
  [ -n "${bpid:-}" ] && kill "$bpid" && wait "$bpid"
  [ -n "${dpid:-}" ] && kill "$dpid" && wait "$dpid"
  umount -l "$bexec/berth-shim" 2>/dev/null
  rm -rf "$work" "$bexec" "$dexec"
}

# Starts both daemons (bpid, dpid) and waits for their sockets.
bench_start_daemons() {
  echo '{"bridge": "none"}' > "$work/berth.json"
  $BERTH daemon --data-root "$work/berth" --exec-root "$bexec" --config-file "$work/berth.json" \
    -H "unix://$BSOCK" 2>"$work/berth.log" & bpid=$!
  dockerd --data-root "$work/docker" --exec-root "$dexec/exec" -H "unix://$DSOCK" \
    --pidfile "$dexec/docker.pid" --bridge none --iptables=false 2>"$work/docker.log" & dpid=$!
  for _ in $(seq 300); do [ -S "$BSOCK" ] && [ -S "$DSOCK" ] && return 0; sleep 0.1; done
  echo "the daemons did not start; see $work/*.log" >&2
  return 1
}

# Prepare commands for hyperfine (`--prepare "$(bench_alone berth)"`, one per benchmarked
# command): each engine is measured alone, the other's processes stopped (SIGSTOP), so neither
# engine's idle work lands in the other's figures. An idle dockerd with its containerd added
# ~5 ms to a 20 ms berth build here.
bench_alone() {
  local docker_pids="$dpid $(pgrep -d ' ' -P "$dpid")"
  case $1 in
    berth) echo "sh -c 'kill -STOP $docker_pids; kill -CONT $bpid'" ;;
    docker) echo "sh -c 'kill -STOP $bpid; kill -CONT $docker_pids'" ;;
  esac
}

bench_resume_all() {
  [ -n "${bpid:-}" ] && kill -CONT "$bpid" 2>/dev/null
  [ -n "${dpid:-}" ] && kill -CONT "$dpid" $(pgrep -P "$dpid") 2>/dev/null
  return 0
}

# Writes $work/busybox.tar: a root filesystem of Debian's static busybox.
bench_busybox_tar() {
  local rootfs=$work/rootfs
  mkdir -p "$rootfs"/{bin,etc,tmp}
  cp /bin/busybox "$rootfs/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
  tar -C "$rootfs" -c . > "$work/busybox.tar"
}
