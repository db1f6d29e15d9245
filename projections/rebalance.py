"""Read side of the rebalancer: models, the inputs of a proposal at a point, proposals and their fills."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Sequence

import attrs

from domain import events as ev
from domain import tax
from domain.books import Books
from domain.errors import DomainError
from domain.rebalancing.model import Holding, Inputs, LotInfo, Quote
from ledger import codec
from projections.pricing import prices_for
from ledger.store import EventStore, StoredRow
from projections import tax_views
from projections.replay import Point


class MissingPrices(DomainError):
    """Symbols needed at the as-of date have no price on or before it."""


class NoModel(DomainError):
    """The account has no model or policy to rebalance against."""


@attrs.frozen
class ModelVersion:
    model: str
    version: int
    effective: dt.date
    seq: int
    event: ev.ModelSet


def model_versions(store: EventStore, known_seq: int | None = None, model: str | None = None) -> dict[str, list[ModelVersion]]:
    """Versions of every model (or of one: only its stream is read, so a per-account lookup does not decode them all).

    Kept in the store's memo under the log's head: `check --all` looks up the same few models for every account."""
    memo = store.memo.setdefault("model_versions", {})
    key = (store.head(), known_seq, model)
    if key not in memo:
        if len(memo) > 1_000:
            memo.clear()
        out: dict[str, list[ModelVersion]] = {}
        for row in store.rows(type_="ModelSet", known_seq=known_seq, stream=None if model is None else f"model:{model}"):
            e = row.decode()
            out.setdefault(e.model, []).append(ModelVersion(e.model, row.version, dt.date.fromisoformat(row.effective),
                                                            row.seq, e))
        memo[key] = out
    return {m: list(vs) for m, vs in memo[key].items()}


def model_at(store: EventStore, model: str, point: Point) -> ModelVersion:
    versions = [m for m in model_versions(store, point.known_seq, model).get(model, [])
                if point.as_of is None or m.effective <= point.as_of]
    if not versions:
        raise NoModel(f"model {model} has no version effective by {point.as_of}" if point.as_of else f"no model {model}")
    return versions[-1]


def last_rebalance(store: EventStore, account: str, known_seq: int, opened: dt.date) -> dt.date:
    """The as-of date of the account's latest approved proposal (or the day it opened)."""
    last = opened
    for p in proposals(store, known_seq=known_seq, account=account):
        if p.status in ("approved", "filled", "partially-filled"):
            last = max(last, p.as_of)
    return last


def build_inputs(store: EventStore, books: Books, account: str, point: Point, *, prices_known_at: str | None = None,
                 amount: Decimal | None = None, also: Sequence["PendingOrder"] = (), policy_needed: bool = True) -> Inputs:
    """Everything a proposal for `account` at `point` needs, from the log and the price table. `also`: orders of
    proposals not recorded (the dry runs of `propose --all --dry-run` before this account's), as if they were.
    `policy_needed=False` (a risk report, which reads the model's targets only): an account without a policy gets the
    default one."""
    acct = books.accounts.get(account)
    if acct is None:
        raise DomainError(f"account {account} is not open as of {point.as_of}")
    if acct.model is not None and acct.policy is None and not policy_needed:
        acct = attrs.evolve(acct, policy=ev.PolicySet(account=account, triggers=("drift", "cash")))
    if acct.model is None or acct.policy is None:
        missing = " and ".join(x for x, v in (("model", acct.model), ("policy", acct.policy)) if v is None)
        raise NoModel(f"account {account} has no {missing}: use `folio account assign` and `folio policy set`")
    model = model_at(store, acct.model, point)
    holdings = holdings_of(acct)
    symbols = sorted({h.symbol for h in holdings} | {t.symbol for t in model.event.targets}
                     | {s for h in holdings for s in books.substitutes.get(h.symbol, ())}
                     | {s for t in model.event.targets for s in books.substitutes.get(t.symbol, ())})
    quotes, missing = {}, []
    for s, p in prices_for(store, symbols, point.as_of, prices_known_at, point.known_seq, acct.currency).items():
        if p is None:
            missing.append(s)
        else:
            quotes[s] = Quote(price=p.close, date=p.date)
    needed = [s for s in missing if s in {h.symbol for h in holdings} | {t.symbol for t in model.event.targets}]
    if needed:
        raise MissingPrices(f"no price on or before {point.as_of} for {', '.join(needed)}"
                            + _last_known(store, needed, acct.currency) + "; import prices with `folio prices import`")
    inputs = inputs_of(books, account, point.as_of, point.known_seq, quotes, model.event, model.version, acct.policy,
                       acct.policy_seq, amount, holdings)
    siblings = {a.account for a in books.accounts_of(acct.owner)} - {account}
    return with_pending(inputs, books, pending_elsewhere(store, books, account, point)
                        + [o for o in also if o.account in siblings])


