"""Events: immutable facts, named in the past tense, registered by a stable name and schema version.

Validators check shape only (a positive quantity, a valid symbol). Business rules
(enough shares, enough cash) live in the fold, so an old event always loads.
The effective date of an event is not in its payload: it is a column of the log
and reaches the fold beside the event (see `Recorded`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar, NamedTuple

import attrs

from domain import values as v
from domain.errors import InvalidValue

TAX_STATUSES = ("taxable", "tax-deferred", "tax-exempt")
LOT_METHODS = ("fifo", "lifo", "hifo", "min-tax")
SIDES = ("buy", "sell")

#: name -> (class, current schema version)
REGISTRY: dict[str, type["Event"]] = {}


def register(schema: int):
    """Register an event class under its class name at a schema version."""

    def wrap(cls):
        if cls.__name__ in REGISTRY:
            raise TypeError(f"event {cls.__name__} registered twice")
        cls.schema = schema
        REGISTRY[cls.__name__] = cls
        return cls

    return wrap


def _check(fn):
    def validator(instance, attribute, value):
        try:
            fn(value)
        except InvalidValue as e:
            raise InvalidValue(f"{type(instance).__name__}: {e}") from None

    return validator


def _one_of(options):
    def validator(instance, attribute, value):
        if value not in options:
            raise InvalidValue(
                f"{type(instance).__name__}: {attribute.name} {value!r} must be one of {', '.join(options)}"
            )

    validator.plain = frozenset(options).__contains__
    return validator


# Replaying a log builds every event again, so the validators below take a fast path for what is
# plainly valid (a string seen valid before, a finite Decimal in range) and leave every refusal, and
# its message, to the full check. Each also offers that test as `validator.plain(value)` (True: the
# validator would pass the value, which is of the field's type), which the codec's compiled structure
# functions run in place of the validators: see `ledger.codec._fast_structure`.
_VALID: dict[str, set[str]] = {"symbol": set(), "account": set(), "owner": set()}


def _text(kind: str, check):
    seen = _VALID[kind]

    def validator(instance, attribute, value):
        if value.__class__ is str and value in seen:
            return
        try:
            check(value)
        except InvalidValue as e:
            raise InvalidValue(f"{type(instance).__name__}: {e}") from None
        if len(seen) > 100_000:
            seen.clear()
        seen.add(value)

    validator.plain = seen.__contains__
    return validator


_symbol = _text("symbol", v.symbol)
_account = _text("account", v.account_id)
_owner = _text("owner", v.owner_id)


def _decimal(kind, plainly_valid=lambda d: False):
    """`plainly_valid(d)` for a Decimal `d`: True when `kind` would pass it (False may still pass: it decides)."""
    def validator(instance, attribute, value):
        if value.__class__ is Decimal and plainly_valid(value):
            return
        if not isinstance(value, Decimal):
            raise InvalidValue(f"{type(instance).__name__}: {attribute.name} must be a Decimal, got {value!r}")
        try:
            kind(value, attribute.name)
        except InvalidValue as e:
            raise InvalidValue(f"{type(instance).__name__}: {e}") from None

    validator.plain = plainly_valid
    return validator


_CENT = v.CENT
# each tests finiteness first: a NaN does not compare
# (each spells out `v.in_range`, -DIGITS <= adjusted() < DIGITS unless zero: a replay runs these for every number)
_LOW, _HIGH = -v.DIGITS, v.DIGITS
_positive = _decimal(v.positive, lambda d: d.is_finite() and d > 0 and _LOW <= d.adjusted() < _HIGH)
_non_negative = _decimal(v.non_negative,
                         lambda d: d.is_finite() and d >= 0 and (not d or _LOW <= d.adjusted() < _HIGH))
_money = _decimal(lambda d, what: v.positive(v.money(d, what), what),
                  lambda d: d.is_finite() and d > 0 and _LOW <= d.adjusted() < _HIGH and d.quantize(_CENT) == d)
_money_or_zero = _decimal(lambda d, what: v.non_negative(v.money(d, what), what),
                          lambda d: d.is_finite() and d >= 0 and (not d or _LOW <= d.adjusted() < _HIGH)
                          and d.quantize(_CENT) == d)


class Event:
    """Base of every event. `phase` orders events of one effective date: 0 security, 1 an account's opening, 2 the
    rest (`ledger.store.PHASE` says the same in SQL)."""

    schema: ClassVar[int] = 1
    phase: ClassVar[int] = 2


event = attrs.frozen(kw_only=True)


@register(schema=2)
@event
class AccountOpened(Event):
    """An account was opened. Schema 2 added `lot_method` and `overdraft` (v1 rows are upcast).

    It comes first among its day's account events whatever its seq: an amended opening (`folio account amend`, a
    void of the old one and a new one) is recorded after the events it must precede."""

    phase: ClassVar[int] = 1

    account: str = attrs.field(validator=_account)
    owner: str = attrs.field(validator=_owner)
    tax_status: str = attrs.field(validator=_one_of(TAX_STATUSES))
    currency: str = attrs.field(validator=_check(v.currency))
    lot_method: str = attrs.field(validator=_one_of(LOT_METHODS))
    overdraft: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


@register(schema=1)
@event
class CashDeposited(Event):
    account: str = attrs.field(validator=_account)
    amount: Decimal = attrs.field(validator=_money)


@register(schema=1)
@event
class CashWithdrawn(Event):
    account: str = attrs.field(validator=_account)
    amount: Decimal = attrs.field(validator=_money)


@register(schema=1)
@event
class FeeCharged(Event):
    account: str = attrs.field(validator=_account)
    amount: Decimal = attrs.field(validator=_money)
    memo: str | None = None


@register(schema=1)
@event
class InterestReceived(Event):
    account: str = attrs.field(validator=_account)
    amount: Decimal = attrs.field(validator=_money)


@event
class LotPick:
    """Specific identification: take `quantity` shares from lot `lot`."""

    lot: str = attrs.field(validator=attrs.validators.min_len(1))
    quantity: Decimal = attrs.field(validator=_positive)


def _lot_method(instance, attribute, value):
    if value is not None and value not in LOT_METHODS:
        raise InvalidValue(f"TradeExecuted: lot method {value!r} must be one of {', '.join(LOT_METHODS)}")


_lot_method.plain = frozenset((None, *LOT_METHODS)).__contains__


@register(schema=1)
@event
class TradeExecuted(Event):
    """A buy or sell. A sell names its relief: a method, or specific lots (then `lot_method` is None).

    Buy fees add to the lot's basis; sell fees reduce proceeds.
    """

    account: str = attrs.field(validator=_account)
    symbol: str = attrs.field(validator=_symbol)
    side: str = attrs.field(validator=_one_of(SIDES))
    quantity: Decimal = attrs.field(validator=_positive)
    price: Decimal = attrs.field(validator=_positive)
    fees: Decimal = attrs.field(default=Decimal("0"), validator=_money_or_zero)
    lot_method: str | None = attrs.field(default=None, validator=_lot_method)
    lots: tuple[LotPick, ...] = attrs.field(default=(), converter=tuple)
    ref: str | None = None
    proposal: str | None = None

    def __attrs_post_init__(self):
        if self.side == "buy" and (self.lots or self.lot_method):
            raise InvalidValue("TradeExecuted: a buy takes no lot selection")
        if self.lots:
            if self.lot_method is not None:
                raise InvalidValue("TradeExecuted: give either a lot method or specific lots, not both")
            total = sum((p.quantity for p in self.lots), Decimal(0))
            if total != self.quantity:
                raise InvalidValue(
                    f"TradeExecuted: specific lots add up to {total}, the sale is of {self.quantity}"
                )
            ids = [p.lot for p in self.lots]
            if len(set(ids)) != len(ids):
                raise InvalidValue("TradeExecuted: a lot is named twice in the selection")


@register(schema=1)
@event
class EventVoided(Event):
    """Event `seq` should never have been recorded; folds skip it from the moment this is known."""

    seq: int = attrs.field(validator=attrs.validators.and_(attrs.validators.instance_of(int), attrs.validators.ge(1)))
    reason: str = attrs.field(validator=attrs.validators.min_len(1))


class Recorded(NamedTuple):
    """An event as the fold sees it: where it sits in both time axes, and the fact. (A named tuple: a replay
    makes one per row, and a tuple is made in a third of the time of a frozen attrs class.)"""

    seq: int
    effective: dt.date
    stream: str
    event: Event

    def sort_key(self):
        return (self.effective, self.event.phase, self.seq)


# -- security events (corporate actions): phase 0, on `security:<SYMBOL>` ---------------
FRACTION_POLICIES = ("cash", "round-up", "round-down", "keep")
DIVIDEND_KINDS = ("ordinary", "qualified", "return-of-capital", "capital-gain")


def _fraction_policy(instance, attribute, value):
    if value not in FRACTION_POLICIES:
        raise InvalidValue(f"{type(instance).__name__}: fractional policy {value!r} must be one of {', '.join(FRACTION_POLICIES)}")


def _optional(kind):
    inner = _decimal(kind)

    def validator(instance, attribute, value):
        if value is not None:
            inner(instance, attribute, value)

    return validator


def _needs_cash_price(event, fallback: Decimal | None = None) -> None:
    if event.fraction == "cash" and event.cash_price is None and fallback is None:
        raise InvalidValue(
            f"{type(event).__name__}: fractions of a share are to be paid in cash (fraction policy `cash`, the default for "
            f"mergers and spinoffs), which needs a price: give the cash-in-lieu price (--cash-price; CSV column price)"
            + (" or the acquirer's fair value (--acquirer-fmv; CSV column fmv)" if type(event).__name__ == "MergerCompleted" else "")
            + ", or another policy (--fraction keep, round-up or round-down)"
        )


class SecurityEvent(Event):
    """A corporate action: recorded once, applied by the fold to every account holding the security."""

    phase: ClassVar[int] = 0

    @property
    def stream_symbol(self) -> str:
        return self.symbol


@register(schema=1)
@event
class SplitApplied(SecurityEvent):
    """`new` shares for every `old` (4:1 forward, 1:8 reverse, 3:2 or a stock dividend 1.05:1).

    Each lot's quantity scales; its basis and acquisition date stay. Fractional results follow
    `fraction`: cash in lieu at `cash_price` (a sale of the fraction), round up, round down, or keep.
    """

    symbol: str = attrs.field(validator=_symbol)
    new: Decimal = attrs.field(validator=_positive)
    old: Decimal = attrs.field(validator=_positive)
    fraction: str = attrs.field(default="keep", validator=_fraction_policy)
    cash_price: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))
    stock_dividend: bool = False

    def __attrs_post_init__(self):
        _needs_cash_price(self)
        if self.new == self.old:
            raise InvalidValue(f"SplitApplied: a {self.new}:{self.old} split changes nothing")

    @property
    def ratio(self) -> Decimal:
        return self.new / self.old


@register(schema=1)
@event
class DividendDeclared(SecurityEvent):
    """A cash dividend: entitlement is the holding at the start of the ex-date (the event's effective
    date); cash arrives on `pay_date`, rounded to cents per account, less withholding. A return of
    capital reduces the basis of the entitled lots instead of being income. Accounts that reinvest
    buy at `reinvest_price` on the pay date."""

    symbol: str = attrs.field(validator=_symbol)
    per_share: Decimal = attrs.field(validator=_positive)
    pay_date: dt.date = attrs.field(validator=attrs.validators.instance_of(dt.date))
    kind: str = attrs.field(default="ordinary", validator=_one_of(DIVIDEND_KINDS))
    withholding: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    reinvest_price: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))

    def __attrs_post_init__(self):
        if self.withholding >= 1:
            raise InvalidValue(f"DividendDeclared: withholding rate {self.withholding} must be below 1 (0.15 for 15%)")


@register(schema=1)
@event
class MergerCompleted(SecurityEvent):
    """`symbol` (the target) is acquired by `acquirer`: `shares` acquirer shares for every `per` target
    shares, and `cash` per target share.

    Per lot (US rules): stock only carries basis and holding period; cash only is a sale;
    stock and cash recognises the lesser of the realized gain and the cash (never a loss);
    `taxable` makes the whole exchange a sale at cash + fair value, with new lots at fair value.
    """

    symbol: str = attrs.field(validator=_symbol)
    acquirer: str | None = attrs.field(default=None)
    shares: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    per: Decimal = attrs.field(default=Decimal("1"), validator=_positive)
    cash: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    acquirer_fmv: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))
    fraction: str = attrs.field(default="cash", validator=_fraction_policy)
    cash_price: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))
    taxable: bool = False

    def __attrs_post_init__(self):
        if self.shares == 0 and self.cash == 0:
            raise InvalidValue("MergerCompleted: give acquirer shares or cash per share (or both)")
        if self.acquirer is not None and self.acquirer == self.symbol:
            raise InvalidValue(f"MergerCompleted: {self.symbol} cannot merge into itself")
        if self.shares > 0:
            if self.acquirer is None:
                raise InvalidValue("MergerCompleted: a stock merger needs the acquirer's symbol")
            v.symbol(self.acquirer)
            if self.acquirer == self.symbol:
                raise InvalidValue(f"MergerCompleted: {self.symbol} cannot merge into itself")
            if (self.cash > 0 or self.taxable) and self.acquirer_fmv is None:
                raise InvalidValue(
                    "MergerCompleted: a stock-and-cash or taxable merger needs the acquirer's fair market value per share")
            _needs_cash_price(self, self.acquirer_fmv)

    @property
    def lieu_price(self) -> Decimal | None:
        return self.cash_price if self.cash_price is not None else self.acquirer_fmv


@register(schema=1)
@event
class SpinoffCompleted(SecurityEvent):
    """`symbol` (the parent) distributes `shares` of `child` for every `per` shares. Each parent lot gives
    `allocation` of its basis to a child lot with the same acquisition date."""

    symbol: str = attrs.field(validator=_symbol)
    child: str = attrs.field(validator=_symbol)
    shares: Decimal = attrs.field(validator=_positive)
    per: Decimal = attrs.field(default=Decimal("1"), validator=_positive)
    allocation: Decimal = attrs.field(validator=_positive)
    parent_fmv: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))
    child_fmv: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))
    fraction: str = attrs.field(default="cash", validator=_fraction_policy)
    cash_price: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))

    def __attrs_post_init__(self):
        if self.child == self.symbol:
            raise InvalidValue(f"SpinoffCompleted: {self.symbol} cannot spin off into itself")
        if not 0 < self.allocation < 1:
            raise InvalidValue(f"SpinoffCompleted: basis allocation {self.allocation} must be strictly between 0 and 1")
        _needs_cash_price(self, self.child_fmv)

    @property
    def lieu_price(self) -> Decimal | None:
        return self.cash_price if self.cash_price is not None else self.child_fmv


def spinoff_allocation(ratio: Decimal, parent_fmv: Decimal, child_fmv: Decimal) -> Decimal:
    """The child's share of basis from fair market values: ratio × child / (parent + ratio × child)."""
    child_value = ratio * child_fmv
    return child_value / (parent_fmv + child_value)


