"""`python -m tests.bench.rebalance [--quick] [--accounts 100,300,1000]`: the rebalancer's figures (issues 5 and 6)
beside baselines measured in the same run. Tables go to stdout; progress to stderr (a TTY only).

Issue 5: `folio check --all` and `folio propose --all --dry-run` over ledgers of 100, 300 and 1,000 accounts of
20 holdings each, built through the write path (`commands.service.record`, `commands.rebalance.set_model`,
`commands.imports.read_prices`); one full-mode proposal for an account of 500 assets and 20,000 lots.
Issue 6: optimal proposals (`domain.rebalancing.optimal.optimize`) for 50, 200 and 500 assets of 40 lots each,
whole and fractional shares, against the heuristic on the optimizer's own objective; min-vol and risk-parity
targets (`domain.rebalancing.targets`) for 50, 200 and 500 assets, with scipy's SLSQP min-vol as the baseline.

Everything is seeded: prices follow a one-factor market with sectors (levels around real ones, $3 to $1,500),
lots are bought on varied dates over 2.5 years, so some are short-term, some long-term, some at a loss.
"""

from __future__ import annotations

import os

# one BLAS thread before numpy loads: the machine is shared, and solver times should not depend on its load
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from decimal import Decimal  # noqa: E402

import attrs  # noqa: E402
import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from commands import rebalance as rb  # noqa: E402
from commands.cli import cli  # noqa: E402
from commands.imports import read_prices  # noqa: E402
from commands.optimal import wash_risk_symbols  # noqa: E402
from commands.service import Context, Pending, record  # noqa: E402
from domain import events as ev  # noqa: E402
from domain.rebalancing import optimal, risk, targets  # noqa: E402
from domain.rebalancing.trades import plan  # noqa: E402
from ledger.prices import add_prices  # noqa: E402
from ledger.store import EventStore, NewEvent  # noqa: E402
from projections.rebalance import assess, build_inputs, last_rebalance  # noqa: E402
from projections.replay import Point, build_snapshots, load_books, resolve_point  # noqa: E402
from tests.bench import SEED, timed  # noqa: E402
from tests.bench.__main__ import machine, progress, ratio  # noqa: E402

START, AS_OF = dt.date(2022, 6, 1), dt.date(2024, 11, 29)
UNIVERSE = 500  # symbols with prices; check accounts draw their models from the first CHECK_UNIVERSE of them
CHECK_UNIVERSE = 200
HOLDINGS = 20
MODELS = 10
ACCOUNTS = (100, 300, 1000)
OPT_SIZES = (50, 200, 500)
LOTS_PER_ASSET = 40
CTX = Context(actor="bench", source="bench")


# -- the market ---------------------------------------------------------------------------------
def business_days(start: dt.date, end: dt.date) -> list[dt.date]:
    days, d = [], start
    while d <= end:
        if d.weekday() < 5:
            days.append(d)
        d += dt.timedelta(days=1)
    return days


class Market:
    """Seeded daily closes in cents: r = beta * market + sector + idiosyncratic, with per-asset drift and volatility."""

    def __init__(self, n: int, seed: int = SEED):
        rng = random.Random(seed)
        names: set[str] = set()
        while len(names) < n:
            names.add("".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.choice((3, 4, 4)))))
        self.symbols = sorted(names)
        rng.shuffle(self.symbols)  # so the first k symbols are a random draw, not the alphabetical head
        self.days = business_days(START, AS_OF)
        self.index = {d: i for i, d in enumerate(self.days)}
        sector = {s: rng.randrange(11) for s in self.symbols}
        beta = {s: rng.uniform(0.6, 1.4) for s in self.symbols}
        idio = {s: rng.uniform(0.008, 0.022) for s in self.symbols}
        drift = {s: rng.gauss(0.06, 0.10) / 252 for s in self.symbols}
        level = {s: min(1500.0, max(3.0, math.exp(rng.gauss(math.log(60), 0.9)))) for s in self.symbols}
        self.cents: dict[str, list[int]] = {s: [] for s in self.symbols}
        for _ in self.days:
            m = rng.gauss(0.0003, 0.011)
            sectors = [rng.gauss(0, 0.007) for _ in range(11)]
            for s in self.symbols:
                r = drift[s] + beta[s] * m + sectors[sector[s]] + rng.gauss(0, idio[s])
                level[s] = max(1.0, level[s] * (1 + r))
                self.cents[s].append(round(level[s] * 100))

    def csv(self) -> str:
        """The wide price file `folio prices import` reads."""
        lines = ["date," + ",".join(self.symbols)]
        for i, d in enumerate(self.days):
            lines.append(d.isoformat() + "," + ",".join(f"{self.cents[s][i] / 100:.2f}" for s in self.symbols))
        return "\n".join(lines) + "\n"


