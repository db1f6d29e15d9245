"""CLI commands of the rebalancer: models, policies, drift, checks, proposals, review, orders and fills."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import click

from commands import rebalance as rb
from commands import render, service
from commands.progress import progress
from commands.cli import DATE, DECIMAL, App, account, cli, fail_on_errors, pass_app, read_text
from domain import events as ev
from domain import values as v
from domain.errors import DomainError, InvalidValue
from domain.rebalancing.drift import pct, waiting
from ledger.codec import converter
from projections import rebalance as prb
from projections.replay import load_books, resolve_point


# -- models --------------------------------------------------------------------------------------
@cli.group()
def model():
    """Target models: weights and bands, versioned."""


@model.command("set")
@click.argument("model_id")
@click.option("--target", "targets", multiple=True, required=True, metavar="SYM=W[:ABS][:REL%]",
              help="A target weight with optional absolute and relative bands (repeatable).")
@click.option("--cash", type=DECIMAL, help="Cash target (default: 1 minus the weights).")
@click.option("--date", "day", type=DATE, required=True, help="From when this version applies.")
@click.option("--note")
@pass_app
@fail_on_errors
def model_set(app: App, model_id, targets, cash, day, note):
    """Record a new version of MODEL_ID."""
    parsed = tuple(rb.parse_target(t) for t in targets)
    cash = cash if cash is not None else Decimal(1) - sum((t.weight for t in parsed), Decimal(0))
    if cash < 0:
        raise InvalidValue(f"model {model_id}: weights add up to {1 - cash}, more than 1")
    event = ev.ModelSet(model=v.account_id(model_id), targets=parsed, cash=cash, note=note)
    version = rb.set_model(app.store, app.ctx, event, day)
    click.echo(f"Model {model_id} version {version} from {day}: " +
               ", ".join(f"{t.symbol} {pct(t.weight)}" for t in parsed) + f", cash {pct(cash)}")


def model_json(m: prb.ModelVersion) -> dict:
    return {"model": m.model, "version": str(m.version), "effective": m.effective.isoformat(), "seq": str(m.seq),
            "cash": str(m.event.cash), "note": m.event.note,
            "targets": [{k: (None if x is None else str(x)) for k, x in converter.unstructure(t).items()} for t in m.event.targets],
            "optimization": m.event.optimization}


@model.command("show")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def model_show(app: App, model_id, as_json):
    """The latest version of MODEL_ID."""
    versions = prb.model_versions(app.store).get(model_id)
    if not versions:
        raise DomainError(f"no model {model_id}")
    m = versions[-1]
    if as_json:
        click.echo(render.dumps(model_json(m)))
        return
    click.echo(f"Model {m.model} version {m.version}, from {m.effective} (seq {m.seq})" + (f": {m.event.note}" if m.event.note else ""))
    rows = [[t.symbol, pct(t.weight), pct(t.band_abs) if t.band_abs is not None else "-",
             f"{t.band_rel * 100:.0f}%" if t.band_rel is not None else "-"] for t in m.event.targets]
    rows.append(["CASH", pct(m.event.cash), "-", "-"])
    click.echo(render.table(["symbol", "target", "abs band", "rel band"], rows, right=("target", "abs band", "rel band")))
    if m.event.optimization:
        o = m.event.optimization
        click.echo(f"optimized: {o.get('objective')} ({o.get('status')}), inputs digest {o.get('inputs_digest', '')[:16]}")


@model.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def model_list(app: App, as_json):
    """Every model and its latest version."""
    latest = [vs[-1] for _, vs in sorted(prb.model_versions(app.store).items())]
    if as_json:
        click.echo(render.dumps([model_json(m) for m in latest]))
        return
    click.echo(render.table(["model", "version", "effective", "assets", "cash"],
                            [[m.model, str(m.version), m.effective.isoformat(), str(len(m.event.targets)), pct(m.event.cash)]
                             for m in latest], right=("version", "assets", "cash")))


@account.command("assign")
@click.argument("account_id")
@click.argument("model_id")
@click.option("--date", "day", type=DATE, required=True)
@pass_app
@fail_on_errors
def account_assign(app: App, account_id, model_id, day):
    """Assign MODEL_ID to ACCOUNT_ID."""
    row = rb.assign(app.store, app.ctx, account_id, model_id, day).result.rows[0]
    click.echo(f"Recorded seq {row.seq}: {day} {account_id} follows model {model_id}")


# -- policy ----------------------------------------------------------------------------------------
@cli.group()
def policy():
    """Rebalancing policies: triggers, calendar, cash buffers, limits, costs, tax preferences."""


@policy.command("set")
@click.argument("account_id")
@click.option("--triggers", default="drift,cash", show_default=True,
              help=f"Comma-separated, from: {', '.join(ev.TRIGGERS)}.")
@click.option("--calendar", type=click.Choice(ev.CALENDARS), default="none", show_default=True)
@click.option("--dates", help="Rebalance dates for --calendar dates (comma-separated).")
@click.option("--min-cash", type=DECIMAL, default=Decimal(0), show_default=True, help="Minimum cash buffer (weight).")
@click.option("--max-cash", type=DECIMAL, help="Maximum cash buffer (weight; default: the model's cash target).")
@click.option("--min-trade", type=DECIMAL, default=Decimal(0), show_default=True, help="Smallest trade value worth making.")
@click.option("--turnover-cap", type=DECIMAL, help="Most traded value per rebalance, as a fraction of the account.")
@click.option("--whole-shares/--fractional", default=True, show_default=True)
@click.option("--cost-bps", type=DECIMAL, default=Decimal(0), show_default=True, help="Transaction cost in basis points.")
@click.option("--cost-per-share", type=DECIMAL, default=Decimal(0), show_default=True)
@click.option("--rebalance-to", type=click.Choice(ev.REBALANCE_TO), default="target", show_default=True)
@click.option("--avoid-short-term", is_flag=True, help="Never sell lots at a short-term gain.")
@click.option("--tax-budget", type=DECIMAL, help="Most estimated tax per rebalance.")
@click.option("--expiry-days", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--harvest-min-loss", type=DECIMAL, default=Decimal(0), show_default=True)
@click.option("--risk-measure", type=click.Choice(["volatility", "var"]), default="volatility", show_default=True)
@click.option("--risk-threshold", type=DECIMAL, help="Relative risk deviation from the model that triggers (0.2 = 20%).")
@click.option("--tracking-error-cap", type=DECIMAL, help="Optimizer: most ex-ante tracking error to the model (annual).")
@click.option("--date", "day", type=DATE, required=True)
@pass_app
@fail_on_errors
def policy_set(app: App, account_id, triggers, calendar, dates, min_cash, max_cash, min_trade, turnover_cap,
               whole_shares, cost_bps, cost_per_share, rebalance_to, avoid_short_term, tax_budget, expiry_days,
               harvest_min_loss, risk_measure, risk_threshold, tracking_error_cap, day):
    """Set ACCOUNT_ID's rebalancing policy."""
    event = ev.PolicySet(
        account=v.account_id(account_id), triggers=tuple(t.strip() for t in triggers.split(",") if t.strip()),
        calendar=calendar, calendar_dates=tuple(v.parse_date(d) for d in (dates or "").split(",") if d.strip()),
        min_cash=min_cash, max_cash=max_cash, min_trade=min_trade, turnover_cap=turnover_cap, whole_shares=whole_shares,
        cost_bps=cost_bps, cost_per_share=cost_per_share, rebalance_to=rebalance_to, avoid_short_term=avoid_short_term,
        tax_budget=tax_budget, expiry_days=expiry_days, harvest_min_loss=harvest_min_loss, risk_measure=risk_measure,
        risk_threshold=risk_threshold, tracking_error_cap=tracking_error_cap)
    row = rb.set_policy(app.store, app.ctx, event, day).result.rows[0]
    click.echo(f"Recorded seq {row.seq}: {day} policy of {account_id}")


