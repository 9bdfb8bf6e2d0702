"""Listings go page by page (limit and continue) and read the API's JSON as it came (no typed
models), each object kept as the caller's `keep` makes it before the next page is asked for."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from paretoscale.actuate import kube as kube_module
from paretoscale.actuate.kube import Kube


class PagedApi:
    """Any list call of the typed clients: serves `count` objects `limit` at a time, as the
    raw response a call with _preload_content=False returns."""

    def __init__(self, count: int) -> None:
        self.names = [f"obj-{i}" for i in range(count)]
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            assert kw.pop("_preload_content") is False  # the JSON, not typed models
            self.calls.append((args, kw))
            start, limit = int(kw["_continue"] or 0), kw["limit"]
            more = start + limit < len(self.names)
            page = {
                "metadata": {"continue": str(start + limit) if more else ""},
                "items": [
                    {"metadata": {"name": n, "creationTimestamp": "2026-12-07T00:00:00Z"}}
                    for n in self.names[start : start + limit]
                ],
            }
            return SimpleNamespace(data=json.dumps(page).encode())

        return call


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Kube:
    monkeypatch.setattr(kube_module, "LIST_PAGE", 2)
    k = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")), 1.0)
    k.custom = k.apps = k.core = k.policy = PagedApi(5)  # type: ignore[assignment]
    return k


def test_a_listing_goes_page_by_page_and_keeps_what_the_caller_keeps(kube: Kube) -> None:
    kept = kube.list_modeldeployments("llm", lambda b: {"name": b["metadata"]["name"]})
    assert kept == [{"name": f"obj-{i}"} for i in range(5)]
    api: Any = kube.custom
    pages = [(kw["limit"], kw["_continue"]) for _, kw in api.calls]
    assert pages == [(2, None), (2, "2"), (2, "4")]
    assert api.calls[0][0][2] == "llm"


def test_workloads_nodes_and_pods_come_as_the_apis_json(kube: Kube) -> None:
    deployments = kube.list_workloads("Deployment", "llm", "app=x")
    assert [d["metadata"]["name"] for d in deployments] == [f"obj-{i}" for i in range(5)]
    assert deployments[0]["metadata"]["creationTimestamp"] == "2026-12-07T00:00:00Z"
    assert len(kube.list_nodes()) == 5 and len(kube.list_placed_pods(None)) == 5
    api: Any = kube.core
    selectors = {kw.get("label_selector") or kw.get("field_selector") for _, kw in api.calls}
    assert "app=x" in selectors
    assert "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed" in selectors
