"""The watches of the rendered kinds carry the server-side label selector; the
ModelDeployments' watch does not (the user's objects carry no operator label)."""

from __future__ import annotations

import kopf
from kopf._cogs.structs.references import Resource

from paretoscale.controller.handlers import MANAGED_SELECTOR, configure_watching


def resource(group: str, plural: str, kind: str) -> Resource:
    return Resource(group, "v1", plural, kind=kind, namespaced=True, verbs=["list", "watch"])


def test_rendered_kinds_are_listed_and_watched_by_label() -> None:
    settings = kopf.OperatorSettings()
    configure_watching(settings)
    assert MANAGED_SELECTOR == "app.kubernetes.io/managed-by=paretoscale"
    for group, plural, kind in [
        ("apps", "deployments", "Deployment"),
        ("", "services", "Service"),
        ("policy", "poddisruptionbudgets", "PodDisruptionBudget"),
    ]:
        assert settings.watching.label_selectors.collect(resource(group, plural, kind)) == [
            MANAGED_SELECTOR
        ]
    md = Resource("paretoscale.io", "v1alpha1", "modeldeployments", kind="ModelDeployment")
    assert settings.watching.label_selectors.collect(md) == []


def test_no_body_is_copied_or_stored_to_diff_it() -> None:
    """kopf builds a diff base (a deep copy of the body) per watch event for change handlers;
    the operator has none, so it stores and builds nothing (and writes nothing on objects)."""
    settings = kopf.OperatorSettings()
    configure_watching(settings)
    storage = settings.persistence.diffbase_storage
    body = kopf.Body({"metadata": {"name": "a"}, "spec": {"x": 1}})
    assert storage.build(body=body) is None
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=None)  # type: ignore[arg-type]
    assert not patch
