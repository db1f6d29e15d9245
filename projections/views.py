"""Read models: positions, lots, cash, realized gains and the log, copied out of the books as frozen records."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Callable

import attrs

from domain.books import Account, Books, RealizedGain
from domain.errors import UnknownAccount
from domain import events as ev
from domain.values import ZERO, normalize, price_text, round_cents
from ledger.prices import Price
from ledger.store import EventStore, StoredRow


@attrs.frozen
class PositionView:
    symbol: str
    quantity: Decimal
    cost_basis: Decimal
    price: Price | None = None
    market_value: Decimal | None = None
    weight: Decimal | None = None


@attrs.frozen
class LotView:
    lot_id: str
    symbol: str
    quantity: Decimal
    cost_basis: Decimal
    acquired: dt.date
    origin: tuple[tuple[int, str], ...] = ()
    hp_start: dt.date | None = None


@attrs.frozen
class CashView:
    currency: str
    balance: Decimal


def account_of(books: Books, account: str, as_of: dt.date | None = None) -> Account:
    acct = books.accounts.get(account)
    if acct is None:
        when = f" as of {as_of}" if as_of else ""
        raise UnknownAccount(f"account {account} is not open{when}")
    return acct


def positions(acct: Account, price_of: Callable[[str], Price | None] | None = None) -> list[PositionView]:
    """Holdings per symbol; with prices, market value and weight in the account (cash included)."""
    rows = []
    for sym in sorted(acct.lots):
        lots = acct.lots[sym]
        qty = sum((l.quantity for l in lots), ZERO)
        basis = sum((l.basis for l in lots), ZERO)
        price = price_of(sym) if price_of else None
        value = round_cents(qty * price.close) if price else None
        rows.append(PositionView(symbol=sym, quantity=qty, cost_basis=basis, price=price, market_value=value))
    if rows and all(r.market_value is not None for r in rows):
        total = sum((r.market_value for r in rows), ZERO) + acct.cash
        if total > 0:
            rows = [attrs.evolve(r, weight=(r.market_value / total).quantize(Decimal("0.000001"))) for r in rows]
    return rows


def lots(acct: Account) -> list[LotView]:
    out = [LotView(lot_id=l.lot_id, symbol=l.symbol, quantity=l.quantity, cost_basis=l.basis, acquired=l.acquired,
                   origin=l.origin_lines(), hp_start=l.hp_start) for l in acct.open_lots()]
    return sorted(out, key=lambda l: (l.symbol, l.acquired, _lot_number(l.lot_id)))


def _lot_number(lot_id: str) -> tuple:
    """Sort lot ids like 3, 3.12, 12r numerically part by part (a part that is not a number counts as 0, so
    a wash-sale part `7w4` comes before the rest of lot 7); the id itself breaks ties."""
    return tuple(int(p) if p.isdigit() else 0 for p in lot_id.rstrip("r").split(".")), lot_id


def cash(acct: Account) -> list[CashView]:
    return [CashView(currency=acct.currency, balance=acct.cash)]


def gains(acct: Account, year: int | None = None) -> list[RealizedGain]:
    rows = acct.gains if year is None else [g for g in acct.gains if g.sold.year == year]
    return sorted(rows, key=lambda g: (g.sold, g.seq, g.lot_id))


@attrs.frozen
class LogEntry:
    row: StoredRow
    voided_by: int | None


def log(store: EventStore, *, account: str | None = None, known_seq: int | None = None) -> list[LogEntry]:
    voided = store.voided(known_seq)
    rows = store.rows(stream=f"account:{account}" if account else None, known_seq=known_seq)
    return [LogEntry(row=r, voided_by=voided.get(r.seq)) for r in rows]


def readable(row: StoredRow) -> str:
    """`summarize`, or, for a row this version cannot read (a damaged file), what is wrong with it: the log of a
    damaged ledger still lists every row, the bad one named (`audit verify` says whether the chain is broken)."""
    try:
        return summarize(row)
    except Exception as e:  # noqa: BLE001  (any failure to read a stored row is the row's, and is shown)
        return f"[unreadable row: {type(e).__name__}: {e}]"


def summarize(row: StoredRow) -> str:
    """One line a person can read for a log entry."""
    p = json.loads(row.payload)
    t = row.type
    if row.stream.startswith("security:") and t != "EventVoided":
        return describe_action(row.decode(), dt.date.fromisoformat(row.effective))
    if t == "AccountOpened":
        return (f"open {p['account']} ({p['tax_status']}, {p['currency']}, owner {p['owner']}, {p['lot_method']}"
                + (", overdraft" if p.get("overdraft") else "") + ")")
    if t in ("CashDeposited", "CashWithdrawn", "FeeCharged", "InterestReceived"):
        verb = {"CashDeposited": "deposit", "CashWithdrawn": "withdraw", "FeeCharged": "fee", "InterestReceived": "interest"}[t]
        return f"{verb} {Decimal(p['amount']):.2f}"
    if t == "TradeExecuted":
        text = f"{p['side']} {p['quantity']} {p['symbol']} @ {price_text(Decimal(p['price']))}"
        if p.get("fees") not in (None, "0", "0.00"):
            text += f" fees {Decimal(p['fees']):.2f}"
        if p.get("lots"):
            text += " lots " + ",".join(f"{x['lot']}:{x['quantity']}" for x in p["lots"])
        elif p.get("lot_method"):
            text += f" ({p['lot_method']})"
        return text
    if t == "EventVoided":
        return f"void seq {p['seq']}: {p['reason']}"
    return ", ".join(f"{k}={v}" for k, v in sorted(p.items()) if v not in (None, [], ""))


def describe_action(event: ev.Event, effective: dt.date) -> str:
    """One line for a corporate action."""
    n = normalize
    if isinstance(event, ev.SplitApplied):
        kind = "stock dividend" if event.stock_dividend else ("reverse split" if event.new < event.old else "split")
        extra = f", fractions: {event.fraction}" + (f" at {event.cash_price}" if event.cash_price else "")
        return f"{kind} {n(event.new)}:{n(event.old)} of {event.symbol}{extra}"
    if isinstance(event, ev.DividendDeclared):
        extra = f", withholding {event.withholding}" if event.withholding else ""
        extra += f", reinvest at {event.reinvest_price}" if event.reinvest_price else ""
        return f"{event.kind} dividend {event.per_share} a share of {event.symbol}, ex {effective}, paid {event.pay_date}{extra}"
    if isinstance(event, ev.MergerCompleted):
        parts = []
        if event.shares:
            parts.append(f"{n(event.shares)}:{n(event.per)} {event.acquirer}")
        if event.cash:
            parts.append(f"{event.cash} cash a share")
        tax = ", taxable" if event.taxable else ""
        return f"merger of {event.symbol}: {' + '.join(parts)}{tax}"
    if isinstance(event, ev.SpinoffCompleted):
        return (f"spinoff of {event.child} from {event.symbol}: {n(event.shares)}:{n(event.per)}, "
                f"{n(event.allocation)} of basis to {event.child}")
    if isinstance(event, ev.SymbolChanged):
        return f"symbol change {event.symbol} -> {event.new_symbol}"
    return type(event).__name__
