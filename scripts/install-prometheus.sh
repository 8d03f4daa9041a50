#!/usr/bin/env bash
# Install Prometheus (server + promtool) from Debian when missing. Idempotent and quiet when
# already installed; used by CI on a fresh Debian 12 machine (run as root, or with sudo).
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-prometheus.sh: need root (or sudo) to apt-get install prometheus" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "installing prometheus (Debian package)…" >&2
$SUDO apt-get update -qq
# The package starts a system service on install where an init system runs; tests start their
# own instance on an ephemeral port, so the service is not needed.
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

command -v prometheus >/dev/null && command -v promtool >/dev/null || {
    echo "install-prometheus.sh: prometheus/promtool still missing after apt-get install" >&2
    exit 1
}
