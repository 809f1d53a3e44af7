#!/usr/bin/env bash
# The test command: installs what is missing, type-checks, and runs every test
# (unit, integration, end-to-end on lab namespaces). Must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh

# A CI log may keep only the end of the output, where a failure's name is not:
# on failure, the lines that name what failed or hung are repeated last.
log=$(mktemp /tmp/weft-test.XXXXXX)
set +e
npm test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
  echo
  echo "== what failed (exit $status; the whole output is above and in $log) =="
  grep -E '✘|Timed out|were pending in|◌|Failed to exit|Internal error|No tests found|exited (due to|with)|remaining in|rror TS|problems? \(' "$log" | head -150 || true
else
  rm -f "$log"
fi
exit "$status"
