"""Optimal rebalancing: a mixed-integer program over lots, solved with HiGHS (through highspy).

Variables: shares sold from each lot, shares bought of each asset (integers with whole shares), the
absolute drift of each asset and of cash in money, and one binary per asset that forbids buying and selling it
in one proposal. Objective, in money (never in fractions of the portfolio: HiGHS misjudges tiny
coefficients): drift from the model (L1, weighted per asset) + transaction costs + taxes at the
owner's rates on each lot's gain (a loss is a benefit, unless a recent purchase would disallow it).
Constraints: cash after trading at least the minimum buffer; turnover at most the cap; each asset's
weight within its model band; no sale of short-term gain lots, or a tax budget, when the policy
says so; no buy of a restricted security; and an ex-ante tracking-error cap handled with outer
linear cuts, added until the exact tracking error of the solution is within the cap.

HiGHS is called through highspy rather than scipy.optimize.milp for what milp does not expose: an absolute
gap (stop when the best possible is provably within $10 per $1M of the portfolio, or 0.01% of the objective),
the dual bound (recorded, so a reviewer sees how far from the best the answer can be), and a start solution.
One thread, a fixed seed and fixed options make a solve that stops on its gap repeat exactly.

Floats live only here: Decimals are converted on entry, and the solution is turned back into
Decimal shares (rounded down where fractional) and priced exactly by the trade-list code.
"""

from __future__ import annotations

import math
import os
import sys
import time
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

import attrs
import highspy
import numpy as np
from scipy import sparse

from domain.errors import DomainError
from domain.rebalancing.drift import band_of
from domain.rebalancing.model import Inputs, LotInfo
from domain.rebalancing.trades import (BPS, FRACTION, LotSale, Order, Plan, _cash_after, _cash_ceiling, _drop_small, _finish,
                                       _quantum, _spread, desired_values)
from domain.values import ZERO, is_long_term, round_cents

TIME_LIMIT = 20.0
MIP_GAP = 1e-4
MIP_GAP_OF_VALUE = 1e-5  # ... or when within this share of the portfolio's value ($10 per $1M), or (whole shares)
# within the value of one share of the priciest asset, up to SHARE_GAP_OF_VALUE of the portfolio: see `abs_gap`
SHARE_GAP_OF_VALUE = 1e-3


def abs_gap(p: "Problem") -> float:
    """The solve stops once its solution is this close (in dollars of objective) to the best it could be. In whole
    shares the objective moves in steps of a share's price, and proving the last few dollars took HiGHS thousands
    of nodes for nothing (found by a backtest: 10.7 s on 10 integers, for a plan $1.02 better than the one it had
    in 0.03 s): a plan within one share of the priciest asset of the bound is as good as whole shares tell apart,
    as long as a share is a small part of the account (at most SHARE_GAP_OF_VALUE of it: $1,000 per $1M)."""
    gap = MIP_GAP_OF_VALUE * p.total
    if p.integer and p.n_assets:
        gap = max(gap, min(float(np.max(p.price)), SHARE_GAP_OF_VALUE * p.total))
    return gap
MAX_CUTS = 25


class Infeasible(DomainError):
    """No trade list meets every constraint; the message names the one that cannot be met."""


@attrs.frozen
class Problem:
    """The MILP in arrays, with the index of every variable."""

    assets: tuple[str, ...]
    lots: tuple[tuple[int, LotInfo], ...]  # (asset index, lot)
    price: np.ndarray
    held: np.ndarray
    #: the model's value of each asset (a held stand-in takes the part of its symbol's target the symbol does not
    #: hold): what tracking error is measured against
    target_value: np.ndarray
    total: float
    cash: float
    sell_cost: np.ndarray  # per share sold, per lot
    buy_cost: np.ndarray  # per share bought, per asset
    tax: np.ndarray  # per share sold, per lot
    drift_weight: np.ndarray
    bounds_lo: np.ndarray  # weight bounds per asset
    bounds_hi: np.ndarray
    sell_ub: np.ndarray
    buy_ub: np.ndarray
    integer: bool
    #: the value each asset should end at, and cash: the targets, or (`rebalance_to` band-edge or midpoint) the
    #: heuristic's goals (`goals`): drift is measured from these
    goal_value: np.ndarray
    goal_cash: float

    @property
    def n_lots(self) -> int:
        return len(self.lots)

    @property
    def n_assets(self) -> int:
        return len(self.assets)