@attrs.frozen
class PendingOrder:
    """An order of an open proposal (proposed, approved or partly filled) not yet filled in full."""

    #: what it is, for the reader: "proposal P0001 of TAX", or "the dry run for TAX"
    source: str
    account: str
    side: str
    symbol: str
    #: a sale's estimated loss (its lots at a loss, as proposed), 0 when none or for a buy
    loss: Decimal
    #: the shares still to trade
    quantity: Decimal = Decimal(0)


#: statuses of a proposal whose orders may still trade
OPEN = ("proposed", "approved", "partially-filled")


def pending_elsewhere(store: EventStore, books: Books, account: str, point: Point) -> list[PendingOrder]:
    """The orders still to trade of the open proposals, known at the point, of the owner's other accounts: a loss sale
    among them and a buy of its group here would be a wash sale if both execute within 30 days (found by review:
    `propose --all` sold VTI at a loss in the taxable account and bought VTI in the IRA, washing the loss for good).
    A proposal as of a later date than the point does not count, nor one expired by then (read from the log at the
    point, so a proposal's recomputation sees the same)."""
    acct = books.accounts[account]
    siblings = {a.account for a in books.accounts_of(acct.owner)} - {account}
    if not siblings:
        return []
    out = []
    for sibling in sorted(siblings):  # (by account: a query each, not every proposal of the ledger read per account)
        for p in proposals(store, known_seq=point.known_seq, account=sibling, today=point.as_of):
            if p.status not in OPEN or p.as_of > point.as_of:
                continue
            for o in p.content["orders"]:
                if Decimal(o["quantity"]) <= p.filled(o["symbol"], o["side"]):
                    continue
                loss = -sum((g for l in o["lots"] if (g := Decimal(l["gain"])) < 0), Decimal(0))
                out.append(PendingOrder(f"proposal {p.proposal} of {p.account}", p.account, o["side"], o["symbol"], loss,
                                        Decimal(o["quantity"]) - p.filled(o["symbol"], o["side"])))
    return out


def pending_of(content: dict, source: str) -> list[PendingOrder]:
    """A proposal's orders as pending orders (a dry run's, which no log holds)."""
    return [PendingOrder(source, content["account"], o["side"], o["symbol"],
                         -sum((g for l in o["lots"] if (g := Decimal(l["gain"])) < 0), Decimal(0)), Decimal(o["quantity"]))
            for o in content["orders"]]


def with_pending(inputs: Inputs, books: Books, pending: list[PendingOrder]) -> Inputs:
    """The inputs with the other accounts' pending orders in their wash-sale view: a loss sale in a taxable account
    restricts buying its group here for 30 days from the as-of date (a buy goes to a substitute or is skipped, saying
    why); a buy makes selling a lot of its group here at a loss a wash risk (harvesting leaves it; a rebalancing
    sale of it is noted)."""
    if not pending:
        return inputs
    restricted, restricted_by = dict(inputs.restricted), dict(inputs.restricted_by)
    risks = dict(inputs.wash_risks)
    until = inputs.as_of + tax.WINDOW
    for o in pending:
        members = tax.group_members(books, tax.group_of(books, o.symbol))
        if o.side == "sell":
            if o.loss <= 0 or books.accounts[o.account].tax_status != "taxable":
                continue
            for s in members:
                if s not in restricted or restricted[s] < inputs.as_of:  # (a recorded loss sale's reason stands)
                    restricted[s] = until
                    restricted_by.setdefault(s, f"{o.source} selling {o.symbol} at an estimated loss of {o.loss}")
        elif inputs.tax_status == "taxable":
            for h in inputs.holdings:
                if h.symbol in members and h.symbol in inputs.prices:
                    price = inputs.price(h.symbol)
                    for lot in h.lots:
                        if lot.basis > lot.quantity * price:
                            why = (f"{o.source} buys {o.symbol}", None, o.quantity)
                            if why not in risks.get(lot.lot_id, ()):
                                risks[lot.lot_id] = risks.get(lot.lot_id, ()) + (why,)
    return attrs.evolve(inputs, restricted=restricted, restricted_by=restricted_by, wash_risks=risks)


def holdings_of(acct) -> tuple[Holding, ...]:
    """An account's open lots as the planner's holdings, by symbol."""
    return tuple(Holding(symbol=s, quantity=sum((l.quantity for l in lots), Decimal(0)),
                         lots=tuple(LotInfo(l.lot_id, l.quantity, l.basis, l.acquired, l.hp_start) for l in lots))
                 for s, lots in sorted(acct.lots.items()))