@register(schema=1)
@event
class SymbolChanged(SecurityEvent):
    symbol: str = attrs.field(validator=_symbol)
    new_symbol: str = attrs.field(validator=_symbol)

    def __attrs_post_init__(self):
        if self.new_symbol == self.symbol:
            raise InvalidValue(f"SymbolChanged: {self.symbol} is already called {self.new_symbol}")


@register(schema=1)
@event
class ReinvestmentSet(Event):
    """An account turns dividend reinvestment on or off for one security (an account event)."""

    account: str = attrs.field(validator=_account)
    symbol: str = attrs.field(validator=_symbol)
    enabled: bool = attrs.field(validator=attrs.validators.instance_of(bool))


# -- tax: substantially identical securities, substitutes, owners' rates --------------------
@register(schema=1)
@event
class IdenticalDeclared(SecurityEvent):
    """`symbol` and `identical_to` are substantially identical (one wash-sale group from now on)."""

    symbol: str = attrs.field(validator=_symbol)
    identical_to: str = attrs.field(validator=_symbol)

    def __attrs_post_init__(self):
        if self.symbol == self.identical_to:
            raise InvalidValue(f"IdenticalDeclared: {self.symbol} cannot be declared identical to itself")


@register(schema=1)
@event
class SubstituteDeclared(SecurityEvent):
    """`substitute` may be bought instead of `symbol` when harvesting a loss (not substantially identical)."""

    symbol: str = attrs.field(validator=_symbol)
    substitute: str = attrs.field(validator=_symbol)

    def __attrs_post_init__(self):
        if self.symbol == self.substitute:
            raise InvalidValue(f"SubstituteDeclared: {self.symbol} cannot be a substitute for itself")


