"""spec.template's pod fields: defaults, what is refused, and what the CRD schema says."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from paretoscale.api.crd import crd
from paretoscale.api.types import TemplateSpec, shm_disabled


def template_schema() -> dict[str, Any]:
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return dict(spec["properties"]["template"]["properties"])


def test_defaults() -> None:
    t = TemplateSpec()
    assert t.automount_service_account_token is False
    assert t.termination_grace_period_seconds == 120
    assert t.shm_size is None  # sized from tensor parallelism at render time
    assert t.volumes is None and t.volume_mounts is None
    assert t.service_account_name is None and t.priority_class_name is None
    assert t.pod_security_context is None and t.container_security_context is None


def test_camel_case_on_the_wire() -> None:
    t = TemplateSpec.model_validate(
        {
            "volumes": [{"name": "c", "persistentVolumeClaim": {"claimName": "cache"}}],
            "volumeMounts": [{"name": "c", "mountPath": "/models"}],
            "shmSize": "16Gi",
            "serviceAccountName": "reader",
            "automountServiceAccountToken": True,
            "podLabels": {"team": "llm"},
            "podAnnotations": {"a": "b"},
            "affinity": {"nodeAffinity": {}},
            "topologySpreadConstraints": [{"maxSkew": 1}],
            "priorityClassName": "high",
            "terminationGracePeriodSeconds": 30,
            "podSecurityContext": {"runAsUser": 1000},
            "containerSecurityContext": {"readOnlyRootFilesystem": True},
        }
    )
    assert t.volumes == [{"name": "c", "persistentVolumeClaim": {"claimName": "cache"}}]
    assert t.shm_size == "16Gi" and t.service_account_name == "reader"
    assert t.termination_grace_period_seconds == 30


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("podLabels", {"paretoscale.io/variant": "x"}, "podLabels may not set"),
        ("podLabels", {"app.kubernetes.io/instance": "x"}, "the operator sets these labels"),
        ("shmSize", "8GB", "pattern"),
        ("shmSize", "-1Gi", "pattern"),
        ("serviceAccountName", "Weights_Reader", "pattern"),
        ("priorityClassName", "High", "pattern"),
        ("terminationGracePeriodSeconds", -1, "greater than or equal"),
        ("volumes", {"name": "x"}, "list"),
        ("automountServiceAccountToken", "maybe", "bool"),
    ],
)
def test_refused(field: str, value: Any, words: str) -> None:
    with pytest.raises(ValidationError) as e:
        TemplateSpec.model_validate({field: value})
    assert words in str(e.value)


def test_other_pod_labels_are_accepted() -> None:
    labels = {"team": "llm", "app.kubernetes.io/part-of": "chat", "example.com/tier": "gold"}
    assert TemplateSpec.model_validate({"podLabels": labels}).pod_labels == labels


def test_schema_types_and_defaults() -> None:
    props = template_schema()
    for name in ("volumes", "volumeMounts", "topologySpreadConstraints"):
        assert props[name]["type"] == "array"
        assert props[name]["items"] == {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }, name
    for name in ("affinity", "podSecurityContext", "containerSecurityContext"):
        assert props[name]["type"] == "object"
        assert props[name]["x-kubernetes-preserve-unknown-fields"] is True, name
    assert props["podLabels"]["additionalProperties"] == {"type": "string"}
    assert props["automountServiceAccountToken"] == {
        "type": "boolean",
        "default": False,
        "description": props["automountServiceAccountToken"]["description"],
    }
    assert props["terminationGracePeriodSeconds"]["default"] == 120
    assert "default" not in props["shmSize"]


def test_a_volume_named_like_the_shm_volume_needs_to_be_the_shm() -> None:
    mine = [{"name": "dshm", "emptyDir": {}}]
    with pytest.raises(ValidationError, match="rename yours, or mount it at /dev/shm"):
        TemplateSpec.model_validate({"volumes": mine})
    # Mounted at /dev/shm it replaces the operator's; with shmSize "0" there is no clash.
    TemplateSpec.model_validate(
        {"volumes": mine, "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]}
    )
    TemplateSpec.model_validate({"volumes": mine, "shmSize": "0"})


@pytest.mark.parametrize(
    ("size", "off"), [(None, False), ("0", True), ("0Gi", True), ("0.0", True), ("1Mi", False)]
)
def test_shm_disabled(size: str | None, off: bool) -> None:
    assert shm_disabled(size) is off
