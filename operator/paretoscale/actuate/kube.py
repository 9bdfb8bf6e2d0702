"""The only place that talks to the Kubernetes API for workloads and status (the shell).

Server-side apply with field manager `paretoscale` (force: the operator applies only objects
its ModelDeployment owns, checked first, see actuate/ownership.py), status through the status subresource with a merge patch, deletion of Deployments
(and their PodDisruptionBudgets) of removed variants. Calls are synchronous (kubernetes client); the controller runs them off the
event loop. Errors are raised as they come: the controller decides whether to retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from paretoscale.actuate.ownership import OwnerRefs
from paretoscale.actuate.render import FIELD_MANAGER
from paretoscale.api.types import GROUP, PLURAL, VERSION

APPLY = "application/apply-patch+yaml"


class Kube:
    """Typed API clients sharing one connection pool."""

    def __init__(self, api_client: client.ApiClient, timeout_s: float = 10.0) -> None:
        self.api = api_client
        self.timeout_s = timeout_s  # every write and read gives up after this (seconds)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.policy = client.PolicyV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def apply(self, manifest: Mapping[str, Any]) -> None:
        """Server-side apply one Deployment, PodDisruptionBudget or Service."""
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
                _request_timeout=self.timeout_s,
            )
        elif kind == "Service":
            self.core.patch_namespaced_service(
                name,
                ns,
                dict(manifest),
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY,
                _request_timeout=self.timeout_s,
            )
        elif kind == "PodDisruptionBudget":
            self.policy.patch_namespaced_pod_disruption_budget(
                name,
                ns,
                dict(manifest),
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY,
                _request_timeout=self.timeout_s,
            )
        else:
            raise ValueError(f"cannot apply kind {kind}")

    def owners(self, kind: str, namespace: str, name: str) -> OwnerRefs | None:
        """The ownerReferences (kind, name, uid) of an existing Deployment, Service or
        PodDisruptionBudget; None when there is no object of that name."""
        readers = {
            "Deployment": self.apps.read_namespaced_deployment,
            "Service": self.core.read_namespaced_service,
            "PodDisruptionBudget": self.policy.read_namespaced_pod_disruption_budget,
        }
        try:
            obj: Any = readers[kind](name, namespace, _request_timeout=self.timeout_s)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise
        return tuple(
            (str(r.kind), str(r.name), str(r.uid)) for r in obj.metadata.owner_references or []
        )

    def delete_deployment(self, namespace: str, name: str) -> None:
        """Delete a variant's Deployment and its PodDisruptionBudget (same name); either
        already gone is fine."""
        for delete in (
            self.apps.delete_namespaced_deployment,
            self.policy.delete_namespaced_pod_disruption_budget,
        ):
            try:
                delete(name, namespace, _request_timeout=self.timeout_s)
            except client.ApiException as e:
                if e.status != 404:
                    raise

    def list_modeldeployments(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every ModelDeployment of `namespace` (None: of the cluster), as dicts."""
        out: Any
        if namespace is None:
            out = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        else:
            out = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        return [dict(item) for item in out.get("items", [])]

    def list_workloads(
        self, kind: str, namespace: str | None, label_selector: str
    ) -> list[dict[str, Any]]:
        """Deployments, Services or PodDisruptionBudgets (`kind`) of `namespace` (None: of the
        cluster) matching `label_selector`, as the API's JSON (dicts, camelCase)."""
        listers = {
            "Deployment": (
                self.apps.list_deployment_for_all_namespaces,
                self.apps.list_namespaced_deployment,
            ),
            "Service": (
                self.core.list_service_for_all_namespaces,
                self.core.list_namespaced_service,
            ),
            "PodDisruptionBudget": (
                self.policy.list_pod_disruption_budget_for_all_namespaces,
                self.policy.list_namespaced_pod_disruption_budget,
            ),
        }
        everywhere, in_namespace = listers[kind]
        out: Any
        if namespace is None:
            out = everywhere(label_selector=label_selector)
        else:
            out = in_namespace(namespace, label_selector=label_selector)
        serialize: Any = self.api.sanitize_for_serialization
        return [dict(serialize(item)) for item in out.items]

    def post_event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on `obj`, as `kubectl describe` shows them."""
        meta = obj["metadata"]
        now = datetime.now(UTC)
        self.core.create_namespaced_event(
            meta["namespace"],
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}."),
                involved_object=client.V1ObjectReference(
                    api_version=obj.get("apiVersion"),
                    kind=obj.get("kind"),
                    name=meta["name"],
                    namespace=meta["namespace"],
                    uid=meta.get("uid"),
                ),
                type=type_,
                reason=reason,
                message=message,
                source=client.V1EventSource(component=FIELD_MANAGER),
                first_timestamp=now,
                last_timestamp=now,
                count=1,
                reporting_component=FIELD_MANAGER,
                reporting_instance=FIELD_MANAGER,
            ),
            _request_timeout=self.timeout_s,
        )

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": dict(status)},
            _request_timeout=self.timeout_s,
        )