def weights_summing_to(rng: random.Random, n: int, total: Decimal) -> list[Decimal]:
    """n positive weights on a 0.0001 grid, uneven as real models are, adding up to `total` exactly."""
    raw = [rng.uniform(0.5, 1.5) for _ in range(n)]
    unit = Decimal("0.0001")
    out = [(total * Decimal(repr(x / sum(raw)))).quantize(unit) for x in raw]
    out[0] += total - sum(out)
    return out


def model_event(name: str, symbols: list[str], rng: random.Random) -> ev.ModelSet:
    cash = Decimal("0.02")
    targets_ = tuple(ev.Target(symbol=s, weight=w, band_abs=Decimal("0.05"), band_rel=Decimal("0.25"))
                     for s, w in zip(sorted(symbols), weights_summing_to(rng, len(symbols), 1 - cash)))
    return ev.ModelSet(model=name, targets=targets_, cash=cash, note="bench")


# -- accounts -----------------------------------------------------------------------------------
class AccountWriter:
    """One account's history as events, keeping its cash (cents) and shares so nothing is refused."""

    def __init__(self, market: Market, name: str, rng: random.Random):
        self.market, self.name, self.rng = market, name, rng
        self.cash, self.held, self.events = 0, {}, []
        self.refs = 0

    def add(self, day: dt.date, event: ev.Event, stream: str | None = None, key: str | None = None) -> None:
        self.events.append(NewEvent(stream or f"account:{self.name}", event, day,
                                    CTX.meta(source=f"bench:{self.name}:{len(self.events) + 1}"), idem_key=key))

    def deposit(self, day: dt.date, dollars: int) -> None:
        self.cash += dollars * 100
        self.add(day, ev.CashDeposited(account=self.name, amount=Decimal(dollars)))

    def trade(self, day: dt.date, symbol: str, side: str, qty: int) -> bool:
        price = self.market.cents[symbol][self.market.index[day]]
        fee = 0 if self.rng.random() < 0.7 else 100  # most brokers charge nothing; some $1.00
        if side == "buy":
            if qty <= 0 or qty * price + fee > self.cash:
                return False
            self.cash -= qty * price + fee
            self.held[symbol] = self.held.get(symbol, 0) + qty
        else:
            if not 0 < qty <= self.held.get(symbol, 0) or qty * price <= fee:
                return False
            self.cash += qty * price - fee
            self.held[symbol] -= qty
        self.refs += 1
        ref = f"{self.name}-{self.refs}"
        self.add(day, ev.TradeExecuted(account=self.name, symbol=symbol, side=side, quantity=Decimal(qty),
                                       price=Decimal(price).scaleb(-2), fees=Decimal(fee).scaleb(-2), ref=ref), key=ref)
        return True


def policy_event(account: str, rng: random.Random, *, big: bool = False) -> ev.PolicySet:
    """A realistic mix: drift and cash everywhere; a calendar, harvesting, a risk trigger, fractions for some."""
    trig = ["drift", "cash"]
    calendar = "none"
    if big or rng.random() < 0.5:
        trig.append("calendar")
        calendar = rng.choice(("quarterly", "semi-annual", "annual"))
    if big or rng.random() < 0.3:
        trig.append("harvest")
    risky = not big and rng.random() < 0.1
    if risky:
        trig.append("risk")
    return ev.PolicySet(
        account=account, triggers=tuple(trig), calendar=calendar, min_cash=Decimal("0.01"), max_cash=Decimal("0.05"),
        min_trade=Decimal(100), turnover_cap=Decimal("0.25") if big or rng.random() < 0.3 else None,
        whole_shares=big or rng.random() < 0.8, cost_bps=Decimal(2), cost_per_share=Decimal("0.005"),
        rebalance_to="target" if big else rng.choice(("target", "target", "band-edge", "midpoint")),
        harvest_min_loss=Decimal(500), risk_threshold=Decimal("0.2") if risky else None)


