"""Corporate actions applied by the fold: one security event, every holding account, lot by lot.

Nothing recorded is rewritten: a split changes the lots from its effective date on, and as-of
views before it still show the old shares. Each lot is a block of its own (US rules): basis, holding
period and recognized gains are worked out per lot, in cents, with the remainders kept so basis is
conserved exactly. A fraction of a share is settled per position, as a broker delivers it (two lots
of half a share make one whole share), taken from lots that hold fractions. Every lot touched gets a
line in its `origin`.
"""

from __future__ import annotations

import datetime as dt
import heapq
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import attrs

from domain import events as ev
from domain import tax
from domain.books import _HANDLERS, Books, HeldAtEx, Payment, add_lot, dispose, drop_empty, record_gain
from domain.errors import DomainError
from domain.lots import Lot, allocate, relief_order
from domain.values import DIGITS, ZERO, normalize, round_cents


def _holders(books: Books, symbol: str):
    """Accounts holding `symbol`, with their open lots of it, in account order."""
    for account_id in sorted(books.accounts):
        acct = books.accounts[account_id]
        lots = acct.lots.get(symbol)
        if lots:
            yield acct, lots


#: a lot's quantity after a corporate action is kept to this quantum (the smallest quantity Folio takes): sums of
#: such quantities are exact in Decimal's 28 digits, so a position settled to N shares sells as N, all of it, and
#: leaves no dust (a 1:3 split kept to the 28th digit would make 0.999..9 of three thirds)
SHARE_QUANTUM = Decimal("1e-12")
#: a qualified dividend's shares must be held more than 60 days of the 121 beginning 60 days before the ex-date
#: (IRC 1(h)(11)(B)(iii), 246(c)): counted from the day after the holding period starts, a lot qualifies once it has
#: not been sold before its start + 61 days
QUALIFYING = dt.timedelta(days=61)


def _settle(books: Books, acct, lots: list[Lot], exact: Decimal, policy: str, price: Decimal | None,
            rec: ev.Recorded) -> Decimal:
    """Settle the fraction of a share an action leaves in an account's position (not in each lot: two lots of
    half a share are one whole share, as a broker delivers it); returns the cash paid in lieu.

    `lots` are the position's lots after the action, `exact` the shares it gives the position (the old total
    scaled once, so a ratio like 1:3 loses no share to the rounding of each lot). Each lot is first kept to
    SHARE_QUANTUM, the lots' roundings evened out so they add up to `exact` so kept (no sale: a rounding, not a
    share). Then the policy: the shares taken out (cash, round-down) or put in (round-up) go to lots with a
    fractional part only, so a whole lot stays whole, in the order a sale of the account relieves them
    (`_relief_order`), each lot giving up at most its own fraction. `cash` is a sale of those shares at the
    price, the proceeds split over them in proportion; `round-down` drops them (a lot left with no share is
    given up for nothing: its basis a realized loss; a lot that keeps shares keeps its basis); `round-up` adds
    shares at no cost."""
    if not lots:
        return ZERO
    for lot in lots:
        lot.quantity = lot.quantity.quantize(SHARE_QUANTUM, rounding=ROUND_HALF_EVEN)
    scaled = exact.quantize(SHARE_QUANTUM, rounding=ROUND_HALF_EVEN)
    fractional = [lot for lot in lots if lot.quantity != lot.quantity.to_integral_value()]
    order = _relief_order(books, acct, fractional or lots, price, rec.effective)
    rounding = sum((lot.quantity for lot in lots), ZERO) - scaled  # a few quanta at most
    if rounding < 0:
        _put_in(order, -rounding)
    elif rounding > 0:
        for lot, quantity in _taken(order, rounding):
            lot.quantity -= quantity
    cash = ZERO
    target = scaled if policy == "keep" else exact.to_integral_value(
        rounding=ROUND_CEILING if policy == "round-up" else ROUND_FLOOR)
    if scaled < target:  # round-up
        _put_in(order, target - scaled)
    elif scaled > target:
        parts = _taken(order, scaled - target)
        if policy == "cash":
            cash = round_cents((exact - target) * price)
            for (lot, quantity), proceeds in zip(parts, allocate(cash, [q for _, q in parts])):
                dispose(books, acct, lot, quantity, proceeds, rec, "cash-in-lieu")
        else:  # round-down
            for lot, quantity in parts:
                if quantity == lot.quantity:
                    dispose(books, acct, lot, quantity, ZERO, rec, "fraction-dropped")
                else:
                    lot.quantity -= quantity
    for lot in lots:  # as few digits as the quantity needs (4, not 4.000000000000)
        lot.quantity = normalize(lot.quantity)
    return cash