def inputs_of(books: Books, account: str, as_of: dt.date, as_of_seq: int, quotes: dict[str, Quote], model: ev.ModelSet,
              model_version: int, policy: ev.PolicySet, policy_seq: int, amount: Decimal | None = None,
              holdings: tuple[Holding, ...] | None = None) -> Inputs:
    """The planner's inputs from books and prices: holdings, cash, the owner's rates, the wash-sale restrictions in
    force and declared substitutes (what `build_inputs` reads from the log, and a backtest from its own books)."""
    acct = books.accounts[account]
    ot = books.owners.get(acct.owner)
    reinvested = tax_views.reinvestments(books, acct.owner)
    risks = {}
    for lot in acct.open_lots():
        why = tax_views.wash_risk_sources(books, acct.owner, lot, as_of, reinvested, account)
        if why:
            risks[lot.lot_id] = tuple(why)
    restricted = {}
    for r in tax_views.restrictions(books, acct.owner, as_of):
        for s in r.symbols:
            restricted[s] = max(restricted.get(s, r.restricted_until), r.restricted_until)
    return Inputs(account=account, as_of=as_of, as_of_seq=as_of_seq, cash=acct.cash,
                  holdings=holdings_of(acct) if holdings is None else holdings, prices=quotes, model=model,
                  model_version=model_version, policy=policy, policy_seq=policy_seq, lot_method=acct.lot_method,
                  rates=ot.rates if ot else None, restricted=restricted,
                  substitutes={k: tuple(sorted(v)) for k, v in sorted(books.substitutes.items())},
                  identical=dict(sorted(books.identical.items())),
                  amount=amount, tax_status=acct.tax_status, wash_risks=risks)


def _last_known(store: EventStore, symbols: Sequence[str], currency: str | None = None) -> str:
    parts = []
    for s in symbols:
        row = store.conn.execute("SELECT date, currency FROM prices WHERE symbol = ? ORDER BY date DESC, id DESC LIMIT 1",
                                 (s,)).fetchone()
        if row is None:
            parts.append(f"{s}: no price at all")
        elif currency is not None and row[1] != currency:
            parts.append(f"{s}: last price {row[0]} in {row[1]}, not the account's {currency}")
        else:
            parts.append(f"{s}: last price {row[0]}")
    return f" ({'; '.join(parts)})"


# -- proposals --------------------------------------------------------------------------------
@attrs.frozen
class Fill:
    seq: int
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fees: Decimal
    effective: str


@attrs.frozen
class ProposalView:
    proposal: str
    account: str
    proposer: str
    mode: str
    as_of: dt.date
    as_of_seq: int
    expires: dt.date
    digest: str
    content: dict
    seq: int
    recorded_at: str
    status: str
    reviewer: str | None
    review_note: str | None
    fills: tuple[Fill, ...]
    #: seqs recorded after the as-of seq that moved the account (what makes a proposal stale)
    moved_by: tuple[int, ...] = ()
    #: the day a closed proposal was closed: fills of executions up to it are still its own
    closed_on: dt.date | None = None

    def filled(self, symbol: str, side: str) -> Decimal:
        return sum((f.quantity for f in self.fills if f.symbol == symbol and f.side == side), Decimal(0))


def proposals(store: EventStore, *, known_seq: int | None = None, account: str | None = None,
              today: dt.date | None = None) -> list[ProposalView]:
    """Every proposal with its status: proposed, stale, expired, rejected, approved, partially-filled, filled,
    closed."""
    # Read the proposal streams through the (stream, version) index, never the whole log: `check --all` asks
    # this once per account, and a scan of every event made that quadratic in accounts.
    if account is None:
        streams = store.streams("proposal:")
    else:
        streams = [r[0] for r in store.conn.execute(
            "SELECT stream FROM events WHERE type = 'RebalanceProposed' AND json_extract(payload, '$.account') = ?",
            (account,))]
    rows: dict[str, list[StoredRow]] = {}
    for stream in streams:
        for row in store.rows(stream=stream, known_seq=known_seq):
            rows.setdefault(row.stream[9:], []).append(row)
    out = []
    for pid, stream in sorted(rows.items(), key=lambda kv: kv[1][0].seq):
        first = stream[0].decode()
        if account is not None and first.account != account:
            continue
        out.append(_view(store, stream, first, known_seq, today))
    return out


def proposal(store: EventStore, pid: str, today: dt.date | None = None) -> ProposalView:
    stream = list(store.rows(stream=f"proposal:{pid}"))
    if not stream:
        raise DomainError(f"no proposal {pid}: `folio proposals` lists them")
    return _view(store, stream, stream[0].decode(), None, today)