@policy.command("show")
@click.argument("account_id")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def policy_show(app: App, account_id, as_json):
    """ACCOUNT_ID's policy in force."""
    books = load_books(app.store, resolve_point(app.store), accounts=[account_id])
    acct = books.accounts.get(account_id)
    if acct is None or acct.policy is None:
        raise DomainError(f"account {account_id} has no policy: `folio policy set {account_id} ...`")
    data = {k: (None if x is None else x if isinstance(x, (bool, list)) else str(x))
            for k, x in converter.unstructure(acct.policy).items()}
    data["model"] = acct.model
    if as_json:
        click.echo(render.dumps(data))
        return
    for k, x in data.items():
        click.echo(f"{k:20} {x}")


# -- drift and triggers ---------------------------------------------------------------------------------
def _assess(app: App, account_id: str, as_of, books=None, policy_needed: bool = True):
    """Drift and triggers of one account; `books` folded for every account at the same point may be given
    (`--all` folds the ledger once instead of once per account). Drift reads the model alone: with
    `policy_needed=False` an account without a policy is measured too (its triggers are then the default's)."""
    point = resolve_point(app.store, as_of or app.today())
    if books is None:
        books = load_books(app.store, point, accounts=[account_id])
    inputs = prb.build_inputs(app.store, books, account_id, point, policy_needed=policy_needed)
    d, fired = prb.assess(app.store, books, inputs)
    return point, inputs, d, fired


