#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what it needs, then runs every check.
#   hack/test.sh                 install, lint, types, layers, unit tests (benchmarks included,
#                                at a tiny size), control plane, e2e tests
#   hack/test.sh -m 'not e2e'    pytest arguments pass through to one pytest run instead
# Python packages go into a virtual environment (.venv, or $PARETOSCALE_VENV), never into the
# system's site-packages. Unit tests run before the e2e control plane starts, so they never
# compete with a live cluster for the CPU. The e2e tests run on a real local control plane
# (hack/cluster): its binaries are built from Go modules on the first run (6-10 minutes on 2
# cores, then cached in ~/.cache/paretoscale). At the end: the wall time of each stage.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${PARETOSCALE_VENV:-.venv}"
[[ "$VENV" = /* ]] || VENV="$(pwd)/${VENV}"
REPORTS="out/test-reports"
STAGE_NAMES=()
STAGE_SECONDS=()

summary() {
  local rc=$?
  echo "== wall time per stage"
  local i
  for i in "${!STAGE_NAMES[@]}"; do
    printf '  %-28s %6ss\n' "${STAGE_NAMES[$i]}" "${STAGE_SECONDS[$i]}"
  done
  if compgen -G "${REPORTS}/*.xml" >/dev/null; then
    "${VENV}/bin/python" - "${REPORTS}"/*.xml <<'PY'
import sys
import xml.etree.ElementTree as ET

n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
        for k in n:
            n[k] += int(suite.get(k, 0))
failed = n["failures"] + n["errors"]
passed = n["tests"] - failed - n["skipped"]
print(f"total: {passed} passed, {failed} failed, {n['skipped']} skipped")
PY
  fi
  exit "$rc"
}
trap summary EXIT

# stage NAME COMMAND...: run COMMAND, record its wall time under NAME.
stage() {
  local name=$1 start=$SECONDS rc=0
  shift
  echo "== ${name}"
  "$@" || rc=$?
  STAGE_NAMES+=("$name")
  STAGE_SECONDS+=("$((SECONDS - start))")
  return "$rc"
}

# shellcheck source=lib/venv.sh
source hack/lib/venv.sh
install() { ensure_venv dev >/dev/null; }

# pytest_phase NAME ARGS...: one pytest run with a JUnit report for the totals.
pytest_phase() {
  local name=$1 rc=0
  shift
  python -m pytest --junitxml="${REPORTS}/${name}.xml" "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then
    echo "pytest selected no test in the ${name} phase" >&2
  fi
  return "$rc"
}

stage install install
export PATH="${VENV}/bin:${PATH}"
export VIRTUAL_ENV="${VENV}"
rm -rf "${REPORTS}" && mkdir -p "${REPORTS}"
stage ruff ruff check operator tests bench
stage mypy mypy
stage layers lint-imports

if [[ $# -gt 0 ]]; then
  rc=0
  if [[ " $* " != *"not e2e"* ]]; then
    stage "control plane binaries" hack/cluster build
  fi
  stage pytest pytest_phase selected "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then exit 0; fi  # the arguments selected nothing: nothing failed
  exit "$rc"
fi

stage "unit tests" pytest_phase unit -m 'not e2e'
stage "control plane binaries" hack/cluster build
stage "e2e tests" pytest_phase e2e -m e2e
