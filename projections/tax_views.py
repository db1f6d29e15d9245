"""Tax read models: gains with wash-sale adjustments (Form 8949 rows), income, harvest candidates, restrictions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Callable, Sequence

import attrs

from domain import tax
from domain.books import Account, Books, Income, RealizedGain
from domain.values import ZERO, is_long_term, round_cents
from ledger.prices import Price

PriceOf = Callable[[str], Price | None]


@attrs.frozen
class LotValue:
    """A lot at a price: unrealized gain and the term a sale on the day would have."""

    price: Price
    market_value: Decimal
    unrealized: Decimal
    term: str


def lot_value(quantity: Decimal, basis: Decimal, hp_start: dt.date, price: Price, day: dt.date) -> LotValue:
    value = round_cents(quantity * price.close)
    return LotValue(price=price, market_value=value, unrealized=value - basis,
                    term="long" if is_long_term(hp_start, day) else "short")


# -- income ------------------------------------------------------------------------------
@attrs.frozen
class IncomeLine:
    kind: str
    gross: Decimal
    withheld: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.withheld


def income_summary(acct: Account, year: int | None) -> tuple[list[Income], list[IncomeLine]]:
    """Income of a year (by pay date): the payments, and their sums by kind (dividend kinds, then interest). The part
    of a qualified dividend whose shares were not held long enough (`not_qualified`) is counted as ordinary."""
    rows = [i for i in acct.income if year is None or i.pay_date.year == year]
    short = not_qualified(acct, rows)
    moved = sum(short.values(), ZERO)
    moved_withheld = sum((round_cents(i.withheld * short[i.seq] / i.gross) for i in rows if short.get(i.seq)), ZERO)
    kinds = ("ordinary", "qualified", "return-of-capital", "capital-gain", "interest")
    lines = []
    for kind in kinds:
        of_kind = [i for i in rows if i.kind == kind]
        gross, withheld = sum((i.gross for i in of_kind), ZERO), sum((i.withheld for i in of_kind), ZERO)
        if kind == "ordinary":
            gross, withheld = gross + moved, withheld + moved_withheld
        elif kind == "qualified":
            gross, withheld = gross - moved, withheld - moved_withheld
        if of_kind or (kind == "ordinary" and moved):
            lines.append(IncomeLine(kind=kind, gross=gross, withheld=withheld))
    return rows, lines


def not_qualified(acct: Account, payments: Sequence[Income]) -> dict[int, Decimal]:
    """By the dividend's seq, the part of each qualified dividend that is an ordinary dividend, as far as the books
    know: the part of each entitled lot sold before it had been held more than 60 days of the 121 around the ex-date
    (a lot's later parts, split off by a wash sale, count with it). Shares sold after a split count in the shares of
    the ex-date (100 sold after a 2:1 split are 50 of the lot's shares at the ex-date), at most all of them."""
    wanted = [i for i in payments if i.kind == "qualified" and any(h.held_until for h in i.held)]
    if not wanted:
        return {}
    by_purchase: dict[str, list[RealizedGain]] = {}
    for g in acct.gains:
        if g.quantity > 0:
            by_purchase.setdefault(tax.purchase_of(g.lot_id), []).append(g)
    out = {}
    for i in wanted:
        ids = sorted((h.lot_id for h in i.held), key=len, reverse=True)  # the most specific entry first
        sold: dict[str, Decimal] = {}
        for h in i.held:
            if h.held_until is None:
                continue
            for g in by_purchase.get(tax.purchase_of(h.lot_id), ()):
                if i.ex_date <= g.sold < h.held_until and _part_of(g.lot_id, ids) == h.lot_id:
                    sold[h.lot_id] = sold.get(h.lot_id, ZERO) + _at_ex(acct, g, i)
        part = sum((h.amount * min(sold[h.lot_id] / h.quantity, Decimal(1)) for h in i.held if h.lot_id in sold), ZERO)
        if part:
            out[i.seq] = round_cents(part)
    return out


def _at_ex(acct: Account, g: RealizedGain, i: Income) -> Decimal:
    """A sale's shares in the shares of a dividend's ex-date: undone, every split and tax-free stock merger the
    account held the shares through after the dividend (on its ex-date, those recorded after it) up to the sale (one
    on the sale's day comes first: security events are folded before an account's)."""
    new = old = Decimal(1)
    for day, seq, n, o in acct.share_history(tax.purchase_of(g.lot_id), g.symbol):
        if (day, seq) > (i.ex_date, i.seq) and day <= g.sold:
            new, old = new * n, old * o
    return g.quantity if new == old else g.quantity * old / new


def _part_of(lot_id: str, ids: list[str]) -> str | None:
    """The entry of `ids` (longest first) that `lot_id` is, or is a later wash-sale part of (`<id>w<seq>`, `-<n>`):
    not a lot made from one (`<id>w<seq>.<seq>`: a spinoff's child, a taxable merger's new shares; found by review:
    a spinoff child of a part was counted as the dividend lot's shares sold)."""
    return next((e for e in ids if lot_id == e or lot_id.startswith(e + "w") and "." not in lot_id[len(e):]), None)


# -- Form 8949 ---------------------------------------------------------------------------
def form_8949_rows(gains: Sequence[RealizedGain]) -> dict[str, list[list[str]]]:
    """Rows of Form 8949's Part I (short-term) and Part II (long-term), each with a totals row."""
    def description(g: RealizedGain) -> str:
        if g.quantity == 0:
            return f"{g.symbol} {g.reason.replace('-', ' ')}"
        return f"{g.quantity.normalize():f} sh {g.symbol}"

    def us(day: dt.date) -> str:
        return day.strftime("%m/%d/%Y")

    parts = {}
    # a row recognizing nothing (the cash of a stock-and-cash merger at a loss: no gain, no loss, no shares) is no
    # disposal to report (found by review)
    gains = [g for g in gains if g.quantity != 0 or g.gain != 0]
    for term in ("short", "long"):
        rows = [g for g in gains if g.term == term]
        body = [[description(g), us(g.held_from or g.acquired), us(g.sold), f"{g.proceeds:.2f}", f"{g.cost_basis:.2f}", g.code,
                 f"{g.adjustment:.2f}" if g.adjustment else "", f"{g.gain:.2f}"] for g in rows]
        totals = ["Totals", "", "", f"{sum((g.proceeds for g in rows), ZERO):.2f}",
                  f"{sum((g.cost_basis for g in rows), ZERO):.2f}", "",
                  f"{sum((g.adjustment for g in rows), ZERO):.2f}", f"{sum((g.gain for g in rows), ZERO):.2f}"]
        parts[term] = body + [totals]
    return parts


FORM_8949_HEADER = ["(a) Description of property", "(b) Date acquired", "(c) Date sold or disposed of",
                    "(d) Proceeds (sales price)", "(e) Cost or other basis", "(f) Code(s)",
                    "(g) Amount of adjustment", "(h) Gain or (loss)"]


# -- harvesting --------------------------------------------------------------------------
@attrs.frozen
class HarvestCandidate:
    account: str
    lot_id: str
    symbol: str
    quantity: Decimal
    cost_basis: Decimal
    value: LotValue
    loss: Decimal
    loss_pct: Decimal
    estimated_saving: Decimal | None
    wash_risks: tuple[str, ...]
    substitutes: tuple[str, ...]
    restricted_until: dt.date


def harvest(books: Books, accounts: Sequence[str], day: dt.date, price_of: PriceOf, *,
            min_loss_pct: Decimal = ZERO, min_loss: Decimal = ZERO) -> tuple[list[HarvestCandidate], list[str]]:
    """Lots of `accounts` whose unrealized loss passes both thresholds, at the latest price on or before `day`.

    Returns the candidates and the symbols that had no price.
    """
    out, unpriced = [], set()
    reinvested: dict[str, list[tuple[str, str]]] = {}  # per owner, computed once: its accounts' reinvested symbols
    for account_id in accounts:
        acct = books.accounts[account_id]
        if acct.tax_status != "taxable":
            continue  # a loss in a tax-deferred or tax-exempt account saves no tax
        ot = books.owners.get(acct.owner)
        if acct.owner not in reinvested:
            reinvested[acct.owner] = reinvestments(books, acct.owner)
        for lot in acct.open_lots():
            price = price_of(lot.symbol)
            if price is None or price.currency != acct.currency:  # Folio converts no currency
                unpriced.add(lot.symbol)
                continue
            value = lot_value(lot.quantity, lot.basis, lot.hp_start, price, day)
            loss = -value.unrealized
            if loss <= 0 or lot.basis <= 0:
                continue
            pct = loss / lot.basis
            if loss < min_loss or pct < min_loss_pct:
                continue
            saving = None
            if ot is not None and ot.rates is not None:
                rate = ot.rates[1] if value.term == "long" else ot.rates[0]
                saving = round_cents(loss * rate)
            out.append(HarvestCandidate(
                account=account_id, lot_id=lot.lot_id, symbol=lot.symbol, quantity=lot.quantity, cost_basis=lot.basis,
                value=value, loss=loss, loss_pct=pct.quantize(Decimal("0.0001")), estimated_saving=saving,
                wash_risks=tuple(wash_risks(books, acct.owner, lot, day, reinvested[acct.owner], account_id)),
                substitutes=tuple(sorted(s for s in books.substitutes.get(lot.symbol, ())
                                         if tax.group_of(books, s) != tax.group_of(books, lot.symbol))),
                restricted_until=day + tax.WINDOW))
    out.sort(key=lambda c: (-c.loss, c.account, c.lot_id))
    return out, sorted(unpriced)


def reinvestments(books: Books, owner: str) -> list[tuple[str, str]]:
    """(symbol, account) of every dividend reinvestment in force in the owner's accounts."""
    return [(sym, acct.account) for acct in books.accounts_of(owner) for sym in sorted(acct.reinvest)]


def wash_risks(books: Books, owner: str, lot, day: dt.date, reinvested: list[tuple[str, str]] | None = None,
               account: str | None = None) -> list[str]:
    """Why selling `lot` (of `account`) at a loss on `day` would be a wash sale (`wash_risk_sources`' reasons)."""
    return [why for why, _, _ in wash_risk_sources(books, owner, lot, day, reinvested, account)]


def wash_risk_sources(books: Books, owner: str, lot, day: dt.date, reinvested: list[tuple[str, str]] | None = None,
                      account: str | None = None) -> list[tuple[str, str | None, Decimal | None]]:
    """Why selling `lot` (of `account`) at a loss on `day` would be a wash sale: recent purchases of its group by
    the owner, or dividends of its group reinvested in one of the owner's accounts (`reinvested`, when already
    known); each with the id of the purchase's lot when it is in `account` itself (a sale of that lot at the same
    time removes the risk), else None; and how many shares it could replace (None: not known, a reinvestment to come).
    A part of the lot's own purchase in its own account replaces nothing (as in
    the fold: found by review, a lot split by a wash sale was warned of its other part)."""
    group = tax.group_of(books, lot.symbol)
    risks = []
    ot = books.owners.get(owner)
    own = tax.purchase_of(lot.lot_id)
    for acq in (ot.acquisitions if ot else ()):
        if acq.lot is lot or acq.day < day - tax.WINDOW or acq.day > day or acq.lot.repl <= 0 or acq.lot.quantity <= 0:
            continue
        if acq.account == account and tax.purchase_of(acq.lot.lot_id) == own:
            continue
        if tax.group_of(books, acq.lot.symbol) == group:
            shares = min(acq.lot.repl, acq.lot.quantity)
            risks.append((f"bought {shares.normalize():f} {acq.lot.symbol} on {acq.day} in {acq.account} "
                          f"(lot {acq.lot.lot_id})", acq.lot.lot_id if acq.account == account else None, shares))
    for sym, holder in reinvestments(books, owner) if reinvested is None else reinvested:
        if tax.group_of(books, sym) == group:
            risks.append((f"dividends of {sym} are reinvested in {holder}", None, None))
    return risks


@attrs.frozen
class Restriction:
    symbols: tuple[str, ...]
    restricted_until: dt.date
    account: str
    lot_id: str
    sold: dt.date
    loss: Decimal
    seq: int


def restrictions(books: Books, owner: str, day: dt.date) -> list[Restriction]:
    out = [Restriction(symbols=tuple(tax.group_members(books, group)), restricted_until=until, account=sale.account,
                       lot_id=sale.lot_id, sold=sale.sold, loss=sale.loss - sale.disallowed, seq=sale.seq)
           for group, until, sale in tax.restrictions(books, owner, day)]
    return sorted(out, key=lambda r: (r.restricted_until, r.symbols, r.seq, r.lot_id))


def owner_accounts(books: Books, owner: str) -> list[str]:
    return sorted(a.account for a in books.accounts_of(owner))