@cli.command()
@click.argument("account_id")
@click.option("--as-of", type=DATE)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def drift(app: App, account_id, as_of, as_json):
    """Current against target weights of ACCOUNT_ID, with bands and the price dates used."""
    point, inputs, d, _ = _assess(app, account_id, as_of, policy_needed=False)  # bands are the model's
    if as_json:
        click.echo(render.dumps({
            "account": account_id, "as_of": point.as_of.isoformat(), "total": render.amount(d.total),
            "cash": render.amount(d.cash), "cash_weight": str(d.cash_weight), "cash_target": str(d.cash_target),
            "assets": [{"symbol": r.symbol, "quantity": render.qty(r.quantity),
                        "price": None if r.price is None else render.price(r.price),
                        "price_date": None if r.price_date is None else r.price_date.isoformat(),
                        "value": render.amount(r.value), "weight": str(r.weight), "target": str(r.target),
                        "drift": str(r.drift), "relative_drift": None if r.relative is None else str(r.relative),
                        "band_low": str(r.band.low), "band_high": str(r.band.high),
                        "status": "in" if r.in_band else "out", "stand_ins": list(r.stand_ins),
                        "stands_in_for": r.stands_in_for} for r in d.rows]}))
        return
    click.echo(f"Drift of {account_id} as of {point.as_of} (model {inputs.model.model} v{inputs.model_version}), "
               f"total {render.amount(d.total)}")
    click.echo(render.table(
        ["symbol", "price", "price_date", "weight", "target", "drift", "relative", "band", "status"],
        [[r.label, render.price(r.price) if r.price is not None else "-",
          r.price_date.isoformat() if r.price_date else "-", pct(r.weight), pct(r.target), pct(r.drift),
          f"{r.relative * 100:.1f}%" if r.relative is not None else "-", f"{pct(r.band.low)}-{pct(r.band.high)}",
          "in" if r.in_band else "OUT"] if r.stands_in_for is None else
         [r.symbol, render.price(r.price) if r.price is not None else "-",
          r.price_date.isoformat() if r.price_date else "-", pct(r.weight), "-", "-", "-", "-",
          f"stands in for {r.stands_in_for}"] for r in d.rows]
        + [["CASH", "", "", pct(d.cash_weight), pct(d.cash_target), pct(d.cash_weight - d.cash_target), "", "", ""]],
        right=("price", "weight", "target", "drift", "relative")))


def _targets(app: App, account_id: str | None, all_accounts: bool, as_of, shown=None) -> tuple[list[str], object]:
    """The accounts to look at, and (for --all) the books of every account at the point, folded once."""
    if bool(account_id) == bool(all_accounts):
        raise click.UsageError("give an ACCOUNT or --all")
    if account_id:
        return [account_id], None
    books = service.load_all(app.store, resolve_point(app.store, as_of or app.today()), shown)
    return sorted(a for a, acct in books.accounts.items() if acct.model and acct.policy), books