def _rate(instance, attribute, value):
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value < 1:
        raise InvalidValue(f"TaxRatesSet: {attribute.name} rate {value} must be at least 0 and below 1 (0.37 for 37%)")


@register(schema=1)
@event
class TaxRatesSet(Event):
    """An owner's marginal tax rates, used for estimates (harvesting, min-tax relief, proposals)."""

    owner: str = attrs.field(validator=_owner)
    short_term: Decimal = attrs.field(validator=_rate)
    long_term: Decimal = attrs.field(validator=_rate)


# -- rebalancing: models, policies, proposals ------------------------------------------------
REBALANCE_TO = ("target", "band-edge", "midpoint")
CALENDARS = ("none", "monthly", "quarterly", "semi-annual", "annual", "dates")
TRIGGERS = ("drift", "calendar", "calendar-and-threshold", "cash", "corporate-action", "harvest", "risk")
MODES = ("full", "contribution", "withdrawal", "harvest", "optimal")


@event
class Target:
    """One asset of a model: target weight and bands (absolute ±, relative ±fraction of the weight; either may be absent)."""

    symbol: str = attrs.field(validator=_symbol)
    weight: Decimal = attrs.field(validator=_non_negative)
    band_abs: Decimal | None = attrs.field(default=None, validator=_optional(v.non_negative))
    band_rel: Decimal | None = attrs.field(default=None, validator=_optional(v.non_negative))


