"""The per-tick logic of one ModelDeployment, as one pure function (tick.py) over frozen data
(memory.py). The operator (controller/reconcile.py) and the replay (replay/operator_policy.py)
both call it; neither holds per-tick logic of its own."""