def _taken(order: list[Lot], amount: Decimal) -> list[tuple[Lot, Decimal]]:
    """(lot, shares) taking `amount` from the lots in order: from their fractions first, each giving at most its
    own; then (only for a rounding, when the fractions do not hold it) from their shares."""
    taken: dict[int, list] = {}
    left = amount
    for whole_shares in (False, True):
        for lot in order:
            if left == 0:
                break
            have = lot.quantity - taken.get(id(lot), [lot, ZERO])[1]
            room = have if whole_shares else have - have.to_integral_value(rounding=ROUND_FLOOR)
            step = min(room, left)
            if step > 0:
                taken.setdefault(id(lot), [lot, ZERO])[1] += step
                left -= step
    return [(lot, normalize(quantity)) for lot, quantity in taken.values()]


def _put_in(order: list[Lot], amount: Decimal) -> None:
    """Add `amount` shares to the lots in order, each up to a whole share, what is left to the first."""
    left = amount
    for lot in order:
        step = min(left, lot.quantity.to_integral_value(rounding=ROUND_CEILING) - lot.quantity)
        lot.quantity += step
        left -= step
    order[0].quantity += left


def _relief_order(books: Books, acct, lots: list[Lot], price: Decimal | None, day) -> list[Lot]:
    """Lots in the order the account's lot method relieves them (min-tax at the cash-in-lieu price; FIFO where
    there is no price to rank by)."""
    method = acct.lot_method or "fifo"
    if method == "min-tax":
        if price is None:
            return relief_order(lots, "fifo")
        owner = books.owners.get(acct.owner)
        return relief_order(lots, method, price, day, owner.rates if owner else None)
    return relief_order(lots, method)


def _note(books: Books, rec: ev.Recorded, acct, text: str) -> None:
    books.effects.setdefault(rec.seq, {})[acct.account] = text


def _split(books: Books, rec: ev.Recorded) -> None:
    e: ev.SplitApplied = rec.event
    label = f"{'stock dividend' if e.stock_dividend else 'split'} {normalize(e.new)}:{normalize(e.old)}"
    for acct, lots in _holders(books, e.symbol):  # checked for every holder before any is changed
        scaled = sum((l.quantity for l in lots), ZERO) * e.new / e.old
        if scaled and scaled.adjusted() >= DIGITS:
            raise DomainError(f"{label} of {e.symbol} would make {acct.account}'s {normalize(scaled)} shares, more than "
                              f"Folio takes (below 10^{DIGITS})")
    _scale_losses(books, e.symbol, e.new, e.old)
    for acct, lots in _holders(books, e.symbol):
        acct.splits.setdefault(e.symbol, []).append((rec.effective, rec.seq, e.new, e.old))
        before = sum((l.quantity for l in lots), ZERO)
        for lot in lots:
            lot.quantity = lot.quantity * e.new / e.old
            lot.repl = lot.repl * e.new / e.old
            lot.origin += ((rec.seq, label),)
        cash = _settle(books, acct, list(lots), before * e.new / e.old, e.fraction, e.cash_price, rec)
        drop_empty(acct, e.symbol)
        acct.cash += cash
        after = acct.held(e.symbol)
        _note(books, rec, acct, f"{normalize(before)} -> {normalize(after)} {e.symbol}" + (f", cash in lieu {cash}" if cash else ""))


def _scale_losses(books: Books, symbol: str, new: Decimal, old: Decimal) -> None:
    """Loss sales of `symbol` that replacement shares may still match count in the new shares after a split: a
    purchase of 100 shares after a 2:1 split replaces 50 of the shares sold before it (Treas. Reg. 1.1091-1(c);
    found by review: they were matched share for share, disallowing twice the loss). The loss and what is disallowed
    of it stay; the shares sold and matched scale, so their ratio does."""
    for ot in books.owners.values():
        seen: set[int] = set()
        for sale in ot.losses + ot.recent_losses:  # (the two lists share sales)
            if sale.symbol == symbol and id(sale) not in seen:
                seen.add(id(sale))
                sale.quantity = sale.quantity * new / old  # (as the lots: times new, then over old, so 300 at 1:3
                sale.matched = sale.matched * new / old    # is 100, not 99.99...9)


