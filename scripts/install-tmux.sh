#!/usr/bin/env bash
# Installs tmux from Debian when it is missing (idempotent). Used by the TUI's end-to-end
# test (tests/tui_tmux.rs), which drives `medic tui` in a private tmux server.
set -euo pipefail
if command -v tmux >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-tmux.sh: need root (or sudo) to apt-get install tmux" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing tmux (Debian package)…" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends tmux >/dev/null