def stand_ins(inputs: Inputs) -> dict[str, str]:
    """`Inputs.stand_ins` (held substitutes of restricted model symbols), and for a restricted model symbol with none
    held, its first declared substitute with a price that is not restricted itself: the solve may buy it in the
    symbol's place, as the heuristic redirects the buy (found by review: the optimizer left the symbol's weight in
    cash)."""
    out = dict(inputs.stand_ins())
    targets = {t.symbol for t in inputs.model.targets}
    for t in inputs.model.targets:
        until = inputs.restricted.get(t.symbol)
        if until is None or until < inputs.as_of or t.symbol in out.values():
            continue
        subs = [x for x in inputs.substitutes.get(t.symbol, ()) if x in inputs.prices and x not in targets
                and x not in out and not (inputs.restricted.get(x) is not None and inputs.restricted[x] >= inputs.as_of)]
        if subs:
            out[subs[0]] = t.symbol
    return out


def build(inputs: Inputs, wash_risk: set[str] | None = None) -> Problem:
    """Turn Decimal inputs into float arrays (the one entry conversion)."""
    pol = inputs.policy
    targets = {t.symbol: t for t in inputs.model.targets}
    held = inputs.held()
    stand = stand_ins(inputs)
    assets = tuple(sorted(s for s in set(targets) | set(held) | set(stand) if s in inputs.prices))
    idx = {s: i for i, s in enumerate(assets)}
    price = np.array([float(inputs.price(s)) for s in assets])
    qty = np.array([float(held[s].quantity) if s in held else 0.0 for s in assets])
    total = float(inputs.total_value())
    k, ps = float(pol.cost_bps * BPS), float(pol.cost_per_share)
    lots, tax, sell_ub = [], [], []
    rates = inputs.rates
    for s in assets:
        price_s = inputs.price(s)
        for lot in held[s].lots if s in held else ():
            long_term = is_long_term(lot.hp_start, inputs.as_of)
            gain = float(price_s) - float(lot.basis) / float(lot.quantity)
            rate = 0.0 if rates is None else float(rates[1] if long_term else rates[0])
            t = rate * gain
            if gain < 0 and wash_risk and s in wash_risk:
                t = 0.0  # a loss a recent purchase would disallow is no benefit
            lots.append((idx[s], lot))
            tax.append(t)
            blocked = pol.avoid_short_term and not long_term and gain > 0
            sell_ub.append(0.0 if blocked else float(lot.quantity))
    lo, hi = [], []
    for s in assets:
        t = targets.get(s)
        if t is None:
            lo.append(0.0)
            hi.append(float(qty[idx[s]] * price[idx[s]] / total) if total else 0.0)
        else:
            band = band_of(t)
            lo.append(float(band.low))
            hi.append(float(band.high))
    restricted = {s for s, until in inputs.restricted.items() if until >= inputs.as_of}
    for i, s in enumerate(assets):
        if s in restricted and total:  # it cannot be bought: below its band it may stay where it is
            lo[i] = min(lo[i], float(qty[i] * price[i] / total))
    budget = float(inputs.cash) + float(sum(qty * price))
    buy_ub = np.array([0.0 if (s in restricted or s not in targets) else budget / price[i] for i, s in enumerate(assets)])
    target_value = np.array([float(targets[s].weight) * total if s in targets else 0.0 for s in assets])
    if pol.rebalance_to == "target":
        goal_value, goal_cash = target_value.copy(), float(inputs.model.cash) * total
    else:
        goal, cash_goal = goals(inputs)
        goal_value, goal_cash = np.array([float(goal.get(s, ZERO)) for s in assets]), float(cash_goal)
    # a held substitute standing in for a restricted model symbol takes the part of its target the symbol does not
    # hold, may be bought in its place and may grow to the symbol's band (see `Inputs.stand_ins`)
    for s, of in stand.items():
        if s in idx and of in idx and total:
            i, o = idx[s], idx[of]
            own = float(qty[o] * price[o])
            for value in (target_value, goal_value):
                value[i] = max(0.0, value[o] - own)
                value[o] = min(own, value[o])
            hi[i] = max(hi[i], float(band_of(targets[of]).high) - own / total)
            buy_ub[i] = budget / price[i]
    lot_price = np.array([price[a] for a, _ in lots])
    return Problem(
        assets=assets, lots=tuple(lots), price=price, held=qty,
        target_value=target_value,
        total=total, cash=float(inputs.cash), sell_cost=lot_price * k + ps, buy_cost=price * k + ps,
        tax=np.array(tax), drift_weight=np.ones(len(assets)), bounds_lo=np.array(lo), bounds_hi=np.array(hi),
        sell_ub=np.array(sell_ub), buy_ub=buy_ub, integer=pol.whole_shares, goal_value=goal_value, goal_cash=goal_cash)


