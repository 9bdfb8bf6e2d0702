"""ModelDeployments made by mutating the examples: valid ones and every kind of broken one.

`mutated(choose)` starts from one of the ModelDeployments in examples/ and applies zero to
three mutations, each picked through `choose(options)`: a leaf set to a wrong type, NaN,
infinity, a huge or out-of-range number; a key removed; a list emptied; a variant or GPU pool
repeated or dropped; a bad name (`a.b`, `8b`, 64+ characters); an optional field added with a
plausible or absurd value; a GPU type changed. `choose` is a Hypothesis draw in the unit
property test (so failures shrink) and `random.Random.choice` in the e2e agreement test (so
its sample is the same on every run). GPU types come from the models (api/gpus.py), not from a
list written here.

`pydantic_verdict` is the documented validation path for a whole object: the problems
pydantic reports (SpecError's lines), empty when the object is accepted.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from paretoscale.api.gpus import GPUS
from paretoscale.api.manifest import problems_of
from paretoscale.api.types import ModelDeployment

T = TypeVar("T")
Choose = Callable[[Sequence[Any]], Any]

ROOT = Path(__file__).parents[3]
BASES: tuple[dict[str, Any], ...] = tuple(
    doc
    for path in sorted((ROOT / "examples").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc and doc.get("kind") == "ModelDeployment"
)

NAMES = (
    "a.b",
    "8b",
    "a" * 64,
    "a" * 63,
    "a" * 41,
    "a" * 40,
    "A",
    "a-",
    "-a",
    "a_b",
    "",
    "llama-8b-chat",
    "x",
    "fp8",
)
GPU_TYPES = (*sorted(GPUS), "B200", "", "h100")
ODD_VALUES: tuple[Any, ...] = (
    None,
    "",
    "x",
    "5",
    "0.5",
    "1e3",
    "NaN",
    "-1",
    True,
    False,
    0,
    1,
    -1,
    0.5,
    1.5,
    2.0,
    100,
    5000,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    10**20,
    2**63,
    [],
    {},
    [1],
    "a" * 300,
)
OPTIONAL: tuple[tuple[tuple[str, ...], tuple[Any, ...]], ...] = (
    (("vllm", "maxModelLen"), (4096, 0, 10**12, "8k")),
    (("vllm", "maxNumSeqs"), (256, 0, 5000)),
    (("vllm", "tensorParallelSize"), (2, 0, 17)),
    (("vllm", "gpuMemoryUtilization"), (0.9, 0, 1.2, math.nan)),
    (("vllm", "quantization"), ("fp8", "awq", "int3")),
    (("vllm", "dtype"), ("float16", "bfloat16", "fp64")),
    (("vllm", "kvCacheDtype"), ("fp8", "int4")),
    (("vllm", "extraArgs"), (["--enforce-eager"], [1], "--x")),
    (("minReplicas",), (0, 2, 2000, -1)),
    (("maxReplicas",), (1, 4, 0, 2000)),
    (("parameters",), (8_000_000_000, 0, 10**20, 1.5e10)),
    (("oneTimeCostUSD",), ("12.50", "-1", 12.5, "1e3")),
    (("startupSeconds",), (60, -1, 7201)),
    (("profileTokens",), ({"promptTokens": 1000, "outputTokens": 200}, {"promptTokens": 0})),
)
TOP_OPTIONAL: tuple[tuple[tuple[str, ...], tuple[Any, ...]], ...] = (
    (("traffic", "expectedRequestsPerSecond"), (5, -1, 1e300, math.inf)),
    (("traffic", "scaleDownStabilizationSeconds"), (60, -5, 10**12)),
    (("rollout", "verifySeconds"), (30, -1, 1.5)),
    (("rollout", "drainGraceSeconds"), (10, -1)),
    (("template", "shmSize"), ("16Gi", "0", "1e3", "lots")),
    (("template", "resources"), ({"limits": {"memory": "8Gi"}}, {"limits": "x"}, {"cpu": 1})),
    (("template", "podLabels"), ({"team": "a"}, {"paretoscale.io/x": "y"}, {"a": 1})),
    (("template", "serviceAccountName"), ("vllm", "Bad_Name")),
    (("template", "terminationGracePeriodSeconds"), (30, -1, 90000)),
    (("template", "automountServiceAccountToken"), (True, "yes")),
    (("value", "calibrationFactor"), (0.5, 0, 1.5)),
    (("mode",), ("Recommend", "Manual")),
    (("bogus",), (1,)),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into node (dict keys and list indices), the root excluded."""
    out: list[tuple[Any, ...]] = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _set_leaf(doc: dict[str, Any], choose: Choose) -> None:
    path = choose([p for p in _paths(doc["spec"]) if not isinstance(_get(doc["spec"], p), dict)])
    old = _get(doc["spec"], path)
    near = [old * 2, old / 2, old + 1, -old] if isinstance(old, int | float) else []
    _parent(doc["spec"], path)[path[-1]] = choose([*near, *ODD_VALUES])


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    return _parent(doc, path)[path[-1]]


