"""Trade generation: from the projected state at a point to a list of orders that respects the policy.

Everything is Decimal. Sells come first and fund buys; each sell picks its lots by the account's
method (or min-tax) and reports the gain and term of each; whole shares never overspend cash and
never breach the minimum buffer (a full rebalance sells to restore it); trades below the minimum value
are dropped; the turnover cap is met by trimming the smallest-benefit trades first (a trimmed sale
keeps its own lots, the least-taxed first); buys of securities restricted by a recent loss sale go to
a declared substitute or are skipped with a reason. Post-trade weights come from the post-trade
holdings and the total after trading and costs, and sum to 1 exactly with cash.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

import attrs

from domain.lots import Lot, allocate, relief_order, tax_per_share
from domain.rebalancing.drift import WEIGHT, band_of, drift
from domain.rebalancing.model import Inputs
from domain.values import CENT, ZERO, is_long_term, plain_text, round_cents

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


def _quantum(inputs: Inputs) -> Decimal:
    return Decimal(1) if inputs.policy.whole_shares else FRACTION


def shares_for(inputs: Inputs, value: Decimal, price: Decimal) -> Decimal:
    """Shares worth at most `value`: whole shares rounded down, or fractions to a millionth."""
    if value <= 0:
        return ZERO
    q = value / price
    return q.to_integral_value(rounding=ROUND_FLOOR) if inputs.policy.whole_shares else q.quantize(FRACTION, rounding=ROUND_DOWN)


def _shares_reaching(inputs: Inputs, value: Decimal, price: Decimal) -> Decimal:
    """Shares worth at least `value`: whole shares rounded up, or fractions to a millionth."""
    if value <= 0:
        return ZERO
    q = value / price
    return q.to_integral_value(rounding=ROUND_CEILING) if inputs.policy.whole_shares else q.quantize(FRACTION, rounding=ROUND_CEILING)


def raised_by(inputs: Inputs, quantity: Decimal, price: Decimal) -> Decimal:
    """The cash a sale of `quantity` at `price` brings in, after its costs."""
    return round_cents(quantity * price) - cost_of(inputs, quantity, price)


def _net_per_share(inputs: Inputs, price: Decimal) -> Decimal:
    """What one share sold brings in after costs, before rounding to the cent (zero or less: selling raises nothing)."""
    return price * (1 - inputs.policy.cost_bps * BPS) - inputs.policy.cost_per_share


def shares_raising(inputs: Inputs, amount: Decimal, price: Decimal, limit: Decimal) -> Decimal:
    """The fewest shares (whole, or to a millionth) whose sale raises at least `amount` after costs, at most `limit`.

    The value and the cost are each rounded to the cent, so the exact count can fall a cent short; one cent more
    in the division always covers both roundings, so this never searches share by share."""
    net = _net_per_share(inputs, price)
    if amount <= 0 or net <= 0 or limit <= 0:
        return ZERO
    quantum = _quantum(inputs)
    q = min((amount / net).quantize(quantum, rounding=ROUND_CEILING), limit)
    if q < limit and raised_by(inputs, q, price) < amount:
        q = min(((amount + CENT) / net).quantize(quantum, rounding=ROUND_CEILING), limit)
    return q


def weights(values: dict[str, Decimal], cash: Decimal) -> dict[str, Decimal]:
    """Weights rounded to a millionth; cash takes the remainder, so they sum to 1 exactly."""
    total = sum(values.values(), ZERO) + cash
    if total <= 0:
        return {**{s: ZERO for s in values}, "CASH": ZERO}
    out = {s: (v / total).quantize(WEIGHT) for s, v in sorted(values.items())}
    out["CASH"] = Decimal(1) - sum(out.values(), ZERO)
    return out


def desired_values(inputs: Inputs) -> dict[str, Decimal]:
    """The value each asset should end at: its target, its band edge, or halfway, as the policy says.

    An asset inside its band (band-edge and midpoint) keeps its exact current value: its weight is rounded to a
    millionth for display, and that rounding must not become an order."""
    d = drift(inputs)
    targets = {t.symbol: t for t in inputs.model.targets}
    mode = inputs.policy.rebalance_to
    value = {row.symbol: row.value for row in d.rows}
    out = {}
    for row in d.rows:
        if row.stands_in_for is not None:
            continue  # its model symbol's row gives it its goal
        t = targets.get(row.symbol)
        if mode == "target" or t is None:
            goal = (t.weight if t else ZERO) * d.total
        elif row.in_band:
            goal = row.value + sum((value[s] for s in row.stand_ins), ZERO)
        else:
            edge = band_of(t).nearest_edge(row.weight)
            goal = (edge if mode == "band-edge" else (edge + t.weight) / 2) * d.total
        # the stand-ins are kept (selling one to buy it back would gain nothing) and the symbol makes up the rest: what
        # the symbol lacks is bought (and goes to a stand-in, the symbol being restricted); a surplus is sold from the
        # symbol first, then from the stand-ins in order
        for s in row.stand_ins:
            out[s] = min(value[s], max(ZERO, goal))
            goal -= out[s]
        out[row.symbol] = goal
    return out


def _lots(inputs: Inputs, symbol: str) -> list[Lot]:
    h = inputs.held().get(symbol)
    if h is None:
        return []
    return [Lot(lot_id=l.lot_id, symbol=symbol, quantity=l.quantity, basis=l.basis, acquired=l.acquired,
                order=i, hp_start=l.hp_start) for i, l in enumerate(h.lots)]


def _term(inputs: Inputs, lot: Lot) -> str:
    return "long" if is_long_term(lot.hp_start, inputs.as_of) else "short"


def _lot_sale(lot: Lot, take: Decimal, price: Decimal, term: str) -> LotSale:
    """`take` shares of the lot: the lot's whole basis, or its share rounded to the cent."""
    basis = lot.basis if take == lot.quantity else round_cents(lot.basis * take / lot.quantity)
    return LotSale(lot_id=lot.lot_id, quantity=take, basis=basis, proceeds=round_cents(take * price), term=term)


def sell_lots(inputs: Inputs, symbol: str, quantity: Decimal, *, avoid_short_term_gains: bool) -> tuple[Decimal, tuple[LotSale, ...]]:
    """Which lots a sale of `quantity` relieves (by the account's method), with estimated gain and term.

    With `avoid_short_term_gains`, lots that would realize a short-term gain are not sold (the sale shrinks)."""
    price = inputs.price(symbol)
    lots = relief_order(_lots(inputs, symbol), inputs.lot_method, price, inputs.as_of, inputs.rates)
    out, remaining = [], quantity
    for lot in lots:
        if remaining <= 0:
            break
        term = _term(inputs, lot)
        if avoid_short_term_gains and term == "short" and price > lot.unit_basis:
            continue
        take = min(lot.quantity, remaining)
        out.append(_lot_sale(lot, take, price, term))
        remaining -= take
    return quantity - remaining, tuple(out)


