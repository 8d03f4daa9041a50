#!/usr/bin/env bash
# Installs Debian's prometheus-alertmanager when it is missing (idempotent). Used by
# medic-server's Alertmanager integration test, which starts `alertmanager` on 127.0.0.1.
set -euo pipefail
if command -v alertmanager >/dev/null 2>&1 || [ -x /usr/bin/prometheus-alertmanager ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: the server test needs the binary only, not the web UI extras.
$SUDO apt-get install -y -qq --no-install-recommends prometheus-alertmanager
