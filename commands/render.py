"""Turning read models into aligned tables and JSON (every number a string)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Sequence

from domain.values import CENT, normalize


def qty(d: Decimal) -> str:
    """A quantity, exact (JSON uses this)."""
    return format(normalize(d), "f")


def qty_short(d: Decimal) -> str:
    """A quantity for a table: at most nine decimal places (1/3 of a share shows as 0.333333333), unless that shows
    a holding as 0: then as kept, to twelve (found by review: 0.000000000001 shares showed as 0)."""
    n = normalize(d)
    if n.as_tuple().exponent < -9:
        short = n.quantize(Decimal("0.000000001"))
        n = normalize(short if short or not n else n.quantize(Decimal("0.000000000001")))
    return format(n, "f")


def amount(d: Decimal) -> str:
    return format(d.quantize(CENT), "f")


def price(d: Decimal) -> str:
    n = normalize(d)
    return format(n if n.as_tuple().exponent <= -2 else d.quantize(CENT), "f")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[str] = ()) -> str:
    """An aligned text table; columns named in `right` align right (numbers)."""
    cells = [list(headers)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        parts = [c.rjust(w) if headers[i] in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def dumps(obj) -> str:
    """`--json` output: every number a string (as the README promises: no reader loses a digit to a float)."""
    return json.dumps(_numbers_as_text(obj), indent=2, ensure_ascii=False)


def _numbers_as_text(obj):
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (int, float, Decimal)):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _numbers_as_text(x) for k, x in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_numbers_as_text(x) for x in obj]
    return obj


def canonical_line(obj: dict) -> str:
    """One JSONL line: compact, keys sorted (an export reads the same run after run)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
