"""Hypothesis strategies and helpers shared by the property tests and the stateful test.

Two kinds of things live here:

- strategies for *valid* events of every registered type (`EVENTS`), for the codec properties;
- `Command`: one thing a person does to a ledger (open, deposit, buy, sell, void, ...), drawn from
  small vocabularies of accounts, symbols, dates and amounts so that random histories collide
  (same dates, backdated trades, partial reliefs, rounding), and submitted through
  `commands.service` exactly as the CLI does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import string
import tempfile
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Iterator, Sequence

import attrs
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from commands import service
from commands.service import Context, Pending
from domain import events as ev
from domain.errors import DomainError
from ledger.store import EventStore, NewEvent
from projections import views
from projections.replay import Point, load_books
from tests.conftest import TickingClock

CTX = Context(actor="hypothesis")
CENT = Decimal("0.01")


def cents(d: Decimal) -> Decimal:
    return d.quantize(CENT, rounding=ROUND_HALF_EVEN)

#: FOLIO_HYPOTHESIS_DEEP=N runs N times the examples, freshly random each run (by default the examples are
#: derandomized: the same on every run and every machine, so a CI failure reproduces anywhere)
DEEP = int(os.environ.get("FOLIO_HYPOTHESIS_DEEP") or 0)


def budget(examples: int, *, known_bug: bool = False, **kwargs) -> settings:
    """Hypothesis settings for a test worth `examples` examples in the default (fast, derandomized) run.

    `known_bug`: the test is a strict xfail for a documented bug. It skips shrinking (minutes spent minimising
    a failure that is already written down) and stops at its first failure, so it may try four times the
    examples to make sure it meets the bug on every run; once the bug is fixed it passes, the strict xfail
    fails, and `known_bug` goes away with the marker.
    """
    if known_bug and not DEEP:
        examples *= 4
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target] if known_bug and not DEEP else list(Phase)
    return settings(max_examples=examples * DEEP if DEEP else examples, derandomize=not DEEP, deadline=None,
                    phases=phases, report_multiple_bugs=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
                    **kwargs)


# ======================================================================================
# Valid events of every registered type (codec properties)
# ======================================================================================
_UPPER_DIGITS = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits

symbols = st.builds(lambda head, tail: head + tail, st.sampled_from(_UPPER_DIGITS),
                    st.text(_UPPER_DIGITS + ".-/", max_size=19))
account_ids = st.builds(lambda head, tail: head + tail, st.sampled_from(_ALNUM),
                        st.text(_ALNUM + "._-", max_size=63))
currencies = st.text(string.ascii_uppercase, min_size=3, max_size=3)
free_text = st.text(max_size=30)
some_text = st.text(min_size=1, max_size=30)


def _finite(min_value: str, max_value: str, places: int | None = None) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(min_value), max_value=Decimal(max_value), places=places,
                       allow_nan=False, allow_infinity=False)


#: odd but valid spellings: exponents, trailing zeros
_SPELLINGS = st.sampled_from([Decimal("1E+1"), Decimal("10.000"), Decimal("0.10"), Decimal("1E-6"), Decimal("2.5E+3")])
#: at most 28 significant digits, the default decimal context's precision (see the codec test for longer ones)
#: (a quarter of 10^12 at most: the largest magnitude Folio takes, `domain.values.DIGITS`, holds a sum of four)
positive_decimals = st.one_of(
    _finite("0.000001", "249999999999.999999").filter(lambda d: d > 0 and len(d.as_tuple().digits) <= 28), _SPELLINGS)
non_negative_decimals = st.one_of(st.just(Decimal("0")), positive_decimals)
fractions_below_one = _finite("0", "0.999999", places=6)
money_amounts = st.one_of(_finite("0.01", "10000000000", places=2), st.sampled_from([Decimal("1E+1"), Decimal("5.0")]))
money_or_zero = st.one_of(st.sampled_from([Decimal("0"), Decimal("0.00")]), money_amounts)
dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31))


@st.composite
def trade_events(draw) -> ev.TradeExecuted:
    side = draw(st.sampled_from(ev.SIDES))
    common = dict(account=draw(account_ids), symbol=draw(symbols), price=draw(positive_decimals),
                  fees=draw(money_or_zero), ref=draw(st.none() | free_text), proposal=draw(st.none() | free_text))
    if side == "buy":
        return ev.TradeExecuted(side="buy", quantity=draw(positive_decimals), **common)
    if draw(st.booleans()):
        return ev.TradeExecuted(side="sell", quantity=draw(positive_decimals),
                                lot_method=draw(st.none() | st.sampled_from(ev.LOT_METHODS)), **common)
    ids = draw(st.lists(some_text, min_size=1, max_size=4, unique=True))
    picks = tuple(ev.LotPick(lot=i, quantity=draw(positive_decimals)) for i in ids)
    return ev.TradeExecuted(side="sell", quantity=sum((p.quantity for p in picks), Decimal(0)), lots=picks, **common)


@st.composite
def split_events(draw) -> ev.SplitApplied:
    new, old = draw(positive_decimals), draw(positive_decimals)
    if new == old:
        new = new + 1
    fraction = draw(st.sampled_from(ev.FRACTION_POLICIES))
    price = draw(positive_decimals) if fraction == "cash" else draw(st.none() | positive_decimals)
    return ev.SplitApplied(symbol=draw(symbols), new=new, old=old, fraction=fraction, cash_price=price,
                           stock_dividend=draw(st.booleans()))


@st.composite
def merger_events(draw) -> ev.MergerCompleted:
    sym = draw(symbols)
    shares = draw(non_negative_decimals)
    cash = draw(non_negative_decimals if shares > 0 else positive_decimals)
    taxable = draw(st.booleans())
    fraction = draw(st.sampled_from(ev.FRACTION_POLICIES))
    acquirer = draw(symbols.filter(lambda s: s != sym)) if shares > 0 else draw(st.none() | symbols.filter(lambda s: s != sym))
    fmv = draw(positive_decimals) if shares > 0 and (cash > 0 or taxable) else draw(st.none() | positive_decimals)
    price = draw(positive_decimals) if fraction == "cash" and fmv is None else draw(st.none() | positive_decimals)
    return ev.MergerCompleted(symbol=sym, acquirer=acquirer, shares=shares, per=draw(positive_decimals), cash=cash,
                              acquirer_fmv=fmv, fraction=fraction, cash_price=price, taxable=taxable)


@st.composite
def spinoff_events(draw) -> ev.SpinoffCompleted:
    sym = draw(symbols)
    fraction = draw(st.sampled_from(ev.FRACTION_POLICIES))
    child_fmv = draw(st.none() | positive_decimals)
    price = draw(positive_decimals) if fraction == "cash" and child_fmv is None else draw(st.none() | positive_decimals)
    return ev.SpinoffCompleted(symbol=sym, child=draw(symbols.filter(lambda s: s != sym)), shares=draw(positive_decimals),
                               per=draw(positive_decimals), allocation=draw(_finite("0.000001", "0.999999", places=6)),
                               parent_fmv=draw(st.none() | positive_decimals), child_fmv=child_fmv, fraction=fraction,
                               cash_price=price)


def _cash(cls):
    return st.builds(cls, account=account_ids, amount=money_amounts)


@st.composite
def _pair(draw, make):
    """An event over two different symbols."""
    a = draw(symbols)
    return make(a, draw(symbols.filter(lambda b: b != a)))


rates = _finite("0", "0.999999", places=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | free_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


@st.composite
def policy_events(draw) -> ev.PolicySet:
    min_cash = draw(_finite("0", "0.999", places=3))
    max_cash = draw(st.none() | _finite(str(min_cash), "1", places=3))
    calendar = draw(st.sampled_from(ev.CALENDARS))
    days_ = draw(st.lists(dates, min_size=1 if calendar == "dates" else 0, max_size=3))
    return ev.PolicySet(
        account=draw(account_ids), triggers=draw(st.lists(st.sampled_from(ev.TRIGGERS), unique=True)), calendar=calendar,
        calendar_dates=days_, min_cash=min_cash, max_cash=max_cash, min_trade=draw(non_negative_decimals),
        turnover_cap=draw(st.none() | positive_decimals), whole_shares=draw(st.booleans()),
        cost_bps=draw(non_negative_decimals), cost_per_share=draw(non_negative_decimals),
        rebalance_to=draw(st.sampled_from(ev.REBALANCE_TO)), avoid_short_term=draw(st.booleans()),
        tax_budget=draw(st.none() | non_negative_decimals), expiry_days=draw(st.integers(1, 400)),
        harvest_min_loss=draw(non_negative_decimals), risk_measure=draw(st.sampled_from(["volatility", "cvar", "var"])),
        risk_threshold=draw(st.none() | positive_decimals), tracking_error_cap=draw(st.none() | positive_decimals))


targets = st.builds(ev.Target, symbol=symbols, weight=non_negative_decimals,
                    band_abs=st.none() | non_negative_decimals, band_rel=st.none() | non_negative_decimals)

#: one strategy per registered event type; a new type without a strategy fails the codec test
EVENTS: dict[str, st.SearchStrategy[ev.Event]] = {
    "AccountOpened": st.builds(ev.AccountOpened, account=account_ids, owner=account_ids,
                               tax_status=st.sampled_from(ev.TAX_STATUSES), currency=currencies,
                               lot_method=st.sampled_from(ev.LOT_METHODS), overdraft=st.booleans()),
    "CashDeposited": _cash(ev.CashDeposited),
    "CashWithdrawn": _cash(ev.CashWithdrawn),
    "FeeCharged": st.builds(ev.FeeCharged, account=account_ids, amount=money_amounts, memo=st.none() | free_text),
    "InterestReceived": _cash(ev.InterestReceived),
    "TradeExecuted": trade_events(),
    "EventVoided": st.builds(ev.EventVoided, seq=st.integers(min_value=1, max_value=2**53), reason=some_text),
    "SplitApplied": split_events(),
    "DividendDeclared": st.builds(ev.DividendDeclared, symbol=symbols, per_share=positive_decimals, pay_date=dates,
                                  kind=st.sampled_from(ev.DIVIDEND_KINDS), withholding=fractions_below_one,
                                  reinvest_price=st.none() | positive_decimals),
    "MergerCompleted": merger_events(),
    "SpinoffCompleted": spinoff_events(),
    "SymbolChanged": _pair(lambda a, b: ev.SymbolChanged(symbol=a, new_symbol=b)),
    "ReinvestmentSet": st.builds(ev.ReinvestmentSet, account=account_ids, symbol=symbols, enabled=st.booleans()),
    "IdenticalDeclared": _pair(lambda a, b: ev.IdenticalDeclared(symbol=a, identical_to=b)),
    "SubstituteDeclared": _pair(lambda a, b: ev.SubstituteDeclared(symbol=a, substitute=b)),
    "TaxRatesSet": st.builds(ev.TaxRatesSet, owner=account_ids, short_term=rates, long_term=rates),
    "ModelSet": st.builds(ev.ModelSet, model=account_ids, targets=st.lists(targets, max_size=4), cash=non_negative_decimals,
                          note=st.none() | free_text, optimization=st.none() | json_objects),
    "ModelAssigned": st.builds(ev.ModelAssigned, account=account_ids, model=account_ids),
    "PolicySet": policy_events(),
    "RebalanceProposed": st.builds(ev.RebalanceProposed, proposal=free_text, account=account_ids, proposer=free_text,
                                   mode=st.sampled_from(ev.MODES), as_of_seq=st.integers(0, 2**53), expires=dates,
                                   content=json_objects, digest=st.text("0123456789abcdef", min_size=64, max_size=64)),
    "ProposalApproved": st.builds(ev.ProposalApproved, proposal=free_text, approver=free_text, comment=st.none() | free_text),
    "ProposalRejected": st.builds(ev.ProposalRejected, proposal=free_text, reviewer=free_text, reason=some_text),
    "ProposalClosed": st.builds(ev.ProposalClosed, proposal=free_text, closer=free_text, reason=some_text),
}

any_event = st.sampled_from(sorted(EVENTS)).flatmap(lambda name: EVENTS[name])


# ======================================================================================
# Commands against a ledger: small vocabularies, so random histories collide
# ======================================================================================
#: account -> owner: A and B-2 belong to one owner, so wash sales cross accounts
OWNERS = {"A": "ann", "B-2": "ann", "c.3": "bob"}
ACCOUNTS = tuple(OWNERS)
SYMBOLS = ("AAPL", "BRK.B", "Z")
#: a leap day and its anniversaries, same-day collisions, 29, 30 and 31 days apart (the wash-sale window's edges),
#: more than a year apart
DATES = tuple(dt.date.fromisoformat(d) for d in (
    "2024-01-02", "2024-01-31", "2024-02-29", "2024-03-01", "2024-03-31", "2024-07-15",
    "2025-02-28", "2025-03-01", "2025-03-02", "2025-12-31"))
FIRST_DAY = DATES[0]
#: as-of dates to look at: every date of the pool, the days between, before everything, and no limit
AS_OF = (None, dt.date(2023, 12, 31)) + DATES + (dt.date(2024, 5, 1), dt.date(2025, 3, 15), dt.date(2026, 6, 30))

QUANTITIES = tuple(Decimal(q) for q in ("1", "2", "3", "5", "0.5", "1.5", "0.333", "7", "10"))
PRICES = tuple(Decimal(p) for p in ("10", "12.345", "0.07", "99.99", "250", "33.3333", "1"))
FEES = tuple(Decimal(f) for f in ("0", "0", "0.01", "1", "4.99"))
DEPOSITS = tuple(Decimal(a) for a in ("100", "1000.00", "2500.55", "0.01", "10000"))
SPENDS = tuple(Decimal(a) for a in ("0.01", "5", "50.50", "300", "1000"))
RATES = ((Decimal("0.37"), Decimal("0.2")), (Decimal("0.1"), Decimal("0.15")), (Decimal("0"), Decimal("0")))

days = st.sampled_from(DATES)
#: one symbol more often than the others, so that lots of one symbol pile up and wash each other
symbol_choices = st.sampled_from(("Z", "Z", "Z") + SYMBOLS)
as_of_dates = st.sampled_from(AS_OF)
quantities = st.sampled_from(QUANTITIES)
prices = st.sampled_from(PRICES)
fees = st.sampled_from(FEES)
methods = st.sampled_from((None,) + ev.LOT_METHODS)
tax_statuses = st.sampled_from(("taxable", "taxable", "tax-deferred", "tax-exempt"))


@attrs.frozen
class Command:
    """One command a person gives: what, in which account, on which day, with what numbers."""

    kind: str  # open deposit withdraw fee interest buy sell void rates identical split dividend reinvest
    day: dt.date | None = None
    account: str | None = None
    symbol: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    fees: Decimal = Decimal("0")
    amount: Decimal | None = None
    method: str | None = None
    picks: tuple[tuple[str, Decimal], ...] = ()
    overdraft: bool = False
    tax_status: str = "taxable"
    target: int | None = None
    #: identical declarations: the other symbol; rates: (short, long)
    other: str | None = None
    rates: tuple[Decimal, Decimal] | None = None
    #: corporate actions: split new:old (and fraction policy), dividend pay date, reinvestment on/off
    ratio: tuple[Decimal, Decimal] | None = None
    fraction: str = "keep"
    pay_date: dt.date | None = None
    enabled: bool = True

    @property
    def owner(self) -> str:
        return OWNERS.get(self.account, self.account)

    def __str__(self) -> str:
        k = self.kind
        if k == "void":
            return f"void seq {self.target}"
        if k == "open":
            return (f"{self.day} open {self.account} (owner {self.owner}, {self.tax_status}, {self.method}"
                    f"{', overdraft' if self.overdraft else ''})")
        if k in ("buy", "sell"):
            relief = ""
            if self.picks:
                relief = " lots " + ";".join(f"{lot}:{q}" for lot, q in self.picks)
            elif self.method:
                relief = f" ({self.method})"
            fee = f" fees {self.fees}" if self.fees else ""
            return f"{self.day} {self.account} {k} {self.quantity} {self.symbol} @ {self.price}{fee}{relief}"
        if k == "rates":
            return f"{self.day} owner {self.account} rates {self.rates[0]}/{self.rates[1]}"
        if k == "identical":
            return f"{self.day} {self.symbol} identical to {self.other}"
        if k == "rename":
            return f"{self.day} {self.symbol} renamed {self.other}"
        if k == "split":
            return f"{self.day} split {self.symbol} {self.ratio[0]}:{self.ratio[1]} ({self.fraction})"
        if k == "dividend":
            reinvest = f" reinvest @ {self.price}" if self.price else ""
            return f"{self.day} dividend {self.symbol} {self.amount} a share, paid {self.pay_date}{reinvest}"
        if k == "reinvest":
            return f"{self.day} {self.account} reinvest {self.symbol} {'on' if self.enabled else 'off'}"
        return f"{self.day} {self.account} {k} {self.amount}"

    def event(self) -> ev.Event:
        k = self.kind
        if k == "open":
            return ev.AccountOpened(account=self.account, owner=self.owner, tax_status=self.tax_status, currency="USD",
                                    lot_method=self.method, overdraft=self.overdraft)
        if k in ("deposit", "withdraw", "fee", "interest"):
            cls = {"deposit": ev.CashDeposited, "withdraw": ev.CashWithdrawn, "fee": ev.FeeCharged,
                   "interest": ev.InterestReceived}[k]
            return cls(account=self.account, amount=self.amount)
        if k == "buy":
            return ev.TradeExecuted(account=self.account, symbol=self.symbol, side="buy", quantity=self.quantity,
                                    price=self.price, fees=self.fees)
        if k == "sell":
            return ev.TradeExecuted(account=self.account, symbol=self.symbol, side="sell", quantity=self.quantity,
                                    price=self.price, fees=self.fees, lot_method=None if self.picks else self.method,
                                    lots=tuple(ev.LotPick(lot=lot, quantity=q) for lot, q in self.picks))
        if k == "rates":
            # `account` holds the owner's name for a rates command
            return ev.TaxRatesSet(owner=self.account, short_term=self.rates[0], long_term=self.rates[1])
        if k == "identical":
            return ev.IdenticalDeclared(symbol=self.symbol, identical_to=self.other)
        if k == "rename":
            return ev.SymbolChanged(symbol=self.symbol, new_symbol=self.other)
        if k == "split":
            return ev.SplitApplied(symbol=self.symbol, new=self.ratio[0], old=self.ratio[1], fraction=self.fraction,
                                   cash_price=self.price)
        if k == "dividend":
            return ev.DividendDeclared(symbol=self.symbol, per_share=self.amount, pay_date=self.pay_date,
                                       reinvest_price=self.price)
        if k == "reinvest":
            return ev.ReinvestmentSet(account=self.account, symbol=self.symbol, enabled=self.enabled)
        raise ValueError(f"no event for {k}")

    def stream(self) -> str:
        if self.kind == "rates":
            return f"owner:{self.account}"
        if self.kind in ("identical", "split", "dividend", "rename"):
            return f"security:{self.symbol}"
        return f"account:{self.account}"

    def pending(self) -> Pending:
        return Pending(NewEvent(self.stream(), self.event(), self.day, CTX.meta()))


def submit(store: EventStore, commands: Sequence[Command]) -> bool:
    """Record commands (one `record` call, all or nothing; a void alone; a void of an opening and an opening, an
    amendment). True if recorded, False if refused."""
    head = store.head()
    try:
        if len(commands) == 1 and commands[0].kind == "void":
            service.void(store, CTX, commands[0].target, "hypothesis")
        elif [c.kind for c in commands] == ["void", "open"]:  # `account amend`: the opening voided, a corrected one
            new = commands[1]
            service.amend_account(store, CTX, new.account, "hypothesis", day=new.day, tax_status=new.tax_status,
                                  lot_method=new.method, overdraft=new.overdraft)
        else:
            service.record(store, [c.pending() for c in commands])
    except DomainError:
        assert store.head() == head, "a refused command must write nothing"
        return False
    return True


#: a RAM disk when there is one: the ledger is a real SQLite file (WAL, synchronous=FULL) without the fsync wait
TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@contextlib.contextmanager
def temp_store(name: str = "ledger.db") -> Iterator[EventStore]:
    """A fresh file ledger in a temporary folder with a ticking clock (one per hypothesis example)."""
    with tempfile.TemporaryDirectory(prefix="folio-hyp-", dir=TMP_ROOT) as folder:
        store = EventStore.create(os.path.join(folder, name), clock=TickingClock())
        try:
            yield store
        finally:
            store.close()


# -- drawing commands ------------------------------------------------------------------
def open_lots_on(store: EventStore, account: str, day: dt.date) -> list[tuple[str, str, Decimal]]:
    """(lot id, symbol, quantity) of an account's open lots as of a day, as known now (to aim specific-lot sales)."""
    books = load_books(store, Point(as_of=day, known_seq=store.head()[0]), accounts=[account], use_snapshots=False)
    acct = books.accounts.get(account)
    return [] if acct is None else [(lot.lot_id, lot.symbol, lot.quantity) for lot in views.lots(acct)]


