"""The books: the state every projection reads, and the one fold that builds it.

`Books.apply(recorded)` checks an event against the state it lands in and then
changes the state; it raises a `DomainError` *before* changing anything, so a
refused event leaves the books as they were. Folding events in order
(effective date, phase, seq) with `fold` is the whole read side; checking a
backdated event is the same fold with the event in its place (`check_timeline`).
"""

from __future__ import annotations

import datetime as dt
import heapq
from decimal import Decimal
from typing import Callable, Iterable, NamedTuple

import attrs

from domain import events as ev
from domain import tax
from domain.errors import Doing, say, DomainError, InsufficientCash, InsufficientShares, UnknownAccount, AccountExists
from domain.lots import Lot, allocate, relieve, select
from decimal import ROUND_DOWN, ROUND_HALF_EVEN

from domain.values import CENT, ZERO, is_long_term, plain_text, price_text, round_cents

#: reinvested shares are bought to a millionth of a share, rounded down so cash never goes negative
REINVEST_QUANTUM = Decimal("0.000001")


class RealizedGain(NamedTuple):
    """One lot's share of a disposal: what was sold, for how much, against what basis. (A named tuple: a replay
    books one per lot sold, and a tuple is made in a quarter of the time of a frozen attrs class.)"""

    lot_id: str
    symbol: str
    quantity: Decimal
    acquired: dt.date
    sold: dt.date
    proceeds: Decimal
    cost_basis: Decimal
    term: str
    reason: str
    seq: int
    #: a wash sale's disallowed loss, as a positive adjustment (Form 8949 column g), with code "W"
    adjustment: Decimal = ZERO
    code: str = ""
    #: where the holding period began when not on `acquired` (a wash-sale replacement takes the sold shares'
    #: holding period): Form 8949 reports this adjusted date as the date acquired, as brokers do
    held_from: dt.date | None = None

    @property
    def gain(self) -> Decimal:
        return self.proceeds - self.cost_basis + self.adjustment


@attrs.frozen
class Income:
    """A dividend or distribution paid to an account (on its pay date)."""

    symbol: str
    kind: str
    ex_date: dt.date
    pay_date: dt.date
    gross: Decimal
    withheld: Decimal
    reinvested: bool
    seq: int
    #: a qualified dividend's entitled lots, where one's holding period may yet fall short (`HeldAtEx`): none when
    #: every lot had held more than 60 days by the ex-date
    held: tuple["HeldAtEx", ...] = ()

    @property
    def net(self) -> Decimal:
        return self.gross - self.withheld


class HeldAtEx(NamedTuple):
    """A lot entitled to a qualified dividend: its part of the gross, and the day before which a sale of it leaves
    that part an ordinary dividend (more than 60 days held of the 121 around the ex-date: its acquisition + 61 days,
    a wash sale's earlier start not counted), None when it had held long enough by the ex-date."""

    lot_id: str
    quantity: Decimal
    amount: Decimal
    held_until: dt.date | None


@attrs.frozen(order=True)
class Payment:
    """Cash owed to an account on a future date (a dividend between its ex-date and pay date)."""

    pay_date: dt.date
    seq: int
    account: str
    symbol: str
    kind: str
    ex_date: dt.date
    gross: Decimal
    withheld: Decimal
    reinvest_price: Decimal | None
    held: tuple[HeldAtEx, ...] = ()


