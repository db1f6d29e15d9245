"""Rebalancing inputs as value objects, and the rules a model and a policy must keep."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from domain import events as ev
from domain.errors import DomainError
from domain.values import ZERO


class InvalidModel(DomainError):
    """A model's weights or bands break the rules."""


def check_model(event: ev.ModelSet) -> None:
    """Weights non-negative and summing to 1 with cash, each symbol once, bands in [0, 1)."""
    seen = set()
    for t in event.targets:
        if t.symbol in seen:
            raise InvalidModel(f"model {event.model}: {t.symbol} appears twice")
        seen.add(t.symbol)
        if t.weight < 0:
            raise InvalidModel(f"model {event.model}: weight of {t.symbol} is negative ({t.weight})")
        for name, band in (("absolute", t.band_abs), ("relative", t.band_rel)):
            if band is not None and not 0 <= band < 1:
                raise InvalidModel(f"model {event.model}: {name} band of {t.symbol} is {band}; bands must be in [0, 1)")
    if not event.targets:
        raise InvalidModel(f"model {event.model}: no targets")
    total = sum((t.weight for t in event.targets), ZERO) + event.cash
    if total != 1:
        raise InvalidModel(
            f"model {event.model}: weights add up to {total} with cash {event.cash}; they must add up to exactly 1")


@attrs.frozen
class LotInfo:
    lot_id: str
    quantity: Decimal
    basis: Decimal
    acquired: dt.date
    hp_start: dt.date


@attrs.frozen
class Holding:
    symbol: str
    quantity: Decimal
    lots: tuple[LotInfo, ...]


@attrs.frozen
class Quote:
    price: Decimal
    date: dt.date


@attrs.frozen
class Inputs:
    """Everything a proposal is computed from; all of it is recorded in the proposal."""

    account: str
    as_of: dt.date
    as_of_seq: int
    cash: Decimal
    holdings: tuple[Holding, ...]
    prices: dict[str, Quote]
    model: ev.ModelSet
    model_version: int
    policy: ev.PolicySet
    policy_seq: int
    lot_method: str
    rates: tuple[Decimal, Decimal] | None = None
    #: symbol -> last day a buy would wash a recent loss
    restricted: dict[str, dt.date] = attrs.Factory(dict)
    #: symbol -> what restricts it, when not a loss sale recorded (an open proposal of another account of the owner)
    restricted_by: dict[str, str] = attrs.Factory(dict)
    substitutes: dict[str, tuple[str, ...]] = attrs.Factory(dict)
    #: symbol -> its group of substantially identical securities (declared ones only): a loss sale of one restricts
    #: buying any of them
    identical: dict[str, str] = attrs.Factory(dict)
    #: withdrawal mode: cash to raise
    amount: Decimal | None = None
    #: the account's tax status: no sale of a tax-deferred or tax-exempt account is taxed, so a withdrawal there
    #: sells toward the model rather than for the least tax
    tax_status: str = "taxable"
    #: lot id -> why a sale of it at a loss now would be a wash sale: (reason, the lot of this account that is the
    #: purchase, or None for one in another account or a dividend reinvestment, and the shares it could replace, or
    #: None when not known); harvesting leaves such a lot alone,
    #: unless every purchase is a lot of this account the same harvest sells
    wash_risks: dict[str, tuple[tuple[str, str | None, Decimal | None], ...]] = attrs.Factory(dict)

    def price(self, symbol: str) -> Decimal:
        return self.prices[symbol].price

    def held(self) -> dict[str, Holding]:
        return {h.symbol: h for h in self.holdings}

    def stand_ins(self) -> dict[str, str]:
        """Held securities standing in for a model symbol that may not be bought back yet: a declared substitute of
        a model symbol a recent loss sale restricts (a harvest sold the symbol and bought the substitute), by the
        symbol it stands in for. Drift and the planner count it in that symbol's target, keep it and buy more of it
        in the symbol's place, rather than sell it as outside the model and leave the proceeds in cash (found by
        trying a harvest then a rebalance). Once the restriction ends it is outside the model again, and a
        rebalance swaps back. A substitute of two restricted model symbols stands in for the first in the model."""
        in_model = {t.symbol for t in self.model.targets}
        held = {h.symbol for h in self.holdings if h.quantity > 0}
        out: dict[str, str] = {}
        for t in self.model.targets:
            until = self.restricted.get(t.symbol)
            if until is None or until < self.as_of:
                continue
            for s in self.substitutes.get(t.symbol, ()):
                if s in held and s not in in_model and s not in out and s in self.prices:
                    out[s] = t.symbol
        return out

    def as_planned(self) -> "Inputs":
        """What the planner and the optimizer weigh: in a tax-deferred or tax-exempt account no sale is taxed, so no
        tax is estimated, no tax budget cuts a sale and no lot is kept for its term (found by review: an IRA's sales
        were charged the owner's rates, and a tax budget kept it outside its bands). The proposal records the inputs
        as they are."""
        if self.tax_status == "taxable":
            return self
        return attrs.evolve(self, rates=None, policy=attrs.evolve(self.policy, avoid_short_term=False, tax_budget=None))

    def total_value(self) -> Decimal:
        return sum((h.quantity * self.price(h.symbol) for h in self.holdings), ZERO) + self.cash
