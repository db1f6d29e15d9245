"""Risk-based target weights: minimum volatility, target volatility, minimum CVaR, risk parity.

The invested budget is 1 minus the model's cash target; per-asset bounds are honoured. Solvers:
minimum volatility by an exact active-set method for the quadratic program (box bounds plus the
budget: each step solves the KKT system on the free assets, so 500 assets take milliseconds where
SLSQP takes seconds); target volatility with scipy's SLSQP; minimum CVaR as the Rockafellar-Uryasev
linear program with scipy's linprog (HiGHS); risk parity by Newton's method on Spinu's convex
formulation (equal contributions exactly), falling back to SLSQP when a bound binds.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from domain.errors import DomainError
from domain.rebalancing import risk


class TargetError(DomainError):
    """Targets cannot be found as asked (bounds that cannot sum to the budget, a volatility below the minimum)."""


@attrs.frozen
class Result:
    weights: np.ndarray
    solver: str
    status: str
    iterations: int


def check_bounds(lo: np.ndarray, hi: np.ndarray, budget: float, symbols) -> None:
    bad = [s for s, a, b in zip(symbols, lo, hi) if a > b or a < 0 or b > 1]
    if bad:
        raise TargetError(f"bounds of {', '.join(bad)} are not within 0 <= low <= high <= 1")
    if lo.sum() > budget + 1e-12 or hi.sum() < budget - 1e-12:
        raise TargetError(f"the bounds cannot sum to {budget:g}: lows add up to {lo.sum():g}, highs to {hi.sum():g}")


def min_vol(cov: np.ndarray, lo: np.ndarray, hi: np.ndarray, budget: float, max_iter: int = 1000) -> Result:
    """minimize w'Cw subject to sum(w) = budget, lo <= w <= hi (primal active set, exact)."""
    n = len(lo)
    w = _feasible_start(lo, hi, budget)
    at_lo = w <= lo + 1e-15
    at_hi = w >= hi - 1e-15
    for it in range(max_iter):
        free = ~(at_lo | at_hi)
        f = np.nonzero(free)[0]
        # equality-constrained step on the free set: min over p of (w+p)'C(w+p), sum(p_F) = 0, p elsewhere = 0
        g = cov @ w
        if len(f):
            k = np.zeros((len(f) + 1, len(f) + 1))
            k[:-1, :-1] = cov[np.ix_(f, f)]
            k[:-1, -1] = 1.0
            k[-1, :-1] = 1.0
            rhs = np.concatenate([-g[f], [0.0]])
            try:
                sol = np.linalg.solve(k, rhs)
            except np.linalg.LinAlgError:
                sol = np.linalg.lstsq(k, rhs, rcond=None)[0]
            p = np.zeros(n)
            p[f] = sol[:-1]
        else:
            p = np.zeros(n)
        if np.abs(p).max() > 1e-13:
            # longest step keeping bounds; a blocking bound joins the active set
            alpha, block = 1.0, None
            for i in f:
                if p[i] < 0 and w[i] + p[i] < lo[i]:
                    a = (lo[i] - w[i]) / p[i]
                    if a < alpha:
                        alpha, block = a, (i, "lo")
                elif p[i] > 0 and w[i] + p[i] > hi[i]:
                    a = (hi[i] - w[i]) / p[i]
                    if a < alpha:
                        alpha, block = a, (i, "hi")
            w = w + alpha * p
            if block is not None:
                i, side = block
                w[i] = lo[i] if side == "lo" else hi[i]
                (at_lo if side == "lo" else at_hi)[i] = True
                continue
        # at the minimum on this face: the budget's multiplier is the free assets' marginal risk
        g = cov @ w
        lam = g[f].mean() if len(f) else (g[at_lo | at_hi].mean())
        mu_lo = np.where(at_lo, g - lam, np.inf)
        mu_hi = np.where(at_hi, lam - g, np.inf)
        worst = min(mu_lo.min(), mu_hi.min())
        if worst >= -1e-12 * max(1.0, abs(lam)):
            return Result(w, "active-set QP (exact KKT)", "optimal", it + 1)
        if mu_lo.min() <= mu_hi.min():
            at_lo[int(np.argmin(mu_lo))] = False
        else:
            at_hi[int(np.argmin(mu_hi))] = False
    return Result(w, "active-set QP (exact KKT)", "iteration limit", max_iter)


def _feasible_start(lo: np.ndarray, hi: np.ndarray, budget: float) -> np.ndarray:
    """A point within the bounds summing to the budget: from the lows, filling the room in proportion."""
    w = lo.copy()
    room = hi - lo
    need = budget - lo.sum()
    if need > 0 and room.sum() > 0:
        w = w + room * (need / room.sum())
    return np.clip(w, lo, hi)


