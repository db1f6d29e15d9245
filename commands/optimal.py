"""Optimal mode of `folio propose`: the MILP's plan, compared with the heuristic on the same objective."""

from __future__ import annotations

import numpy as np

from domain import tax
from domain.books import Books
from domain.rebalancing import optimal
from domain.rebalancing.model import Inputs
from domain.rebalancing.trades import plan
from ledger.store import EventStore
from projections.risk import price_history
from domain.rebalancing import risk

RISK_WINDOW = 252


def optimal_plan(store: EventStore, books: Books, inputs: Inputs, known_at: str | None = None):
    cov = None
    if inputs.policy.tracking_error_cap is not None:
        symbols = sorted({t.symbol for t in inputs.model.targets} | {h.symbol for h in inputs.holdings})
        hist = price_history(store, symbols, inputs.as_of, RISK_WINDOW, known_at)
        est = risk.covariance(hist.symbols, hist.returns)
        index = {s: i for i, s in enumerate(hist.symbols)}
        p_assets = optimal.build(inputs).assets
        sel = [index[s] for s in p_assets]
        cov = est.matrix[np.ix_(sel, sel)]
    result, report = optimal.optimize(inputs, cov=cov, wash_risk=wash_risk_symbols(books, inputs))
    heuristic = plan(inputs, "full")
    parts = optimal.objective_parts(inputs, optimal.build(inputs, wash_risk_symbols(books, inputs)), heuristic)
    report["heuristic_objective"] = f"{sum(parts.values()):.2f}"
    report["heuristic_drift"], report["heuristic_cost"], report["heuristic_tax"] = (
        f"{parts['drift']:.2f}", f"{parts['cost']:.2f}", f"{parts['tax']:.2f}")
    return result, report


def wash_risk_symbols(books: Books, inputs: Inputs) -> set[str]:
    """Symbols whose group the owner bought in the last 30 days, or will buy in an open proposal of another account
    (its lots are among `inputs.wash_risks`: found by review, the optimizer counted such a loss as a saving): a loss
    on them now would be disallowed."""
    acct = books.accounts[inputs.account]
    ot = books.owners.get(acct.owner)
    risky = {h.symbol for h in inputs.holdings if any(l.lot_id in inputs.wash_risks for l in h.lots)}
    # and a holding the solve may sell while it buys a substantially identical target (found by review: it sold VOO at
    # a loss and bought IVV, counting the washed loss as a saving)
    group = inputs.identical.get
    targets = {t.symbol for t in inputs.model.targets}
    risky |= {h.symbol for h in inputs.holdings
              if any(t != h.symbol and group(t, t) == group(h.symbol, h.symbol) for t in targets)}
    if ot is None:
        return risky
    groups = {tax.group_of(books, a.lot.symbol) for a in ot.acquisitions
              if inputs.as_of - tax.WINDOW <= a.day <= inputs.as_of and a.lot.repl > 0}
    return risky | {h.symbol for h in inputs.holdings if tax.group_of(books, h.symbol) in groups}
