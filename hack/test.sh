#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what it needs, then runs every check.
#   hack/test.sh                 lint, types, layers, unit and e2e tests
#   hack/test.sh -m 'not e2e'    pytest arguments pass through (here: unit tests only)
# The e2e tests run on a real local control plane (hack/cluster): its binaries are built from
# Go modules on the first run (6-10 minutes on 2 cores, then cached in ~/.cache/paretoscale).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== install"
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "== ruff";   ruff check operator tests bench
echo "== mypy";   mypy
echo "== layers"; lint-imports
if [[ " $* " != *"not e2e"* ]]; then
  echo "== control plane binaries (built once, cached)"
  hack/cluster build
fi
echo "== pytest"
exec python3 -m pytest "$@"
