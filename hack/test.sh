#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what it needs, then runs every check.
#   hack/test.sh            lint, types, layers, unit and e2e tests (e2e builds the control plane once)
#   hack/test.sh -m 'not e2e'   pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "== ruff";   ruff check operator tests bench
echo "== mypy";   mypy
echo "== layers"; lint-imports
echo "== pytest"
exec python3 -m pytest "$@"
