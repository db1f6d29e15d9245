"""Drift from the model and the triggers that make an account need attention."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from domain import events as ev
from domain.rebalancing.model import Inputs
from domain.values import ZERO

WEIGHT = Decimal("0.000001")


@attrs.frozen
class Band:
    low: Decimal
    high: Decimal

    def contains(self, weight: Decimal) -> bool:
        return self.low <= weight <= self.high

    def nearest_edge(self, weight: Decimal) -> Decimal:
        return self.low if weight < self.low else self.high if weight > self.high else weight


def band_of(target: ev.Target | None) -> Band:
    """The band an asset must stay in: outside either band (absolute or relative) is outside."""
    if target is None:
        return Band(ZERO, ZERO)
    low, high = ZERO, Decimal(1)
    if target.band_abs is None and target.band_rel is None:
        return Band(target.weight, target.weight)
    if target.band_abs is not None:
        low, high = max(low, target.weight - target.band_abs), min(high, target.weight + target.band_abs)
    if target.band_rel is not None:
        low = max(low, target.weight * (1 - target.band_rel))
        high = min(high, target.weight * (1 + target.band_rel))
    return Band(low, high)


@attrs.frozen
class DriftRow:
    symbol: str
    quantity: Decimal
    price: Decimal | None
    price_date: dt.date | None
    value: Decimal
    weight: Decimal
    target: Decimal
    band: Band
    #: held substitutes whose value counts in this model symbol's weight while it may not be bought back
    #: (`Inputs.stand_ins`); `value` is the symbol's own
    stand_ins: tuple[str, ...] = ()
    #: the model symbol this holding stands in for: its weight counts there, so here its target is its weight
    stands_in_for: str | None = None

    @property
    def drift(self) -> Decimal:
        return self.weight - self.target

    @property
    def relative(self) -> Decimal | None:
        return None if self.target == 0 else (self.drift / self.target).quantize(WEIGHT)

    @property
    def in_band(self) -> bool:
        return self.stands_in_for is not None or self.band.contains(self.weight)

    @property
    def label(self) -> str:
        """The symbol, with its stand-ins: `VTI (+ITOT)`."""
        return f"{self.symbol} (+{', '.join(self.stand_ins)})" if self.stand_ins else self.symbol


@attrs.frozen
class Drift:
    total: Decimal
    rows: tuple[DriftRow, ...]
    cash: Decimal
    cash_weight: Decimal
    cash_target: Decimal

    def out_of_band(self) -> list[DriftRow]:
        return [r for r in self.rows if not r.in_band]


def drift(inputs: Inputs) -> Drift:
    """Weights of every model asset and every holding, from prices on or before the as-of date. A held substitute
    standing in for a restricted model symbol counts in that symbol's weight (`Inputs.stand_ins`)."""
    total = inputs.total_value()
    held = inputs.held()
    targets = {t.symbol: t for t in inputs.model.targets}
    stand_ins = inputs.stand_ins()
    values, quotes = {}, {}
    for symbol in sorted(set(held) | set(targets)):
        h = held.get(symbol)
        quote = quotes[symbol] = inputs.prices.get(symbol)
        values[symbol] = (h.quantity if h else ZERO) * quote.price if quote else ZERO
    standing = {o: tuple(sorted(s for s, of in stand_ins.items() if of == o)) for o in set(stand_ins.values())}

    def weight_of(value: Decimal) -> Decimal:
        return (value / total).quantize(WEIGHT) if total > 0 else ZERO

    rows = []
    for symbol, value in values.items():
        h, quote, t = held.get(symbol), quotes[symbol], targets.get(symbol)
        subs = standing.get(symbol, ())
        weight = weight_of(value + sum((values[s] for s in subs), ZERO))
        target, band = (t.weight if t else ZERO), band_of(t)
        if symbol in stand_ins:
            target, band = weight, Band(weight, weight)
        rows.append(DriftRow(symbol=symbol, quantity=h.quantity if h else ZERO, price=quote.price if quote else None,
                             price_date=quote.date if quote else None, value=value, weight=weight,
                             target=target, band=band, stand_ins=subs, stands_in_for=stand_ins.get(symbol)))
    cash_weight = (inputs.cash / total).quantize(WEIGHT) if total > 0 else ZERO
    return Drift(total=total, rows=tuple(rows), cash=inputs.cash, cash_weight=cash_weight, cash_target=inputs.model.cash)


# -- triggers ------------------------------------------------------------------------------
@attrs.frozen
class Trigger:
    kind: str
    reason: str


