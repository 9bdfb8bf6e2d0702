"""The ModelDeployment API as types: its spec and its status (group paretoscale.io, v1alpha1).

These pydantic models are the source of truth: `paretoscale crds` generates the CRD from them
(api/crd.py) and docs/api.md from their descriptions. Field names are snake_case in Python and
camelCase on the wire. Money is a decimal string on the wire ("6.88"), as Kubernetes spells
quantities, and a Decimal here; economics converts to float at its edge.

Rules the schema alone cannot say are written twice on purpose: as CEL (`x-kubernetes-validations`,
enforced by the API server at `kubectl apply`) and as pydantic validators (enforced by
`paretoscale plan` and by the operator, which reports them on the object). The rules about
what a GPU type can run need the cluster's GPU type mapping (api/accelerators.py), which the
API server cannot see: they live in api/admission.py and run where the mapping is known.
"""

from __future__ import annotations

import itertools
import math
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from paretoscale.api.accelerators import GPU_TYPE_NAME
from paretoscale.api.gpus import GPUS
from paretoscale.api.names import DNS_1035, name_problems

GROUP = "paretoscale.io"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SHORT_NAME = "mdep"

# A decimal amount of US dollars, written as a string on the wire ("6.88").
USD_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


def _usd(value: Any) -> Any:
    """A Decimal from the wire's decimal string; the API server takes nothing else there."""
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str) or len(value) > 32 or not re.match(USD_PATTERN, value):
        raise ValueError('must be a decimal string of US dollars such as "6.88" (quoted)')
    return Decimal(value)


def _whole(value: Any) -> Any:
    """An integral float (2.0, 1.5e10) as the int it is: the API server takes one for an
    integer field, so `paretoscale plan` does too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Whole = Annotated[int, BeforeValidator(_whole)]
OptionalWhole = Annotated[int | None, BeforeValidator(_whole)]

Usd = Annotated[
    Decimal,
    BeforeValidator(_usd),
    Field(ge=0),
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": USD_PATTERN, "maxLength": 32}),
]
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A Kubernetes quantity without sign or exponent ("8Gi", "512Mi", "0").
QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
# Default /dev/shm of a vLLM pod, per tensor-parallel GPU, and the name of its volume.
SHM_GI_PER_GPU = 8
SHM_VOLUME = "dshm"
# Labels the operator puts on what it renders; the user may not set them on pods.
OPERATOR_LABEL_PREFIX = "paretoscale.io/"
APP_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
)


def shm_disabled(shm_size: str | None) -> bool:
    """Whether template.shmSize asks for no /dev/shm volume (a size of zero: "0", "0Gi")."""
    number = re.match(r"[0-9.]+", shm_size or "")
    return number is not None and float(number.group()) == 0


# A Kubernetes quantity as the API server parses it ("8Gi", "500m", "1e3", "0.5").
K8S_QUANTITY = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"


def resources_problems(resources: dict[str, Any]) -> list[str]:
    """What in template.resources the API server would refuse in a container (limits and
    requests must map resource names to quantities); empty when it is usable."""
    out = []
    for key, value in resources.items():
        if key not in ("limits", "requests", "claims"):
            out.append(f"resources: unknown key {key!r} (limits, requests or claims)")
        elif key != "claims" and not isinstance(value, dict):
            out.append(f"resources.{key} must map resource names to quantities, got {value!r}")
        elif key != "claims":
            for name, q in value.items():
                ok = (isinstance(q, str) and re.match(K8S_QUANTITY, q) is not None) or (
                    isinstance(q, int | float) and not isinstance(q, bool) and 0 <= q < 1e18
                )
                if not ok:
                    out.append(
                        f"resources.{key}[{name!r}]: {q!r} is not a quantity "
                        '(e.g. "8Gi", "500m", 2)'
                    )
    return out


def non_finite(node: Any) -> bool:
    """Whether a free-form value (a Kubernetes object given verbatim) holds a NaN or an
    infinity somewhere: JSON cannot carry one, so the API server would never store it."""
    if isinstance(node, dict):
        return any(non_finite(v) for v in node.values())
    if isinstance(node, list):
        return any(non_finite(v) for v in node)
    return isinstance(node, float) and not math.isfinite(node)


def reserved_label(key: str) -> bool:
    """Whether the operator owns this label key on the objects it renders."""
    return key.startswith(OPERATOR_LABEL_PREFIX) or key in APP_LABELS


# A GPU type name, looked up in the cluster's GPU type mapping (api/accelerators.py) when used.
GpuType = Annotated[str, Field(min_length=1, max_length=63, pattern=GPU_TYPE_NAME)]


def _cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


class _Model(BaseModel):
    # strict: a number is never read from a string nor a boolean from 1, as the API server's
    # schema refuses them; no NaN or infinity (YAML can spell them, JSON cannot).
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
        allow_inf_nan=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        """A field given as null is a field not given: the API server prunes nulls before it
        applies defaults, and `paretoscale plan` reads a manifest the same way."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class ABTest(_Model):
    """One past A/B test: the offline gain of a model change and the online gain it delivered."""

    offline_delta: float = Field(description="Offline score gain, e.g. 0.02 for +2 points.")
    online_delta: float = Field(description="Online metric gain seen in the A/B test.")


