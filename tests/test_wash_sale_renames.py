"""Wash sales across renames, with a ticker reused: the wash-sale index follows lots to their new symbol.

Scenario (one taxable account):
  01-02 buy 10 X @100           (lot 3)
  01-03 buy 10 A @100           (lot 4)
  01-05 A renamed B             -> identical {A: A, B: A}; lot 4 is now B, in group "A"
  01-06 X renamed A             -> identical {X: X, A: X}; lot 3 is now A, in group "X"
  01-10 sell 10 A @50           (lot 3, a 500.00 loss)

A group is looked up from the symbol when matching: the loss on A (group X) has no replacement, since
lot 4 is B (group "A"). A regression once washed it against lot 4 (indexed under the symbol it was bought
as), and a snapshot thawed between the rename and the sale disagreed with the full fold.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from commands import service
from commands.service import Context, Pending
from domain import events as ev
from ledger.store import NewEvent
from projections.replay import Point, build_snapshots, load_books

CTX = Context(actor="review")


def _record(store, stream: str, event: ev.Event, day: str) -> None:
    service.record(store, [Pending(NewEvent(stream, event, dt.date.fromisoformat(day), CTX.meta()))])


def _trade(side: str, symbol: str, quantity: int, price: int) -> ev.TradeExecuted:
    return ev.TradeExecuted(account="T", symbol=symbol, side=side, quantity=Decimal(quantity), price=Decimal(price),
                            fees=Decimal(0))


def _ticker_reuse_history(store, *, snapshot_before_sale: bool) -> None:
    _record(store, "account:T", ev.AccountOpened(account="T", owner="o", tax_status="taxable", currency="USD",
                                                 lot_method="fifo", overdraft=False), "2024-01-02")
    _record(store, "account:T", ev.CashDeposited(account="T", amount=Decimal(100000)), "2024-01-02")
    _record(store, "account:T", _trade("buy", "X", 10, 100), "2024-01-02")
    _record(store, "account:T", _trade("buy", "A", 10, 100), "2024-01-03")
    _record(store, "security:A", ev.SymbolChanged(symbol="A", new_symbol="B"), "2024-01-05")
    _record(store, "security:X", ev.SymbolChanged(symbol="X", new_symbol="A"), "2024-01-06")
    if snapshot_before_sale:
        build_snapshots(store, every=1)  # as `folio snapshot` would, mid-window
    _record(store, "account:T", _trade("sell", "A", 10, 50), "2024-01-10")


def _wash(books) -> list[tuple]:
    acct = books.accounts["T"]
    return ([(g.symbol, g.lot_id, g.adjustment, g.code) for g in acct.gains],
            sorted((l.lot_id, l.symbol, l.quantity, l.basis) for l in acct.open_lots()))


def test_renamed_lot_is_not_a_replacement_for_the_reused_tickers_loss(store):
    """Full fold, no snapshots: B (group "A") is not identical to A (group "X"), so nothing is washed
    (what the code before the index did)."""
    _ticker_reuse_history(store, snapshot_before_sale=False)
    books = load_books(store, Point(None, store.head()[0]), use_snapshots=False)
    gains, lots = _wash(books)
    assert gains == [("A", "3", Decimal("0"), "")]
    assert lots == [("4", "B", Decimal("10"), Decimal("1000.00"))]


def test_wash_sale_index_snapshot_thawed_mid_window_equals_the_full_fold(store):
    """A snapshot taken after the renames and before the sale must not change the answer."""
    _ticker_reuse_history(store, snapshot_before_sale=True)
    point = Point(None, store.head()[0])
    for gains in (True, False):
        fast = load_books(store, point, use_snapshots=True, keep_gains=gains)
        slow = load_books(store, point, use_snapshots=False, keep_gains=gains)
        assert _wash(fast) == _wash(slow), f"keep_gains={gains}"
