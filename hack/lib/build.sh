# shellcheck shell=bash
# Building the control-plane binaries from Go modules (sourced by hack/cluster).
#
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and etcd are built from
# the wrapper module hack/kubecp (see the comment at the top of its go.mod).
# kwok and helm are installed with `go install module@version`, outside it.
# Each lands in its own cache directory keyed by version and is skipped when the
# directory's .complete stamp holds the same recipe (the ldflags it was built
# with), so a changed recipe rebuilds. Builds are reproducible: CGO_ENABLED=0,
# -trimpath, GOTOOLCHAIN=local, buildDate = the module's date.

build_env() {
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath GOWORK=off
}

# built DIR RECIPE: whether DIR holds a complete build made with RECIPE.
built() { [[ -f "$1/.complete" && "$(< "$1/.complete")" == "$2" ]]; }

# finish_build TMP DIR RECIPE: stamp TMP and move it into place.
finish_build() {
  printf '%s' "$3" > "$1/.complete"
  rm -rf "$2"
  mv "$1" "$2"
}

# Path of the go.mod of MODULE@VERSION in the module cache (downloads it if needed).
module_gomod() {
  (cd / && GOFLAGS='' GOWORK=off "$PS_GO" mod download -json "$1@$2") | awk -F'"' '$2 == "GoMod" {print $4; exit}'
}

# Commit time of a module version, from the .info file the Go module proxy serves.
module_time() {
  local info
  info="$(cd / && GOFLAGS='' GOWORK=off "$PS_GO" mod download -json "$1@$2" | awk -F'"' '$2 == "Info" {print $4; exit}')"
  if [[ -f "$info" ]]; then sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "$info"; fi
}

# The Kubernetes binaries built from the wrapper module (kubectl too: the machine's own
# may be more than one minor version away from the server).
PS_KUBERNETES_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

build_kubernetes() {
  local dir version minor build_date bin tmp recipe
  dir="$(kubernetes_bin_dir)"
  version="$(kubernetes_version)"
  minor="${version#v1.}"; minor="${minor%%.*}"
  build_date="$(module_time k8s.io/kubernetes "$version")"
  [[ -n "$build_date" ]] || build_date="1970-01-01T00:00:00Z"
  # The module zip carries no git metadata; gitCommit records where the source came from.
  # client-go carries its own copy of the version variables (used in user agents).
  local ldflags="-s -w" vpkg
  for vpkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${vpkg}.gitVersion=${version} -X ${vpkg}.gitMajor=1 -X ${vpkg}.gitMinor=${minor}"
    ldflags+=" -X ${vpkg}.gitCommit=module-k8s.io/kubernetes@${version} -X ${vpkg}.gitTreeState=clean"
    ldflags+=" -X ${vpkg}.buildDate=${build_date}"
  done
  recipe="${PS_KUBERNETES_BINARIES[*]} ${ldflags}"
  if built "$dir" "$recipe"; then log "kubernetes binaries present in ${dir}"; return 0; fi
  tmp="${dir}.partial"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "building ${PS_KUBERNETES_BINARIES[*]} ${version} into ${dir}"
  (cd "$PS_KUBECP_DIR" && build_env && nice -n 10 "$PS_GO" build -ldflags "$ldflags" -o "${tmp}/" \
    "${PS_KUBERNETES_BINARIES[@]/#/k8s.io/kubernetes/cmd/}")
  for bin in "${PS_KUBERNETES_BINARIES[@]}"; do
    [[ -x "${tmp}/${bin}" ]] || die "build produced no ${tmp}/${bin}"
  done
  finish_build "$tmp" "$dir" "$recipe"
}

build_etcd() {
  local dir version tmp ldflags
  dir="$(etcd_bin_dir)"
  version="$(etcd_version)"
  ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-${version}"
  if built "$dir" "$ldflags"; then log "etcd present in ${dir}"; return 0; fi
  tmp="${dir}.partial"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "building etcd ${version} into ${dir}"
  # `go install go.etcd.io/etcd/server/v3@version` refuses etcd's own replace
  # directives; required from the wrapper module, those are ignored.
  (cd "$PS_KUBECP_DIR" && build_env && nice -n 10 "$PS_GO" build -ldflags "$ldflags" \
    -o "${tmp}/etcd" go.etcd.io/etcd/server/v3)
  [[ -x "${tmp}/etcd" ]] || die "build produced no ${tmp}/etcd"
  finish_build "$tmp" "$dir" "$ldflags"
}

# go_install_tool NAME DIR MODULE_PACKAGE@VERSION LDFLAGS
go_install_tool() {
  local name="$1" dir="$2" target="$3" ldflags="$4" tmp
  if built "$dir" "$ldflags"; then log "${name} present in ${dir}"; return 0; fi
  tmp="${dir}.partial"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "installing ${target} into ${dir}"
  # Run outside any module so no go.mod or go.work of ours takes part.
  (cd / && build_env && GOBIN="$tmp" GOWORK=off nice -n 10 "$PS_GO" install -ldflags "$ldflags" "$target")
  [[ -x "${tmp}/${name}" ]] || die "go install produced no ${tmp}/${name}"
  finish_build "$tmp" "$dir" "$ldflags"
}

build_kwok() { go_install_tool kwok "$(kwok_bin_dir)" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "-s -w"; }

# Helm's Makefile stamps its version and the Kubernetes version it assumes when no
# cluster is at hand (`helm template`, `helm lint`: .Capabilities.KubeVersion, which
# otherwise stays v1.20); the latter is 1.N for the k8s.io/client-go v0.N it requires.
build_helm() {
  local gomod minor ldflags
  gomod="$(module_gomod helm.sh/helm/v3 "$HELM_VERSION")"
  [[ -f "$gomod" ]] || die "could not download helm.sh/helm/v3@${HELM_VERSION}"
  minor="$(awk '$1 == "k8s.io/client-go" {split($2, v, "."); print v[2]; exit}' "$gomod")"
  [[ "$minor" =~ ^[0-9]+$ ]] || die "no k8s.io/client-go requirement in ${gomod}"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${minor}"
  done
  go_install_tool helm "$(helm_bin_dir)" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" "$ldflags"
}

build_all() {
  [[ -x "$PS_GO" ]] || die "no Go toolchain found (looked for go on PATH and /usr/local/go/bin/go)"
  local start=$SECONDS
  # One build at a time per cache (two test runs may start on a cold machine together).
  mkdir -p "$PS_BIN_ROOT"
  exec 8> "${PS_BIN_ROOT}/.build.lock"
  flock -w 3600 8 || die "another build has held ${PS_BIN_ROOT}/.build.lock for an hour"
  build_etcd
  build_kubernetes
  build_kwok
  build_helm
  exec 8>&-
  log "binaries ready ($((SECONDS - start))s)"
}
