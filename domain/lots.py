"""Tax lots and their relief: FIFO, LIFO, HIFO and specific identification.

A lot's basis is held in cents. Whenever a basis is divided (a partial sale),
the relieved part is rounded to the cent and the lot keeps the exact remainder,
so basis paid = basis in open lots + basis relieved, to the cent, always.
"""

from __future__ import annotations

import datetime as dt
import operator
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from typing import Callable

import attrs

from domain.errors import Doing, InsufficientShares, UnknownLot, say
from domain.events import LotPick
from domain.values import CENT, ZERO, is_long_term, round_cents


@attrs.define(slots=True, eq=False)
class Lot:
    """An open tax lot. Mutable only inside the fold; read models copy it out.

    Lots compare by identity: each is one lot of one account, and the fold finds a lot in its symbol's
    list with `list.index` (at C speed, which a field-by-field `__eq__` would lose)."""

    lot_id: str
    symbol: str
    quantity: Decimal
    basis: Decimal
    acquired: dt.date
    #: fold position of the creating event, the tie-breaker of FIFO among lots of one date
    order: int = 0
    #: the events that shaped the lot: (seq, what happened), oldest first; what happened is its text, or (in the
    #: fold's hot paths: a purchase, a wash sale) a function and the values it writes that text from, called only
    #: when the lot is read (`origin_lines`)
    origin: tuple[tuple[int, object], ...] = ()
    #: start of the holding period: the acquisition date (when not given), moved back by a wash sale
    hp_start: dt.date = attrs.field(default=attrs.Factory(lambda self: self.acquired, takes_self=True))
    #: shares of this lot that may still serve as replacement shares in a wash sale (purchases only)
    repl: Decimal = Decimal(0)
    #: (sale seq, parts) of the last wash-sale split of this lot: names the next part (see `tax._split_off`)
    last_split: tuple[int, int] = (0, 0)
    #: where in its symbol's list the lot was when last split: a hint, checked before use
    at: int = 0

    @property
    def unit_basis(self) -> Decimal:
        return self.basis / self.quantity

    def origin_lines(self) -> tuple[tuple[int, str], ...]:
        """The origin as text: (seq, what happened), oldest first."""
        return tuple((seq, origin_text(what)) for seq, what in self.origin)


def origin_text(what) -> str:
    """An origin entry's text: as given, or written now from its function and values."""
    return what if what.__class__ is str else what[0](*what[1:])


_acquired_order = operator.attrgetter("acquired", "order")  # FIFO's order: by date, then fold position


def tax_per_share(lot: Lot, price: Decimal, day: dt.date, rates: tuple[Decimal, Decimal]) -> Decimal:
    """The tax (negative: a saving) that selling one share of the lot at `price` on `day` costs, at (short, long) rates."""
    rate = rates[1] if is_long_term(lot.hp_start, day) else rates[0]
    return rate * (price - lot.unit_basis)


def _min_tax_key(lot: Lot, price: Decimal, day: dt.date):
    """Short-term losses (largest first), long-term losses, long-term gains (smallest first), short-term gains."""
    gain = price - lot.unit_basis
    long_term = is_long_term(lot.hp_start, day)
    if gain < 0:
        return (1 if long_term else 0, gain, lot.acquired, lot.order)
    return (2 if long_term else 3, gain, lot.acquired, lot.order)


def relief_order(lots: list[Lot], method: str, price: Decimal | None = None, day: dt.date | None = None,
                 rates: tuple[Decimal, Decimal] | None = None,
                 washed: Callable[[Lot], Decimal] | None = None) -> list[Lot]:
    """The order in which a method relieves lots. One function, picked by name.

    `min-tax` needs the sale's price and date. With the owner's (short, long) tax rates it orders by the
    tax each share would cost, so no other choice of lots realizes less tax; without rates it follows
    the categories: short-term losses, long-term losses, long-term gains (smallest first), short-term gains.
    """
    if method == "min-tax":
        if price is None or day is None:
            raise ValueError("min-tax relief needs the sale's price and date")
        if rates is not None:
            def cost(lot: Lot) -> Decimal:
                """The tax a share costs, a loss's saving counted only for the shares no recent purchase would
                wash (`washed(lot)`: shares of other purchases that would replace it): a washed loss saves nothing
                now (found by review: min-tax sold a lot whose loss a purchase washed, where LIFO saved 3.70)."""
                t = tax_per_share(lot, price, day, rates)
                if t < 0 and washed is not None:
                    covered = min(washed(lot), lot.quantity)
                    if covered > 0:
                        t = t * (lot.quantity - covered) / lot.quantity
                return t
            return sorted(lots, key=lambda lot: (cost(lot), _min_tax_key(lot, price, day)))
        return sorted(lots, key=lambda lot: _min_tax_key(lot, price, day))
    if method == "fifo":
        return sorted(lots, key=_acquired_order)
    if method == "lifo":
        return sorted(lots, key=_acquired_order, reverse=True)
    if method == "hifo":
        return sorted(lots, key=lambda lot: (-lot.unit_basis, lot.acquired, lot.order))
    raise ValueError(f"unknown lot method {method!r}")


