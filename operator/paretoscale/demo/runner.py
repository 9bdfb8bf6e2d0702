"""`hack/demo`: a day of real traffic through the operator on a local cluster, in minutes.

The imperative shell of the demo. In order, each step undone on the way out (also on Ctrl-C
or SIGTERM), in reverse:
1. `hack/cluster --dir OUT/cluster up`: etcd, kube-apiserver, kube-controller-manager,
   kube-scheduler, KWOK fake GPU nodes, Prometheus reading file_sd (undone: `down`);
2. the CRD and the chart's RBAC (`helm template` + `kubectl apply --server-side`);
3. the operator, `paretoscale run -n demo`, as the chart's ServiceAccount (processes.py);
4. the price exporter (paretoscale.sim.prices) on a free port, registered in file_sd;
5. the simulator bridge (paretoscale.sim.bridge): one simulator per Running vLLM pod;
6. examples/assistant-llama-8b.yaml as demo/assistant, its timings fitted to the compressed
   day (schedule.py); then the wait until its first variant serves;
7. the day (schedule.py) through the load generator (paretoscale.sim.loadgen) against
   Service demo/assistant, the H100 price cut at noon, the live view (view.py) every few
   seconds from samples (observer.py);
8. the summary against the best-quality variant all day (counterfactual.py, summary.py),
   OUT/demo.png (plot.py), OUT/demo.json, and the timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from paretoscale.cliargs import MAX_RATE_RPS, number, seed
from paretoscale.demo import DemoError, cluster, summary, view
from paretoscale.demo.cluster import ClusterEnv
from paretoscale.demo.console import Screen, Stopwatch, say, wait_for
from paretoscale.demo.inputs import EXAMPLE, NAME, NAMESPACE, Inputs, load_plan, prepare
from paretoscale.demo.observer import Observer
from paretoscale.demo.processes import LoadRun, Operator, operator_argv
from paretoscale.demo.sample import Sample
from paretoscale.demo.schedule import clock
from paretoscale.sim.prices import PriceExporter

PRICES_FILE_SD = "paretoscale-demo-prices.json"
FIRST_ROLLOUT_TIMEOUT_S = 180
DRAIN_TIMEOUT_S = 60
SCRAPE_WAIT_S = 6  # one 5 s scrape, so the last requests reach Prometheus

EPILOG = """\
what it shows:
  One day of real production load (ServeGen m-large: ten-minute windows of an Alibaba
  model's request rate, scaled to --peak-rps) played in --minutes against the Llama-3.1-8B
  ModelDeployment of examples/assistant-llama-8b.yaml (BF16, FP8 and EAGLE-3 on H100, INT4
  on L40S). The operator reads load, latency and GPU prices from Prometheus and moves
  between variants and replica counts; at noon the H100 price drops from $12.29 to $6.88
  per GPU-hour (the 2025-06-05 AWS p5.48xlarge cut). At the end: GPU cost, GPU-hours, SLO
  attainment and quality against the best-quality variant all day (replayed on the same
  day), a plot in OUT/demo.png, samples in OUT/demo.json, logs in OUT/demo-logs/.

examples:
  hack/demo                              # 5 minutes, peak 25 req/s
  hack/demo --minutes 2 --peak-rps 15    # shorter and lighter
  hack/demo --keep                       # leave the cluster up afterwards
  hack/demo --profiles model             # nothing measured: every variant on model priors
  hack/demo --no-price-change --day 10   # another day, H100 at $6.88 all day

needs: Linux, python3 >= 3.11, kubectl, Go (the first run builds the control plane from Go
modules, tens of minutes, cached in ~/.cache/paretoscale/bin). The traces and prices come
from the repository's data/ (or --data-dir). Ctrl-C stops everything it started.
"""


def _announce(what: str, action: Callable[[], object]) -> Callable[[], None]:
    """`action`, saying what it stopped and how long that took."""

    def run() -> None:
        t0 = time.monotonic()
        action()
        say(f"stopped {what} ({time.monotonic() - t0:.1f}s)")

    return run


@dataclass(frozen=True)
class Running:
    """What runs once steps 1-5 are done (each with its stop on the exit stack)."""

    env: ClusterEnv
    api: Any
    operator: Operator
    exporter: PriceExporter
    bridge_state: Path
    observer: Observer

    def hint(self) -> str:
        """The operator's last words, for an error message."""
        log = self.operator.log_tail()
        return f"\noperator log ({self.operator.log_path}), last lines:\n{log}"


def start(inputs: Inputs, args: argparse.Namespace, watch: Stopwatch,
          stack: contextlib.ExitStack) -> Running:  # fmt: skip
    """Steps 1-5 of the module docstring: the cluster, the chart's parts, the operator, the
    price exporter, the simulator bridge."""
    from kubernetes import client

    from paretoscale.sim.bridge import Bridge
    from paretoscale.sim.kube import api_client, write_json_atomic

    script = inputs.repo / "hack" / "cluster"
    if cluster.has_cluster(inputs.state_dir):
        say(f"removing the cluster a previous run left in {inputs.state_dir}")
        cluster.down(script, inputs.state_dir)
    say(f"starting the local cluster in {inputs.state_dir} (hack/cluster up)")
    if not args.keep:
        stack.callback(_announce("the cluster (hack/cluster down)",
                                 lambda: cluster.down(script, inputs.state_dir)))  # fmt: skip
    env = cluster.up(script, inputs.state_dir, None if args.keep else os.getpid())
    say(f"cluster up ({watch.lap('cluster'):.0f}s); Prometheus at {env.prometheus_url}")

    cluster.install_chart_parts(inputs.repo / "charts" / "paretoscale", env, NAMESPACE)
    op_kubeconfig = cluster.service_account_kubeconfig(
        env, inputs.state_dir / "operator.kubeconfig"
    )
    api = api_client(env.kubeconfig)
    stack.callback(api.close)
    core: Any = client.CoreV1Api(api)
    wait_for(lambda: core.read_namespaced_service_account("default", NAMESPACE), 60,
             f"the default ServiceAccount of namespace {NAMESPACE}")  # fmt: skip
    say("installed the CRD, the chart's RBAC (scoped to namespace demo) and the namespaces")

    # The operator first, while this process has no threads yet (it forks with a preexec_fn).
    operator = Operator(operator_argv(op_kubeconfig, NAMESPACE, env.prometheus_url,
                                      inputs.timings.rate_window), inputs.logs / "operator.log")  # fmt: skip
    operator.start()
    stack.callback(_announce("the operator", operator.stop))

    exporter = PriceExporter(cluster.gpu_nodes(api), prices=inputs.prices.at(0.0))
    host, port = exporter.start()
    prices_sd = env.file_sd_dir / PRICES_FILE_SD
    write_json_atomic(prices_sd, [{"targets": [f"{host}:{port}"],
                                   "labels": {"job_name": "demo-prices"}}])  # fmt: skip
    stack.callback(exporter.stop)
    stack.callback(prices_sd.unlink, missing_ok=True)

    bridge_state = inputs.logs / "bridge"
    bridge = Bridge(env.kubeconfig, env.file_sd_dir, namespace=NAMESPACE, state_dir=bridge_state,
                    poll_s=1.0)  # fmt: skip
    bridge.start()
    stack.callback(_announce("the simulators (bridge)", bridge.stop))
    observer = Observer(api, env.prometheus_url, NAMESPACE, NAME, inputs.spec)
    h100 = inputs.prices.at(0.0)["H100"]
    wait_for(lambda: abs((observer.gpu_price("H100") or -1.0) - h100) < 1e-6, 60,
             f"Prometheus to read the price exporter's H100 ${h100:.2f}")  # fmt: skip
    say(f"operator (pid {operator.pid}) runs as the chart's ServiceAccount; price exporter on "
        f"{host}:{port} (H100 ${h100:.2f}/GPU-h in Prometheus); simulator bridge running")  # fmt: skip
    return Running(env, api, operator, exporter, bridge_state, observer)


def first_rollout(inputs: Inputs, run: Running, watch: Stopwatch) -> str:
    """Step 6: apply the ModelDeployment; the variant that serves first."""
    cluster.apply_manifest(run.api, inputs.manifest)
    t = inputs.timings
    say(f"applied {EXAMPLE} as {NAMESPACE}/{NAME} (dwell {t.min_dwell_s}s, verify {t.verify_s}s, "
        f"scale-down after {t.scale_down_stabilization_s}s, rate window {t.rate_window}); "
        "waiting for its first variant to serve")  # fmt: skip

    def serving() -> str | None:
        """The variant being rolled out, once a pod behind the Service answers."""
        if not run.operator.alive():
            raise DemoError(f"the operator exited{run.hint()}")
        if cluster.serving_endpoint(run.api, NAMESPACE, NAME, run.bridge_state) is None:
            return None
        status = run.observer.status()
        return str(status.get("activeVariant") or (status.get("rollout") or {}).get("target"))

    first = str(wait_for(serving, FIRST_ROLLOUT_TIMEOUT_S, "the first variant to serve", run.hint))
    say(f"{first} serves ({watch.lap('setup'):.0f}s for CRD, RBAC, processes, first rollout)")
    return first


def play_day(inputs: Inputs, args: argparse.Namespace, run: Running, watch: Stopwatch,
             stack: contextlib.ExitStack, samples: list[Sample]) -> dict[str, Any]:  # fmt: skip
    """Step 7: the warm-up, the day with its live view and price cut, the requests in flight;
    appends to `samples`, returns the load report and the requests per variant."""
    from paretoscale.sim.loadgen import ServiceTargets

    day, prices, observer = inputs.day, inputs.prices, run.observer
    warmup_s = float(inputs.timings.rate_window_s)
    plan = load_plan(inputs, args.seed, warmup_s)
    targets = ServiceTargets(run.env.kubeconfig, NAMESPACE, NAME, str(run.bridge_state),
                             seed=args.seed)  # fmt: skip
    load = LoadRun(plan, targets, warmup_s + day.day_wall_s)
    screen = Screen(view.ViewContext(
        title=f"paretoscale demo: {inputs.title}", day_wall_s=day.day_wall_s,
        compression=day.compression, slo_s=inputs.spec.slo.seconds,
        percentile=inputs.spec.slo.percentile, slo_metric=inputs.spec.slo.latency,
        variants=tuple(v.name for v in inputs.spec.variants),
        gpu_of={v.name: str(v.gpu.type) for v in inputs.spec.variants},
    ), sys.stdout)  # fmt: skip
    say(f"warming up: {warmup_s:.0f}s at {day.rates_rps[0]:.1f} req/s, so that the operator's "
        f"{inputs.timings.rate_window} rate window holds the day's load when it starts")  # fmt: skip
    begin = load.start() + warmup_s
    stack.callback(_announce("the load generator", load.stop))
    time.sleep(max(0.0, begin - time.monotonic()))
    watch.lap("warm-up")
    at_start = observer.requests_by_variant()
    say(f"the day starts: {sum(1 for r in plan if r.at_s >= warmup_s):,} requests in "
        f"{day.day_wall_s:.0f}s")  # fmt: skip
    price_cut_due = prices.changes
    last_active: str | None = None
    while (wall := time.monotonic() - begin) < day.day_wall_s:
        if price_cut_due and day.day_s(wall) >= prices.change_at_day_s:
            run.exporter.set_prices(prices.at(prices.change_at_day_s))
            price_cut_due = False
            screen.event(f"[day {clock(day.day_s(wall))}] price cut: H100 ${prices.before:.2f} -> "
                         f"${prices.after:.2f} per GPU-hour (AWS p5.48xlarge, 2025-06-05)",
                         samples)  # fmt: skip
        if not run.operator.alive():
            raise DemoError(f"the operator exited during the day{run.hint()}")
        try:
            s = observer.sample(wall, day, run.exporter.current_prices())
        except Exception as exc:  # the API briefly away: skip this refresh
            say(f"sample skipped: {type(exc).__name__}: {exc}", sys.stderr)
        else:
            samples.append(s)
            if s.active is not None and s.active != last_active:
                moved = f"moved from {last_active} to" if last_active else "routes to"
                screen.event(f"[day {clock(s.day_s)}] the Service {moved} {s.active}", samples)
                last_active = s.active
            screen.show(samples)
        wake = [args.refresh_seconds, day.day_wall_s - wall]
        if price_cut_due:  # wake up at noon sharp for the price cut
            wake.append(day.wall_s(prices.change_at_day_s) - wall)
        time.sleep(max(0.0, min(wake)))
    watch.lap("day")
    say("the day is over; waiting for the requests in flight")
    if not load.wait(DRAIN_TIMEOUT_S):
        say(f"requests still in flight after {DRAIN_TIMEOUT_S}s; abandoning them")
        load.stop()
    if load.error is not None:
        raise DemoError(f"the load generator failed: {load.error!r}")
    time.sleep(SCRAPE_WAIT_S)
    samples.append(observer.sample(day.day_wall_s, day, run.exporter.current_prices()))
    served = observer.requests_by_variant()
    return {
        "report": load.report,
        "requests_by_variant": {v: n - at_start.get(v, 0.0) for v, n in served.items()},
    }


# ----- the summary ----------------------------------------------------------------------------
def write_summary(inputs: Inputs, result: dict[str, Any]) -> list[str]:
    """The summary's lines; writes OUT/demo.png and OUT/demo.json."""
    from paretoscale.demo.counterfactual import best_quality_all_day
    from paretoscale.replay.demand import TokenPool
    from paretoscale.replay.traces import load_request_trace

    day, spec = inputs.day, inputs.spec
    samples: list[Sample] = result.get("samples", [])
    report = result.get("report")
    by_variant: dict[str, float] = result.get("requests_by_variant", {})
    live = summary.live_figures(
        "paretoscale (this run, live)", samples, day.compression, spec.slo.seconds,
        spec.slo.percentile, float(report.errors) if report else 0.0, by_variant,
        {v.name: v.quality for v in spec.variants},
    )  # fmt: skip
    pool = TokenPool.of(load_request_trace(str(inputs.tokens_file)))
    baseline = best_quality_all_day(inputs.example_spec, day, inputs.prices, pool)
    totals = None
    if report is not None:
        totals = summary.LoadTotals(report.sent, report.ok, report.errors, report.error_kinds,
                                    report.e2e_p50_s, report.e2e_p99_s)  # fmt: skip
    lines = summary.report_lines(
        inputs.title, live, baseline.figures, baseline.variant, by_variant, totals,
        summary.day_histogram(samples), spec.slo.seconds, day.compression,
    )  # fmt: skip
    inputs.out.mkdir(parents=True, exist_ok=True)
    png = inputs.out / "demo.png"
    try:
        from paretoscale.demo.plot import draw

        draw(png, f"paretoscale demo: {inputs.title}", day, samples,
             [v.name for v in spec.variants], inputs.prices, baseline)  # fmt: skip
        lines.append(f"Plot: {png}")
    except ImportError:
        lines.append("Plot: skipped (needs matplotlib: python3 -m pip install -e '.[plot]')")
    doc = {
        "title": inputs.title,
        "compression": day.compression,
        "figures": [asdict(live), asdict(baseline.figures)],
        "requestsByVariant": by_variant,
        "loadReport": json.loads(report.to_json()) if report is not None else None,
        "samples": [
            {**asdict(s), "e2e_buckets": {str(k): v for k, v in s.e2e_buckets.items()}}
            for s in samples
        ],
    }
    (inputs.out / "demo.json").write_text(json.dumps(doc, indent=1))
    lines.append(f"Samples and figures: {inputs.out / 'demo.json'}; logs: {inputs.logs}")
    return lines


def keep_lines(inputs: Inputs, env: ClusterEnv) -> list[str]:
    return [
        "The cluster stays up (--keep); the operator and the simulators were stopped. Reach it:",
        f"  export KUBECONFIG={env.kubeconfig} PROMETHEUS_URL={env.prometheus_url}",
        f"  kubectl get mdep,deploy,pods -n {NAMESPACE}",
        f"  paretoscale sim bridge --kubeconfig $KUBECONFIG --file-sd-dir {env.file_sd_dir} "
        f"--namespace {NAMESPACE} --state-dir {inputs.logs / 'bridge'} &",
        f"  paretoscale run -n {NAMESPACE} --prometheus-url $PROMETHEUS_URL --tick-seconds 5 &",
        f"  hack/cluster --dir {inputs.state_dir} down    # when done",
    ]


# ----- main -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hack/demo",
        description="Watch paretoscale keep an LLM on its cost-optimal variant through a day of "
        "real traffic compressed into minutes, on a local Kubernetes control plane with "
        "simulated vLLM replicas, Prometheus and live GPU prices; then see what it saved "
        "against running the best-quality variant all day.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--minutes", type=number(hi=1440), default=5.0,
                   help="wall minutes the day lasts (default 5: x288)")  # fmt: skip
    p.add_argument("--peak-rps", type=number(0, MAX_RATE_RPS, lo_open=True), default=25.0,
                   help="requests/s in the day's busiest ten minutes (default 25)")  # fmt: skip
    p.add_argument("--day", type=int, default=6,
                   help="day of the 14-day series, 0-13 (default 6: a quiet night and a busy "
                   "afternoon)")  # fmt: skip
    p.add_argument("--no-price-change", action="store_true",
                   help="H100 at $6.88/GPU-h all day (default: $12.29 until noon, then $6.88)")  # fmt: skip
    p.add_argument("--profiles", choices=("declared", "model"), default="declared",
                   help="declared: the example's measured profiles (default); model: the "
                   "example without profiles or parameters, every variant planned on the "
                   "performance model's prior for its vLLM arguments and GPU type")  # fmt: skip
    p.add_argument("--keep", action="store_true",
                   help="leave the cluster up at the end and print how to reach it")  # fmt: skip
    p.add_argument("--out", metavar="DIR",
                   help="demo.png, demo.json, logs and the cluster's state (default: out/)")  # fmt: skip
    p.add_argument(
        "--state-dir", metavar="DIR", help="the cluster's state dir (default OUT/cluster)"
    )
    p.add_argument("--data-dir", metavar="DIR",
                   help="traces and prices (default: $PARETOSCALE_DATA_DIR, else the "
                   "repository's data/)")  # fmt: skip
    p.add_argument("--refresh-seconds", type=number(0, 3600, lo_open=True), default=3.0,
                   help="live view refresh (default 3)")  # fmt: skip
    p.add_argument("--seed", type=seed(), default=1, help="arrivals and token lengths (default 1)")
    return p


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread, as SIGINT does."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def ignore_signals() -> None:
    """While cleaning up: another Ctrl-C must not leave half of it undone."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: say("cleaning up, one moment", sys.stderr))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    watch = Stopwatch()
    try:
        inputs = prepare(args)
    except DemoError as e:
        print(f"hack/demo: error: {e}", file=sys.stderr)
        return 2
    if shutil.which("kubectl") is None:
        print("hack/demo: error: kubectl is not on PATH; install one within a minor version "
              "of Kubernetes 1.34", file=sys.stderr)  # fmt: skip
        return 2
    shutil.rmtree(inputs.logs, ignore_errors=True)
    inputs.logs.mkdir(parents=True)
    result: dict[str, Any] = {"samples": []}
    code = 0
    stack = contextlib.ExitStack()
    with sigterm_interrupts():
        try:
            run = start(inputs, args, watch, stack)
            result["env"] = run.env
            first_rollout(inputs, run, watch)
            result.update(play_day(inputs, args, run, watch, stack, result["samples"]))
            print()
            print("\n".join(write_summary(inputs, result)))
            watch.lap("summary")
        except KeyboardInterrupt as e:
            watch.lap("until interrupted")
            print(flush=True)
            say(f"interrupted ({str(e) or 'SIGINT'}); cleaning up")
            code = 130
        except DemoError as e:
            watch.lap("until the error")
            print(f"hack/demo: error: {e}", file=sys.stderr, flush=True)
            code = 1
        finally:
            ignore_signals()
            stack.close()
    watch.lap("cleanup")
    if args.keep and "env" in result:
        print("\n".join(keep_lines(inputs, result["env"])))
    print(watch.text(), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
