"""Fault 12: many ModelDeployments behind a slow API server, a few of them hanging.

COUNT ModelDeployments (Recommend mode: each tick decides and reports for all of them, no
vLLM Deployments) are created directly; the operator talks to the API server only through
tests/e2e/slow_apiserver.py, a real HTTP reverse proxy. Once every object has its decision in
its status, the fault starts: every request is delayed by DELAY_S and every request about
HANGING of the objects hangs; those objects and about 40 others get a spec change, so the
operator must write their status. Invariants:
- over TICKS consecutive ticks (counted by the operator's paretoscale_tick_duration_seconds
  histogram), every object that does not hang is reconciled in each tick (its
  paretoscale_decisions_total rises between two tick ends);
- the changed objects that do not hang get their status written (observedGeneration);
- /healthz, polled every second from the operator's first green answer on, never fails.

COUNT is 500, as in the issue.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import test_operator as scenarios
from tests.e2e.operator_harness import GROUP, PLURAL, VERSION, OperatorProcess, wait
from tests.e2e.slow_apiserver import SlowApiServer, metric_samples

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
crds_installed = scenarios.crds_installed  # the fixture: the generated CRD, Established

ROOT = Path(__file__).resolve().parents[2]
COUNT = 500
HANGING = 8
DELAY_S = 1.0
TICK_S = 15.0
TICKS = 3


def names() -> list[str]:
    return [f"md-{i:04d}" for i in range(COUNT)]


def hanging() -> set[str]:
    step = COUNT // HANGING
    return {f"md-{i * step:04d}" for i in range(HANGING)}


def create_all(api: Any, namespace: str) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    base = yaml.safe_load((ROOT / "examples" / "assistant-llama-8b.yaml").read_text())

    def one(i_name: tuple[int, str]) -> None:
        i, name = i_name
        doc = copy.deepcopy(base)
        doc["metadata"] = {"name": name, "namespace": namespace}
        doc["spec"]["mode"] = "Recommend"
        doc["spec"]["traffic"]["expectedRequestsPerSecond"] = float(i % 40)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, enumerate(names())))


class HealthWatch:
    """Polls /healthz every second in a thread; records each failure after the first 200."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.green = threading.Event()
        self.failures: list[str] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> HealthWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    ok, why = r.status == 200, str(r.status)
            except Exception as e:  # connection refused, 5xx, timeout
                ok, why = False, repr(e)
            if ok:
                self.green.set()
            elif self.green.is_set():
                self.failures.append(f"{time.strftime('%H:%M:%S')} {why}")
            self.polls += self.green.is_set()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return str(r.read().decode())


def decisions(text: str) -> dict[str, float]:
    """paretoscale_decisions_total per ModelDeployment (all actions summed)."""
    out: dict[str, float] = {}
    for labels, value in metric_samples(text, "paretoscale_decisions_total").items():
        name = dict(labels)["modeldeployment"]
        out[name] = out.get(name, 0.0) + value
    return out


def ticks_done(text: str) -> float:
    return sum(metric_samples(text, "paretoscale_tick_duration_seconds_count").values())


def status_writes(text: str) -> float:
    return sum(metric_samples(text, "paretoscale_status_writes_total").values())


def statuses(custom: Any, namespace: str) -> dict[str, tuple[int, dict[str, Any]]]:
    """name -> (generation, status) of every ModelDeployment, read directly (not slowed)."""
    items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    return {
        i["metadata"]["name"]: (i["metadata"]["generation"], i.get("status") or {}) for i in items
    }


def bump(custom: Any, namespace: str, name: str) -> None:
    """A spec change (the load assumed before metrics): the next reconcile writes status."""
    patch = {"spec": {"traffic": {"expectedRequestsPerSecond": 41.0}}}
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)


def tick_ends(port: int, count: int, timeout_s: float) -> list[tuple[float, dict[str, float]]]:
    """The decision counters at `count` + 1 consecutive tick ends (the first one is the next
    tick end from now), polling /metrics every half second."""
    text = scrape(port)
    start = ticks_done(text)
    seen: list[tuple[float, dict[str, float]]] = []
    deadline = time.monotonic() + timeout_s
    while len(seen) <= count and time.monotonic() < deadline:
        time.sleep(0.5)
        text = scrape(port)
        done = ticks_done(text)
        if done > (seen[-1][0] if seen else start):
            seen.append((done, decisions(text)))
    return seen


@pytest.mark.usefixtures("crds_installed")
def test_slow_api_and_hanging_objects_do_not_stall_the_fleet(
    cluster: Any, k8s_client: Any, namespace: str, tmp_path: Path
) -> None:
    from kubernetes import client

    create_all(k8s_client, namespace)
    stuck = hanging()
    others = sorted(set(names()) - stuck)
    canaries = others[1::12]  # about 40 objects whose spec changes under the slow API
    proxy = SlowApiServer(cluster.kubeconfig).start()
    kubeconfig = proxy.write_kubeconfig(tmp_path / "slow.kubeconfig")
    op = OperatorProcess(kubeconfig, namespace, tmp_path, "--tick-seconds", str(TICK_S)).start()
    health = HealthWatch(op.health_port).start()
    custom = client.CustomObjectsApi(k8s_client)
    try:
        assert health.green.wait(120), f"/healthz never answered 200\n{op.log()}"
        # The fleet in steady state first: every object decided, at full API speed.
        wait(
            lambda: all(s.get("decision") for _, s in statuses(custom, namespace).values()),
            300,
            "a decision in every status",
            op,
        )

        def steady() -> bool:
            """A whole tick went by without a status write."""
            before = status_writes(scrape(op.metrics_port))
            return bool(tick_ends(op.metrics_port, 1, 120)) and (
                status_writes(scrape(op.metrics_port)) == before
            )

        wait(steady, 300, "a tick without status writes (steady state)", op)
        # Then the fault: 1 s per API request, and the requests about 8 objects hang. Those 8
        # and the canaries get a spec change, so the operator must write their status.
        proxy.slow_down(DELAY_S, stuck)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: bump(custom, namespace, n), [*stuck, *canaries]))

        seen = tick_ends(op.metrics_port, TICKS, TICKS * (TICK_S + 90))
        progress = "\n".join(
            line
            for line in scrape(op.metrics_port).splitlines()
            if line.startswith(("paretoscale_tick", "paretoscale_status_writes_total"))
        )
        assert len(seen) > TICKS, f"only {len(seen) - 1} ticks ended in time:\n{progress}"
        for (t0, before), (t1, after) in itertools.pairwise(seen):
            assert t1 == t0 + 1, f"missed a tick end between {t0:g} and {t1:g}"
            lagging = [n for n in others if after.get(n, 0) <= before.get(n, 0)]
            assert not lagging, (
                f"tick {t1:g}: {len(lagging)} objects not reconciled, e.g. {lagging[:5]}"
            )
        now = statuses(custom, namespace)
        behind = [n for n in canaries if now[n][1].get("observedGeneration") != now[n][0]]
        assert not behind, f"status not written for changed specs: {behind[:5]}\n{op.log()}"
        assert proxy.hung > 0, "the hanging objects were never asked about"
        assert not health.failures, f"/healthz failed: {health.failures[:5]}\n{op.log()}"
        assert health.polls > 30
    finally:
        health.stop()
        op.stop()
        proxy.stop()
