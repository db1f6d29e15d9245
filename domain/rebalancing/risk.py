"""Risk analytics on daily closes: returns, covariance (sample and Ledoit-Wolf), volatility, VaR and CVaR,
tracking error and contributions to risk. numpy floats inside; callers convert at the edges."""

from __future__ import annotations

import math
from statistics import NormalDist

import attrs
import numpy as np

from domain.errors import DomainError

TRADING_DAYS = 252


class RiskError(DomainError):
    """Risk cannot be estimated from the data given (too few prices, a missing history)."""


@attrs.frozen
class Covariance:
    symbols: tuple[str, ...]
    matrix: np.ndarray  # annualized
    method: str  # "sample" or "ledoit-wolf"
    shrinkage: float
    observations: int
    note: str = ""


def returns(closes: np.ndarray) -> np.ndarray:
    """Simple daily returns from a (days × assets) array of closes."""
    return closes[1:] / closes[:-1] - 1.0


def sample_cov(r: np.ndarray) -> np.ndarray:
    return np.cov(r, rowvar=False, ddof=1).reshape(r.shape[1], r.shape[1])


def ledoit_wolf(r: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf (2004) shrinkage of the sample covariance toward a scaled identity. Returns (cov, intensity)."""
    t, n = r.shape
    x = r - r.mean(axis=0)
    s = x.T @ x / t
    mu = np.trace(s) / n
    delta = np.linalg.norm(s - mu * np.eye(n), "fro") ** 2 / n
    # sum over days of ||x_k x_k' - S||^2, expanded so no n-by-n matrix per day is built
    norms = (x ** 2).sum(axis=1)
    beta_sum = float((norms ** 2).sum() - 2 * np.einsum("ki,ij,kj->", x, s, x) + t * (s ** 2).sum())
    beta = min(beta_sum / t ** 2 / n, delta)
    shrink = 0.0 if delta == 0 else beta / delta
    return shrink * mu * np.eye(n) + (1 - shrink) * s, float(shrink)


def covariance(symbols: tuple[str, ...], r: np.ndarray, *, shrink: bool = False) -> Covariance:
    """Annualized covariance; the sample one unless `shrink` or it is singular (then Ledoit-Wolf, said in `note`)."""
    t, n = r.shape
    if t < 2:
        raise RiskError(f"need at least 2 daily returns, found {t}")
    sample = sample_cov(r) * TRADING_DAYS
    why = "" if shrink else singular_reason(symbols, r, sample)
    if not shrink and not why:
        return Covariance(symbols, sample, "sample", 0.0, t)
    if not shrink and t > n:
        # assets that did not move carry no risk: their zero variance is a fact, not an estimation error, so the sample
        # covariance stands when the others' is invertible (found by review: shrinkage gave a constant asset a made-up
        # variance, and min-vol then held 2% of the risky one)
        sd = np.sqrt(np.maximum(np.diag(sample), 0.0))
        flat = sd <= 1e-12 * max(sd.max(), 1e-300)
        moving = np.nonzero(~flat)[0]
        if flat.any() and (len(moving) == 0 or _invertible(sample[np.ix_(moving, moving)])):
            names = ", ".join(symbols[i] for i in np.nonzero(flat)[0])
            return Covariance(symbols, sample, "sample", 0.0, t,
                              f"{names} did not move in the window: {'it carries' if flat.sum() == 1 else 'they carry'} "
                              f"no risk")
    lw, intensity = ledoit_wolf(r)
    if not _invertible(lw):
        # with very few returns the estimated shrinkage can be zero (two returns always give zero)
        raise RiskError(f"the covariance of {n} assets from {t} daily returns is singular"
                        + (f" ({why})" if why else "") + f" and stays so after Ledoit-Wolf shrinkage "
                        f"(shrinkage {intensity:.3f}): use a longer window (--window) or fewer assets")
    note = "" if shrink else (f"the sample covariance is singular ({why}): used the Ledoit-Wolf shrunk one "
                              f"(shrinkage {intensity:.3f})")
    return Covariance(symbols, lw * TRADING_DAYS, "ledoit-wolf", intensity, t, note)


def _invertible(m: np.ndarray) -> bool:
    eig = np.linalg.eigvalsh(m)
    return bool(eig.min() > 1e-12 * max(eig.max(), 1e-300))


def singular_reason(symbols: tuple[str, ...], r: np.ndarray, sample: np.ndarray) -> str:
    """Why the sample covariance cannot be inverted, or "" when it can."""
    t, n = r.shape
    if t <= n:
        # demeaned returns have rank at most t - 1
        return f"{t} daily returns for {n} assets: it needs more returns than assets"
    if _invertible(sample):
        return ""
    sd = np.sqrt(np.maximum(np.diag(sample), 0.0))
    flat = [symbols[i] for i in range(n) if sd[i] <= 1e-12 * max(sd.max(), 1e-300)]
    if flat:
        return f"{', '.join(flat)} did not move in the window"
    corr = sample / np.outer(sd, sd)
    pairs = [f"{symbols[i]} and {symbols[j]}" for i in range(n) for j in range(i + 1, n) if abs(corr[i, j]) > 1 - 1e-9]
    if pairs:
        return f"{'; '.join(pairs)} have perfectly correlated returns"
    return "the returns of some assets are a linear combination of the others'"


def volatility(w: np.ndarray, cov: np.ndarray) -> float:
    return float(math.sqrt(max(float(w @ cov @ w), 0.0)))


def tracking_error(w: np.ndarray, benchmark: np.ndarray, cov: np.ndarray) -> float:
    return volatility(w - benchmark, cov)


def contributions(w: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Each asset's contribution to volatility (they add up to the volatility)."""
    vol = volatility(w, cov)
    if vol == 0:
        return np.zeros_like(w)
    return w * (cov @ w) / vol


def historical_var_cvar(portfolio_returns: np.ndarray, confidence: float) -> tuple[float, float]:
    """One-day VaR and CVaR as positive losses (fractions of value), from the empirical distribution.

    VaR is the `confidence` quantile of the losses (the smallest loss L with at least that share of days
    at or below L). CVaR is Rockafellar and Uryasev's VaR + mean((loss - VaR)+) / (1 - confidence): the
    mean of the worst (1 - confidence) share of days, the last one counted in part when that share is not
    a whole number of days. It is the quantity `targets.min_cvar` minimizes, so the two agree exactly.
    """
    losses = np.sort(-np.asarray(portfolio_returns, dtype=float))
    n = len(losses)
    if n == 0:
        raise RiskError("no returns to estimate VaR from")
    # the tolerance keeps 0.545 * 200 (109.00000000000001 in floats) on day 109, not 110
    k = int(math.ceil(confidence * n - 1e-9)) - 1
    var = float(losses[min(max(k, 0), n - 1)])
    cvar = var + float(np.maximum(losses - var, 0.0).sum()) / ((1 - confidence) * n)
    return var, cvar


def parametric_var_cvar(mean: float, sd: float, confidence: float) -> tuple[float, float]:
    """One-day normal VaR and CVaR as positive losses."""
    z = NormalDist().inv_cdf(confidence)
    var = -mean + z * sd
    cvar = -mean + sd * NormalDist().pdf(z) / (1 - confidence)
    return float(var), float(cvar)
