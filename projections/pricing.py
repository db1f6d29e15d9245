"""Prices for valuing holdings: the latest close on or before a day, in the share count of that day.

A close dated before a split (or stock dividend) of its symbol prices the shares as they were then:
the holding on the day holds `new/old` as many shares for each. Valued as recorded, a 2:1 split would
double the holding's worth until the next close arrived. So a close is divided by every split of its
symbol effective after its date and on or before the day, as the log knows them at a seq (voids
removed). A close dated on or after a split's effective date is already in post-split shares.

A spinoff moves part of the parent's value into the child's shares, which are valued on their own: a parent's
close dated before the spinoff, used on or after it, counted that part twice. It is cut to the parent's part, the
share of basis the spinoff left with the parent (`1 - allocation`: the allocation is the child's share of the
value), as a broker's adjusted close is.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Sequence

import attrs

from ledger.prices import Price, price_on, prices_on
from ledger.store import EventStore


def splits(store: EventStore, symbol: str, after: dt.date, through: dt.date,
           known_seq: int | None = None) -> list[tuple[dt.date, Decimal]]:
    """(effective date, new/old) of the splits of `symbol` effective in (after, through], known at `known_seq`, voids
    removed, in date order."""
    if through <= after:
        return []
    rows = list(store.rows(stream=f"security:{symbol}", type_="SplitApplied", known_seq=known_seq,
                           effective_from=after + dt.timedelta(days=1), effective_to=through))
    if not rows:
        return []
    voided = _voids(store, known_seq)
    out = []
    for row in rows:
        if row.seq not in voided:
            split = row.decode()
            out.append((dt.date.fromisoformat(row.effective), split.new / split.old))
    return sorted(out, key=lambda s: s[0])


def spinoffs(store: EventStore, symbol: str, after: dt.date, through: dt.date,
             known_seq: int | None = None) -> list[tuple[dt.date, Decimal]]:
    """(effective date, the part of the value left with the parent: 1 - allocation) of the spinoffs from `symbol`
    effective in (after, through], known at `known_seq`, voids removed, in date order."""
    if through <= after:
        return []
    rows = list(store.rows(stream=f"security:{symbol}", type_="SpinoffCompleted", known_seq=known_seq,
                           effective_from=after + dt.timedelta(days=1), effective_to=through))
    voided = _voids(store, known_seq) if rows else {}
    return sorted(((dt.date.fromisoformat(r.effective), 1 - r.decode().allocation) for r in rows if r.seq not in voided),
                  key=lambda s: s[0])


def _voids(store: EventStore, known_seq: int | None) -> dict[int, int]:
    """`store.voided(known_seq)`, kept in the store's memo: the log is append-only, so the voids known at a seq never
    change (the head's are keyed by the head's seq). A valuation asks once per lot or symbol; this reads them once."""
    key = known_seq if known_seq is not None else store.head()[0]
    memo = store.memo.setdefault("voided", {})
    if key not in memo:
        if len(memo) > 64:
            memo.clear()
        memo[key] = store.voided(key)
    return memo[key]


def split_factor(store: EventStore, symbol: str, after: dt.date, through: dt.date,
                 known_seq: int | None = None) -> Decimal:
    """How many shares one share of `symbol` held at the end of `after` is by the end of `through`: the product of
    `new/old` of its splits effective in (after, through], known at `known_seq`, voids removed."""
    factor = Decimal(1)
    for _, ratio in splits(store, symbol, after, through, known_seq):
        factor = factor * ratio
    return factor


def adjusted(store: EventStore, price: Price | None, day: dt.date, known_seq: int | None = None) -> Price | None:
    """`price` in the shares, and the value, of `day` (itself when no split or spinoff came between)."""
    if price is None or price.date >= day:
        return price
    factor = split_factor(store, price.symbol, price.date, day, known_seq)
    kept = Decimal(1)
    for _, part in spinoffs(store, price.symbol, price.date, day, known_seq):
        kept = kept * part
    if factor == 1 and kept == 1:
        return price
    return attrs.evolve(price, close=price.close * kept / factor)


def price_for(store: EventStore, symbol: str, day: dt.date, known_at: str | None = None,
              known_seq: int | None = None, currency: str | None = None) -> Price | None:
    """The latest close of `symbol` on or before `day` (prices known at `known_at`), in the shares of `day`;
    with `currency`, only a close in that currency (a close in another values nothing: Folio converts none)."""
    return adjusted(store, _in(price_on(store, symbol, day, known_at), currency), day, known_seq)


def prices_for(store: EventStore, symbols: Sequence[str], day: dt.date, known_at: str | None = None,
               known_seq: int | None = None, currency: str | None = None) -> dict[str, Price | None]:
    """`price_for` of many symbols (the closes memoised as `prices_on` does)."""
    return {s: adjusted(store, _in(p, currency), day, known_seq)
            for s, p in prices_on(store, symbols, day, known_at).items()}


def _in(price: Price | None, currency: str | None) -> Price | None:
    return price if price is None or currency is None or price.currency == currency else None
