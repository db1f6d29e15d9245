"""Optimal rebalancing: a mixed-integer program over lots, solved with scipy.optimize.milp (HiGHS).

Variables: shares sold from each lot, shares bought of each asset (integers with whole shares), the
absolute drift of each asset and of cash in money, and one binary per asset that forbids buying and selling it
in one proposal. Objective, in money (never in fractions of the portfolio: HiGHS misjudges tiny
coefficients): drift from the model (L1, weighted per asset) + transaction costs + taxes at the
owner's rates on each lot's gain (a loss is a benefit, unless a recent purchase would disallow it).
Constraints: cash after trading at least the minimum buffer; turnover at most the cap; each asset's
weight within its model band; no sale of short-term gain lots, or a tax budget, when the policy
says so; no buy of a restricted security; and an ex-ante tracking-error cap handled with outer
linear cuts, added until the exact tracking error of the solution is within the cap.

Floats live only here: Decimals are converted on entry, and the solution is turned back into
Decimal shares (rounded down where fractional) and priced exactly by the trade-list code.
"""

from __future__ import annotations

import math
import time
from decimal import ROUND_DOWN, Decimal

import attrs
import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from domain.errors import DomainError
from domain.lots import Lot
from domain.rebalancing.drift import band_of
from domain.rebalancing.model import Inputs
from domain.rebalancing.trades import BPS, FRACTION, LotSale, Order, Plan, _finish, _lots
from domain.values import ZERO, is_long_term, round_cents

TIME_LIMIT = 20.0
MIP_GAP = 1e-4
MAX_CUTS = 25


class Infeasible(DomainError):
    """No trade list meets every constraint; the message names the one that cannot be met."""


@attrs.frozen
class Problem:
    """The MILP in arrays, with the index of every variable."""

    assets: tuple[str, ...]
    lots: tuple[tuple[int, Lot], ...]  # (asset index, lot)
    price: np.ndarray
    held: np.ndarray
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

    @property
    def n_lots(self) -> int:
        return len(self.lots)

    @property
    def n_assets(self) -> int:
        return len(self.assets)


def build(inputs: Inputs, wash_risk: set[str] | None = None) -> Problem:
    """Turn Decimal inputs into float arrays (the one entry conversion)."""
    pol = inputs.policy
    targets = {t.symbol: t for t in inputs.model.targets}
    held = inputs.held()
    assets = tuple(sorted(s for s in set(targets) | set(held) if s in inputs.prices))
    idx = {s: i for i, s in enumerate(assets)}
    price = np.array([float(inputs.price(s)) for s in assets])
    qty = np.array([float(held[s].quantity) if s in held else 0.0 for s in assets])
    total = float(inputs.total_value())
    k, ps = float(pol.cost_bps * BPS), float(pol.cost_per_share)
    lots, tax, sell_ub = [], [], []
    rates = inputs.rates
    for s in assets:
        for lot in _lots(inputs, s):
            long_term = is_long_term(lot.hp_start, inputs.as_of)
            gain = float(inputs.price(s) - lot.unit_basis)
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
    lot_price = np.array([price[a] for a, _ in lots])
    return Problem(
        assets=assets, lots=tuple(lots), price=price, held=qty,
        target_value=np.array([float(targets[s].weight) * total if s in targets else 0.0 for s in assets]),
        total=total, cash=float(inputs.cash), sell_cost=lot_price * k + ps, buy_cost=price * k + ps,
        tax=np.array(tax), drift_weight=np.ones(len(assets)), bounds_lo=np.array(lo), bounds_hi=np.array(hi),
        sell_ub=np.array(sell_ub), buy_ub=buy_ub, integer=pol.whole_shares)


@attrs.frozen
class Solution:
    sells: np.ndarray
    buys: np.ndarray
    status: str
    objective: float
    gap: float | None
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


