"""Corporate actions applied by the fold: one security event, every holding account, lot by lot.

Nothing recorded is rewritten: a split changes the lots from its effective date on, and as-of
views before it still show the old shares. Each lot is a block of its own (US rules): fractions,
cash in lieu and recognized gains are worked out per lot, in cents, with the remainders kept so
basis is conserved exactly. Every lot touched gets a line in its `origin`.
"""

from __future__ import annotations

import heapq
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from domain import events as ev
from domain import tax
from domain.books import _HANDLERS, Books, Payment, add_lot, dispose, drop_empty, record_gain
from domain.errors import DomainError
from domain.lots import Lot, allocate
from domain.values import DIGITS, ZERO, normalize, round_cents


def _holders(books: Books, symbol: str):
    """Accounts holding `symbol`, with their open lots of it, in account order."""
    for account_id in sorted(books.accounts):
        acct = books.accounts[account_id]
        lots = acct.lots.get(symbol)
        if lots:
            yield acct, lots


def _fraction(lot: Lot, policy: str, price: Decimal | None, books: Books, acct, rec: ev.Recorded) -> Decimal:
    """Settle a fractional share left in a lot by the policy; returns cash paid in lieu (0 otherwise)."""
    whole = lot.quantity.to_integral_value(rounding=ROUND_FLOOR)
    fraction = lot.quantity - whole
    if fraction == 0 or policy == "keep":
        return ZERO
    if policy == "round-down":
        if whole == 0:  # nothing left to carry the basis: the lot is given up for nothing, a realized loss
            dispose(books, acct, lot, lot.quantity, ZERO, rec, "fraction-dropped")
        else:
            lot.quantity = whole
        return ZERO
    if policy == "round-up":
        lot.quantity = lot.quantity.to_integral_value(rounding=ROUND_CEILING)
        return ZERO
    cash = round_cents(fraction * price)
    dispose(books, acct, lot, fraction, cash, rec, "cash-in-lieu")
    return cash


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
    for acct, lots in _holders(books, e.symbol):
        before = sum((l.quantity for l in lots), ZERO)
        cash = ZERO
        for lot in lots:
            lot.quantity = lot.quantity * e.new / e.old
            lot.repl = lot.repl * e.new / e.old
            lot.origin += ((rec.seq, label),)
            cash += _fraction(lot, e.fraction, e.cash_price, books, acct, rec)
        drop_empty(acct, e.symbol)
        acct.cash += cash
        after = acct.held(e.symbol)
        _note(books, rec, acct, f"{normalize(before)} -> {normalize(after)} {e.symbol}" + (f", cash in lieu {cash}" if cash else ""))


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
                if share > cut:
                    record_gain(books, acct, lot, ZERO, share - cut, ZERO, rec, "return-of-capital")
        heapq.heappush(books.due, Payment(pay_date=e.pay_date, seq=rec.seq, account=acct.account, symbol=e.symbol,
                                          kind=e.kind, ex_date=rec.effective, gross=gross, withheld=withheld,
                                          reinvest_price=e.reinvest_price))
        _note(books, rec, acct, f"{normalize(held)} {e.symbol} entitled: {gross} gross, {withheld} withheld, paid {e.pay_date}")


def _merger(books: Books, rec: ev.Recorded) -> None:
    e: ev.MergerCompleted = rec.event
    for acct, lots in list(_holders(books, e.symbol)):
        total_cash = ZERO
        new_lots: list[Lot] = []
        for lot in list(lots):
            cash = round_cents(lot.quantity * e.cash)
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
                new = Lot(lot_id=lot.lot_id, symbol=e.acquirer, quantity=shares, basis=basis, acquired=lot.acquired,
                          order=lot.order, hp_start=lot.hp_start, origin=lot.origin + ((rec.seq, f"merger of {e.symbol} into {e.acquirer}, "
                                                                          f"{normalize(e.shares)}:{normalize(e.per)} + {e.cash} cash a share"),))
            lot.quantity, lot.basis = ZERO, ZERO
            total_cash += cash
            add_lot(acct, new)
            new_lots.append(new)
        drop_empty(acct, e.symbol)
        for new in new_lots:
            total_cash += _fraction(new, e.fraction, e.lieu_price, books, acct, rec)
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
        cash = ZERO
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
        for child in children:
            cash += _fraction(child, e.fraction, e.lieu_price, books, acct, rec)
        drop_empty(acct, e.child)
        acct.cash += cash
        _note(books, rec, acct, f"received {normalize(acct.held(e.child))} {e.child}" + (f", cash in lieu {cash}" if cash else ""))


def _symbol_change(books: Books, rec: ev.Recorded) -> None:
    e: ev.SymbolChanged = rec.event
    # the renamed security is the same security: its wash-sale group follows it
    group = tax.group_of(books, e.symbol)
    books.identical[e.symbol] = books.identical[e.new_symbol] = group
    tax.on_rename(books, e.symbol, e.new_symbol)
    for acct, lots in list(_holders(books, e.symbol)):
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