def check_account(market: Market, i: int, models: list[tuple[str, ev.ModelSet]], rng: random.Random) -> list[NewEvent]:
    """Account i (owner i // 2: a taxable account and an IRA) holding its model's 20 symbols in 1 to 4 lots each."""
    name, owner = f"acct{i:04d}", f"owner{i // 2:04d}"
    w = AccountWriter(market, name, rng)
    days = market.days
    opened = days[rng.randrange(20)]
    w.add(opened, ev.AccountOpened(account=name, owner=owner, tax_status="taxable" if i % 2 == 0 else "tax-deferred",
                                   currency="USD", lot_method=rng.choice(("fifo", "fifo", "hifo", "min-tax"))))
    if i % 2 == 0:
        rates = rng.choice(((Decimal("0.37"), Decimal("0.20")), (Decimal("0.32"), Decimal("0.15")),
                            (Decimal("0.24"), Decimal("0.15"))))
        w.add(opened, ev.TaxRatesSet(owner=owner, short_term=rates[0], long_term=rates[1]), stream=f"owner:{owner}")
    size = int(min(3e6, max(2e4, math.exp(rng.gauss(math.log(250_000), 1.0)))))
    w.deposit(opened, size)
    model_id, model = models[i % len(models)]
    w.add(opened, ev.ModelAssigned(account=name, model=model_id))
    w.add(opened, policy_event(name, rng))
    first = days.index(opened) + 1
    trades = []
    for t in model.targets:
        n = rng.randint(1, 4)
        for k in sorted(rng.sample(range(first, len(days) - 5), n)):
            trades.append((days[k], t.symbol, float(t.weight) * size * 0.97 / n))
        if rng.random() < 0.2:  # a partial sale somewhere after the first buy
            trades.append((days[rng.randrange(first + 30, len(days) - 5)], t.symbol, -1.0))
    if rng.random() < 0.3:  # a late contribution: idle cash above the buffer
        trades.append((days[-rng.randrange(6, 40)], "", size * rng.uniform(0.03, 0.15)))
    for day, sym, value in sorted(trades, key=lambda x: (x[0], x[1])):
        if not sym:
            w.deposit(day, int(value))
        elif value < 0:
            held = w.held.get(sym, 0)
            if held >= 3:
                w.trade(day, sym, "sell", rng.randint(1, held // 3))
        else:
            price = market.cents[sym][market.index[day]] / 100
            w.trade(day, sym, "buy", max(1, int(value / price)))
    return w.events


def big_account(market: Market, n_assets: int, rng: random.Random) -> tuple[ev.ModelSet, list[NewEvent]]:
    """An account of `n_assets` assets, LOTS_PER_ASSET lots each, bought over two years; partial sales two to three
    months ago (some at a loss) leave every lot open. No sale is recent enough to restrict a buy-back: the
    optimizer's bands are hard constraints, and a restricted asset below its band makes the problem infeasible."""
    name, owner = f"big{n_assets}", f"whale{n_assets}"
    model = model_event(f"m{n_assets}", market.symbols[:n_assets], rng)
    w = AccountWriter(market, name, rng)
    days = market.days
    w.add(days[0], ev.AccountOpened(account=name, owner=owner, tax_status="taxable", currency="USD", lot_method="fifo"))
    w.add(days[0], ev.TaxRatesSet(owner=owner, short_term=Decimal("0.37"), long_term=Decimal("0.20")), stream=f"owner:{owner}")
    size = n_assets * 40_000
    w.deposit(days[0], size)
    w.add(days[0], ev.ModelAssigned(account=name, model=model.model))
    w.add(days[0], policy_event(name, rng, big=True))
    last_buy = len(days) - 100  # buys stop 31+ days before the first sale: no wash-sale splits, lots stay at 40
    buys = []
    for t in model.targets:
        for k in rng.sample(range(1, last_buy), LOTS_PER_ASSET):
            buys.append((days[k], t.symbol, float(t.weight) * size * 0.96 / LOTS_PER_ASSET))
    lots: dict[str, list[int]] = {}
    for day, sym, value in sorted(buys, key=lambda x: (x[0], x[1])):
        qty = max(1, int(value / (market.cents[sym][market.index[day]] / 100)))
        if w.trade(day, sym, "buy", qty):
            lots.setdefault(sym, []).append(qty)
    for t in model.targets[::4]:
        smallest = min(lots.get(t.symbol, [1]))
        if smallest > 1:
            w.trade(days[rng.randrange(len(days) - 60, len(days) - 35)], t.symbol, "sell", rng.randint(1, smallest - 1))
    w.deposit(days[-10], size // 50)
    return model, sorted(w.events, key=lambda e: e.effective)


# -- building ledgers through the write path -----------------------------------------------------
def import_prices(store: EventStore, market: Market) -> tuple[int, float]:
    seconds, (added, _) = timed(lambda: add_prices(store, read_prices(market.csv(), "bench-prices.csv")))
    return added, seconds


def record_all(store: EventStore, events: list[NewEvent], chunk: int = 10_000) -> float:
    """service.record in date order, `chunk` events per call (as `folio import` of a file each)."""
    events = sorted(events, key=lambda e: e.effective)
    spent = 0.0
    for i in range(0, len(events), chunk):
        pending = [Pending(e, label=f"bench line {j + 2}") for j, e in enumerate(events[i:i + chunk])]
        spent += timed(record, store, pending)[0]
    return spent


def check_models(store: EventStore, market: Market, rng: random.Random) -> list[tuple[str, ev.ModelSet]]:
    pool = market.symbols[:CHECK_UNIVERSE]
    out = []
    for k in range(MODELS):
        event = model_event(f"model{k}", rng.sample(pool, HOLDINGS), rng)
        rb.set_model(store, CTX, event, START)
        out.append((event.model, event))
    return out


# -- measurements -------------------------------------------------------------------------------
def folio_cli(path: str, *args: str) -> tuple[float, str]:
    """Seconds and output of one `folio` command, run as the CLI runs it (a fresh store connection)."""
    t = time.perf_counter()
    result = CliRunner().invoke(cli, ["--db", path, "--actor", "bench", *args], catch_exceptions=False)
    seconds = time.perf_counter() - t
    if result.exit_code:
        raise RuntimeError(f"folio {' '.join(args)} failed: {result.output.strip()[-300:]}")
    return seconds, result.output


def raw_read(store: EventStore, stream: str | None = None) -> None:
    """Baseline: every payload (of one stream, or all) read and parsed."""
    sql, args = "SELECT payload FROM events", ()
    if stream:
        sql, args = sql + " WHERE stream = ?", (stream,)
    for (payload,) in store.conn.execute(sql + " ORDER BY seq", args):
        json.loads(payload)


def best(fn, reps: int) -> float:
    return min(timed(fn)[0] for _ in range(reps))


def check_breakdown(store: EventStore, accounts: list[str]) -> dict[str, float]:
    """Where a check's time goes: the CLI's per-account steps (`cli_rebalance._assess`), timed one by one."""
    spent = {"resolve_point": 0.0, "load_books": 0.0, "build_inputs": 0.0, "last_rebalance": 0.0, "assess": 0.0}
    for a in accounts:
        t0 = time.perf_counter()
        point = resolve_point(store, AS_OF)
        t1 = time.perf_counter()
        books = load_books(store, point, accounts=[a])
        t2 = time.perf_counter()
        inputs = build_inputs(store, books, a, point)
        t3 = time.perf_counter()
        last_rebalance(store, a, inputs.as_of_seq, books.accounts[a].opened)
        t4 = time.perf_counter()
        assess(store, books, inputs)
        t5 = time.perf_counter()
        for k, x in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            spent[k] += x
    spent["assess"] -= spent["last_rebalance"]  # assess calls last_rebalance itself; count it once
    return spent


def per(seconds: float, n: int) -> str:
    return f"{seconds:.2f} s ({seconds / n * 1000:.1f} ms/account)"


@contextlib.contextmanager
def solves_seen():
    """Record each optimal.solve call: its seconds in HiGHS, which optimize's report leaves out (it is digested)."""
    seen: list[optimal.Solution] = []
    real = optimal.solve

    def spy(*args, **kwargs):
        sol = real(*args, **kwargs)
        seen.append(sol)
        return sol
    optimal.solve = spy
    try:
        yield seen
    finally:
        optimal.solve = real


# -- tables -------------------------------------------------------------------------------------
def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    line = lambda r: "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip()
    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    sys.stdout.flush()


def guarded(rows: list, width: int, label: str, measure) -> None:
    """Append measure()'s rows; if it raises, one FAILED row, so the rest of the tables still print."""
    try:
        rows.extend(measure())
    except Exception as e:  # noqa: BLE001  (a broken path is a result to report, not a reason to stop)
        why = f"FAILED: {type(e).__name__}: {e}".splitlines()[0][:110]
        rows.append((label, why, *[""] * (width - 2)))


# -- issue 5 ------------------------------------------------------------------------------------
def run_checks(tmp: str, market: Market, sizes: tuple[int, ...], quick: bool) -> tuple[str, list, EventStore, str]:
    path = os.path.join(tmp, "accounts.db")
    store = EventStore.create(path)
    rng = random.Random(SEED + 5)
    progress("importing prices")
    added, t_prices = import_prices(store, market)
    models = check_models(store, market, rng)
    pairs = [(market.symbols[k], market.symbols[k + 1]) for k in range(0, 40, 2)]
    record(store, [Pending(NewEvent(f"security:{a}", ev.SubstituteDeclared(symbol=a, substitute=b), START, CTX.meta()))
                   for a, b in pairs])
    rows: list[tuple[str, ...]] = []
    later: list[tuple[str, ...]] = []  # propose --all, after the checks
    made, t_record, n_events, per_account = 0, 0.0, 0, []
    as_of = AS_OF.isoformat()
    for n in sizes:
        progress(f"{n} accounts: generating and recording through commands.service.record")
        events = [e for i in range(made, n) for e in check_account(market, i, models, rng)]
        t_record += record_all(store, events)
        n_events += len(events)
        made = n
        fold_all = lambda: load_books(store, Point(AS_OF, store.head()[0]), use_snapshots=False)
        t_fold, books = timed(fold_all)
        lots = sum(len(ls) for a in books.accounts.values() for ls in a.lots.values())
        del books

        def check():
            progress(f"{n} accounts: folio check --all, twice")
            first, out = folio_cli(path, "check", "--all", "--as-of", as_of)  # may fold much and leave a snapshot
            seconds, again = folio_cli(path, "check", "--all", "--as-of", as_of)
            assert again == out
            attention = out.count("needs attention")
            t_raw = best(lambda: raw_read(store), 1 if quick else 3)
            t_best_fold = min(t_fold, best(fold_all, 2)) if not quick else t_fold
            per_account.append(seconds / n)
            growth = f"x{per_account[-1] / per_account[0]:.2f} per account vs {sizes[0]}" if len(per_account) > 1 else ""
            return [(f"check --all, {n:,} accounts ({lots:,} lots, {attention} need attention)", per(seconds, n),
                     f"{t_best_fold:.2f} s one fold of all", ratio(t_best_fold, seconds), "< 2 s at 1,000" if n == 1000 else growth),
                    ("", "", f"{t_raw:.2f} s SELECT+json.loads", ratio(t_raw, seconds), growth if n == 1000 else ""),
                    ("  the first check after the batch (it may leave a snapshot of all accounts)", per(first, n), "", "", "")]
        guarded(rows, 5, f"check --all, {n:,} accounts", check)
        if n == sizes[0 if quick else -1]:
            guarded(later, 5, f"propose --all, {n:,} accounts", lambda: propose_all(path, n, per_account[-1] * n))
    rows += later
    guarded(rows, 5, "check breakdown", lambda: breakdown(store, [f"acct{i:04d}" for i in range(made)]))
    title = (f"Issue 5: check and propose over many accounts ({HOLDINGS} holdings each, {MODELS} models over "
             f"{CHECK_UNIVERSE} symbols, owners of a taxable account and an IRA), as of {AS_OF}\n"
             f"ledger: {n_events:,} account events recorded by service.record in {t_record:.1f} s; "
             f"{added:,} prices of {UNIVERSE} symbols, {START} .. {AS_OF}, imported in {t_prices:.1f} s")
    return title, rows, store, path


def propose_all(path: str, n: int, t_check: float) -> list[tuple[str, ...]]:
    progress(f"{n} accounts: folio propose --all --dry-run")
    seconds, out = folio_cli(path, "propose", "--all", "--dry-run", "--as-of", AS_OF.isoformat())
    proposed = out.count("Dry run for ")
    return [(f"propose --all --dry-run, {n:,} accounts ({proposed} proposals)", per(seconds, n),
             f"{t_check:.2f} s check --all", ratio(t_check, seconds), "linear in accounts")]


def breakdown(store: EventStore, accounts: list[str], every: int = 10) -> list[tuple[str, ...]]:
    """The check's steps on every `every`-th account, scaled to all of them."""
    progress(f"{len(accounts)} accounts: where the check's time goes")
    sample = accounts[::every]
    spent = check_breakdown(store, sample)
    total = sum(spent.values())
    scale = len(accounts) / len(sample)
    return [(f"  check step {k} (1 in {every} accounts timed, x{scale:.0f})", per(x * scale, len(accounts)),
             f"{x / total:.0%} of the steps", "", "") for k, x in spent.items()]


def run_big(tmp: str, market: Market, quick: bool) -> tuple[str, list, EventStore, dict]:
    """The 50-, 200- and 500-asset accounts in one ledger; the 500-asset full-mode proposal timed."""
    path = os.path.join(tmp, "big.db")
    store = EventStore.create(path)
    rng = random.Random(SEED + 6)
    progress("big accounts: prices, models, 40 lots per asset through service.record")
    import_prices(store, market)
    t_record, n_events = 0.0, 0
    for n in OPT_SIZES:
        model, events = big_account(market, n, rng)
        rb.set_model(store, CTX, model, START)
        t_record += record_all(store, events, chunk=25_000)
        n_events += len(events)
    point = Point(AS_OF, store.head()[0])
    projected = {}
    for n in OPT_SIZES:
        books = load_books(store, point, accounts=[f"big{n}"])
        projected[n] = (books, build_inputs(store, books, f"big{n}", point))
    rows: list[tuple[str, ...]] = []
    books, inputs = projected[OPT_SIZES[-1]]
    name = f"big{OPT_SIZES[-1]}"
    lots = sum(len(h.lots) for h in inputs.holdings)
    reps = 1 if quick else 3

    def proposal():
        progress(f"{name}: one full-mode proposal")
        t_raw = best(lambda: raw_read(store, f"account:{name}"), reps)
        t_fold = best(lambda: load_books(store, point, accounts=[name], use_snapshots=False), reps)
        t_inputs = best(lambda: build_inputs(store, books, name, point), reps)
        t_plan, p = timed(plan, inputs, "full")
        t_plan = min([t_plan] + [timed(plan, inputs, "full")[0] for _ in range(reps - 1)])
        propose = lambda: rb.propose(store, CTX, name, point, "full", today=AS_OF, dry_run=True)
        t_use = best(propose, reps)
        t_snap, made = timed(build_snapshots, store, [name])
        t_served = best(propose, reps)
        return [(f"build_inputs + plan (full), from the folded books ({len(p.orders)} orders)",
                 f"{t_inputs + t_plan:.3f} s", f"{t_fold:.3f} s fold alone (no snapshot)", ratio(t_fold, t_inputs + t_plan), "< 0.5 s"),
                ("  of which build_inputs", f"{t_inputs:.3f} s", "", "", ""),
                ("  of which plan", f"{t_plan:.3f} s", "", "", ""),
                ("propose --dry-run use case (fold, inputs, triggers, plan, digest)", f"{t_use:.3f} s",
                 f"{t_raw:.3f} s SELECT+json.loads", ratio(t_raw, t_use), "< 0.5 s"),
                (f"  the same after `folio snapshot` ({made} snapshots in {t_snap:.1f} s)", f"{t_served:.3f} s",
                 "", ratio(t_raw, t_served), "< 0.5 s")]
    guarded(rows, 5, "500-asset proposal", proposal)
    title = (f"Issue 5: one proposal for an account of {len(inputs.holdings)} assets and {lots:,} lots, as of {AS_OF}\n"
             f"ledger: {n_events:,} account events ({', '.join(f'{n} assets' for n in OPT_SIZES)}) recorded by "
             f"service.record in {t_record:.1f} s; policy: whole shares, 2 bps + $0.005/share, turnover cap 25%, "
             f"min trade $100, buffer 1-5%, owner rates 37%/20%")
    return title, rows, store, projected


# -- issue 6 ------------------------------------------------------------------------------------
def run_optimal(projected: dict) -> tuple[str, list]:
    rows = []
    for n in OPT_SIZES:
        books, whole = projected[n]
        wash = wash_risk_symbols(books, whole)
        fractional = attrs.evolve(whole, policy=attrs.evolve(whole.policy, whole_shares=False))
        for label, inputs in (("whole", whole), ("fractional", fractional)):
            lots = sum(len(h.lots) for h in inputs.holdings)

            def measure():
                progress(f"optimal: {n} assets, {label} shares")
                t_build, p = timed(optimal.build, inputs, wash)
                with solves_seen() as seen:
                    t_opt, (opt_plan, report) = timed(optimal.optimize, inputs, wash_risk=wash)
                t_heur, heur = timed(plan, inputs, "full")
                parts = optimal.objective_parts(inputs, p, heur)
                h, o = sum(parts.values()), float(report["objective"])
                sol = seen[-1]
                gap = report.get("mip_gap") or ("n/a" if sol.gap is None else f"{sol.gap:.1e}")
                aim = "< 2 s" if n == 500 and label == "whole" else ""
                return [(f"{n} x {LOTS_PER_ASSET} ({lots:,} lots), {label}", f"{t_opt:.2f} s", f"{sol.seconds:.2f} s",
                         f"{t_build:.2f} s", sol.status, gap, f"{report['mip_gap_limit']} / {report['time_limit_seconds']} s",
                         f"{o:,.0f} ({float(report['drift']):,.0f}/{float(report['cost']):,.0f}/{float(report['tax']):,.0f})",
                         f"{h:,.0f} ({parts['drift']:,.0f}/{parts['cost']:,.0f}/{parts['tax']:,.0f})",
                         f"{(h - o) / h:.1%}" if h else "-", f"{t_heur:.2f} s", aim)]
            guarded(rows, 12, f"{n} x {LOTS_PER_ASSET}, {label}", measure)
    title = ("Issue 6: optimal proposals (optimize: build, assemble, HiGHS, orders, pricing) against the heuristic "
             "(plan, mode full) on the optimizer's objective\nobjective = drift + cost + tax in dollars "
             "(objective_parts of each plan); heuristic worse by = (heuristic - optimal) / heuristic; "
             "HiGHS = the solve loop alone")
    return title, rows


def synthetic_returns(n: int, days: int, seed: int) -> np.ndarray:
    """Daily returns of n assets: a market factor, 11 sectors, idiosyncratic noise (annual vols about 15% to 50%)."""
    g = np.random.default_rng(seed)
    market = g.normal(0.0003, 0.011, days)
    sectors = g.normal(0, 0.007, (days, 11))
    beta = g.uniform(0.6, 1.4, n)
    sector = g.integers(0, 11, n)
    idio = g.uniform(0.008, 0.022, n)
    return market[:, None] * beta + sectors[:, sector] + g.normal(0, 1, (days, n)) * idio + g.normal(0.0002, 0.0003, n)


def slsqp_min_vol(cov: np.ndarray, budget: float) -> tuple[np.ndarray, str, int]:
    n = len(cov)
    res = minimize(lambda w: w @ cov @ w, np.full(n, budget / n), jac=lambda w: 2 * cov @ w, method="SLSQP",
                   bounds=[(0.0, 1.0)] * n, constraints=[{"type": "eq", "fun": lambda w: w.sum() - budget,
                                                          "jac": lambda w: np.ones_like(w)}],
                   options={"ftol": 1e-12, "maxiter": 1000})
    return res.x, "optimal" if res.success else str(res.message), int(res.nit)


def run_targets(quick: bool) -> tuple[str, list]:
    rows = []
    budget, window = 0.98, 252
    for n in OPT_SIZES:
        def measure():
            progress(f"targets: {n} assets")
            r = synthetic_returns(n, window, SEED + n)
            symbols = tuple(f"S{i:03d}" for i in range(n))
            t_cov, cov = timed(risk.covariance, symbols, r)
            c = cov.matrix
            lo, hi = np.zeros(n), np.ones(n)
            t_mv, mv = timed(targets.min_vol, c, lo, hi, budget)
            t_rp, rp = timed(targets.risk_parity, c, lo, hi, budget)
            vol = risk.volatility(mv.weights, c)
            rc = rp.weights * (c @ rp.weights)
            spread = float((rc.max() - rc.min()) / rc.mean())
            out = [(f"min-vol, {n} assets", f"{t_mv * 1000:,.1f} ms", f"{mv.status}, {mv.iterations} it",
                    f"vol {vol:.4%}, {int((mv.weights > 1e-9).sum())} held", "", "", ""),
                   (f"risk-parity, {n} assets", f"{t_rp * 1000:,.1f} ms", f"{rp.status}, {rp.iterations} it",
                    f"contributions within {spread:.1e}", "", "", "")]
            if quick and n == 500:
                out.append((f"SLSQP min-vol baseline, {n} assets", "skipped (--quick)", "", "", "", "", ""))
            else:
                t_sq, (w_sq, status, nit) = timed(slsqp_min_vol, c, budget)
                vol_sq = risk.volatility(w_sq, c)
                out.append((f"SLSQP min-vol baseline, {n} assets", f"{t_sq * 1000:,.1f} ms", f"{status}, {nit} it",
                            f"vol {vol_sq:.4%} ({(vol_sq - vol) / vol:+.1e} vs active set)",
                            f"max |dw| {np.abs(w_sq - mv.weights).max():.1e}", ratio(t_sq, t_mv), ""))
            out.append((f"covariance, {n} assets", f"{t_cov * 1000:,.1f} ms", cov.method, f"shrinkage {cov.shrinkage:.2f}",
                        "", "", ""))
            return out
        guarded(rows, 7, f"targets, {n} assets", measure)
    title = (f"Issue 6: risk-based targets on seeded synthetic returns ({window} days, a market factor and 11 sectors), "
             f"bounds 0..1 (the CLI's default), budget {budget}\nfolio/base: the active-set min-vol's speed over SLSQP's")
    return title, rows


# -- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.rebalance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition per figure; no SLSQP at 500 assets")
    parser.add_argument("--accounts", help="comma-separated account counts for check and propose, e.g. 100,300,1000")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.accounts.split(",")) if args.accounts else ACCOUNTS
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temporary ledgers are removed on kill
    started = time.perf_counter()
    print(machine())
    print(f"seed {SEED}; BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}; CLI commands and solves run once, other "
          f"figures are {'one run (--quick)' if args.quick else 'the best of 3'}; folio/base is folio's speed over "
          "the baseline's (1/3 = 3x slower)")
    progress("generating prices")
    market = Market(UNIVERSE)
    with tempfile.TemporaryDirectory(prefix="folio-bench-rebalance-") as tmp:
        title, rows, store, _ = run_checks(tmp, market, sizes, args.quick)
        print_table(title, ("measure", "folio", "baseline", "folio/base", "aim"), rows)
        store.close()
        title, rows, store, projected = run_big(tmp, market, args.quick)
        print_table(title, ("measure", "folio", "baseline", "folio/base", "aim"), rows)
        title, rows = run_optimal(projected)
        print_table(title, ("problem", "optimize", "HiGHS", "build", "status", "MIP gap", "gap limit / time limit",
                            "optimal (drift/cost/tax)", "heuristic (drift/cost/tax)", "heuristic worse by",
                            "heuristic plan", "aim"), rows)
        store.close()
    title, rows = run_targets(args.quick)
    print_table(title, ("measure", "time", "solver", "result", "vs active set", "folio/base", "aim"), rows)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