class ValueSpec(_Model):
    """What a point of quality is worth."""

    per_quality_point: Usd = Field(
        description="USD per 1,000 requests for each quality point (0.01 of score)."
    )
    calibration_factor: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of an offline quality gain seen online. If omitted: the 25th "
        "percentile of online/offline over abTests, else 0.30.",
    )
    ab_tests: list[ABTest] = Field(
        default_factory=list, max_length=64, description="Optional A/B test history."
    )


class SloSpec(_Model):
    """The latency objective every replica must meet at its load."""

    latency: Literal["e2e", "ttft", "itl"] = Field(
        "e2e", description="e2e: whole request; ttft: time to first token; itl: inter-token."
    )
    percentile: float = Field(95, gt=0, lt=100, description="Percentile of the latency, 0-100.")
    seconds: float = Field(gt=0, description="Latency bound at that percentile, in seconds.")


class TrafficSpec(_Model):
    """Replica bounds and how hard each replica may be driven."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.minReplicas <= self.maxReplicas",
                    "spec.traffic.minReplicas must be <= spec.traffic.maxReplicas",
                )
            ]
        }
    )
    min_replicas: Whole = Field(1, ge=0, le=1000, description="Fewest replicas of the variant.")
    max_replicas: Whole = Field(16, ge=1, le=1000, description="Most replicas of the variant.")
    target_utilization: float = Field(
        0.8, gt=0, le=1, description="Share of a replica's capacity at the SLO to use."
    )
    expected_requests_per_second: float = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Load assumed before metrics exist (a new ModelDeployment).",
    )
    scale_down_stabilization_seconds: Whole = Field(
        300, ge=0, description="Replicas go down only after lower targets held this long."
    )

    @model_validator(mode="after")
    def _bounds(self) -> TrafficSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must be <= maxReplicas "
                f"({self.max_replicas}): lower minReplicas or raise maxReplicas"
            )
        return self


class GpuPool(_Model):
    """A GPU type the ModelDeployment may use: price fallback and inventory."""

    type: GpuType = Field(
        description="GPU type, a name in the operator's GPU type mapping: built in "
        + ", ".join(sorted(GPUS))
        + "; more with --gpu-types-file or the chart value gpuTypes."
    )
    usd_per_hour: Usd = Field(
        description="Price of one GPU for one hour, used when Prometheus has no live price."
    )
    available: Whole = Field(ge=0, le=100000, description="GPUs of this type the model may use.")


class GpuRequest(_Model):
    """The GPUs one replica of a variant needs."""

    type: GpuType = Field(description="GPU type this variant runs on; must be listed in gpus.")
    count: Whole = Field(1, ge=1, le=16, description="GPUs per replica.")


class SpeculativeSpec(_Model):
    """vLLM --speculative-config."""

    method: Literal["eagle3", "eagle", "draft_model", "ngram", "mtp"] = Field(
        description="Speculative decoding method."
    )
    model: str | None = Field(
        None, max_length=253, description="Draft or EAGLE head model (not for ngram)."
    )
    num_speculative_tokens: Whole = Field(3, ge=1, le=16, description="Tokens proposed per step.")


QUANTIZATIONS = (
    "fp8",
    "compressed-tensors",
    "awq",
    "awq_marlin",
    "gptq",
    "gptq_marlin",
    "bitsandbytes",
    "modelopt",
    "experts_int8",
)


class VllmSpec(_Model):
    """How vLLM serves this variant; each field maps to one `vllm serve` flag."""

    model: str = Field(max_length=253, description="Checkpoint to serve (vllm serve MODEL).")
    dtype: Literal["auto", "bfloat16", "float16", "half"] | None = Field(
        None, description="--dtype"
    )
    quantization: Literal[QUANTIZATIONS] | None = Field(  # type: ignore[valid-type]
        None, description="--quantization; omit to let vLLM detect it from the checkpoint."
    )
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] | None = Field(
        None, description="--kv-cache-dtype"
    )
    speculative: SpeculativeSpec | None = Field(None, description="--speculative-config")
    tensor_parallel_size: OptionalWhole = Field(
        None, ge=1, le=16, description="--tensor-parallel-size"
    )
    max_model_len: OptionalWhole = Field(None, ge=1, le=100_000_000, description="--max-model-len")
    max_num_seqs: OptionalWhole = Field(None, ge=1, le=4096, description="--max-num-seqs")
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="--gpu-memory-utilization"
    )
    extra_args: list[str] = Field(
        default_factory=list, max_length=64, description="More vllm serve arguments, verbatim."
    )


class ProfilePoint(_Model):
    """Measured latency of one replica at the SLO percentile at one request rate."""

    requests_per_second: float = Field(gt=0, description="Request rate offered to one replica.")
    latency_seconds: float = Field(gt=0, description="Latency at the SLO metric and percentile.")


class TokenMixSpec(_Model):
    """Mean tokens per request of the load a profile was measured with."""

    prompt_tokens: float = Field(gt=0, le=10_000_000, description="Prompt tokens per request.")
    output_tokens: float = Field(
        ge=1, le=10_000_000, description="Generated (output) tokens per request."
    )


class VariantSpec(_Model):
    """One way to serve the model."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.minReplicas) || !has(self.maxReplicas) || "
                    "self.minReplicas <= self.maxReplicas",
                    "variant minReplicas must be <= maxReplicas",
                ),
            ]
        }
    )
    name: str = Field(
        min_length=1,
        max_length=40,
        pattern=DNS_1035,
        description="Short DNS-1035 label (starts with a letter); <metadata.name>-<name> "
        "names its Deployment and must fit in 63 characters.",
    )
    quality: float = Field(ge=0, le=1, description="Offline eval score, 0-1.")
    gpu: GpuRequest
    vllm: VllmSpec
    profile: list[ProfilePoint] | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="Per replica: request rate -> latency at the SLO percentile, rates "
        "ascending. Without one, the performance model's prior for the variant's vLLM "
        "arguments and GPU type (model families it knows, or any model with `parameters`).",
    )
    profile_tokens: TokenMixSpec | None = Field(
        None,
        description="The token mix the profile was measured at (`paretoscale profile` reads it "
        "from the vllm bench serve results); capacity at the observed mix is scaled from it "
        "by a work model. Default: the Azure conversation trace means, 1155 prompt and 211 "
        "output tokens.",
    )
    parameters: OptionalWhole = Field(
        None,
        ge=1,
        le=10**14,
        description="Parameter count: lets the performance model size a model family it "
        "does not know (else, a FLOP estimate); not needed with a profile or a known family.",
    )
    min_replicas: OptionalWhole = Field(
        None, ge=0, le=1000, description="Overrides traffic bounds."
    )
    max_replicas: OptionalWhole = Field(
        None, ge=1, le=1000, description="Overrides traffic bounds."
    )
    one_time_cost_usd: Usd | None = Field(
        None,
        alias="oneTimeCostUSD",
        description="Distillation or quantization work; payback is reported.",
    )
    startup_seconds: Whole = Field(
        300, ge=0, le=7200, description="Time a new replica takes to load and become Ready."
    )

    @field_validator("profile")
    @classmethod
    def _ascending(cls, profile: list[ProfilePoint] | None) -> list[ProfilePoint] | None:
        if profile is None:
            return None
        rates = [p.requests_per_second for p in profile]
        if any(b <= a for a, b in itertools.pairwise(rates)):
            raise ValueError(f"profile requestsPerSecond must ascend strictly, got {rates}")
        return profile

    @model_validator(mode="after")
    def _bounds(self) -> VariantSpec:
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError(f"variant {self.name!r}: minReplicas must be <= maxReplicas")
        return self