def draw_sell(data, account: str, day: dt.date, open_lots: Sequence[tuple[str, str, Decimal]], *,
              symbol: str | None = None, price_choices: st.SearchStrategy[Decimal] = prices) -> Command:
    """A sale: by a method, or of specific lots drawn from `open_lots` ((lot id, symbol, quantity) as of the day).

    Quantities are drawn to hit every interesting case: all of a position, part of it, part of a lot, too much,
    a lot that is not there.
    """
    symbol = symbol or data.draw(symbol_choices, label="symbol")
    mine = [(lot_id, q) for lot_id, sym, q in open_lots if sym == symbol]
    price, fee = data.draw(price_choices, label="price"), data.draw(fees, label="fees")
    held = sum((q for _, q in mine), Decimal(0))
    if mine and data.draw(st.booleans(), label="specific lots?"):
        chosen = data.draw(st.lists(st.sampled_from(mine), min_size=1, max_size=len(mine), unique_by=lambda p: p[0]),
                           label="lots")
        picks = []
        for lot_id, q in chosen:
            part = data.draw(st.sampled_from([q, q / 2, min(q, Decimal(1)), q + 1]), label=f"from lot {lot_id}")
            picks.append((lot_id, part))
        if data.draw(st.integers(0, 9), label="unknown lot?") == 0:
            picks.append(("999", Decimal(1)))
        quantity = sum((q for _, q in picks), Decimal(0))
        return Command("sell", day, account, symbol, quantity, price, fee, picks=tuple(picks))
    # all of the position, half of it, or a lot and a bit: sales that run over several lots
    aimed = ([held, held / 2] + [q + Decimal("0.5") for _, q in mine]) if held > 0 else []
    if aimed and data.draw(st.booleans(), label="aim at the position?"):
        quantity = data.draw(st.sampled_from(aimed), label="quantity")
    else:
        quantity = data.draw(quantities, label="quantity")
    return Command("sell", day, account, symbol, quantity, price, fee, method=data.draw(methods, label="method"))


