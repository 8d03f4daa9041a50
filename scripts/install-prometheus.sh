#!/usr/bin/env bash
# Install Prometheus (server + promtool) from Debian when missing. Idempotent and quiet when
# already installed; used by CI on a fresh Debian 12 machine (run as root, or with sudo).
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
apt_install install-prometheus.sh prometheus
# The package starts a system service on install where an init system runs; tests start their
# own instance on an ephemeral port, so the service is not needed.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null || {
    echo "install-prometheus.sh: prometheus/promtool still missing after apt-get install" >&2
    exit 1
}