@attrs.define(slots=True)
class Account:
    """One account's books. Mutable inside the fold only."""

    account: str
    owner: str
    tax_status: str
    currency: str
    lot_method: str
    overdraft: bool
    opened: dt.date
    cash: Decimal = ZERO
    #: symbol -> open lots, in the order they were created
    lots: dict[str, list[Lot]] = attrs.Factory(dict)
    gains: list[RealizedGain] = attrs.Factory(list)
    income: list[Income] = attrs.Factory(list)
    #: symbols whose dividends this account reinvests
    reinvest: set[str] = attrs.Factory(set)
    #: the model assigned to the account, and its rebalancing policy (the event, with its seq)
    model: str | None = None
    policy: "ev.PolicySet | None" = None
    policy_seq: int = 0
    #: running totals for conservation checks: basis that came in, basis that went out
    basis_in: Decimal = ZERO
    basis_out: Decimal = ZERO
    #: the splits this account held shares through, by the symbol of the day: (date, seq, new, old).
    #: Shares sold after a split count in the shares of a qualified dividend's ex-date (`tax_views.not_qualified`)
    splits: dict[str, list[tuple[dt.date, int, Decimal, Decimal]]] = attrs.Factory(dict)
    #: by purchase (`tax.purchase_of` a lot id), the shares a tax-free stock merger or a symbol change converted: by
    #: the symbol they became (sales before keep the old one), every split and merger (date, seq, new, old; a
    #: symbol change 1:1) they went through up to that change
    conversions: dict[str, dict[str, list[tuple[dt.date, int, Decimal, Decimal]]]] = attrs.Factory(dict)

    def held(self, symbol: str) -> Decimal:
        return sum((lot.quantity for lot in self.lots.get(symbol, ())), ZERO)

    def share_history(self, purchase: str, symbol: str) -> list[tuple[dt.date, int, Decimal, Decimal]]:
        """The splits, tax-free stock mergers and symbol changes (date, seq, new, old: `new` shares for `old`) that a
        purchase's shares, held under `symbol`, went through, oldest first: those up to the last change that made
        them `symbol`'s, then `symbol`'s splits after it; or, for shares bought as `symbol`, its splits."""
        splits = self.splits.get(symbol, [])
        converted = self.conversions.get(purchase, {}).get(symbol)
        if converted is None:
            return splits
        last = converted[-1][:2]
        return converted + [s for s in splits if s[:2] > last]

    def convert(self, purchase: str, old: str, new: str, day: dt.date, seq: int, n: Decimal, o: Decimal) -> None:
        """A purchase's shares held under `old` became `new` (n for o) on `day`, by event `seq`: their history goes
        with them (`share_history`)."""
        self.conversions.setdefault(purchase, {})[new] = self.share_history(purchase, old) + [(day, seq, n, o)]

    def open_lots(self) -> list[Lot]:
        return [lot for lots in self.lots.values() for lot in lots]


class Books:
    """All accounts, as folded so far. `keep_gains=False` keeps no history: no gain records, no income records
    (a replay that needs only holdings and cash, whose size then follows open lots, not the ledger's age)."""

    def __init__(self, *, keep_gains: bool = True):
        self.accounts: dict[str, Account] = {}
        self.keep_gains = keep_gains
        self.last_seq = 0
        self.as_of: dt.date | None = None
        #: events read by `fold` into these books (since a thaw): how much a snapshot here would save
        self.folded = 0
        #: payments owed, ordered by pay date (a heap)
        self.due: list[Payment] = []
        #: what each security event did: seq -> {account: a line saying how it was affected}
        self.effects: dict[int, dict[str, str]] = {}
        #: wash-sale state per owner; substantially identical groups; declared substitutes
        self.owners: dict[str, tax.OwnerTax] = {}
        self.identical: dict[str, str] = {}
        self.substitutes: dict[str, set[str]] = {}
        self._by_owner: dict[str, list[Account]] = {}
        self._by_owner_count = 0
        #: accounts the log opens later than the fold has reached, with the date (set by a timeline check): an
        #: event before an account's opening then says so, not that the account should be opened
        self.opens_later: dict[str, dt.date] = {}

    def accounts_of(self, owner: str) -> list[Account]:
        """The owner's accounts, in the order they opened (an index rebuilt when an account has opened since)."""
        if self._by_owner_count != len(self.accounts):
            index: dict[str, list[Account]] = {}
            for acct in self.accounts.values():
                index.setdefault(acct.owner, []).append(acct)
            self._by_owner, self._by_owner_count = index, len(self.accounts)
        return self._by_owner.get(owner, [])

    # -- the fold ---------------------------------------------------------
    def apply(self, rec: ev.Recorded) -> None:
        if self.due and self.due[0].pay_date <= rec.effective:
            self.settle(rec.effective)
        handler = _HANDLERS.get(type(rec.event))
        if handler is not None:
            handler(self, rec)
        if rec.seq > self.last_seq:
            self.last_seq = rec.seq
        self.as_of = rec.effective
        if self.due and self.due[0].pay_date <= rec.effective:
            self.settle(rec.effective)

    def settle(self, until: dt.date | None = None) -> None:
        """Pay every payment due on or before `until` (all of them when None)."""
        while self.due and (until is None or self.due[0].pay_date <= until):
            pay_dividend(self, heapq.heappop(self.due))

    def account(self, account_id: str, when: dt.date, doing: Doing) -> Account:
        acct = self.accounts.get(account_id)
        if acct is None:
            later = self.opens_later.get(account_id)
            if later is not None and later > when:
                raise UnknownAccount(f"cannot {say(doing)}: account {account_id} opens on {later}, after {when}")
            raise UnknownAccount(f"cannot {say(doing)}: account {account_id} is not open on {when} "
                                 f"(open it with `folio account open`)")
        if when < acct.opened:
            raise UnknownAccount(f"cannot {say(doing)}: account {account_id} opens on {acct.opened}, after {when}")
        return acct


