"""Risk read side: price histories from the prices table (never past the as-of date), and account risk."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import attrs
import numpy as np

from domain.rebalancing import risk
from domain.rebalancing.model import Inputs
from ledger.prices import prices_version
from ledger.store import EventStore
from projections.pricing import spinoffs, splits

MIN_OBSERVATIONS = 20


@attrs.frozen
class History:
    symbols: tuple[str, ...]
    dates: tuple[str, ...]
    closes: np.ndarray  # days x assets

    @property
    def returns(self) -> np.ndarray:
        return risk.returns(self.closes)


def price_history(store: EventStore, symbols: Sequence[str], as_of: dt.date, window: int,
                  known_at: str | None = None) -> History:
    """The last `window` + 1 closes on or before `as_of` on which every symbol has a price (latest row per date)."""
    symbols = tuple(sorted(set(symbols)))
    if not symbols:
        raise risk.RiskError("no assets to estimate risk for")
    # Read a generous stretch before the as-of date first (a window of trading days spans ~1.45 times as many
    # calendar days); only when it holds too few common dates read the whole history. The last window + 1
    # common dates are the same either way: those of the stretch are a suffix of the whole history's.
    since = as_of - dt.timedelta(days=int(window * 2.2) + 30)
    series = _closes(store, symbols, as_of, known_at, since)
    if len(_common(series)) < window + 1:
        series = _closes(store, symbols, as_of, known_at, None)
    missing = [s for s in symbols if not series[s]]
    if missing:
        one = len(missing) == 1
        raise risk.RiskError(f"{', '.join(missing)} {'has' if one else 'have'} no price history on or before {as_of}: "
                             f"import {'its' if one else 'their'} prices first (`folio prices import`)")
    common = _common(series)
    if len(common) < MIN_OBSERVATIONS + 1:
        short = min(symbols, key=lambda s: len(series[s]))
        raise risk.RiskError(
            f"a risk estimate needs at least {MIN_OBSERVATIONS + 1} common daily closes on or before {as_of}; "
            f"found {len(common)} (fewest: {short} with {len(series[short])})")
    # fewer closes than the window asks for, but enough to estimate: the reports say how many were used
    dates = common[-(window + 1):]
    closes = np.array([[series[s][d] for s in symbols] for d in dates])
    # closes in the shares of `as_of`: a split in the window is no return (a 2:1 split would read as -50%),
    known_seq = store.seq_known_at(known_at) if known_at is not None else None
    first = dt.date.fromisoformat(dates[0])
    for j, s in enumerate(symbols):
        # and a spinoff in it is no loss: the parent's closes before it are cut to the part of the value it kept
        later = splits(store, s, first, as_of, known_seq) + [
            (day, 1 / part) for day, part in spinoffs(store, s, first, as_of, known_seq)]
        for i, d in enumerate(dates):
            factor = 1.0
            for day, ratio in later:
                if day.isoformat() > d:
                    factor *= float(ratio)
            if factor != 1.0:
                closes[i, j] /= factor
    return History(symbols=symbols, dates=tuple(dates), closes=closes)


def _closes(store: EventStore, symbols: Sequence[str], as_of: dt.date, known_at: str | None,
            since: dt.date | None) -> dict[str, dict[str, float]]:
    """Each symbol's closes, kept in the store's memo: `check --all` asks for the same symbols' histories account
    after account; a price recorded since changes the key (`prices_version`)."""
    last = prices_version(store)
    memo = store.memo.setdefault("closes", {})
    if len(memo) > 5_000:
        memo.clear()
    series: dict[str, dict[str, float]] = {}
    for s in symbols:
        key = (last, s, as_of, known_at, since)
        if key not in memo:
            memo[key] = _read_closes(store, s, as_of, known_at, since)
        series[s] = memo[key]
    return series


def _read_closes(store: EventStore, s: str, as_of: dt.date, known_at: str | None, since: dt.date | None) -> dict[str, float]:
    sql = "SELECT date, close FROM prices WHERE symbol = ? AND date <= ?"
    args: list = [s, as_of.isoformat()]
    if since is not None:
        sql += " AND date >= ?"
        args.append(since.isoformat())
    if known_at:
        sql += " AND recorded_at <= ?"
        args.append(known_at)
    rows = store.conn.execute(sql + " ORDER BY date, id", args).fetchall()
    return {d: float(c) for d, c in rows}  # the latest row of a date wins; float() of the stored text


def _common(series: dict[str, dict[str, float]]) -> list[str]:
    return sorted(set.intersection(*(set(v) for v in series.values())))


@attrs.frozen
class AccountRisk:
    symbols: tuple[str, ...]
    weights: np.ndarray
    model_weights: np.ndarray
    cov: risk.Covariance
    volatility: float
    model_volatility: float
    tracking_error: float
    contributions: np.ndarray
    var_hist: float
    cvar_hist: float
    var_param: float
    cvar_param: float
    confidence: float
    window: tuple[str, str, int]


def account_risk(store: EventStore, inputs: Inputs, window: int, confidence: float, *, shrink: bool = False) -> AccountRisk:
    """Volatility, VaR/CVaR, tracking error to the model and contributions, over the window ending at as-of."""
    targets = {t.symbol: float(t.weight) for t in inputs.model.targets}
    held = inputs.held()
    symbols = tuple(sorted(set(targets) | set(held)))
    hist = price_history(store, symbols, inputs.as_of, window)
    cov = risk.covariance(hist.symbols, hist.returns, shrink=shrink)
    total = float(inputs.total_value())
    w = np.array([float(held[s].quantity * inputs.price(s)) / total if s in held else 0.0 for s in hist.symbols])
    wm = np.array([targets.get(s, 0.0) for s in hist.symbols])
    port = hist.returns @ w
    var_h, cvar_h = risk.historical_var_cvar(port, confidence)
    var_p, cvar_p = risk.parametric_var_cvar(float(port.mean()), float(port.std(ddof=1)), confidence)
    return AccountRisk(symbols=hist.symbols, weights=w, model_weights=wm, cov=cov,
                       volatility=risk.volatility(w, cov.matrix), model_volatility=risk.volatility(wm, cov.matrix),
                       tracking_error=risk.tracking_error(w, wm, cov.matrix), contributions=risk.contributions(w, cov.matrix),
                       var_hist=var_h, cvar_hist=cvar_h, var_param=var_p, cvar_param=cvar_p, confidence=confidence,
                       window=(hist.dates[0], hist.dates[-1], len(hist.dates) - 1))