def goals(inputs: Inputs) -> tuple[dict[str, Decimal], Decimal]:
    """What the heuristic moves toward when the policy rebalances to the band edge or halfway, as values (a model
    symbol's with its held stand-ins'), and the cash left: an asset inside its band keeps its value, one outside ends
    at its band's edge or halfway to its target (`trades.desired_values`), one outside the model at nothing; and
    what those moves leave above the cash ceiling goes toward the targets, as the heuristic spreads it (not to an
    asset sold to its edge: the heuristic does not buy back what it sells, and that share stays cash). The drift
    the optimizer minimizes is measured from these, so it trades the same assets, and weighs that against costs and
    tax (found by review: the optimizer rebalanced every asset to its target whatever the policy said)."""
    total = inputs.total_value()
    goal = desired_values(inputs)
    stand = inputs.stand_ins()
    for s, of in stand.items():
        goal[of] = goal.get(of, ZERO) + goal.pop(s, ZERO)
    current = {s: h.quantity * inputs.price(s) for s, h in inputs.held().items()}
    combined = dict(current)
    for s, of in stand.items():
        combined[of] = combined.get(of, ZERO) + combined.pop(s, ZERO)
    cash = inputs.cash + sum(current.values(), ZERO) - sum(goal.values(), ZERO)
    if cash > _cash_ceiling(inputs, total):
        wanted = {s: g - combined.get(s, ZERO) for s, g in goal.items() if g > combined.get(s, ZERO)}
        _spread(inputs, wanted, cash - total * max(inputs.model.cash, inputs.policy.min_cash), total, current)
        for s, w in wanted.items():
            if goal.get(s, ZERO) >= combined.get(s, ZERO):  # a sale to the edge stays one: the heuristic never buys
                goal[s] = combined.get(s, ZERO) + w           # back what it sells
        cash = inputs.cash + sum(current.values(), ZERO) - sum(goal.values(), ZERO)
    return goal, cash


@attrs.frozen
class Solution:
    sells: np.ndarray
    buys: np.ndarray
    status: str
    objective: float
    gap: float | None
    bound: float
    cuts: int
    seconds: float


def solve(p: Problem, inputs: Inputs, cov: np.ndarray | None = None, te_cap: float | None = None,
          drop: frozenset[str] = frozenset()) -> Solution:
    """Solve the MILP; `drop` leaves out constraint groups (used to find which one makes it infeasible).

    In whole shares, the integers are each asset's total sold and bought; the split of a sale over its lots
    is continuous. With whole-share lot bounds and linear lot costs an optimal vertex sells whole lots in
    order of cost and the rest from one lot, so the split comes out whole as well: far fewer integers (2 per
    asset instead of 1 per lot) for the same optimum. Should a split come out fractional anyway, the
    problem is solved again with an integer per lot."""
    sol = _solve(p, inputs, cov, te_cap, drop, lot_integers=False)
    if p.integer and sol.sells.size and np.any(np.abs(sol.sells - np.rint(sol.sells)) > 1e-6):
        sol = _solve(p, inputs, cov, te_cap, drop, lot_integers=True)
    return sol