def target_vol(cov: np.ndarray, mean: np.ndarray, target: float, lo, hi, budget: float) -> Result:
    """The highest expected return with volatility at most `target` (SLSQP); below the minimum is refused."""
    if not (math.isfinite(target) and target > 0):
        raise TargetError(f"target volatility must be a positive annual figure (0.12 for 12%), not {target!r}")
    floor = min_vol(cov, lo, hi, budget)
    vmin = risk.volatility(floor.weights, cov)
    if target < vmin - 1e-9:
        raise TargetError(f"target volatility {target:.2%} is below the minimum achievable {vmin:.2%} "
                          f"({vmin:.6f}) with these assets and bounds: ask for at least that, or widen the bounds")
    cons = [{"type": "eq", "fun": lambda w: w.sum() - budget, "jac": lambda w: np.ones_like(w)},
            {"type": "ineq", "fun": lambda w: target ** 2 - w @ cov @ w, "jac": lambda w: -2 * cov @ w}]
    from scipy.optimize import minimize  # here, not at the top: scipy.optimize costs every CLI command 0.3 s
    res = minimize(lambda w: -mean @ w, floor.weights, jac=lambda w: -mean, bounds=list(zip(lo, hi)),
                   constraints=cons, method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
    w = np.clip(res.x, lo, hi)
    status = "optimal" if res.success else str(res.message)
    vol = risk.volatility(w, cov)
    if res.success and vol < target * (1 - 1e-6):
        # the highest-return portfolio within the bounds is calmer than asked: more risk would earn nothing
        status = f"optimal; volatility {vol:.2%} is below the target: the highest expected return within the bounds"
    return Result(w, "SLSQP", status, int(res.nit))


def min_cvar(r: np.ndarray, confidence: float, lo, hi, budget: float) -> Result:
    """Rockafellar-Uryasev: min a + 1/((1-c)T) sum(u), u_t >= -r_t.w - a, u >= 0 (HiGHS via linprog)."""
    t, n = r.shape
    c = np.concatenate([np.zeros(n), [1.0], np.full(t, 1.0 / ((1 - confidence) * t))])
    a_ub = np.hstack([-r, -np.ones((t, 1)), -np.eye(t)])
    b_ub = np.zeros(t)
    a_eq = np.concatenate([np.ones(n), [0.0], np.zeros(t)])[None, :]
    bounds = list(zip(lo, hi)) + [(None, None)] + [(0, None)] * t
    from scipy.optimize import linprog  # here, not at the top: scipy.optimize costs every CLI command 0.3 s
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[budget], bounds=bounds, method="highs")
    if res.x is None:
        raise TargetError(f"minimum CVaR: the linear program failed ({res.message})")
    return Result(res.x[:n], "linprog (HiGHS)", "optimal" if res.status == 0 else res.message, int(res.nit))


def risk_parity(cov: np.ndarray, lo, hi, budget: float) -> Result:
    """Equal risk contributions: Newton's method on min y'Cy/2 - sum(log y)/n, y > 0, then scaled to the budget."""
    n = len(lo)
    y = np.full(n, 1.0 / math.sqrt(max(float(np.ones(n) @ cov @ np.ones(n)), 1e-300)))
    it = 0
    for it in range(1, 200):
        grad = cov @ y - 1.0 / (n * y)
        hess = cov + np.diag(1.0 / (n * y * y))
        step = np.linalg.solve(hess, grad)
        alpha = 1.0
        while np.any(y - alpha * step <= 0):
            alpha /= 2
        y = y - alpha * step
        if alpha == 1.0 and float(grad @ step) < 1e-24:  # Newton decrement: converged to machine precision
            break
    w = y / y.sum() * budget
    if np.all(w >= lo - 1e-12) and np.all(w <= hi + 1e-12):
        return Result(w, "Newton (Spinu's convex formulation)", "optimal", it)

    def spread(v):
        rc = v * (cov @ v)
        return float(((rc[:, None] - rc[None, :]) ** 2).sum())

    cons = [{"type": "eq", "fun": lambda v: v.sum() - budget}]
    from scipy.optimize import minimize  # here, not at the top: scipy.optimize costs every CLI command 0.3 s
    res = minimize(spread, np.clip(w, lo, hi), bounds=list(zip(lo, hi)), constraints=cons, method="SLSQP",
                   options={"ftol": 1e-16, "maxiter": 1000})
    return Result(res.x, "SLSQP (bounds bind: contributions as equal as the bounds allow)",
                  "optimal" if res.success else res.message, int(res.nit))
