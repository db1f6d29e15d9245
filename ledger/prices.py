"""Market prices: data, not account events. An append-only table; a later row for the same
(symbol, date) corrects an earlier one, and `known_at` shows what was known before it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Iterable, Sequence

import attrs

from ledger.errors import LedgerError
from ledger.store import EventStore


@attrs.frozen
class Price:
    symbol: str
    date: dt.date
    close: Decimal
    currency: str = "USD"
    source: str = ""


def add_prices(store: EventStore, prices: Iterable[Price]) -> tuple[int, int]:
    """Append prices in one transaction; a row identical to the latest known for its (symbol, date) is skipped.

    Returns (added, unchanged).
    """
    added = unchanged = 0
    recorded_at = store.clock()
    with store.transaction():
        conn = store.conn
        rows = []
        latest: dict[tuple[str, str], tuple[str, str]] = {}
        for p in prices:
            key = (p.symbol, p.date.isoformat())
            have = latest.get(key)
            if have is None:
                found = conn.execute(
                    "SELECT close, currency FROM prices WHERE symbol = ? AND date = ? ORDER BY id DESC LIMIT 1", key
                ).fetchone()
                have = tuple(found) if found else None
            close = str(p.close)
            if have is not None and Decimal(have[0]) == p.close and have[1] == p.currency:
                unchanged += 1
                continue
            latest[key] = (close, p.currency)
            rows.append((p.symbol, key[1], close, p.currency, p.source, recorded_at))
        conn.executemany(
            "INSERT INTO prices (symbol, date, close, currency, source, recorded_at) VALUES (?,?,?,?,?,?)", rows
        )
        added = len(rows)
    return added, unchanged


def price_on(store: EventStore, symbol: str, day: dt.date, known_at: str | None = None) -> Price | None:
    """The latest close on or before `day` (as known at a UTC timestamp, if given)."""
    sql = "SELECT symbol, date, close, currency, source FROM prices WHERE symbol = ? AND date <= ?"
    args: list = [symbol, day.isoformat()]
    if known_at is not None:
        sql += " AND recorded_at <= ?"
        args.append(known_at)
    sql += " ORDER BY date DESC, id DESC LIMIT 1"
    r = store.conn.execute(sql, args).fetchone()
    if r is None:
        return None
    return Price(symbol=r[0], date=dt.date.fromisoformat(r[1]), close=Decimal(r[2]), currency=r[3], source=r[4])


def prices_version(store: EventStore) -> tuple | None:
    """The table's last row: the table is append-only, so it names the whole content (a memo's key)."""
    return store.conn.execute("SELECT id, symbol, date, close, recorded_at FROM prices ORDER BY id DESC LIMIT 1").fetchone()


def prices_on(store: EventStore, symbols: Sequence[str], day: dt.date, known_at: str | None = None) -> dict[str, Price | None]:
    """`price_on` for many symbols, kept in the store's memo: `check --all` and `propose --all` ask for the same
    symbols account after account; a price recorded since changes the key (`prices_version`)."""
    last = prices_version(store)
    memo = store.memo.setdefault("price_on", {})
    if len(memo) > 50_000:
        memo.clear()
    out = {}
    for s in symbols:
        key = (last, s, day, known_at)
        if key not in memo:
            memo[key] = price_on(store, s, day, known_at)
        out[s] = memo[key]
    return out


#: a price row as `folio prices export` writes it (every column, so that a restore keeps what was known when)
PRICE_COLUMNS = ("id", "symbol", "date", "close", "currency", "source", "recorded_at")


def price_rows(store: EventStore) -> Iterable[dict]:
    """Every row of the prices table, in the order recorded, each with every column."""
    for row in store.conn.execute(f"SELECT {', '.join(PRICE_COLUMNS)} FROM prices ORDER BY id"):
        yield dict(zip(PRICE_COLUMNS, row))


def restore_prices(store: EventStore, rows: Sequence[dict]) -> tuple[int, int]:
    """Append exported price rows verbatim (ids and recording times kept, so known-at views and proposals
    priced then reproduce), all or nothing: a row already here must be the same row (then it is skipped), the
    others must continue the table in order. Returns (added, skipped)."""
    added = skipped = 0
    with store.transaction():
        conn = store.conn
        last_id, last_at = conn.execute("SELECT COALESCE(MAX(id), 0), COALESCE(MAX(recorded_at), '') FROM prices").fetchone()
        pending = []
        for r in rows:
            values = tuple(r[c] for c in PRICE_COLUMNS)
            if r["id"] <= last_id:
                have = conn.execute(f"SELECT {', '.join(PRICE_COLUMNS)} FROM prices WHERE id = ?", (r["id"],)).fetchone()
                if have is None or tuple(have) != values:
                    raise LedgerError(f"price row {r['id']} in the file differs from price row {r['id']} here: "
                                      f"the file is from another ledger's prices")
                skipped += 1
                continue
            if r["id"] != last_id + 1:
                raise LedgerError(f"price row {r['id']} does not follow row {last_id}: the file has a gap")
            if r["recorded_at"] < last_at:
                raise LedgerError(f"price row {r['id']}: recorded_at goes back in time")
            pending.append(values)
            last_id, last_at = r["id"], r["recorded_at"]
        conn.executemany(f"INSERT INTO prices ({', '.join(PRICE_COLUMNS)}) VALUES (?,?,?,?,?,?,?)", pending)
        added = len(pending)
    return added, skipped
