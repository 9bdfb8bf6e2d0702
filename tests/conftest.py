"""Test settings: property tests are deterministic and never timed.

Hypothesis draws its examples from a seed fixed per test (`derandomize`), so a run that
passes passes again, and a slow machine (CI with other jobs on its cores) never fails a
test on hypothesis' per-example deadline: speed is measured by bench/, not by tests.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("paretoscale", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("paretoscale")