def _sell(inputs: Inputs, symbol: str, quantity: Decimal, note: str = "") -> Order | None:
    """A sale of up to `quantity` (lots by the account's method); none when it sells nothing, or when its costs
    would exceed its value (a broker would refuse it, and so would the books)."""
    sold, lots = sell_lots(inputs, symbol, quantity, avoid_short_term_gains=inputs.policy.avoid_short_term)
    if sold <= 0 or cost_of(inputs, sold, inputs.price(symbol)) > round_cents(sold * inputs.price(symbol)):
        return None
    return Order(symbol=symbol, side="sell", quantity=sold, price=inputs.price(symbol), lots=lots, note=note)


def tax_of(inputs: Inputs, order: Order) -> Decimal:
    if inputs.rates is None or order.side != "sell":
        return ZERO
    return sum((l.gain * (inputs.rates[1] if l.term == "long" else inputs.rates[0]) for l in order.lots), ZERO)


def _cash_ceiling(inputs: Inputs, total: Decimal) -> Decimal:
    """The most cash a plan should leave: the policy's maximum buffer, else the model's cash (or the minimum buffer)."""
    policy = inputs.policy
    return total * (policy.max_cash if policy.max_cash is not None else max(inputs.model.cash, policy.min_cash))


def _refund_buys(inputs: Inputs, sells: list[Order], buys: list[Order], floor: Decimal, skipped: list) -> list[Order]:
    """The buys scaled to what the sales leave above the floor, when they no longer fit (none topped up), and those then
    under the minimum trade dropped."""
    if _cash_after(inputs, sells + buys) >= floor:
        return buys
    return _drop_small(inputs, _fund_buys(inputs, {o.symbol: o.quantity * o.price for o in buys},
                                          _cash_after(inputs, sells) - floor, top_up=False), skipped)


def _cash_after(inputs: Inputs, orders: list[Order]) -> Decimal:
    cash = inputs.cash
    for o in orders:
        cash += (o.value if o.side == "sell" else -o.value) - cost_of(inputs, o.quantity, o.price)
    return cash


def plan(inputs: Inputs, mode: str = "full") -> Plan:
    """A trade list for the mode: full, contribution (buy only), withdrawal (sell only), harvest."""
    inputs = inputs.as_planned()
    total = inputs.total_value()
    policy = inputs.policy
    notes: list[str] = []
    skipped: list[tuple[str, str]] = []
    if policy.max_cash is not None and inputs.model.cash > policy.max_cash and mode in ("full", "harvest"):
        # a policy and a model that disagree: the plan follows the model, and says so (found by review: cash ended far
        # above the maximum without a word)
        notes.append(f"the model's cash target ({inputs.model.cash:.2%}) is above the policy's maximum cash "
                     f"({policy.max_cash:.2%}): the plan follows the model's target")
    held = inputs.held()
    current = {s: h.quantity * inputs.price(s) for s, h in held.items()}
    goal = desired_values(inputs)
    deltas = {s: g - current.get(s, ZERO) for s, g in goal.items()}
    floor = round_cents(policy.min_cash * total)

    sells: list[Order] = []
    if mode == "withdrawal":
        sells = _withdrawal_sells(inputs, total, notes)
    elif mode == "full":
        in_model = {t.symbol for t in inputs.model.targets} | set(inputs.stand_ins())
        for s, delta in sorted(deltas.items()):
            if delta < 0 and s in held:
                whole = goal[s] == 0
                # to the target: the shares worth at most the excess; to a band edge or halfway: the shares that reach
                # it (found by review: 42.67 shares to the edge sold 42, leaving the asset outside its band)
                need = shares_for(inputs, -delta, inputs.price(s)) if policy.rebalance_to == "target" else \
                    _shares_reaching(inputs, -delta, inputs.price(s))
                qty = held[s].quantity if whole else min(held[s].quantity, need)
                order = _sell(inputs, s, qty, "not in the model" if whole and s not in in_model else "")
                if order is not None:
                    sells.append(order)
                if policy.avoid_short_term:  # the reviewer must see a tax choice, not a planner fault
                    kept = qty - sell_lots(inputs, s, qty, avoid_short_term_gains=True)[0]
                    if kept > 0:
                        skipped.append((s, f"{plain_text(kept)} of the {plain_text(qty)} shares to sell not sold: "
                                           f"their lots are at a short-term gain (the policy avoids short-term gains)"))
        sells = _restore_buffer(inputs, sells, floor, total, notes)
    elif mode == "harvest":
        sells = _harvest_sells(inputs, notes, skipped)
    sells = _budget_and_minimum(inputs, sells, notes, skipped)

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
                ceiling = _cash_ceiling(inputs, total)
                idle = _cash_after(inputs, sells) - sum(wanted.values(), ZERO) * (1 + policy.cost_bps * BPS)
                if idle > ceiling:
                    _spread(inputs, wanted, idle - total * max(inputs.model.cash, policy.min_cash), total, current)
            wanted = _redirect_restricted(_own_losses(inputs, sells), wanted, skipped, notes)
            # never buy back what this plan sells (a sale to restore the buffer would otherwise churn)
            selling = {o.symbol for o in sells}
            wanted = {s: v for s, v in wanted.items() if s not in selling}
        buys = _fund_buys(inputs, wanted, _cash_after(inputs, sells) - floor, round_up=policy.rebalance_to != "target")
        funded = buys
        buys = _drop_small(inputs, buys, skipped)
        if mode == "full" and len(buys) < len(funded):  # a buy under the minimum trade leaves its sale's cash idle:
            # the sales shrink back to the cash ceiling, as after the turnover cap's cuts (cash stays within its limits)
            sells = _budget_and_minimum(inputs, _idle_sales(inputs, sells, buys, total, floor, notes,
                                                            why="the buys it funded are under the minimum trade"),
                                        notes, skipped)
    orders = sells + buys
    if policy.turnover_cap is not None:
        uncapped = orders
        orders = _cap_turnover(inputs, orders, total, floor, notes, deltas)
        if orders is not uncapped:  # (a cap that trims nothing changes nothing: found by review)
            # trimming can undo what the tax budget and the minimum trade ensured, and shrink what funds the buys
            kept_sells = _budget_and_minimum(inputs, [o for o in orders if o.side == "sell"], notes, skipped)
            kept_buys = _drop_small(inputs, _refund_buys(inputs, kept_sells, [o for o in orders if o.side == "buy"],
                                                         floor, skipped), skipped)
            if mode == "full":  # (a withdrawal's or a harvest's sales are for the cash, or the loss, not for the buys)
                cut = {o.symbol: o.value for o in uncapped if o.side == "buy"}
                kept_sells = _idle_sales(inputs, kept_sells, kept_buys, total, floor, notes, under=False)
                kept_buys = _spend_idle(inputs, kept_sells, kept_buys, total, cut)
                kept_sells = _budget_and_minimum(inputs, _idle_sales(inputs, kept_sells, kept_buys, total, floor, notes),
                                                 notes, skipped)  # (a loss sale shrunk offsets less gain)
                kept_buys = _refund_buys(inputs, kept_sells, kept_buys, floor, skipped)
        orders = kept_sells + kept_buys if orders is not uncapped else orders
    notes[:], skipped[:] = list(dict.fromkeys(notes)), list(dict.fromkeys(skipped))  # (each said once)
    if mode == "withdrawal" and inputs.amount and not any(n.startswith("holdings cannot raise") for n in notes):
        short = inputs.amount - _cash_after(inputs, orders)
        if short > 0:  # the policy cut what was sold for it: the approver must see the withdrawal cannot be paid
            capped = any(n.endswith("to meet the turnover cap") for n in notes)
            why = ("the turnover cap limits the sales; raise the cap or withdraw less" if capped else
                   "sales the policy drops (below the minimum trade, or costing more than they raise) leave it short; "
                   "change the policy or withdraw less")
            notes.append(f"the withdrawal of {inputs.amount} is {short.quantize(CENT)} short: {why}")
    return _finish(inputs, orders, tuple(skipped), tuple(notes), total, current)