def select(lots: list[Lot], quantity: Decimal, method: str | None, picks: tuple[LotPick, ...], *,
           where: Doing,
           price: Decimal | None = None, day: dt.date | None = None,
           rates: tuple[Decimal, Decimal] | None = None,
           washed: Callable[[Lot], Decimal] | None = None) -> list[tuple[Lot, Decimal]]:
    """Which lots, and how many shares of each, a sale of `quantity` relieves. Changes nothing.

    `where` names the sale for error messages ("cannot sell 50 AAPL in IRA-1 on 2024-03-01"), or makes that name.
    """

    if picks:
        held = sum((lot.quantity for lot in lots), ZERO)
        if quantity > held:
            raise InsufficientShares(f"cannot sell {say(where)}: {held} held")
        by_id = {lot.lot_id: lot for lot in lots}
        chosen = []
        for pick in picks:
            lot = by_id.get(pick.lot)
            if lot is None:
                open_ids = ", ".join(lot.lot_id for lot in lots) or "none"
                raise UnknownLot(f"cannot sell {say(where)}: lot {pick.lot} is not an open lot of this symbol (open: {open_ids})")
            if pick.quantity > lot.quantity:
                raise InsufficientShares(
                    f"cannot sell {say(where)}: lot {pick.lot} holds {lot.quantity}, {pick.quantity} asked"
                )
            chosen.append((lot, pick.quantity))
        return chosen
    if len(lots) == 1:  # whatever the method, the one lot (the common case, and a replay's hot path)
        if quantity > lots[0].quantity:
            raise InsufficientShares(f"cannot sell {say(where)}: {ZERO + lots[0].quantity} held")  # as a sum says it
        return [(lots[0], quantity)]
    chosen = []
    remaining = quantity
    for lot in relief_order(lots, method or "fifo", price, day, rates, washed):
        if remaining <= 0:
            break
        take = lot.quantity if lot.quantity < remaining else remaining
        chosen.append((lot, take))
        remaining -= take
    if remaining > 0:
        raise InsufficientShares(f"cannot sell {say(where)}: {sum((lot.quantity for lot in lots), ZERO)} held")
    return chosen


def relieve(lot: Lot, quantity: Decimal) -> Decimal:
    """Take `quantity` shares out of `lot` and return the basis they carry (in cents)."""
    if quantity == lot.quantity:
        relieved = lot.basis
        lot.quantity = ZERO
        lot.basis = ZERO
        return relieved
    relieved = round_cents(lot.basis * quantity / lot.quantity)
    lot.quantity -= quantity
    lot.basis -= relieved
    return relieved


def allocate(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split a cent amount in proportion to weights; the last share takes the rounding remainder, unless that
    would give it the other sign than the total (a few cents over many lots: 0.05 over 7 rounds to 0.01 six
    times, leaving -0.01): then every share is rounded toward zero and the cents left go, one each, to the
    largest remainders (the earlier share first on a tie). Either way the shares add up to the total."""
    whole = sum(weights, ZERO)
    parts = [(total * w / whole).quantize(CENT, ROUND_HALF_EVEN) for w in weights[:-1]]  # round_cents, inlined
    if total < 0:
        parts = [p + ZERO for p in parts]  # a share rounded to -0.00 reads 0.00
    last = total - sum(parts, ZERO)
    if last and (last < 0) != (total < 0):
        return _largest_remainders(total, weights, whole)
    parts.append(last)
    return parts


def _largest_remainders(total: Decimal, weights: list[Decimal], whole: Decimal) -> list[Decimal]:
    sign = -1 if total < 0 else 1
    exact = [abs(total) * w / whole for w in weights]
    parts = [e.quantize(CENT, rounding=ROUND_DOWN) for e in exact]
    left = int((abs(total) - sum(parts, ZERO)) / CENT)
    for i in sorted(range(len(parts)), key=lambda i: (-(exact[i] - parts[i]), i))[:left]:
        parts[i] += CENT
    return parts if sign > 0 else [ZERO - p for p in parts]  # (0 - 0.00 is 0.00, not -0.00)
