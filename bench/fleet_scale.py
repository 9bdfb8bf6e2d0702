"""The operator at scale: N ModelDeployments (default 1,000) against the local API server and
Prometheus, and a baseline of 10 in the same command (ratios say how the cost grows with the
fleet). Nothing is asserted.

Reports Prometheus queries per tick, operator CPU per tick (and per object), status writes
per tick once the first decisions are written, objects the last tick deferred, the oldest
decision's age, the mean duration of the ticks measured (the first decisions' ticks left
out), peak RSS, the time to a first decision for every object, and
(with --profile) where the operator's event-loop time goes (cProfile, by cumulative and own
time). Objects are created in bulk (32 at once), in Recommend mode.

    python bench/fleet_scale.py                      # its own local cluster, torn down after
    python bench/fleet_scale.py --count 10000 --tick-seconds 30
    python bench/fleet_scale.py --count 300 --ticks 5 --profile
With KUBECONFIG (and PROMETHEUS_URL) set, that cluster is used instead.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from paretoscale.demo.cluster import parse_env
from paretoscale.sim.bridge import free_loopback_port as free_port

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "paretoscale.io", "v1alpha1", "modeldeployments"


def cluster_env() -> tuple[dict[str, str], Path | None]:
    if os.environ.get("KUBECONFIG"):
        return {k: v for k, v in os.environ.items() if k in ("KUBECONFIG", "PROMETHEUS_URL")}, None
    state = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    up = subprocess.run(
        [str(ROOT / "hack" / "cluster"), "--dir", str(state), "up"], capture_output=True, text=True
    )
    if up.returncode != 0:
        sys.exit(f"hack/cluster up failed:\n{up.stderr[-3000:]}")
    return parse_env(up.stdout), state


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def proc_peak_rss_mb(pid: int) -> float:
    m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def metric(port: int, name: str) -> float | None:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def tick_totals(port: int) -> tuple[float, float]:
    """The tick-duration histogram's (sum of seconds, count of ticks) so far."""
    return (
        metric(port, "paretoscale_tick_duration_seconds_sum") or 0.0,
        metric(port, "paretoscale_tick_duration_seconds_count") or 0.0,
    )


def create_mds(api: Any, namespace: str, count: int) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    base = yaml.safe_load((ROOT / "examples" / "assistant-llama-8b.yaml").read_text())

    def one(i: int) -> None:
        doc = copy.deepcopy(base)
        doc["metadata"] = {"name": f"md-{i:04d}", "namespace": namespace}
        doc["spec"]["mode"] = "Recommend"  # decide and report for all; no 1,000 Deployments
        doc["spec"]["traffic"]["expectedRequestsPerSecond"] = float(i % 40)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)

    with ThreadPoolExecutor(32) as pool:  # in bulk: the API server is the limit
        list(pool.map(one, range(count)))


def wait_decided(api: Any, namespace: str, count: int, timeout_s: float, alive: Any) -> float:
    """Seconds until every one of `count` ModelDeployments has a decision in its status.

    One list, then a watch: each status write arrives once as an event, where polling a list
    would fetch every object again each poll (at 10,000 objects the polls themselves would
    load the API server and this process more than the operator does)."""
    from kubernetes import client, watch

    custom = client.CustomObjectsApi(api)
    t0 = time.monotonic()
    listing = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    done = {i["metadata"]["name"] for i in listing["items"] if _has_decision(i)}
    rv = listing["metadata"]["resourceVersion"]
    while len(done) < count:
        left = timeout_s - (time.monotonic() - t0)
        if left <= 0 or not alive():
            sys.exit(f"the operator decided {len(done)} of {count} in {timeout_s:.0f} s")
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
            resource_version=rv, timeout_seconds=int(min(left, 30)) + 1,
        )  # fmt: skip
        for event in stream:
            obj = event["object"]
            rv = obj["metadata"]["resourceVersion"]
            if _has_decision(obj):
                done.add(obj["metadata"]["name"])
                if len(done) >= count:
                    break
    return time.monotonic() - t0


def _has_decision(obj: dict[str, Any]) -> bool:
    return bool((obj.get("status") or {}).get("decision"))


def settle(port: int, tick_s: float, most_ticks: int = 5) -> None:
    """Wait until a whole tick passes without a status write (the first decisions and their
    follow-ups are written), at most `most_ticks` ticks."""
    last = metric(port, "paretoscale_status_writes_total")
    for _ in range(most_ticks):
        time.sleep(tick_s)
        now = metric(port, "paretoscale_status_writes_total")
        if now == last:
            return
        last = now