def _washed_shares(inputs: Inputs, orders: list[Order]) -> dict[str, tuple[Decimal, list[str]]]:
    """Of the lots the orders sell at a loss, how many shares a wash sale would disallow now, and why: the shares of
    purchases (not themselves sold by the orders) that could replace them, used by the loss lots in the order sold as
    the fold matches them (a purchase of unknown size, a reinvestment to come, covers the whole lot). In a taxable
    account only."""
    if inputs.tax_status != "taxable" or not inputs.wash_risks:
        return {}
    selling = {l.lot_id for o in orders if o.side == "sell" for l in o.lots}
    used: dict[str, Decimal] = {}
    out = {}
    for o in orders:
        for l in o.lots if o.side == "sell" else ():
            if l.gain >= 0:
                continue
            washed, why = ZERO, []
            for reason, own, shares in inputs.wash_risks.get(l.lot_id, ()):
                if own is not None and own in selling:
                    continue
                room = l.quantity - washed
                take = room if shares is None else min(room, shares - used.get(reason, ZERO))
                if take > 0:
                    washed += take
                    used[reason] = used.get(reason, ZERO) + take
                    why.append(reason)
            if washed > 0:
                out[l.lot_id] = (washed, why)
    return out


def _washed_losses(inputs: Inputs, orders: list[Order], washed: dict[str, tuple[Decimal, list[str]]]) -> list[str]:
    """Notes for the reviewer: sales of lots at a loss that a wash sale would disallow, in whole or in part (a purchase
    of the group in the last 30 days, or one an open proposal of another account makes). (Harvesting leaves such lots;
    a rebalancing sale is made for the drift, and the reviewer weighs the lost deduction.)"""
    out = []
    for o in orders:
        for l in o.lots if o.side == "sell" else ():
            if l.lot_id in washed:
                shares, why = washed[l.lot_id]
                part = "" if shares >= l.quantity else f" for {plain_text(shares)} of its {plain_text(l.quantity)} shares"
                out.append(f"the sale of lot {l.lot_id} of {o.symbol} at a loss of {-l.gain} would be a wash sale{part}: "
                           f"{'; '.join(why)}")
    return out


def _restore_buffer(inputs: Inputs, sells: list[Order], floor: Decimal, total: Decimal, notes: list[str]) -> list[Order]:
    """Sell more when the sales leave cash below the policy's minimum buffer (a model whose cash target is below it,
    every asset inside its band, or a sale shrunk by avoiding short-term gains).

    The model's invested weights are scaled to leave the buffer in cash. The shortfall is sold from the assets above
    their scaled value, the largest excess first and none below its scaled value; then, when lot rules or costs
    leave some short, from the largest holdings. One asset at a time, so a small shortfall is one small sale."""
    held = inputs.held()
    targets = {t.symbol: t.weight for t in inputs.model.targets if t.symbol in held}
    invested = 1 - inputs.model.cash
    scale = (1 - max(inputs.policy.min_cash, inputs.model.cash)) / invested if invested > 0 else ZERO
    by_symbol = {o.symbol: o for o in sells}
    for beyond_targets in (False, True):
        sold = {s: o.quantity for s, o in by_symbol.items()}
        value = {s: (held[s].quantity - sold.get(s, ZERO)) * inputs.price(s) for s in targets}
        room = value if beyond_targets else {s: v - targets[s] * scale * total for s, v in value.items()}
        for s in sorted((s for s, r in room.items() if r > 0), key=lambda s: (-room[s], s)):
            short = floor - _cash_after(inputs, list(by_symbol.values()))
            if short <= 0:
                break
            price, before = inputs.price(s), sold.get(s, ZERO)
            qty = shares_raising(inputs, raised_by(inputs, before, price) + min(short, room[s]), price, held[s].quantity)
            if qty <= before:
                continue
            old = by_symbol.get(s)
            order = _sell(inputs, s, qty, old.note if old else "restore the minimum cash buffer")
            if order is not None:
                by_symbol[s] = order
    sells = sorted(by_symbol.values(), key=lambda o: o.symbol)
    short = floor - _cash_after(inputs, sells)
    if short > 0:
        notes.append(f"sales cannot restore the minimum cash buffer of {floor}: {short} short")
    return sells


def _withdrawal_need(inputs: Inputs, total: Decimal, notes: list[str]) -> Decimal:
    """The cash a withdrawal must raise: the amount and the buffer on what is left (none when nothing is), less the
    cash on hand."""
    amount = inputs.amount or ZERO
    need = amount + round_cents(inputs.policy.min_cash * max(total - amount, ZERO)) - inputs.cash
    if need <= 0:
        notes.append(f"cash on hand covers the withdrawal of {amount}")
    return need


