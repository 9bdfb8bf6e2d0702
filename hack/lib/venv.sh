#!/usr/bin/env bash
# The project's Python environment: a virtual environment in the checkout (.venv, or
# $PARETOSCALE_VENV), never the system's site-packages. Sourced by hack/test.sh and hack/demo.
#   ensure_venv EXTRAS   create the venv when missing; install this checkout (editable) with
#                        the given extras ("dev", "plot") unless it is already importable
#                        from this checkout with them; print the venv's python

ensure_venv() {
  local extras=$1 repo venv
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  venv="${PARETOSCALE_VENV:-${repo}/.venv}"
  [[ "$venv" = /* ]] || venv="${repo}/${venv}"
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "[venv] installing python3-venv (Debian splits it out of python3)" >&2
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
  fi
  [[ -x "${venv}/bin/python" ]] || python3 -m venv "$venv" >&2
  "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check -e "${repo}[${extras}]" >&2
  echo "${venv}/bin/python"
}
