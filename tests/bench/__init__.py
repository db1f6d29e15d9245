"""Folio benchmarks beside raw-SQLite baselines: `python -m tests.bench [--quick] [--sizes 10000,100000]`.

This module holds the seeded ledger generator and the measurements; `__main__` runs them per size
and prints the tables. Every figure is measured in the same run as its baseline.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import sqlite3
import statistics
import time
from decimal import Decimal
from typing import Iterator

from commands.service import Pending, record
from domain import events as ev
from ledger.store import COLUMNS, SCHEMA, EventStore, NewEvent
from projections.replay import Point, load_books, resolve_point

SEED = 20240101
BATCH = 10_000  # events per EventStore.append call (one transaction each), and per baseline executemany
BIG = "BIG"  # the one account with a long history: about a tenth of all events
SYMBOLS = [f"{a}{b}X" for a in "ABCDEFGHIJ" for b in "KLMNP"]  # 50 tickers
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"


def cents(c: int) -> Decimal:
    return Decimal(c).scaleb(-2)


class _Account:
    __slots__ = ("name", "cash", "held", "watch")

    def __init__(self, name: str, watch: list[str]):
        self.name, self.cash, self.held, self.watch = name, 0, {}, watch


class LedgerGenerator:
    """A seeded, endless stream of valid events in date order, as a broker CSV import would record them.

    Accounts open over the first fifth of the timeline (each with a first deposit); then every
    business day brings `per_day` events: deposits, withdrawals, fees, interest, and buys and
    sells of whole shares whose relief is the account's default (FIFO, HIFO or LIFO) or a named
    FIFO/HIFO. The generator keeps each account's cash (in cents) and shares, so a sale never
    exceeds the holding and cash never goes below zero; `disagreements` compares that with a fold.
    """

    def __init__(self, n: int, seed: int = SEED):
        self.rng = random.Random(seed)
        n_small = min(1000, max(100, n // 300))
        self.per_day = max(20, n // 6000)
        opening_days = max(1, n // self.per_day // 5)
        self.schedule = [(0, BIG)] + [(i * opening_days // n_small, f"ACC{i:04d}") for i in range(n_small)]
        self.accounts: dict[str, _Account] = {}
        self.small: list[_Account] = []
        self.prices = {s: self.rng.randrange(1_000, 50_000) for s in SYMBOLS}
        self.day = dt.date(2000, 1, 3)
        self.first_day, self.count, self.keys = self.day, 0, 0
        self._stream = self._events()

    def __iter__(self) -> Iterator[NewEvent]:
        return self._stream

    def _events(self) -> Iterator[NewEvent]:
        day_index, rng = 0, self.rng
        while True:
            while self.schedule and self.schedule[0][0] <= day_index:
                yield from self._open(self.schedule.pop(0)[1])
            for _ in range(self.per_day):
                acct = self.accounts[BIG] if rng.random() < 0.1 or not self.small else rng.choice(self.small)
                yield self._one(acct)
            for s, p in self.prices.items():
                self.prices[s] = max(100, round(p * (1 + rng.gauss(0.0003, 0.02))))
            day_index += 1
            self.day += dt.timedelta(days=3 if self.day.weekday() == 4 else 1)

    def _new(self, acct: _Account, event: ev.Event, key: str | None = None) -> NewEvent:
        self.count += 1
        meta = {"actor": "bench", "source": f"bench.csv:{self.count}", "command_id": f"{self.rng.getrandbits(128):032x}"}
        return NewEvent(f"account:{acct.name}", event, self.day, meta, idem_key=key)

    def _open(self, name: str) -> Iterator[NewEvent]:
        acct = _Account(name, self.rng.sample(SYMBOLS, 20 if name == BIG else 5))
        self.accounts[name] = acct
        if name != BIG:
            self.small.append(acct)
        method = self.rng.choice(("fifo", "fifo", "hifo", "lifo"))
        yield self._new(acct, ev.AccountOpened(account=name, owner=f"owner{len(self.accounts) // 2}",
                                               tax_status="taxable", currency="USD", lot_method=method))
        yield self._deposit(acct)

    def _deposit(self, acct: _Account) -> NewEvent:
        amount = self.rng.randrange(1_000, 20_000) * 100
        acct.cash += amount
        return self._new(acct, ev.CashDeposited(account=acct.name, amount=cents(amount)))

    def _one(self, acct: _Account) -> NewEvent:
        rng, r = self.rng, self.rng.random()
        if r < 0.08 or (acct.cash < 10_000 and not acct.held):
            return self._deposit(acct)
        if r < 0.10 and acct.cash >= 10_000:
            amount = rng.randint(1, acct.cash // 4)
            acct.cash -= amount
            return self._new(acct, ev.CashWithdrawn(account=acct.name, amount=cents(amount)))
        if r < 0.12 and acct.cash >= 10_000:
            amount = rng.randint(100, 2_500)
            acct.cash -= amount
            return self._new(acct, ev.FeeCharged(account=acct.name, amount=cents(amount), memo="custody"))
        if r < 0.14:
            amount = rng.randint(1, 5_000)
            acct.cash += amount
            return self._new(acct, ev.InterestReceived(account=acct.name, amount=cents(amount)))
        fee = rng.choice((0, 0, 100, 495))
        if acct.held and (r < 0.57 or acct.cash < 10_000):
            sym = rng.choice(list(acct.held))
            held, price = acct.held[sym], self.prices[sym]
            qty = held if rng.random() < 0.3 else rng.randint(1, held)
            fee = fee if qty * price > fee else 0
            acct.cash += qty * price - fee
            acct.held[sym] = held - qty
            if acct.held[sym] == 0:
                del acct.held[sym]
            trade = dict(side="sell", lot_method=rng.choice((None, "fifo", "hifo")))
        else:
            sym = rng.choice(acct.watch)
            price = self.prices[sym]
            if (acct.cash - fee) // price < 1:
                return self._deposit(acct)
            qty = rng.randint(1, min(200, (acct.cash - fee) // price))
            acct.cash -= qty * price + fee
            acct.held[sym] = acct.held.get(sym, 0) + qty
            trade = dict(side="buy")
        self.keys += 1
        key = f"T{self.keys}"
        event = ev.TradeExecuted(account=acct.name, symbol=sym, quantity=Decimal(qty), price=cents(price),
                                 fees=cents(fee), ref=key, **trade)
        return self._new(acct, event, key)

    def disagreements(self, books) -> list[str]:
        """Accounts whose folded cash or shares differ from what the generator recorded (none, when the fold is right)."""
        bad = []
        for name, acct in self.accounts.items():
            got = books.accounts[name]
            held = {s: sum(lot.quantity for lot in lots) for s, lots in got.lots.items()}
            if got.cash != cents(acct.cash) or held != {s: Decimal(q) for s, q in acct.held.items()}:
                bad.append(name)
        return bad


# -- measurements ---------------------------------------------------------------------------------
def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t, result


def open_lots(books) -> int:
    return sum(len(lots) for acct in books.accounts.values() for lots in acct.lots.values())


def build(path: str, gen: LedgerGenerator, n: int) -> tuple[EventStore, float]:
    """Append n generated events through EventStore.append, BATCH per call. Returns the seconds spent appending."""
    store, spent = EventStore.create(path), 0.0
    events = iter(gen)
    while n > 0:
        batch = list(itertools.islice(events, min(BATCH, n)))
        n -= len(batch)
        seconds, _ = timed(store.append, batch)
        spent += seconds
    return store, spent


def plain_insert(source: sqlite3.Connection, path: str) -> tuple[sqlite3.Connection, float]:
    """Baseline: executemany the very rows of `source`, BATCH per transaction, into a fresh table with the same schema."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(SCHEMA)
    cursor, spent = source.execute(f"SELECT {COLUMNS} FROM events ORDER BY seq"), 0.0
    while rows := cursor.fetchmany(BATCH):
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
        spent += time.perf_counter() - t
    return conn, spent