def _withdrawal_toward_model(inputs: Inputs, total: Decimal, notes: list[str]) -> list[Order]:
    """Raise the stated amount (and keep the buffer) in an account whose sales are not taxed (tax-deferred,
    tax-exempt): the sales that leave the holdings nearest the model.

    After the withdrawal the account is worth `total - amount`; each asset's goal is its target weight of that (an
    asset outside the model: nothing). The dollars sold of each asset are `_water_fill`'s: the most overweight are
    cut first, down to a common excess over their goals. Then, in turn until the sales raise the need:
    - a sale below the minimum trade (which the policy would drop, leaving the withdrawal short) gives its asset up
      to the others, when they can raise the need without it;
    - what the costs take is sold again (the dollars are raised after costs; an asset sold out cannot make up its
      own costs, the others do);
    and last, with whole shares, each asset's sale rounded up to a share is trimmed back, the least overweight
    after its sale first, while the others still raise the need (four sales of one share for one share's worth
    would be four times the withdrawal)."""
    need = _withdrawal_need(inputs, total, notes)
    amount = inputs.amount or ZERO
    if need <= 0:
        return []
    weights = {t.symbol: t.weight for t in inputs.model.targets}
    after = max(total - amount, ZERO)
    value, excess = {}, {}
    for h in inputs.holdings:
        price = inputs.price(h.symbol)
        if _net_per_share(inputs, price) <= 0:
            continue  # a sale raises nothing: not sold
        value[h.symbol] = h.quantity * price
        excess[h.symbol] = value[h.symbol] - weights.get(h.symbol, ZERO) * after
    held = inputs.held()

    def sales(symbols: set[str], dollars_needed: Decimal) -> list[Order]:
        dollars = _water_fill({s: excess[s] for s in symbols}, {s: value[s] for s in symbols}, dollars_needed)
        out = []
        for s in sorted(dollars):
            if dollars[s] > 0:
                qty = shares_raising(inputs, dollars[s].quantize(CENT, rounding=ROUND_CEILING), inputs.price(s),
                                     held[s].quantity)
                out.append(_withdrawal_sale(inputs, s, qty, amount))
        return [o for o in out if o is not None]

    def raised(orders: list[Order]) -> Decimal:
        return sum((raised_by(inputs, o.quantity, o.price) for o in orders), ZERO)

    symbols, gross, orders = set(value), need, []
    for _ in range(4 * len(value) + 20):  # each round drops an asset or sells what the costs took (a few rounds)
        orders = sales(symbols, gross)
        small = [o for o in orders if o.value < inputs.policy.min_trade]
        if small and len(orders) > 1:
            drop = min(small, key=lambda o: (o.value, o.symbol)).symbol
            rest = symbols - {drop}
            if raised([_withdrawal_sale(inputs, s, held[s].quantity, amount) for s in rest]) >= need:
                symbols = rest
                continue
        short = need - raised(orders)
        if short <= 0 or all(o.quantity == held[o.symbol].quantity for o in orders) and len(orders) == len(symbols):
            break
        gross += short
    orders = _trim_oversold(inputs, orders, need, raised(orders) - need, {s: excess[s] - value[s] for s in value})
    left = need - raised(orders)
    if left > 0:
        notes.append(f"holdings cannot raise {amount}: {left.quantize(CENT)} short")
    notes.append(f"sold toward the model: no sale of a {inputs.tax_status} account is taxed")
    return orders


def _water_fill(excess: dict[str, Decimal], value: dict[str, Decimal], need: Decimal) -> dict[str, Decimal]:
    """Dollars to sell of each asset, d_s = min(max(e_s - level, 0), value_s) at the one level where they add up to
    `need` (every asset's whole value when they cannot): the least squared distance from the goals (e_s is the
    asset's value less its goal) for the dollars sold. Their sum grows as the level falls, linearly between the
    points where an asset starts to be sold (its excess) or is sold out (its excess less its value), so one sweep
    of those points, sorted, finds the level exactly."""
    points = sorted([(excess[s], 1) for s in value] + [(excess[s] - value[s], -1) for s in value],
                    key=lambda p: p[0], reverse=True)
    level, sold, selling = points[0][0] if points else ZERO, ZERO, 0
    for point, step in points:
        reach = sold + selling * (level - point)
        if selling and reach >= need:
            level = level - (need - sold) / selling
            return {s: min(max(excess[s] - level, ZERO), value[s]) for s in value}
        sold, level, selling = reach, point, selling + step
    return dict(value)


def _withdrawal_sale(inputs: Inputs, symbol: str, quantity: Decimal, amount: Decimal) -> Order | None:
    if quantity <= 0:
        return None
    sold, lots = sell_lots(inputs, symbol, quantity, avoid_short_term_gains=False)  # (terms do not matter here)
    return Order(symbol=symbol, side="sell", quantity=sold, price=inputs.price(symbol), lots=lots,
                 note=f"withdrawal of {amount}") if sold > 0 else None


def _trim_oversold(inputs: Inputs, orders: list[Order], need: Decimal, surplus: Decimal,
                   floor: dict[str, Decimal]) -> list[Order]:
    """Sales cut back by what they raise beyond the need (each asset's sale was rounded up to its share or its
    quantum): the asset least above its goal after its sale first, each to the fewest shares that, with the
    others, still raise the need; a sale trimmed below the minimum trade is kept whole (or dropped, if the others
    raise the need without it). `floor` is each asset's excess when sold out, so the excess after a sale of q
    shares is floor + (held - q) x price, computed here from what is held."""
    held = inputs.held()
    out = {o.symbol: o for o in orders}

    def above(o: Order) -> Decimal:
        return floor[o.symbol] + (held[o.symbol].quantity - o.quantity) * o.price

    for o in sorted(orders, key=lambda o: (above(o), o.symbol)):
        if surplus <= 0:
            break
        brings = raised_by(inputs, o.quantity, o.price)
        qty = shares_raising(inputs, brings - surplus, o.price, o.quantity)
        if qty >= o.quantity:
            continue
        trimmed = _withdrawal_sale(inputs, o.symbol, qty, inputs.amount or ZERO)
        if trimmed is not None and trimmed.value < inputs.policy.min_trade:
            continue
        surplus -= brings - (raised_by(inputs, trimmed.quantity, trimmed.price) if trimmed else ZERO)
        if trimmed is None:
            del out[o.symbol]
        else:
            out[o.symbol] = trimmed
    return sorted(out.values(), key=lambda o: o.symbol)


