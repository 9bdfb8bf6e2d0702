"""The cluster's GPU type mapping: which GPU type names exist, how nodes show them, what they do.

A GPU type in a ModelDeployment (`spec.gpus[].type`, `variants[].gpu.type`) is a name looked
up here when it is used: the operator and `paretoscale plan` hold one GpuTypes value, built
once at start-up from

1. a preset of the built-in table (api/gpus.py): `nfd` labels nodes as NVIDIA GPU Feature
   Discovery does (`nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3`, the default), `gke` as
   GKE does (`cloud.google.com/gke-accelerator: nvidia-h100-80gb`; a type GKE does not offer
   keeps its built-in label);
2. the cluster's own entries (the YAML of `--gpu-types-file`, chart value `gpuTypes`), which
   add GPU types or override fields of built-in ones:

       gpuTypes:
         acme-x1:                          # a new type: every field but fp8/int8 is needed
           labelKey: acme.com/accelerator
           labelValue: x1
           resource: acme.com/gpu
           memoryGiB: 96
           memoryBandwidthTBps: 2.4
           bf16Tflops: 400
           precisions: [bf16, fp16, int8, int4]   # or computeCapability: "8.9"
         H100:                             # a built-in type: only what differs
           labelValue: NVIDIA-H100-80GB-HBM3-MIG

Pure: the shell reads the file and passes its parsed YAML to `gpu_types()`; an unknown type
is an error that names this mapping and how to extend it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from paretoscale.api.gpus import GKE_LABEL, GPUS, PRECISIONS, GpuSpec, WeightPrecision
from paretoscale.errors import SpecError

Preset = Literal["nfd", "gke"]
PRESETS: tuple[Preset, ...] = ("nfd", "gke")
EXTEND_HINT = (
    "declare it in the operator's GPU type mapping (--gpu-types-file PATH, chart value gpuTypes)"
)
GPU_TYPE_NAME = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# Label keys and resource names as Kubernetes spells them: an optional DNS prefix and a name.
_QUALIFIED = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

# GKE's accelerator names (cloud.google.com/gke-accelerator), from the GKE GPU documentation.
GKE_VALUES: Mapping[str, str] = MappingProxyType(
    {
        "H100": "nvidia-h100-80gb",
        "H200": "nvidia-h200-141gb",
        "B200": "nvidia-b200",
        "A100": "nvidia-a100-80gb",
        "A100-40GB": "nvidia-tesla-a100",
        "L4": "nvidia-l4",
        "T4": "nvidia-tesla-t4",
    }
)


@dataclass(frozen=True)
class GpuTypes:
    """The GPU types a cluster knows, by name, and where that mapping came from."""

    types: Mapping[str, GpuSpec]
    source: str  # e.g. "built-in table, preset nfd, + /etc/paretoscale/gpu-types.yaml"

    def problem(self, name: str) -> str | None:
        """Why `name` cannot be used (not in this mapping), or None."""
        if name in self.types:
            return None
        return (
            f"unknown GPU type {name!r}: the operator's GPU type mapping ({self.source}) has "
            f"{', '.join(sorted(self.types))}; {EXTEND_HINT}"
        )

    def get(self, name: str) -> GpuSpec:
        """The GpuSpec of `name`; raises KeyError with problem()'s words."""
        problem = self.problem(name)
        if problem is not None:
            raise KeyError(problem)
        return self.types[name]

    @property
    def label_keys(self) -> tuple[str, ...]:
        """Every node label key some GPU type is selected by, sorted."""
        return tuple(sorted({g.label_key for g in self.types.values()}))

    def type_of(self, labels: Mapping[str, str]) -> str | None:
        """The GPU type whose label a node (or nodeSelector) with `labels` carries, or None."""
        for name in sorted(self.types):
            g = self.types[name]
            if labels.get(g.label_key) == g.label_value:
                return name
        return None


def preset(name: Preset = "nfd") -> GpuTypes:
    """The built-in table labelled the `name` way."""
    if name not in PRESETS:
        raise ValueError(f"unknown GPU types preset {name!r}; use one of {', '.join(PRESETS)}")
    types = dict(GPUS)
    if name == "gke":
        types = {
            t: replace(g, label_key=GKE_LABEL, label_value=GKE_VALUES[t]) if t in GKE_VALUES else g
            for t, g in types.items()
        }
    return GpuTypes(MappingProxyType(types), f"built-in table, preset {name}")


BUILTIN = preset("nfd")