def _solve(p: Problem, inputs: Inputs, cov: np.ndarray | None, te_cap: float | None, drop: frozenset[str],
           lot_integers: bool) -> Solution:
    L, A = p.n_lots, p.n_assets
    nv = L + 4 * A + 1
    s_, b_, d_, z_, dc, t_ = 0, L, L + A, L + 2 * A, L + 3 * A, L + 3 * A + 1
    lot_asset = np.array([a for a, _ in p.lots], dtype=int)
    lot_price = p.price[lot_asset] if L else np.zeros(0)
    c = np.zeros(nv)
    c[s_:b_] = p.sell_cost + p.tax
    c[b_:d_] = p.buy_cost
    c[d_:z_] = p.drift_weight
    c[dc] = 1.0  # cash is an asset of the model too: idle or missing cash is drift
    rows, lb, ub = [], [], []

    def row(entries: dict[int, float] | list[tuple[int, float]]) -> sparse.csr_matrix:
        items = entries.items() if isinstance(entries, dict) else entries
        cols = [i for i, _ in items]
        vals = [x for _, x in items]
        return sparse.csr_matrix((vals, ([0] * len(cols), cols)), shape=(1, nv))

    # post value of asset a = price*held - price*sum(sells of its lots) + price*buys
    post = []
    for a in range(A):
        entries = [(s_ + l, -p.price[a]) for l in np.nonzero(lot_asset == a)[0]] + [(b_ + a, p.price[a])]
        post.append(entries)
    base_value = p.price * p.held
    for a in range(A):
        # d >= post - T  and  d >= T - post
        rows.append(row(post[a] + [(d_ + a, -1.0)]))
        lb.append(-np.inf); ub.append(p.target_value[a] - base_value[a])
        rows.append(row([(i, -x) for i, x in post[a]] + [(d_ + a, -1.0)]))
        lb.append(-np.inf); ub.append(base_value[a] - p.target_value[a])
    floor = float(inputs.policy.min_cash) * p.total
    cash_entries = [(s_ + l, lot_price[l] - p.sell_cost[l]) for l in range(L)] + \
                   [(b_ + a, -(p.price[a] + p.buy_cost[a])) for a in range(A)]
    target_cash = float(inputs.model.cash) * p.total
    # dc >= cash_after - target and dc >= target - cash_after, with cash_after = cash + entries
    rows.append(row(cash_entries + [(dc, -1.0)])); lb.append(-np.inf); ub.append(target_cash - p.cash)
    rows.append(row([(i, -x) for i, x in cash_entries] + [(dc, -1.0)])); lb.append(-np.inf); ub.append(p.cash - target_cash)
    if "cash" not in drop:
        rows.append(row(cash_entries)); lb.append(floor - p.cash); ub.append(np.inf)
    cap = inputs.policy.turnover_cap
    if cap is not None and "turnover" not in drop:
        entries = [(s_ + l, lot_price[l]) for l in range(L)] + [(b_ + a, p.price[a]) for a in range(A)]
        rows.append(row(entries)); lb.append(-np.inf); ub.append(float(cap) * p.total)
    if "bounds" not in drop:
        for a in range(A):
            rows.append(row(post[a]))
            lb.append(p.bounds_lo[a] * p.total - base_value[a]); ub.append(p.bounds_hi[a] * p.total - base_value[a])
    budget = inputs.policy.tax_budget
    if budget is not None and "tax" not in drop:
        rows.append(row([(s_ + l, p.tax[l]) for l in range(L)])); lb.append(-np.inf); ub.append(float(budget))
    for a in range(A):  # never buy and sell one asset: buys need z = 1, sells need z = 0
        rows.append(row([(b_ + a, 1.0), (z_ + a, -max(p.buy_ub[a], 0.0))])); lb.append(-np.inf); ub.append(0.0)
        lots_of = np.nonzero(lot_asset == a)[0]
        if len(lots_of):
            rows.append(row([(s_ + l, 1.0) for l in lots_of] + [(z_ + a, p.held[a])])); lb.append(-np.inf); ub.append(p.held[a])
        # t = the asset's total sold (the integer of a whole-share sale)
        rows.append(row([(s_ + l, 1.0) for l in lots_of] + [(t_ + a, -1.0)])); lb.append(0.0); ub.append(0.0)
    lo = np.zeros(nv)
    hi = np.concatenate([p.sell_ub, p.buy_ub, np.full(A, np.inf), np.ones(A), [np.inf], p.held])
    whole = 1 if p.integer else 0
    integrality = np.concatenate([np.full(L, whole if lot_integers else 0), np.full(A, whole), np.zeros(A), np.ones(A),
                                  [0], np.full(A, whole)])
    if p.integer:  # lots may hold fractions (after splits); whole-share sells round down within the lot
        hi[s_:b_] = np.floor(hi[s_:b_] + 1e-9)
        hi[b_:d_] = np.floor(hi[b_:d_])
        hi[t_:] = np.floor(hi[t_:] + 1e-9)
    started = time.perf_counter()
    cuts = 0
    te_rows: list = []
    while True:
        a_all = sparse.vstack(rows + [r for r, _, _ in te_rows]) if rows or te_rows else sparse.csr_matrix((0, nv))
        lbs = np.array(lb + [x for _, x, _ in te_rows])
        ubs = np.array(ub + [x for _, _, x in te_rows])
        res = milp(c, constraints=LinearConstraint(a_all, lbs, ubs), integrality=integrality, bounds=Bounds(lo, hi),
                   options={"time_limit": TIME_LIMIT, "mip_rel_gap": MIP_GAP, "presolve": True})
        if res.x is None:
            return Solution(np.zeros(L), np.zeros(A), _status(res), math.nan, None, cuts, time.perf_counter() - started)
        x = res.x
        if cov is None or te_cap is None or "tracking-error" in drop:
            break
        w = _weights(p, x[s_:b_], x[b_:d_], lot_asset)
        wm = p.target_value / p.total
        diff = w - wm
        te = math.sqrt(max(float(diff @ cov @ diff), 0.0))
        if te <= te_cap * (1 + 1e-6) or cuts >= MAX_CUTS:
            break
        # outer cut of the convex TE^2 at w: te^2 + g.(w' - w) <= cap^2, with w' linear in the variables
        g = 2 * cov @ diff
        entries: dict[int, float] = {}
        for a in range(A):
            coef = g[a] * p.price[a] / p.total
            entries[b_ + a] = entries.get(b_ + a, 0.0) + coef
            for l in np.nonzero(lot_asset == a)[0]:
                entries[s_ + l] = entries.get(s_ + l, 0.0) - coef
        w0 = base_value / p.total
        rhs = te_cap ** 2 - te ** 2 + float(g @ w) - float(g @ w0)
        te_rows.append((row(entries), -np.inf, rhs))
        cuts += 1
    gap = getattr(res, "mip_gap", None)
    return Solution(x[s_:b_], x[b_:d_], _status(res), float(res.fun), None if gap is None else float(gap), cuts,
                    time.perf_counter() - started)