def _opened(books: Books, rec: ev.Recorded) -> None:
    e: ev.AccountOpened = rec.event
    if e.account in books.accounts:
        raise AccountExists(f"account {e.account} is already open (since {books.accounts[e.account].opened})")
    books.accounts[e.account] = Account(
        account=e.account, owner=e.owner, tax_status=e.tax_status, currency=e.currency,
        lot_method=e.lot_method, overdraft=e.overdraft, opened=rec.effective,
    )


def _spend(acct: Account, amount: Decimal, doing: Doing) -> None:
    """Take cash out, refusing to go below zero where the account allows no overdraft."""
    if not acct.overdraft and acct.cash - amount < 0:
        raise InsufficientCash(f"cannot {say(doing)}: needs {amount:.2f} {acct.currency}, cash is {acct.cash:.2f}")
    acct.cash -= amount


def _deposit(books: Books, rec: ev.Recorded) -> None:
    e = rec.event
    acct = books.account(e.account, rec.effective, lambda: f"deposit {e.amount} in {e.account} on {rec.effective}")
    acct.cash += e.amount


def _interest(books: Books, rec: ev.Recorded) -> None:
    e = rec.event
    acct = books.account(e.account, rec.effective,
                         lambda: f"record interest {e.amount} in {e.account} on {rec.effective}")
    acct.cash += e.amount
    if books.keep_gains:
        acct.income.append(Income(symbol="", kind="interest", ex_date=rec.effective, pay_date=rec.effective,
                                  gross=e.amount, withheld=ZERO, reinvested=False, seq=rec.seq))


def _identical(books: Books, rec: ev.Recorded) -> None:
    e: ev.IdenticalDeclared = rec.event
    a, b = tax.group_of(books, e.symbol), tax.group_of(books, e.identical_to)
    if a == b:
        return
    keep, drop = min(a, b), max(a, b)
    for sym, group in list(books.identical.items()):
        if group == drop:
            books.identical[sym] = keep
    books.identical[e.symbol] = books.identical[e.identical_to] = keep
    books.identical.setdefault(keep, keep)
    for sym, subs in books.substitutes.items():  # a substitute that is now identical is one no longer
        subs.difference_update({x for x in subs if tax.group_of(books, x) == tax.group_of(books, sym)})


def _substitute(books: Books, rec: ev.Recorded) -> None:
    e: ev.SubstituteDeclared = rec.event
    if tax.group_of(books, e.symbol) == tax.group_of(books, e.substitute):
        raise DomainError(f"{e.substitute} cannot be a substitute for {e.symbol}: they are declared substantially identical")
    books.substitutes.setdefault(e.symbol, set()).add(e.substitute)


def _tax_rates(books: Books, rec: ev.Recorded) -> None:
    e: ev.TaxRatesSet = rec.event
    if not any(a.owner == e.owner for a in books.accounts.values()):
        raise DomainError(f"unknown owner {e.owner}: no account open on {rec.effective} names {e.owner} as its owner")
    tax.owner_tax(books, e.owner).rates = (e.short_term, e.long_term)


def _withdraw(books: Books, rec: ev.Recorded) -> None:
    e = rec.event
    doing = lambda: f"withdraw {e.amount} from {e.account} on {rec.effective}"  # noqa: E731
    _spend(books.account(e.account, rec.effective, doing), e.amount, doing)


def _fee(books: Books, rec: ev.Recorded) -> None:
    e = rec.event
    doing = lambda: f"charge a fee of {e.amount} to {e.account} on {rec.effective}"  # noqa: E731
    _spend(books.account(e.account, rec.effective, doing), e.amount, doing)


