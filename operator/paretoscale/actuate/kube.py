"""The only place that talks to the Kubernetes API for workloads and status (the shell).

Server-side apply with field manager `paretoscale` (force, since the operator owns these
fields), status through the status subresource with a merge patch, deletion of Deployments of
removed variants. Calls are synchronous (kubernetes client); the controller runs them off the
event loop. Errors are raised as they come: the controller decides whether to retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from paretoscale.actuate.render import FIELD_MANAGER
from paretoscale.api.types import GROUP, PLURAL, VERSION

APPLY = "application/apply-patch+yaml"


class Kube:
    """Typed API clients sharing one connection pool."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def apply(self, manifest: Mapping[str, Any]) -> None:
        """Server-side apply one Deployment or Service."""
        ns = manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        kind = manifest["kind"]
        if kind == "Deployment":
            self.apps.patch_namespaced_deployment(
                name,
                ns,
                dict(manifest),
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY,
            )
        elif kind == "Service":
            self.core.patch_namespaced_service(
                name,
                ns,
                dict(manifest),
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY,
            )
        else:
            raise ValueError(f"cannot apply kind {kind}")

    def delete_deployment(self, namespace: str, name: str) -> None:
        try:
            self.apps.delete_namespaced_deployment(name, namespace)
        except client.ApiException as e:
            if e.status != 404:
                raise

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)}
        )