#: every status a proposal can have (`_view` decides which)
STATUSES = ("proposed", "stale", "expired", "approved", "rejected", "partially-filled", "filled", "closed")


def _view(store: EventStore, stream: list[StoredRow], first: ev.RebalanceProposed, known_seq, today) -> ProposalView:
    status, reviewer, note, closed, closed_on = "proposed", None, None, None, None
    for row in stream[1:]:
        e = row.decode()
        if isinstance(e, ev.ProposalApproved):
            status, reviewer, note = "approved", e.approver, e.comment
        elif isinstance(e, ev.ProposalRejected):
            status, reviewer, note = "rejected", e.reviewer, e.reason
        elif isinstance(e, ev.ProposalClosed):
            closed, closed_on = e, dt.date.fromisoformat(row.effective)
    voided = store.voided(known_seq)
    fills = tuple(
        Fill(seq=r.seq, symbol=t.symbol, side=t.side, quantity=t.quantity, price=t.price, fees=t.fees, effective=r.effective)
        for r in store.rows(stream=f"account:{first.account}", known_seq=known_seq, type_="TradeExecuted")
        if r.seq not in voided and (t := r.decode()).proposal == first.proposal)
    if status == "approved" and fills:
        orders = first.content["orders"]
        done = all(sum((f.quantity for f in fills if f.symbol == o["symbol"] and f.side == o["side"]), Decimal(0))
                   >= Decimal(o["quantity"]) for o in orders)
        status = "filled" if done else "partially-filled"
    if closed is not None:  # (a late fill of an execution before the close may fill it all: then it says both)
        note = f"{note + '; ' if note else ''}closed by {closed.closer}: {closed.reason}"
        if status in ("approved", "partially-filled"):
            status = "closed"
    moved = tuple(newer_events(store, first, known_seq)) if status == "proposed" else ()
    if status == "proposed":
        if today is not None and today > first.expires:
            status = "expired"
        elif moved:
            status = "stale"
    return ProposalView(
        proposal=first.proposal, account=first.account, proposer=first.proposer, mode=first.mode,
        as_of=dt.date.fromisoformat(first.content["as_of"]), as_of_seq=first.as_of_seq, expires=first.expires,
        digest=first.digest, content=first.content, seq=stream[0].seq, recorded_at=stream[0].recorded_at, status=status,
        reviewer=reviewer, review_note=note, fills=fills, moved_by=moved,
        closed_on=closed_on)


def moved_after(store: EventStore, account: str, point: Point) -> tuple[int, str] | None:
    """(seq, effective) of the latest event known at the point, dated after its as-of date, that moves the account's
    holdings or cash (not voided): a proposal as of that point would trade what the account no longer holds."""
    voided = store.voided(point.known_seq)
    names = [cls.__name__ for cls in ev.HOLDINGS_AND_CASH]
    rows = store.conn.execute(
        f"SELECT seq, effective FROM events WHERE stream = ? AND effective > ? AND seq <= ? AND type IN "
        f"({','.join('?' * len(names))}) ORDER BY effective DESC, seq DESC",
        (f"account:{account}", point.as_of.isoformat(), point.known_seq, *names))
    return next(((seq, day) for seq, day in rows if seq not in voided), None)


def newer_events(store: EventStore, p: ev.RebalanceProposed, known_seq: int | None = None) -> list[int]:
    """Seqs of events recorded after the proposal's as-of seq that move its account: its own stream, its owner's
    (rates), a trade in the owner's other accounts (a loss sale there restricts a buy here: a wash sale), or a
    corporate action on a security it holds or trades."""
    symbols = {h["symbol"] for h in p.content["holdings"]} | {o["symbol"] for o in p.content["orders"]}
    # owners as known at the proposal's point and at `known_seq` (found by review: read as known now, an owner amended
    # since changed the past); an account that joined or left the owner in between is a sibling too, and its
    # opening's amendment (an opening after the first of its stream), or a void, moves the owner's wash sales as a
    # trade does (a new account's first opening moves nothing)
    then, now = store.account_owners_at(p.as_of_seq), store.account_owners_at(known_seq)
    owner = then.get(p.account)
    streams = [f"account:{p.account}"] + ([f"owner:{owner}"] if owner is not None else []) + [
        f"security:{s}" for s in sorted(symbols)]
    siblings = sorted({f"account:{a}" for owners in (then, now) for a, o in owners.items()
                       if o == owner and a != p.account})
    args: list = [p.as_of_seq, *streams, *siblings]
    sql = (f"SELECT seq FROM events WHERE seq > ? AND (stream IN ({','.join('?' * len(streams))}) OR "
           f"(stream IN ({','.join('?' * len(siblings))}) AND (type IN ('TradeExecuted', 'EventVoided') OR (type = 'AccountOpened' AND version > 1))))")
    if known_seq is not None:
        sql += " AND seq <= ?"
        args.append(known_seq)
    return [r[0] for r in store.conn.execute(sql + " ORDER BY seq", args)]


