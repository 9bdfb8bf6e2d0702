"""Parse argv lists with vLLM's own `vllm serve` parser (run with a Python that has vllm).

Reads a JSON list of argv lists (what follows `vllm serve`) on stdin; writes a JSON list of
{"ok": bool, "error": str, <each of FIELDS>: the value vLLM read} in the same order. The parser is
built exactly as vllm.entrypoints.cli.main.main() builds it (serve subcommand, then its
validate()); nothing is loaded or served.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

# What vLLM read, by argparse destination, for the test to compare with the argv.
FIELDS = (
    "model_tag",
    "served_model_name",
    "port",
    "dtype",
    "quantization",
    "kv_cache_dtype",
    "tensor_parallel_size",
    "max_model_len",
    "max_num_seqs",
    "gpu_memory_utilization",
    "speculative_config",
)


def main() -> None:
    result, sys.stdout = sys.stdout, sys.stderr  # vLLM logs to stdout: keep it for the JSON
    import vllm.platforms
    from vllm.platforms.cpu import CpuPlatform

    # The parser's defaults ask for the platform; the image runs on NVIDIA GPUs, this machine
    # may have none, so name it instead of detecting it.
    vllm.platforms._current_platform = CpuPlatform()

    import vllm.entrypoints.cli.serve
    from vllm.utils import FlexibleArgumentParser

    argvs = json.load(sys.stdin)
    out = []
    for argv in argvs:
        parser = FlexibleArgumentParser(description="vLLM CLI")
        subparsers = parser.add_subparsers(required=False, dest="subparser")
        (serve,) = vllm.entrypoints.cli.serve.cmd_init()
        serve.subparser_init(subparsers)
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                args = parser.parse_args(["serve", *argv])
            serve.validate(args)
        except SystemExit as e:
            out.append({"ok": False, "error": err.getvalue().strip() or f"exit {e.code}"})
            continue
        except Exception as e:  # validate() raises TypeError/ValueError on bad combinations
            out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
            continue
        read = {dest: getattr(args, dest, None) for dest in FIELDS}
        out.append({"ok": True, "error": "", **read})
    json.dump(out, result, default=str)


if __name__ == "__main__":
    main()
