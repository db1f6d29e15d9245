"""Reading files into events and prices: broker-style CSV, JSONL exports, price tables.

Every reader collects all problems with their line numbers before anything is
written; a file is recorded whole or not at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal
from typing import Iterator

from domain import events as ev
from domain import values as v
from domain.errors import DomainError, InvalidValue
from ledger.prices import Price
from ledger.store import NewEvent, StoredRow
from projections.replay import Report, counted
from commands.actions import (dividend_event, merger_event, reinvest_event, security_stream, spinoff_event,
                              split_event, symbol_change_event)
from commands.service import Context, Pending, Refused, account_stream

CSV_COLUMNS = ("date", "account", "action", "symbol", "quantity", "price", "amount", "fees", "lots", "ref")
#: optional columns for corporate actions and account settings (see the README)
ACTION_COLUMNS = ("ratio", "new_symbol", "pay_date", "kind", "withholding", "fmv", "child_fmv", "allocation",
                  "fraction", "taxable")
ALL_COLUMNS = CSV_COLUMNS + ACTION_COLUMNS
SECURITY_ACTIONS = ("split", "stock-dividend", "dividend", "merger", "spinoff", "symbol-change")
CASH_ACTIONS = {
    "deposit": ev.CashDeposited,
    "withdraw": ev.CashWithdrawn,
    "fee": ev.FeeCharged,
    "interest": ev.InterestReceived,
}
TRADE_ACTIONS = ("buy", "sell")


def parse_lots(text: str) -> tuple[str | None, tuple[ev.LotPick, ...]]:
    """A lot selection: a method name (fifo, lifo, hifo) or specific lots `ID:QTY;ID:QTY`."""
    text = (text or "").strip()
    if not text:
        return None, ()
    if text.lower() in ev.LOT_METHODS:
        return text.lower(), ()
    picks = []
    for part in text.replace(",", ";").split(";"):
        lot, sep, qty = part.strip().partition(":")
        if not sep or not lot.strip():
            raise InvalidValue(f"lot selection {text!r}: use a method ({', '.join(ev.LOT_METHODS)}) or ID:QTY;ID:QTY")
        picks.append(ev.LotPick(lot=lot.strip(), quantity=v.positive(qty, f"quantity of lot {lot.strip()}")))
    return None, tuple(picks)


def trade_event(account: str, side: str, sym: str, quantity, price, fees, lots: str | None, ref: str | None) -> ev.TradeExecuted:
    method, picks = parse_lots(lots or "")
    if side == "buy" and (method or picks):
        raise InvalidValue("a buy takes no lot selection")
    return ev.TradeExecuted(
        account=v.account_id(account), symbol=v.symbol(sym), side=side,
        quantity=v.positive(quantity, "quantity"), price=v.positive(price, "price"),
        fees=v.non_negative(v.money(fees or "0", "fees"), "fees"), lot_method=method, lots=picks, ref=ref or None,
    )


def cash_event(action: str, account: str, amount) -> ev.Event:
    return CASH_ACTIONS[action](account=v.account_id(account), amount=v.positive(v.money(amount, "amount"), "amount"))


def read_csv(text: str, ctx: Context, source: str, progress: Report | None = None) -> tuple[list[Pending], list[tuple[str, str]]]:
    """Parse the broker CSV: the events of the good rows, and (line, reason) for every bad one."""
    total = text.rstrip("\n").count("\n")  # rows after the header
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("date", "account", "action") if c not in header]
    if missing:
        raise Refused([(f"{source} line 1", f"the header lacks column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")])
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise Refused([(f"{source} line 1", f"column(s) {', '.join(twice)} named twice: which one holds the value?")])
    unknown = [h for h in header if h not in ALL_COLUMNS]
    if unknown:
        raise Refused([(f"{source} line 1", f"unknown column(s) {', '.join(unknown)}; expected some of {','.join(ALL_COLUMNS)}")])
    reader.fieldnames = header
    pending, problems = [], []
    lines = text.splitlines()
    end = reader.line_num
    for row in counted(reader, progress, "reading rows", total):
        # a row is named by the line it starts on (the reader counts to where it ends: a quote left open runs on to the
        # next quote or the end of the file, and the error was reported there, found by review)
        line, end = end + 1, reader.line_num
        while line < end and not lines[line - 1].strip():  # (blank lines the reader skipped)
            line += 1
        label = f"{source} line {line}"
        spans = (f" (a quoted field opened on line {line} runs to line {end}: is a closing quote missing?)"
                 if end > line and '"' in lines[line - 1] else "")
        values = [x for k, x in row.items() if k is not None]
        if None in row or any(x is None for x in values):
            count = len(header) + len(row.get(None) or []) - sum(1 for x in values if x is None)
            if any((x or "").strip() for x in values) or row.get(None):
                problems.append((label, f"{count} fields, the header has {len(header)}{spans}"))
            continue
        cells = {k: (row.get(k) or "").strip() for k in ALL_COLUMNS}
        if not any(cells.values()):
            continue
        try:
            pending.append(Pending(_row_event(cells, ctx, f"{source}:{line}"), label))
        except (DomainError, ValueError) as e:
            problems.append((label, f"{e}{spans}"))
    return pending, problems


def _row_event(c: dict[str, str], ctx: Context, source: str) -> NewEvent:
    action = c["action"].lower()
    day = v.parse_date(c["date"])
    ref = c["ref"] or None
    if action in SECURITY_ACTIONS:
        if c["account"]:
            raise InvalidValue(f"{action} is a corporate action: it applies to every holder, leave the account empty")
        event = _security_event(action, c)
        return NewEvent(security_stream(event.symbol), event, day, ctx.meta(source=source), idem_key=ref)
    account = v.account_id(c["account"])
    if action == "reinvest":
        if c["kind"].lower() not in ("on", "off"):
            raise InvalidValue("reinvest needs kind 'on' or 'off'")
        event = reinvest_event(account, _needs(c, "symbol", action).upper(), c["kind"].lower() == "on")
    elif action in CASH_ACTIONS:
        if not c["amount"]:
            raise InvalidValue(f"{action} needs an amount")
        event = cash_event(action, account, c["amount"])
    elif action in TRADE_ACTIONS:
        for col in ("symbol", "quantity", "price"):
            if not c[col]:
                raise InvalidValue(f"{action} needs a {col}")
        event = trade_event(account, action, c["symbol"].upper(), c["quantity"], c["price"], c["fees"], c["lots"], ref)
    else:
        known = ", ".join(list(CASH_ACTIONS) + list(TRADE_ACTIONS) + ["reinvest"] + list(SECURITY_ACTIONS))
        raise InvalidValue(f"unknown action {c['action']!r}; expected one of {known}")
    return NewEvent(account_stream(account), event, day, ctx.meta(source=source), idem_key=ref)


def _needs(c: dict[str, str], column: str, action: str) -> str:
    if not c[column]:
        raise InvalidValue(f"{action} needs a {column}")
    return c[column]


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "y", "taxable")


def _security_event(action: str, c: dict[str, str]) -> ev.Event:
    """Corporate actions from CSV: `symbol` is the security the action is on; see the README for each column."""
    sym = _needs(c, "symbol", action).upper()
    fraction = c["fraction"].lower() or None
    if action in ("split", "stock-dividend"):
        return split_event(sym, _needs(c, "ratio", action), fraction or "keep", c["price"] or None, action == "stock-dividend")
    if action == "dividend":
        return dividend_event(sym, _needs(c, "amount", action), _needs(c, "pay_date", action), c["kind"].lower() or "ordinary",
                              c["withholding"] or None, c["price"] or None)
    if action == "merger":
        return merger_event(sym, c["new_symbol"].upper() or None, c["ratio"] or None, c["amount"] or None, c["fmv"] or None,
                            fraction or "cash", c["price"] or None, _flag(c["taxable"]))
    if action == "spinoff":
        return spinoff_event(sym, _needs(c, "new_symbol", action).upper(), _needs(c, "ratio", action), c["allocation"] or None,
                             c["fmv"] or None, c["child_fmv"] or None, fraction or "cash", c["price"] or None)
    return symbol_change_event(sym, _needs(c, "new_symbol", action).upper())


def read_jsonl(text: str, progress: Report | None = None, source: str = "") -> list[StoredRow]:
    """Parse an export; raise `Refused` listing every malformed line (each named `<source> line N`)."""
    rows, problems = [], []
    lines = text.splitlines()
    fields = ("seq", "stream", "version", "type", "schema", "effective", "recorded_at", "payload", "meta", "idem_key", "hash")
    from ledger.codec import canonical
    where = f"{source} " if source else ""
    for n, line in enumerate(counted(lines, progress, "reading lines", len(lines)), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            problems.append((f"{where}line {n}", f"not valid JSON: {e}"))
            continue
        if not isinstance(obj, dict) or set(obj) != set(fields):
            got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            problems.append((f"{where}line {n}", f"not an exported event: expected the fields {', '.join(fields)}, got {got}"))
            continue
        try:
            if not isinstance(obj["payload"], dict) or not isinstance(obj["meta"], dict):
                raise ValueError("payload and meta must be JSON objects")
            for f in ("seq", "version", "schema"):
                if not isinstance(obj[f], int) or isinstance(obj[f], bool):
                    raise ValueError(f"{f} must be an integer")
            rows.append(StoredRow(**{**obj, "payload": canonical(obj["payload"]), "meta": canonical(obj["meta"])}))
        except (TypeError, ValueError) as e:
            problems.append((f"{where}line {n}", str(e)))
    if problems:
        raise Refused(problems)
    return rows


def export_lines(rows) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def looks_like_jsonl(path: str, text: str) -> bool:
    """An export (JSON lines) or a CSV: by what the file holds, a `{` first (found by review: a CSV named .jsonl gave
    a JSON error for every line); by the name only when it is empty."""
    start = text.lstrip()
    if start:
        return start.startswith("{")
    return path.lower().endswith((".jsonl", ".json", ".ndjson"))


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def read_price_rows(text: str, source: str) -> list[dict]:
    """A `folio prices export` file (JSONL, every column): each row checked as `prices import` checks a close;
    `Refused` lists every bad line."""
    from ledger.prices import PRICE_COLUMNS

    rows, problems = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label = f"{source} line {n}"
        try:
            obj = json.loads(line)
        except ValueError as e:
            problems.append((label, f"not valid JSON: {e}"))
            continue
        if not isinstance(obj, dict) or set(obj) != set(PRICE_COLUMNS):
            problems.append((label, f"not an exported price: expected the fields {', '.join(PRICE_COLUMNS)}"))
            continue
        try:
            if not isinstance(obj["id"], int) or isinstance(obj["id"], bool) or obj["id"] < 1:
                raise InvalidValue("id must be a positive integer")
            for f in ("symbol", "date", "close", "currency", "source", "recorded_at"):
                if not isinstance(obj[f], str):
                    raise InvalidValue(f"{f} must be text")
            v.symbol(obj["symbol"])
            if v.parse_date(obj["date"]).isoformat() != obj["date"]:  # stored as given: only the form Folio writes
                raise InvalidValue(f"date {obj['date']!r} is not written YYYY-MM-DD")
            v.positive(obj["close"], "close")
            v.currency(obj["currency"])
            if not _TIMESTAMP.fullmatch(obj["recorded_at"]):
                raise InvalidValue(f"recorded_at {obj['recorded_at']!r} is not a UTC timestamp as Folio writes them "
                                   f"(YYYY-MM-DDTHH:MM:SS.ffffffZ)")
            rows.append(obj)
        except DomainError as e:
            problems.append((label, str(e)))
    if problems:
        raise Refused(problems)
    return rows


def read_prices(text: str, source: str, currency: str = "USD") -> list[Price]:
    """Long `date,symbol,close[,currency]` or wide `date,SYM1,SYM2,...` (blank cells skipped)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise Refused([(source, "the file is empty")]) from None
    lower = [h.lower() for h in header]
    if not lower or lower[0] != "date":
        raise Refused([(f"{source} line 1", "the first column must be 'date' (long: date,symbol,close; wide: date,SYM1,SYM2,...)")])
    long_form = "symbol" in lower and "close" in lower
    names = lower if long_form else [h.upper() for h in header]
    twice = sorted({h for h in names if h and names.count(h) > 1})
    if twice:
        raise Refused([(f"{source} line 1", f"column(s) {', '.join(twice)} named twice: which one holds the close?")])
    prices, problems = [], []
    first: dict[tuple[str, dt.date], tuple[tuple[Decimal, str], int]] = {}  # (symbol, date) -> ((close, currency), line)
    if not long_form:
        symbols = []
        for h in header[1:]:
            try:
                symbols.append(v.symbol(h.upper()))
            except InvalidValue as e:
                problems.append((f"{source} line 1", str(e)))
        if problems:
            raise Refused(problems)
    for row in reader:
        line = reader.line_num
        if not row or not any(c.strip() for c in row):
            continue
        label = f"{source} line {line}"
        try:
            if len(row) != len(header):
                raise InvalidValue(f"{len(row)} fields, the header has {len(header)}")
            day = v.parse_date(row[0])
            if long_form:
                cell = dict(zip(lower, (c.strip() for c in row)))
                cur = v.currency(cell["currency"].upper()) if cell.get("currency") else currency
                found = [Price(v.symbol(cell["symbol"].upper()), day, v.positive(cell["close"], "close"), cur, source)]
            else:
                found = [Price(sym, day, v.positive(_short(c.strip()), f"close of {sym}"), currency, source)
                         for sym, c in zip(symbols, row[1:]) if c.strip()]
            for p in found:
                seen = first.setdefault((p.symbol, p.date), ((p.close, p.currency), line))
                if seen[0] != (p.close, p.currency):  # one file, two closes of one day: not for Folio to guess
                    raise InvalidValue(f"a second close of {p.symbol} on {p.date}: {p.close} {p.currency}, where line "
                                       f"{seen[1]} says {seen[0][0]} {seen[0][1]}")
                if seen[1] == line:
                    prices.append(p)
        except DomainError as e:
            problems.append((label, str(e)))
    if problems:
        raise Refused(problems)
    return prices


def _short(text: str) -> str:
    """Prices exported from float tools carry 16 digits of noise; keep 8 decimal places."""
    d = Decimal(text) if text.replace(".", "", 1).replace("-", "", 1).isdigit() else text
    if isinstance(d, Decimal) and d.as_tuple().exponent < -8:
        return str(d.quantize(Decimal("0.00000001")))
    return text
