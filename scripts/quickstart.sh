#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running container, offline (no Docker Hub):
# installs dependencies, builds berth, starts the daemon, imports a busybox image made from
# Debian's busybox-static and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cargo build --release --locked -p berth
install -m 0755 target/release/berth /usr/local/bin/berth
mkdir -p /etc/berth /var/log
if ! berth version >/dev/null 2>&1; then
  nohup berth daemon >/var/log/berth.log 2>&1 &
  for _ in $(seq 100); do [ -S /run/berth/berth.sock ] && break; sleep 0.1; done
fi
if ! berth image inspect busybox >/dev/null 2>&1; then
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
  echo 'root:x:0:' > "$rootfs/etc/group"
  tar -C "$rootfs" -c . | berth import -c 'CMD ["sh"]' - busybox:latest
  rm -rf "$rootfs"
fi
berth run --rm busybox echo "hello from a berth container"