def _withdrawal_sells(inputs: Inputs, total: Decimal, notes: list[str]) -> list[Order]:
    """Raise the stated amount (and keep the buffer) with the least tax: lots ordered by tax per dollar.

    With `avoid_short_term`, lots at a short-term gain come last: they are sold only when the others cannot raise
    the amount. A security whose price does not cover the per-share cost raises nothing and is not sold."""
    if inputs.tax_status != "taxable":
        return _withdrawal_toward_model(inputs, total, notes)
    amount = inputs.amount or ZERO
    need = _withdrawal_need(inputs, total, notes)
    if need <= 0:
        return []
    avoid = inputs.policy.avoid_short_term
    candidates = []
    for h in inputs.holdings:
        price = inputs.price(h.symbol)
        if _net_per_share(inputs, price) <= 0:
            continue
        for lot in _lots(inputs, h.symbol):
            term = _term(inputs, lot)
            rate = (inputs.rates[1] if term == "long" else inputs.rates[0]) if inputs.rates else Decimal(1)
            gain_per_dollar = (price - lot.unit_basis) / price
            late = avoid and term == "short" and gain_per_dollar > 0
            candidates.append((late, rate * gain_per_dollar, gain_per_dollar, lot.acquired, h.symbol, lot))
    candidates.sort(key=lambda c: c[:5])
    taking: dict[str, list[tuple[Lot, Decimal]]] = {}
    sold: dict[str, Decimal] = {}
    raised: dict[str, Decimal] = {}
    short_gains = False
    for late, *_, symbol, lot in candidates:
        left = need - sum(raised.values(), ZERO)
        if left <= 0:
            break
        price, before = inputs.price(symbol), sold.get(symbol, ZERO)
        # costs and cents are per order, so size the symbol's whole sale, not this lot's part alone
        qty = shares_raising(inputs, raised.get(symbol, ZERO) + left, price, before + lot.quantity) - before
        if qty <= 0:
            continue
        taking.setdefault(symbol, []).append((lot, qty))
        sold[symbol] = before + qty
        raised[symbol] = raised_by(inputs, sold[symbol], price)
        short_gains = short_gains or late
    left = need - sum(raised.values(), ZERO)
    if left > 0:
        notes.append(f"holdings cannot raise {amount}: {left.quantize(CENT)} short")
    elif short_gains:
        notes.append(f"lots at a short-term gain sold: the other lots fall short of {amount}")
    orders = []
    for symbol, parts in sorted(taking.items()):
        price = inputs.price(symbol)
        lots = tuple(_lot_sale(lot, qty, price, _term(inputs, lot)) for lot, qty in parts)
        orders.append(Order(symbol=symbol, side="sell", quantity=sold[symbol], price=price, lots=lots,
                            note=f"withdrawal of {amount}"))
    return orders


def _harvest_sells(inputs: Inputs, notes: list[str], skipped: list) -> list[Order]:
    """Sell every lot whose unrealized loss reaches the policy's threshold (lot by lot, specific identification),
    except a lot whose loss a wash sale would disallow now (found by review: a purchase in the owner's IRA ten days
    before was ignored, the saving overstated and the loss lost for good): skipped with the reason. A purchase that
    is itself a lot this harvest sells replaces nothing (found by review: two June and November lots at a loss, the
    June one was skipped for the November one, sold in the same harvest)."""
    candidates: dict[str, tuple[Lot, Decimal]] = {}
    costly = False
    for h in inputs.holdings:
        price = inputs.price(h.symbol)
        for lot in _lots(inputs, h.symbol):
            loss = lot.basis - round_cents(lot.quantity * price)
            if loss > 0 and loss >= inputs.policy.harvest_min_loss:
                if raised_by(inputs, lot.quantity, price) <= 0:  # its costs would exceed its value (found by review)
                    skipped.append((h.symbol, f"lot {lot.lot_id} not harvested: selling it would cost more than it "
                                              f"raises"))
                    costly = True
                    continue
                candidates[lot.lot_id] = (lot, loss)
    blocked: dict[str, str] = {}
    while True:  # a lot blocked leaves the harvest, which may block another: until nothing changes
        selling = set(candidates) - set(blocked)
        more = {i: next(why for why, own, _ in inputs.wash_risks[i] if own is None or own not in selling)
                for i in selling if i in inputs.wash_risks
                and any(own is None or own not in selling for _, own, _ in inputs.wash_risks[i])}
        if not more:
            break
        blocked.update(more)
    orders = []
    for h in inputs.holdings:
        price = inputs.price(h.symbol)
        lots = []
        for lot in _lots(inputs, h.symbol):
            if lot.lot_id not in candidates:
                continue
            if lot.lot_id in blocked:
                skipped.append((h.symbol, f"lot {lot.lot_id} not harvested: {blocked[lot.lot_id]}, so its loss of "
                                          f"{candidates[lot.lot_id][1]} would be a wash sale now"))
                continue
            lots.append(_lot_sale(lot, lot.quantity, price, _term(inputs, lot)))
        if lots:
            orders.append(Order(symbol=h.symbol, side="sell", quantity=sum((l.quantity for l in lots), ZERO), price=price,
                                lots=tuple(lots), note="harvest a loss"))
    if not orders:
        notes.append("no lot harvested: each lot with a loss worth harvesting would be a wash sale now (see skipped)"
                     if blocked.keys() & candidates.keys() else
                     "no lot harvested: each lot with a loss worth harvesting costs more to sell than it raises"
                     if costly else "no lot has a loss worth harvesting")
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


def _own_losses(inputs: Inputs, sells: list[Order]) -> Inputs:
    """The inputs with this plan's own loss sales restricting their groups, as a recorded loss sale would (found by
    review: a plan sold VOO at a loss and bought IVV, declared substantially identical, washing its own loss)."""
    if inputs.tax_status != "taxable" or not inputs.identical:
        return inputs
    restricted, restricted_by = dict(inputs.restricted), dict(inputs.restricted_by)
    until = inputs.as_of + dt.timedelta(days=30)
    for o in sells:
        loss = -sum((l.gain for l in o.lots if l.gain < 0), ZERO)
        group = inputs.identical.get(o.symbol)
        if loss <= 0 or group is None:
            continue
        for s, g in inputs.identical.items():
            if g == group and s != o.symbol and not (s in restricted and restricted[s] >= inputs.as_of):
                restricted[s] = until
                restricted_by[s] = f"this proposal's sale of {o.symbol} at an estimated loss of {loss}"
    return attrs.evolve(inputs, restricted=restricted, restricted_by=restricted_by)


