#!/usr/bin/env bash
# The project's test command (README quickstart, second line; CI runs exactly this).
# Installs the system tools some tests drive (wrk, promtool) when it can, then lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} (Debian packages used by the load-harness and metrics tests)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} missing and not installable here; the tests that need them will skip" >&2
  fi
fi

"${PYTHON:-python3}" -m ruff check .
"${PYTHON:-python3}" -m ruff format --check .
# every test, the slow ones included (the fast inner loop is in docs/testing.md)
"${PYTHON:-python3}" -m pytest -q "$@"
