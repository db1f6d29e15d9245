"""Golden scenarios as data: fixtures/scenarios/*.toml, each "events before / events applied / expected after".

A scenario's rows use the CSV import's vocabulary (date, account, action, symbol, quantity,
price, amount, fees, lots) plus `open` (owner, tax_status, lot_method, overdraft) and the tax
declarations `identical` (symbol, other), `substitute` (symbol, other) and `rates` (owner,
short_term, long_term). Expectations name a point (`as_of`, `known` = "before" or "after" the
applied events) and list lots, cash and gains, whose numbers are worked out by hand in the file's
comments. A gain row with a wash-sale code ends with the adjustment and the code:
[lot_id, symbol, quantity, acquired, sold, proceeds, cost_basis, gain, term, (reason,) adjustment, "W"].
"""

from __future__ import annotations

import datetime as dt
import tomllib
from decimal import Decimal
from pathlib import Path

from commands import service
from commands.imports import ALL_COLUMNS, _row_event
from commands.service import Context, Pending
from domain import events as ev
from ledger.store import NewEvent
from projections import views
from projections.replay import Point, load_books

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
CTX = Context(actor="scenario")


def load(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def to_pending(row: dict) -> Pending:
    if row["action"] == "open":
        event = ev.AccountOpened(account=row["account"], owner=row.get("owner", row["account"]),
                                 tax_status=row.get("tax_status", "taxable"), currency=row.get("currency", "USD"),
                                 lot_method=row.get("lot_method", "fifo"), overdraft=row.get("overdraft", False))
        return Pending(NewEvent(f"account:{row['account']}", event, dt.date.fromisoformat(row["date"]), CTX.meta()))
    if row["action"] == "void":
        raise ValueError("use record_rows for voids")
    if row["action"] in TAX_ROWS:
        return TAX_ROWS[row["action"]](row)
    cells = {k: str(row.get(k, "")) for k in ALL_COLUMNS}
    return Pending(_row_event(cells, CTX, "scenario"))


def _identical(row: dict) -> Pending:
    event = ev.IdenticalDeclared(symbol=row["symbol"], identical_to=row["other"])
    return Pending(NewEvent(f"security:{event.symbol}", event, dt.date.fromisoformat(row["date"]), CTX.meta()))


def _substitute(row: dict) -> Pending:
    event = ev.SubstituteDeclared(symbol=row["symbol"], substitute=row["other"])
    return Pending(NewEvent(f"security:{event.symbol}", event, dt.date.fromisoformat(row["date"]), CTX.meta()))


def _rates(row: dict) -> Pending:
    event = ev.TaxRatesSet(owner=row["owner"], short_term=Decimal(str(row["short_term"])),
                           long_term=Decimal(str(row["long_term"])))
    return Pending(NewEvent(f"owner:{event.owner}", event, dt.date.fromisoformat(row["date"]), CTX.meta()))


#: tax declarations, recorded through commands.service.record like every other row
TAX_ROWS = {"identical": _identical, "substitute": _substitute, "rates": _rates}


def record_rows(store, rows: list[dict]) -> None:
    """Record rows one command at a time, as a person would."""
    for row in rows:
        if row["action"] == "void":
            service.void(store, CTX, int(row["seq"]), row.get("reason", "scenario"))
        else:
            service.record(store, [to_pending(row)])


def snapshot_of(store, point: Point, account: str) -> dict:
    books = load_books(store, point, accounts=[account])
    acct = views.account_of(books, account)
    return {
        "lots": [[l.lot_id, l.symbol, str(l.quantity), str(l.cost_basis), l.acquired.isoformat()] for l in views.lots(acct)],
        "cash": str(acct.cash),
        "gains": [gain_row(g) for g in views.gains(acct)],
        "income": [[i.symbol, i.kind, i.pay_date.isoformat(), str(i.gross), str(i.withheld)] for i in acct.income],
    }


def gain_row(g) -> list[str]:
    """A gain as a scenario row; a wash sale's row also carries its adjustment (Form 8949 column g) and code."""
    row = [g.lot_id, g.symbol, str(g.quantity), g.acquired.isoformat(), g.sold.isoformat(), str(g.proceeds),
           str(g.cost_basis), str(g.gain), g.term] + ([g.reason] if g.reason != "sale" else [])
    if g.code:
        row += [str(g.adjustment), g.code]
    return row


#: codes that end a gain row, after its adjustment
CODES = ("W",)

#: which fields of each row are numbers (compared by value, so 10 == 10.00)
NUMERIC = {"lots": (2, 3), "gains": (2, 5, 6, 7), "income": (3, 4)}


def _num(x) -> str:
    return str(Decimal(str(x)).normalize())


def _numeric(key: str, row) -> tuple[int, ...]:
    if key == "gains" and len(row) >= 11 and str(row[-1]) in CODES:
        return NUMERIC[key] + (len(row) - 2,)
    return NUMERIC[key]


def comparable(books: dict, keys) -> dict:
    """Rows restricted to `keys`, numbers normalised, lot ids kept as text."""
    out = {}
    for key in keys:
        value = books[key]
        if key == "cash":
            out[key] = _num(value)
        else:
            out[key] = [[_num(c) if n in _numeric(key, row) else str(c) for n, c in enumerate(row)] for row in value]
    return out