def _redirect_restricted(inputs: Inputs, wanted: dict[str, Decimal], skipped: list, notes: list) -> dict[str, Decimal]:
    """A buy that would wash a recent loss sale goes to a declared substitute, or is skipped with the reason."""
    out: dict[str, Decimal] = {}
    for symbol, value in sorted(wanted.items()):
        if not _restricted(inputs, symbol):
            out[symbol] = out.get(symbol, ZERO) + value
            continue
        until = inputs.restricted[symbol]
        subs = [s for s in inputs.substitutes.get(symbol, ()) if s in inputs.prices and not _restricted(inputs, s)]
        standing = [s for s, of in sorted(inputs.stand_ins().items()) if of == symbol]
        subs = standing + [s for s in subs if s not in standing]  # more of what stands in for it already
        if subs:
            out[subs[0]] = out.get(subs[0], ZERO) + value
            notes.append(f"buy of {symbol} redirected to {subs[0]}: {symbol} is restricted through {until} by "
                         f"{inputs.restricted_by.get(symbol, 'a loss sale')}")
        else:
            skipped.append((symbol, f"restricted through {until} by {inputs.restricted_by.get(symbol, 'a recent loss sale')} "
                                    "(a buy would wash it) and no substitute is declared"))
    return out


def _spread(inputs: Inputs, wanted: dict[str, Decimal], spare: Decimal, total: Decimal, current: dict[str, Decimal]) -> None:
    """Add `spare` cash to the buys: first where assets stay below target, then in proportion to the targets. (A
    stand-in's value counts in its model symbol's.)"""
    current = dict(current)
    for s, of in inputs.stand_ins().items():
        current[of] = current.get(of, ZERO) + current.get(s, ZERO)
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


def _fund_buys(inputs: Inputs, wanted: dict[str, Decimal], available: Decimal, round_up: bool = False,
               top_up: bool = True) -> list[Order]:
    """Buys for the wanted values, scaled down to the cash available (costs included); whole shares never overspend.

    `round_up` buys the whole share that reaches the wanted value (a band edge is then crossed, not missed);
    `top_up` lets leftover cash buy whole shares toward the wanted values (never past them by more than half a
    share). Without either, no buy exceeds its wanted value."""
    wanted = {s: v for s, v in wanted.items() if v > 0 and s in inputs.prices}
    if not wanted or available <= 0:
        return []
    rate, per_share = inputs.policy.cost_bps * BPS, inputs.policy.cost_per_share
    # a dollar of a buy costs 1 + the bps rate + the per-share cost over the price
    need = sum((v * (1 + rate + per_share / inputs.price(s)) for s, v in wanted.items()), ZERO)
    scale = min(Decimal(1), available / need)
    qty = {s: shares_for(inputs, v * scale, inputs.price(s)) for s, v in wanted.items()}
    if round_up and inputs.policy.whole_shares and scale == 1:
        qty = {s: q + 1 if q * inputs.price(s) < wanted[s] else q for s, q in qty.items()}

    def line(s: str) -> Decimal:  # what the buy of s spends, in cents: exact, so a running total stays exact
        return round_cents(qty[s] * inputs.price(s)) + cost_of(inputs, qty[s], inputs.price(s))

    lines = {s: line(s) for s in qty}
    spent = sum(lines.values(), ZERO)

    def change(s: str, by: Decimal) -> None:
        nonlocal spent
        qty[s] += by
        new = line(s)
        spent += new - lines[s]
        lines[s] = new

    # cent rounding (or a rounded-up share) can still overspend: take shares back from the largest buy until it fits.
    # Fractions are taken back by the overspend (and two cents for the roundings) in one step, not a quantum at a time.
    while (over := spent - available) > 0 and any(qty.values()):
        s = max(qty, key=lambda k: (qty[k] * inputs.price(k), k))
        if inputs.policy.whole_shares:
            change(s, Decimal(-1))
        else:
            unit = inputs.price(s) * (1 + rate) + per_share
            change(s, -min(qty[s], ((over + 2 * CENT) / unit).quantize(FRACTION, rounding=ROUND_CEILING)))
    if inputs.policy.whole_shares and top_up:
        # leftover cash buys one more share of the asset furthest below its wanted value, while it fits
        for _ in range(len(qty) * 4):
            short = {s: wanted[s] - qty[s] * inputs.price(s) for s in qty}
            s = max(short, key=lambda k: (short[k] / inputs.price(k), k))
            if short[s] < inputs.price(s) / 2:
                break
            change(s, Decimal(1))
            if spent > available:
                change(s, Decimal(-1))
                break
    return [Order(symbol=s, side="buy", quantity=q, price=inputs.price(s)) for s, q in sorted(qty.items()) if q > 0]


def _drop_small(inputs: Inputs, orders: list[Order], skipped: list) -> list[Order]:
    """Orders below the minimum trade are skipped with the reason; one worth nothing (0.00) is no order at all."""
    keep = []
    for o in orders:
        if o.value <= 0:
            continue
        if o.value < inputs.policy.min_trade:
            skipped.append((o.symbol, f"{o.side} of {o.value} is below the minimum trade of {inputs.policy.min_trade}"))
        else:
            keep.append(o)
    return keep


def _tax_per_share(inputs: Inputs, lot: Lot, price: Decimal) -> Decimal:
    return ZERO if inputs.rates is None else tax_per_share(lot, price, inputs.as_of, inputs.rates)


def _shrink_sale(inputs: Inputs, order: Order, quantity: Decimal) -> Order | None:
    """The sale cut to `quantity` shares of its own lots (never re-picked by the account's method): with the owner's
    rates, the least-taxed lots are kept first; without, the lots in the order the sale lists them."""
    if quantity <= 0:
        return None
    if quantity >= order.quantity:
        return order
    lots = {l.lot_id: l for l in _lots(inputs, order.symbol)}
    ranked = sorted(range(len(order.lots)),
                    key=lambda i: (_tax_per_share(inputs, lots[order.lots[i].lot_id], order.price), i))
    take, left = {}, quantity
    for i in ranked:
        if left <= 0:
            break
        take[i] = min(order.lots[i].quantity, left)
        left -= take[i]
    parts = tuple(_lot_sale(lots[order.lots[i].lot_id], q, order.price, order.lots[i].term) for i, q in sorted(take.items()))
    return Order(symbol=order.symbol, side="sell", quantity=quantity, price=order.price, lots=parts, note=order.note)


