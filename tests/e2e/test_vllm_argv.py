"""The rendered `vllm serve` argv is accepted by vLLM's own argument parser.

The parser is vLLM's, at the version of the default image (TemplateSpec.image), run by
tests/e2e/vllm_serve_parser.py in a Python that has that vLLM: $PARETOSCALE_VLLM_PYTHON, else
vllm-<version>/bin/python in the project's cache (~/.cache/paretoscale, like hack/cluster's
binaries), made on first use by `python -m venv` and `pip install vllm==<version>` (about
10 GB with torch and its CUDA libraries, about 6 minutes here; no GPU needed: the parser is
told the platform instead of detecting it). With PARETOSCALE_E2E=skip and no such Python, the
tests skip.

Checked: every variant of every example; every value the API allows for each vllm field
(dtype, quantization, kvCacheDtype, each speculative method) with every numeric flag; and,
so that the check can fail, argv that vLLM must refuse.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import typing
import venv
from collections.abc import Iterator
from typing import Any

import pytest

from paretoscale.api.manifest import parse_manifests
from paretoscale.api.types import SpeculativeSpec, TemplateSpec, VariantSpec, VllmSpec
from paretoscale.api.vllm import vllm_argv

pytestmark = pytest.mark.e2e

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PARSER = pathlib.Path(__file__).with_name("vllm_serve_parser.py")
VLLM_VERSION = TemplateSpec().image.rsplit(":v", 1)[1]  # vllm/vllm-openai:v0.11.0 -> 0.11.0
INSTALL_TIMEOUT_S = 1800
PARSE_TIMEOUT_S = 600


def _literal_values(model: type[Any], field: str) -> list[str]:
    """The values a Literal field (optionally `| None`) admits."""
    annotation = model.model_fields[field].annotation
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return [str(v) for v in typing.get_args(arg)]
    raise AssertionError(f"{model.__name__}.{field} is not a Literal")


def _variant(name: str, vllm: dict[str, Any], gpus: int = 1) -> VariantSpec:
    return VariantSpec.model_validate(
        {
            "name": name,
            "quality": 0.8,
            "gpu": {"type": "H100", "count": gpus},
            "vllm": {"model": "org/model", **vllm},
            "parameters": 8_000_000_000,
        }
    )


def _cases() -> dict[str, list[str]]:
    """Case id -> argv after `vllm serve`: what the operator renders."""
    cases: dict[str, list[str]] = {}
    for path in sorted((REPO_ROOT / "examples").glob("*.yaml")):
        for md in parse_manifests(path.read_text(), path.name):
            for v in md.spec.variants:
                cases[f"{path.stem}/{v.name}"] = vllm_argv(v, md.spec.model)
    for dtype in _literal_values(VllmSpec, "dtype"):
        cases[f"dtype={dtype}"] = vllm_argv(_variant("d", {"dtype": dtype}), "served")
    for q in _literal_values(VllmSpec, "quantization"):
        cases[f"quantization={q}"] = vllm_argv(_variant("q", {"quantization": q}), "served")
    for kv in _literal_values(VllmSpec, "kv_cache_dtype"):
        cases[f"kvCacheDtype={kv}"] = vllm_argv(_variant("k", {"kvCacheDtype": kv}), "served")
    for method in _literal_values(SpeculativeSpec, "method"):
        spec: dict[str, Any] = {"method": method, "numSpeculativeTokens": 4}
        if method != "ngram":
            spec["model"] = "org/draft"
        cases[f"speculative={method}"] = vllm_argv(_variant("s", {"speculative": spec}), "m")
    every_number = {
        "tensorParallelSize": 2,
        "maxModelLen": 32768,
        "maxNumSeqs": 256,
        "gpuMemoryUtilization": 0.92,
        "extraArgs": ["--enable-prefix-caching", "--max-num-batched-tokens", "8192"],
    }
    cases["every-numeric-flag"] = vllm_argv(_variant("n", every_number, gpus=2), "served")
    return cases


# argv vLLM must refuse: without these failing, a passing run would prove nothing.
REFUSED = {
    "unknown-flag": ["org/model", "--no-such-flag", "1"],
    "bad-dtype": ["org/model", "--dtype", "fp7"],
    "bad-number": ["org/model", "--tensor-parallel-size", "two"],
}


def _vllm_python() -> pathlib.Path | None:
    given = os.environ.get("PARETOSCALE_VLLM_PYTHON")
    if given:
        return pathlib.Path(given)
    xdg = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    cache = pathlib.Path(os.environ.get("PARETOSCALE_CACHE_DIR") or xdg / "paretoscale")
    env_dir = cache / f"vllm-{VLLM_VERSION}"  # as hack/lib/common.sh places its caches
    python = env_dir / "bin" / "python"
    if python.exists():
        return python
    if os.environ.get("PARETOSCALE_E2E") == "skip":
        return None
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"vllm=={VLLM_VERSION}"],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if install.returncode != 0:
        python.unlink(missing_ok=True)  # not half-made next time
        pytest.fail(f"pip install vllm=={VLLM_VERSION} failed:\n{install.stderr[-4000:]}")
    return python


@pytest.fixture(scope="module")
def parsed() -> Iterator[dict[str, dict[str, Any]]]:
    """Case id -> vLLM's verdict on its argv (one parser process for every case)."""
    python = _vllm_python()
    if python is None:
        pytest.skip(
            f"no Python with vllm=={VLLM_VERSION} and PARETOSCALE_E2E=skip; set "
            "PARETOSCALE_VLLM_PYTHON or unset PARETOSCALE_E2E to install it"
        )
    cases = {**_cases(), **{f"refused/{k}": v for k, v in REFUSED.items()}}
    run = subprocess.run(
        [str(python), str(PARSER)],
        input=json.dumps(list(cases.values())),
        capture_output=True,
        text=True,
        timeout=PARSE_TIMEOUT_S,
        check=False,
        env={**os.environ, "VLLM_NO_USAGE_STATS": "1"},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('vllm'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == VLLM_VERSION, f"{python} has vllm {version}, the image {VLLM_VERSION}"
    yield dict(zip(cases, json.loads(run.stdout), strict=True))


CASES = _cases()


@pytest.mark.parametrize("case", sorted(CASES))
def test_vllm_serve_accepts_the_rendered_argv(parsed: dict[str, dict[str, Any]], case: str) -> None:
    verdict = parsed[case]
    assert verdict["ok"], f"{case}: vllm serve {' '.join(CASES[case])}\n{verdict['error']}"
    argv = CASES[case]
    # vLLM read the flags as meant, not only tolerated them.
    assert verdict["model_tag"] == argv[0]
    assert verdict["served_model_name"] == [argv[argv.index("--served-model-name") + 1]]
    assert verdict["port"] == 8000
    if "--tensor-parallel-size" in argv:
        assert verdict["tensor_parallel_size"] == int(
            argv[argv.index("--tensor-parallel-size") + 1]
        )
    if "--speculative-config" in argv:
        expected = json.loads(argv[argv.index("--speculative-config") + 1])
        assert verdict["speculative_config"] == expected
    flags = {
        "--quantization": "quantization",
        "--dtype": "dtype",
        "--kv-cache-dtype": "kv_cache_dtype",
        "--max-model-len": "max_model_len",
        "--max-num-seqs": "max_num_seqs",
        "--gpu-memory-utilization": "gpu_memory_utilization",
    }
    for flag, dest in flags.items():
        if flag in argv:
            assert str(verdict[dest]) == argv[argv.index(flag) + 1], (case, flag)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_vllm_serve_refuses_what_it_does_not_know(
    parsed: dict[str, dict[str, Any]], case: str
) -> None:
    verdict = parsed[f"refused/{case}"]
    assert not verdict["ok"], case
    assert "error" in verdict["error"] or "invalid" in verdict["error"], verdict
