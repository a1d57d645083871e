#!/usr/bin/env bash
# Installs the system packages berth's build and tests need on Debian 12. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# tini: the static init `run --init` mounts into containers (Debian's docker-init).
pkgs=(busybox-static iproute2 ca-certificates tini)
# berth-network: nft for the engine's table (tests run it inside private namespaces); curl
# fetches published ports in the network tests, util-linux's nsenter enters their namespaces.
pkgs+=(nftables curl util-linux)
# python3: the UDP echo server and client of the network tests (busybox has neither).
pkgs+=(python3)
# berth-distribution tests: a real registry, htpasswd (bcrypt), openssl for test PKI, skopeo for interop.
pkgs+=(docker-registry apache2-utils openssl skopeo)
# A real dockerd (20.10) beside berthd: interop tests (crates/berth/tests/dockerd.rs), benchmarks.
pkgs+=(docker.io)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # Packages must not start services (docker.io would start a dockerd that sets up docker0
  # and iptables rules on the host): tests start their own, private ones.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
# The Docker SDK for Python, driven against berthd by crates/berth/tests/sdk.rs.
if ! python3 -c 'import docker' 2>/dev/null; then
  python3 -m pip install -q 'docker>=7'
fi
# rustfmt and clippy ship with the machine's toolchain; add them where rustup can.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
