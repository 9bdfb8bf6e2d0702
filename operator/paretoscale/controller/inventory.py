"""The cluster's GPUs as the nodes and pods show them: what each ModelDeployment can hold now.

The decision takes `Observation.gpus_available` (GPUs per type) to plan only replicas that can
be placed; the replay gives it the inventory its scenario has, the operator this. Nodes and
pods arrive by watch events and listings (controller/handlers.py, controller/sync.py) and are
kept compact: per node whether it takes pods (Ready and not cordoned), its labels and its
allocatable GPU resources; per pod that requests a GPU and is placed, its node, its requests
and the ModelDeployment whose label it carries. Pods that request no GPU are not kept.

GPUs of a type one ModelDeployment can hold = the allocatable GPUs of the type's nodes
(labels matching the type's nodeSelector in the GPU type mapping) that take pods, minus what
unfinished pods placed on them request, plus what its own pods hold wherever they run (a
cordoned node keeps its pods). Totals per type are computed once per change of the inventory,
so a tick over many ModelDeployments costs a lookup each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretoscale.actuate.render import LABEL_MD
from paretoscale.api.accelerators import BUILTIN, GpuTypes
from paretoscale.api.types import ModelDeploymentSpec

Key = tuple[str, str]  # a ModelDeployment's (namespace, name)


@dataclass(frozen=True)
class NodeGpus:
    takes_pods: bool  # Ready and not cordoned
    labels: Mapping[str, str]
    allocatable: Mapping[str, int]  # extended resource -> count, GPU resources only


@dataclass(frozen=True)
class PodGpus:
    node: str
    owner: Key | None  # the ModelDeployment whose replica it is
    requests: Mapping[str, int]  # extended resource -> count, GPU resources only


def _quantity(value: Any) -> int:
    """An extended resource's quantity ('8', 8) as an integer; 0 when unreadable."""
    try:
        return int(float(str(value)))
    except ValueError:
        return 0


def node_gpus(body: Mapping[str, Any], resources: frozenset[str]) -> NodeGpus:
    """The compact record of a Node (API JSON)."""
    meta, spec, status = (body.get(k) or {} for k in ("metadata", "spec", "status"))
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    allocatable = status.get("allocatable") or {}
    return NodeGpus(
        takes_pods=ready and not spec.get("unschedulable"),
        labels=dict(meta.get("labels") or {}),
        allocatable={r: _quantity(allocatable[r]) for r in resources if r in allocatable},
    )


def pod_gpus(body: Mapping[str, Any], resources: frozenset[str]) -> PodGpus | None:
    """The compact record of a Pod (API JSON); None when it holds no GPU (not placed,
    finished, or requesting none)."""
    meta, spec, status = (body.get(k) or {} for k in ("metadata", "spec", "status"))
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    requests: dict[str, int] = {}
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        asked = (c.get("resources") or {}).get("requests") or {}
        for r in resources & asked.keys():
            requests[r] = requests.get(r, 0) + _quantity(asked[r])
    requests = {r: n for r, n in requests.items() if n > 0}
    if not requests:
        return None
    md = (meta.get("labels") or {}).get(LABEL_MD)
    owner = (meta["namespace"], md) if md is not None and meta.get("namespace") else None
    return PodGpus(node=str(spec["nodeName"]), owner=owner, requests=requests)


@dataclass
class Inventory:
    """Nodes and GPU pods by name, and the per-type totals derived from them."""

    gpus: GpuTypes = BUILTIN
    nodes: dict[str, NodeGpus] = field(default_factory=dict)
    pods: dict[Key, PodGpus] = field(default_factory=dict)  # (namespace, pod name)
    synced: bool = False
    _free: dict[str, int] | None = None  # type -> free GPUs on nodes that take pods
    _held: dict[Key, dict[str, int]] | None = None  # ModelDeployment -> type -> GPUs held

    @property
    def resources(self) -> frozenset[str]:
        return frozenset(g.resource for g in self.gpus.types.values())

    def put_node(self, body: Mapping[str, Any], deleted: bool) -> None:
        name = str((body.get("metadata") or {}).get("name"))
        if deleted:
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = node_gpus(body, self.resources)
        self.changed()

    def put_pod(self, body: Mapping[str, Any], deleted: bool) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        seen = None if deleted else pod_gpus(body, self.resources)
        if seen is None:
            if self.pods.pop(key, None) is None:
                return  # a pod without GPUs changed: nothing to recompute
        else:
            if self.pods.get(key) == seen:
                return
            self.pods[key] = seen
        self.changed()

    def changed(self) -> None:
        """Forget the per-type totals: the nodes or pods changed."""
        self._free = self._held = None

    def _type_of(self, node: NodeGpus) -> list[tuple[str, str]]:
        """(GPU type, resource) of every type whose node labels `node` carries."""
        return [
            (name, g.resource)
            for name, g in self.gpus.types.items()
            if all(node.labels.get(k) == v for k, v in g.node_selector.items())
        ]

    def _totals(self) -> tuple[dict[str, int], dict[Key, dict[str, int]]]:
        if self._free is not None and self._held is not None:
            return self._free, self._held
        free: dict[str, int] = {}
        held: dict[Key, dict[str, int]] = {}
        types = {name: self._type_of(n) for name, n in self.nodes.items()}
        for name, n in self.nodes.items():
            for t, r in types[name]:
                free[t] = free.get(t, 0) + (n.allocatable.get(r, 0) if n.takes_pods else 0)
        for p in self.pods.values():
            on = self.nodes.get(p.node)
            if on is None:
                continue  # its node is gone (or not listed yet): it holds nothing we count
            for t, r in types[p.node]:
                asked = p.requests.get(r, 0)
                if on.takes_pods:
                    free[t] = free.get(t, 0) - asked
                if p.owner is not None and asked:
                    mine = held.setdefault(p.owner, {})
                    mine[t] = mine.get(t, 0) + asked
        self._free, self._held = free, held
        return free, held

    def available(self, spec: ModelDeploymentSpec, key: Key) -> dict[str, int] | None:
        """GPUs of each of spec.gpus' types the ModelDeployment `key` can hold now; None
        before the first complete listing. A type the mapping does not know is left out
        (spec.gpus alone bounds it); a type no node carries is 0."""
        if not self.synced:
            return None
        free, held = self._totals()
        mine = held.get(key, {})
        return {
            g.type: max(0, free.get(g.type, 0)) + mine.get(g.type, 0)
            for g in spec.gpus
            if g.type in self.gpus.types
        }
