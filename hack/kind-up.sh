#!/usr/bin/env bash
# A kind cluster with fake GPU nodes and plain Prometheus, for people with Docker.
#
# NOT run in CI and not tested here: this project's CI machines have no Docker.
# CI and the e2e tests use hack/cluster (real control plane from Go modules + KWOK)
# instead; this script gives the same shape of cluster on a laptop with Docker:
#   - worker nodes labelled like GPU nodes (nvidia.com/gpu.product, .count, ...)
#     and advertising `nvidia.com/gpu` capacity through a node-status patch (the
#     documented way to advertise an extended resource; no GPU is attached, so a
#     real vLLM pod would not run, but `paretoscale sim` pods do);
#   - Prometheus (prom/prometheus) in namespace `monitoring`, scraping pods that
#     carry the annotation prometheus.io/scrape: "true" (port from prometheus.io/port).
#
# Usage: hack/kind-up.sh [up|down]      (env: KIND_CLUSTER_NAME, default paretoscale)
# Needs: docker, kind (>= v0.20, for node labels in the config), kubectl.
set -euo pipefail

NAME="${KIND_CLUSTER_NAME:-paretoscale}"
KUBECONFIG_FILE="${KIND_KUBECONFIG:-${XDG_CACHE_HOME:-$HOME/.cache}/paretoscale/kind-${NAME}.kubeconfig}"
PROMETHEUS_IMAGE="${PROMETHEUS_IMAGE:-prom/prometheus:v2.55.1}"
GPUS_PER_NODE=8

log() { printf '[kind-up] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in docker kind kubectl; do
  command -v "$tool" > /dev/null || die "${tool} not found (this script needs Docker, kind and kubectl; without Docker use hack/cluster)"
done

# worker -> product|family|compute major|minor|GPU memory MiB
WORKERS=(
  "NVIDIA-H100-80GB-HBM3|hopper|9|0|81559"
  "NVIDIA-H100-80GB-HBM3|hopper|9|0|81559"
  "NVIDIA-L40S|ada-lovelace|8|9|46068"
  "NVIDIA-A100-SXM4-80GB|ampere|8|0|81920"
)

kind_config() {
  local spec product family major minor memory
  printf 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n'
  for spec in "${WORKERS[@]}"; do
    IFS='|' read -r product family major minor memory <<< "$spec"
    cat <<YAML
- role: worker
  labels:
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: ${product}
    nvidia.com/gpu.count: "${GPUS_PER_NODE}"
    nvidia.com/gpu.memory: "${memory}"
    nvidia.com/gpu.family: ${family}
    nvidia.com/gpu.compute.major: "${major}"
    nvidia.com/gpu.compute.minor: "${minor}"
YAML
  done
}

prometheus_manifests() {
  cat <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: paretoscale-prometheus}
rules:
- apiGroups: [""]
  resources: [pods, services, endpoints, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: paretoscale-prometheus}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: paretoscale-prometheus}
subjects:
- {kind: ServiceAccount, name: prometheus, namespace: monitoring}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: prometheus, namespace: monitoring}
data:
  prometheus.yml: |
    global:
      scrape_interval: 5s
      evaluation_interval: 5s
    scrape_configs:
    - job_name: pods
      kubernetes_sd_configs: [{role: pod}]
      relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        regex: "true"
        action: keep
      - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
        regex: ([^:]+)(?::\d+)?;(\d+)
        replacement: $1:$2
        target_label: __address__
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: prometheus, namespace: monitoring}
spec:
  replicas: 1
  selector: {matchLabels: {app: prometheus}}
  template:
    metadata: {labels: {app: prometheus}}
    spec:
      serviceAccountName: prometheus
      nodeSelector: {node-role.kubernetes.io/control-plane: ""}
      tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]
      containers:
      - name: prometheus
        image: PROMETHEUS_IMAGE
        args: [--config.file=/etc/prometheus/prometheus.yml, --storage.tsdb.path=/prometheus,
               --web.enable-lifecycle, --storage.tsdb.retention.time=1d]
        ports: [{containerPort: 9090, name: http}]
        readinessProbe: {httpGet: {path: /-/ready, port: http}}
        volumeMounts:
        - {name: config, mountPath: /etc/prometheus}
        - {name: data, mountPath: /prometheus}
      volumes:
      - {name: config, configMap: {name: prometheus}}
      - {name: data, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: prometheus, namespace: monitoring}
spec:
  selector: {app: prometheus}
  ports: [{name: http, port: 9090, targetPort: http}]
YAML
}

up() {
  mkdir -p "$(dirname "$KUBECONFIG_FILE")"
  if kind get clusters 2> /dev/null | grep -qx "$NAME"; then
    log "kind cluster ${NAME} exists; reusing it"
    kind get kubeconfig --name "$NAME" > "$KUBECONFIG_FILE"
  else
    kind_config | kind create cluster --name "$NAME" --kubeconfig "$KUBECONFIG_FILE" --wait 120s --config -
  fi
  export KUBECONFIG="$KUBECONFIG_FILE"
  local node
  for node in $(kubectl get nodes -l nvidia.com/gpu.present=true -o name); do
    # Extended resources are advertised on the status subresource.
    kubectl patch "$node" --subresource=status --type=json -p "[
      {\"op\": \"add\", \"path\": \"/status/capacity/nvidia.com~1gpu\", \"value\": \"${GPUS_PER_NODE}\"},
      {\"op\": \"add\", \"path\": \"/status/allocatable/nvidia.com~1gpu\", \"value\": \"${GPUS_PER_NODE}\"}]" > /dev/null
  done
  prometheus_manifests | sed "s|PROMETHEUS_IMAGE|${PROMETHEUS_IMAGE}|" | kubectl apply -f - > /dev/null
  kubectl -n monitoring rollout status deployment/prometheus --timeout=180s >&2
  log "GPU nodes:"
  kubectl get nodes -L nvidia.com/gpu.product -o wide >&2
  log "Prometheus runs in-cluster; reach it with:"
  log "  kubectl -n monitoring port-forward svc/prometheus 9090:9090 &"
  printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
  printf 'export PROMETHEUS_URL=%q\n' "http://127.0.0.1:9090"
}

down() {
  kind delete cluster --name "$NAME"
  rm -f "$KUBECONFIG_FILE"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) die "usage: $0 [up|down]" ;;
esac
