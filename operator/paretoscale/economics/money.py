"""How an amount of US dollars reads: one format for the table, the reasons and the plot."""

from __future__ import annotations

import math
from decimal import Decimal


def usd(amount: float | Decimal | None, per: str = "") -> str:
    """`$1,234.56`, `-$1.86`, with `/h` etc. appended when `per` is given ("/h").

    None, NaN and infinity read `-` (no figure), as does an amount of a variant that cannot
    serve the load, which callers pass as None. Cents are rounded half to even; a result that
    rounds to zero has no sign.
    """
    if amount is None:
        return "-"
    x = float(amount)
    if not math.isfinite(x):
        return "-"
    text = f"{abs(x):,.2f}"
    sign = "-" if x < 0 and text.strip("0.,") else ""
    return f"{sign}${text}{per}"
