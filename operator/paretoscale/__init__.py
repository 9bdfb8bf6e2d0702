"""paretoscale: keep every served LLM on the cost-optimal point of its accuracy-cost frontier."""

__version__ = "0.1.0"