def _dividend(books: Books, rec: ev.Recorded) -> None:
    e: ev.DividendDeclared = rec.event
    if e.pay_date < rec.effective:
        raise DomainError(f"dividend on {e.symbol}: pay date {e.pay_date} is before the ex-date {rec.effective}")
    for acct, lots in _holders(books, e.symbol):
        held = sum((l.quantity for l in lots), ZERO)
        gross = round_cents(held * e.per_share)
        if gross == 0:
            continue
        if e.symbol in acct.reinvest and e.reinvest_price is None:
            raise DomainError(
                f"dividend on {e.symbol} ex {rec.effective} would be reinvested in {acct.account} but gives no "
                "reinvestment price: record it with one")
        withheld = round_cents(gross * e.withholding)
        if e.kind == "return-of-capital":
            for lot, share in zip(lots, allocate(gross, [l.quantity for l in lots])):
                cut = min(share, lot.basis)
                lot.basis -= cut
                acct.basis_out += cut
                lot.origin += ((rec.seq, f"return of capital {e.per_share} a share, basis -{cut}"),)
                if share > cut:  # a gain when received: dated the pay date, its term counted to it (its tax year)
                    record_gain(books, acct, lot, ZERO, share - cut, ZERO, rec._replace(effective=e.pay_date),
                                "return-of-capital")
        at_ex = ()
        if e.kind == "qualified" and acct.tax_status == "taxable":
            # qualified only for shares held more than 60 days of the 121 around the ex-date: a lot held since 61 days
            # before it has; a later one must not be sold before its start + 61 days (whether it is, later sales say).
            # Held since it was acquired: a wash sale's earlier start does not count here (IRC 246(c)(3)(B), which
            # 1(h)(11)(B)(iii) applies; found by review), a tax-free merger's or spinoff's does (the lot keeps the
            # acquisition date of the shares it came from)
            soon = rec.effective - QUALIFYING
            if any(l.acquired > soon for l in lots):
                at_ex = tuple(HeldAtEx(l.lot_id, l.quantity, part, l.acquired + QUALIFYING if l.acquired > soon else None)
                             for l, part in zip(lots, allocate(gross, [l.quantity for l in lots])))
        heapq.heappush(books.due, Payment(pay_date=e.pay_date, seq=rec.seq, account=acct.account, symbol=e.symbol,
                                          kind=e.kind, ex_date=rec.effective, gross=gross, withheld=withheld,
                                          reinvest_price=e.reinvest_price, held=at_ex))
        _note(books, rec, acct, f"{normalize(held)} {e.symbol} entitled: {gross} gross, {withheld} withheld, paid {e.pay_date}")


def _merger(books: Books, rec: ev.Recorded) -> None:
    e: ev.MergerCompleted = rec.event
    for acct, lots in list(_holders(books, e.symbol)):
        acct.reinvest.discard(e.symbol)  # the target is no more: a dividend of it paid later is paid in cash
        total_cash = ZERO
        new_lots: list[Lot] = []
        held = sum((lot.quantity for lot in lots), ZERO)
        received = held * e.shares / e.per  # the shares due, scaled once
        # the cash is paid on the position, rounded once, and shared over the lots (found by review: rounded per lot,
        # ten lots of 7 at 35.2075 were paid 2464.50 for the 2464.52 due)
        cashes = allocate(round_cents(held * e.cash), [lot.quantity for lot in lots]) if e.cash else [ZERO] * len(lots)
        for lot, cash in zip(list(lots), cashes):
            shares = lot.quantity * e.shares / e.per
            basis = lot.basis
            if e.shares == 0:  # cash only: a sale of the lot
                dispose(books, acct, lot, lot.quantity, cash, rec, "merger-cash")
                total_cash += cash
                continue
            if e.taxable:  # the whole exchange is a sale at cash + fair value; new lots at fair value, new holding period
                fair = round_cents(shares * e.acquirer_fmv)
                dispose(books, acct, lot, lot.quantity, cash + fair, rec, "merger")
                new = Lot(lot_id=f"{lot.lot_id}.{rec.seq}", symbol=e.acquirer, quantity=shares, basis=fair,
                          acquired=rec.effective, order=rec.seq,
                          origin=((rec.seq, f"taxable merger of {e.symbol} lot {lot.lot_id} at {e.acquirer_fmv}"),))
                acct.basis_in += fair
            else:
                recognized = ZERO
                if cash > 0:
                    realized = cash + round_cents(shares * e.acquirer_fmv) - basis
                    recognized = max(ZERO, min(realized, cash))
                    # the cash takes out (cash - recognized) of basis; the gain recognized is that boot's gain
                    relieved = cash - recognized
                    acct.basis_out += relieved
                    record_gain(books, acct, lot, ZERO, cash, relieved, rec, "merger-cash")
                    basis = basis - relieved
                # the shares are the lot's under another symbol: a qualified dividend's shares sold after this
                # count in the target's shares of its ex-date (`tax_views.not_qualified`)
                acct.convert(tax.purchase_of(lot.lot_id), e.symbol, e.acquirer, rec.effective, rec.seq, e.shares, e.per)
                new = Lot(lot_id=lot.lot_id, symbol=e.acquirer, quantity=shares, basis=basis, acquired=lot.acquired,
                          order=lot.order, hp_start=lot.hp_start, origin=lot.origin + ((rec.seq, f"merger of {e.symbol} into {e.acquirer}, "
                                                                          f"{normalize(e.shares)}:{normalize(e.per)} + {e.cash} cash a share"),))
            lot.quantity, lot.basis = ZERO, ZERO
            total_cash += cash
            add_lot(acct, new)
            new_lots.append(new)
        drop_empty(acct, e.symbol)
        total_cash += _settle(books, acct, new_lots, received, e.fraction, e.lieu_price, rec)
        for new in new_lots:
            # shares received in a taxable exchange are a purchase (wash-sale replacements): the shares settled,
            # so a part split off for a wash sale is never taken for a fraction of a share to round or cash
            if e.taxable and new.quantity > 0:
                tax.on_acquisition(books, acct, new, rec.effective)
        if e.acquirer:
            drop_empty(acct, e.acquirer)
        acct.cash += total_cash
        _note(books, rec, acct, f"{e.symbol} -> " + (f"{normalize(acct.held(e.acquirer))} {e.acquirer}, " if e.acquirer else "")
              + f"cash {total_cash}")


