"""Risk analytics and risk-based targets, proved with hand-checked numbers.

Conventions (what every figure below assumes):
- daily returns are simple: r_t = P_t / P_(t-1) - 1;
- the sample covariance divides by T - 1 (ddof=1); Ledoit-Wolf works, as in the 2004 paper, on the
  demeaned returns' second moment divided by T;
- covariance, volatility and tracking error are annual: the daily covariance times 252, so a volatility
  is sqrt(252) times the daily standard deviation;
- VaR and CVaR are one-day, not annualised, positive losses as fractions of value. Historical VaR is the
  confidence quantile of the losses (the smallest loss with at least that share of days at or below it);
  historical CVaR is Rockafellar-Uryasev's VaR + mean((loss - VaR)+) / (1 - confidence), the mean of the worst
  (1 - confidence) share of days (the quantity the min-CVaR linear program minimizes). Parametric figures
  are normal, from the sample mean and the ddof=1 standard deviation of the portfolio's daily returns.

The hand-checked series ("tiny"): three assets whose daily returns repeat a five-day cycle

    AAA  100  125  100  100  125  100      r = .25 -.20  0   .25 -.20    mean .02
    BBB  100  100  125  100  125  100      r =  0   .25 -.20 .25 -.20    mean .02
    CCC   50 62.5 62.5   50   50   50      r = .25  0  -.20  0    0      mean .01

Deviations from the mean: AAA .23 -.22 -.02 .23 -.22; BBB -.02 .23 -.22 .23 -.22; CCC .24 -.01 -.21 -.01 -.01.
Their scatter (sum over the five days of products of deviations), worked out term by term:

    AA = .0529+.0484+.0004+.0529+.0484 = .203          AB = -.0046-.0506+.0044+.0529+.0484 = .0505
    BB = .0004+.0529+.0484+.0529+.0484 = .203          AC =  .0552+.0022+.0042-.0023+.0022 = .0615
    CC = .0576+.0001+.0441+.0001+.0001 = .102          BC = -.0048-.0023+.0462-.0023+.0022 = .039

One cycle (6 prices) gives the sample covariance SCATTER / 4; the CLI ledger has four cycles (21 closes,
the fewest a risk estimate accepts), whose scatter is 4 x SCATTER, so its covariance is 4 x SCATTER / 19.

Real prices (fixtures/prices/stock_prices_1990_2024.csv, PyPortfolioOpt, MIT) drive the optimality proofs.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import hashlib
import json
import math
import shlex
import sqlite3
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.optimize import minimize

from commands.cli import cli
from domain.rebalancing import risk, targets
from ledger import codec
from tests.cli_helpers import count, js, out

# -- the hand-checked series ----------------------------------------------------------------------------
TINY_CYCLE = {"AAA": ["100", "125", "100", "100", "125"],
              "BBB": ["100", "100", "125", "100", "125"],
              "CCC": ["50", "62.5", "62.5", "50", "50"]}
SCATTER = np.array([[.203, .0505, .0615],
                    [.0505, .203, .039],
                    [.0615, .039, .102]])
W = np.array([.4, .4, .2])  # the CLI account: 40 AAA @100, 40 BBB @100, 40 CCC @50 = 4000 + 4000 + 2000
WM = np.array([.5, .3, .2])  # its model
# SCATTER @ W: AAA .203*.4 + .0505*.4 + .0615*.2 = .1137; BBB .0505*.4 + .203*.4 + .039*.2 = .1092;
#              CCC .0615*.4 + .039*.4 + .102*.2 = .0606;  W' SCATTER W = .4*.1137 + .4*.1092 + .2*.0606 = .10128
# W - WM = (-.1, .1, 0): (W-WM)' SCATTER (W-WM) = .01*.203 + .01*.203 - 2*.01*.0505 = .00305
# WM' SCATTER WM = .25*.203 + .09*.203 + .04*.102 + 2(.15*.0505 + .1*.0615 + .06*.039) = .10523
# the portfolio's daily returns .4 AAA + .4 BBB + .2 CCC: .15, .02, -.12, .20, -.16 (mean .09 / 5 = .018);
# deviations .132 .002 -.138 .182 -.178, squares adding up to .10128 (= W' SCATTER W, as they must)
PORTFOLIO = [.15, .02, -.12, .20, -.16]
Z95 = 1.6448536269514722  # the standard normal's 95% quantile
PHI95 = math.exp(-Z95 ** 2 / 2) / math.sqrt(2 * math.pi)  # its density there, 0.10313564...


def tiny_closes(days: int = 6) -> np.ndarray:
    return np.array([[float(TINY_CYCLE[s][i % 5]) for s in sorted(TINY_CYCLE)] for i in range(days)])


# -- real prices ---------------------------------------------------------------------------------------
REAL_CSV = Path(__file__).resolve().parent.parent / "fixtures" / "prices" / "stock_prices_1990_2024.csv"
REAL_SYMBOLS = ("AAPL", "AMD", "BAC", "GE", "JPM", "PFE", "T", "WMT", "XOM")


@functools.cache
def real_rows() -> tuple[dict, ...]:
    with open(REAL_CSV, newline="") as f:
        return tuple(csv.DictReader(f))


@functools.cache
def real_returns(symbols: tuple[str, ...] = REAL_SYMBOLS, first: str = "2022-06-01", last: str = "2024-06-28"):
    closes = np.array([[float(r[s]) for s in symbols] for r in real_rows() if first <= r["date"] <= last])
    return risk.returns(closes)


@functools.cache
def real_cov(shrink: bool = False) -> np.ndarray:
    return risk.covariance(REAL_SYMBOLS, real_returns(), shrink=shrink).matrix


def index(symbol: str) -> int:
    return REAL_SYMBOLS.index(symbol)


# -- 1. risk figures on the hand-checked series -----------------------------------------------------------
def test_daily_returns_are_simple_returns():
    r = risk.returns(tiny_closes())
    assert r == pytest.approx(np.array([[.25, 0, .25], [-.2, .25, 0], [0, -.2, -.2], [.25, .25, 0], [-.2, -.2, 0]]),
                              abs=1e-15)


def test_sample_covariance_divides_by_t_minus_one_and_is_annualised_by_252():
    r = risk.returns(tiny_closes())
    assert risk.sample_cov(r) == pytest.approx(SCATTER / 4, rel=1e-12)  # five returns: ddof=1 divides by 4
    cov = risk.covariance(("AAA", "BBB", "CCC"), r)
    assert (cov.method, cov.shrinkage, cov.observations, cov.note) == ("sample", 0.0, 5, "")
    assert cov.matrix == pytest.approx(SCATTER / 4 * 252, rel=1e-12)


def ledoit_wolf_2004(r: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit and Wolf (2004), 'A well-conditioned estimator for large-dimensional covariance matrices',
    section 3.3, written from the paper with one N x N matrix per day (the code under test avoids those):
    <A, B> = tr(A B') / N; m = <S, I>; d2 = ||S - m I||^2; b2 = min(sum_k ||x_k x_k' - S||^2 / T^2, d2);
    S* = (b2 / d2) m I + (1 - b2 / d2) S, with S the demeaned returns' second moment over T."""
    t, n = r.shape
    x = r - r.mean(axis=0)
    s = sum(np.outer(xk, xk) for xk in x) / t
    norm2 = lambda a: float(np.trace(a @ a.T)) / n  # noqa: E731
    m = float(np.trace(s)) / n
    d2 = norm2(s - m * np.eye(n))
    b2 = min(sum(norm2(np.outer(xk, xk) - s) for xk in x) / t ** 2, d2)
    return b2 / d2 * m * np.eye(n) + (1 - b2 / d2) * s, b2 / d2


