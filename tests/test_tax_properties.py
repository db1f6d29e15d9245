"""Properties of the tax engine over random histories, checked with hypothesis.

Histories: one owner's two taxable accounts (optionally a third, tax-deferred one), buys and sells of one or
two symbols (optionally declared substantially identical), reinvested dividends and splits, on dates that
advance by 0, 1, 29, 30, 31... days so that purchases keep landing inside and just outside the 30-day
windows of loss sales. Commands the books refuse (a sale of more than is held) are skipped.

- per loss: the disallowed part (adjustment) and the allowed part add up to the economic loss, and every
  cent disallowed in a taxable replacement is added to exactly one replacement lot's basis;
- a wash sale changes when a loss is recognized, never how much: the owner's realized + unrealized gain at
  any common price equals that of the same history folded with wash-sale matching switched off;
- basis is conserved: basis in = open basis + basis out, in every account;
- min-tax relief never realizes more tax, at the owner's rates, than FIFO, LIFO or HIFO for the same sale;
- folds that start from snapshots equal full folds, owner (wash-sale) state included.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import tempfile
from decimal import Decimal
from unittest import mock

import attrs
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st

from commands import service
from commands.service import Context, Pending
from domain import events as ev
from domain import tax
from domain.books import Books, check_timeline
from domain.errors import DomainError, InsufficientShares
from domain.events import Recorded
from domain.lots import Lot, allocate, relieve, select
from domain.values import ZERO, is_long_term, round_cents
from ledger.store import EventStore, NewEvent
from projections import tax_views, views
from projections.replay import Point, build_snapshots, load_books, verify_snapshots
from tests.conftest import TickingClock

D = Decimal
HISTORIES = settings(max_examples=100, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

START = dt.date(2024, 1, 2)
#: how far each command moves the calendar: mostly a little, often exactly to a window's edge
STEPS = (0, 0, 0, 1, 1, 2, 5, 9, 10, 20, 29, 30, 31, 45, 200, 366)
#: dates that stay within a few windows of each other (snapshots between loss sales and their replacements)
TIGHT = (0, 0, 1, 2, 5, 9, 10, 20, 29, 30, 31)
SYMBOLS = ("S1", "S2")
QUANTITIES = (D("1"), D("2"), D("3"), D("5"), D("10"), D("0.5"))
PRICES = (D("10"), D("12.5"), D("20"), D("7.77"), D("33.33"), D("15"), D("9.01"))
OWNER = "o"


# ======================================================================================
# Random histories, folded in memory
# ======================================================================================
@attrs.define
class History:
    records: list[Recorded] = attrs.Factory(list)
    text: list[str] = attrs.Factory(list)
    #: cash paid for shares: buys (with fees) and reinvested dividends
    costs: Decimal = ZERO

    def describe(self) -> str:
        return "\n".join(self.text)


def _open_events(accounts: dict[str, str], data) -> list[tuple[str, ev.Event]]:
    out = []
    for account, status in accounts.items():
        method = data.draw(st.sampled_from(ev.LOT_METHODS), label=f"lot method of {account}")
        out.append((f"account:{account}", ev.AccountOpened(account=account, owner=OWNER, tax_status=status,
                                                           currency="USD", lot_method=method)))
        out.append((f"account:{account}", ev.CashDeposited(account=account, amount=D("100000.00"))))
    return out


def draw_history(data, *, tax_deferred: bool = False, steps: int = 25, advances=STEPS,
                 symbols=SYMBOLS) -> tuple[History, Books]:
    """A random valid history, folded as it is drawn (each command sees the books it lands in).

    Sales relieve lots by a method (FIFO, LIFO, HIFO, min-tax or the account's), of one lot or several.
    """
    accounts = {"A1": "taxable", "A2": "taxable"}
    if tax_deferred:
        accounts["IRA"] = "tax-deferred"
    history, books = History(), Books()
    seq = 0

    def apply(stream: str, event: ev.Event, day: dt.date) -> bool:
        nonlocal seq
        seq += 1
        rec = Recorded(seq=seq, effective=day, stream=stream, event=event)
        try:
            books.apply(rec)
        except DomainError as e:
            history.text.append(f"refused {day} {event!r}: {e}")
            return False
        history.records.append(rec)
        history.text.append(f"{seq:3} {day} {stream} {event!r}")
        if isinstance(event, ev.TradeExecuted) and event.side == "buy":
            history.costs += round_cents(event.quantity * event.price + event.fees)
        return True

    day = START
    if data.draw(st.booleans(), label="S1 and S2 identical?"):
        apply("security:S1", ev.IdenticalDeclared(symbol="S1", identical_to="S2"), day)
    for stream, event in _open_events(accounts, data):
        apply(stream, event, day)
    if data.draw(st.booleans(), label="rates?"):
        short = data.draw(st.sampled_from([D("0.37"), D("0.24"), D("0.1")]), label="short rate")
        long_ = data.draw(st.sampled_from([D("0.2"), D("0.15"), D("0.0")]), label="long rate")
        apply(f"owner:{OWNER}", ev.TaxRatesSet(owner=OWNER, short_term=short, long_term=long_), day)
    account_events_today = True
    for _ in range(steps):
        step = data.draw(st.sampled_from(advances), label="days later")
        day += dt.timedelta(days=step)
        if step:
            account_events_today = False
        kind = data.draw(st.sampled_from(["buy"] * 5 + ["sell"] * 5 + ["dividend", "split", "reinvest"]), label="kind")
        account = data.draw(st.sampled_from(sorted(accounts)), label="account")
        symbol = data.draw(st.sampled_from(symbols), label="symbol")
        price = data.draw(st.sampled_from(PRICES), label="price")
        if kind in ("dividend", "split"):
            if account_events_today:  # security events fold first on their date: keep the fold order = drawing order
                day += dt.timedelta(days=1)
                account_events_today = False
            if kind == "split":
                apply(f"security:{symbol}", ev.SplitApplied(symbol=symbol, new=D(2), old=D(1)), day)
            else:
                pay = day + dt.timedelta(days=data.draw(st.sampled_from([0, 3, 20]), label="pay after"))
                apply(f"security:{symbol}", ev.DividendDeclared(symbol=symbol, per_share=D("0.5"), pay_date=pay,
                                                                reinvest_price=price), day)
            continue
        account_events_today = True
        if kind == "reinvest":
            apply(f"account:{account}", ev.ReinvestmentSet(account=account, symbol=symbol,
                                                         enabled=data.draw(st.booleans(), label="on?")), day)
            continue
        if kind == "buy":
            quantity = data.draw(st.sampled_from(QUANTITIES), label="quantity")
            fees = data.draw(st.sampled_from([D("0"), D("0"), D("1.00")]), label="fees")
            apply(f"account:{account}", ev.TradeExecuted(account=account, symbol=symbol, side="buy", quantity=quantity,
                                                         price=price, fees=fees), day)
            continue
        method = data.draw(st.sampled_from([None, "fifo", "lifo", "hifo", "min-tax"]), label="method")
        held = books.accounts[account].held(symbol)
        options = list(QUANTITIES) + ([held, held / 2] if held > 0 else [])
        quantity = data.draw(st.sampled_from(options), label="quantity")
        if quantity > 0:
            apply(f"account:{account}", ev.TradeExecuted(account=account, symbol=symbol, side="sell", quantity=quantity,
                                                         price=price, lot_method=method), day)
    books.settle()
    # reinvested dividends paid for shares too (0.50 a share at 7.77-33.33 always buys at least a millionth of one)
    for acct in books.accounts.values():
        history.costs += sum((i.gross - i.withheld for i in acct.income if i.reinvested), ZERO)
    note("history:\n" + history.describe())
    return history, books


def refold(history: History, *, wash_sales: bool = True) -> Books:
    """The same records folded again from nothing; with wash_sales=False, wash-sale matching switched off."""
    patches = [] if wash_sales else [mock.patch.object(tax, "on_acquisition", lambda *a, **k: None),
                                     mock.patch.object(tax, "on_loss_sale", lambda *a, **k: None)]
    for p in patches:
        p.start()
    try:
        books, refusals = check_timeline(iter(history.records), set())
        books.settle()
    finally:
        for p in patches:
            p.stop()
    assert refusals == [], "the same history must be valid with or without wash sales"
    return books


def realized_plus_unrealized(books: Books, prices: dict[str, Decimal]) -> Decimal:
    """The owner's realized gain plus the unrealized gain of every open lot at the given prices (exact)."""
    total = ZERO
    for acct in books.accounts.values():
        total += sum((g.gain for g in acct.gains), ZERO)
        total += sum((lot.quantity * prices[lot.symbol] - lot.basis for lot in acct.open_lots()), ZERO)
    return total


def _classify(books: Books) -> None:
    """Statistics (pytest --hypothesis-show-statistics): how often the histories hit the interesting cases."""
    gains = [g for a in books.accounts.values() for g in a.gains]
    lots = [l for a in books.accounts.values() for l in a.open_lots()]
    event(f"wash sales: {'some' if any(g.code == 'W' for g in gains) else 'none'}")
    event(f"partly washed loss: {'yes' if any(g.code == 'W' and g.gain < 0 for g in gains) else 'no'}")
    event(f"replacement lot split off: {'yes' if any('w' in l.lot_id for l in lots) else 'no'}")
    event(f"reinvested lot washed: {'yes' if any(l.lot_id.endswith('r') and l.hp_start < l.acquired for l in lots) else 'no'}")


def check_basis_conservation(books: Books) -> None:
    for acct in books.accounts.values():
        open_basis = sum((lot.basis for lot in acct.open_lots()), ZERO)
        assert acct.basis_in == open_basis + acct.basis_out, \
            f"{acct.account}: basis in {acct.basis_in} != open {open_basis} + out {acct.basis_out}"
        assert acct.basis_out == sum((g.cost_basis for g in acct.gains), ZERO)
        ids = [lot.lot_id for lot in acct.open_lots()]
        assert len(ids) == len(set(ids)), f"{acct.account}: a lot id is used twice: {sorted(ids)}"
        for lot in acct.open_lots():
            assert lot.quantity > 0 and lot.basis == round_cents(lot.basis), f"lot {lot.lot_id} is not whole cents"
            assert lot.hp_start <= lot.acquired, f"lot {lot.lot_id}: a holding period only ever moves back"


# ======================================================================================
# 1. Disallowed + allowed = the economic loss; every disallowed cent lands in one basis
# ======================================================================================
@HISTORIES
@given(data=st.data(), tax_deferred=st.booleans())
def test_disallowed_plus_allowed_loss_is_the_economic_loss(data, tax_deferred):
    history, books = draw_history(data, tax_deferred=tax_deferred,
                                  advances=data.draw(st.sampled_from([STEPS, TIGHT]), label="calendar"))
    check_losses(history, books, tax_deferred)


def check_losses(history: History, books: Books, tax_deferred: bool) -> None:
    by_sale: dict[int, list] = {}
    for acct in books.accounts.values():
        for g in acct.gains:
            assert g.gain == g.proceeds - g.cost_basis + g.adjustment
            assert g.adjustment >= 0
            if g.proceeds >= g.cost_basis:
                assert (g.adjustment, g.code) == (ZERO, ""), f"a gain is never adjusted: {g}"
            else:
                # the disallowed part never exceeds the loss; what is left is the allowed loss (never a gain)
                assert g.adjustment <= g.cost_basis - g.proceeds, g
                assert g.gain <= 0
                assert (g.cost_basis - g.proceeds) == g.adjustment + (-g.gain)
            if g.adjustment > 0:
                assert g.code == "W"
            by_sale.setdefault(g.seq, []).append(g)
    for seq, gains in by_sale.items():
        loss = sum((g.cost_basis - g.proceeds for g in gains if g.proceeds < g.cost_basis), ZERO)
        assert sum((g.adjustment for g in gains), ZERO) <= loss, f"sale seq {seq}"
    disallowed = sum((g.adjustment for a in books.accounts.values() for g in a.gains), ZERO)
    _classify(books)
    added = sum((a.basis_in for a in books.accounts.values()), ZERO) - history.costs
    if tax_deferred:
        # a replacement in the IRA loses its share: less (or as much) basis is added than was disallowed
        assert ZERO <= added <= disallowed
    else:
        assert added == disallowed, "every disallowed cent goes into exactly one replacement lot's basis"
    check_basis_conservation(books)


# ======================================================================================
# 2. A wash sale defers a loss, it never changes the owner's total
# ======================================================================================
@HISTORIES
@given(data=st.data())
def test_a_wash_sale_never_changes_realized_plus_unrealized_gain(data):
    history, books = draw_history(data, advances=data.draw(st.sampled_from([STEPS, TIGHT]), label="calendar"))
    check_deferral_only(data, history, books)


def check_deferral_only(data, history: History, books: Books) -> None:
    plain = refold(history, wash_sales=False)
    again = refold(history)
    assert {a: (x.cash, x.basis_in, x.basis_out) for a, x in again.accounts.items()} == \
        {a: (x.cash, x.basis_in, x.basis_out) for a, x in books.accounts.items()}, "folding twice gives the same books"
    for name, acct in books.accounts.items():
        assert acct.cash == plain.accounts[name].cash
        for sym in SYMBOLS:
            assert acct.held(sym) == plain.accounts[name].held(sym)
    for _ in range(2):
        prices = {sym: data.draw(st.sampled_from(PRICES), label=f"price of {sym}") for sym in SYMBOLS}
        assert realized_plus_unrealized(books, prices) == realized_plus_unrealized(plain, prices), \
            f"at {prices}: wash sales changed the owner's total gain"
    assert not any(g.adjustment or g.code for a in plain.accounts.values() for g in a.gains)
    check_basis_conservation(books)
    check_basis_conservation(plain)


# ======================================================================================
# 3. min-tax never realizes more tax than FIFO, LIFO or HIFO
# ======================================================================================
SALE_DAY = dt.date(2024, 6, 3)
RATES = st.sampled_from([D("0"), D("0.1"), D("0.15"), D("0.2"), D("0.24"), D("0.37"), D("0.5"), D("0.99")])


@st.composite
def lots_for_sale(draw):
    """Whole-share lots with a basis in whole cents per share: every relief and proceeds share is exact."""
    n = draw(st.integers(1, 6))
    lots = []
    for i in range(n):
        quantity = D(draw(st.integers(1, 20)))
        unit = D(draw(st.integers(100, 20000))) / 100
        acquired = SALE_DAY - dt.timedelta(days=draw(st.sampled_from([1, 30, 200, 365, 366, 367, 400, 800])))
        moved_back = dt.timedelta(days=draw(st.sampled_from([0, 0, 0, 10, 200])))  # a wash sale's tacked period
        lots.append(Lot(lot_id=str(i + 1), symbol="Z", quantity=quantity, basis=quantity * unit, acquired=acquired,
                        order=i + 1, hp_start=acquired - moved_back))
    return lots


def realized_tax(lots: list[Lot], quantity: Decimal, method: str, price: Decimal, fees: Decimal,
                 rates: tuple[Decimal, Decimal], day: dt.date = SALE_DAY) -> Decimal:
    """Relieve a sale as the fold does (domain.lots.select, relieve, allocate) and tax each lot's gain at its term's rate."""
    lots = copy.deepcopy(lots)
    # the fold ranks lots by what a share nets after the sale's fees (domain.books._trade)
    chosen = select(lots, quantity, method, (), where="test", price=price - fees / quantity, day=day, rates=rates)
    assert sum((q for _, q in chosen), ZERO) == quantity
    proceeds = allocate(round_cents(quantity * price - fees), [q for _, q in chosen])
    total = ZERO
    for (lot, q), share in zip(chosen, proceeds):
        rate = rates[1] if is_long_term(lot.hp_start, day) else rates[0]
        total += rate * (share - relieve(lot, q))
    return total


@settings(max_examples=300, deadline=None, derandomize=True)
@given(lots=lots_for_sale(), data=st.data(), short=RATES, long_=RATES)
def test_min_tax_never_realizes_more_tax_than_fifo_lifo_or_hifo(lots, data, short, long_):
    held = sum((l.quantity for l in lots), ZERO)
    quantity = D(data.draw(st.integers(1, int(held)), label="shares sold"))
    price = D(data.draw(st.integers(100, 20000), label="price in cents")) / 100
    rates = (short, long_)
    mine = realized_tax(lots, quantity, "min-tax", price, ZERO, rates)
    for method in ("fifo", "lifo", "hifo"):
        other = realized_tax(lots, quantity, method, price, ZERO, rates)
        assert mine <= other, f"min-tax {mine} > {method} {other}"


def test_min_tax_with_sale_fees_never_realizes_more_tax_than_lifo():
    # 100 shares sold at 100.00 with 10.00 of fees (net 99.90 a share), owner rates 0.37 short / 0.20 long
    #   lot 1: 100 bought 2022-01-03 at 100.05 (long): ranked at 0.20 x (100 - 100.05) = -0.01 a share
    #   lot 2: 100 bought 2024-05-01 at 100.00 (short): ranked at 0.37 x (100 - 100) = 0.00 a share
    # min-tax sells lot 1: 0.20 x (9990.00 - 10005.00) = -3.00; LIFO sells lot 2: 0.37 x (9990.00 - 10000.00) = -3.70
    day = dt.date(2024, 6, 3)
    lots = [Lot("1", "X", D(100), D("10005.00"), dt.date(2022, 1, 3), order=1),
            Lot("2", "X", D(100), D("10000.00"), dt.date(2024, 5, 1), order=2)]
    rates = (D("0.37"), D("0.20"))
    assert realized_tax(lots, D(100), "lifo", D(100), D(10), rates, day) == D("-3.7000")
    assert realized_tax(lots, D(100), "min-tax", D(100), D(10), rates, day) <= \
        realized_tax(lots, D(100), "lifo", D(100), D(10), rates, day)


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "min-tax"])
def test_an_oversale_says_what_is_held_the_same_way_for_one_lot_as_for_several(method):
    """A sale of more than is held names what is held as the sum of the lots' shares: written plainly (20, not
    the 2E+1 a 1:0.5 split leaves in a lot), the same for one lot, which takes a shorter path, as for two."""
    day = dt.date(2024, 1, 4)
    one = [Lot("1", "X", D("2E+1"), D("10.00"), dt.date(2024, 1, 2))]
    two = [Lot("1", "X", D("1E+1"), D("5.00"), dt.date(2024, 1, 2)), Lot("2", "X", D("1E+1"), D("5.00"), dt.date(2024, 1, 2))]
    for lots in (one, two):
        with pytest.raises(InsufficientShares, match=r"^cannot sell 25 X: 20 held$"):
            select(lots, D(25), method, (), where="25 X", price=D(1), day=day)