def _spinoff(books: Books, rec: ev.Recorded) -> None:
    e: ev.SpinoffCompleted = rec.event
    for acct, lots in list(_holders(books, e.symbol)):
        children = []
        for lot in lots:
            child_basis = round_cents(lot.basis * e.allocation)
            lot.basis -= child_basis
            lot.origin += ((rec.seq, f"spun off {e.child}, kept {1 - e.allocation} of basis"),)
            child = Lot(lot_id=f"{lot.lot_id}.{rec.seq}", symbol=e.child, quantity=lot.quantity * e.shares / e.per,
                        basis=child_basis, acquired=lot.acquired, order=lot.order, hp_start=lot.hp_start,
                        origin=((rec.seq, f"spun off from {e.symbol} lot {lot.lot_id}, {e.allocation} of its basis"),))
            add_lot(acct, child)
            children.append(child)
        cash = _settle(books, acct, children, sum((lot.quantity for lot in lots), ZERO) * e.shares / e.per,
                       e.fraction, e.lieu_price, rec)
        drop_empty(acct, e.child)
        acct.cash += cash
        _note(books, rec, acct, f"received {normalize(acct.held(e.child))} {e.child}" + (f", cash in lieu {cash}" if cash else ""))


def _symbol_change(books: Books, rec: ev.Recorded) -> None:
    e: ev.SymbolChanged = rec.event
    old, new = e.symbol, e.new_symbol
    # the renamed security is the same security under its new symbol: its wash-sale group, its loss sales and
    # purchases, its dividend reinvestment and payments due, and its declared substitutes follow it. The old symbol
    # keeps nothing: a later security under it is another one (found by review: the old ticker stayed an alias of the
    # new for good, so a buy of a new security reusing it washed the renamed one's loss; and a split after the rename
    # did not scale the loss sales still recorded under the old symbol, disallowing twice the loss)
    members = [k for k, g in books.identical.items() if g == tax.group_of(books, old) and k != old]
    books.identical.pop(old, None)
    if members:
        group = tax.group_of(books, new)
        for k in members:
            books.identical[k] = group
        books.identical[new] = group
        books.identical.setdefault(group, group)
    tax.on_rename(books, old, new)
    for acct in books.accounts.values():
        if old in acct.reinvest:
            acct.reinvest.discard(old)
            acct.reinvest.add(new)
    if any(p.symbol == old for p in books.due):
        books.due = [attrs.evolve(p, symbol=new) if p.symbol == old else p for p in books.due]
        heapq.heapify(books.due)
    if old in books.substitutes:
        books.substitutes.setdefault(new, set()).update(books.substitutes.pop(old))
    for subs in books.substitutes.values():
        if old in subs:
            subs.discard(old)
            subs.add(new)
    for acct, lots in list(_holders(books, e.symbol)):
        # the held shares' splits follow them, by purchase, as a merger's do (a 1:1 one): the new symbol's own list
        # is not theirs (found by review: copied into it, a reused ticker's earlier splits were undone for them), and
        # the old symbol keeps its list for the sales made under it
        for purchase in {tax.purchase_of(lot.lot_id) for lot in lots}:
            acct.convert(purchase, old, new, rec.effective, rec.seq, Decimal(1), Decimal(1))
        for lot in lots:
            lot.symbol = e.new_symbol
            lot.origin += ((rec.seq, f"renamed {e.symbol} -> {e.new_symbol}"),)
            add_lot(acct, lot)
        del acct.lots[e.symbol]
        _note(books, rec, acct, f"{normalize(acct.held(e.new_symbol))} {e.symbol} now {e.new_symbol}")


_HANDLERS.update({
    ev.SplitApplied: _split,
    ev.DividendDeclared: _dividend,
    ev.MergerCompleted: _merger,
    ev.SpinoffCompleted: _spinoff,
    ev.SymbolChanged: _symbol_change,
})
