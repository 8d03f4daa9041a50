#!/usr/bin/env bash
# Installs Debian's prometheus-alertmanager when it is missing (idempotent). Used by the
# Alertmanager integration tests (medic-server's and `medic serve`'s), which start
# `alertmanager` on 127.0.0.1.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
if command -v alertmanager >/dev/null 2>&1 || [ -x /usr/bin/prometheus-alertmanager ]; then
    exit 0
fi
apt_install install-alertmanager.sh prometheus-alertmanager
