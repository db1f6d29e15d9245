"""Trade generation: from the projected state at a point to a list of orders that respects the policy.

Everything is Decimal. Sells come first and fund buys; each sell picks its lots by the account's
method (or min-tax) and reports the gain and term of each; whole shares never overspend cash and
never breach the minimum buffer; trades below the minimum value are dropped; the turnover cap is
met by trimming the smallest-benefit trades first; buys of securities restricted by a recent loss
sale go to a declared substitute or are skipped with a reason. Post-trade weights come from the
post-trade holdings and the total after trading and costs, and sum to 1 exactly with cash.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal

import attrs

from domain.lots import Lot, relief_order
from domain.rebalancing.drift import WEIGHT, band_of, drift
from domain.rebalancing.model import Inputs
from domain.values import ZERO, is_long_term, round_cents

FRACTION = Decimal("0.000001")
BPS = Decimal("0.0001")


@attrs.frozen
class LotSale:
    lot_id: str
    quantity: Decimal
    basis: Decimal
    proceeds: Decimal
    term: str

    @property
    def gain(self) -> Decimal:
        return self.proceeds - self.basis


@attrs.frozen
class Order:
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    lots: tuple[LotSale, ...] = ()
    note: str = ""

    @property
    def value(self) -> Decimal:
        return round_cents(self.quantity * self.price)


@attrs.frozen
class Plan:
    orders: tuple[Order, ...]
    skipped: tuple[tuple[str, str], ...]
    costs: Decimal
    tax_short: Decimal | None
    tax_long: Decimal | None
    gain_short: Decimal
    gain_long: Decimal
    turnover: Decimal
    cash_before: Decimal
    cash_after: Decimal
    total_before: Decimal
    total_after: Decimal
    weights_before: dict[str, Decimal]
    weights_after: dict[str, Decimal]
    notes: tuple[str, ...] = ()


def cost_of(inputs: Inputs, quantity: Decimal, price: Decimal) -> Decimal:
    p = inputs.policy
    return round_cents(quantity * price * p.cost_bps * BPS + quantity * p.cost_per_share)


def shares_for(inputs: Inputs, value: Decimal, price: Decimal) -> Decimal:
    """Shares worth at most `value`: whole shares rounded down, or fractions to a millionth."""
    if value <= 0:
        return ZERO
    q = value / price
    return q.to_integral_value(rounding=ROUND_FLOOR) if inputs.policy.whole_shares else q.quantize(FRACTION, rounding=ROUND_DOWN)


def weights(values: dict[str, Decimal], cash: Decimal) -> dict[str, Decimal]:
    """Weights rounded to a millionth; cash takes the remainder, so they sum to 1 exactly."""
    total = sum(values.values(), ZERO) + cash
    if total <= 0:
        return {**{s: ZERO for s in values}, "CASH": ZERO}
    out = {s: (v / total).quantize(WEIGHT) for s, v in sorted(values.items())}
    out["CASH"] = Decimal(1) - sum(out.values(), ZERO)
    return out


def desired_weights(inputs: Inputs) -> dict[str, Decimal]:
    """The weight each asset should end at: the target, its band edge, or halfway, as the policy says."""
    d = drift(inputs)
    targets = {t.symbol: t for t in inputs.model.targets}
    out = {}
    for row in d.rows:
        t = targets.get(row.symbol)
        target = t.weight if t else ZERO
        mode = inputs.policy.rebalance_to
        if mode == "target" or t is None:
            out[row.symbol] = target
        elif row.in_band:
            out[row.symbol] = row.weight
        else:
            edge = band_of(t).nearest_edge(row.weight)
            out[row.symbol] = edge if mode == "band-edge" else (edge + target) / 2
    return out


def _lots(inputs: Inputs, symbol: str) -> list[Lot]:
    h = inputs.held().get(symbol)
    if h is None:
        return []
    return [Lot(lot_id=l.lot_id, symbol=symbol, quantity=l.quantity, basis=l.basis, acquired=l.acquired,
                order=i, hp_start=l.hp_start) for i, l in enumerate(h.lots)]


def sell_lots(inputs: Inputs, symbol: str, quantity: Decimal, *, avoid_short_term_gains: bool) -> tuple[Decimal, tuple[LotSale, ...]]:
    """Which lots a sale of `quantity` relieves (by the account's method), with estimated gain and term.

    With `avoid_short_term_gains`, lots that would realize a short-term gain are not sold (the sale shrinks)."""
    price = inputs.price(symbol)
    lots = relief_order(_lots(inputs, symbol), inputs.lot_method, price, inputs.as_of, inputs.rates)
    out, remaining = [], quantity
    for lot in lots:
        if remaining <= 0:
            break
        term = "long" if is_long_term(lot.hp_start, inputs.as_of) else "short"
        if avoid_short_term_gains and term == "short" and price > lot.unit_basis:
            continue
        take = min(lot.quantity, remaining)
        basis = lot.basis if take == lot.quantity else round_cents(lot.basis * take / lot.quantity)
        out.append(LotSale(lot_id=lot.lot_id, quantity=take, basis=basis, proceeds=round_cents(take * price), term=term))
        remaining -= take
    return quantity - remaining, tuple(out)


def _sell(inputs: Inputs, symbol: str, quantity: Decimal, note: str = "") -> Order | None:
    sold, lots = sell_lots(inputs, symbol, quantity, avoid_short_term_gains=inputs.policy.avoid_short_term)
    if sold <= 0:
        return None
    return Order(symbol=symbol, side="sell", quantity=sold, price=inputs.price(symbol), lots=lots, note=note)


def tax_of(inputs: Inputs, order: Order) -> Decimal:
    if inputs.rates is None or order.side != "sell":
        return ZERO
    return sum((l.gain * (inputs.rates[1] if l.term == "long" else inputs.rates[0]) for l in order.lots), ZERO)


def plan(inputs: Inputs, mode: str = "full") -> Plan:
    """A trade list for the mode: full, contribution (buy only), withdrawal (sell only), harvest."""
    total = inputs.total_value()
    policy = inputs.policy
    notes: list[str] = []
    skipped: list[tuple[str, str]] = []
    held = inputs.held()
    current = {s: h.quantity * inputs.price(s) for s, h in held.items()}
    want = desired_weights(inputs)
    deltas = {s: want[s] * total - current.get(s, ZERO) for s in want}

    sells: list[Order] = []
    if mode in ("full", "withdrawal"):
        if mode == "withdrawal":
            sells = _withdrawal_sells(inputs, total, notes)
        else:
            for s, delta in sorted(deltas.items()):
                if delta < 0 and s in held:
                    whole = want[s] == 0
                    qty = held[s].quantity if whole else min(held[s].quantity, shares_for(inputs, -delta, inputs.price(s)))
                    order = _sell(inputs, s, qty, "not in the model" if whole else "")
                    if order is not None:
                        sells.append(order)
    elif mode == "harvest":
        sells = _harvest_sells(inputs, notes)
    sells = _apply_tax_budget(inputs, sells, notes)
    sells = _drop_small(inputs, sells, skipped)

    def cash_after(orders: list[Order]) -> Decimal:
        cash = inputs.cash
        for o in orders:
            cash += (o.value if o.side == "sell" else -o.value) - cost_of(inputs, o.quantity, o.price)
        return cash

    floor = round_cents(policy.min_cash * total)
    buys: list[Order] = []
    if mode in ("full", "contribution", "harvest"):
        if mode == "harvest":
            wanted = _substitute_values(inputs, sells, skipped)
        else:
            wanted = {s: d for s, d in deltas.items() if d > 0}
            if mode == "contribution":
                spare = inputs.cash - floor - sum(wanted.values(), ZERO)
                if spare > 0:  # deploy every dollar above the buffer, in proportion to the targets
                    _spread(inputs, wanted, spare, total, current)
            elif policy.rebalance_to != "target":
                # edge or midpoint moves leave idle cash: what is above the cash target goes toward the targets too
                ceiling = total * (policy.max_cash if policy.max_cash is not None else max(inputs.model.cash, policy.min_cash))
                idle = cash_after(sells) - sum(wanted.values(), ZERO) * (1 + policy.cost_bps * BPS)
                if idle > ceiling:
                    _spread(inputs, wanted, idle - total * max(inputs.model.cash, policy.min_cash), total, current)
            wanted = _redirect_restricted(inputs, wanted, skipped, notes)
        buys = _fund_buys(inputs, wanted, cash_after(sells) - floor, round_up=policy.rebalance_to != "target")
        buys = _drop_small(inputs, buys, skipped)
    orders = sells + buys
    if policy.turnover_cap is not None:
        orders = _cap_turnover(inputs, orders, total, notes, deltas)
        kept_sells = [o for o in orders if o.side == "sell"]
        kept_buys = [o for o in orders if o.side == "buy"]
        budget = cash_after(kept_sells) - floor
        if cash_after(orders) < floor:
            kept_buys = _fund_buys(inputs, {o.symbol: o.value for o in kept_buys}, budget)
        orders = kept_sells + _drop_small(inputs, kept_buys, skipped)
    return _finish(inputs, orders, tuple(skipped), tuple(notes), total, current)


def _withdrawal_sells(inputs: Inputs, total: Decimal, notes: list[str]) -> list[Order]:
    """Raise the stated amount (and keep the buffer) with the least tax: lots ordered by tax per dollar."""
    amount = inputs.amount or ZERO
    need = amount + round_cents(inputs.policy.min_cash * (total - amount)) - inputs.cash
    if need <= 0:
        notes.append(f"cash on hand covers the withdrawal of {amount}")
        return []
    candidates = []
    for h in inputs.holdings:
        price = inputs.price(h.symbol)
        for lot in _lots(inputs, h.symbol):
            term = "long" if is_long_term(lot.hp_start, inputs.as_of) else "short"
            rate = (inputs.rates[1] if term == "long" else inputs.rates[0]) if inputs.rates else Decimal(1)
            gain_per_dollar = (price - lot.unit_basis) / price
            candidates.append((rate * gain_per_dollar, gain_per_dollar, lot.acquired, h.symbol, lot))
    candidates.sort(key=lambda c: c[:4])
    taking: dict[str, list[tuple[Lot, Decimal]]] = {}
    for *_, symbol, lot in candidates:
        if need <= 0:
            break
        price = inputs.price(symbol)
        per_share = price - (cost_of(inputs, Decimal(1), price) if inputs.policy.cost_per_share or inputs.policy.cost_bps else ZERO)
        qty = need / per_share
        qty = qty.to_integral_value(rounding="ROUND_CEILING") if inputs.policy.whole_shares else qty.quantize(FRACTION, rounding="ROUND_CEILING")
        qty = min(qty, lot.quantity)
        taking.setdefault(symbol, []).append((lot, qty))
        need -= round_cents(qty * price) - cost_of(inputs, qty, price)
    if need > 0:
        notes.append(f"holdings cannot raise {amount}: {need.quantize(Decimal('0.01'))} short")
    orders = []
    for symbol, parts in sorted(taking.items()):
        price = inputs.price(symbol)
        lots = []
        for lot, qty in parts:
            term = "long" if is_long_term(lot.hp_start, inputs.as_of) else "short"
            basis = lot.basis if qty == lot.quantity else round_cents(lot.basis * qty / lot.quantity)
            lots.append(LotSale(lot_id=lot.lot_id, quantity=qty, basis=basis, proceeds=round_cents(qty * price), term=term))
        orders.append(Order(symbol=symbol, side="sell", quantity=sum((q for _, q in parts), ZERO), price=price,
                            lots=tuple(lots), note=f"withdrawal of {amount}"))
    return orders


def _harvest_sells(inputs: Inputs, notes: list[str]) -> list[Order]:
    """Sell every lot whose unrealized loss reaches the policy's threshold (lot by lot, specific identification)."""
    orders = []
    for h in inputs.holdings:
        price = inputs.price(h.symbol)
        lots = []
        for lot in _lots(inputs, h.symbol):
            loss = lot.basis - round_cents(lot.quantity * price)
            if loss > 0 and loss >= inputs.policy.harvest_min_loss:
                term = "long" if is_long_term(lot.hp_start, inputs.as_of) else "short"
                lots.append(LotSale(lot_id=lot.lot_id, quantity=lot.quantity, basis=lot.basis,
                                    proceeds=round_cents(lot.quantity * price), term=term))
        if lots:
            orders.append(Order(symbol=h.symbol, side="sell", quantity=sum((l.quantity for l in lots), ZERO), price=price,
                                lots=tuple(lots), note="harvest a loss"))
    if not orders:
        notes.append("no lot has a loss worth harvesting")
    return orders


def _substitute_values(inputs: Inputs, sells: list[Order], skipped: list) -> dict[str, Decimal]:
    wanted: dict[str, Decimal] = {}
    for o in sells:
        subs = [s for s in inputs.substitutes.get(o.symbol, ()) if s in inputs.prices and not _restricted(inputs, s)]
        if not subs:
            skipped.append((o.symbol, "no declared substitute with a price that is not restricted: proceeds stay in cash"))
            continue
        wanted[subs[0]] = wanted.get(subs[0], ZERO) + o.value
    return wanted


def _restricted(inputs: Inputs, symbol: str) -> bool:
    until = inputs.restricted.get(symbol)
    return until is not None and until >= inputs.as_of


def _redirect_restricted(inputs: Inputs, wanted: dict[str, Decimal], skipped: list, notes: list) -> dict[str, Decimal]:
    """A buy that would wash a recent loss sale goes to a declared substitute, or is skipped with the reason."""
    out: dict[str, Decimal] = {}
    for symbol, value in sorted(wanted.items()):
        if not _restricted(inputs, symbol):
            out[symbol] = out.get(symbol, ZERO) + value
            continue
        until = inputs.restricted[symbol]
        subs = [s for s in inputs.substitutes.get(symbol, ()) if s in inputs.prices and not _restricted(inputs, s)]
        if subs:
            out[subs[0]] = out.get(subs[0], ZERO) + value
            notes.append(f"buy of {symbol} redirected to {subs[0]}: {symbol} is restricted through {until} by a loss sale")
        else:
            skipped.append((symbol, f"restricted through {until} by a recent loss sale (a buy would wash it) "
                                    "and no substitute is declared"))
    return out


def _spread(inputs: Inputs, wanted: dict[str, Decimal], spare: Decimal, total: Decimal, current: dict[str, Decimal]) -> None:
    """Add `spare` cash to the buys: first where assets stay below target, then in proportion to the targets."""
    gaps = {t.symbol: t.weight * total - current.get(t.symbol, ZERO) - wanted.get(t.symbol, ZERO)
            for t in inputs.model.targets if t.symbol in inputs.prices}
    gaps = {s: g for s, g in gaps.items() if g > 0}
    room = sum(gaps.values(), ZERO)
    if room > 0:
        share = min(spare, room)
        for s, g in gaps.items():
            wanted[s] = wanted.get(s, ZERO) + share * g / room
        spare -= share
    invested = 1 - inputs.model.cash
    if spare > 0 and invested > 0:
        for t in inputs.model.targets:
            if t.weight > 0 and t.symbol in inputs.prices:
                wanted[t.symbol] = wanted.get(t.symbol, ZERO) + spare * t.weight / invested


def _fund_buys(inputs: Inputs, wanted: dict[str, Decimal], available: Decimal, round_up: bool = False) -> list[Order]:
    """Buys for the wanted values, scaled down to the cash available (costs included); whole shares never overspend.

    `round_up` buys the whole share that reaches the wanted value (a band edge is then crossed, not missed)."""
    wanted = {s: v for s, v in wanted.items() if v > 0 and s in inputs.prices}
    if not wanted or available <= 0:
        return []
    rate = inputs.policy.cost_bps * BPS
    need = sum(wanted.values(), ZERO) * (1 + rate)
    scale = min(Decimal(1), available / need) if need > 0 else Decimal(1)
    qty = {s: shares_for(inputs, v * scale, inputs.price(s)) for s, v in wanted.items()}
    if round_up and inputs.policy.whole_shares and scale == 1:
        qty = {s: q + 1 if q * inputs.price(s) < wanted[s] else q for s, q in qty.items()}

    def spent() -> Decimal:
        return sum((round_cents(q * inputs.price(s)) + cost_of(inputs, q, inputs.price(s)) for s, q in qty.items()), ZERO)

    # per-share costs can still overspend: take shares back from the largest buy until it fits
    while spent() > available and any(qty.values()):
        s = max(qty, key=lambda k: (qty[k] * inputs.price(k), k))
        qty[s] -= 1 if inputs.policy.whole_shares else min(qty[s], FRACTION * 1000)
    if inputs.policy.whole_shares:
        # leftover cash buys one more share of the asset furthest below its wanted value, while it fits
        for _ in range(len(qty) * 4):
            short = {s: wanted[s] - qty[s] * inputs.price(s) for s in qty}
            s = max(short, key=lambda k: (short[k] / inputs.price(k), k))
            if short[s] < inputs.price(s) / 2:
                break
            qty[s] += 1
            if spent() > available:
                qty[s] -= 1
                break
    return [Order(symbol=s, side="buy", quantity=q, price=inputs.price(s)) for s, q in sorted(qty.items()) if q > 0]


def _drop_small(inputs: Inputs, orders: list[Order], skipped: list) -> list[Order]:
    keep = []
    for o in orders:
        if o.value < inputs.policy.min_trade:
            skipped.append((o.symbol, f"{o.side} of {o.value} is below the minimum trade of {inputs.policy.min_trade}"))
        else:
            keep.append(o)
    return keep


def _apply_tax_budget(inputs: Inputs, sells: list[Order], notes: list[str]) -> list[Order]:
    """Keep the estimated tax of the sells within the policy's budget: cheapest tax per dollar first."""
    budget = inputs.policy.tax_budget
    if budget is None or inputs.rates is None:
        return sells
    kept, spent = [], ZERO
    for o in sorted(sells, key=lambda o: (tax_of(inputs, o) / o.value if o.value else ZERO, o.symbol)):
        tax = tax_of(inputs, o)
        if spent + tax <= budget:
            kept.append(o)
            spent += tax
            continue
        room = budget - spent
        if room > 0 and tax > 0:
            qty = shares_for(inputs, o.value * room / tax, o.price)
            smaller = _sell(inputs, o.symbol, qty, o.note) if qty > 0 else None
            if smaller is not None and spent + tax_of(inputs, smaller) <= budget:
                kept.append(smaller)
                spent += tax_of(inputs, smaller)
        notes.append(f"sale of {o.symbol} cut to keep the estimated tax within the budget of {budget}")
    return sorted(kept, key=lambda o: o.symbol)


def _cap_turnover(inputs: Inputs, orders: list[Order], total: Decimal, notes: list[str], deltas) -> list[Order]:
    """Trim the trades that reduce drift least until turnover (traded value / total value) is within the cap."""
    cap = inputs.policy.turnover_cap * total
    traded = sum((o.value for o in orders), ZERO)
    if traded <= cap:
        return orders
    excess = traded - cap
    kept = list(orders)
    for o in sorted(orders, key=lambda o: (min(o.value, abs(deltas.get(o.symbol, o.value))), o.symbol, o.side)):
        if excess <= 0:
            break
        kept.remove(o)
        if o.value <= excess:
            excess -= o.value
            notes.append(f"{o.side} of {o.symbol} dropped to meet the turnover cap")
            continue
        qty = shares_for(inputs, o.value - excess, o.price)
        smaller = (_sell(inputs, o.symbol, qty, o.note) if o.side == "sell" else
                   Order(symbol=o.symbol, side="buy", quantity=qty, price=o.price)) if qty > 0 else None
        if smaller is not None:
            kept.append(smaller)
            excess -= o.value - smaller.value
        notes.append(f"{o.side} of {o.symbol} trimmed to meet the turnover cap")
    return sorted(kept, key=lambda o: (o.side != "sell", o.symbol))


def _finish(inputs: Inputs, orders: list[Order], skipped, notes, total: Decimal, current: dict[str, Decimal]) -> Plan:
    orders = sorted(orders, key=lambda o: (o.side != "sell", o.symbol))
    cash = inputs.cash
    qty = {h.symbol: h.quantity for h in inputs.holdings}
    costs = ZERO
    gains = {"short": ZERO, "long": ZERO}
    for o in orders:
        cost = cost_of(inputs, o.quantity, o.price)
        costs += cost
        if o.side == "sell":
            cash += o.value - cost
            qty[o.symbol] -= o.quantity
            for l in o.lots:
                gains[l.term] += l.gain
        else:
            cash -= o.value + cost
            qty[o.symbol] = qty.get(o.symbol, ZERO) + o.quantity
    after = {s: q * inputs.price(s) for s, q in qty.items() if q > 0}
    rates = inputs.rates
    return Plan(
        orders=tuple(orders), skipped=skipped, costs=costs,
        tax_short=round_cents(gains["short"] * rates[0]) if rates else None,
        tax_long=round_cents(gains["long"] * rates[1]) if rates else None,
        gain_short=gains["short"], gain_long=gains["long"],
        turnover=(sum((o.value for o in orders), ZERO) / total).quantize(WEIGHT) if total > 0 else ZERO,
        cash_before=inputs.cash, cash_after=cash, total_before=total,
        total_after=sum(after.values(), ZERO) + cash,
        weights_before=weights(current, inputs.cash), weights_after=weights(after, cash), notes=notes)