@register(schema=1)
@event
class ModelSet(Event):
    """A version of a model (the stream version is the model version): target weights, bands and cash target."""

    model: str = attrs.field(validator=_account)
    targets: tuple[Target, ...] = attrs.field(converter=tuple)
    cash: Decimal = attrs.field(validator=_non_negative)
    note: str | None = None
    #: for a model built by the optimizer: the inputs' digest, the solver status and risk figures
    optimization: dict | None = None


@register(schema=1)
@event
class ModelAssigned(Event):
    account: str = attrs.field(validator=_account)
    model: str = attrs.field(validator=_account)


@register(schema=1)
@event
class PolicySet(Event):
    """An account's rebalancing policy (replaces the previous one from its effective date)."""

    account: str = attrs.field(validator=_account)
    triggers: tuple[str, ...] = attrs.field(converter=tuple)
    calendar: str = attrs.field(default="none", validator=_one_of(CALENDARS))
    calendar_dates: tuple[dt.date, ...] = attrs.field(default=(), converter=tuple)
    min_cash: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    max_cash: Decimal | None = attrs.field(default=None, validator=_optional(v.non_negative))
    min_trade: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    turnover_cap: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))
    whole_shares: bool = True
    cost_bps: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    cost_per_share: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    rebalance_to: str = attrs.field(default="target", validator=_one_of(REBALANCE_TO))
    avoid_short_term: bool = False
    tax_budget: Decimal | None = attrs.field(default=None, validator=_optional(v.non_negative))
    expiry_days: int = 5
    harvest_min_loss: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    risk_measure: str = "volatility"
    risk_threshold: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))
    tracking_error_cap: Decimal | None = attrs.field(default=None, validator=_optional(v.positive))

    def __attrs_post_init__(self):
        for t in self.triggers:
            if t not in TRIGGERS:
                raise InvalidValue(f"PolicySet: trigger {t!r} must be one of {', '.join(TRIGGERS)}")
        if self.min_cash >= 1 or (self.max_cash is not None and not self.min_cash <= self.max_cash <= 1):
            raise InvalidValue(
                f"PolicySet: cash buffers must satisfy 0 <= min ({self.min_cash}) <= max ({self.max_cash}) <= 1")
        if self.calendar == "dates" and not self.calendar_dates:
            raise InvalidValue("PolicySet: a 'dates' calendar needs the dates")
        if self.expiry_days < 1:
            raise InvalidValue("PolicySet: proposals must live at least one day")


