"""The demo `hack/demo` runs: one day of real traffic through the operator on a local
cluster, compressed into minutes, and what it saved against the best-quality variant.

runner.py is the imperative shell (cluster, operator, simulators, prices, load, cleanup);
schedule.py (the compressed day), view.py (the live view), summary.py (the figures) and
sample.py are pure; counterfactual.py replays the best-quality baseline; plot.py draws.
Nothing imports this package: it sits at the top of the layers, beside the CLI.
"""


class DemoError(Exception):
    """Something the user can fix; the message says what."""