def run(
    env: dict[str, str], count: int, ticks: int, tick_s: float, profile: Path | None = None
) -> dict[str, float]:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    ns = f"bench-{count}-{os.getpid()}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=ns))
    )
    t0 = time.monotonic()
    create_mds(api, ns, count)
    created_s = time.monotonic() - t0
    mport, hport = free_port(), free_port()
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [
        sys.executable,
        *prof,
        "-m",
        "paretoscale.cli",
        "run",
        "-n",
        ns,
        "--kubeconfig",
        env["KUBECONFIG"],
        "--tick-seconds",
        str(tick_s),
        "--metrics-port",
        str(mport),
        "--health-port",
        str(hport),
    ]
    if env.get("PROMETHEUS_URL"):
        cmd += ["--prometheus-url", env["PROMETHEUS_URL"], "--rate-window", "1m"]
    log = open(Path(tempfile.gettempdir()) / f"bench-operator-{count}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        first_pass_s = wait_decided(api, ns, count, 1200, lambda: proc.poll() is None)
        settle(mport, tick_s)
        writes0 = metric(mport, "paretoscale_status_writes_total") or 0.0
        ticks0 = tick_totals(mport)
        cpu0, w0 = proc_cpu_s(proc.pid), time.monotonic()
        time.sleep(ticks * tick_s)
        cpu1, w1 = proc_cpu_s(proc.pid), time.monotonic()
        writes1 = metric(mport, "paretoscale_status_writes_total") or 0.0
        ticks1 = tick_totals(mport)
        n_ticks = (w1 - w0) / tick_s
        return {
            "cpu_per_object_ms": (cpu1 - cpu0) / n_ticks / count * 1e3,
            "status_writes_per_tick": (writes1 - writes0) / n_ticks,
            "deferred": metric(mport, "paretoscale_tick_deferred_modeldeployments") or 0.0,
            "decision_age_s": metric(mport, "paretoscale_decision_age_max_seconds") or 0.0,
            "count": count,
            "create_s": created_s,
            "first_pass_s": first_pass_s,
            "cpu_per_tick_s": (cpu1 - cpu0) / n_ticks,
            "peak_rss_mb": proc_peak_rss_mb(proc.pid),
            "queries_per_tick": metric(mport, "paretoscale_prometheus_queries_per_tick") or 0.0,
            "tick_mean_s": (ticks1[0] - ticks0[0]) / max(1.0, ticks1[1] - ticks0[1]),
        }
    finally:
        proc.terminate()
        proc.wait(20)
        client.CoreV1Api(api).delete_namespace(ns)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--count", type=int, default=1000, help="ModelDeployments (default 1000)")
    ap.add_argument("--baseline", type=int, default=10, help="the small fleet (default 10)")
    ap.add_argument("--ticks", type=int, default=4, help="ticks measured (default 4)")
    ap.add_argument(
        "--tick-seconds", type=float, default=10.0, help="the operator's tick (default 10)"
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="run the large operator under cProfile and print where its CPU time goes",
    )
    args = ap.parse_args()
    env, state = cluster_env()
    subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", str(ROOT / "crds")],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    time.sleep(2)
    try:
        base = run(env, args.baseline, args.ticks, args.tick_seconds)
        prof = Path(tempfile.gettempdir()) / f"bench-operator-{args.count}.prof"
        big = run(env, args.count, args.ticks, args.tick_seconds, prof if args.profile else None)
    finally:
        if state is not None:
            subprocess.run(
                [str(ROOT / "hack" / "cluster"), "--dir", str(state), "down"], capture_output=True
            )
    print(f"{'ModelDeployments':<34}{base['count']:>12.0f}{big['count']:>12.0f}{'ratio':>10}")
    for key, label in [
        ("queries_per_tick", "Prometheus queries per tick"),
        ("cpu_per_tick_s", "operator CPU seconds per tick"),
        ("cpu_per_object_ms", "  per ModelDeployment [ms]"),
        ("status_writes_per_tick", "status writes per tick"),
        ("deferred", "deferred by the last tick"),
        ("decision_age_s", "oldest decision age [s]"),
        ("tick_mean_s", "mean steady tick duration [s]"),
        ("peak_rss_mb", "operator peak RSS [MB]"),
        ("first_pass_s", "first decision for all [s]"),
        ("create_s", "creating the objects [s]"),
    ]:
        ratio = big[key] / base[key] if base[key] else float("nan")
        print(f"{label:<34}{base[key]:>12.3f}{big[key]:>12.3f}{ratio:>9.2f}x")
    if args.profile:
        print_profile(prof)
    return 0


def print_profile(path: Path, top: int = 25) -> None:
    """The operator's hottest functions by cumulative and own time (main thread only: the
    event loop, where decisions, validation and status building run)."""
    import pstats

    if not path.exists():
        print(f"no profile written to {path} (the operator did not exit cleanly)")
        return
    for key in ("cumulative", "tottime"):
        print(f"\n--- operator profile by {key} ---")
        pstats.Stats(str(path)).sort_stats(key).print_stats(top)


if __name__ == "__main__":
    sys.exit(main())