def _delete(doc: dict[str, Any], choose: Choose) -> None:
    path = choose([p for p in _paths(doc) if isinstance(_parent(doc, p), dict)])
    del _parent(doc, path)[path[-1]]


def _empty_list(doc: dict[str, Any], choose: Choose) -> None:
    path = choose([p for p in _paths(doc["spec"]) if isinstance(_get(doc["spec"], p), list)])
    _parent(doc["spec"], path)[path[-1]] = []


def _repeat(doc: dict[str, Any], choose: Choose) -> None:
    key = choose(["variants", "gpus"])
    items = doc["spec"][key]
    items.append(copy.deepcopy(choose(items)))


def _drop(doc: dict[str, Any], choose: Choose) -> None:
    items = doc["spec"][choose(["variants", "gpus"])]
    items.remove(choose(items))


def _rename(doc: dict[str, Any], choose: Choose) -> None:
    if choose([True, False]):
        doc["metadata"]["name"] = choose(NAMES)
    else:
        choose(doc["spec"]["variants"])["name"] = choose(NAMES)


def _gpu_type(doc: dict[str, Any], choose: Choose) -> None:
    if choose([True, False]):
        choose(doc["spec"]["variants"])["gpu"]["type"] = choose(GPU_TYPES)
    else:
        choose(doc["spec"]["gpus"])["type"] = choose(GPU_TYPES)


def _add_optional(doc: dict[str, Any], choose: Choose) -> None:
    if choose([True, False]):
        where, (path, values) = choose(doc["spec"]["variants"]), choose(OPTIONAL)
    else:
        where, (path, values) = doc["spec"], choose(TOP_OPTIONAL)
    for key in path[:-1]:
        where = where.setdefault(key, {})
    where[path[-1]] = copy.deepcopy(choose(values))


MUTATIONS: tuple[Callable[[dict[str, Any], Choose], None], ...] = (
    _set_leaf,
    _set_leaf,
    _delete,
    _empty_list,
    _repeat,
    _drop,
    _rename,
    _gpu_type,
    _add_optional,
    _add_optional,
)


def mutated(choose: Choose) -> dict[str, Any]:
    """One of the examples with zero to three mutations, picked through `choose`."""
    doc = copy.deepcopy(choose(BASES))
    for _ in range(choose([0, 1, 1, 2, 3])):
        mutation = choose(MUTATIONS)
        try:
            mutation(doc, choose)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            # The target is gone or no longer a container (an earlier mutation replaced it).
            continue
    return doc


def pydantic_verdict(doc: dict[str, Any]) -> list[str]:
    """The problems pydantic finds in this whole object; empty when it is accepted."""
    try:
        ModelDeployment.model_validate(doc)
    except ValidationError as error:
        return problems_of(error)
    return []