def _sale_within(inputs: Inputs, order: Order, room: Decimal) -> Order | None:
    """The largest part of a sale whose estimated tax is at most `room` (>= 0): least-taxed lots first, in whole
    shares when the policy says so (None: nothing of it fits)."""
    lots = {l.lot_id: l for l in _lots(inputs, order.symbol)}
    rate = {"long": inputs.rates[1], "short": inputs.rates[0]}
    fits, spent = ZERO, ZERO
    for part in sorted(order.lots, key=lambda l: _tax_per_share(inputs, lots[l.lot_id], order.price)):
        tax = part.gain * rate[part.term]
        if spent + tax <= room:
            fits, spent = fits + part.quantity, spent + tax
            continue
        # only lots that cost tax are left: as many shares of this one as the room pays for
        per_share = _tax_per_share(inputs, lots[part.lot_id], order.price)
        if per_share <= 0:  # a gain of a cent's rounding only
            tries = [fits]
        else:
            tries = [fits + min(part.quantity, max(ZERO, (room - spent - margin) / per_share)) for margin in (ZERO, CENT)]
            tries.append(fits)
        break
    else:
        return order
    # cut to the share quantum, then check the estimate with its cent roundings; nothing at all always fits
    for quantity in [*tries, ZERO]:
        smaller = _shrink_sale(inputs, order, quantity.quantize(_quantum(inputs), rounding=ROUND_FLOOR))
        if smaller is None or tax_of(inputs, smaller) <= room:
            return smaller
    return None


def _budget_and_minimum(inputs: Inputs, sells: list[Order], notes: list[str], skipped: list) -> list[Order]:
    """The tax budget, then the minimum trade, until neither changes the sales: a loss sale the budget counted on and the
    minimum then dropped would leave the gains it offset over budget (found by review: 1332.00 of tax on a budget of 0)."""
    for _ in range(len(sells) + 1):
        kept = _drop_small(inputs, _apply_tax_budget(inputs, sells, notes), skipped)
        if [(o.symbol, o.quantity) for o in kept] == [(o.symbol, o.quantity) for o in sells]:
            return kept
        sells = kept
    return sells


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
        smaller = _sale_within(inputs, o, budget - spent)
        if smaller is not None:
            kept.append(smaller)
            spent += tax_of(inputs, smaller)
        notes.append(f"sale of {o.symbol} cut to keep the estimated tax within the budget of {budget}")
    return sorted(kept, key=lambda o: o.symbol)


def _trim(inputs: Inputs, order: Order, value: Decimal) -> Order | None:
    """The order cut to at most `value` (whole cents, so its rounded value cannot exceed it); None when nothing is left."""
    value = min(value, order.value).quantize(CENT, rounding=ROUND_FLOOR)
    qty = min(shares_for(inputs, value, order.price), order.quantity)
    if qty <= 0:
        return None
    if order.side == "sell":
        return _shrink_sale(inputs, order, qty)
    return Order(symbol=order.symbol, side="buy", quantity=qty, price=order.price, note=order.note)


def _cap_turnover(inputs: Inputs, orders: list[Order], total: Decimal, floor: Decimal, notes: list[str],
                  deltas: dict[str, Decimal]) -> list[Order]:
    """Trim the trades that reduce drift least until turnover (traded value / total value) is within the cap.

    Sales fund buys, so the two sides are cut together. Cutting a sale by more than the cash above the minimum buffer
    forces the buys down by the difference (the smallest-benefit buys first); cutting a buy by more than the room
    below the cash ceiling (the maximum buffer, or the model's cash) leaves the sales that funded it idle, so they
    shrink by the difference (found by review: a dropped buy left its sale's proceeds in cash, above the maximum).
    Either way the other side's cut counts toward the cap too, so a sale and the buy it funds are cut by half the
    excess each, not one by all of it and the other again for the cash."""
    policy = inputs.policy
    cap = policy.turnover_cap * total
    excess = sum((o.value for o in orders), ZERO) - cap
    if excess <= 0:
        return orders  # (the very list: nothing trimmed)
    kept: list[Order | None] = list(orders)
    ranked = sorted(range(len(orders)), key=lambda i: (min(orders[i].value, abs(deltas.get(orders[i].symbol, orders[i].value))),
                                                       orders[i].symbol, orders[i].side))
    ceiling = _cash_ceiling(inputs, total)

    least = policy.min_trade

    def cut(i: int, value: Decimal, keep_least: bool) -> Decimal:
        """Cut order i to `value` (with `keep_least`, to no less than the minimum trade); the value it lost."""
        o = kept[i]
        if keep_least and value < least <= o.value:
            # the least value in shares the order can trade: whole shares round up to it (found by review: rounded
            # down, the order fell under the minimum and was dropped)
            value = least if not policy.whole_shares else \
                min(o.value, (least / o.price).to_integral_value(rounding=ROUND_CEILING) * o.price)
        kept[i] = _trim(inputs, o, value)
        lost = o.value - (kept[i].value if kept[i] is not None else ZERO)
        if lost > 0:
            note = f"{o.side} of {o.symbol} {'dropped' if kept[i] is None else 'trimmed'} to meet the turnover cap"
            if note not in notes:
                notes.append(note)
        return lost

    def side(name: str) -> list[int]:
        return [j for j in ranked if kept[j] is not None and kept[j].side == name]

    # first cutting no order below the minimum trade (a buy cut under it would be dropped after, leaving its sale's
    # cash idle: found by review), the rest of the excess going to the next orders; then, if still over, as far as needed
    for keep_least in (True, False):
        for i in ranked:
            if excess <= 0:
                break
            o = kept[i]
            if o is None:
                continue
            other = side("buy" if o.side == "sell" else "sell")
            cash = _cash_after(inputs, [k for k in kept if k is not None])
            # how far this cut may move cash before the other side must follow: down to the floor, or up to the ceiling
            slack = max(ZERO, cash - floor if o.side == "sell" else ceiling - cash)
            paired = sum((kept[j].value for j in other), ZERO)
            # turnover saved by cutting this order by x: x, plus the other side's cut, min(max(0, x - slack), paired)
            if excess <= slack:
                x = excess
            elif excess <= slack + 2 * paired:
                x = (excess + slack) / 2
            else:
                x = excess - paired
            lost = cut(i, o.value - x, keep_least)
            excess -= lost
            follow = lost - slack
            for j in other:
                if follow <= 0:
                    break
                lost = cut(j, kept[j].value - follow, keep_least)
                excess -= lost
                follow -= lost
    return sorted((o for o in kept if o is not None), key=lambda o: (o.side != "sell", o.symbol))


