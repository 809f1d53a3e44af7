#!/usr/bin/env bash
# The test command: installs what is missing, type-checks, and runs every test
# (unit, integration, end-to-end on lab namespaces). Must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
npm test
