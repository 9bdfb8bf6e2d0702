# shellcheck shell=bash
# Shared settings and helpers for hack/cluster (sourced, never run).
#
# Versions of the control-plane binaries live in one place each:
#   Kubernetes and etcd: the require lines of hack/kubecp/go.mod (the wrapper module);
#   KWOK and Helm: below (installed with plain `go install`, outside the wrapper module).

PS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PS_KUBECP_DIR="${PS_REPO_ROOT}/hack/kubecp"

KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"

# Binaries are cached per component and version; a directory counts only when
# its .complete stamp exists (written after every binary in it was built).
PS_CACHE_DIR="${PARETOSCALE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paretoscale}"
PS_BIN_ROOT="${PARETOSCALE_BIN_DIR:-${PS_CACHE_DIR}/bin}"

PS_GO="${GO:-}"
if [[ -z "${PS_GO}" ]]; then
  if command -v go >/dev/null 2>&1; then PS_GO="$(command -v go)"; else PS_GO=/usr/local/go/bin/go; fi
fi

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Version of a module required by the wrapper module (reads hack/kubecp/go.mod).
wrapper_require_version() {
  local module="$1" version
  version="$(awk -v m="$module" '$1 == m && $2 ~ /^v/ {print $2; exit}' "${PS_KUBECP_DIR}/go.mod")"
  [[ -n "$version" ]] || die "module ${module} is not required in ${PS_KUBECP_DIR}/go.mod"
  printf '%s\n' "$version"
}

kubernetes_version() { wrapper_require_version k8s.io/kubernetes; }
etcd_version() { wrapper_require_version go.etcd.io/etcd/server/v3; }

kubernetes_bin_dir() { printf '%s/kubernetes-%s\n' "$PS_BIN_ROOT" "$(kubernetes_version)"; }
etcd_bin_dir() { printf '%s/etcd-%s\n' "$PS_BIN_ROOT" "$(etcd_version)"; }
kwok_bin_dir() { printf '%s/kwok-%s\n' "$PS_BIN_ROOT" "$KWOK_VERSION"; }
helm_bin_dir() { printf '%s/helm-%s\n' "$PS_BIN_ROOT" "$HELM_VERSION"; }
