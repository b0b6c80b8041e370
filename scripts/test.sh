#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, format and lint checks, every test.
# Run as root: tests use loop devices, btrfs, FUSE and network namespaces.
# Ends with a list of the tests that skipped for a missing capability (under CI=true a
# missing capability fails the test instead).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
ZOS_SKIP_LOG=$(mktemp -t zos-skips.XXXXXX)
export ZOS_SKIP_LOG
summary() {
  local rc=$?
  if [ -s "$ZOS_SKIP_LOG" ]; then
    echo
    echo "SKIPPED ($(sort -u "$ZOS_SKIP_LOG" | wc -l) tests, for a missing capability):"
    sort -u "$ZOS_SKIP_LOG" | sed 's/^/  /'
  else
    echo "no test skipped"
  fi
  rm -f "$ZOS_SKIP_LOG"
  exit "$rc"
}
trap summary EXIT
cargo nextest run --workspace --locked --no-fail-fast