def plain_replay(conn: sqlite3.Connection) -> None:
    """Baseline: read every payload in seq order and parse it."""
    loads = json.loads
    for (payload,) in conn.execute("SELECT payload FROM events ORDER BY seq"):
        loads(payload)


def plain_account_read(conn: sqlite3.Connection, account: str, as_of: dt.date) -> None:
    """Baseline of an as-of query: one account's payloads up to a date, parsed."""
    for (payload,) in conn.execute("SELECT payload FROM events WHERE stream = ? AND effective <= ? ORDER BY seq",
                                   (f"account:{account}", as_of.isoformat())):
        json.loads(payload)


def replay(store: EventStore, keep_gains: bool):
    return load_books(store, resolve_point(store), keep_gains=keep_gains, use_snapshots=False)


def median_p95(values: list[float]) -> tuple[float, float, int]:
    """Median, 95th percentile (nearest rank) and count."""
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], len(values)


def latencies(fn, args_list, budget_s: float = float("inf")) -> tuple[float, float, int]:
    """Median, p95 (ms) and count of fn(*args) over args_list; stops early (after 3 at least) once budget_s is spent."""
    out, started = [], time.perf_counter()
    for args in args_list:
        if len(out) >= 3 and time.perf_counter() - started > budget_s:
            break
        out.append(timed(fn, *args)[0] * 1000)
    return median_p95(out)