def draw_open(data, account: str, day: dt.date, *, tax_status: str | None = None) -> Command:
    return Command("open", day, account, method=data.draw(st.sampled_from(ev.LOT_METHODS), label="method"),
                   overdraft=data.draw(st.integers(0, 4), label="overdraft") == 0,
                   tax_status=tax_status or data.draw(tax_statuses, label="tax status"))


def draw_command(data, store: EventStore, *, accounts: Sequence[str], corporate: bool = False, voids: bool = True,
                 renames: bool = False) -> Command:
    """One random command for a ledger whose current state is `store` (read only to aim specific-lot sales).
    `renames` adds symbol changes among the symbols (tickers reused), for properties that need no model."""
    kinds = ["deposit"] * 3 + ["withdraw", "fee", "interest"] + ["buy"] * 5 + ["sell"] * 5 + ["open", "rates"]
    if voids:
        kinds += ["void"] * 2
    if corporate:
        kinds += ["split", "dividend", "dividend", "reinvest", "identical"]
    if renames:
        kinds += ["rename"]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    day = data.draw(days, label="day")
    if kind == "open":
        return draw_open(data, data.draw(st.sampled_from(ACCOUNTS), label="account"), day)
    if kind == "void":
        head = store.head()[0]
        return Command("void", target=data.draw(st.integers(1, max(1, head + 1)), label="void target"))
    if kind == "rates":
        return Command("rates", day, data.draw(st.sampled_from(sorted(set(OWNERS.values()))), label="owner"),
                       rates=data.draw(st.sampled_from(RATES), label="rates"))
    account = data.draw(st.sampled_from(accounts), label="account")
    if kind == "deposit":
        return Command("deposit", day, account, amount=data.draw(st.sampled_from(DEPOSITS), label="amount"))
    if kind in ("withdraw", "fee", "interest"):
        return Command(kind, day, account, amount=data.draw(st.sampled_from(SPENDS), label="amount"))
    if kind == "buy":
        return Command("buy", day, account, data.draw(symbol_choices, label="symbol"),
                       data.draw(quantities, label="quantity"), data.draw(prices, label="price"), data.draw(fees, label="fees"))
    if kind == "sell":
        return draw_sell(data, account, day, open_lots_on(store, account, day))
    symbol = data.draw(st.sampled_from(SYMBOLS), label="symbol")
    if kind == "identical":
        return Command("identical", day, symbol=symbol, other=data.draw(st.sampled_from([s for s in SYMBOLS if s != symbol])))
    if kind == "rename":
        return Command("rename", day, symbol=symbol, other=data.draw(st.sampled_from([s for s in SYMBOLS if s != symbol])))
    if kind == "split":
        ratio = data.draw(st.sampled_from([(Decimal(2), Decimal(1)), (Decimal(3), Decimal(2)), (Decimal(1), Decimal(4))]))
        fraction = data.draw(st.sampled_from(["keep", "round-down", "cash"]))
        return Command("split", day, symbol=symbol, ratio=ratio, fraction=fraction,
                       price=Decimal("20") if fraction == "cash" else None)
    if kind == "dividend":
        pay = day + dt.timedelta(days=data.draw(st.sampled_from([0, 1, 30, 400])))
        return Command("dividend", day, symbol=symbol, amount=data.draw(st.sampled_from([Decimal("0.25"), Decimal("1.333")])),
                       pay_date=pay, price=data.draw(st.sampled_from([None, Decimal("20")])))
    return Command("reinvest", day, account, symbol, enabled=data.draw(st.booleans()))