@pytest.mark.parametrize("case", ["tiny", "real", "fewer returns than assets"])
def test_ledoit_wolf_matches_an_independent_implementation_of_the_2004_formula(case):
    r = {"tiny": lambda: risk.returns(tiny_closes()),
         "real": lambda: real_returns(),
         "fewer returns than assets": lambda: real_returns()[-6:]}[case]()
    expected, intensity = ledoit_wolf_2004(r)
    got, got_intensity = risk.ledoit_wolf(r)
    assert 0 < got_intensity <= 1
    assert got_intensity == pytest.approx(intensity, rel=1e-10)
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-18)
    shrunk = risk.covariance(tuple(f"S{i}" for i in range(r.shape[1])), r, shrink=True)
    assert (shrunk.method, shrunk.note) == ("ledoit-wolf", "")
    assert shrunk.matrix == pytest.approx(expected * 252, rel=1e-10, abs=1e-18)


def test_volatility_contributions_and_tracking_error_on_the_tiny_series():
    cov = risk.covariance(("AAA", "BBB", "CCC"), risk.returns(tiny_closes())).matrix
    # daily variance .10128 / 4 = .02532, annual .02532 * 252 = 6.38064, volatility sqrt(6.38064) = 2.52599...
    vol = risk.volatility(W, cov)
    assert vol == pytest.approx(math.sqrt(6.38064), rel=1e-12)
    # the same as sqrt(252) x the ddof=1 daily standard deviation of the portfolio's returns
    assert vol == pytest.approx(math.sqrt(252) * np.std(PORTFOLIO, ddof=1), rel=1e-12)
    # contribution_i = w_i (C w)_i / vol: .4 x .1137, .4 x .1092, .2 x .0606 (= .04548, .04368, .01212), / 4 x 252 / vol
    c = risk.contributions(W, cov)
    assert c == pytest.approx(np.array([.04548, .04368, .01212]) / 4 * 252 / vol, rel=1e-12)
    assert c.sum() == pytest.approx(vol, rel=1e-12)
    # tracking error to the model (.5, .3, .2): sqrt(.00305 / 4 x 252) = sqrt(.19215) = .43835...
    assert risk.tracking_error(W, WM, cov) == pytest.approx(math.sqrt(.19215), rel=1e-12)
    assert risk.tracking_error(W, W, cov) == 0


@pytest.mark.parametrize("confidence, var, cvar", [
    # losses sorted: -.20 -.15 -.02 .12 .16
    (0.95, .16, .16),  # .95 x 5 = 4.75 -> the 5th loss; the worst 5% of five days is (part of) the worst one
    (0.80, .12, .16),  # .80 x 5 = 4 -> the 4th; CVaR .12 + (.16 - .12) / (.2 x 5) = .16: the worst day
    (0.70, .12, .12 + .04 / 1.5),  # 3.5 -> the 4th; CVaR .12 + .04 / (.3 x 5): the worst day and half the next
    (0.60, -.02, .14),  # 3 -> the 3rd; CVaR -.02 + (.14 + .18) / 2 = .14, the mean of the two worst (.12, .16)
])
def test_historical_var_and_cvar_on_the_tiny_portfolio(confidence, var, cvar):
    got = risk.historical_var_cvar(np.array(PORTFOLIO), confidence)
    assert got == pytest.approx((var, cvar), abs=1e-12)


@pytest.mark.parametrize("n, var, cvar", [
    (20, .019, .020),  # 19 of 20 days at or below the VaR: the 19th loss; the worst 5% is 1 day, the 20th
    (30, .029, .029 + .001 / 1.5),  # 28.5 -> the 29th; the worst 1.5 days: the 30th and half the 29th
    (40, .038, .0395),  # the 38th; the mean of the two worst, .039 and .040
])
def test_historical_var_and_cvar_at_95_percent_take_the_worst_5_percent_of_days(n, var, cvar):
    losses = np.array([i / 1000 for i in range(1, n + 1)])  # losses .001 ... n/1000, returns their negatives
    rng = np.random.default_rng(7)
    got = risk.historical_var_cvar(-rng.permutation(losses), 0.95)
    assert got == pytest.approx((var, cvar), abs=1e-12)


def test_historical_var_does_not_slip_a_day_on_float_rounding():
    # .545 x 200 is 109.00000000000001 in floats: the 109th loss, not the 110th
    losses = np.arange(1, 201) / 1000
    var, cvar = risk.historical_var_cvar(-losses, 0.545)
    assert var == pytest.approx(.109, abs=1e-12)
    assert cvar == pytest.approx(losses[109:].sum() / 91, abs=1e-12)  # the worst 45.5% of 200 days: 91 days


def test_parametric_var_and_cvar_at_95_percent_on_the_tiny_portfolio():
    mean, sd = .018, math.sqrt(.10128 / 4)  # the portfolio's daily mean, ddof=1 standard deviation .15912...
    var, cvar = risk.parametric_var_cvar(mean, sd, 0.95)
    assert var == pytest.approx(-.018 + Z95 * sd, rel=1e-12)  # .24374...
    assert cvar == pytest.approx(-.018 + sd * PHI95 / .05, rel=1e-12)  # .31022...


# -- 2. minimum volatility: the KKT conditions, on real prices ------------------------------------------------
def assert_kkt(w, cov, lo, hi, budget, *, tol=1e-6):
    """w minimizes w'Cw over sum(w) = budget, lo <= w <= hi: feasible, and the marginal risks (Cw)_i are equal
    (to lambda) for assets strictly inside their bounds, >= lambda at a lower bound, <= lambda at an upper one.
    Returns how many assets are at their lower bound, strictly inside, at their upper bound."""
    assert w.sum() == pytest.approx(budget, abs=1e-12)
    assert np.all(w >= lo - 1e-12) and np.all(w <= hi + 1e-12)
    g = cov @ w
    at_lo, at_hi = w <= lo + 1e-9, w >= hi - 1e-9
    free = ~(at_lo | at_hi)
    assert free.any()
    lam = g[free].mean()
    assert np.all(np.abs(g[free] - lam) <= tol * lam), g[free] / lam - 1
    assert np.all(g[at_lo & ~at_hi] >= lam * (1 - tol)), g[at_lo] / lam - 1
    assert np.all(g[at_hi & ~at_lo] <= lam * (1 + tol)), g[at_hi] / lam - 1
    return int(at_lo.sum()), int(free.sum()), int(at_hi.sum())


