"""One way to write dollars."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from paretoscale.economics.money import usd


@pytest.mark.parametrize(
    ("amount", "per", "text"),
    [
        (6.88, "", "$6.88"),
        (3432.164, "/h", "$3,432.16/h"),
        (-1.86, "/h", "-$1.86/h"),
        (Decimal("12.29"), "", "$12.29"),
        (0.004, "", "$0.00"),
        (-0.004, "", "$0.00"),  # rounds to zero: no sign
        (None, "/h", "-"),
        (math.nan, "", "-"),
        (math.inf, "", "-"),
        (-math.inf, "", "-"),
    ],
)
def test_usd(amount: float | Decimal | None, per: str, text: str) -> None:
    assert usd(amount, per) == text
