#!/usr/bin/env bash
# Install checks: modelgate as a user installs it, from a clean clone of the current commit.
#
#   bash scripts/check_install.sh [readme] [core] [min]     (default: all three)
#
#   readme  a clean venv runs the README's first quickstart command exactly as written
#           (read from README.md), then the curl commands the README shows: HTTP 200 and
#           a sane JSON answer each
#   core    `pip install .` (no extra) serves a copy of the registry `readme` built,
#           answers a prediction, runs the verbs that need no extra, and the verbs that
#           do need one name it in one line (exit 2); needs `readme` (added if left out)
#   min     the core dependencies pinned to pyproject.toml's lower bounds
#           (scripts/min_constraints.py), and the serving tests run against them
#
# Prints one PASS or FAIL line per check and a closing "install: N passed, N failed"; exits
# non-zero on any failure. Uncommitted changes are not checked (the clone is of HEAD).
# pip's cache is reused; core and min install with --no-compile (no .pyc written ahead:
# on 2 cores that halves the install time). Details: docs/installing.md.

# the checks are called by name ("check_$check"), which shellcheck cannot follow
# shellcheck disable=SC2317
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
README_PORT=8000 # the port the README's commands use
READY_TIMEOUT_S="${MODELGATE_INSTALL_READY_TIMEOUT_S:-900}"
# extra floors over pyproject.toml's lower bounds (none: its bounds are the tested ones;
# uvicorn's lower bound is the first release with every internal the fast path uses)
MIN_FLOORS=()
MIN_TESTS=(
  tests/gateway/dataplane
  tests/gateway/test_serve_uvicorn.py
  tests/gateway/test_app_endpoints.py
  tests/gateway/test_monitoring_metrics.py
  tests/registry/test_registry_store.py
  tests/registry/test_registry_metadata_yaml.py
)
# what the serving tests need beyond `.[convert]` (the zoo registry is built with it)
MIN_TEST_TOOLS=(pytest pytest-asyncio httpx "tritonclient[http]")
OPTIONAL=(sklearn skl2onnx onnx pandas scipy matplotlib httpx pyarrow joblib xgboost lightgbm
  onnxmltools mlflow)

passed=0
failed=0
SERVER_PID=""
WORK=""

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

finish() {
  stop_server
  if [ "$failed" -eq 0 ]; then
    rm -rf "$WORK"
  else
    echo "install check files kept in $WORK"
  fi
}

pass() { echo "PASS $1"; passed=$((passed + 1)); }

# FAIL line, the end of the log that explains it, and stop this check (return 1)
fail() {
  echo "FAIL $1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then
    echo "---- last lines of $2"
    tail -n 40 "$2" | grep -v "^WARNING: Location 'file:" || true
    echo "----"
  fi
  failed=$((failed + 1))
  return 1
}

