#!/usr/bin/env bash
# The project's test command (README quickstart, second line; CI runs exactly this).
# Installs the system tools some tests drive (wrk, promtool, headless Chromium) when it can,
# then lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# the console's browser tests (tests/console) drive Debian's Chromium through its WebDriver
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# the PostgreSQL server the registry tests start on loopback (tests/support/postgres.py)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} (Debian packages used by the load-harness, metrics, console and registry tests)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} missing and not installable here; the tests that need them will skip" >&2
  fi
fi

# the kserve SDK (an OIP client the tests drive): its wheel alone, its imports come with the
# `oip-clients` extra (see pyproject.toml for why not its own requirements)
if ! "${PYTHON:-python3}" -c "import kserve" >/dev/null 2>&1; then
  echo "installing the kserve SDK wheel (--no-deps)"
  "${PYTHON:-python3}" -m pip install -q --no-deps "kserve==0.21.*" \
    || echo "note: kserve not installable here; the kserve client tests will skip" >&2
fi

"${PYTHON:-python3}" -m ruff check .
"${PYTHON:-python3}" -m ruff format --check .
# types (gateway, registry, converters) and the layer contracts, both configured in pyproject
"${PYTHON:-python3}" -m mypy
lint-imports
# every test, the slow ones included (the fast inner loop is in docs/testing.md)
"${PYTHON:-python3}" -m pytest -q "$@"