def calendar_dates(policy: ev.PolicySet, start: dt.date, end: dt.date) -> list[dt.date]:
    """Scheduled rebalance dates in (start, end]: month, quarter, half-year or year ends, or listed dates."""
    if policy.calendar == "dates":
        return sorted(d for d in policy.calendar_dates if start < d <= end)
    months = {"monthly": range(1, 13), "quarterly": (3, 6, 9, 12), "semi-annual": (6, 12), "annual": (12,)}.get(policy.calendar)
    if not months:
        return []
    out = []
    for year in range(start.year, end.year + 1):
        for month in months:
            last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1))
            if start < last <= end:
                out.append(last)
    return out


def waiting(inputs: Inputs, d: Drift) -> dict[str, tuple[str, Decimal]]:
    """Model symbols below their band that may not be bought yet (a recent loss sale restricts them) with no declared
    substitute that may be bought in their place: by symbol, why and the cash their targets keep. Nothing can be done
    for them until the restriction ends, so no trigger fires for them and the cash kept for them is not idle (found
    by a backtest: a harvest that found its substitute restricted left a quarter of the account in cash, and a full
    rebalance followed every day, trading the rest while the symbol stayed out)."""
    out = {}
    for r in d.rows:
        until = inputs.restricted.get(r.symbol)
        if r.stands_in_for is not None or r.stand_ins or r.weight >= r.band.low or until is None or until < inputs.as_of:
            continue
        if any(s in inputs.prices and not (inputs.restricted.get(s) and inputs.restricted[s] >= inputs.as_of)
               for s in inputs.substitutes.get(r.symbol, ())):
            continue  # a rebalance buys the substitute in its place
        out[r.symbol] = (f"{r.symbol} at {pct(r.weight)} is below its band {pct(r.band.low)}-{pct(r.band.high)} but may "
                         f"not be bought through {until} (a loss sale restricts it) and no declared "
                         f"substitute may be bought in its place: waiting",
                         max((r.target - r.weight) * d.total, ZERO))
    return out


def triggers(inputs: Inputs, d: Drift, *, last_rebalance: dt.date, corporate_actions: list[str],
             harvestable: list[str], opened: dt.date | None = None) -> list[Trigger]:
    """Which triggers in force fire, and why. Cash outside its buffers always counts: idle cash is actionable, less
    what is kept for symbols `waiting` to be bought back (for which no drift fires either)."""
    policy = inputs.policy
    in_force = set(policy.triggers)
    fired = []
    wait = waiting(inputs, d)
    out = [r for r in d.out_of_band() if r.symbol not in wait]
    if "drift" in in_force:
        for r in out:
            fired.append(Trigger("drift", f"{r.label} at {pct(r.weight)} is outside its band "
                                          f"{pct(r.band.low)}-{pct(r.band.high)} (target {pct(r.target)})"))
    due = calendar_dates(policy, last_rebalance, inputs.as_of)
    if "calendar" in in_force and due:
        since = (f"no rebalance since the account opened on {last_rebalance}" if last_rebalance == opened else
                 f"last rebalance {last_rebalance}")  # (found by review: the opening read as a rebalance)
        fired.append(Trigger("calendar", f"scheduled {policy.calendar} rebalance date {due[-1]} reached ({since})"))
    if "calendar-and-threshold" in in_force and due and out:
        fired.append(Trigger("calendar-and-threshold",
                             f"scheduled date {due[-1]} reached and {len(out)} asset(s) outside their bands"))
    if d.total > 0:
        if d.cash_weight < policy.min_cash:
            fired.append(Trigger("cash", f"cash {pct(d.cash_weight)} is below the minimum buffer {pct(policy.min_cash)}"))
        max_cash = policy.max_cash if policy.max_cash is not None else max(policy.min_cash, d.cash_target)
        kept = sum((v for _, v in wait.values()), ZERO)
        idle = d.cash - d.total * max_cash - kept
        if d.cash_weight > max_cash and idle >= policy.min_trade and idle > 0:
            fired.append(Trigger("cash", f"cash {pct(d.cash_weight)} is above the maximum buffer {pct(max_cash)}: "
                                         f"{idle.quantize(Decimal('0.01'))} idle"
                                         + (f" ({kept.quantize(Decimal('0.01'))} kept for {', '.join(sorted(wait))}, "
                                            f"which may not be bought yet)" if kept else "")))
    if "corporate-action" in in_force or "drift" in in_force:
        for text in corporate_actions:
            fired.append(Trigger("corporate-action", text))
    if "harvest" in in_force:
        for text in harvestable:
            fired.append(Trigger("harvest", text))
    return fired


def pct(w: Decimal) -> str:
    return f"{(w * 100).quantize(Decimal('0.01'))}%"