def _check_one(app: App, acct: str, as_of, shared, all_accounts: bool) -> dict:
    """One account's triggers, as `check` reports them (under --all, an error is the account's result)."""
    try:
        point, inputs, d, fired = _assess(app, acct, as_of, shared)
        wait = [why for why, _ in waiting(inputs, d).values()]  # (said only when there is any)
        return {"account": acct, "as_of": point.as_of.isoformat(), "actionable": bool(fired),
                "triggers": [{"kind": t.kind, "reason": t.reason} for t in fired], **({"waiting": wait} if wait else {})}
    except DomainError as e:
        if not all_accounts:
            raise
        return {"account": acct, "error": str(e)}


@cli.command()
@click.argument("account_id", required=False)
@click.option("--all", "all_accounts", is_flag=True, help="Every account with a model and a policy.")
@click.option("--as-of", type=DATE)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def check(app: App, account_id, all_accounts, as_of, as_json):
    """Which rebalancing triggers fire, and why."""
    results = []
    with progress("folio check", as_json=as_json) as shown:
        accounts, shared = _targets(app, account_id, all_accounts, as_of, shown)
        for i, acct in enumerate(accounts):
            if all_accounts:
                shown("checking accounts", i, len(accounts))
            results.append(_check_one(app, acct, as_of, shared, all_accounts))
        if all_accounts:
            shown("checking accounts", len(accounts), len(accounts))
    if as_json:
        click.echo(render.dumps(results))
    else:
        for r in results:
            if "error" in r:
                click.echo(f"{r['account']}: cannot check: {r['error']}")
            elif not r["triggers"]:
                click.echo(f"{r['account']}: nothing to do as of {r['as_of']}")
            else:
                click.echo(f"{r['account']}: needs attention as of {r['as_of']}")
                for t in r["triggers"]:
                    click.echo(f"  [{t['kind']}] {t['reason']}")
            for why in r.get("waiting", ()):
                click.echo(f"  [waiting] {why}")
    _unchecked([r["account"] for r in results if "error" in r], len(results))


