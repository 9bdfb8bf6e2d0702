"""The informer cache keeps what the operator reads of a ModelDeployment, not its bulk."""

from __future__ import annotations

from paretoscale.controller.cache import Cache


def test_managed_fields_and_annotations_are_not_kept() -> None:
    body = {
        "apiVersion": "paretoscale.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": "a", "namespace": "ns", "uid": "u", "generation": 2, "resourceVersion": "7",
            "labels": {"team": "x"}, "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
            "managedFields": [{"manager": "paretoscale", "fieldsV1": {"f:status": {}}}],
        },
        "spec": {"mode": "Auto"},
        "status": {"phase": "Stable"},
    }  # fmt: skip
    cache = Cache()
    assert cache.put_md(body)
    kept = cache.mds[("ns", "a")]
    assert set(kept["metadata"]) == {
        "name", "namespace", "uid", "generation", "resourceVersion", "labels", "creationTimestamp",
    }  # fmt: skip
    assert kept["spec"] == body["spec"] and kept["status"] == body["status"]
    assert kept["apiVersion"] == body["apiVersion"] and kept["kind"] == body["kind"]
    assert "managedFields" in body["metadata"]  # the caller's object is left as it was
    assert not cache.put_md(body)  # the same generation: no change of spec
