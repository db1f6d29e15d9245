"""Risk analytics on daily closes: returns, covariance (sample and Ledoit-Wolf), volatility, VaR and CVaR,
tracking error and contributions to risk. numpy floats inside; callers convert at the edges."""

from __future__ import annotations

import math

import attrs
import numpy as np
from scipy.stats import norm

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
    if not shrink:
        eig = np.linalg.eigvalsh(sample)
        if eig.min() > 1e-12 * max(eig.max(), 1e-300) and t > n:
            return Covariance(symbols, sample, "sample", 0.0, t)
    lw, intensity = ledoit_wolf(r)
    note = "" if shrink else "the sample covariance is singular (fewer observations than assets, or collinear prices): used the Ledoit-Wolf shrunk one"
    return Covariance(symbols, lw * TRADING_DAYS, "ledoit-wolf", intensity, t, note)


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
    """One-day VaR and CVaR as positive losses (fractions of value), from the empirical distribution."""
    losses = np.sort(-portfolio_returns)
    n = len(losses)
    k = int(math.ceil(confidence * n)) - 1
    var = float(losses[min(max(k, 0), n - 1)])
    tail = losses[losses >= var]
    return var, float(tail.mean())


def parametric_var_cvar(mean: float, sd: float, confidence: float) -> tuple[float, float]:
    """One-day normal VaR and CVaR as positive losses."""
    z = norm.ppf(confidence)
    var = -mean + z * sd
    cvar = -mean + sd * norm.pdf(z) / (1 - confidence)
    return float(var), float(cvar)