# -- proposals ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("account_id", required=False)
@click.option("--all", "all_accounts", is_flag=True)
@click.option("--mode", type=click.Choice(ev.MODES), default="full", show_default=True)
@click.option("--amount", type=DECIMAL, help="Cash to raise (withdrawal mode).")
@click.option("--as-of", type=DATE)
@click.option("--dry-run", is_flag=True, help="Show the proposal without recording it.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def propose(app: App, account_id, all_accounts, mode, amount, as_of, dry_run, as_json):
    """Propose trades for ACCOUNT_ID (or --all), recorded for review unless --dry-run."""
    if mode == "withdrawal" and amount is None:
        raise click.UsageError("withdrawal mode needs --amount")
    out = []
    with progress("folio propose", as_json=as_json) as shown:
        accounts, shared = _targets(app, account_id, all_accounts, as_of, shown)
        if shared is not None:  # taxable accounts first: a loss sale proposed there steers the buys of the owner's
            # other accounts, proposed after it, to a substitute (an IRA's buy would wash it, and no note could undo that);
            # among an owner's taxable accounts, those whose plans sell at a loss first (found by review: between two
            # taxable accounts the order of their names decided whether the buy was steered)
            sellers = _loss_sellers(app, accounts, shared, resolve_point(app.store, as_of or app.today()), mode, amount)
            accounts.sort(key=lambda a: (shared.accounts[a].tax_status != "taxable", a not in sellers, a))
        dry: list = []
        for i, acct in enumerate(accounts):
            if all_accounts:
                shown("proposing for accounts", i, len(accounts))
            point = resolve_point(app.store, as_of or app.today())
            try:
                if all_accounts:
                    try:
                        fired = _assess(app, acct, point.as_of, shared)[3]
                    except DomainError as e:
                        out.append({"account": acct, "error": f"cannot check: {e}", "failed": True})
                        continue
                    if not fired:
                        out.append({"account": acct, "error": f"no trigger fires as of {point.as_of}: nothing proposed"})
                        continue
                event, seq = rb.propose(app.store, app.ctx, acct, point, mode, today=app.today(), amount=amount,
                                        dry_run=dry_run, also=dry)
            except DomainError as e:
                if not all_accounts:
                    raise
                out.append({"account": acct, "error": str(e)})
                continue
            out.append({"account": acct, "event": event, "seq": seq})
            if dry_run:  # the next accounts see this dry run's orders as the recorded run would see its proposal's
                dry += prb.pending_of(event.content, f"the dry run for {acct}")
        if all_accounts:
            shown("proposing for accounts", len(accounts), len(accounts))
    if as_json:
        click.echo(render.dumps([{"account": o["account"], "error": o["error"]} if "error" in o else
                                 {"proposal": o["event"].proposal, "recorded": o["seq"] is not None,
                                  "digest": o["event"].digest, **o["event"].content} for o in out]))
    else:
        for o in out:
            if "error" in o:
                click.echo(f"{o['account']}: {o['error']}")
                continue
            e = o["event"]
            head = f"Dry run for {e.account} (not recorded)" if o["seq"] is None else f"Proposal {e.proposal} recorded as seq {o['seq']}"
            click.echo(head)
            click.echo(describe(e.content, e.digest))
    _unchecked([o["account"] for o in out if o.get("failed")], len(out))


def _loss_sellers(app: App, accounts: list[str], books, point, mode: str, amount) -> set[str]:
    """Of the owners with more than one taxable account to propose for, the accounts whose plans (computed as dry runs,
    before any is recorded) sell a lot at a loss."""
    taxable: dict[str, list[str]] = {}
    for a in accounts:
        if books.accounts[a].tax_status == "taxable":
            taxable.setdefault(books.accounts[a].owner, []).append(a)
    out = set()
    for group in (g for g in taxable.values() if len(g) > 1):
        for a in group:
            try:
                _, planned, _, _ = rb.compute(app.store, a, point, mode, amount)
            except DomainError:
                continue  # (its own proposal says why, in turn)
            if any(l.gain < 0 for o in planned.orders if o.side == "sell" for l in o.lots):
                out.add(a)
    return out


def _unchecked(accounts: list[str], of: int) -> None:
    """Under --all, accounts that could not be checked fail the command (after the others' results), so a nightly
    job notices (found by review: it exited 0)."""
    if accounts:
        raise click.ClickException(f"{len(accounts)} of {of} accounts could not be checked: {', '.join(accounts)} "
                                   f"(the reasons are above)")


def describe(c: dict, digest: str) -> str:
    """A proposal for a reviewer: why, what, what it costs in money and tax, and where it leaves the account."""
    lines = [f"account {c['account']}, as of {c['as_of']} (seq {c['as_of_seq']}), mode {c['mode']}, "
             f"model {c['model']['id']} v{c['model']['version']}"]
    for t in c["triggers"]:
        lines.append(f"  trigger [{t['kind']}] {t['reason']}")
    rows = []
    for o in c["orders"]:
        lots = ", ".join(f"{l['lot_id']}:{l['quantity']} ({l['term']} {l['gain']})" for l in o["lots"])
        rows.append([o["side"], o["symbol"], o["quantity"], o["price"], o["value"], o["cost"], lots or o["note"]])
    lines.append(render.table(["side", "symbol", "quantity", "price", "value", "cost", "lots (term gain) / note"], rows,
                              right=("quantity", "price", "value", "cost")))
    for s in c["skipped"]:
        lines.append(f"  skipped {s['symbol']}: {s['reason']}")
    for n in c["notes"]:
        lines.append(f"  note: {n}")
    t = c["taxes"]
    tax = (f"estimated tax {t['short_term_tax']} short-term, {t['long_term_tax']} long-term"
           if t["short_term_tax"] is not None else "no tax rates for the owner" if c.get("tax_status", "taxable") == "taxable"
           else f"no sale is taxed in a {c['tax_status']} account")
    lines.append(f"realized gains {t['short_term_gain']} short-term, {t['long_term_gain']} long-term; {tax}")
    lines.append(f"costs {c['costs']}, turnover {pct(Decimal(c['turnover']))}, cash {c['cash_before']} -> {c['cash_after']}"
                 + (f" before the withdrawal of {c['amount']}, {Decimal(c['cash_after']) - Decimal(c['amount']):.2f} after it "
                    f"(weights after are before it)" if c.get("mode") == "withdrawal" and c.get("amount") else ""))
    wb, wa = c["weights_before"], c["weights_after"]
    lines.append("weights: " + ", ".join(f"{k} {pct(Decimal(wb.get(k, '0')))}->{pct(Decimal(wa.get(k, '0')))}"
                                         for k in sorted(set(wb) | set(wa), key=lambda k: (k == "CASH", k))))
    if "optimizer" in c:
        o = c["optimizer"]
        lines.append(f"optimizer: {o.get('solver')} {o.get('status')}, objective {o.get('objective')} "
                     f"(drift {o.get('drift')}, cost {o.get('cost')}, tax {o.get('tax')}); heuristic {o.get('heuristic_objective')}; "
                     f"gap {o.get('mip_gap', 'n/a')} (limit {o.get('mip_gap_limit')}"
                     + (f" or {o['mip_gap_abs_limit']}), none better than {o.get('objective_bound')}" if "mip_gap_abs_limit" in o else ")")
                     + f", time limit {o.get('time_limit_seconds')} s")
    lines.append(f"digest {digest}")
    return "\n".join(lines)


@cli.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(prb.STATUSES), help="Only proposals with this status.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_on_errors
def proposals(ctx: click.Context, status, as_json):
    """List proposals (or show, verify one)."""
    if ctx.invoked_subcommand:
        return
    app: App = ctx.obj
    rows = [p for p in prb.proposals(app.store, today=app.today()) if status is None or p.status == status]
    if as_json:
        click.echo(render.dumps([{"proposal": p.proposal, "account": p.account, "status": p.status, "mode": p.mode,
                                  "as_of": p.as_of.isoformat(), "proposer": p.proposer, "reviewer": p.reviewer,
                                  "orders": str(len(p.content["orders"])), "expires": p.expires.isoformat(),
                                  "digest": p.digest} for p in rows]))
        return
    click.echo(render.table(["proposal", "account", "status", "mode", "as_of", "orders", "proposer", "reviewer", "expires"],
                            [[p.proposal, p.account, p.status, p.mode, p.as_of.isoformat(), str(len(p.content["orders"])),
                              p.proposer, p.reviewer or "-", p.expires.isoformat()] for p in rows], right=("orders",)))


@proposals.command("show")
@click.argument("proposal_id")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def proposals_show(app: App, proposal_id, as_json):
    """A proposal in full, with fills against orders and the slippage."""
    p = prb.proposal(app.store, proposal_id, app.today())
    fills = []
    for o in p.content["orders"]:
        mine = [f for f in p.fills if f.symbol == o["symbol"] and f.side == o["side"]]
        qty = sum((f.quantity for f in mine), Decimal(0))
        avg = (sum((f.quantity * f.price for f in mine), Decimal(0)) / qty) if qty else None
        est = Decimal(o["price"])
        sign = 1 if o["side"] == "buy" else -1
        slip = None if avg is None else ((avg - est) / est * 10000 * sign).quantize(Decimal("0.1"))
        cost = None if avg is None else render.amount((avg - est) * qty * sign)
        fills.append({"symbol": o["symbol"], "side": o["side"], "ordered": o["quantity"], "filled": render.qty(qty),
                      "estimated_price": o["price"], "average_price": None if avg is None else render.price(avg.quantize(Decimal("0.0001"))),
                      "slippage_bps": None if slip is None else str(slip), "slippage_cost": cost})
    if as_json:
        click.echo(render.dumps({"proposal": p.proposal, "status": p.status, "proposer": p.proposer, "reviewer": p.reviewer,
                                 "review_note": p.review_note, "expires": p.expires.isoformat(), "digest": p.digest,
                                 "fills": fills, "content": p.content}))
        return
    click.echo(f"Proposal {p.proposal}: {p.status}, proposed by {p.proposer}"
               + (f", reviewed by {p.reviewer}" + (f" ({p.review_note})" if p.review_note else "") if p.reviewer else "")
               + f", expires {p.expires}")
    if p.moved_by:
        def what(seq: int) -> str:  # (its own stream, or what else moved it: a sibling's trade, rates, an action)
            row = app.store.row(seq)
            return f"seq {seq} ({row.stream}, {row.type})" if row is not None else f"seq {seq}"
        click.echo(f"stale: recorded since its point and moving what it trades: {', '.join(map(what, p.moved_by))}")
    click.echo(describe(p.content, p.digest))
    if p.fills:
        click.echo("fills:")
        click.echo(render.table(["side", "symbol", "ordered", "filled", "est. price", "avg price", "slippage bps", "slippage"],
                                [[f["side"], f["symbol"], f["ordered"], f["filled"], f["estimated_price"],
                                  f["average_price"] or "-", f["slippage_bps"] or "-", f["slippage_cost"] or "-"]
                                 for f in fills], right=("ordered", "filled", "est. price", "avg price", "slippage bps", "slippage")))


@proposals.command("verify")
@click.argument("proposal_id")
@pass_app
@fail_on_errors
def proposals_verify(app: App, proposal_id):
    """Recompute a proposal from the log at its recorded point: identical, or the first difference."""
    same, text = rb.verify(app.store, proposal_id)
    if not same:
        raise click.ClickException(text)
    click.echo(text)


@cli.command()
@click.argument("proposal_id")
@click.option("--comment")
@pass_app
@fail_on_errors
def approve(app: App, proposal_id, comment):
    """Approve a proposal (not your own; not stale or expired)."""
    row = rb.approve(app.store, app.ctx, proposal_id, comment, app.today()).result.rows[0]
    click.echo(f"Approved {proposal_id} (seq {row.seq}) by {app.actor}")


@cli.command()
@click.argument("proposal_id")
@click.option("--reason", required=True)
@pass_app
@fail_on_errors
def reject(app: App, proposal_id, reason):
    """Reject a proposal, saying why."""
    row = rb.reject(app.store, app.ctx, proposal_id, reason, app.today()).result.rows[0]
    click.echo(f"Rejected {proposal_id} (seq {row.seq}) by {app.actor}: {reason}")


@proposals.command("close")
@click.argument("proposal_id")
@click.option("--reason", required=True)
@pass_app
@fail_on_errors
def close(app: App, proposal_id, reason):
    """Close an approved proposal whose remaining orders will not be filled."""
    row = rb.close(app.store, app.ctx, proposal_id, reason, app.today()).result.rows[0]
    click.echo(f"Closed {proposal_id} (seq {row.seq}) by {app.actor}: {reason}")


@cli.command()
@click.argument("proposal_id")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False))
@pass_app
@fail_on_errors
def orders(app: App, proposal_id, fmt, output):
    """Export an approved proposal's orders for a broker."""
    rows = rb.orders(app.store, proposal_id)
    if fmt == "json":
        text = render.dumps(rows) + "\n"
    else:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=rb.ORDER_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    if output:
        from commands.cli_tax import write_atomically
        write_atomically(output, text)
        click.echo(f"Wrote {len(rows)} orders to {output}")
    else:
        click.echo(text, nl=False)


@cli.group()
def fills():
    """Fills from the broker, recorded as trades that reference their proposal."""


@fills.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@pass_app
@fail_on_errors
def fills_import(app: App, file):
    """Import FILE: `proposal,symbol,side,quantity,price,fees,date,fill_id`. Idempotent; all or nothing."""
    name = Path(file).name
    pending, dup, again = rb.read_fills(app.store, app.ctx, read_text(file), name)
    out = service.record(app.store, pending) if pending else None
    new = len(out.result.rows) if out else 0
    skipped = ", ".join(x for x in (f"{dup} already recorded" if dup else "",
                                    f"{again} repeated in the file" if again else "") if x)
    if new == 0 and dup and not again:
        click.echo(f"Nothing recorded: all {dup} fills of {name} were already recorded")
    elif new == 0 and (dup or again):
        click.echo(f"Nothing recorded from {name}: {skipped}")
    else:
        click.echo(f"Recorded {new} fills from {name}" + (f" ({skipped}, skipped)" if skipped else ""))
