#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the end-to-end tests that start real
# daemons (they need root: namespaces, overlayfs, cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "the test suite needs root (namespaces, mounts, cgroups): run it with sudo" >&2
  exit 1
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
