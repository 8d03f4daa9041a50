#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (idempotently,
# cached under ~/.cache/medic), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
for setup in scripts/install-prometheus.sh scripts/setup-llama.sh; do
  if [ -x "$setup" ]; then
    echo "==> $setup"
    "$setup"
  fi
done
echo "==> cargo test --workspace"
cargo test --workspace --locked