class RolloutSpec(_Model):
    """How carefully to move between variants."""

    min_dwell_seconds: Whole = Field(
        1800, ge=0, description="Least time on a variant before leaving."
    )
    switch_margin: float = Field(
        0.05,
        ge=0,
        description="Least gain in net value per hour to switch, as a share of the current "
        "variant's hourly cost.",
    )
    ready_timeout_seconds: Whole = Field(
        1200, ge=1, description="Roll back when the target is not Ready in this time."
    )
    verify_seconds: Whole = Field(
        60, ge=0, description="Analysis window on the target before the Service moves."
    )
    verify_timeout_seconds: Whole = Field(
        600,
        ge=1,
        le=86400,
        description="Roll back when the target has no successful analysis this long after "
        "verification began (no metrics, too little traffic, no latency reading); at least "
        "verifySeconds.",
    )
    drain_grace_seconds: Whole = Field(
        60, ge=0, description="The old variant keeps serving this long after the Service moved."
    )


class TemplateSpec(_Model):
    """Pod overrides for every variant's Deployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.podLabels) || self.podLabels.all(k, !k.startsWith('"
                    + OPERATOR_LABEL_PREFIX
                    + "') && !(k in ["
                    + ", ".join(f"'{k}'" for k in APP_LABELS)
                    + "]))",
                    "podLabels may not set paretoscale.io/* or app.kubernetes.io/name, instance, "
                    "component, managed-by: the operator sets these labels",
                    ".podLabels",
                )
            ]
        }
    )

    image: str = Field("vllm/vllm-openai:v0.11.0", max_length=512, description="Container image.")
    resources: dict[str, Any] | None = Field(
        None,
        description="Container resources; the GPU type's extended resource (nvidia.com/gpu, "
        "amd.com/gpu, ...) is set from the variant.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    node_selector: dict[str, str] | None = Field(None, description="Added to the GPU selector.")
    tolerations: list[dict[str, Any]] | None = Field(
        None,
        description="Pod tolerations.",
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    env: list[dict[str, Any]] | None = Field(
        None,
        description="Container env (name/value or valueFrom).",
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    volumes: list[dict[str, Any]] | None = Field(
        None,
        max_length=64,
        description="Pod volumes (Kubernetes Volume objects), e.g. a PersistentVolumeClaim "
        "holding the model cache; see examples/model-cache-pvc.yaml.",
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    volume_mounts: list[dict[str, Any]] | None = Field(
        None,
        max_length=64,
        description="Mounts of those volumes in the vLLM container (Kubernetes VolumeMount "
        "objects).",
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    shm_size: str | None = Field(
        None,
        max_length=32,
        pattern=QUANTITY,
        description="Size limit of the memory-backed emptyDir mounted at /dev/shm (NCCL and "
        f"vLLM's worker processes use it). Default: {SHM_GI_PER_GPU}Gi per tensor-parallel "
        'GPU. "0" mounts none, and a volumeMount of your own at /dev/shm replaces it. It '
        "counts against the container's memory limit.",
    )
    service_account_name: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="ServiceAccount of the vLLM pods, e.g. one allowed to read the weights.",
    )
    automount_service_account_token: bool = Field(
        False,
        description="Mount the ServiceAccount's API token in the pods. Off: vLLM does not call "
        "the Kubernetes API.",
    )
    pod_labels: dict[str, str] | None = Field(
        None,
        max_length=64,
        description="Extra pod labels. The operator's own (paretoscale.io/*, "
        "app.kubernetes.io/name, instance, component, managed-by) cannot be set here.",
    )
    pod_annotations: dict[str, str] | None = Field(
        None, max_length=64, description="Pod annotations."
    )
    affinity: dict[str, Any] | None = Field(
        None,
        description="Pod affinity (Kubernetes Affinity object); the GPU nodeSelector still "
        "applies.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    topology_spread_constraints: list[dict[str, Any]] | None = Field(
        None,
        max_length=16,
        description="Pod topologySpreadConstraints; one without a labelSelector gets the "
        "selector of its variant's pods.",
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    priority_class_name: str | None = Field(
        None, max_length=253, pattern=DNS_SUBDOMAIN, description="Pod priorityClassName."
    )
    termination_grace_period_seconds: Whole = Field(
        120,
        ge=0,
        le=86400,
        description="Time a stopping vLLM pod has to finish its requests before it is killed.",
    )
    pod_security_context: dict[str, Any] | None = Field(
        None,
        description="Merged over the pod securityContext default "
        "{seccompProfile: {type: RuntimeDefault}}; a key given here replaces the default's.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    container_security_context: dict[str, Any] | None = Field(
        None,
        description="Merged over the vLLM container's securityContext default "
        "{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}; a key given here "
        "replaces the default's.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    @model_validator(mode="after")
    def _shm_volume_name(self) -> TemplateSpec:
        own_shm = any(m.get("mountPath") == "/dev/shm" for m in self.volume_mounts or [])
        named = any(v.get("name") == SHM_VOLUME for v in self.volumes or [])
        if named and not own_shm and not shm_disabled(self.shm_size):
            raise ValueError(
                f"volumes: the name {SHM_VOLUME!r} is the /dev/shm volume the operator adds; "
                "rename yours, or mount it at /dev/shm (it then replaces the operator's)"
            )
        return self

    @field_validator(
        "resources",
        "tolerations",
        "env",
        "volumes",
        "volume_mounts",
        "affinity",
        "topology_spread_constraints",
        "pod_security_context",
        "container_security_context",
    )
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if non_finite(value):
            raise ValueError("holds NaN or an infinity, which no Kubernetes object can")
        return value

    @field_validator("resources")
    @classmethod
    def _quantities(cls, resources: dict[str, Any] | None) -> dict[str, Any] | None:
        for problem in resources_problems(resources or {}):
            raise ValueError(problem)
        return resources

    @field_validator("pod_labels")
    @classmethod
    def _own_labels(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        taken = sorted(k for k in labels or {} if reserved_label(k))
        if taken:
            raise ValueError(
                f"podLabels may not set {', '.join(taken)}: the operator sets these labels "
                "(its selectors depend on them)"
            )
        return labels


class ProfilingSpec(_Model):
    """In-cluster profiling: a Job per variant without a profile that starts a temporary
    replica and drives it with `vllm bench serve` at a ladder of request rates. Its results
    go to status.profiling.profiles and to the ConfigMap `<name>-profile-<variant>`; the spec
    is never changed (copy the points from either into variants[].profile to keep them). It
    runs in Recommend mode too: the one workload that mode creates, when enabled."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!self.enabled || has(self.maxGpuHours)",
                    "spec.profiling.maxGpuHours is required when profiling is enabled",
                ),
                _cel(
                    "!has(self.rates) || self.rates.all(r, self.rates.exists_one(s, s == r))",
                    "spec.profiling.rates must be distinct",
                    ".rates",
                ),
            ]
        }
    )
    enabled: bool = Field(False, description="Run profiling Jobs (off by default).")
    max_gpu_hours: float | None = Field(
        None,
        gt=0,
        le=10_000,
        alias="maxGpuHours",
        description="Most GPU-hours all profiling Jobs of this ModelDeployment may use, each "
        "Job counted at its worst case (GPUs x activeDeadlineSeconds) until it ends. "
        "Required when enabled.",
    )
    rates: list[Annotated[float, Field(gt=0, le=100_000)]] | None = Field(
        None,
        min_length=2,
        max_length=16,
        description="Request rates per replica (req/s) to measure. Default: 0.1, 0.25, 0.5, "
        "0.75 and 1.0 times the variant's estimated capacity at the SLO.",
    )
    requests_per_rate: Whole = Field(
        100, ge=10, le=10_000, description="Requests sent at each rate (--num-prompts)."
    )
    deadline_seconds: Whole = Field(
        3600,
        ge=60,
        le=86_400,
        description="activeDeadlineSeconds of each Job: the model load plus every rate.",
    )
    variants: list[str] | None = Field(
        None,
        max_length=32,
        description="Variants to profile. Default: every variant without a profile.",
    )

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: list[float] | None) -> list[float] | None:
        if rates is not None and len(set(rates)) != len(rates):
            raise ValueError(f"spec.profiling.rates must be distinct, got {rates}")
        return rates

    @model_validator(mode="after")
    def _bounded(self) -> ProfilingSpec:
        if self.enabled and self.max_gpu_hours is None:
            raise ValueError(
                "spec.profiling.maxGpuHours is required when profiling is enabled: the most "
                "GPU-hours profiling Jobs may use"
            )
        return self


