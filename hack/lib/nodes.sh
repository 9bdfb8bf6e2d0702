# shellcheck shell=bash
# Fake GPU nodes managed by KWOK (sourced by hack/cluster).
#
# Each node carries the annotation kwok.x-k8s.io/node=fake (so only kwok manages
# it), `nvidia.com/gpu` capacity, and the labels NVIDIA GPU feature discovery
# puts on real GPU nodes (nvidia.com/gpu.product, .count, .memory, .family,
# .compute.major/minor) plus the instance type of a matching cloud machine.
#
# PARETOSCALE_FAKE_NODES picks how many nodes of each profile, e.g. the default
# "h100=4,l40s=2,a100=2"; every profile has 8 GPUs per node.

PS_DEFAULT_FAKE_NODES="h100=4,l40s=2,a100=2"

# profile -> product|family|compute major|compute minor|GPU memory MiB|instance type|cpu|memory
declare -A PS_NODE_PROFILES=(
  [h100]="NVIDIA-H100-80GB-HBM3|hopper|9|0|81559|p5.48xlarge|192|2048Gi"
  [l40s]="NVIDIA-L40S|ada-lovelace|8|9|46068|g6e.48xlarge|192|1536Gi"
  [a100]="NVIDIA-A100-SXM4-80GB|ampere|8|0|81920|p4de.24xlarge|96|1152Gi"
  [l4]="NVIDIA-L4|ada-lovelace|8|9|23034|g6.48xlarge|192|768Gi"
)
PS_GPUS_PER_NODE=8

# Prints "name profile internal-ip" lines for the requested node set.
fake_node_list() {
  local spec="${PARETOSCALE_FAKE_NODES:-$PS_DEFAULT_FAKE_NODES}" item profile count i n=0
  IFS=',' read -r -a items <<< "$spec"
  for item in "${items[@]}"; do
    profile="${item%%=*}"; count="${item#*=}"
    [[ -n "${PS_NODE_PROFILES[$profile]:-}" ]] ||
      die "unknown node profile '${profile}' in PARETOSCALE_FAKE_NODES (known: ${!PS_NODE_PROFILES[*]})"
    [[ "$count" =~ ^[0-9]+$ ]] || die "bad node count '${count}' in PARETOSCALE_FAKE_NODES"
    for ((i = 0; i < count; i++)); do
      n=$((n + 1))
      ((n < 250 * 256)) || die "too many fake nodes"
      printf 'gpu-%s-%d %s 10.240.%d.%d\n' "$profile" "$i" "$profile" $((n / 250)) $((n % 250 + 1))
    done
  done
}

# JSON of one Node object, status included (kwok keeps capacity, allocatable and addresses).
fake_node_json() {
  local name="$1" profile="$2" ip="$3" product family major minor memory_mib instance cpu memory
  IFS='|' read -r product family major minor memory_mib instance cpu memory <<< "${PS_NODE_PROFILES[$profile]}"
  cat <<JSON
{
  "apiVersion": "v1",
  "kind": "Node",
  "metadata": {
    "name": "${name}",
    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
    "labels": {
      "type": "kwok",
      "kubernetes.io/arch": "amd64",
      "kubernetes.io/os": "linux",
      "kubernetes.io/hostname": "${name}",
      "node.kubernetes.io/instance-type": "${instance}",
      "topology.kubernetes.io/region": "local",
      "topology.kubernetes.io/zone": "local-a",
      "nvidia.com/gpu.present": "true",
      "nvidia.com/gpu.product": "${product}",
      "nvidia.com/gpu.count": "${PS_GPUS_PER_NODE}",
      "nvidia.com/gpu.memory": "${memory_mib}",
      "nvidia.com/gpu.family": "${family}",
      "nvidia.com/gpu.compute.major": "${major}",
      "nvidia.com/gpu.compute.minor": "${minor}"
    }
  },
  "spec": {},
  "status": {
    "addresses": [{"type": "InternalIP", "address": "${ip}"}, {"type": "Hostname", "address": "${name}"}],
    "capacity": {"cpu": "${cpu}", "memory": "${memory}", "pods": "110", "nvidia.com/gpu": "${PS_GPUS_PER_NODE}"},
    "allocatable": {"cpu": "${cpu}", "memory": "${memory}", "pods": "110", "nvidia.com/gpu": "${PS_GPUS_PER_NODE}"}
  }
}
JSON
}
