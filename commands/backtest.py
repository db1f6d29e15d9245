"""Backtests: rebalancing strategies run over historical closes on the real books and the real planner.

A strategy is a rebalancing policy (the fields of `PolicySet`) and a lot method; the strategies of one backtest
share a model, a price history, a start and a deposit. Each runs in books of its own: an account is opened and
funded on the first day and invested at the model's targets (a full rebalance); then on every day of the history
its triggers are checked at that day's closes and, when one fires, the planner's full rebalance is traded at
those closes with the policy's costs. The trades are events folded by the same `Books` as a ledger's (lots and
their relief, wash sales, realized gains), so a strategy's costs and taxes are the ones Folio would book, to the
cent. A strategy with no triggers never trades again (buy and hold). When only the cash trigger fires, idle cash
is put to work (a contribution: buys only) or the minimum buffer restored (a full rebalance), not the whole account
rebalanced; a scheduled date is used up by the check made on it, trades or not. The first day's investment is at
the targets whatever the turnover cap, minimum trade or tax budget.

Closes should be adjusted for dividends (total-return closes): no dividend is booked. A symbol without a close on
a day keeps its last one; each model symbol needs a close on or before the first day.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import tomllib
import typing
from decimal import Decimal
from pathlib import Path

import attrs
import numpy as np

from commands.rebalance import parse_target
from commands.imports import read_prices
from commands.service import Refused
from domain import events as ev
from domain import values as v
from domain.books import Books
from domain.errors import DomainError, InvalidValue
from domain.events import Recorded
from domain.rebalancing.drift import calendar_dates, drift, triggers
from domain.rebalancing.model import Holding, Inputs, Quote, check_model
from domain.rebalancing.trades import Order, cost_of, plan
from domain.values import ZERO
from ledger.prices import Price, add_prices
from ledger.store import EventStore, NewEvent
from projections import tax_views
from projections.rebalance import inputs_of, quote_price
from projections.replay import Report

ACCOUNT, OWNER = "BACKTEST", "backtest"
#: a strategy's keys besides the policy's fields
STRATEGY_KEYS = ("name", "lot_method", "planner")
#: who makes a strategy's full rebalances: Folio's heuristic planner (`folio propose`) or the optimizer
#: (`folio propose --mode optimal`); contributions and the first day's investment are the heuristic's either way
PLANNERS = ("heuristic", "optimizer")
POLICY_KEYS = tuple(f.name for f in attrs.fields(ev.PolicySet) if f.name != "account")


class SpecError(DomainError):
    """A backtest spec that cannot run: says what and where."""


@attrs.frozen
class Strategy:
    name: str
    policy: ev.PolicySet
    lot_method: str = "fifo"
    planner: str = "heuristic"


@attrs.frozen
class Spec:
    """What a backtest runs: closes by day (each day's close of every model symbol, the last known one carried),
    the model, the deposit, the account's tax status and its owner's rates, and the strategies."""

    days: tuple[dt.date, ...]
    closes: tuple[dict[str, Decimal], ...]
    model: ev.ModelSet
    deposit: Decimal
    strategies: tuple[Strategy, ...]
    tax_status: str = "taxable"
    rates: tuple[Decimal, Decimal] | None = None
    source: str = ""
    currency: str = "USD"
    #: what the reader should know of the closes (a symbol whose closes stop early, carried since)
    warnings: tuple[str, ...] = ()
    #: (symbol, its declared substitutes): what a harvest may buy in a symbol's place (`folio security substitute`)
    substitutes: tuple[tuple[str, tuple[str, ...]], ...] = ()


@attrs.frozen
class Result:
    """One strategy's run: money in Decimal (from its books), ratios as floats."""

    name: str
    final_value: Decimal
    rebalances: int
    trades: int
    traded: Decimal
    costs: Decimal
    short_term_gain: Decimal
    long_term_gain: Decimal
    wash_sales: int
    tax: Decimal | None
    unrealized: Decimal
    cash: Decimal
    total_return: float
    cagr: float | None  # None for a run shorter than a year (a rate for a year it did not last would mislead)
    volatility: float
    max_drawdown: float
    tracking_error: float
    mean_drift: float
    max_drift: float
    turnover: float  # one way: half the value bought and sold after the first day, a year, over the average value
    values: tuple[Decimal, ...] = attrs.field(repr=False, default=())
    #: (day, mode) of each rebalance after the first day: "full", "contribution" (idle cash put to work) or
    #: "harvest" (losses sold, substitutes bought)
    traded_on: tuple[tuple[dt.date, str], ...] = ()
    #: losses realized by harvests (estimated at the sale, before any wash sale), and how many harvests traded
    harvested: Decimal = ZERO
    harvests: int = 0
    #: what the reader should know of the run (a tracking-error cap not applied for want of closes)
    notes: tuple[str, ...] = ()
    planner: str = "heuristic"


# -- the spec ------------------------------------------------------------------------------------------------
def load_spec(path: str) -> Spec:
    """Read a backtest spec (TOML): `prices` (a CSV file, wide or long, relative to the spec), `start`, `end`,
    `deposit`, `targets` (["SYM=WEIGHT[:ABS][:REL%]", ...]), `cash`, optional `tax_status`, `rates`
    ({short_term, long_term}), and `[[strategy]]` tables: `name`, `lot_method`, and any policy field (`triggers`,
    `calendar`, `min_cash`, `cost_bps`, `whole_shares`, `avoid_short_term`, ...)."""
    where = Path(path)
    try:
        raw = tomllib.loads(where.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: not a TOML file ({e})") from None
    known = {"prices", "start", "end", "deposit", "targets", "cash", "tax_status", "rates", "substitutes", "strategy"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for key in ("prices", "start", "end", "targets", "strategy"):
        if key not in raw:
            raise SpecError(f"{path}: `{key}` is missing")
    try:
        start, end = v.parse_date(str(raw["start"])), v.parse_date(str(raw["end"]))
        if end <= start:
            raise InvalidValue(f"end {end} is not after start {start}")
        deposit = v.positive(_text(raw.get("deposit", "100000")), "deposit")
        targets = tuple(parse_target(str(t)) for t in raw["targets"])
        model = ev.ModelSet(model="backtest", targets=targets, cash=v.non_negative(_text(raw.get("cash", "0")), "cash"))
        check_model(model)
        tax_status = str(raw.get("tax_status", "taxable"))
        if tax_status not in ev.TAX_STATUSES:
            raise InvalidValue(f"tax_status {tax_status!r} must be one of {', '.join(ev.TAX_STATUSES)}")
        if not isinstance(raw["targets"], list):
            raise InvalidValue('targets must be a list, e.g. ["VTI=0.6:0.05", "BND=0.4:0.05"]')
        rates = None
        if "rates" in raw:
            r = raw["rates"]
            if not isinstance(r, dict) or set(r) != {"short_term", "long_term"}:
                raise InvalidValue('rates must be a table of short_term and long_term, e.g. '
                                   'rates = { short_term = "0.37", long_term = "0.20" }')
            rates = (v.non_negative(_text(r["short_term"], "rates.short_term"), "rates.short_term"),
                     v.non_negative(_text(r["long_term"], "rates.long_term"), "rates.long_term"))
        substitutes = _substitutes(raw.get("substitutes", {}), [t.symbol for t in targets])
    except DomainError as e:
        raise SpecError(f"{path}: {e}") from None
    if not isinstance(raw["strategy"], list) or not all(isinstance(x, dict) for x in raw["strategy"]):
        raise SpecError(f"{path}: each strategy is a [[strategy]] table (double brackets), with a name and its policy")
    strategies = tuple(_strategy(path, i, s, rates) for i, s in enumerate(raw["strategy"], 1))
    if not strategies:
        raise SpecError(f"{path}: no [[strategy]]")
    for strategy in strategies:
        if "harvest" in strategy.policy.triggers and tax_status != "taxable":
            raise SpecError(f"{path}: strategy {strategy.name!r}: the harvest trigger needs a taxable account (tax_status "
                            f"is {tax_status}: a loss there saves no tax)")
    names = [s.name for s in strategies]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"{path}: strategy name(s) {', '.join(twice)} given twice")
    prices_path = (where.parent / str(raw["prices"])).resolve()
    try:
        text = prices_path.read_text()
    except OSError as e:
        raise SpecError(f"{path}: prices file {raw['prices']} cannot be read ({e.strerror or e})") from None
    try:
        prices = read_prices(text, str(raw["prices"]))
    except Refused as e:
        raise SpecError(f"{path}: prices file {raw['prices']}: " + "; ".join(
            f"{where}: {why}" if where else why for where, why in e.problems)) from None
    symbols = [t.symbol for t in targets] + sorted({x for _, subs in substitutes for x in subs} - {t.symbol for t in targets})
    currencies = {(p.symbol, p.currency) for p in prices if p.symbol in symbols}
    if len({c for _, c in currencies}) > 1:
        raise SpecError(f"{path}: prices file {raw['prices']} has closes in " + ", ".join(
            f"{c} ({', '.join(sorted(sym for sym, cur in currencies if cur == c))})"
            for c in sorted({c for _, c in currencies})) + ": a backtest values everything in one currency")
    days, closes, warnings = price_table(prices, symbols, start, end, str(raw["prices"]), {t.symbol for t in targets})
    return Spec(days=days, closes=closes, model=model, deposit=deposit, strategies=strategies,
                tax_status=tax_status, rates=rates, source=path, warnings=warnings,
                currency=min((c for _, c in currencies), default="USD"), substitutes=substitutes)


def _substitutes(raw, model: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`substitutes = { JPM = ["BAC"], XOM = ["CVX", "COP"] }`: what a harvest may buy in place of a model symbol."""
    example = 'substitutes = { JPM = ["BAC"] }'
    if not isinstance(raw, dict):
        raise InvalidValue(f"substitutes must be a table of lists, e.g. {example}")
    out = []
    for key, subs in sorted(raw.items()):
        sym = v.symbol(str(key).upper())
        if sym not in model:
            raise InvalidValue(f"substitutes: {sym} is not in the model's targets ({', '.join(model)})")
        items = [subs] if isinstance(subs, str) else subs
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            raise InvalidValue(f"substitutes.{key} must be a list of symbols, e.g. {example}")
        names = tuple(dict.fromkeys(v.symbol(x.upper()) for x in items))
        for x in names:
            ev.SubstituteDeclared(symbol=sym, substitute=x)  # refuses a symbol as its own substitute
            if x in model:  # (found by review: a harvest bought JPM for AAPL and overweighted it, then sold it back)
                raise InvalidValue(f"substitutes: {x} is a target of the model: a substitute of {sym} must be outside it")
        out.append((sym, names))
    return tuple(out)


def _text(value, key: str = "value") -> str:
    """A number from TOML as text: a string as it is, an integer, or a float by its shortest form (0.05 is 0.05)."""
    if isinstance(value, (bool, list, dict)) or value is None:
        raise InvalidValue(f"{key} must be a number, got {value!r}")
    return repr(value) if isinstance(value, float) else str(value)


#: what a backtest cannot simulate: the risk trigger (it measures the account's risk over a window of closes against
#: the model's, which no backtest strategy re-targets)
UNSIMULATED_TRIGGERS = ("risk",)


def _strategy(path: str, i: int, raw: dict, rates: tuple[Decimal, Decimal] | None) -> Strategy:
    name = str(raw.get("name") or f"strategy {i}")
    where = f"{path}: strategy {name!r}"
    unknown = sorted(set(raw) - set(STRATEGY_KEYS) - set(POLICY_KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)} (a policy field, `name` or `lot_method`)")
    kinds = typing.get_type_hints(ev.PolicySet)
    kwargs = {}
    try:
        for key, value in raw.items():
            if key in STRATEGY_KEYS:
                continue
            kind = kinds[key]
            if key in ("triggers", "calendar_dates"):
                items = [value] if isinstance(value, str) else value
                if not isinstance(items, list) or not all(isinstance(x, (str, dt.date)) for x in items):
                    raise InvalidValue(f"{key} must be a list, e.g. {key} = "
                                       + ('["drift", "calendar"]' if key == "triggers" else '["2024-06-28"]'))
                kwargs[key] = tuple(v.parse_date(str(x)) for x in items) if key == "calendar_dates" else tuple(items)
            elif kind in (Decimal, Decimal | None):
                kwargs[key] = v.to_decimal(_text(value, key), key)
            elif kind is bool:
                if not isinstance(value, bool):
                    raise InvalidValue(f"{key} must be true or false, got {value!r}")
                kwargs[key] = value
            elif kind is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InvalidValue(f"{key} must be a whole number, got {value!r}")
                kwargs[key] = value
            else:
                kwargs[key] = str(value)
        kwargs.setdefault("triggers", ())
        policy = ev.PolicySet(account=ACCOUNT, **kwargs)
        for t in policy.triggers:
            if t in UNSIMULATED_TRIGGERS:
                raise InvalidValue(f"the {t} trigger is not simulated by a backtest (use drift, calendar, "
                                   f"calendar-and-threshold, cash, harvest, corporate-action)")
        planner = str(raw.get("planner", "heuristic"))
        if planner not in PLANNERS:
            raise InvalidValue(f"planner {planner!r} must be one of {', '.join(PLANNERS)}")
        if policy.tracking_error_cap is not None and planner != "optimizer":
            raise InvalidValue('tracking_error_cap applies to the optimizer: add planner = "optimizer"')
        if policy.tax_budget is not None and rates is None:
            raise InvalidValue("tax_budget needs the owner's `rates` to estimate a trade's tax")
        lot_method = str(raw.get("lot_method", "fifo"))
        if lot_method not in ev.LOT_METHODS:
            raise InvalidValue(f"lot_method {lot_method!r} must be one of {', '.join(ev.LOT_METHODS)}")
    except (DomainError, ValueError, TypeError) as e:
        raise SpecError(f"{where}: {str(e).removeprefix('PolicySet: ')}") from None
    return Strategy(name=name, policy=policy, lot_method=lot_method, planner=planner)


def price_table(prices, symbols: list[str], start: dt.date, end: dt.date, source: str, model: set[str] | None = None
                ) -> tuple[tuple[dt.date, ...], tuple[dict[str, Decimal], ...], tuple[str, ...]]:
    """The days in [start, end] with a close of any model symbol, from the first on or after `start`, each day with
    the close of every model symbol (one without a close that day keeps its last one); and warnings of closes
    carried long. Every symbol needs a close on or before that first day."""
    series: dict[str, dict[dt.date, Decimal]] = {s: {} for s in symbols}
    for p in prices:
        if p.symbol in series:
            series[p.symbol][p.date] = p.close
    # the days of the model's closes (a substitute's own dates add none: declaring one changes no other strategy)
    days = sorted({d for s in symbols if model is None or s in model for d in series[s] if start <= d <= end})
    if len(days) < 2:
        raise SpecError(f"{source}: no close of {', '.join(symbols)} after the start {start} and by the end {end}: a "
                        f"backtest needs two days or more")
    last: dict[str, Decimal] = {}
    warnings = []
    for s in symbols:
        before = [d for d in series[s] if d <= days[0]]
        if not before:
            first = min(series[s], default=None)
            key = "targets" if model is None or s in model else "substitutes"
            if key == "substitutes" and first is not None:
                warnings.append(f"substitute {s} has no close before {first}: no harvest buys it before then")
                continue  # (found by review: a substitute listed later refused the spec)
            raise SpecError(f"{source}: no close of {s} on or before the first day {days[0]}"
                            + (f" (its first is on {first}: start the backtest then, key `start`, or leave {s} out of "
                               f"`{key}`)" if first else f" (none at all: leave it out of `{key}`)"))
        last[s] = series[s][max(before)]
    closes = []
    for d in days:
        for s in symbols:
            if d in series[s]:
                last[s] = series[s][d]
        closes.append(dict(last))
    # the run is the prices' span within [start, end]: say when it is shorter than asked (found by review: a 1980-2030
    # spec ran 1990-2024 without a word)
    if (days[0] - start).days > 10:
        warnings.append(f"the first close on or after the start {start} is on {days[0]}: the backtest starts then")
    if (end - days[-1]).days > 10:
        warnings.append(f"the last close by the end {end} is on {days[-1]}: the backtest ends then")
    for s in symbols:
        final = max(series[s])
        if (days[-1] - final).days > 10:
            warnings.append(f"{s} has no close after {final}: its last close is carried to {days[-1]}")
    return tuple(days), tuple(closes), tuple(warnings)


# -- running ------------------------------------------------------------------------------------------------
def run(spec: Spec, strategy: Strategy, report: Report | None = None,
        kept: list[NewEvent] | None = None) -> Result:
    """One strategy over the spec's days (see the module's docstring). A trade the books refuse (which the planner
    should never propose) stops the run with the strategy, the day and the books' reason. With `kept`, every event
    is also collected there, to be written as a ledger (`write_ledger`)."""
    books = Books()
    seqs = itertools.count(1)
    account_stream = f"account:{ACCOUNT}"
    day = spec.days[0]

    def book(event: ev.Event, stream: str = account_stream) -> None:
        try:
            books.apply(Recorded(next(seqs), day, stream, event))
        except DomainError as e:
            raise SpecError(f"{spec.source}: strategy {strategy.name!r} on {day}: {e}") from None
        if kept is not None:
            kept.append(NewEvent(stream, event, day, {"actor": OWNER, "source": f"backtest {spec.source}",
                                                      "command_id": f"{strategy.name}:{len(kept) + 1}"}))

    book(ev.AccountOpened(account=ACCOUNT, owner=OWNER, tax_status=spec.tax_status, currency=spec.currency,
                          lot_method=strategy.lot_method, overdraft=False))
    book(ev.CashDeposited(account=ACCOUNT, amount=spec.deposit))
    if spec.rates is not None:
        book(ev.TaxRatesSet(owner=OWNER, short_term=spec.rates[0], long_term=spec.rates[1]), f"owner:{OWNER}")
    book(spec.model, f"model:{spec.model.model}")
    book(ev.ModelAssigned(account=ACCOUNT, model=spec.model.model))
    for symbol, subs in spec.substitutes:
        for sub in subs:
            book(ev.SubstituteDeclared(symbol=symbol, substitute=sub), f"security:{symbol}")
    book(strategy.policy)
    acct = books.accounts[ACCOUNT]
    policy = strategy.policy
    # the first day's investment: at the targets, whatever limits the policy puts on a rebalance
    opening = attrs.evolve(policy, turnover_cap=None, min_trade=ZERO, tax_budget=None)
    target = {t.symbol: t.weight for t in spec.model.targets}
    values, drifts, benchmark, traded_on, notes = [], [], [], [], []
    rebalances = trades = harvests = 0
    traded = costs = harvested = ZERO
    last_check = day
    in_model = {t.symbol for t in spec.model.targets}
    harvesting = "harvest" in policy.triggers
    for i, (day, closes) in enumerate(zip(spec.days, spec.closes)):
        quotes = {s: Quote(price=p, date=day) for s, p in closes.items()}
        mode = light = None
        if i == 0:
            mode = "full"
        elif policy.triggers:
            # triggers read quantities and cash, not lots: the lots are gathered only for a plan
            light = _light(spec, books, day, quotes, policy)
            # as `folio check` sees them: a holding outside the model (a substitute whose restriction has ended),
            # and lots at a loss worth harvesting
            stand_ins = light.stand_ins()
            outside = [f"holds {h.symbol}, which is not in the model" for h in light.holdings
                       if h.symbol not in in_model and h.symbol not in stand_ins]
            found = tax_views.harvest(books, [ACCOUNT], day, lambda s: quote_price(light, s, spec.currency),
                                      min_loss=max(policy.harvest_min_loss, Decimal("0.01")))[0] if harvesting else []
            fired = triggers(light, drift(light), last_rebalance=last_check, corporate_actions=outside,
                             harvestable=[c.lot_id for c in found])
            if calendar_dates(policy, last_check, day):
                last_check = day  # a scheduled date is used up by its check
            if fired:
                kinds = {t.kind for t in fired}
                if kinds <= {"cash", "harvest"} and "harvest" in kinds:
                    mode = "harvest"  # (idle cash waits for the next rebalance: a harvest buys substitutes only)
                elif kinds == {"cash"} and all("above" in t.reason for t in fired):
                    mode = "contribution"
                else:
                    mode = "full"
        if mode is not None:
            inputs = inputs_of(books, ACCOUNT, day, books.last_seq, quotes, spec.model, 1,
                               opening if i == 0 else policy, 0)
            if mode == "full" and i > 0 and strategy.planner == "optimizer":
                optimized = _optimized(spec, strategy, books, inputs, i, notes)
                orders = optimized.orders if optimized is not None else ()
            else:
                orders = plan(inputs, mode).orders
            for o in orders:
                fee = cost_of(inputs, o.quantity, o.price)
                if mode == "harvest" and o.side == "sell":
                    harvested -= sum((l.gain for l in o.lots if l.gain < 0), ZERO)
                book(_trade(o, fee))
                costs += fee
                if i > 0:
                    traded += o.value
            if orders and i > 0:
                rebalances += mode != "harvest"
                harvests += mode == "harvest"
                trades += len(orders)
                traded_on.append((day, mode))
        held = {s: sum((l.quantity for l in lots), ZERO) for s, lots in acct.lots.items()}
        value = acct.cash + sum((q * closes[s] for s, q in held.items()), ZERO)
        values.append(value)
        if value > 0:
            # a substitute standing in for a model symbol (bought by a harvest, while the symbol may not be bought
            # back) counts as that symbol, as `folio drift` counts it
            stand_ins = {}
            if spec.substitutes:  # (the triggers' view serves when the day traded nothing)
                stand_ins = (light if light is not None and mode is None else
                             _light(spec, books, day, quotes, policy)).stand_ins()
            worth = {s: held.get(s, ZERO) * closes[s] for s in target}
            for x, of in stand_ins.items():
                worth[of] += held[x] * closes[x]
            weights = {s: worth[s] / value for s in target}
            off = sum((abs(weights[s] - w) for s, w in target.items()), ZERO) + abs(acct.cash / value - spec.model.cash)
            drifts.append(float(off) / 2)
        if i > 0:
            prev = spec.closes[i - 1]
            benchmark.append(sum(float(w) * (float(closes[s]) / float(prev[s]) - 1) for s, w in target.items()))
        if report is not None and (i % 250 == 0 or i == len(spec.days) - 1):
            report(f"backtesting {strategy.name}", i + 1, len(spec.days))
    books.settle()
    result = _result(spec, strategy, books, values, drifts, benchmark, rebalances, trades, traded, costs)
    return attrs.evolve(result, traded_on=tuple(traded_on), harvested=harvested, harvests=harvests,
                        notes=tuple(dict.fromkeys(notes)), planner=strategy.planner)


def _light(spec: Spec, books: Books, day: dt.date, quotes: dict[str, Quote], policy: ev.PolicySet) -> Inputs:
    """What the triggers read: quantities, cash, and the restrictions of recent loss sales (a substitute held then
    stands in for its symbol), not the lots, which are gathered only for a plan."""
    acct = books.accounts[ACCOUNT]
    restricted: dict[str, dt.date] = {}  # (with substitutes or not: a symbol waiting to be bought back fires nothing)
    for r in tax_views.restrictions(books, OWNER, day):
        for s in r.symbols:
            restricted[s] = max(restricted.get(s, r.restricted_until), r.restricted_until)
    return Inputs(account=ACCOUNT, as_of=day, as_of_seq=books.last_seq, cash=acct.cash,
                  holdings=tuple(Holding(s, sum((l.quantity for l in lots), ZERO), ())
                                 for s, lots in sorted(acct.lots.items())),
                  prices=quotes, model=spec.model, model_version=1, policy=policy, policy_seq=0,
                  lot_method=acct.lot_method, restricted=restricted, substitutes=dict(spec.substitutes))


def _optimized(spec: Spec, strategy: Strategy, books: Books, inputs: Inputs, i: int, notes: list[str]):
    """The optimizer's full rebalance on day `i` (as `folio propose --mode optimal`): its tracking-error cap measured
    on the closes of the year up to that day (none before there are enough of them: said in `notes`)."""
    from commands.optimal import RISK_WINDOW, wash_risk_symbols
    from domain.rebalancing import optimal, risk
    from projections.risk import MIN_OBSERVATIONS

    cov = None
    if strategy.policy.tracking_error_cap is not None:
        if i < MIN_OBSERVATIONS:  # (as `folio propose`: MIN_OBSERVATIONS returns at least, from one more close)
            notes.append(f"the tracking-error cap needs {MIN_OBSERVATIONS + 1} closes: not applied before "
                         + (f"{spec.days[MIN_OBSERVATIONS]}" if len(spec.days) > MIN_OBSERVATIONS else
                            f"the end (the run has {len(spec.days)})"))
        else:
            assets = optimal.build(inputs).assets
            window = spec.closes[max(0, i - RISK_WINDOW):i + 1]
            closes = np.array([[float(day[s]) for s in assets] for day in window])
            cov = risk.covariance(tuple(assets), risk.returns(closes)).matrix
    try:
        return optimal.optimize(inputs, cov=cov, wash_risk=wash_risk_symbols(books, inputs))[0]
    except optimal.Infeasible as e:  # as a reviewer would reject a proposal that cannot be made: no trade that day
        notes.append(f"on {inputs.as_of} the optimizer found no plan within every constraint ({e}): no trade")
        return None
    except DomainError as e:
        raise SpecError(f"{spec.source}: strategy {strategy.name!r} on {inputs.as_of}: the optimizer: {e}") from None


def write_ledger(path: str, spec: Spec, kept: list[NewEvent]) -> int:
    """A strategy's events as a Folio ledger at `path` (a new file), with the closes it traded at in its prices
    table: `folio --db PATH lots BACKTEST`, `gains`, `drift`, `audit verify` then read its books. Returns the
    events written."""
    if Path(path).exists():
        raise SpecError(f"{path} already exists: a backtest writes its ledgers to new files")
    store = EventStore.create(path)
    try:
        store.append(kept)
        add_prices(store, [Price(s, day, close, spec.currency, f"backtest {spec.source}")
                           for day, closes in zip(spec.days, spec.closes) for s, close in closes.items()])
    finally:
        store.conn.close()
    return len(kept)


def _trade(o: Order, fees: Decimal) -> ev.TradeExecuted:
    """The order as a trade: a sale relieves exactly the lots the plan named."""
    lots = tuple(ev.LotPick(lot=l.lot_id, quantity=l.quantity) for l in o.lots) if o.side == "sell" else ()
    return ev.TradeExecuted(account=ACCOUNT, symbol=o.symbol, side=o.side, quantity=o.quantity, price=o.price,
                            fees=fees, lots=lots)


def estimated_tax(gains, rates: tuple[Decimal, Decimal]) -> Decimal:
    """Tax on realized gains, year by year: each year's short- and long-term gains and losses netted, a net loss of
    one kind set against a net gain of the other, what is left of a loss carried forward with its kind; the gains
    taxed at the (short, long) rates. (The deduction of up to 3,000 of a net loss from ordinary income is not
    counted: it depends on the rest of the return.)"""
    by_year: dict[int, list[Decimal]] = {}
    for g in gains:
        year = by_year.setdefault(g.sold.year, [ZERO, ZERO])
        year[0 if g.term == "short" else 1] += g.gain
    tax, carry_short, carry_long = ZERO, ZERO, ZERO
    for year in sorted(by_year):
        short, long_ = by_year[year][0] + carry_short, by_year[year][1] + carry_long
        if short < 0 < long_ or long_ < 0 < short:  # one kind's net loss against the other's net gain
            net = short + long_
            if net >= 0:  # the loss used up: what is left is a gain of the kind that had the gain
                short, long_ = (ZERO, net) if long_ > 0 else (net, ZERO)
            else:  # the gain used up: what is left is a loss of the kind that had the loss
                short, long_ = (net, ZERO) if short < 0 else (ZERO, net)
        tax += max(short, ZERO) * rates[0] + max(long_, ZERO) * rates[1]
        carry_short, carry_long = min(short, ZERO), min(long_, ZERO)
    return v.round_cents(tax)


def _result(spec: Spec, strategy: Strategy, books: Books, values: list[Decimal], drifts: list[float],
            benchmark: list[float], rebalances: int, trades: int, traded: Decimal, costs: Decimal) -> Result:
    acct = books.accounts[ACCOUNT]
    short = sum((g.gain for g in acct.gains if g.term == "short"), ZERO)
    long_ = sum((g.gain for g in acct.gains if g.term == "long"), ZERO)
    tax = None if spec.rates is None or spec.tax_status != "taxable" else estimated_tax(acct.gains, spec.rates)
    final = spec.closes[-1]
    unrealized = sum((l.quantity * final[l.symbol] - l.basis for l in acct.open_lots()), ZERO)
    # from the deposit: the first day's costs are the strategy's too
    path = [spec.deposit, *values]
    returns = [float(b / a) - 1 for a, b in zip(path, path[1:]) if a > 0]
    years = max((spec.days[-1] - spec.days[0]).days, 1) / 365.25
    per_year = (len(spec.days) - 1) / years  # the closes' own frequency (daily, weekly, monthly...)
    growth = float(values[-1] / spec.deposit)
    peak, worst = 0.0, 0.0
    for x in path:
        peak = max(peak, float(x))
        worst = max(worst, 1 - float(x) / peak if peak > 0 else 0.0)
    active = [r - b for r, b in zip(returns[1:], benchmark)]
    average = sum(float(x) for x in values[1:]) / max(len(values) - 1, 1)
    return Result(
        name=strategy.name, final_value=v.round_cents(values[-1]), rebalances=rebalances, trades=trades, traded=traded,
        costs=costs, short_term_gain=short, long_term_gain=long_, wash_sales=sum(1 for g in acct.gains if g.code == "W"),
        tax=tax, unrealized=v.round_cents(unrealized), cash=acct.cash, total_return=growth - 1,
        cagr=(growth ** (1 / years) - 1 if growth > 0 else -1.0) if years >= 1 else None,
        volatility=_sd(returns[1:]) * math.sqrt(per_year), max_drawdown=worst,
        tracking_error=_sd(active) * math.sqrt(per_year),
        mean_drift=sum(drifts) / len(drifts) if drifts else 0.0, max_drift=max(drifts, default=0.0),
        turnover=float(traded) / 2 / average / years if average > 0 else 0.0, values=tuple(values))


def _sd(xs: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))