@attrs.define
class History:
    """What was submitted to a ledger and what it accepted, in order."""

    submitted: list[tuple[Command, bool]] = attrs.Factory(list)
    #: seq -> accepted command (voids included)
    accepted: dict[int, Command] = attrs.Factory(dict)

    def voided(self) -> set[int]:
        return {c.target for c in self.accepted.values() if c.kind == "void"}

    def live(self, as_of: dt.date | None = None) -> list[tuple[int, Command]]:
        """Accepted commands that count at the head: not voids, not voided, effective by `as_of`."""
        gone = self.voided()
        return [(seq, c) for seq, c in sorted(self.accepted.items())
                if c.kind != "void" and seq not in gone and (as_of is None or c.day <= as_of)]

    def describe(self) -> str:
        return "\n".join(f"{'ok ' if ok else 'no '} {c}" for c, ok in self.submitted)

    def add(self, store: EventStore, command: Command, ok: bool) -> None:
        self.submitted.append((command, ok))
        if ok:
            self.accepted[store.head()[0]] = command


def run_history(data, store: EventStore, *, steps: int, corporate: bool = False, voids: bool = True,
                snapshot_every: int | None = None, renames: bool = False) -> History:
    """Open 1-3 accounts with a deposit each, then submit `steps` random commands (refusals are part of the history).

    With `snapshot_every`, snapshots (of everything and of each account) are built at random moments in
    between, so later events find stale snapshots in the cache.
    """
    from projections.replay import build_snapshots

    n = data.draw(st.integers(1, len(ACCOUNTS)), label="accounts")
    accounts = ACCOUNTS[:n]
    history = History()
    for account in accounts:
        for cmd in (draw_open(data, account, FIRST_DAY), Command("deposit", FIRST_DAY, account, amount=Decimal("5000"))):
            ok = submit(store, [cmd])
            assert ok, f"{cmd} was refused"
            history.add(store, cmd, ok)
    for _ in range(steps):
        cmd = draw_command(data, store, accounts=accounts, corporate=corporate, voids=voids, renames=renames)
        history.add(store, cmd, submit(store, [cmd]))
        if snapshot_every and data.draw(st.integers(0, 3), label="snapshot now?") == 0:
            build_snapshots(store, every=snapshot_every)
            for account in accounts:
                build_snapshots(store, [account], every=snapshot_every)
    return history