def slsqp_min_var(cov, lo, hi, budget):
    res = minimize(lambda w: w @ cov @ w, np.full(len(lo), budget / len(lo)), jac=lambda w: 2 * cov @ w,
                   bounds=list(zip(lo, hi)), constraints=[{"type": "eq", "fun": lambda w: w.sum() - budget}],
                   method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    return res.x


def bounds_of(budget: float, **box) -> tuple[np.ndarray, np.ndarray, float]:
    lo, hi = np.zeros(len(REAL_SYMBOLS)), np.ones(len(REAL_SYMBOLS))
    for s, (a, b) in box.items():
        lo[index(s)], hi[index(s)] = a, b
    return lo, hi, budget


MIN_VOL_CASES = {
    "long only": bounds_of(1.0),
    "a floor and a cap that bind": bounds_of(1.0, AMD=(.05, 1), WMT=(0, .2)),
    "a cash target of 10% and 20% caps": bounds_of(.9, **{s: (0, .2) for s in REAL_SYMBOLS}),
    "a fixed weight": bounds_of(1.0, GE=(.15, .15)),
}


@pytest.mark.parametrize("shrink", [False, True], ids=["sample", "ledoit-wolf"])
@pytest.mark.parametrize("case", MIN_VOL_CASES)
def test_min_vol_weights_satisfy_the_kkt_conditions(case, shrink):
    lo, hi, budget = MIN_VOL_CASES[case]
    cov = real_cov(shrink)
    result = targets.min_vol(cov, lo, hi, budget)
    assert result.status == "optimal"
    n_lo, n_free, n_hi = assert_kkt(result.weights, cov, lo, hi, budget)
    if case == "a floor and a cap that bind":  # the proof is not vacuous: every kind of asset is there
        assert result.weights[index("AMD")] == .05 and result.weights[index("WMT")] == .2
        assert n_lo >= 2 and n_hi >= 1 and n_free >= 2
    # an independent solver finds nothing lower
    other = slsqp_min_var(cov, lo, hi, budget)
    assert result.weights @ cov @ result.weights <= other @ cov @ other + 1e-12


def test_min_vol_on_the_tiny_series_is_the_closed_form_when_no_bound_binds():
    # no bound binds, so w = C^-1 1 / (1' C^-1 1): .15326, .24242, .60431
    cov = risk.covariance(("AAA", "BBB", "CCC"), risk.returns(tiny_closes())).matrix
    x = np.linalg.solve(SCATTER, np.ones(3))
    result = targets.min_vol(cov, np.zeros(3), np.ones(3), 1.0)
    assert result.weights == pytest.approx(x / x.sum(), rel=1e-12)


# -- 3. risk parity -----------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [1.0, 0.9])
@pytest.mark.parametrize("shrink", [False, True], ids=["sample", "ledoit-wolf"])
def test_risk_parity_contributions_are_equal(budget, shrink):
    cov = real_cov(shrink)
    n = len(REAL_SYMBOLS)
    result = targets.risk_parity(cov, np.zeros(n), np.ones(n), budget)
    assert result.status == "optimal"
    assert result.weights.sum() == pytest.approx(budget, abs=1e-12)
    assert np.all(result.weights > 0)
    c = risk.contributions(result.weights, cov)
    assert c.max() - c.min() <= 1e-6 * c.mean()
    assert c.max() - c.min() <= 1e-6  # also in absolute terms (contributions here are about .017)
    assert c.sum() == pytest.approx(risk.volatility(result.weights, cov), rel=1e-12)


def test_risk_parity_with_binding_bounds_stays_within_them_and_says_so():
    cov = real_cov()
    n = len(REAL_SYMBOLS)
    lo, hi = np.zeros(n), np.full(n, .15)  # unbounded, WMT would take more than 15%
    result = targets.risk_parity(cov, lo, hi, 1.0)
    assert "bounds bind" in result.solver
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(result.weights >= lo - 1e-12) and np.all(result.weights <= hi + 1e-12)


# -- 4. target volatility and minimum CVaR --------------------------------------------------------------
def random_portfolios(n: int, count: int, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(n, .5), size=count)


def test_target_vol_hits_the_target_with_the_highest_expected_return():
    cov, r = real_cov(), real_returns()
    n = len(REAL_SYMBOLS)
    lo, hi = np.zeros(n), np.full(n, .4)
    mean = r.mean(axis=0) * 252
    floor = targets.min_vol(cov, lo, hi, 1.0).weights
    # 17.4%: above the minimum (13.9%), below the 28.9% of the highest-return portfolio within the bounds
    target = 1.25 * risk.volatility(floor, cov)
    result = targets.target_vol(cov, mean, target, lo, hi, 1.0)
    assert result.status == "optimal"
    w = result.weights
    assert risk.volatility(w, cov) == pytest.approx(target, rel=1e-6)
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(w >= lo) and np.all(w <= hi)
    assert mean @ w > mean @ floor
    # no random portfolio within the bounds and the target earns more
    others = random_portfolios(n, 4000)
    others = others[(others <= .4).all(axis=1)]
    vols = np.sqrt(np.einsum("ki,ij,kj->k", others, cov, others))
    assert (vols <= target).sum() > 100
    assert (others[vols <= target] @ mean).max() <= mean @ w + 1e-9


def test_target_vol_above_what_the_best_return_needs_says_the_target_is_not_reached():
    cov, r = real_cov(), real_returns()
    n = len(REAL_SYMBOLS)
    result = targets.target_vol(cov, r.mean(axis=0) * 252, 5.0, np.zeros(n), np.ones(n), 1.0)
    vol = risk.volatility(result.weights, cov)
    assert vol < 5.0
    assert result.status == f"optimal; volatility {vol:.2%} is below the target: the highest expected return within the bounds"


@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_min_cvar_has_the_lowest_cvar_on_its_scenarios(confidence):
    cov, r = real_cov(), real_returns()
    n = len(REAL_SYMBOLS)
    lo, hi = np.zeros(n), np.ones(n)
    result = targets.min_cvar(r, confidence, lo, hi, 1.0)
    assert result.status == "optimal"
    w = result.weights
    assert w.sum() == pytest.approx(1.0, abs=1e-9) and np.all(w >= -1e-12)
    best = risk.historical_var_cvar(r @ w, confidence)[1]
    rivals = {"min-vol": targets.min_vol(cov, lo, hi, 1.0).weights,
              "equal weight": np.full(n, 1 / n),
              "risk parity": targets.risk_parity(cov, lo, hi, 1.0).weights}
    for name, other in rivals.items():
        assert best <= risk.historical_var_cvar(r @ other, confidence)[1] + 1e-12, name
    for other in random_portfolios(n, 300):
        assert best <= risk.historical_var_cvar(r @ other, confidence)[1] + 1e-12


# -- 5. determinism (domain) ------------------------------------------------------------------------------
def test_every_solver_gives_identical_bytes_on_repeated_runs():
    r = real_returns()
    n = len(REAL_SYMBOLS)
    lo, hi = np.zeros(n), np.full(n, .3)

    def run():
        cov = risk.covariance(REAL_SYMBOLS, r).matrix
        return [cov.tobytes(), risk.ledoit_wolf(r)[0].tobytes(),
                targets.min_vol(cov, lo, hi, .95).weights.tobytes(),
                targets.target_vol(cov, r.mean(axis=0) * 252, .18, lo, hi, .95).weights.tobytes(),
                targets.min_cvar(r, .95, lo, hi, .95).weights.tobytes(),
                targets.risk_parity(cov, np.zeros(n), np.ones(n), .95).weights.tobytes()]

    first = run()
    assert all(run() == first for _ in range(2))


# -- the CLI: helpers ------------------------------------------------------------------------------------

def model_rows(db_path: str, model: str = "core") -> list[tuple[int, str]]:
    """(seq, payload as stored) of a model's versions."""
    with contextlib.closing(sqlite3.connect(db_path)) as c:
        return c.execute("SELECT seq, payload FROM events WHERE stream = ? ORDER BY version", (f"model:{model}",)).fetchall()


@contextlib.contextmanager
def unchanged(folio, db_path):
    """The block must leave the ledger exactly as it was: same audit head, same number of events."""
    before = (out(folio("audit head")), count(db_path))
    yield
    assert (out(folio("audit head")), count(db_path)) == before, "the ledger changed"


def refused(result, *words: str, code: int = 1) -> str:
    """A clean refusal: the exit code, a click exit (no traceback), a message holding every word given."""
    assert result.exit_code == code, f"expected exit {code}, got {result.exit_code}: {result.output}"
    assert isinstance(result.exception, SystemExit), f"crashed instead of refusing: {result.exception!r}"
    for w in words:
        assert w in result.stderr, f"{w!r} not in {result.stderr!r}"
    assert "Traceback" not in result.output
    return result.stderr


def cli_on(db: str):
    """Like conftest's `folio`, on a ledger of one's choosing (for tests that compare two ledgers)."""
    runner = CliRunner()
    return lambda args: runner.invoke(cli, ["--db", db, "--actor", "tester", *shlex.split(args)])


def weekdays(start: dt.date, n: int) -> list[dt.date]:
    days, d = [], start
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += dt.timedelta(days=1)
    return days


TINY_DAYS = weekdays(dt.date(2024, 1, 2), 21)  # 2024-01-02 ... 2024-01-30
AS_OF = "2024-01-30"


def tiny_prices(days: int = 21, extra: dict[str, list[str]] | None = None) -> str:
    """The tiny series as a long CSV: day i has the cycle's (i mod 5)th close, so day 20 closes as day 0."""
    cycle = {**TINY_CYCLE, **(extra or {})}
    lines = ["date,symbol,close"]
    for i, d in enumerate(TINY_DAYS[:days]):
        lines += [f"{d},{s},{c[i % 5]}" for s, c in cycle.items()]
    return "\n".join(lines) + "\n"


def build(folio, tmp_path, prices: str, steps: list[str]):
    out(folio("init"))
    p = tmp_path / f"prices-{count_files(tmp_path)}.csv"
    p.write_text(prices)
    out(folio(f"prices import {p}"))
    for step in steps:
        out(folio(step))
    return folio


def count_files(path: Path) -> int:
    return len(list(path.iterdir()))


def import_prices(folio, tmp_path, text: str) -> None:
    p = tmp_path / f"prices-{count_files(tmp_path)}.csv"
    p.write_text(text)
    out(folio(f"prices import {p}"))


TINY_STEPS = [
    "account open A --date 2024-01-02 --owner alice",  # 1
    "record deposit A 10000 --date 2024-01-02",  # 2
    "record buy A AAA 40 --price 100 --date 2024-01-02",  # 3: 4000
    "record buy A BBB 40 --price 100 --date 2024-01-02",  # 4: 4000
    "record buy A CCC 40 --price 50 --date 2024-01-02",  # 5: 2000, cash 0
    "model set core --target AAA=0.5:0.05 --target BBB=0.3:0.05 --target CCC=0.2:0.05 --cash 0 --date 2024-01-02",  # 6
    "account assign A core --date 2024-01-02",  # 7
]


@pytest.fixture
def tiny(folio, tmp_path):
    """The tiny series over 21 weekdays (20 returns, four cycles); A holds .4/.4/.2 of 10000, model core .5/.3/.2."""
    return build(folio, tmp_path, tiny_prices(), TINY_STEPS + ["policy set A --fractional --date 2024-01-02"])


REAL_CLI = ("JPM", "PFE", "WMT", "XOM")


def real_wide_csv(first: str, last: str, symbols=REAL_CLI) -> str:
    """The fixture's closes as given (wide form), for the dates in [first, last]."""
    lines = ["date," + ",".join(symbols)]
    lines += [r["date"] + "," + ",".join(r[s] for s in symbols) for r in real_rows() if first <= r["date"] <= last]
    return "\n".join(lines) + "\n"


REAL_STEPS = [
    "account open A --date 2024-01-02 --owner alice",
    "record deposit A 100000 --date 2024-01-02",
    "record buy A JPM 100 --price 170 --date 2024-01-02",
    "model set core --target JPM=0.3:0.05 --target PFE=0.2:0.05 --target WMT=0.2:0.05 --target XOM=0.2:0.05 "
    "--cash 0.1 --date 2024-01-02",
    "account assign A core --date 2024-01-02",
    "policy set A --fractional --date 2024-01-02",
]


# -- 8. `folio risk` -------------------------------------------------------------------------------------
# Four cycles: the daily covariance is 4 x SCATTER / 19, so
#   volatility       sqrt(4 x .10128 x 252 / 19) = sqrt(102.09024 / 19) = 2.318010
#   model            sqrt(4 x .10523 x 252 / 19) = 2.362780
#   tracking error   sqrt(4 x .00305 x 252 / 19) = sqrt(3.0744 / 19) = .402257
#   contributions    vol x (.04548, .04368, .01212) / .10128 = 1.040907, .999710, .277392 (44.9%, 43.1%, 12.0%)
#   historical       the 20 daily returns are the five portfolio returns four times; the 95% VaR is the 19th
#                    loss of 20: .16, and the worst 5% (one day) is .16 too
#   parametric       mean .018, sd sqrt(4 x .10128 / 19) = .146021: VaR -.018 + 1.6448536 x .146021 = .222183,
#                    CVaR -.018 + .146021 x .1031356 / .05 = .283199
TINY_RISK = {
    "account": "A", "as_of": AS_OF, "window": {"first": "2024-01-02", "last": AS_OF, "returns": "20"},
    "covariance": "sample", "shrinkage": "0.000000", "note": "",
    "volatility": "2.318010", "model_volatility": "2.362780", "tracking_error": "0.402257", "confidence": "0.95",
    "var_historical": "0.160000", "cvar_historical": "0.160000",
    "var_parametric": "0.222183", "cvar_parametric": "0.283199",
    "assets": [{"symbol": "AAA", "weight": "0.400000", "model_weight": "0.500000", "contribution": "1.040907"},
               {"symbol": "BBB", "weight": "0.400000", "model_weight": "0.300000", "contribution": "0.999710"},
               {"symbol": "CCC", "weight": "0.200000", "model_weight": "0.200000", "contribution": "0.277392"}],
}


def test_risk_json_has_the_hand_checked_figures(tiny):
    assert js(tiny(f"risk A --as-of {AS_OF} --json")) == TINY_RISK
    # the same figures from the formulas, not the strings above
    vol = math.sqrt(4 * .10128 * 252 / 19)
    sd = math.sqrt(4 * .10128 / 19)
    assert [f"{x:.6f}" for x in (vol, math.sqrt(4 * .10523 * 252 / 19), math.sqrt(4 * .00305 * 252 / 19),
                                 -.018 + Z95 * sd, -.018 + sd * PHI95 / .05)] == \
        [TINY_RISK[k] for k in ("volatility", "model_volatility", "tracking_error", "var_parametric", "cvar_parametric")]
    assert [a["contribution"] for a in TINY_RISK["assets"]] == [f"{vol * x / .10128:.6f}" for x in (.04548, .04368, .01212)]


def test_risk_human_output(tiny):
    assert out(tiny(f"risk A --as-of {AS_OF}")) == (
        "Risk of A as of 2024-01-30: 20 daily returns 2024-01-02..2024-01-30, sample covariance\n"
        "volatility 231.80% a year (model 236.28%), tracking error 40.23%\n"
        "one-day VaR 95%: historical 16.00%, parametric 22.22%; CVaR: historical 16.00%, parametric 28.32%\n"
        "symbol  weight   model  contribution  share of risk\n"
        "------  ------  ------  ------------  -------------\n"
        "AAA     40.00%  50.00%       104.09%          44.9%\n"
        "BBB     40.00%  30.00%        99.97%          43.1%\n"
        "CCC     20.00%  20.00%        27.74%          12.0%\n")


def test_risk_with_the_shrunk_covariance_and_another_confidence(tiny):
    r = js(tiny(f"risk A --as-of {AS_OF} --shrink --confidence 0.8 --json"))
    cov, intensity = ledoit_wolf_2004(risk.returns(tiny_closes(21)))
    assert (r["covariance"], r["shrinkage"], r["note"]) == ("ledoit-wolf", f"{intensity:.6f}", "")
    assert r["volatility"] == f"{math.sqrt(W @ cov @ W * 252):.6f}"
    # losses sorted: -.20 x4, -.15 x4, -.02 x4, .12 x4, .16 x4; 80% of 20 days is 16: VaR the 16th loss, .12;
    # CVaR the worst 20% (four days): .16
    assert (r["var_historical"], r["cvar_historical"]) == ("0.120000", "0.160000")


def test_risk_window_takes_the_last_returns_up_to_the_as_of_date(tiny):
    r = js(tiny(f"risk A --as-of {AS_OF} --window 5 --json"))
    # the last five returns are one whole cycle: covariance SCATTER / 4, volatility sqrt(.10128 / 4 x 252)
    assert r["window"] == {"first": "2024-01-23", "last": AS_OF, "returns": "5"}
    assert r["volatility"] == f"{math.sqrt(.10128 / 4 * 252):.6f}" == "2.525993"


# -- 6. no look-ahead ----------------------------------------------------------------------------------------
def test_a_price_after_the_as_of_date_changes_no_risk_figure(tiny, tmp_path):
    before = out(tiny(f"risk A --as-of {AS_OF} --json"))
    # a crash and a boom the day after, and another day after that: nothing of it is visible on 2024-01-30
    import_prices(tiny, tmp_path, "date,symbol,close\n2024-01-31,AAA,1\n2024-01-31,BBB,1000\n2024-01-31,CCC,0.5\n"
                                  "2024-02-01,CCC,0.25\n")
    assert out(tiny(f"risk A --as-of {AS_OF} --json")) == before
    # ... while the day it lands on sees it (the test is not vacuous)
    assert js(tiny("risk A --as-of 2024-01-31 --json"))["window"]["returns"] == "21"
    assert out(tiny("risk A --as-of 2024-01-31 --json")) != before


def test_a_price_after_the_as_of_date_changes_no_optimized_model(tiny, tmp_path, db_path):
    out(tiny(f"model optimize core --objective min-vol --as-of {AS_OF}"))  # version 2
    import_prices(tiny, tmp_path, "date,symbol,close\n2024-01-31,AAA,1\n2024-01-31,BBB,1000\n2024-01-31,CCC,0.5\n")
    out(tiny(f"model optimize core --objective min-vol --as-of {AS_OF}"))  # version 3, from version 2
    (_, v2), (_, v3) = [(s, json.loads(p)) for s, p in model_rows(db_path)[1:]]
    assert v3["targets"] == v2["targets"]
    for key in ("inputs_digest", "inputs", "after", "status"):
        assert v3["optimization"][key] == v2["optimization"][key], key
    assert v3["optimization"]["before"] == v2["optimization"]["after"]


def test_price_history_reads_nothing_after_the_as_of_date(store):
    from ledger.prices import Price, add_prices
    from projections.risk import price_history

    add_prices(store, [Price(symbol=s, date=day, close=D(TINY_CYCLE[s][i % 5]))
                       for i, day in enumerate(TINY_DAYS) for s in TINY_CYCLE])
    as_of = dt.date.fromisoformat(AS_OF)
    first = price_history(store, ["CCC", "AAA", "BBB"], as_of, 252)
    assert first.symbols == ("AAA", "BBB", "CCC") and first.dates == tuple(d.isoformat() for d in TINY_DAYS)
    assert first.closes.tobytes() == tiny_closes(21).tobytes()
    add_prices(store, [Price(symbol=s, date=as_of + dt.timedelta(days=k), close=D(1)) for k in (1, 2, 5) for s in TINY_CYCLE])
    again = price_history(store, ["AAA", "BBB", "CCC"], as_of, 252)
    assert (again.dates, again.closes.tobytes()) == (first.dates, first.closes.tobytes())
    # a correction of a day in the window, recorded later, is what the window reads (the latest row of a date wins)
    add_prices(store, [Price(symbol="AAA", date=TINY_DAYS[3], close=D(101))])
    assert price_history(store, ["AAA", "BBB", "CCC"], as_of, 252).closes[3, 0] == 101.0


def test_real_prices_after_the_as_of_date_change_nothing_recorded(tmp_path):
    """Two ledgers, one with prices to the as-of date and one with two more weeks: byte-identical model events."""
    payloads = []
    for last in ("2024-06-28", "2024-07-15"):
        db = str(tmp_path / f"{last}.db")
        run = cli_on(db)
        build(run, tmp_path, real_wide_csv("2023-06-01", last), REAL_STEPS)
        for objective in ("min-vol", "target-vol --target-vol 0.14", "min-cvar", "risk-parity"):
            shown = out(run(f"model optimize core --objective {objective} --as-of 2024-06-28 --bounds WMT=0:0.35"))
            assert ": optimal)" in shown.splitlines()[0]
        payloads.append([p for _, p in model_rows(db)])
    assert payloads[0] == payloads[1]
    assert len(payloads[0]) == 5
    target_vol = json.loads(payloads[0][2])["optimization"]
    assert target_vol["after"]["volatility"] == "0.140000"  # on the millionth grid, to the millionth
    assert target_vol["inputs"]["dates"] == ["2023-06-28", "2024-06-28"]  # 252 returns up to the as-of date


# -- 7. bad input ----------------------------------------------------------------------------------------------
def test_bounds_that_cannot_sum_to_the_budget_are_refused(tiny, db_path):
    with unchanged(tiny, db_path):
        refused(tiny(f"model optimize core --objective min-vol --as-of {AS_OF} "
                     "--bounds AAA=0:0.2 --bounds BBB=0:0.2 --bounds CCC=0:0.2"),
                "the bounds cannot sum to 1: lows add up to 0, highs to 0.6")
        refused(tiny(f"model optimize core --objective risk-parity --as-of {AS_OF} "
                     "--bounds AAA=0.5:1 --bounds BBB=0.4:1 --bounds CCC=0.2:1"),
                "the bounds cannot sum to 1: lows add up to 1.1, highs to 3")
        refused(tiny(f"model optimize core --objective min-vol --as-of {AS_OF} --bounds AAA=0.6:0.4"),
                "bounds of AAA are not within 0 <= low <= high <= 1")
        refused(tiny(f"model optimize core --objective min-vol --as-of {AS_OF} --bounds AAA=0.6"),
                "bound 'AAA=0.6': use SYMBOL=LOW:HIGH")
        refused(tiny(f"model optimize core --objective min-vol --as-of {AS_OF} --bounds ZZZ=0:1"),
                "bound for ZZZ, which is not in the model (AAA, BBB, CCC)")


def test_bounds_are_fractions_of_the_whole_account_so_a_cash_target_lowers_the_sum(tiny, db_path):
    out(tiny("model set half --target AAA=0.3 --target BBB=0.2 --target CCC=0.1 --cash 0.4 --date 2024-01-02"))
    with unchanged(tiny, db_path):
        refused(tiny(f"model optimize half --objective min-vol --as-of {AS_OF} "
                     "--bounds AAA=0.3:1 --bounds BBB=0.3:1 --bounds CCC=0.1:1"),
                "the bounds cannot sum to 0.6: lows add up to 0.7, highs to 3")


def test_a_target_volatility_below_the_minimum_is_refused_with_the_minimum(tiny, db_path):
    # min-vol on the tiny series: 206.68% (the closed form C^-1 1 / 1'C^-1 1, see above)
    x = np.linalg.solve(SCATTER, np.ones(3))
    vmin = math.sqrt(1 / x.sum() * 4 * 252 / 19)  # w'Cw at the minimum is 1 / (1' C^-1 1)
    assert f"{vmin:.6f}" == "2.066834"
    with unchanged(tiny, db_path):
        refused(tiny(f"model optimize core --objective target-vol --target-vol 1.5 --as-of {AS_OF}"),
                "target volatility 150.00% is below the minimum achievable 206.68% (2.066834) with these assets "
                "and bounds: ask for at least that, or widen the bounds")
        refused(tiny(f"model optimize core --objective target-vol --target-vol nan --as-of {AS_OF}"),
                "target volatility must be a positive annual figure")
        refused(tiny(f"model optimize core --objective target-vol --as-of {AS_OF}"), "target-vol needs --target-vol", code=2)
        refused(tiny(f"model optimize core --objective target-vol --target-vol 0 --as-of {AS_OF}"), "0.0 is not in the range",
                code=2)


def test_a_window_with_too_few_prices_says_how_many_are_needed_and_found(folio, tmp_path, db_path):
    build(folio, tmp_path, tiny_prices(days=20), TINY_STEPS + ["policy set A --fractional --date 2024-01-02"])
    last = TINY_DAYS[19].isoformat()  # 2024-01-29
    with unchanged(folio, db_path):
        refused(folio(f"model optimize core --objective min-vol --as-of {last}"),
                f"a risk estimate needs at least 21 common daily closes on or before {last}; found 20")
        refused(folio(f"risk A --as-of {last}"), f"a risk estimate needs at least 21 common daily closes on or before {last}; "
                                                 "found 20")
    # the closes must be common: one more day for AAA and BBB only is still 20 days of all three
    import_prices(folio, tmp_path, f"date,symbol,close\n{AS_OF},AAA,100\n{AS_OF},BBB,100\n")
    with unchanged(folio, db_path):
        refused(folio(f"model optimize core --objective min-vol --as-of {AS_OF}"),
                f"needs at least 21 common daily closes on or before {AS_OF}; found 20 (fewest: CCC with 20)")


def test_an_asset_with_no_price_history_is_named(tiny, tmp_path, db_path):
    # ZZZ is known (priced after the window), so the model can name it, but has nothing on or before the as-of date
    import_prices(tiny, tmp_path, "date,symbol,close\n2024-02-15,ZZZ,10\n2024-02-15,YYY,10\n")
    out(tiny("model set other --target AAA=0.4 --target ZZZ=0.3 --target YYY=0.3 --cash 0 --date 2024-01-02"))
    with unchanged(tiny, db_path):
        refused(tiny(f"model optimize other --objective min-vol --as-of {AS_OF}"),
                f"YYY, ZZZ have no price history on or before {AS_OF}: import their prices first")
        refused(tiny(f"model optimize nothing --objective min-vol --as-of {AS_OF}"),
                "no model nothing: create it with `folio model set nothing ...`")


def test_an_account_holding_an_asset_with_no_price_history_is_named(tiny, tmp_path, db_path):
    out(tiny("record deposit A 10 --date 2024-01-29"))
    out(tiny("record buy A ZZZ 1 --price 10 --date 2024-01-29"))
    with unchanged(tiny, db_path):
        refused(tiny(f"risk A --as-of {AS_OF}"), f"no price on or before {AS_OF} for ZZZ (ZZZ: no price at all)")
    import_prices(tiny, tmp_path, "date,symbol,close\n2024-01-29,ZZZ,10\n")  # one close: valued, but no history
    with unchanged(tiny, db_path):
        refused(tiny(f"risk A --as-of {AS_OF}"),
                f"a risk estimate needs at least 21 common daily closes on or before {AS_OF}; found 1 (fewest: ZZZ with 1)")


def test_identical_returns_fall_back_to_the_shrunk_covariance_and_say_so(tiny, tmp_path, db_path):
    # DDD closes at twice AAA every day: identical returns, a singular sample covariance
    import_prices(tiny, tmp_path, tiny_prices(extra={"DDD": [str(2 * int(x)) for x in TINY_CYCLE["AAA"]]}))
    out(tiny("model set twin --target AAA=0.4 --target CCC=0.2 --target DDD=0.4 --cash 0 --date 2024-01-02"))
    shown = out(tiny(f"model optimize twin --objective min-vol --as-of {AS_OF}"))
    r = risk.returns(np.array([[float(TINY_CYCLE["AAA"][i % 5]), float(TINY_CYCLE["CCC"][i % 5]),
                                2 * float(TINY_CYCLE["AAA"][i % 5])] for i in range(21)]))
    intensity = risk.ledoit_wolf(r)[1]
    assert ledoit_wolf_2004(r)[1] == pytest.approx(intensity, rel=1e-10)
    note = (f"note: the sample covariance is singular (AAA and DDD have perfectly correlated returns): "
            f"used the Ledoit-Wolf shrunk one (shrinkage {intensity:.3f})")
    assert shown.splitlines()[1] == note
    [(_, payload)] = model_rows(db_path, "twin")[1:]
    opt = json.loads(payload)["optimization"]
    assert (opt["covariance"], opt["covariance_note"], opt["status"]) == ("ledoit-wolf", note[len("note: "):], "optimal")
    # min-vol on the shrunk covariance treats the twins alike
    w = {t["symbol"]: D(t["weight"]) for t in json.loads(payload)["targets"]}
    assert abs(w["AAA"] - w["DDD"]) <= D("0.000002") and sum(w.values()) == 1


def test_more_assets_than_returns_fall_back_to_the_shrunk_covariance_and_say_so(tiny, db_path):
    r = risk.returns(tiny_closes(21)[-4:])  # the last 3 returns
    intensity = risk.ledoit_wolf(r)[1]
    assert intensity == pytest.approx(ledoit_wolf_2004(r)[1], rel=1e-10) and 0 < intensity < 1
    note = (f"note: the sample covariance is singular (3 daily returns for 3 assets: it needs more returns than "
            f"assets): used the Ledoit-Wolf shrunk one (shrinkage {intensity:.3f})")
    assert note in out(tiny(f"risk A --as-of {AS_OF} --window 3")).splitlines()
    assert note in out(tiny(f"model optimize core --objective risk-parity --as-of {AS_OF} --window 3")).splitlines()
    # two returns: the estimated shrinkage is zero (each demeaned day is the whole second moment), still singular
    with unchanged(tiny, db_path):
        refused(tiny(f"model optimize core --objective min-vol --as-of {AS_OF} --window 2"),
                "the covariance of 3 assets from 2 daily returns is singular (2 daily returns for 3 assets: it needs more "
                "returns than assets) and stays so after Ledoit-Wolf shrinkage (shrinkage 0.000): use a longer window")


# -- 8. `folio model optimize` ----------------------------------------------------------------------------------
def test_model_optimize_records_a_version_with_digest_status_and_risk_before_and_after(tiny, db_path):
    # min-vol on the tiny series binds no bound: w = C^-1 1 / 1'C^-1 1 = .153263, .242424, .604312
    assert out(tiny(f"model optimize core --objective min-vol --as-of {AS_OF}")) == (
        "Model core version 2 (min-vol, active-set QP (exact KKT): optimal)\n"
        "symbol  before   after\n"
        "------  ------  ------\n"
        "AAA     50.00%  15.33%\n"
        "BBB     30.00%  24.24%\n"
        "CCC     20.00%  60.43%\n"
        "volatility 236.28% -> 206.68%, one-day CVaR 16.00% -> 16.93%\n")
    [(_, v1), (seq, payload)] = model_rows(db_path)
    event = json.loads(payload)
    x = np.linalg.solve(SCATTER, np.ones(3))
    exact = x / x.sum()
    weights = [D(t["weight"]) for t in event["targets"]]
    # rounded to the millionth they add up to .999999: the millionth left goes to the largest remainder, AAA's
    assert [D(f"{w:.6f}") for w in exact] == [D("0.153263"), D("0.242424"), D("0.604312")]
    assert weights == [D("0.153264"), D("0.242424"), D("0.604312")] and sum(weights) == 1
    assert [t["band_abs"] for t in event["targets"]] == ["0.05"] * 3  # the bands are kept
    assert (event["cash"], event["note"]) == ("0", "min-vol over 20 returns to 2024-01-30")
    opt = event["optimization"]
    closes = tiny_closes(21)
    inputs = {"symbols": ["AAA", "BBB", "CCC"], "dates": ["2024-01-02", AS_OF], "returns": 20,
              "closes_digest": hashlib.sha256(closes.tobytes()).hexdigest(), "bounds": {}, "budget": "1",
              "objective": "min-vol", "target_vol": None, "confidence": "0.95", "window": 252}
    assert opt["inputs"] == inputs
    assert opt["inputs_digest"] == hashlib.sha256(codec.canonical(inputs).encode()).hexdigest()
    assert (opt["objective"], opt["solver"], opt["status"], opt["covariance"], opt["covariance_note"]) == \
        ("min-vol", "active-set QP (exact KKT)", "optimal", "sample", "")
    # before: the model .5/.3/.2, vol 2.362780; its daily returns .175 -.025 -.10 .20 -.16: VaR = CVaR = .16
    # after: the recorded weights; the 95% VaR and CVaR are the worst day's loss
    after = np.array([float(w) for w in weights])
    worst = max(-(risk.returns(closes)[:5] @ after))
    assert opt["before"] == {"volatility": "2.362780", "var": "0.160000", "cvar": "0.160000"}
    assert opt["after"] == {"volatility": f"{math.sqrt(after @ SCATTER @ after * 4 * 252 / 19):.6f}",
                            "var": f"{worst:.6f}", "cvar": f"{worst:.6f}"}
    assert opt["after"]["volatility"] == "2.066834"


def test_optimized_weights_on_the_grid_respect_the_bounds(tiny, db_path):
    # min-vol wants CCC at 60% and AAA at 15%: capped and floored, BBB takes the rest
    out(tiny(f"model optimize core --objective min-vol --as-of {AS_OF} --bounds CCC=0.1:0.4 --bounds AAA=0.3:1"))
    [(_, payload)] = model_rows(db_path)[1:]
    event = json.loads(payload)
    assert [(t["symbol"], t["weight"]) for t in event["targets"]] == [("AAA", "0.3"), ("BBB", "0.3"), ("CCC", "0.4")]
    assert event["optimization"]["inputs"]["bounds"] == {"AAA": ["0.3", "1"], "CCC": ["0.1", "0.4"]}
    # BBB, the only free asset, has a marginal risk between the capped CCC's and the floored AAA's
    g = SCATTER @ np.array([.3, .3, .4])
    assert g[2] <= g[1] <= g[0]


def test_to_decimal_weights_keeps_the_sum_and_the_bounds():
    from commands.cli_risk import to_decimal_weights

    # three thirds round to .333333 each, a millionth short; the asset with the most room takes it
    assert to_decimal_weights(np.full(3, 1 / 3), D(1)) == [D("0.333334"), D("0.333333"), D("0.333333")]
    # the first is at its cap: the millionth goes elsewhere
    assert to_decimal_weights(np.full(3, 1 / 3), D(1), [D(0)] * 3, [D("0.333333"), D(1), D(1)]) == \
        [D("0.333333"), D("0.333334"), D("0.333333")]
    # a weight a hair outside its bounds comes back in, and a tiny negative float to zero
    got = to_decimal_weights(np.array([.4000004, .6, -1e-17]), D(1), [D(0)] * 3, [D("0.4"), D(1), D(1)])
    assert got == [D("0.4"), D("0.6"), D("0")] and not got[2].is_signed()
    # the residual goes to the largest remainder: .1532634 lost more to rounding than .6043124 did
    assert to_decimal_weights(np.array([.1532634, .24242424, .6043124]), D(1)) == [D("0.153264"), D("0.242424"), D("0.604312")]


def test_an_optimized_model_feeds_drift_and_propose_like_any_other(tiny):
    out(tiny(f"model optimize core --objective risk-parity --as-of {AS_OF}"))
    drift = js(tiny(f"drift A --as-of {AS_OF} --json"))
    targets_ = {a["symbol"]: a["target"] for a in drift["assets"]}
    proposal = js(tiny(f"propose A --as-of {AS_OF} --dry-run --json"))[0]
    assert proposal["model"]["id"] == "core" and proposal["model"]["version"] == "2"
    recorded = {t["symbol"]: t["weight"] for t in proposal["model"]["targets"]}
    assert {s: D(x) for s, x in targets_.items()} == {s: D(x) for s, x in recorded.items()}
    # fractional shares and no costs: the trades land exactly on the risk-parity weights
    assert {s: D(x) for s, x in proposal["weights_after"].items() if s != "CASH"} == {s: D(x) for s, x in recorded.items()}
    assert proposal["orders"]
    # and those weights have equal risk contributions (to the millionth grid they were rounded to)
    cov = 4 * SCATTER / 19 * 252
    w = np.array([float(recorded[s]) for s in ("AAA", "BBB", "CCC")])
    c = risk.contributions(w, cov)
    assert c.max() - c.min() <= 1e-5 * c.mean()


def test_model_optimize_is_deterministic_across_ledgers(tmp_path):
    events = []
    for name in ("one", "two"):
        db = str(tmp_path / f"{name}.db")
        run = cli_on(db)
        build(run, tmp_path, tiny_prices(), TINY_STEPS)
        for objective in ("min-vol", "target-vol --target-vol 2.2", "min-cvar --confidence 0.8", "risk-parity"):
            out(run(f"model optimize core --objective {objective} --as-of {AS_OF}"))
        events.append([p for _, p in model_rows(db)])
    assert events[0] == events[1]
    assert len(events[0]) == 5


# -- 9. the risk-deviation trigger ------------------------------------------------------------------------------
def check(folio, as_of=AS_OF):
    [r] = js(folio(f"check A --as-of {as_of} --json"))
    return [(t["kind"], t["reason"]) for t in r["triggers"]]


# the account's volatility 231.80% against the model's 236.28%: 1 - sqrt(.10128 / .10523) = 1.89% apart
def test_the_risk_trigger_fires_when_volatility_is_further_from_the_models_than_the_threshold(tiny):
    assert 1 - math.sqrt(.10128 / .10523) == pytest.approx(.018948, abs=1e-6)
    out(tiny("policy set A --fractional --triggers risk --risk-threshold 0.0189 --date 2024-01-02"))
    assert check(tiny) == [("risk", "volatility 231.80% differs from the model's 236.28% by 1.9% (threshold 1.89%)")]
    out(tiny("policy set A --fractional --triggers risk --risk-threshold 0.019 --date 2024-01-02"))
    assert check(tiny) == []


def test_the_risk_trigger_is_silent_when_the_account_holds_the_model(tiny):
    out(tiny("model set core --target AAA=0.4 --target BBB=0.4 --target CCC=0.2 --cash 0 --date 2024-01-02"))
    out(tiny("policy set A --fractional --triggers risk --risk-threshold 0.000001 --date 2024-01-02"))
    assert check(tiny) == []


def test_the_risk_trigger_on_var_compares_the_one_day_historical_var(tiny):
    # the account's worst day is -.16 (VaR 16%); the model .5/.3/.2 also loses .16 on its worst day: no trigger
    out(tiny("policy set A --fractional --triggers risk --risk-measure var --risk-threshold 0.000001 --date 2024-01-02"))
    assert check(tiny) == []
    # model heavy .6 AAA / .4 BBB loses .6 x .2 + .4 x .2 = .20 on the cycle's last day: |.16 - .20| / .20 = 20%
    out(tiny("model set heavy --target AAA=0.6 --target BBB=0.4 --cash 0 --date 2024-01-03"))
    out(tiny("account assign A heavy --date 2024-01-03"))
    out(tiny("policy set A --fractional --triggers risk --risk-measure var --risk-threshold 0.19 --date 2024-01-03"))
    assert check(tiny) == [("risk", "one-day 95% VaR 16.00% differs from the model's 20.00% by 20.0% (threshold 19%)")]
    out(tiny("policy set A --fractional --triggers risk --risk-measure var --risk-threshold 0.21 --date 2024-01-03"))
    assert check(tiny) == []


def test_the_risk_trigger_needs_the_risk_trigger_in_the_policy(tiny):
    out(tiny("policy set A --fractional --triggers cash --risk-threshold 0.0001 --date 2024-01-02"))
    assert check(tiny) == []


def test_a_split_in_the_window_is_no_return(folio, tmp_path):
    """The same tiny history, but AAA split 2:1 on day 10 and its closes from then on recorded as they traded
    (halved): the risk of the account (80 AAA at half the price, the same value) is the tiny one to the printed digit,
    not a -50% day. Closes before a split are put in the shares of the as-of date, as valuations are."""
    split_day = TINY_DAYS[10]
    raw = []
    for line in tiny_prices().splitlines():
        day, symbol, close = line.split(",")
        if symbol == "AAA" and day >= split_day.isoformat():
            close = str(D(close) / 2)
        raw.append(",".join((day, symbol, close)))
    build(folio, tmp_path, "\n".join(raw) + "\n", TINY_STEPS + ["policy set A --fractional --date 2024-01-02",
                                                                f"record split AAA 2:1 --date {split_day}"])
    assert js(folio(f"risk A --as-of {AS_OF} --json")) == TINY_RISK


def test_an_asset_that_did_not_move_carries_no_risk_and_is_not_shrunk():
    """Found by review: a constant (cash-like) asset made the sample covariance singular, shrinkage gave it a made-up
    variance, and min-vol kept 2% of the risky asset. Its zero variance stands: min-vol holds it all."""
    rng = np.random.default_rng(7)
    r = np.column_stack([rng.normal(0, 0.01, 60), np.zeros(60)])
    cov = risk.covariance(("AAA", "ZERO"), r)
    assert (cov.method, cov.note) == ("sample", "ZERO did not move in the window: it carries no risk")
    assert cov.matrix[1, 1] == 0.0
    result = targets.min_vol(cov.matrix, np.zeros(2), np.ones(2), 0.9)
    assert np.allclose(result.weights, [0.0, 0.9])
    # two assets that moved together exactly are still singular: shrunk, and said
    twin = risk.covariance(("AAA", "BBB"), np.column_stack([r[:, 0], 2 * r[:, 0]]))
    assert twin.method == "ledoit-wolf" and "perfectly correlated" in twin.note


def test_risk_needs_a_model_but_no_policy(folio, tmp_path):
    """Found by review: `risk` of an account with a model but no policy was refused asking for one."""
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    rows = ["date,AAA,BBB"] + [f"{d},{100 + (i % 5)},{50 + (i % 3)}" for i, d in enumerate(days)]
    prices = tmp_path / "p.csv"
    prices.write_text("\n".join(rows) + "\n")
    for step in ["init", f"prices import {prices}", "account open T --date 2024-01-01",
                 "record deposit T 1000 --date 2024-01-01", "record buy T AAA 5 --price 100 --date 2024-01-02",
                 "model set m --target AAA=0.5 --target BBB=0.5 --date 2024-01-01", "account assign T m --date 2024-01-01"]:
        out(folio(step))
    report = js(folio("risk T --as-of 2024-02-09 --window 30 --json"))
    assert [a["symbol"] for a in report["assets"]] == ["AAA", "BBB"] and float(report["volatility"]) > 0