def _weights(p: Problem, sells: np.ndarray, buys: np.ndarray, lot_asset: np.ndarray) -> np.ndarray:
    sold = np.bincount(lot_asset, weights=sells, minlength=p.n_assets) if len(sells) else np.zeros(p.n_assets)
    return p.price * (p.held - sold + buys) / p.total


def _status(res) -> str:
    return {0: "optimal", 1: "iteration or time limit", 2: "infeasible", 3: "unbounded", 4: "numerical difficulties"}.get(
        res.status, f"status {res.status}")


GROUPS = (("turnover", "the turnover cap"), ("tax", "the tax budget"), ("cash", "the minimum cash buffer"),
          ("bounds", "the model's weight bands"), ("tracking-error", "the tracking-error cap"))


def optimize(inputs: Inputs, *, cov: np.ndarray | None = None, wash_risk: set[str] | None = None) -> tuple[Plan, dict]:
    """The optimal trade list and a report of the solve (solver, status, objective split, gap, time limit)."""
    p = build(inputs, wash_risk)
    te_cap = float(inputs.policy.tracking_error_cap) if inputs.policy.tracking_error_cap is not None else None
    sol = solve(p, inputs, cov, te_cap)
    if sol.status == "infeasible":
        raise Infeasible(diagnose(p, inputs, cov, te_cap))
    if np.isnan(sol.objective):
        raise DomainError(f"the optimizer stopped without a solution ({sol.status}) within {TIME_LIMIT} s")
    orders = to_orders(inputs, p, sol)
    plan = _finish(inputs, orders, (), (), inputs.total_value(), {h.symbol: h.quantity * inputs.price(h.symbol)
                                                                  for h in inputs.holdings})
    parts = objective_parts(inputs, p, plan)
    report = {"solver": "HiGHS (scipy.optimize.milp)", "status": sol.status,
              "objective": f"{sum(parts.values()):.2f}", **{k: f"{v:.2f}" for k, v in parts.items()},
              "mip_gap_limit": str(MIP_GAP), "mip_gap": "n/a" if sol.gap is None else f"{sol.gap:.1e}",
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


def objective_parts(inputs: Inputs, p: Problem, plan: Plan) -> dict[str, float]:
    """Drift (L1 in money, weighted), cost and tax of a plan, as the optimizer counts them."""
    qty = {s: float(h.quantity) for s, h in inputs.held().items()}
    tax = 0.0
    lot_tax = {lot.lot_id: t for (_, lot), t in zip(p.lots, p.tax)}
    for o in plan.orders:
        qty[o.symbol] = qty.get(o.symbol, 0.0) + float(o.quantity) * (1 if o.side == "buy" else -1)
        for l in o.lots:
            tax += lot_tax.get(l.lot_id, 0.0) * float(l.quantity)
    drift = sum(p.drift_weight[i] * abs(p.price[i] * qty.get(s, 0.0) - p.target_value[i]) for i, s in enumerate(p.assets))
    drift += abs(float(plan.cash_after) - float(inputs.model.cash) * p.total)
    return {"drift": float(drift), "cost": float(plan.costs), "tax": float(tax)}
