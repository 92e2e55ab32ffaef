#!/usr/bin/env bash
# Installs redis-server from Debian's packages when it is missing: the rate-limit,
# guessing-budget and deploy-overlay tests start their own redis-server on a free loopback
# port (money records are in PostgreSQL: scripts/install-test-tools.sh installs it too).
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
else
    sudo="sudo"
fi

$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends redis-server