class _Rows:
    """Sparse constraint rows gathered as coordinates, assembled once."""

    def __init__(self, nv: int):
        self.nv, self.r, self.c, self.v, self.lb, self.ub = nv, [], [], [], [], []

    def add(self, cols, vals, lb: float, ub: float) -> None:
        i = len(self.lb)
        cols = np.asarray(cols, dtype=int)
        self.r.append(np.full(len(cols), i)); self.c.append(cols); self.v.append(np.asarray(vals, dtype=float))
        self.lb.append(lb); self.ub.append(ub)

    def each(self, cols: np.ndarray, vals: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> None:
        """One row per entry of `lb`, each holding one column of every block: cols/vals are (rows, k)."""
        n, k = cols.shape
        i = len(self.lb)
        self.r.append(np.repeat(np.arange(i, i + n), k)); self.c.append(cols.ravel()); self.v.append(vals.ravel())
        self.lb.extend(lb.tolist()); self.ub.extend(ub.tolist())

    def matrix(self) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        m = sparse.csr_matrix((np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
                              shape=(len(self.lb), self.nv))
        return m, np.array(self.lb), np.array(self.ub)


def _solve(p: Problem, inputs: Inputs, cov: np.ndarray | None, te_cap: float | None, drop: frozenset[str],
           lot_integers: bool) -> Solution:
    """Each asset's post-trade value is written with its total sold t (one column) rather than with every
    lot, so a lot appears in one row (its asset's total) and in the tax budget: the matrix stays small and
    HiGHS presolves and solves it in a fraction of the time. The binary that forbids buying and selling one
    asset exists only where a round trip could pay (a lot whose sale is a tax benefit larger than the
    costs); elsewhere a round trip only adds cost and is never optimal, and any left in a solution within
    the gap is netted out. With fractional shares the LP relaxation is solved first: when no asset is both
    bought and sold in it, it is already optimal for the MILP; otherwise the MILP starts from it, netted.
    An asset's sale is best taken from its lots in order of tax (that order spends the least tax budget too,
    and nothing else depends on which lots), so only the lots that cover the most its band lets it sell are
    offered to the solver."""
    L, A = p.n_lots, p.n_assets
    nv = L + 4 * A + 1
    s_, b_, d_, z_, dc, t_ = 0, L, L + A, L + 2 * A, L + 3 * A, L + 3 * A + 1
    lot_asset = np.array([a for a, _ in p.lots], dtype=int)
    asset_sell_cost = np.zeros(A)
    asset_sell_cost[lot_asset] = p.sell_cost  # the same for every lot of an asset: price * bps + per share
    A_ = np.arange(A)
    c = np.zeros(nv)
    c[s_:b_] = p.tax
    c[b_:d_] = p.buy_cost
    c[d_:z_] = p.drift_weight
    c[dc] = 1.0  # cash is an asset of the model too: idle or missing cash is drift
    c[t_:] = asset_sell_cost
    rows = _Rows(nv)
    base_value = p.price * p.held
    # post value of asset a = base + price * (b - t);  d >= post - T  and  d >= T - post
    cols = np.stack([b_ + A_, t_ + A_, d_ + A_], axis=1)
    rows.each(cols, np.stack([p.price, -p.price, -np.ones(A)], axis=1), np.full(A, -np.inf), p.goal_value - base_value)
    rows.each(cols, np.stack([-p.price, p.price, -np.ones(A)], axis=1), np.full(A, -np.inf), base_value - p.goal_value)
    floor = float(inputs.policy.min_cash) * p.total
    cash_cols = np.concatenate([t_ + A_, b_ + A_])
    cash_vals = np.concatenate([p.price - asset_sell_cost, -(p.price + p.buy_cost)])
    target_cash = p.goal_cash
    # dc >= cash_after - target and dc >= target - cash_after, with cash_after = cash + entries
    rows.add(np.append(cash_cols, dc), np.append(cash_vals, -1.0), -np.inf, target_cash - p.cash)
    rows.add(np.append(cash_cols, dc), np.append(-cash_vals, -1.0), -np.inf, p.cash - target_cash)
    if "cash" not in drop:
        rows.add(cash_cols, cash_vals, floor - p.cash, np.inf)
    cap = inputs.policy.turnover_cap
    if cap is not None and "turnover" not in drop:
        rows.add(cash_cols, np.concatenate([p.price, p.price]), -np.inf, float(cap) * p.total)
    bounded = "bounds" not in drop
    if bounded:
        rows.each(np.stack([b_ + A_, t_ + A_], axis=1), np.stack([p.price, -p.price], axis=1),
                  p.bounds_lo * p.total - base_value, p.bounds_hi * p.total - base_value)
    budget = inputs.policy.tax_budget
    if budget is not None and "tax" not in drop:
        rows.add(s_ + np.arange(L), p.tax, -np.inf, float(budget))
    # t = the asset's total sold (the integer of a whole-share sale)
    rows.r.append(lot_asset + len(rows.lb)); rows.c.append(s_ + np.arange(L)); rows.v.append(np.ones(L))
    rows.r.append(A_ + len(rows.lb)); rows.c.append(t_ + A_); rows.v.append(-np.ones(A))
    rows.lb.extend([0.0] * A); rows.ub.extend([0.0] * A)
    # the most each asset can be bought or sold: its band caps the one side it trades on
    buy_top = p.buy_ub.copy()
    sell_top = p.held.copy()
    if bounded:
        with np.errstate(divide="ignore", invalid="ignore"):
            buy_top = np.minimum(buy_top, np.maximum((p.bounds_hi * p.total - base_value) / p.price, 0.0))
            sell_top = np.minimum(sell_top, np.maximum((base_value - p.bounds_lo * p.total) / p.price, 0.0))
    round_trip = asset_sell_cost[lot_asset] + p.tax + p.buy_cost[lot_asset]  # per share sold and bought back
    may_pay = np.zeros(A, dtype=bool)
    may_pay[lot_asset[round_trip <= 0]] = True
    may_pay &= (buy_top > 0) & (sell_top > 0)
    for a in np.nonzero(may_pay)[0]:  # never buy and sell one asset: buys need z = 1, sells need z = 0
        rows.add([b_ + a, z_ + a], [1.0, -buy_top[a]], -np.inf, 0.0)
        rows.add([t_ + a, z_ + a], [1.0, sell_top[a]], -np.inf, sell_top[a])
    lo = np.zeros(nv)
    hi = np.concatenate([p.sell_ub, buy_top, np.full(A, np.inf), may_pay.astype(float), [np.inf], sell_top])
    whole = 1 if p.integer else 0
    integrality = np.concatenate([np.full(L, whole if lot_integers else 0), np.full(A, whole), np.zeros(A),
                                  may_pay.astype(float), [0], np.full(A, whole)])
    if p.integer:  # lots may hold fractions (after splits); whole-share sells round down within the lot
        hi[s_:b_] = np.floor(hi[s_:b_] + 1e-9)
        hi[b_:d_] = np.floor(hi[b_:d_] + 1e-9)
        hi[t_:] = np.floor(hi[t_:] + 1e-9)
    # lots past those (in order of tax) that cover the most the asset may sell are never needed
    order = np.lexsort((np.arange(L), p.tax, lot_asset))
    room = hi[s_:b_][order]
    before = np.cumsum(room) - room
    first = np.searchsorted(lot_asset[order], np.arange(A))  # where each asset's lots start in `order`
    before -= np.cumsum(room)[first - 1][lot_asset[order]] * (first[lot_asset[order]] > 0)
    hi[s_ + order[before >= hi[t_:][lot_asset[order]] - 1e-9]] = 0.0
    started = time.perf_counter()
    cuts = 0
    v = _Vars(s_, b_, d_, z_, dc, t_, L, A, lot_asset, may_pay)
    gap = abs_gap(p)
    while True:
        matrix, row_lo, row_hi = rows.matrix()
        if p.integer and integrality.any():
            res = _highs(c, matrix, row_lo, row_hi, lo, hi, integrality, None, gap)
        else:  # fractional shares: the LP relaxation, a MILP solution unless it buys and sells an asset
            res = _highs(c, matrix, row_lo, row_hi, lo, hi, None, None, gap)
            if res.x is not None and _round_trips(v, res.x).any():  # start the MILP from it, netted
                start = _netted(p, inputs, v, res.x)
                if not _satisfies(start, matrix, row_lo, row_hi, lo, hi, integrality):
                    start = None
                res = _highs(c, matrix, row_lo, row_hi, lo, hi, integrality, start, gap)
        if res.x is None:
            return Solution(np.zeros(L), np.zeros(A), res.status, math.nan, None, math.nan, cuts,
                            time.perf_counter() - started)
        x = res.x
        if cov is None or te_cap is None or "tracking-error" in drop:
            break
        w = _weights(p, x[s_:b_], x[b_:d_], lot_asset)
        wm = p.target_value / p.total
        diff = w - wm
        te = math.sqrt(max(float(diff @ cov @ diff), 0.0))
        if te <= te_cap * (1 + 1e-6) or cuts >= MAX_CUTS:
            break
        # outer cut of the convex TE^2 at w: te^2 + g.(w' - w) <= cap^2, with w' linear in b and t
        g = 2 * cov @ diff
        coef = g * p.price / p.total
        w0 = base_value / p.total
        rows.add(np.concatenate([b_ + A_, t_ + A_]), np.concatenate([coef, -coef]), -np.inf,
                 te_cap ** 2 - te ** 2 + float(g @ w) - float(g @ w0))
        cuts += 1
    sells, buys = _net_round_trips(p, x[s_:b_].copy(), x[b_:d_].copy(), lot_asset)
    return Solution(sells, buys, res.status, res.objective, res.gap, res.bound, cuts, time.perf_counter() - started)


@attrs.frozen
class _Vars:
    """Where each block of variables starts, and what the blocks share."""

    s: int
    b: int
    d: int
    z: int
    dc: int
    t: int
    L: int
    A: int
    lot_asset: np.ndarray
    may_pay: np.ndarray


def _round_trips(v: _Vars, x: np.ndarray) -> np.ndarray:
    """The assets with a binary that a (relaxed) solution both buys and sells."""
    return v.may_pay & (x[v.b:v.d] > 1e-9) & (x[v.t:] > 1e-9)


@attrs.frozen
class _Result:
    x: np.ndarray | None
    status: str
    objective: float
    gap: float | None
    bound: float  # no solution is better than this (the dual bound; the objective itself for an LP)


def _highs(c, matrix: sparse.csr_matrix, row_lo, row_hi, lo, hi, integrality, start, abs_gap: float) -> _Result:
    """One HiGHS run (the LP relaxation when `integrality` is None), started from `start` if given: a feasible
    solution that HiGHS takes as its first incumbent."""
    csc = matrix.tocsc()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(c), matrix.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = c, lo, hi
    lp.row_lower_, lp.row_upper_ = row_lo, row_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = csc.indptr, csc.indices, csc.data
    mip = integrality is not None and bool(np.any(integrality))
    if mip:
        kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        lp.integrality_ = [kinds[int(k)] for k in integrality]
    for presolve in ("on", "off"):
        h = _new_highs()
        # a MIP solution is held to the LP's feasibility tolerance (HiGHS's default 1e-6 let its feasibility-jump
        # heuristic hand over points its own final check then refused)
        for name, value in (("output_flag", False), ("threads", 1), ("presolve", presolve), ("time_limit", TIME_LIMIT),
                            ("mip_rel_gap", MIP_GAP), ("mip_abs_gap", abs_gap), ("mip_feasibility_tolerance", 1e-7),
                            ("random_seed", 0)):
            h.setOptionValue(name, value)
        h.passModel(lp)
        if mip and start is not None:
            solution = highspy.HighsSolution()
            solution.col_value = list(start)
            solution.value_valid = True
            h.setSolution(solution)
        h.run()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kSolveError:
            break  # else once more without presolve, the usual cure for a failed postsolve
    info = h.getInfo()
    named = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kInfeasible: "infeasible",
             highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
             highspy.HighsModelStatus.kTimeLimit: "iteration or time limit",
             highspy.HighsModelStatus.kIterationLimit: "iteration or time limit",
             highspy.HighsModelStatus.kUnbounded: "unbounded"}.get(status, f"status {h.modelStatusToString(status)}")
    if info.primal_solution_status != 2:  # no feasible solution
        return _Result(None, named, math.nan, None, math.nan)
    x = np.array(h.getSolution().col_value)
    value = float(info.objective_function_value)
    if not mip:
        return _Result(x, named, value, 0.0, value)
    return _Result(x, named, value, float(info.mip_gap), float(info.mip_dual_bound))


_HIGHS_QUIET = False


def _new_highs() -> "highspy.Highs":
    """A Highs instance; the first one of a process prints a banner on the C stdout, kept off Folio's output."""
    global _HIGHS_QUIET
    if _HIGHS_QUIET:
        return highspy.Highs()
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _HIGHS_QUIET = True
    return h


def _satisfies(x: np.ndarray, matrix, row_lo, row_hi, lo, hi, integrality) -> bool:
    """Whether a point keeps every row, bound and integrality (a start HiGHS would refuse is not offered)."""
    ax = matrix @ x
    tol = 1e-7 * np.maximum(1.0, np.abs(ax))
    whole = integrality.astype(bool)
    return bool(np.all(ax >= row_lo - tol) and np.all(ax <= row_hi + tol) and np.all(x >= lo - 1e-9)
                and np.all(x <= hi + 1e-9) and np.all(np.abs(x[whole] - np.rint(x[whole])) <= 1e-9))


def _complete(p: Problem, inputs: Inputs, v: _Vars, sells: np.ndarray, buys: np.ndarray) -> np.ndarray:
    """A full variable vector from sells per lot and buys per asset: totals, drifts and the binaries."""
    x = np.zeros(v.L + 4 * v.A + 1)
    sold = np.bincount(v.lot_asset, weights=sells, minlength=v.A) if v.L else np.zeros(v.A)
    x[v.s:v.b], x[v.b:v.d], x[v.t:] = sells, buys, sold
    post = p.price * (p.held - sold + buys)
    x[v.d:v.z] = np.abs(post - p.goal_value)
    x[v.z:v.dc] = np.where(v.may_pay & (buys > 0), 1.0, 0.0)
    sell_cost = np.zeros(v.A)
    sell_cost[v.lot_asset] = p.sell_cost
    cash = p.cash + float(((p.price - sell_cost) * sold).sum()) - float(((p.price + p.buy_cost) * buys).sum())
    x[v.dc] = abs(cash - p.goal_cash)
    return x


def _netted(p: Problem, inputs: Inputs, v: _Vars, x: np.ndarray) -> np.ndarray:
    """The LP solution with its round trips taken out: a feasible start in fractional shares."""
    sells, buys = _net_round_trips(p, x[v.s:v.b].copy(), x[v.b:v.d].copy(), v.lot_asset)
    return _complete(p, inputs, v, sells, buys)


def _net_round_trips(p: Problem, sells: np.ndarray, buys: np.ndarray, lot_asset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Take out any round trip left in a solution within the gap (an asset both bought and sold where a round
    trip cannot pay): keep the net trade, un-selling the lots dearest to sell first. Cost and tax only fall,
    cash only rises, and drift, bands and tracking error are unchanged."""
    sold = np.bincount(lot_asset, weights=sells, minlength=p.n_assets) if len(sells) else np.zeros(p.n_assets)
    for a in np.nonzero((sold > 1e-9) & (buys > 1e-9))[0]:
        m = min(sold[a], buys[a])
        buys[a] -= m
        for l in sorted(np.nonzero((lot_asset == a) & (sells > 0))[0], key=lambda l: -p.tax[l]):
            back = min(m, sells[l])
            sells[l] -= back
            m -= back
            if m <= 1e-12:
                break
    return sells, buys


def _weights(p: Problem, sells: np.ndarray, buys: np.ndarray, lot_asset: np.ndarray) -> np.ndarray:
    sold = np.bincount(lot_asset, weights=sells, minlength=p.n_assets) if len(sells) else np.zeros(p.n_assets)
    return p.price * (p.held - sold + buys) / p.total


GROUPS = (("turnover", "the turnover cap"), ("tax", "the tax budget"), ("cash", "the minimum cash buffer"),
          ("bounds", "the model's weight bands"), ("tracking-error", "the tracking-error cap"))


def optimize(inputs: Inputs, *, cov: np.ndarray | None = None, wash_risk: set[str] | None = None) -> tuple[Plan, dict]:
    """The optimal trade list and a report of the solve (solver, status, objective split, gap, time limit)."""
    inputs = inputs.as_planned()
    p = build(inputs, wash_risk)
    te_cap = float(inputs.policy.tracking_error_cap) if inputs.policy.tracking_error_cap is not None else None
    sol = solve(p, inputs, cov, te_cap)
    if sol.status == "infeasible":
        raise Infeasible(diagnose(p, inputs, cov, te_cap))
    if np.isnan(sol.objective):
        raise DomainError(f"the optimizer stopped without a solution ({sol.status}) within {TIME_LIMIT} s")
    # the minimum trade is the policy's, not the solve's: orders under it are dropped as the heuristic drops them (found
    # by review: buys of 37.98 under a minimum of 500), what a dropped sale no longer funds is trimmed, and a buy
    # trimmed under the minimum is dropped too (which only leaves more cash)
    skipped: list[tuple[str, str]] = []
    orders = _drop_small(inputs, within_cash(inputs, _drop_small(inputs, to_orders(inputs, p, sol), skipped)), skipped)
    bought = {o.symbol for o in orders if o.side == "buy"}
    notes = tuple(f"buy of {of} redirected to {s}: {of} is restricted through {inputs.restricted[of]} by "
                  f"{inputs.restricted_by.get(of, 'a loss sale')}" for s, of in sorted(stand_ins(inputs).items())
                  if s in bought and s not in inputs.stand_ins())
    plan = _finish(inputs, orders, tuple(skipped), notes, inputs.total_value(), {h.symbol: h.quantity * inputs.price(h.symbol)
                                                                     for h in inputs.holdings})
    parts = objective_parts(inputs, p, plan)
    report = {"solver": "HiGHS (highspy)", "status": sol.status,
              "objective": f"{sum(parts.values()):.2f}", **{k: f"{v:.2f}" for k, v in parts.items()},
              "mip_gap_limit": str(MIP_GAP), "mip_gap": "n/a" if sol.gap is None else f"{sol.gap:.1e}",
              "mip_gap_abs_limit": f"{abs_gap(p):.2f}", "objective_bound": f"{sol.bound:.2f}",
              "time_limit_seconds": str(TIME_LIMIT),
              "tracking_error_cuts": str(sol.cuts), "variables": str(p.n_lots + 4 * p.n_assets + 1),
              "whole_shares": p.integer}
    if cov is not None:
        w = np.array([float(plan.weights_after.get(s, ZERO)) for s in p.assets])
        wm = p.target_value / p.total
        report["tracking_error"] = f"{math.sqrt(max(float((w - wm) @ cov @ (w - wm)), 0.0)):.6f}"
        if te_cap is not None:
            report["tracking_error_cap"] = f"{te_cap:.6f}"
    return plan, report


def diagnose(p: Problem, inputs: Inputs, cov, te_cap) -> str:
    """Name the constraint that cannot be met: the first group whose removal makes the problem feasible."""
    for key, name in GROUPS:
        if solve(p, inputs, cov, te_cap, drop=frozenset({key})).status != "infeasible":
            return (f"no trade list meets every constraint: {name} cannot be met together with the others "
                    f"(the problem is feasible without it); relax it in the policy or the model")
    return "no trade list meets every constraint, even with any single constraint group relaxed"


def to_orders(inputs: Inputs, p: Problem, sol: Solution) -> list[Order]:
    """The solver's shares as Decimal orders (the one exit conversion): whole shares rounded to the
    nearest integer, fractions rounded down to a millionth, sells with their lots."""
    def shares(x: float) -> Decimal:
        if p.integer:
            return Decimal(int(round(x)))
        return Decimal(f"{max(float(x), 0.0):.9f}").quantize(FRACTION, rounding=ROUND_DOWN)  # solver noise below 1e-9 dropped

    orders = []
    by_asset: dict[int, list[LotSale]] = {}
    for (a, lot), x in zip(p.lots, sol.sells):
        q = min(shares(x), lot.quantity)
        if q <= 0:
            continue
        price = inputs.price(p.assets[a])
        basis = lot.basis if q == lot.quantity else round_cents(lot.basis * q / lot.quantity)
        term = "long" if is_long_term(lot.hp_start, inputs.as_of) else "short"
        by_asset.setdefault(a, []).append(LotSale(lot_id=lot.lot_id, quantity=q, basis=basis,
                                                  proceeds=round_cents(q * price), term=term))
    for a, lots in sorted(by_asset.items()):
        orders.append(Order(symbol=p.assets[a], side="sell", quantity=sum((l.quantity for l in lots), ZERO),
                            price=inputs.price(p.assets[a]), lots=tuple(lots), note="optimal"))
    for a, x in enumerate(sol.buys):
        q = shares(x)
        if q > 0:
            orders.append(Order(symbol=p.assets[a], side="buy", quantity=q, price=inputs.price(p.assets[a]), note="optimal"))
    return orders


def within_cash(inputs: Inputs, orders: list[Order]) -> list[Order]:
    """The orders with the buys trimmed, where rounding made them spend more cash than the solve kept: whole shares
    are rounded to the nearest and costs to the cent, which can take cash a few cents under the minimum buffer, or
    under zero (found by a backtest: a fill of the plan was refused for a cent). The largest buy gives up what the
    shortfall is worth (a share at least, or a millionth), until cash after the trades is at the minimum buffer, or
    at what the sales alone leave if that is less."""
    sells = [o for o in orders if o.side == "sell"]
    buys = [o for o in orders if o.side == "buy"]
    bound = min(round_cents(inputs.policy.min_cash * inputs.total_value()), _cash_after(inputs, sells))
    step = _quantum(inputs)
    while buys and (short := bound - _cash_after(inputs, sells + buys)) > 0:
        k = max(range(len(buys)), key=lambda i: (buys[i].value, buys[i].symbol))
        o = buys[k]
        fewer = max(step, (short / o.price / step).to_integral_value(rounding=ROUND_CEILING) * step)
        if o.quantity > fewer:
            buys[k] = attrs.evolve(o, quantity=o.quantity - fewer)
        else:
            del buys[k]
    return sells + buys


def objective_parts(inputs: Inputs, p: Problem, plan: Plan) -> dict[str, float]:
    """Drift (L1 in money, weighted), cost and tax of a plan, as the optimizer counts them."""
    qty = {s: float(h.quantity) for s, h in inputs.held().items()}
    tax = 0.0
    lot_tax = {lot.lot_id: t for (_, lot), t in zip(p.lots, p.tax)}
    for o in plan.orders:
        qty[o.symbol] = qty.get(o.symbol, 0.0) + float(o.quantity) * (1 if o.side == "buy" else -1)
        for l in o.lots:
            tax += lot_tax.get(l.lot_id, 0.0) * float(l.quantity)
    drift = sum(p.drift_weight[i] * abs(p.price[i] * qty.get(s, 0.0) - p.goal_value[i]) for i, s in enumerate(p.assets))
    drift += abs(float(plan.cash_after) - p.goal_cash)
    return {"drift": float(drift), "cost": float(plan.costs), "tax": float(tax)}