def _trade(books: Books, rec: ev.Recorded) -> None:
    e: ev.TradeExecuted = rec.event
    where = lambda: f"{e.quantity} {e.symbol} in {e.account} on {rec.effective}"  # noqa: E731
    acct = books.accounts.get(e.account)
    if acct is None or rec.effective < acct.opened:  # (the fold's hot path: `books.account`, its error only)
        acct = books.account(e.account, rec.effective, lambda: f"{e.side} {where()}")
    gross = e.quantity * e.price
    if e.side == "buy":
        cost = (gross + e.fees).quantize(CENT, ROUND_HALF_EVEN)  # round_cents, inlined
        left = acct.cash - cost
        if left < 0 and not acct.overdraft:
            _spend(acct, cost, lambda: f"buy {where()}")  # raises
        acct.cash = left
        lot = Lot(str(rec.seq), e.symbol, e.quantity, cost, rec.effective, rec.seq,
                  ((rec.seq, (bought, e.quantity, e.price)),), rec.effective)
        lots = acct.lots.get(e.symbol)
        if lots is None:
            acct.lots[e.symbol] = [lot]
        else:
            lots.append(lot)
        acct.basis_in += cost
        tax.on_acquisition(books, acct, lot, rec.effective)
        return
    lots = acct.lots.get(e.symbol)
    if not lots:
        raise InsufficientShares(f"cannot sell {where()}: none held")
    proceeds = round_cents(gross - e.fees)
    if proceeds < 0:
        raise DomainError(f"cannot sell {where()}: fees {e.fees} exceed the sale's value {round_cents(gross)}")
    method = e.lot_method or acct.lot_method
    if method == "min-tax" and not e.lots:  # it ranks lots by what each share nets after the sale's fees
        owner = books.owners.get(acct.owner)
        rates = owner.rates if owner else None
        chosen = select(lots, e.quantity, method, e.lots, where=where, price=e.price - e.fees / e.quantity,
                        day=rec.effective, rates=rates,
                        washed=tax.replaceable(books, acct, e.symbol, rec.effective) if rates is not None else None)
    else:
        chosen = select(lots, e.quantity, method, e.lots, where=where)
    losses: list = []
    if len(chosen) == 1:
        lot = chosen[0][0]
        dispose(books, acct, lot, chosen[0][1], proceeds, rec, "sale", losses)
        if lot.quantity <= 0:  # (no other lot was touched, and the lists hold no empty lot between events)
            drop_empty(acct, e.symbol)
    else:
        for (lot, quantity), lot_proceeds in zip(chosen, allocate(proceeds, [q for _, q in chosen])):
            dispose(books, acct, lot, quantity, lot_proceeds, rec, "sale", losses)
        drop_empty(acct, e.symbol)
    acct.cash += proceeds
    # only now, with every lot of this sale relieved, may the losses look for replacement shares:
    # a lot sold in the same sale is not held, so it cannot replace another of its lots
    if losses:
        tax.on_loss_sales(books, acct, losses)


def bought(quantity: Decimal, price: Decimal) -> str:
    """A purchase's origin line (written when a lot is read: a replay makes one per purchase)."""
    return f"bought {plain_text(quantity)} at {price_text(price)}"


def dispose(books: Books, acct: Account, lot: Lot, quantity: Decimal, proceeds: Decimal, rec: ev.Recorded, reason: str,
            losses: list | None = None) -> Decimal:
    """Take `quantity` out of a lot for `proceeds` and book the realized gain. Returns the basis relieved.

    A sale at a loss goes to the wash-sale rule, which may disallow it now or when a purchase comes
    (the caller collects the losses in `losses` to match them once the whole sale is done).
    """
    basis = relieve(lot, quantity)
    acct.basis_out += basis
    if books.keep_gains:
        record_gain(books, acct, lot, quantity, proceeds, basis, rec, reason)
    if proceeds < basis and reason == "sale" and acct.tax_status == "taxable":  # no loss is recognized elsewhere
        args = (lot, len(acct.gains) - 1, quantity, basis - proceeds, rec.effective, rec.seq, lot.hp_start)
        if losses is None:
            tax.on_loss_sale(books, acct, *args)
        else:
            losses.append(args)
    return basis


def record_gain(books: Books, acct: Account, lot: Lot, quantity: Decimal, proceeds: Decimal, basis: Decimal,
                rec: ev.Recorded, reason: str) -> None:
    if books.keep_gains:  # positional: a replay books one per lot sold
        start = lot.hp_start
        acct.gains.append(RealizedGain(
            lot.lot_id, lot.symbol, quantity, lot.acquired, rec.effective, proceeds, basis,
            "long" if is_long_term(start, rec.effective) else "short", reason, rec.seq, ZERO, "",
            start if start != lot.acquired else None))


def drop_empty(acct: Account, symbol: str) -> None:
    """Forget closed lots of a symbol (and the symbol, once nothing is left)."""
    lots = acct.lots.get(symbol)
    if lots is None:
        return
    remaining = [lot for lot in lots if lot.quantity > 0]
    if remaining:
        if len(remaining) != len(lots):
            acct.lots[symbol] = remaining
    else:
        del acct.lots[symbol]