@given(cents=st.integers(-10**6, 10**6), weights=st.lists(st.integers(1, 10**6), min_size=1, max_size=12))
def test_an_allocation_adds_up_to_the_total_and_never_has_a_share_of_the_other_sign(cents, weights):
    """Sale proceeds (and every other cent amount split by weights) are conserved to the cent, and no lot gets a
    share of the other sign than the total: proceeds of a few cents over many lots never give one lot -0.01."""
    total = Decimal(cents).scaleb(-2)
    parts = allocate(total, [Decimal(w) for w in weights])
    assert sum(parts, ZERO) == total and len(parts) == len(weights)
    assert all(p == p.quantize(Decimal("0.01")) and (p >= 0 if total >= 0 else p <= 0) for p in parts)
    assert all(str(p) != "-0.00" for p in parts)


def test_proceeds_of_a_few_cents_over_many_lots_give_the_cents_to_the_largest_shares():
    """7 - 6.95 = 0.05 over seven 1-share lots: the last lot no longer takes 0.05 - 6 x 0.01 = -0.01; each share
    is rounded down and the 5 cents go to the first five (equal remainders: the earlier first). Otherwise, the
    last lot still takes the remainder of the rounded shares (33.33 + 66.67)."""
    assert allocate(Decimal("0.05"), [Decimal(1)] * 7) == [Decimal("0.01")] * 5 + [Decimal("0.00")] * 2
    assert allocate(Decimal("0.10"), [Decimal(3)] + [Decimal(1)] * 7) == [Decimal("0.03")] + [Decimal("0.01")] * 7
    assert allocate(Decimal("100.00"), [Decimal(1), Decimal(2)]) == [Decimal("33.33"), Decimal("66.67")]


