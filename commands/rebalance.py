"""Rebalancing use cases: models, assignments, policies, proposals, review, orders and fills."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from commands.service import Context, Pending, Refused, account_stream, record
from domain import events as ev
from domain import values as v
from domain.errors import DomainError, InvalidValue
from domain.rebalancing.model import Inputs, check_model
from domain.rebalancing.trades import Plan, cost_of, plan
from ledger.store import EventStore, NewEvent
from projections.rebalance import (assess, build_inputs, digest_of, first_difference, model_versions, moved_after,
                                  proposal, proposals)
from projections.replay import Point, load_books


class ReviewError(DomainError):
    """A proposal cannot be approved, rejected or filled as asked."""


def set_model(store: EventStore, ctx: Context, event: ev.ModelSet, day: dt.date) -> int:
    check_model(event)
    unpriced = [t.symbol for t in event.targets
                if store.conn.execute("SELECT 1 FROM prices WHERE symbol = ? LIMIT 1", (t.symbol,)).fetchone() is None]
    if unpriced:
        raise DomainError(f"model {event.model}: no price known for {', '.join(unpriced)}; "
                          "import prices first (`folio prices import`), so the symbols are known")
    out = record(store, [Pending(NewEvent(f"model:{event.model}", event, day, ctx.meta()))])
    return out.result.rows[0].version


def assign(store: EventStore, ctx: Context, account: str, model: str, day: dt.date):
    versions = model_versions(store).get(model)
    if not versions:
        raise DomainError(f"no model {model}: create it with `folio model set {model} ...`")
    first = min(v.effective for v in versions)
    if first > day:  # (found by review: taken, and every view of the account as of then failed)
        raise DomainError(f"cannot assign model {model} to {account} on {day}: its first version is effective on {first}; "
                          f"assign it on or after that date")
    return record(store, [Pending(NewEvent(account_stream(account), ev.ModelAssigned(account=account, model=model), day,
                                           ctx.meta()))])


def set_policy(store: EventStore, ctx: Context, event: ev.PolicySet, day: dt.date):
    return record(store, [Pending(NewEvent(account_stream(event.account), event, day, ctx.meta()))])


# -- proposals ---------------------------------------------------------------------------------
def compute(store: EventStore, account: str, point: Point, mode: str, amount: Decimal | None = None,
            prices_known_at: str | None = None, also=()) -> tuple[Inputs, Plan, list, dict]:
    """The proposal's content for an account at a point: pure given the log and the prices known (and `also`, the
    orders of dry runs before it, as `build_inputs` takes them)."""
    books = load_books(store, point, accounts=[account])
    inputs = build_inputs(store, books, account, point, prices_known_at=prices_known_at, amount=amount, also=also)
    _, fired = assess(store, books, inputs)
    if mode == "optimal":
        from commands.optimal import optimal_plan
        result, extra = optimal_plan(store, books, inputs, prices_known_at)
    else:
        result, extra = plan(inputs, mode), {}
    return inputs, result, fired, content_of(inputs, result, fired, mode, extra)


#: the version of what computes a proposal (the fold that gives its holdings, the planner that gives its orders),
#: recorded in each proposal's content as `planner`: `proposals verify` recomputes with this version, and a proposal
#: made by another may come out otherwise. What changed, version by version:
#:   1  proposals recorded before the version was (content without `planner`)
#:   2  a close dated before a split values the new shares split-adjusted; a close in another currency than the
#:      account's values nothing; a withdrawal left short says so in a note; a fraction of a share left by a split,
#:      merger or spinoff is settled per position (two lots of half a share are one share), not per lot; a withdrawal
#:      from a tax-deferred or tax-exempt account sells toward the model (no sale there is taxed), and the content
#:      records the account's tax status
#:   3  a sale whose costs would exceed its value is not proposed; a split between a loss sale and its buy-back
#:      counts replacement shares in new shares; min-tax counts no saving for a loss a recent purchase would wash;
#:      harvesting leaves a lot whose loss a wash sale would disallow now (its reason recorded under `wash_risks`)
#:   4  a held substitute of a model symbol a recent loss sale restricts stands in for it (`Inputs.stand_ins`): it
#:      counts in the symbol's drift and target, is kept, and buys of the symbol go to it (it was sold as outside the
#:      model, and the symbol's weight left in cash); no sale of a tax-deferred or tax-exempt account is taxed, cut by
#:      a tax budget or kept for its term; a sale to a band edge reaches it (rounded up); a sale the short-term rule
#:      keeps is named in `skipped`; realized gains are in cents (0.00, not 0); a symbol change carries the renamed
#:      security's loss sales (restrictions) and leaves its old symbol no alias; merger cash is paid per position
#:   5  the turnover cap cuts a buy and the sale that funds it together (a dropped buy left its sale's proceeds in
#:      cash, above the maximum buffer); a corporate action recorded twice is refused, not applied twice; an open
#:      proposal of another account of the owner counts in the wash-sale view (`restricted_by`, wash risks), and a
#:      sale at a loss a wash sale would disallow is noted; a parent's close dated before a spinoff values only the
#:      part it kept; a sale's lots' proceeds and estimated gains are net of its costs; the turnover cap keeps orders
#:      at the minimum trade and trims sales its cuts leave idle; a plan's own loss sale restricts buying its
#:      substantially identical group (`identical` recorded); a loss a purchase would wash counts no tax saving
#:   6  a turnover cap that trims nothing changes nothing; orders kept at the minimum trade round up to it in whole
#:      shares; idle sales shrink largest first, never under the minimum or the floor, and a whole holding outside the
#:      model is sold whole; the tax budget and the minimum trade are settled together; the optimizer counts no saving
#:      for a loss it may wash by buying a substantially identical target; a harvest skips a lot whose sale would cost
#:      more than it raises; a model whose cash target is above the policy's maximum is noted; a loss partly washed
#:      counts in proportion to the shares replaced (`wash_risks` record the shares), its note says how many; the
#:      optimizer may buy a restricted model symbol's declared substitute in its place; a sale whose buys fall under
#:      the minimum trade shrinks back to the cash ceiling (with or without a cap)
#:   7  the optimizer's buys never spend more cash than its solve kept (rounding whole shares to the nearest and costs
#:      to the cent took it a cent under zero); in whole shares its solve stops within one share of the priciest asset
#:      of the best bound (`optimal.abs_gap`), not $10 per $1M; its orders under the minimum trade are dropped; a model
#:      symbol that may not be bought back and has no substitute that may be is `waiting` (`drift.waiting`): no drift
#:      fires for it, and the cash its target keeps is not idle; the harvest trigger fires in an account of another
#:      currency than USD (its quotes were read as USD prices, all unpriced)
#:   8  the optimizer rebalances to where the policy says (`rebalance_to` band-edge or midpoint: the heuristic's goals,
#:      `optimal.goals`), not always to the targets
PLANNER_VERSION = 8


def content_of(inputs: Inputs, p: Plan, fired, mode: str, extra: dict) -> dict:
    s = str
    pol = inputs.policy
    from ledger.codec import converter

    content = {
        "account": inputs.account, "as_of": inputs.as_of.isoformat(), "as_of_seq": inputs.as_of_seq, "mode": mode,
        "amount": None if inputs.amount is None else s(inputs.amount),
        "model": {"id": inputs.model.model, "version": inputs.model_version, "cash": s(inputs.model.cash),
                  "targets": [converter.unstructure(t) for t in inputs.model.targets]},
        "policy": {"seq": inputs.policy_seq, **converter.unstructure(pol)},
        "lot_method": inputs.lot_method, "tax_status": inputs.tax_status,
        "rates": None if inputs.rates is None else {"short_term": s(inputs.rates[0]), "long_term": s(inputs.rates[1])},
        "prices": {k: {"price": s(q.price), "date": q.date.isoformat()} for k, q in sorted(inputs.prices.items())},
        "holdings": [{"symbol": h.symbol, "quantity": s(h.quantity),
                      "lots": [{"lot_id": l.lot_id, "quantity": s(l.quantity), "basis": s(l.basis),
                                "acquired": l.acquired.isoformat(), "holding_period_start": l.hp_start.isoformat()}
                               for l in h.lots]} for h in inputs.holdings],
        "restricted": {k: d.isoformat() for k, d in sorted(inputs.restricted.items())},
        "restricted_by": dict(sorted(inputs.restricted_by.items())),
        "identical": dict(sorted(inputs.identical.items())),
        "wash_risks": {k: [{"reason": why, "lot": own, "shares": None if n is None else s(n)} for why, own, n in v]
                       for k, v in sorted(inputs.wash_risks.items())},
        "triggers": [{"kind": t.kind, "reason": t.reason} for t in fired],
        "orders": [{"symbol": o.symbol, "side": o.side, "quantity": s(o.quantity), "price": s(o.price),
                    "value": s(o.value), "cost": s(cost_of(inputs, o.quantity, o.price)), "note": o.note,
                    "lots": [{"lot_id": l.lot_id, "quantity": s(l.quantity), "basis": s(l.basis),
                              "proceeds": s(l.proceeds), "gain": s(l.gain), "term": l.term} for l in o.lots]}
                   for o in p.orders],
        "skipped": [{"symbol": sym, "reason": why} for sym, why in p.skipped],
        "notes": list(p.notes),
        "weights_before": {k: s(w) for k, w in p.weights_before.items()},
        "weights_after": {k: s(w) for k, w in p.weights_after.items()},
        "costs": s(p.costs), "turnover": s(p.turnover),
        "taxes": {"short_term_gain": s(p.gain_short), "long_term_gain": s(p.gain_long),
                  "short_term_tax": None if p.tax_short is None else s(p.tax_short),
                  "long_term_tax": None if p.tax_long is None else s(p.tax_long)},
        "cash_before": s(p.cash_before), "cash_after": s(p.cash_after),
        "total_before": s(p.total_before), "total_after": s(p.total_after),
    }
    if extra:
        content["optimizer"] = extra
    content["planner"] = PLANNER_VERSION
    return content


def parse_target(text: str) -> ev.Target:
    """`SYM=WEIGHT[:ABS_BAND][:REL_BAND%]`, e.g. `VTI=0.40:0.03:25%` (either band may be empty)."""
    sym, sep, rest = text.partition("=")
    if not sep:
        raise InvalidValue(f"target {text!r}: use SYMBOL=WEIGHT[:ABSOLUTE_BAND][:RELATIVE_BAND%], e.g. VTI=0.40:0.03:25%")
    parts = rest.split(":")
    if len(parts) > 3:
        raise InvalidValue(f"target {text!r}: at most a weight and two bands")
    weight = v.to_decimal(parts[0], f"weight of {sym}")
    band_abs = v.to_decimal(parts[1], f"absolute band of {sym}") if len(parts) > 1 and parts[1] else None
    band_rel = None
    if len(parts) > 2 and parts[2]:
        r = parts[2]
        band_rel = v.to_decimal(r[:-1], f"relative band of {sym}") / 100 if r.endswith("%") else v.to_decimal(r, f"relative band of {sym}")
    symbol = v.symbol(sym.strip().upper())
    try:
        return ev.Target(symbol=symbol, weight=weight, band_abs=band_abs, band_rel=band_rel)
    except InvalidValue as e:  # the event's validator does not know which target of the model it is
        raise InvalidValue(f"target {symbol}: {str(e).removeprefix('Target: ')}") from None


def next_proposal_id(store: EventStore) -> str:
    n = len(store.streams("proposal:"))
    return f"P{n + 1:04d}"


def propose(store: EventStore, ctx: Context, account: str, point: Point, mode: str, *, today: dt.date,
            amount: Decimal | None = None, dry_run: bool = False, also=()) -> tuple[ev.RebalanceProposed, int | None]:
    """Compute a proposal and (unless a dry run) record it on its own stream, all under the write lock."""
    if not dry_run and point.as_of > today + dt.timedelta(days=1):  # (the day's grace of `service.latest_day`)
        raise DomainError(f"cannot propose for {account} as of {point.as_of}, after today ({today}): no fill dated "
                          f"before it is taken, nor one dated after today, so it could never be filled and would "
                          f"keep the account's other proposals from approval (--dry-run shows it)")
    with store.transaction():
        later = None if dry_run else moved_after(store, account, point)
        if later is not None:
            raise DomainError(
                f"cannot propose for {account} as of {point.as_of}: its books have moved since (seq {later[0]}, "
                f"effective {later[1]}), so the orders would trade what it no longer holds; propose as of "
                f"{later[1]} or later (--dry-run shows the past)")
        inputs, result, fired, content = compute(store, account, point, mode, amount, also=also if dry_run else ())
        if not result.orders and not dry_run:
            why = "; ".join(f"{s}: {r}" for s, r in result.skipped) or "the account is at its model"
            raise DomainError(f"nothing to propose for {account} as of {point.as_of}: {why}")
        pid = next_proposal_id(store)
        event = ev.RebalanceProposed(
            proposal=pid, account=account, proposer=ctx.actor, mode=mode, as_of_seq=point.known_seq,
            expires=today + dt.timedelta(days=inputs.policy.expiry_days), content=content, digest=digest_of(content))
        if dry_run:
            return event, None
        out = record(store, [Pending(NewEvent(f"proposal:{pid}", event, point.as_of, ctx.meta()))],
                     expected={f"proposal:{pid}": 0})
        return event, out.result.rows[0].seq


def verify(store: EventStore, pid: str) -> tuple[bool, str]:
    """Recompute a proposal from the log at its recorded point, with the prices known when it was made.

    Its content is first checked against its digest (an altered proposal is said to be so, whatever made it). One
    made by an earlier planner version is compared on what that version recorded (a later one records more, such as
    the account's tax status), and a difference is reported with both versions."""
    view = proposal(store, pid)
    if digest_of(view.content) != view.digest:
        return False, (f"{pid}: its content does not match its digest {view.digest}: the recorded proposal was "
                       f"altered after it was made")
    point = Point(as_of=view.as_of, known_seq=view.as_of_seq)
    amount = view.content.get("amount")
    _, _, _, content = compute(store, view.account, point, view.mode, Decimal(amount) if amount else None,
                               prices_known_at=view.recorded_at)
    if content == view.content:
        return True, f"{pid}: identical (digest {view.digest})"
    made_by = view.content.get("planner", 1)
    if made_by != PLANNER_VERSION:
        recorded = {k: v for k, v in view.content.items() if k != "planner"}
        where = first_difference(recorded, {k: v for k, v in content.items() if k in recorded})
        if where is None:
            return True, (f"{pid}: identical (digest {view.digest}), recomputed by planner version {PLANNER_VERSION}; "
                          f"made by version {made_by}")
        return False, (f"{pid}: differs at {where}; it was made by planner version {made_by} and this Folio "
                       f"recomputes with version {PLANNER_VERSION}, whose changes may give another result (see "
                       f"`PLANNER_VERSION` in commands/rebalance.py): the recorded proposal stands as made")
    where = first_difference(view.content, content)
    stopped = (view.content.get("optimizer") or {}).get("status") == "iteration or time limit"
    return False, f"{pid}: differs at {where}" + (
        " (its solve stopped at the time limit, so a re-solve may end elsewhere: the recorded proposal stands as"
        " made, with its gap)" if stopped else "")


def same_person(a: str, b: str) -> bool:
    """Whether two actor names name one person: case and surrounding blanks aside (`Al` is `al`)."""
    return a.strip().casefold() == b.strip().casefold()


def approve(store: EventStore, ctx: Context, pid: str, comment: str | None, today: dt.date):
    with store.transaction():
        view = proposal(store, pid, today)
        _reviewable(view, ctx.actor, "approve")
        if same_person(view.proposer, ctx.actor):
            raise ReviewError(f"{ctx.actor} proposed {pid} and cannot approve it: a second person must (four eyes)")
        pending = [p for p in proposals(store, account=view.account, today=today)
                   if p.proposal != pid and p.status in ("approved", "partially-filled")]
        if pending:
            other = pending[0]
            raise ReviewError(
                f"cannot approve {pid}: {other.proposal} of account {view.account} is {other.status} and its orders are "
                f"not all filled, so they would be traded twice; import its fills, or close it first "
                f"(folio proposals close {other.proposal} --reason ...)")
        event = ev.ProposalApproved(proposal=pid, approver=ctx.actor, comment=comment)
        return _record_review(store, ctx, event, today)


def reject(store: EventStore, ctx: Context, pid: str, reason: str, today: dt.date):
    with store.transaction():
        view = proposal(store, pid, today)
        if view.status not in ("proposed", "stale", "expired"):
            raise ReviewError(f"cannot reject {pid}: it is {view.status}")
        event = ev.ProposalRejected(proposal=pid, reviewer=ctx.actor, reason=reason)
        return _record_review(store, ctx, event, today)


def close(store: EventStore, ctx: Context, pid: str, reason: str, today: dt.date):
    """Close an approved proposal whose remaining orders will not be filled."""
    with store.transaction():
        view = proposal(store, pid, today)
        if view.status not in ("approved", "partially-filled"):
            raise ReviewError(f"cannot close {pid}: it is {view.status}; only an approved proposal with orders "
                              f"still to fill can be closed")
        event = ev.ProposalClosed(proposal=pid, closer=ctx.actor, reason=reason)
        return _record_review(store, ctx, event, today)


def _record_review(store: EventStore, ctx: Context, event, today: dt.date):
    """A review event (approval, rejection, closing) on its proposal's stream."""
    return record(store, [Pending(NewEvent(f"proposal:{event.proposal}", event, today, ctx.meta()))])


def _reviewable(view, actor: str, verb: str) -> None:
    if view.status == "stale":
        seqs = ", ".join(str(s) for s in view.moved_by[:5]) + (" ..." if len(view.moved_by) > 5 else "")
        raise ReviewError(f"cannot {verb} {view.proposal}: it is stale, its account moved after seq {view.as_of_seq} "
                          f"(seq {seqs}); make a new proposal")
    if view.status == "expired":
        raise ReviewError(f"cannot {verb} {view.proposal}: it expired on {view.expires}; make a new proposal")
    if view.status != "proposed":
        raise ReviewError(f"cannot {verb} {view.proposal}: it is {view.status}"
                          + (f" by {view.reviewer}" if view.reviewer else ""))


# -- orders and fills -----------------------------------------------------------------------------
ORDER_COLUMNS = ["proposal", "account", "symbol", "side", "quantity", "ordered", "filled", "limit_price",
                 "estimated_value", "lots"]


def orders(store: EventStore, pid: str) -> list[dict]:
    """An approved proposal's orders still to trade: `quantity` is what remains after the fills recorded (`ordered`
    less `filled`), so a partly filled proposal's export is not sent whole again (found by review); an order filled
    in full is left out."""
    view = proposal(store, pid)
    if view.status not in ("approved", "partially-filled", "filled"):
        raise ReviewError(f"{pid} is {view.status}: only an approved proposal's orders can be exported")
    filled: dict[tuple[str, str], Decimal] = {}
    for f in view.fills:
        filled[(f.symbol, f.side)] = filled.get((f.symbol, f.side), Decimal(0)) + f.quantity
    rows = []
    for o in view.content["orders"]:
        done = filled.get((o["symbol"], o["side"]), Decimal(0))
        left = Decimal(o["quantity"]) - done
        if left <= 0:
            continue
        rows.append({"proposal": pid, "account": view.account, "symbol": o["symbol"], "side": o["side"],
                     "quantity": o["quantity"] if not done else v.plain_text(left), "ordered": o["quantity"],
                     "filled": v.plain_text(done), "limit_price": o["price"],
                     "estimated_value": o["value"] if not done else str(v.round_cents(left * Decimal(o["price"]))),
                     "lots": ";".join(f"{p.lot}:{p.quantity}" for p in _fill_lots(o, done, left))})
    if not rows:
        raise ReviewError(f"{pid} is filled: no order has anything left to trade (folio proposals show {pid})")
    return rows


FILL_COLUMNS = ("proposal", "symbol", "side", "quantity", "price", "fees", "date", "fill_id")


def read_fills(store: EventStore, ctx: Context, text: str, source: str) -> tuple[list[Pending], int, int]:
    """Fills CSV (`proposal,symbol,side,quantity,price,fees,date,fill_id`) as TradeExecuted events of the proposals.

    Every row is checked against its proposal's orders (symbol, side, cumulative quantity); all problems are reported."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in FILL_COLUMNS if c not in header and c != "fees"]
    if missing:
        raise Refused([(f"{source} line 1", f"missing column(s) {', '.join(missing)}; expected {','.join(FILL_COLUMNS)}")])
    reader.fieldnames = header
    problems, pending, duplicates, repeats = [], [], 0, 0
    voided = store.voided()
    in_file: dict[str, tuple[tuple, int]] = {}
    held_at: dict[tuple[str, str], dict[str, Decimal]] = {}  # (account, symbol) -> lot id -> shares left to relieve
    views: dict[str, object] = {}
    filled: dict[tuple[str, str, str], Decimal] = {}
    for row in reader:
        label = f"{source} line {reader.line_num}"
        c = {k: (row.get(k) or "").strip() for k in FILL_COLUMNS}
        try:
            pid = c["proposal"]
            if pid not in views:
                views[pid] = proposal(store, pid)
            view = views[pid]
            if view.status not in ("approved", "partially-filled", "filled", "closed"):
                raise ReviewError(f"{pid} is {view.status}: fills are taken only for approved proposals")
            sym, side = c["symbol"].upper(), c["side"].lower()
            order = next((o for o in view.content["orders"] if o["symbol"] == sym and o["side"] == side), None)
            if order is None:
                raise ReviewError(f"{pid} has no {side} order for {sym}")
            qty = v.positive(c["quantity"], "quantity")
            price = v.positive(c["price"], "price")
            fees = v.non_negative(v.money(c["fees"] or "0", "fees"), "fees")
            day = v.parse_date(c["date"])
            if view.status == "closed":  # a later approved proposal of the account may order what this left undone
                later = next((p for p in proposals(store, account=view.account) if p.seq > view.seq
                              and p.status in ("approved", "partially-filled", "filled")), None)
                if later is not None:
                    raise ReviewError(f"{pid} was closed and {later.proposal} of {view.account}, approved since, orders "
                                      f"from the holdings left then: a late fill of {pid} would trade the shares twice "
                                      f"(close {later.proposal} and propose again, or record the execution as a trade)")
            if view.closed_on is not None and day > view.closed_on:  # an execution before the close is still its own
                raise ReviewError(f"{pid} was closed on {view.closed_on}: a fill dated {day} came after it (record it "
                                  f"as a trade of its own)")
            if day < view.as_of:  # the orders were computed from the holdings of that date: a fill cannot precede it
                raise ReviewError(f"a fill dated {day} is before {pid}'s as-of date {view.as_of}, whose holdings its "
                                  f"orders were computed from")
            if not c["fill_id"]:
                raise ReviewError("every fill needs a fill_id (it makes importing the same file twice harmless)")
            idem = f"fill:{pid}:{c['fill_id']}"
            terms = (sym, side, qty, price, fees, day)
            if idem in in_file:  # found by review: a repeat in one file was dropped without a word
                first_terms, first_line = in_file[idem]
                if first_terms != terms:
                    raise ReviewError(f"fill {c['fill_id']} of {pid} appears on line {first_line} too, with other terms")
                repeats += 1  # (not "already recorded": found by review)
                continue
            in_file[idem] = (terms, reader.line_num)
            already = store.find_idem(idem)
            if already is not None and already[0] in voided:  # found by review: said "already recorded"
                raise ReviewError(f"fill {c['fill_id']} of {pid} was recorded as seq {already[0]}, which is voided (seq "
                                  f"{voided[already[0]]}): a fill id stays spent; record the corrected fill under a new "
                                  f"fill_id (e.g. {c['fill_id']}-2)")
            if already is not None:
                recorded = ev_from_row(store, already[0])
                if (recorded.symbol, recorded.side, recorded.quantity, recorded.price, recorded.fees, already[3]) != (
                        sym, side, qty, price, fees, day.isoformat()):
                    raise ReviewError(f"fill {c['fill_id']} of {pid} was already recorded as seq {already[0]} with other terms")
                duplicates += 1
                continue
            key = (pid, sym, side)
            before = filled.get(key, view.filled(sym, side))
            if before + qty > Decimal(order["quantity"]):
                raise ReviewError(f"{side} of {qty} {sym} would fill {before + qty} of {order['quantity']} ordered in {pid}")
            filled[key] = before + qty
            lots = _fill_lots(order, before, qty) if side == "sell" else ()
            if lots:  # the lots of the symbol as of the first of its fills in the file, less what its fills take
                key_books = (view.account, sym)
                if key_books not in held_at:
                    books = load_books(store, Point(as_of=day, known_seq=store.head()[0]), accounts=[view.account],
                                       keep_gains=False)
                    held_at[key_books] = {l.lot_id: l.quantity for l in books.accounts[view.account].lots.get(sym, [])}
                lots = _in_parts(lots, held_at[key_books])
            event = ev.TradeExecuted(account=view.account, symbol=sym, side=side, quantity=qty, price=price, fees=fees,
                                     lots=lots, lot_method=None, ref=c["fill_id"], proposal=pid)
            pending.append(Pending(NewEvent(account_stream(view.account), event, day,
                                            ctx.meta(source=f"{source}:{reader.line_num}"), idem_key=idem), label))
        except (DomainError, ValueError) as e:
            problems.append((label, str(e)))
    if problems:
        raise Refused(problems)
    return pending, duplicates, repeats


def ev_from_row(store: EventStore, seq: int) -> ev.TradeExecuted:
    return store.row(seq).decode()


def _in_parts(picks: tuple[ev.LotPick, ...], held: dict[str, Decimal]) -> tuple[ev.LotPick, ...]:
    """The proposal's lot picks as the lots are now: a lot a later wash sale split (`6` into `6` and `6w13`, the
    parts of one purchase) gives what it lacks from its parts, in their order (found by review: the fill of an
    approved sale was refused, "lot 6 holds 100, 174 asked"). `held` (lot id -> shares) is taken down by what each
    pick relieves, so later fills of the same file see what is left; a pick the lots cannot cover stays as it is
    (the books then refuse it, saying why)."""
    out = []
    for pick in picks:
        parts = [pick.lot] + [lot for lot in held if lot.startswith(pick.lot + "w")]
        if held.get(pick.lot, Decimal(0)) >= pick.quantity or sum(held.get(p, Decimal(0)) for p in parts) < pick.quantity:
            out.append(pick)
            if pick.lot in held:
                held[pick.lot] -= min(held[pick.lot], pick.quantity)
            continue
        need = pick.quantity
        for lot in parts:
            take = min(held.get(lot, Decimal(0)), need)
            if take > 0:
                out.append(ev.LotPick(lot=lot, quantity=take))
                held[lot] -= take
                need -= take
    return tuple(out)


def _fill_lots(order: dict, already: Decimal, qty: Decimal) -> tuple[ev.LotPick, ...]:
    """The proposal's lots for this part of the order, in the order the proposal listed them."""
    picks, skip, need = [], already, qty
    for l in order["lots"]:
        q = Decimal(l["quantity"])
        if skip >= q:
            skip -= q
            continue
        take = min(q - skip, need)
        skip = Decimal(0)
        if take > 0:
            picks.append(ev.LotPick(lot=l["lot_id"], quantity=take))
            need -= take
        if need <= 0:
            break
    return tuple(picks)