def add_lot(acct: Account, lot: Lot) -> None:
    acct.lots.setdefault(lot.symbol, []).append(lot)


def pay_dividend(books: Books, p: Payment) -> None:
    """Pay a dividend on its pay date; an account that reinvests buys new shares with the net amount."""
    acct = books.accounts[p.account]
    net = p.gross - p.withheld
    acct.cash += net
    reinvested = p.symbol in acct.reinvest and p.reinvest_price is not None and net > 0
    if books.keep_gains:
        acct.income.append(Income(symbol=p.symbol, kind=p.kind, ex_date=p.ex_date, pay_date=p.pay_date,
                                  gross=p.gross, withheld=p.withheld, reinvested=reinvested, seq=p.seq, held=p.held))
    if reinvested:
        quantity = (net / p.reinvest_price).quantize(REINVEST_QUANTUM, rounding=ROUND_DOWN)
        if quantity > 0:
            acct.cash -= net
            acct.basis_in += net
            lot = Lot(lot_id=f"{p.seq}r", symbol=p.symbol, quantity=quantity, basis=net, acquired=p.pay_date,
                      order=p.seq, origin=((p.seq, f"reinvested dividend of {p.ex_date} at {p.reinvest_price}"),))
            add_lot(acct, lot)
            tax.on_acquisition(books, acct, lot, p.pay_date)


def _assigned(books: Books, rec: ev.Recorded) -> None:
    e: ev.ModelAssigned = rec.event
    books.account(e.account, rec.effective, f"assign model {e.model} to {e.account}").model = e.model


def _policy(books: Books, rec: ev.Recorded) -> None:
    e: ev.PolicySet = rec.event
    acct = books.account(e.account, rec.effective, f"set the policy of {e.account}")
    acct.policy, acct.policy_seq = e, rec.seq


def _reinvestment(books: Books, rec: ev.Recorded) -> None:
    e: ev.ReinvestmentSet = rec.event
    acct = books.account(e.account, rec.effective, f"set dividend reinvestment of {e.symbol} in {e.account}")
    (acct.reinvest.add if e.enabled else acct.reinvest.discard)(e.symbol)


_HANDLERS: dict[type, Callable[[Books, ev.Recorded], None]] = {
    ev.IdenticalDeclared: _identical,
    ev.SubstituteDeclared: _substitute,
    ev.TaxRatesSet: _tax_rates,
    ev.ReinvestmentSet: _reinvestment,
    ev.ModelAssigned: _assigned,
    ev.PolicySet: _policy,
    ev.AccountOpened: _opened,
    ev.CashDeposited: _deposit,
    ev.CashWithdrawn: _withdraw,
    ev.FeeCharged: _fee,
    ev.InterestReceived: _interest,
    ev.TradeExecuted: _trade,
}


def fold(records: Iterable[ev.Recorded], books: Books | None = None, *, voided: frozenset[int] | set[int] = frozenset(),
         until: dt.date | None = None) -> Books:
    """Fold records, already in fold order, into books (new ones unless given). Voided seqs are skipped.

    Payments due by `until` (every one when None) are settled at the end.
    """
    books = books if books is not None else Books()
    apply = books.apply
    n = 0
    if voided:
        for n, rec in enumerate(records, 1):
            if rec.seq not in voided:
                apply(rec)
    else:
        for n, rec in enumerate(records, 1):
            apply(rec)
    books.settle(until)
    books.folded += n
    return books


@attrs.frozen
class Refusal:
    """A new event the timeline cannot take, or an existing one a new event would break."""

    record: ev.Recorded
    error: DomainError
    is_new: bool


def check_timeline(
    records: Iterable[ev.Recorded],
    new_seqs: set[int],
    books: Books | None = None,
    *,
    voided: frozenset[int] | set[int] = frozenset(),
) -> tuple[Books, list[Refusal]]:
    """Fold a timeline that holds new events among recorded ones, collecting every refusal.

    A refused new event is skipped and the fold goes on, so one pass reports every
    bad row of an import. A recorded event that fails is one the new events made
    impossible (a backdated sale, a void of a buy); it is skipped too and reported.
    """
    books = books if books is not None else Books()
    refusals: list[Refusal] = []
    for rec in records:
        if rec.seq in voided:
            continue
        try:
            books.apply(rec)
        except DomainError as error:
            refusals.append(Refusal(record=rec, error=error, is_new=rec.seq in new_seqs))
    return books, refusals


from domain import corporate  # noqa: E402,F401  (registers the security-event handlers in _HANDLERS)
