"""A ModelDeployment listing goes page by page (limit and continue), each object kept as
the caller's `keep` makes it before the next page is asked for."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from paretoscale.actuate import kube as kube_module
from paretoscale.actuate.kube import Kube


class PagedApi:
    """A CustomObjectsApi that serves `count` objects `limit` at a time."""

    def __init__(self, count: int) -> None:
        self.names = [f"md-{i}" for i in range(count)]
        self.calls: list[tuple[int, str | None]] = []

    def list_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, **kw: Any
    ) -> dict[str, Any]:
        limit, token = kw["limit"], kw.get("_continue")
        self.calls.append((limit, token))
        start = int(token or 0)
        names = self.names[start : start + limit]
        more = start + limit < len(self.names)
        return {
            "metadata": {"continue": str(start + limit) if more else ""},
            "items": [{"metadata": {"name": n, "namespace": ns}, "big": "x" * 100} for n in names],
        }


def test_a_listing_goes_page_by_page_and_keeps_what_the_caller_keeps(monkeypatch: Any) -> None:
    monkeypatch.setattr(kube_module, "LIST_PAGE", 2)
    kube = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")), 1.0)
    api = PagedApi(5)
    kube.custom = api  # type: ignore[assignment]
    kept = kube.list_modeldeployments("llm", lambda b: {"name": b["metadata"]["name"]})
    assert kept == [{"name": f"md-{i}"} for i in range(5)]
    assert api.calls == [(2, None), (2, "2"), (2, "4")]
