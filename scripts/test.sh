#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, format and lint checks, every test.
# Run as root: tests use loop devices, btrfs, FUSE and network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo nextest run --workspace --locked --no-fail-fast