def query_days(gen: LedgerGenerator, count: int) -> list[dt.date]:
    """`count` seeded random dates over the ledger's timeline."""
    rng = random.Random(SEED + 1)
    span = (gen.day - gen.first_day).days
    return [gen.first_day + dt.timedelta(days=rng.randrange(span + 1)) for _ in range(count)]


def as_of_latencies(store: EventStore, account: str, days: list[dt.date], snapshots: bool,
                    budget_s: float) -> tuple[float, float, int]:
    """Median and p95 (ms) of one account's holdings (what `folio positions` folds) as of each day, known at the head."""
    head = store.head()[0]
    query = lambda day: load_books(store, Point(as_of=day, known_seq=head), accounts=[account], use_snapshots=snapshots,
                                   keep_gains=False)
    return latencies(query, [(d,) for d in days], budget_s)


def checked_import(store: EventStore, gen: LedgerGenerator, k: int) -> float:
    """commands.service.record of k more generated events in one call (as `folio import FILE` does): seconds."""
    pending = [Pending(new, label=f"bench.csv line {i}") for i, new in enumerate(itertools.islice(iter(gen), k), 2)]
    return timed(record, store, pending)[0]


def single_deposits(store: EventStore, gen: LedgerGenerator, account: str, reps: int) -> list[float]:
    """Latencies (ms) of `reps` durable one-deposit commands through commands.service.record, dated the next day."""
    day, out = gen.day + dt.timedelta(days=1), []
    for i in range(reps):
        new = NewEvent(f"account:{account}", ev.CashDeposited(account=account, amount=Decimal("100.00")), day,
                       {"actor": "bench", "source": "cli", "command_id": f"single-{account}-{i}"})
        out.append(timed(record, store, [Pending(new)])[0] * 1000)
    return out


def plain_single_inserts(conn: sqlite3.Connection, reps: int) -> list[float]:
    """Baseline: one INSERT + COMMIT per row (WAL, synchronous=FULL) into the baseline table. Latencies in ms."""
    seq = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    out = []
    for i in range(1, reps + 1):
        row = (seq + i, "account:raw", i, "CashDeposited", 1, "2100-01-01", "2100-01-01T00:00:00.000000Z",
               '{"account":"raw","amount":"100.00"}', "{}", None, "0" * 64)
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT, row)
        conn.execute("COMMIT")
        out.append((time.perf_counter() - t) * 1000)
    return out


def memory_probe(path: str, traced: bool) -> dict:
    """Run in a fresh process (Linux): the peak resident memory during one full replay (keep_gains=False) above
    the resident size at its start (the peak reset through /proc/self/clear_refs), with the forked process's
    peak above the same start when the replay was split over two, the open lots it ends with, and (`traced`) the peak of Python's allocations under tracemalloc, in a second
    replay (exact, but tracing slows a replay several times, so the bench asks for it on small ledgers only)."""
    def status(field: str) -> float:  # MB, from /proc/self/status (Linux)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

    import resource

    store = EventStore.open(path)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from the resident size now
    before = status("VmRSS")
    books = replay(store, keep_gains=False)
    # a long replay is split over a forked process (projections.replay._fold_in_two): its peak counts too, above
    # the resident size it started with (this process's at the fork, about `before`)
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = {"rss_mb": status("VmHWM") - before + max(0.0, child - before), "open_lots": open_lots(books)}
    del books
    if traced:
        import tracemalloc

        tracemalloc.start()
        replay(store, keep_gains=False)
        out["traced_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0] * store.conn.execute("PRAGMA page_size").fetchone()[0]
    return {**out, "file_mb": pages / 2**20}
