#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (idempotently,
# cached under ~/.cache/medic), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
for setup in scripts/install-*.sh scripts/setup-*.sh; do
  [ -x "$setup" ] || continue
  echo "==> $setup"
  "$setup"
done
# A CI run starts from a clean clone: incremental state is never reused there, and it is the
# largest part of target/ (several GB on this workspace), so it is off unless asked for.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi
echo "==> cargo test --workspace"
# --no-fail-fast: one run reports every failing test, not just the first binary's.
cargo test --workspace --locked --no-fail-fast