def first_difference(a, b, path: str = "") -> str | None:
    """The path of the first place two JSON values differ, or None when they are the same."""
    if type(a) is not type(b):
        return f"{path or '/'}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}/{k}: present in only one"
            d = first_difference(a[k], b[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}/{i}")
            if d:
                return d
        return None if len(a) == len(b) else f"{path}: {len(a)} items != {len(b)}"
    return None if a == b else f"{path}: {a!r} != {b!r}"


def digest_of(content: dict) -> str:
    import hashlib
    return hashlib.sha256(codec.canonical(content).encode()).hexdigest()


def assess(store: EventStore, books: Books, inputs: Inputs):
    """Drift and the triggers that fire for an account at its inputs' point."""
    from domain.rebalancing.drift import drift, triggers

    acct = books.accounts[inputs.account]
    d = drift(inputs)
    since = last_rebalance(store, inputs.account, inputs.as_of_seq, acct.opened)
    in_model = {t.symbol for t in inputs.model.targets} | set(inputs.stand_ins())  # a stand-in is counted in its symbol
    actions = [f"holds {h.symbol}, which is not in model {inputs.model.model}"
               + _came_from(h, acct) for h in inputs.holdings if h.symbol not in in_model]
    actions += [f"{g.reason} of {g.symbol} on {g.sold} (seq {g.seq}) raised {g.proceeds} cash"
                for g in acct.gains if g.reason in ("cash-in-lieu", "merger-cash", "merger") and since < g.sold <= inputs.as_of]
    quotes = {s: quote_price(inputs, s, acct.currency) for s in inputs.prices}
    found, _ = tax_views.harvest(books, [inputs.account], inputs.as_of,
                                 quotes.get, min_loss=max(inputs.policy.harvest_min_loss, Decimal("0.01")))
    harvestable = [f"lot {c.lot_id} of {c.symbol} has a {c.value.term}-term loss of {c.loss}" for c in found]
    fired = triggers(inputs, d, last_rebalance=since, corporate_actions=actions, harvestable=harvestable,
                     opened=acct.opened)
    if "risk" in inputs.policy.triggers and inputs.policy.risk_threshold is not None:
        fired += risk_trigger(store, inputs)
    return d, fired


def risk_trigger(store: EventStore, inputs: Inputs):
    """The account's risk (volatility or one-day historical VaR) against its model's, over a year of closes."""
    from domain.rebalancing import risk as rk
    from domain.rebalancing.drift import Trigger
    from projections.risk import account_risk

    try:
        r = account_risk(store, inputs, 252, 0.95)
    except rk.RiskError:
        return []
    if inputs.policy.risk_measure == "var":
        from projections.risk import price_history
        hist = price_history(store, r.symbols, inputs.as_of, 252)
        mine, model = r.var_hist, rk.historical_var_cvar(hist.returns @ r.model_weights, 0.95)[0]
        label = "one-day 95% VaR"
    else:
        mine, model, label = r.volatility, r.model_volatility, "volatility"
    if model <= 0:
        return []
    deviation = abs(mine - model) / model
    if deviation > float(inputs.policy.risk_threshold):
        return [Trigger("risk", f"{label} {mine:.2%} differs from the model's {model:.2%} by {deviation:.1%} "
                                f"(threshold {(inputs.policy.risk_threshold * 100).normalize():f}%)")]
    return []


def quote_price(inputs: Inputs, symbol: str, currency: str):
    """The planner's quote of `symbol` as a price in `currency` (the account's: its quotes were read in it), for the
    harvest scan (found by review: made without a currency, every quote was USD, and a EUR account's lots were all
    unpriced: its harvest trigger never fired)."""
    from ledger.prices import Price

    q = inputs.prices.get(symbol)
    return None if q is None else Price(symbol=symbol, date=q.date, close=q.price, currency=currency)


def _came_from(holding: Holding, acct) -> str:
    lots = [l for l in acct.lots.get(holding.symbol, [])]
    for lot in lots:
        for seq, what in lot.origin_lines():
            if "spun off" in what or "merger" in what or "renamed" in what:
                return f" (from seq {seq}: {what})"
    return ""