# -- comparing books -----------------------------------------------------------------------
def account_state(acct) -> dict:
    """Everything a person can read about one account, through the read models."""
    return {
        "positions": [(p.symbol, p.quantity, p.cost_basis) for p in views.positions(acct)],
        "lots": [(l.lot_id, l.symbol, l.quantity, l.cost_basis, l.acquired, l.origin) for l in views.lots(acct)],
        "cash": [(c.currency, c.balance) for c in views.cash(acct)],
        "gains": [tuple(g) for g in views.gains(acct)],
        "income": [attrs.astuple(i) for i in acct.income],
        "sums": (acct.basis_in, acct.basis_out),
    }


def books_state(books) -> dict:
    return {name: account_state(books.accounts[name]) for name in sorted(books.accounts)}


def owner_state(ot) -> dict:
    """An owner's wash-sale state as it can still act: losses not fully matched, purchases with shares left."""
    def loss(l) -> tuple:
        return (l.seq, l.account, l.lot_id, l.quantity, l.matched, l.disallowed)

    return {"rates": ot.rates,
            "losses": [loss(l) for l in ot.losses if l.quantity > l.matched],
            "recent": [loss(l) for l in ot.recent_losses if l.quantity > l.matched],
            "acquisitions": [(a.day, a.account, a.lot.lot_id, a.lot.repl) for a in ot.acquisitions if a.lot.quantity > 0]}
