#!/usr/bin/env bash
# Installs tmux from Debian when it is missing (idempotent). Used by the TUI's end-to-end
# test (tests/tui_tmux.rs), which drives `medic tui` in a private tmux server.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
if command -v tmux >/dev/null 2>&1; then
    exit 0
fi
apt_install install-tmux.sh tmux