class GpuTypeEntry(BaseModel):
    """One entry of a cluster's GPU type mapping, as written in YAML (camelCase)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    label_key: str | None = Field(None, max_length=317)
    label_value: str | None = Field(None, max_length=63)
    resource: str | None = Field(None, max_length=317)
    memory_gi_b: float | None = Field(None, gt=0, le=1e6, alias="memoryGiB")
    memory_bandwidth_t_bps: float | None = Field(None, gt=0, le=1e4, alias="memoryBandwidthTBps")
    bf16_tflops: float | None = Field(None, ge=0, le=1e6)
    fp8_tflops: float | None = Field(None, ge=0, le=1e6)
    int8_tops: float | None = Field(None, ge=0, le=1e6)
    compute_capability: str | None = Field(None, pattern=r"^[0-9]{1,2}\.[0-9]$")
    precisions: list[WeightPrecision] | None = None

    @field_validator("label_key", "resource")
    @classmethod
    def _qualified(cls, v: str | None) -> str | None:
        if v is not None and not _QUALIFIED.match(v):
            raise ValueError(f"{v!r} is not a Kubernetes label key or resource name")
        return v

    @field_validator("label_value")
    @classmethod
    def _value(cls, v: str | None) -> str | None:
        if v is not None and not _LABEL_VALUE.match(v):
            raise ValueError(f"{v!r} is not a Kubernetes label value")
        return v


_NEEDED = (
    "label_key",
    "label_value",
    "resource",
    "memory_gi_b",
    "memory_bandwidth_t_bps",
    "bf16_tflops",
)


def _merged(name: str, entry: GpuTypeEntry, base: GpuSpec | None) -> GpuSpec:
    """`entry` over the built-in `base` (None: a new type, whose fields must all be given)."""
    if base is None:
        missing = [to_camel(f) for f in _NEEDED if getattr(entry, f) is None]
        if entry.compute_capability is None and entry.precisions is None:
            missing.append("computeCapability or precisions")
        if missing:
            raise ValueError(f"a new GPU type needs {', '.join(missing)}")
        base = GpuSpec(name, "", None, 0, 0, 0, 0, 0)
    cc = base.compute_capability
    if entry.compute_capability is not None:
        major, minor = entry.compute_capability.split(".")
        cc = (int(major), int(minor))
    return GpuSpec(
        type=name,
        label_value=_pick(entry.label_value, base.label_value),
        compute_capability=cc,
        memory_gb=_pick(entry.memory_gi_b, base.memory_gb),
        hbm_tb_per_s=_pick(entry.memory_bandwidth_t_bps, base.hbm_tb_per_s),
        bf16_dense_tflops=_pick(entry.bf16_tflops, base.bf16_dense_tflops),
        fp8_dense_tflops=_pick(entry.fp8_tflops, base.fp8_dense_tflops),
        int8_dense_tops=_pick(entry.int8_tops, base.int8_dense_tops),
        label_key=_pick(entry.label_key, base.label_key),
        resource=_pick(entry.resource, base.resource),
        precisions=frozenset(entry.precisions)
        if entry.precisions is not None
        else (frozenset() if entry.compute_capability is not None else base.precisions),
    )


def _pick(given: Any, default: Any) -> Any:
    return default if given is None else given


def gpu_types(document: Any, source: str, preset_name: Preset = "nfd") -> GpuTypes:
    """The preset with the entries of `document` (parsed YAML: `{gpuTypes: {NAME: entry}}`)
    merged over it; raises SpecError naming `source` and each bad entry."""
    base = preset(preset_name)
    if document is None:
        return base
    if not isinstance(document, Mapping) or set(document) - {"gpuTypes"}:
        raise SpecError(source, ["expected a mapping with one key, gpuTypes: {NAME: {...}}"])
    entries = document.get("gpuTypes") or {}
    if not isinstance(entries, Mapping):
        raise SpecError(source, ["gpuTypes must map GPU type names to their fields"])
    types = dict(base.types)
    problems = []
    for name, raw in entries.items():
        if not isinstance(name, str) or not re.match(GPU_TYPE_NAME, name) or len(name) > 63:
            problems.append(f"gpuTypes: {name!r} is not a GPU type name (letters, digits, -_.)")
            continue
        try:
            entry = GpuTypeEntry.model_validate(raw if raw is not None else {})
            types[name] = _merged(name, entry, types.get(name))
        except ValidationError as e:
            for err in e.errors():
                where = ".".join(str(p) for p in err["loc"])
                problems.append(f"gpuTypes.{name}.{where}: {err['msg']}")
        except ValueError as e:
            problems.append(f"gpuTypes.{name}: {e}")
    if problems:
        raise SpecError(source, problems)
    names = ", ".join(sorted(str(n) for n in entries))
    return GpuTypes(MappingProxyType(types), f"{base.source}, + {source} ({names})")


__all__ = ["BUILTIN", "PRECISIONS", "GpuTypes", "gpu_types", "preset"]