@register(schema=1)
@event
class RebalanceProposed(Event):
    """A proposal: everything it was computed from and everything it proposes, with a digest of both."""

    proposal: str
    account: str = attrs.field(validator=_account)
    proposer: str
    mode: str = attrs.field(validator=_one_of(MODES))
    as_of_seq: int
    expires: dt.date
    content: dict
    digest: str


@register(schema=1)
@event
class ProposalApproved(Event):
    proposal: str
    approver: str
    comment: str | None = None


@register(schema=1)
@event
class ProposalRejected(Event):
    proposal: str
    reviewer: str
    reason: str = attrs.field(validator=attrs.validators.min_len(1))


@register(schema=1)
@event
class ProposalClosed(Event):
    """An approved proposal whose remaining orders will not be filled (cancelled at the broker, or done
    differently): no more fills are taken, and the account may have another proposal approved."""

    proposal: str
    closer: str
    reason: str = attrs.field(validator=attrs.validators.min_len(1))


#: events that move an account's holdings or cash, recorded once they have happened (a trade, a cash movement): what
#: is refused when dated in the future, and what makes a proposal for an earlier date one its account has moved past
HOLDINGS_AND_CASH = (TradeExecuted, CashDeposited, CashWithdrawn, FeeCharged, InterestReceived)