def test_min_tax_without_rates_follows_the_categories():
    """Short-term losses (largest first), long-term losses, long-term gains (smallest first), short-term gains."""
    day = SALE_DAY
    lots = [Lot("stg", "Z", D(1), D("50.00"), day - dt.timedelta(days=10), order=1),  # short gain +10
            Lot("ltg-big", "Z", D(1), D("40.00"), day - dt.timedelta(days=800), order=2),  # long gain +20
            Lot("ltl", "Z", D(1), D("70.00"), day - dt.timedelta(days=800), order=3),  # long loss -10
            Lot("stl-small", "Z", D(1), D("61.00"), day - dt.timedelta(days=10), order=4),  # short loss -1
            Lot("ltg-small", "Z", D(1), D("55.00"), day - dt.timedelta(days=400), order=5),  # long gain +5
            Lot("stl-big", "Z", D(1), D("90.00"), day - dt.timedelta(days=20), order=6)]  # short loss -30
    chosen = select(lots, D(6), "min-tax", (), where="test", price=D(60), day=day)
    assert [lot.lot_id for lot, _ in chosen] == ["stl-big", "stl-small", "ltl", "ltg-small", "ltg-big", "stg"]


# ======================================================================================
# 4. Snapshots never change an answer, wash-sale state included
# ======================================================================================
CTX = Context(actor="hypothesis")
#: SQLite in memory-backed storage when there is some (the write path syncs every commit)
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _owner_state(books: Books, day: dt.date) -> dict:
    out = {}
    for owner, ot in sorted(books.owners.items()):
        # what a later event can still meet: losses not fully matched, purchases with shares left
        # (a snapshot keeps only those; a full fold keeps spent ones until they leave the window)
        out[owner] = {
            "rates": ot.rates,
            "losses": [(l.seq, l.lot_id, l.matched, l.disallowed) for l in ot.losses if l.quantity > l.matched],
            "recent": [(l.seq, l.lot_id, l.matched, l.disallowed) for l in ot.recent_losses if l.quantity > l.matched],
            "acquisitions": [(a.day, a.account, a.lot.lot_id, a.lot.repl) for a in ot.acquisitions if a.lot.quantity > 0],
            "restrictions": tax_views.restrictions(books, owner, day),
        }
    return out