class ModelDeploymentSpec(_Model):
    """Desired state: one model, its candidate variants, what quality is worth, the SLO."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.variants.all(v, self.variants.exists_one(w, w.name == v.name))",
                    "variant names must be unique",
                    ".variants",
                ),
                _cel(
                    "self.gpus.all(g, self.gpus.exists_one(h, h.type == g.type))",
                    "gpu types must be unique",
                    ".gpus",
                ),
                _cel(
                    "self.variants.all(v, self.gpus.exists(g, g.type == v.gpu.type))",
                    "every variant's gpu.type must be listed under spec.gpus",
                    ".variants",
                ),
                _cel(
                    "!has(self.profiling) || !has(self.profiling.variants) || "
                    "self.profiling.variants.all(n, self.variants.exists(v, v.name == n))",
                    "every name in spec.profiling.variants must be a variant's",
                    ".profiling.variants",
                ),
            ]
        }
    )
    model: str = Field(max_length=253, description='The name clients send as "model".')
    mode: Literal["Auto", "Recommend"] = Field(
        "Auto", description="Auto acts; Recommend only reports in status and touches no workload."
    )
    value: ValueSpec
    slo: SloSpec
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    gpus: list[GpuPool] = Field(min_length=1, max_length=16)
    variants: list[VariantSpec] = Field(min_length=1, max_length=32)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    template: TemplateSpec = Field(default_factory=TemplateSpec)
    profiling: ProfilingSpec = Field(
        default_factory=ProfilingSpec, description="In-cluster profiling (opt-in)."
    )

    @model_validator(mode="after")
    def _cross_field(self) -> ModelDeploymentSpec:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(dupes)}")
        types = [g.type for g in self.gpus]
        if len(set(types)) != len(types):
            raise ValueError(f"gpu types must be unique; got {types}")
        for i, v in enumerate(self.variants):
            if v.gpu.type not in types:
                raise ValueError(
                    f"variants[{i}] ({v.name}): gpu.type {v.gpu.type} is not listed under "
                    f"spec.gpus ({', '.join(types)}); add it there with its usdPerHour"
                )
        unknown = sorted(set(self.profiling.variants or []) - set(names))
        if unknown:
            raise ValueError(
                f"spec.profiling.variants names no variant: {', '.join(unknown)} "
                f"(variants: {', '.join(names)})"
            )
        return self


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    namespace: str = "default"
    generation: int | None = None


class ModelDeployment(BaseModel):
    """A whole object as read from a file or the API server (status ignored on input)."""

    model_config = ConfigDict(extra="allow")
    api_version: Literal["paretoscale.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["ModelDeployment"]
    metadata: Metadata
    spec: ModelDeploymentSpec

    @model_validator(mode="after")
    def _names(self) -> ModelDeployment:
        problems = name_problems(self.metadata.name, [v.name for v in self.spec.variants])
        if problems:
            raise ValueError("; ".join(problems))
        return self