# run LOG COMMAND...: the command's output into LOG
run() {
  local log="$1"
  shift
  "$@" >>"$log" 2>&1
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_is_free() {
  "$PY" -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' \
    "$1" 2>/dev/null
}

# start_server LOG DIR COMMAND: COMMAND (a shell line) in its own process group, in DIR
start_server() {
  local log="$1" dir="$2" command="$3"
  (cd "$dir" && exec setsid bash -c "$command" </dev/null >>"$log" 2>&1) &
  SERVER_PID=$!
}

# wait_ready PORT LOG: until /v2/health/ready answers 200 (1: the server died or timed out)
wait_ready() {
  local port="$1" log="$2" deadline=$((SECONDS + READY_TIMEOUT_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "the server command exited before it was ready" >>"$log"
      return 1
    fi
    if curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/health/ready" \
      2>/dev/null | grep -qx 200; then
      return 0
    fi
    sleep 1
  done
  echo "not ready after ${READY_TIMEOUT_S}s" >>"$log"
  return 1
}

# curl_check LOG COMMAND: run a README curl line, require 200 and a sane JSON answer
curl_check() {
  local log="$1" command="$2" body="$WORK/run/answer.json" status problem
  echo "\$ $command" >>"$log"
  status="$(eval "$command -o '$body' -w '%{http_code}'")" || status="curl failed ($?)"
  cat "$body" >>"$log" 2>/dev/null || true
  echo >>"$log"
  if [ "$status" != 200 ]; then
    echo "HTTP $status from: $command" >>"$log"
    return 1
  fi
  if ! problem="$("$PY" "$SRC/scripts/readme_commands.py" answer "$command" "$body")"; then
    echo "not a sane answer ($problem) to: $command" >>"$log"
    return 1
  fi
}

# expect_extra LOG VERB ARGS...: the verb exits 2 with one stderr line naming the convert extra
expect_extra() {
  local log="$1" code=0
  shift
  echo "\$ modelgate $*" >>"$log"
  "$@" >"$WORK/run/out" 2>"$WORK/run/err" || code=$?
  cat "$WORK/run/out" "$WORK/run/err" >>"$log"
  if [ "$code" != 2 ] || [ "$(wc -l <"$WORK/run/err")" != 1 ] ||
    ! grep -q "needs the 'convert' extra" "$WORK/run/err"; then
    echo "expected exit 2 and one line naming the convert extra, got exit $code" >>"$log"
    return 1
  fi
}

clone() {
  local commit
  commit="$(git -C "$ROOT" rev-parse HEAD)" || return 1
  if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
    echo "note: uncommitted changes are not checked (the clone is of $commit)"
  fi
  git clone -q --no-checkout "$ROOT" "$SRC" && git -C "$SRC" checkout -q --detach "$commit" ||
    return 1
  echo "install checks of $commit in $WORK"
}

check_readme() {
  local log="$LOGS/readme.log" start=$SECONDS first curls line
  first="$("$PY" "$SRC/scripts/readme_commands.py" first "$SRC/README.md")" ||
    { fail "readme: no quickstart command in README.md"; return 1; }
  curls="$("$PY" "$SRC/scripts/readme_commands.py" curls "$SRC/README.md")" ||
    { fail "readme: no curl command in README.md's quickstart"; return 1; }
  port_is_free "$README_PORT" ||
    { fail "readme: port $README_PORT (the README's) is in use on this machine"; return 1; }
  run "$log" "$PY" -m venv "$WORK/venv-readme" || { fail "readme: python3 -m venv" "$log"; return 1; }
  echo "\$ $first" >>"$log"
  # the command as written, in the clone, with the venv first on PATH (as activated)
  start_server "$log" "$SRC" "export VIRTUAL_ENV='$WORK/venv-readme'; \
PATH='$WORK/venv-readme/bin':\"\$PATH\"; $first"
  wait_ready "$README_PORT" "$log" ||
    { fail "readme: '$first' did not bring a server up on port $README_PORT" "$log"; return 1; }
  while IFS= read -r line; do
    curl_check "$log" "$line" || { fail "readme: $line" "$log"; return 1; }
  done <<<"$curls"
  stop_server
  if grep -q "Traceback" "$log"; then fail "readme: a traceback in the output" "$log"; return 1; fi
  [ -d "$SRC/.modelgate" ] || { fail "readme: no registry in ./.modelgate" "$log"; return 1; }
  pass "readme: '$first' served the demo; $(wc -l <<<"$curls") curl command(s) answered 200 ($((SECONDS - start)) s)"
}

check_core() {
  local log="$LOGS/core.log" start=$SECONDS venv="$WORK/venv-core" home="$WORK/home-core"
  local port mg line installed
  [ -d "$SRC/.modelgate" ] || { fail "core: no registry from the readme check to serve"; return 1; }
  run "$log" "$PY" -m venv "$venv" || { fail "core: python3 -m venv" "$log"; return 1; }
  (cd "$SRC" && run "$log" "$venv/bin/python" -m pip install --no-compile .) ||
    { fail "core: pip install . (no extra)" "$log"; return 1; }
  installed="$("$venv/bin/python" -c 'import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))' "${OPTIONAL[@]}")"
  [ -z "$installed" ] ||
    { fail "core: pip install . brought optional packages: $installed" "$log"; return 1; }
  cp -a "$SRC/.modelgate" "$home"
  port="$(free_port)"
  mg="$venv/bin/modelgate"
  export MODELGATE_HOME="$home"
  start_server "$log" "$WORK/run" "exec '$mg' serve --port $port"
  wait_ready "$port" "$log" || { fail "core: modelgate serve did not come up" "$log"; return 1; }
  while IFS= read -r line; do
    curl_check "$log" "${line//localhost:$README_PORT/127.0.0.1:$port}" ||
      { fail "core: prediction without the extras" "$log"; return 1; }
  done < <("$PY" "$SRC/scripts/readme_commands.py" curls "$SRC/README.md")
  local verbs=(
    "--help"
    "models"
    "versions churn"
    "show churn 1.0.0"
    "show churn 1.0.0 --yaml"
    "traffic churn"
    "health churn --url http://127.0.0.1:$port"
    "drift churn --url http://127.0.0.1:$port"
    "rollout churn --candidate 1.1.0 --steps 10,100 --interval 3600"
    "rollout churn --status"
    "rollout churn --cancel --reason install-check"
    "traffic churn --route 1.0.0=90 --route 1.1.0=10 --reason install-check"
    "switch churn 1.1.0 --reason install-check"
    "rollback churn --reason install-check"
    "alias churn champion 1.0.0"
    "audit --model churn"
  )
  local verb
  for verb in "${verbs[@]}"; do
    echo "\$ modelgate $verb" >>"$log"
    # shellcheck disable=SC2086  # the verb's words
    run "$log" "$mg" $verb || { fail "core: modelgate $verb" "$log"; return 1; }
  done
  line="$("$PY" "$SRC/scripts/readme_commands.py" curls "$SRC/README.md")"
  line="${line%%$'\n'*}"
  curl_check "$log" "${line//localhost:$README_PORT/127.0.0.1:$port}" ||
    { fail "core: prediction after the traffic changes" "$log"; return 1; }
  stop_server
  unset MODELGATE_HOME
  expect_extra "$log" "$mg" convert model.joblib --sample rows.csv --name m --bump minor \
    --home "$WORK/home-empty" || { fail "core: convert without the extra" "$log"; return 1; }
  expect_extra "$log" "$mg" evaluate churn 1.0.0 --data rows.csv --label churned --home "$home" ||
    { fail "core: evaluate without the extra" "$log"; return 1; }
  expect_extra "$log" "$mg" serve --demo --port "$(free_port)" --home "$WORK/home-empty" ||
    { fail "core: serve --demo without the extra" "$log"; return 1; }
  if grep -q "Traceback" "$log"; then fail "core: a traceback in the output" "$log"; return 1; fi
  pass "core: pip install . served the registry and ran ${#verbs[@]} verbs; convert, evaluate and serve --demo name the extra ($((SECONDS - start)) s)"
}

check_min() {
  local log="$LOGS/min.log" start=$SECONDS venv="$WORK/venv-min" constraints="$WORK/min-constraints.txt"
  "$PY" "$SRC/scripts/min_constraints.py" --pyproject "$SRC/pyproject.toml" "${MIN_FLOORS[@]}" \
    >"$constraints" 2>>"$log" || { fail "min: scripts/min_constraints.py" "$log"; return 1; }
  cat "$constraints" >>"$log"
  run "$log" "$PY" -m venv "$venv" || { fail "min: python3 -m venv" "$log"; return 1; }
  (cd "$SRC" && run "$log" "$venv/bin/python" -m pip install --no-compile -c "$constraints" \
    ".[convert]" "${MIN_TEST_TOOLS[@]}") ||
    { fail "min: pip install with the lowest core versions" "$log"; return 1; }
  local pinned
  pinned="$(grep -v '^#' "$constraints" | cut -d';' -f1 | tr '\n' ' ')"
  echo "lowest core versions: $pinned"
  local status=0
  (cd "$SRC" && exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "${MIN_TESTS[@]}") \
    >>"$log" 2>&1 || status=$?
  echo "pytest exit status $status" >>"$log"
  if [ "$status" != 0 ]; then
    fail "min: the serving tests on the lowest versions (pytest exit status $status)" "$log"
    return 1
  fi
  echo "min: $(tail -n 2 "$log" | head -n 1)"
  pass "min: serving tests pass on the lowest core versions ($((SECONDS - start)) s)"
}

# all in one function, called on the last line: bash has read the whole file before it
# runs anything, so editing the script while it runs cannot break the run
main() {
  checks=("$@")
  [ ${#checks[@]} -gt 0 ] || checks=(readme core min)
  for check in "${checks[@]}"; do
    case "$check" in
      readme | core | min) ;;
      *) echo "usage: $0 [readme] [core] [min]" >&2; exit 2 ;;
    esac
  done
  if [[ " ${checks[*]} " == *" core "* && " ${checks[*]} " != *" readme "* ]]; then
    echo "note: core serves the registry readme builds: running readme first"
    checks=(readme "${checks[@]}")
  fi

  # the user's environment, not the developer's: no PYTHONPATH into a worktree, no settings
  unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PROMETHEUS_MULTIPROC_DIR
  while read -r name; do unset "$name"; done < <(compgen -e | grep '^MODELGATE_' || true)

  WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelgate-install.XXXXXX")"
  SRC="$WORK/src"
  LOGS="$WORK/logs"
  mkdir -p "$LOGS" "$WORK/run"
  trap finish EXIT

  clone || { fail "clone: cannot clone the commit of $ROOT"; exit 1; }
  for check in "${checks[@]}"; do
    "check_$check" || true
  done
  echo "install: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

main "$@"; exit $?
