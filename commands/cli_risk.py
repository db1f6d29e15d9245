"""CLI commands for risk: `folio risk` and `folio model optimize`."""

from __future__ import annotations

import hashlib
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import click
import numpy as np

from commands import rebalance as rb
from commands import render
from commands.cli import DATE, App, cli, fail_on_errors, pass_app
from commands.cli_rebalance import model
from domain import events as ev
from domain import values as v
from domain.errors import DomainError, InvalidValue
from domain.rebalancing import risk, targets
from ledger import codec
from projections import rebalance as prb
from projections.replay import load_books, resolve_point
from projections.risk import account_risk, price_history

WEIGHT = Decimal("0.000001")


def f6(x: float) -> str:
    return f"{x:.6f}"


@cli.command("risk")
@click.argument("account_id")
@click.option("--as-of", type=DATE)
@click.option("--window", type=click.IntRange(min=2), default=252, show_default=True, help="Daily returns used.")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
@click.option("--shrink", is_flag=True, help="Use the Ledoit-Wolf shrunk covariance.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def risk_command(app: App, account_id, as_of, window, confidence, shrink, as_json):
    """Volatility, VaR/CVaR, tracking error to the model and each asset's contribution, from daily closes."""
    point = resolve_point(app.store, as_of or app.today())
    books = load_books(app.store, point, accounts=[account_id])
    # (no policy needed to measure risk: found by review)
    inputs = prb.build_inputs(app.store, books, account_id, point, policy_needed=False)
    r = account_risk(app.store, inputs, window, confidence, shrink=shrink)
    if as_json:
        click.echo(render.dumps({
            "account": account_id, "as_of": point.as_of.isoformat(), "window": {"first": r.window[0], "last": r.window[1],
                                                                                "returns": str(r.window[2])},
            "covariance": r.cov.method, "shrinkage": f6(r.cov.shrinkage), "note": r.cov.note,
            "volatility": f6(r.volatility), "model_volatility": f6(r.model_volatility),
            "tracking_error": f6(r.tracking_error), "confidence": str(confidence),
            "var_historical": f6(r.var_hist), "cvar_historical": f6(r.cvar_hist),
            "var_parametric": f6(r.var_param), "cvar_parametric": f6(r.cvar_param),
            "assets": [{"symbol": s, "weight": f6(w), "model_weight": f6(m), "contribution": f6(c)}
                       for s, w, m, c in zip(r.symbols, r.weights, r.model_weights, r.contributions)]}))
        return
    click.echo(f"Risk of {account_id} as of {point.as_of}: {r.window[2]} daily returns {r.window[0]}..{r.window[1]}, "
               f"{r.cov.method} covariance" + (f" (shrinkage {r.cov.shrinkage:.3f})" if r.cov.method != "sample" else ""))
    if r.cov.note:
        click.echo(f"note: {r.cov.note}")
    click.echo(f"volatility {r.volatility:.2%} a year (model {r.model_volatility:.2%}), tracking error {r.tracking_error:.2%}")
    click.echo(f"one-day VaR {confidence:.0%}: historical {r.var_hist:.2%}, parametric {r.var_param:.2%}; "
               f"CVaR: historical {r.cvar_hist:.2%}, parametric {r.cvar_param:.2%}")
    click.echo(render.table(["symbol", "weight", "model", "contribution", "share of risk"],
                            [[s, f"{w:.2%}", f"{m:.2%}", f"{c:.2%}", f"{c / r.volatility:.1%}" if r.volatility else "-"]
                             for s, w, m, c in zip(r.symbols, r.weights, r.model_weights, r.contributions)],
                            right=("weight", "model", "contribution", "share of risk")))


def parse_bounds(items, symbols) -> dict[str, tuple[Decimal, Decimal]]:
    out = {}
    for item in items:
        sym, sep, rng = item.partition("=")
        lo, sep2, hi = rng.partition(":")
        if not sep or not sep2:
            raise InvalidValue(f"bound {item!r}: use SYMBOL=LOW:HIGH, e.g. VTI=0.10:0.40")
        sym = sym.strip().upper()
        if sym not in symbols:
            raise InvalidValue(f"bound for {sym}, which is not in the model ({', '.join(symbols)})")
        out[sym] = (v.to_decimal(lo or "0", "low bound"), v.to_decimal(hi or "1", "high bound"))
    return out


@model.command("optimize")
@click.argument("model_id")
@click.option("--objective", type=click.Choice(["min-vol", "target-vol", "min-cvar", "risk-parity"]), required=True)
@click.option("--target-vol", type=click.FloatRange(min=0, min_open=True),
              help="Annual volatility for target-vol (0.12 for 12%).")
@click.option("--bounds", "bounds", multiple=True, metavar="SYM=LO:HI", help="Weight bounds (repeatable).")
@click.option("--as-of", type=DATE, required=True, help="The window ends here; nothing after it is read.")
@click.option("--window", type=click.IntRange(min=2), default=252, show_default=True)
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
@click.option("--date", "day", type=DATE, help="Effective date of the new version (default: --as-of).")
@pass_app
@fail_on_errors
def model_optimize(app: App, model_id, objective, target_vol, bounds, as_of, window, confidence, day):
    """Record a new version of MODEL_ID with risk-based weights from price history."""
    if objective == "target-vol" and target_vol is None:
        raise click.UsageError("target-vol needs --target-vol (an annual volatility, 0.12 for 12%)")
    versions = prb.model_versions(app.store).get(model_id)
    if not versions:
        raise DomainError(f"no model {model_id}: create it with `folio model set {model_id} ...`")
    current = versions[-1].event
    symbols = tuple(sorted(t.symbol for t in current.targets))
    hist = price_history(app.store, symbols, as_of, window)
    cov = risk.covariance(hist.symbols, hist.returns)
    budget = float(1 - current.cash)
    b = parse_bounds(bounds, symbols)
    low = [b.get(s, (Decimal(0), Decimal(1)))[0] for s in symbols]
    high = [b.get(s, (Decimal(0), Decimal(1)))[1] for s in symbols]
    lo, hi = np.array([float(x) for x in low]), np.array([float(x) for x in high])
    targets.check_bounds(lo, hi, budget, symbols)
    if objective == "min-vol":
        result = targets.min_vol(cov.matrix, lo, hi, budget)
    elif objective == "target-vol":
        result = targets.target_vol(cov.matrix, hist.returns.mean(axis=0) * risk.TRADING_DAYS, target_vol, lo, hi, budget)
    elif objective == "min-cvar":
        result = targets.min_cvar(hist.returns, confidence, lo, hi, budget)
    else:
        flat = [s for s, v in zip(symbols, np.diag(cov.matrix)) if v <= 0]
        if flat:  # (found by review: refused with advice to lengthen the window, which cannot help)
            raise risk.RiskError(f"{', '.join(flat)} did not move in the window: risk parity gives each asset an equal "
                                 f"share of the risk, and {'it has' if len(flat) == 1 else 'they have'} none; leave "
                                 f"{'it' if len(flat) == 1 else 'them'} out of the model, or use min-vol or min-cvar")
        result = targets.risk_parity(cov.matrix, lo, hi, budget)
    weights = to_decimal_weights(result.weights, Decimal(1) - current.cash, low, high)
    before = np.array([float(t.weight) for t in sorted(current.targets, key=lambda t: t.symbol)])
    after = np.array([float(w) for w in weights])

    def figures(w):
        port = hist.returns @ w
        var, cvar = risk.historical_var_cvar(port, confidence)
        return {"volatility": f6(risk.volatility(w, cov.matrix)), "var": f6(var), "cvar": f6(cvar)}

    # every number a string, so the digest is of the same text whoever recomputes it
    inputs = {"symbols": list(symbols), "dates": [hist.dates[0], hist.dates[-1]], "returns": len(hist.dates) - 1,
              "closes_digest": hashlib.sha256(np.ascontiguousarray(hist.closes).tobytes()).hexdigest(),
              "bounds": {s: [str(x) for x in b[s]] for s in sorted(b)}, "budget": str(1 - current.cash),
              "objective": objective, "target_vol": None if target_vol is None else repr(target_vol),
              "confidence": repr(confidence), "window": window}
    optimization = {
        "objective": objective, "solver": result.solver, "status": result.status, "iterations": result.iterations,
        "inputs_digest": hashlib.sha256(codec.canonical(inputs).encode()).hexdigest(), "inputs": inputs,
        "covariance": cov.method, "covariance_note": cov.note, "before": figures(before), "after": figures(after)}
    by_symbol = {t.symbol: t for t in current.targets}
    new_targets = tuple(ev.Target(symbol=s, weight=w, band_abs=by_symbol[s].band_abs, band_rel=by_symbol[s].band_rel)
                        for s, w in zip(symbols, weights))
    event = ev.ModelSet(model=model_id, targets=new_targets, cash=current.cash,
                        note=f"{objective} over {len(hist.dates) - 1} returns to {hist.dates[-1]}", optimization=optimization)
    version = rb.set_model(app.store, app.ctx, event, day or as_of)
    click.echo(f"Model {model_id} version {version} ({objective}, {result.solver}: {result.status})")
    if cov.note:
        click.echo(f"note: {cov.note}")
    click.echo(render.table(["symbol", "before", "after"],
                            [[s, f"{x:.2%}", f"{float(w):.2%}"] for s, x, w in zip(symbols, before, weights)],
                            right=("before", "after")))
    click.echo(f"volatility {float(optimization['before']['volatility']):.2%} -> {float(optimization['after']['volatility']):.2%}, "
               f"one-day CVaR {float(optimization['before']['cvar']):.2%} -> {float(optimization['after']['cvar']):.2%}")


def to_decimal_weights(w: np.ndarray, budget: Decimal, low: list[Decimal] | None = None,
                       high: list[Decimal] | None = None) -> list[Decimal]:
    """Float weights to Decimals on a millionth grid that add up to the budget exactly and stay within the bounds
    (the exit conversion): each weight is rounded half-even and clamped to its bounds, then the residual is handed
    out a millionth at a time by largest remainder, to the weights that rounding moved furthest the other way."""
    n = len(w)
    low = [Decimal(0)] * n if low is None else [x.quantize(WEIGHT, rounding=ROUND_CEILING) for x in low]
    high = [budget] * n if high is None else [x.quantize(WEIGHT, rounding=ROUND_FLOOR) for x in high]
    exact = [Decimal(repr(float(x))) for x in w]
    # `+ 0` turns a rounded -1e-17 (-0.000000) into 0
    out = [min(max(x.quantize(WEIGHT, rounding=ROUND_HALF_EVEN), low[k]), high[k]) + 0 for k, x in enumerate(exact)]
    residual = budget - sum(out, Decimal(0))
    for _ in range(int(abs(residual) / WEIGHT) + 1):
        if not residual:
            break
        sign = 1 if residual > 0 else -1
        unit = min(abs(residual), WEIGHT)
        room = [k for k in range(n) if (high[k] - out[k] if sign > 0 else out[k] - low[k]) >= unit]
        if not room:
            break
        k = max(room, key=lambda i: (sign * (exact[i] - out[i]), -i))
        out[k] += sign * unit
        residual = budget - sum(out, Decimal(0))
    if residual:  # no room left (bounds off the grid): the largest weight takes the rest
        out[max(range(n), key=lambda i: out[i])] += residual
    return out