def _idle_sales(inputs: Inputs, sells: list[Order], buys: list[Order], total: Decimal, floor: Decimal,
                notes: list[str], under: bool = True,
                why: str = "the buys it funded were cut to meet the turnover cap") -> list[Order]:
    """After the turnover cap's trims, sales whose cash the (trimmed, or dropped) buys no longer use, above the cash
    ceiling: shrunk, the largest first, until cash is within it (found by review: costs a cut saves, and a buy dropped
    under the minimum trade, left cash above the maximum buffer). A sale is never cut under the minimum trade, nor
    cash under the floor (a sale that would fall under the minimum goes whole, if cash stays at the floor); a sale of
    all of a holding the model does not want is left whole (no dust). `under`: to the
    ceiling or just below it; else cash may stay above it by less than a share (for `_spend_idle` to buy with)."""
    policy = inputs.policy
    ceiling = _cash_ceiling(inputs, total)
    idle = _cash_after(inputs, sells + buys) - ceiling
    if idle <= 0:
        return sells
    targets = {t.symbol for t in inputs.model.targets} | set(inputs.stand_ins())
    held = inputs.held()
    out = list(sells)
    step = Decimal(1) if policy.whole_shares else FRACTION
    for i in sorted(range(len(out)), key=lambda i: (-out[i].value, out[i].symbol)):
        if idle <= 0:
            break
        o = out[i]
        if o.symbol not in targets and o.quantity >= held[o.symbol].quantity:
            continue
        price, qty = o.price, o.quantity
        before = raised_by(inputs, qty, price)
        need = before - idle  # what the sale must still raise
        keep = shares_raising(inputs, need, price, qty) if need > 0 else ZERO
        if under and keep > 0 and raised_by(inputs, keep, price) > need:
            fewer = keep - step if keep == keep.to_integral_value() or not policy.whole_shares else \
                keep.to_integral_value(rounding=ROUND_FLOOR)
            others = [x for j, x in enumerate(out) if j != i and x is not None]
            if _cash_after(inputs, others + [attrs.evolve(o, quantity=fewer)] + buys) >= floor:
                keep = fewer
        if keep >= qty:
            continue
        if keep > 0 and round_cents(keep * price) < policy.min_trade:  # under the minimum: the sale goes whole, if
            # what is left is enough for the buys (cash at or above the floor), else it shrinks to the minimum trade
            if _cash_after(inputs, [x for j, x in enumerate(out) if j != i and x is not None] + buys) < floor:
                keep = _shares_reaching(inputs, policy.min_trade, price)
                if keep >= qty:
                    continue
            else:
                keep = ZERO
        shrunk = _shrink_sale(inputs, o, keep) if keep > 0 else None
        idle -= before - (raised_by(inputs, keep, price) if shrunk is not None else ZERO)
        out[i] = shrunk
        note = f"sell of {o.symbol} {'trimmed' if shrunk is not None else 'dropped'}: {why}"
        if note not in notes:
            notes.append(note)
    return [o for o in out if o is not None]


def _spend_idle(inputs: Inputs, sells: list[Order], buys: list[Order], total: Decimal,
                cut: dict[str, Decimal]) -> list[Order]:
    """What whole shares (or rounding) leave above the cash ceiling after `_idle_sales`, bought into the kept buys, the
    largest first, within the turnover cap and within what the cap cut from each (`cut`: the buys' values before it;
    a sale's last share is worth more than the cash left over)."""
    policy = inputs.policy
    ceiling = _cash_ceiling(inputs, total)
    out = list(buys)
    for i in sorted(range(len(out)), key=lambda i: (-out[i].value, out[i].symbol)):
        o = out[i]
        idle = _cash_after(inputs, sells + out) - ceiling
        room = min(policy.turnover_cap * total - sum((x.value for x in sells + out), ZERO), cut.get(o.symbol, ZERO) - o.value)
        if idle <= 0:
            break
        if room <= 0:
            continue
        more = shares_for(inputs, min(idle, room), o.price)
        while more > 0:  # (a step or two: the costs of the added shares)
            bigger = attrs.evolve(o, quantity=o.quantity + more)
            trial = out[:i] + [bigger] + out[i + 1:]
            if bigger.value - o.value <= room and _cash_after(inputs, sells + trial) >= round_cents(policy.min_cash * total):
                out[i] = bigger
                break
            more -= Decimal(1) if policy.whole_shares else FRACTION * max(1, int(more / FRACTION) // 100)
    return out


def _finish(inputs: Inputs, orders: list[Order], skipped, notes, total: Decimal, current: dict[str, Decimal]) -> Plan:
    orders = sorted(orders, key=lambda o: (o.side != "sell", o.symbol))
    cash = inputs.cash
    qty = {h.symbol: h.quantity for h in inputs.holdings}
    costs = ZERO
    gains = {"short": ZERO, "long": ZERO}
    for i, o in enumerate(orders):
        cost = cost_of(inputs, o.quantity, o.price)
        costs += cost
        if o.side == "sell":
            cash += o.value - cost
            qty[o.symbol] -= o.quantity
            if o.lots and sum((l.quantity for l in o.lots), ZERO) == o.quantity:
                # the lots' proceeds as the fold will book the fill: the sale's value less its costs, shared by quantity
                # (found by review: the estimated gains ignored the costs)
                o = orders[i] = attrs.evolve(o, lots=tuple(
                    attrs.evolve(l, proceeds=p) for l, p in zip(o.lots, allocate(o.value - cost, [l.quantity for l in o.lots]))))
        else:
            cash -= o.value + cost
            qty[o.symbol] = qty.get(o.symbol, ZERO) + o.quantity
    # a loss a purchase would wash now is disallowed, not realized: in proportion to the shares replaced, as the fold
    # disallows it (found by review: first counted whole, then not at all where 10 of 55 shares were replaced)
    washed = _washed_shares(inputs, orders)
    for o in orders:
        for l in o.lots if o.side == "sell" else ():
            gain = l.gain
            if l.lot_id in washed:
                shares = washed[l.lot_id][0]
                gain += -gain if shares >= l.quantity else round_cents(-gain * shares / l.quantity)
            gains[l.term] += gain
    notes = tuple(notes) + tuple(n for n in _washed_losses(inputs, orders, washed) if n not in notes)
    after = {s: q * inputs.price(s) for s, q in qty.items() if q > 0}
    rates = inputs.rates
    return Plan(
        orders=tuple(orders), skipped=skipped, costs=costs,
        tax_short=round_cents(gains["short"] * rates[0]) if rates else None,
        tax_long=round_cents(gains["long"] * rates[1]) if rates else None,
        gain_short=round_cents(gains["short"]), gain_long=round_cents(gains["long"]),  # (0.00 when none, as the tax)
        turnover=(sum((o.value for o in orders), ZERO) / total).quantize(WEIGHT) if total > 0 else ZERO,
        cash_before=inputs.cash, cash_after=cash, total_before=total,
        total_after=sum(after.values(), ZERO) + cash,
        weights_before=weights(current, inputs.cash), weights_after=weights(after, cash), notes=notes)
