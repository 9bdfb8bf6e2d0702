"""The only place that talks to the Kubernetes API for workloads and status (the shell).

Server-side apply with field manager `paretoscale` (force: the operator applies only objects
its ModelDeployment owns, checked first, see actuate/ownership.py), status by replacing the
status subresource at a resourceVersion (optimistic concurrency; a field left out is
removed), deletion of Deployments (and their PodDisruptionBudgets) of removed variants. Every
call has a timeout (`timeout_s`); every write is refused unless `may_write()` (leadership).
Calls are synchronous (kubernetes client); the controller runs them off the event loop.
Errors are raised as they come: the controller decides whether to retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from paretoscale.actuate.ownership import OwnerRefs
from paretoscale.actuate.render import FIELD_MANAGER
from paretoscale.api.types import GROUP, KIND, PLURAL, VERSION
from paretoscale.redact import redact

APPLY = "application/apply-patch+yaml"
LIST_PAGE = 500  # objects per list call of a paged listing


class WriteRefused(Exception):
    """This process may not write now (it is not sure it still leads): nothing was sent."""


class StatusConflict(Exception):
    """The object changed since the resourceVersion a status write was based on (409)."""


class Kube:
    """Typed API clients sharing one connection pool. Every write first asks `may_write`
    (with leader election: whether this process is sure it still holds the Lease) and raises
    WriteRefused, sending nothing, when it says no."""

    def __init__(
        self,
        api_client: client.ApiClient,
        timeout_s: float = 10.0,
        may_write: Callable[[], bool] = lambda: True,
    ) -> None:
        self.api = api_client
        self.timeout_s = timeout_s  # every write and read gives up after this (seconds)
        self.may_write = may_write
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.policy = client.PolicyV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def apply(self, manifest: Mapping[str, Any]) -> None:
        """Server-side apply one Deployment, PodDisruptionBudget or Service."""
        self._check_write()
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
        self._check_write()
        for delete in (
            self.apps.delete_namespaced_deployment,
            self.policy.delete_namespaced_pod_disruption_budget,
        ):
            try:
                delete(name, namespace, _request_timeout=self.timeout_s)
            except client.ApiException as e:
                if e.status != 404:
                    raise

    def _pages(
        self,
        call: Callable[..., Any],
        *args: Any,
        keep: Callable[[dict[str, Any]], dict[str, Any]] = dict,
        **query: Any,
    ) -> list[dict[str, Any]]:
        """Every item of a list `call`, as the API's JSON (no typed models, the same shape a
        watch event has), each as `keep` makes it, LIST_PAGE at a time (limit and continue):
        a large listing holds one page as the API sent it, not all of it (10,000
        ModelDeployments are about 280 MB of parsed JSON)."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            raw = call(
                *args, limit=LIST_PAGE, _continue=token, _preload_content=False,
                _request_timeout=self.timeout_s, **query,
            )  # fmt: skip
            page = json.loads(raw.data)
            found.extend(keep(item) for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:  # the last page has none (or "")
                return found

    def list_modeldeployments(
        self,
        namespace: str | None,
        keep: Callable[[dict[str, Any]], dict[str, Any]] = dict,
    ) -> list[dict[str, Any]]:
        """Every ModelDeployment of `namespace` (None: of the cluster), each as `keep` makes
        it."""
        if namespace is None:
            everywhere = self.custom.list_cluster_custom_object
            return self._pages(everywhere, GROUP, VERSION, PLURAL, keep=keep)
        in_namespace = self.custom.list_namespaced_custom_object
        return self._pages(in_namespace, GROUP, VERSION, namespace, PLURAL, keep=keep)

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
        if namespace is None:
            return self._pages(everywhere, label_selector=label_selector)
        return self._pages(in_namespace, namespace, label_selector=label_selector)

    def list_nodes(self) -> list[dict[str, Any]]:
        """Every Node, as the API's JSON."""
        return self._pages(self.core.list_node)

    def list_placed_pods(self, namespace: str | None) -> list[dict[str, Any]]:
        """The pods of `namespace` (None: of the cluster) placed on a node and not finished,
        as the API's JSON."""
        selector = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
        if namespace is None:
            return self._pages(self.core.list_pod_for_all_namespaces, field_selector=selector)
        return self._pages(self.core.list_namespaced_pod, namespace, field_selector=selector)

    def post_event(
        self,
        obj: Mapping[str, Any],
        type_: str,
        reason: str,
        message: str,
        at: datetime | None = None,
    ) -> None:
        """A core/v1 Event on `obj`, as `kubectl describe` shows them, that happened `at`
        (default: now)."""
        self._check_write()
        meta = obj["metadata"]
        now = at or datetime.now(UTC)
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
                message=redact(message),
                source=client.V1EventSource(component=FIELD_MANAGER),
                first_timestamp=now,
                last_timestamp=now,
                count=1,
                reporting_component=FIELD_MANAGER,
                reporting_instance=FIELD_MANAGER,
            ),
            _request_timeout=self.timeout_s,
        )

    def replace_status(
        self, namespace: str, name: str, status: Mapping[str, Any], resource_version: str | None
    ) -> str:
        """Replace the whole status (a field left out is removed) if the object is still at
        `resource_version`; returns the new resourceVersion. StatusConflict (409) means the
        object changed since: re-read it, never overwrite blindly."""
        self._check_write()
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
            "status": dict(status),
        }
        try:
            out: Any = self.custom.replace_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body,
                field_manager=FIELD_MANAGER,  # the status's managedFields name this operator
                _request_timeout=self.timeout_s,
            )
        except client.ApiException as e:
            if e.status == 409:
                raise StatusConflict(f"{namespace}/{name}: {e.reason}") from e
            raise
        return str(out["metadata"]["resourceVersion"])

    def read_modeldeployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ModelDeployment as the API has it now; None when it is gone."""
        try:
            out: Any = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout_s
            )
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise
        return dict(out)

    def pending_pods(self, namespace: str, label_selector: str) -> list[tuple[str, str]]:
        """(name, scheduler message) of the Pending pods matching `label_selector` that the
        scheduler could not place (PodScheduled False, reason Unschedulable)."""
        out: Any = self.core.list_namespaced_pod(
            namespace,
            label_selector=label_selector,
            field_selector="status.phase=Pending",
            _request_timeout=self.timeout_s,
        )
        found = []
        for pod in out.items:
            for c in (pod.status and pod.status.conditions) or []:
                if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                    found.append((str(pod.metadata.name), str(c.message or "")))
        return found

    def _check_write(self) -> None:
        if not self.may_write():
            raise WriteRefused("not sure to hold the leader Lease: no write")