def _books_state(books: Books, day: dt.date) -> dict:
    return {
        "accounts": {name: {
            "lots": [attrs.astuple(l) for l in views.lots(a)],
            "gains": [tuple(g) for g in views.gains(a)],
            "income": [attrs.astuple(i) for i in a.income],
            "cash": a.cash, "sums": (a.basis_in, a.basis_out),
        } for name, a in sorted(books.accounts.items())},
        "owners": _owner_state(books, day),
        "identical": books.identical,
    }


@settings(max_examples=60, deadline=None, derandomize=True,
          # a known failure: report the first counterexample without spending the time budget on shrinking it
          phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), every=st.sampled_from([1, 2, 3, 5]))
def test_folding_from_snapshots_equals_the_full_fold_wash_sales_included(data, every):
    with tempfile.TemporaryDirectory(prefix="folio-tax-hyp-", dir=SCRATCH) as folder:
        store = EventStore.create(os.path.join(folder, "ledger.db"), clock=TickingClock())
        try:
            # the same kind of history, recorded through the write path, now and then in a random order (backdated
            # events included: those that no longer fit are refused and skipped)
            history, _ = draw_history(data, tax_deferred=data.draw(st.booleans(), label="with an IRA"), steps=15,
                                      advances=TIGHT, symbols=("S1",))
            records = list(history.records)
            order = data.draw(st.permutations(range(len(records))), label="recording order") \
                if data.draw(st.integers(0, 3), label="shuffle?") == 0 else range(len(records))
            first = [r for r in records
                     if isinstance(r.event, (ev.AccountOpened, ev.CashDeposited, ev.IdenticalDeclared, ev.TaxRatesSet))]
            rest = [records[i] for i in order if records[i] not in first]
            for rec in first + rest:
                try:
                    service.record(store, [Pending(NewEvent(rec.stream, rec.event, rec.effective, CTX.meta()))])
                except DomainError:
                    pass
                if data.draw(st.integers(0, 3), label="snapshot now?") == 0:
                    build_snapshots(store, every=every)
                    for account in ("A1", "A2"):
                        build_snapshots(store, [account], every=every)
            if data.draw(st.booleans(), label="fresh snapshots at the head?"):  # as `folio snapshot` would leave
                build_snapshots(store, every=every)
            head = store.head()[0]
            assert verify_snapshots(store)[1] == []  # made by the write path and by rebuilds: all match the log
            dates = sorted({r.effective for r in records})
            # every day of the history as known now, and a few points known earlier
            points = [(as_of, head) for as_of in [None] + dates]
            points += data.draw(st.lists(st.tuples(st.sampled_from(dates), st.integers(0, head)), max_size=4),
                                label="points known earlier")
            for as_of, known in points:
                day = as_of or dates[-1]
                for scope in (None, ["A1"], ["A2"]):
                    fast = load_books(store, Point(as_of, known), accounts=scope, use_snapshots=True)
                    slow = load_books(store, Point(as_of, known), accounts=scope, use_snapshots=False)
                    assert _books_state(fast, day) == _books_state(slow, day), f"at ({as_of}, {known}) for {scope}"
        finally:
            store.close()
