"""What a profiling Job (spec.profiling) and whoever runs its client agree on: the pod's
labels, the client container's environment, the names of the result files. The operator
renders the Job with these (actuate/profiling.py); the real client (the Job's bench
container) and the simulated one (sim/profiling_client.py) read them."""

from __future__ import annotations

LABEL_PROFILING = "paretoscale.io/profiling"  # "true" on the Job, its pod and its objects
LABEL_PROFILED = "paretoscale.io/profiled-variant"  # on the pod, in place of the variant label
# Set on the profiling pod by the simulated client when it is done ("true": results written,
# "false": it failed); KWOK's stages then end the pod (hack/kubecp/kwok-stages-vllm.yaml).
PROFILED_ANNOTATION = "sim.paretoscale.io/profiled"
ENV_RATES = "PARETOSCALE_PROFILE_RATES"  # comma-separated req/s
ENV_REQUESTS = "PARETOSCALE_PROFILE_REQUESTS"  # requests per rate
ENV_PROMPT = "PARETOSCALE_PROFILE_PROMPT_TOKENS"  # prompt tokens per request
ENV_OUTPUT = "PARETOSCALE_PROFILE_OUTPUT_TOKENS"  # output tokens per request
ENV_PERCENTILES = "PARETOSCALE_PROFILE_PERCENTILES"  # comma-separated, e.g. 50,90,95,99
ENV_MODEL = "PARETOSCALE_PROFILE_MODEL"  # the checkpoint (its tokenizer)
ENV_SERVED = "PARETOSCALE_PROFILE_SERVED_MODEL"  # the served model name
ENV_CONFIGMAP = "PARETOSCALE_PROFILE_CONFIGMAP"  # where the result files go
ENV_PORT = "PARETOSCALE_PROFILE_PORT"  # the vLLM server's port in the pod


def result_key(rate: float) -> str:
    """The ConfigMap key (and result file name) of one rate."""
    return f"rate-{rate:g}.json"
