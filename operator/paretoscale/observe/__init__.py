"""What Prometheus says about the ModelDeployments: one poller per process, one snapshot per tick.

queries.py      the named PromQL templates (overridable by name) and label-value escaping
histogram.py    histogram_quantile exactly as PromQL computes it, with the bounding bucket edges
snapshot.py     MetricsSnapshot (immutable) and the pure parser from Prometheus's JSON
observation.py  observation_for(): one ModelDeployment's decide.Observation and figures (pure)
prometheus.py   MetricsPoller: runs the queries every tick off the event loop, publishes latest()
"""
