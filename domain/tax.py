"""Wash sales across all of an owner's accounts, applied by the fold as purchases and loss sales arrive.

A loss on a sold lot is disallowed, in proportion to matched shares, when the owner acquires
substantially identical shares within 30 days before or after the sale (any of the owner's
accounts; the sold lot is never its own replacement). Losses are matched in the order of the
sales, replacement shares in the order they were acquired, one replacement share per loss share.
The disallowed loss goes into the matched replacement shares' basis (not when they sit in a
tax-deferred or tax-exempt account: then it is lost) and their holding period starts earlier by
the sold lot's holding period. A purchase after the sale changes the sale's gain record from the
purchase's date on, so as-of and known-at views show both truths at their points.
"""

from __future__ import annotations

import bisect
import datetime as dt
import operator
from decimal import ROUND_HALF_EVEN, Decimal

import attrs

from domain.lots import Lot
from domain.values import CENT, ZERO

WINDOW = dt.timedelta(days=30)
#: loss sales this recent restrict buying back (the 30 days after a sale, and the sale day itself)
RECENT = dt.timedelta(days=31)


@attrs.define(slots=True)
class LossSale:
    """A realized loss that replacement shares may still (partly) disallow."""

    seq: int
    sold: dt.date
    #: the symbol sold; its wash-sale group is looked up when matching, so a later declaration counts
    symbol: str
    account: str
    gain_index: int
    lot_id: str
    quantity: Decimal
    loss: Decimal
    held_days: int
    matched: Decimal = ZERO
    disallowed: Decimal = ZERO
    #: position among the owner's wash-sale entries (the order of the fold): orders entries of several symbols
    n: int = 0

    @property
    def unmatched(self) -> Decimal:
        return self.quantity - self.matched


@attrs.define(slots=True)
class Acquisition:
    """A purchase that may serve as replacement shares (its lot's `repl` says how many still can)."""

    day: dt.date
    account: str
    lot: Lot
    n: int = 0


@attrs.define(slots=True)
class OwnerTax:
    rates: tuple[Decimal, Decimal] | None = None
    losses: list[LossSale] = attrs.Factory(list)
    acquisitions: list[Acquisition] = attrs.Factory(list)
    #: loss sales (any, matched or not) of the last 31 days: what restricts buying back
    recent_losses: list[LossSale] = attrs.Factory(list)
    #: the same losses and acquisitions by the symbol they were recorded under (derived: `reindex` rebuilds
    #: them), so a purchase or sale scans its own group's entries, not every entry of the owner's window
    losses_of: dict[str, list[LossSale]] = attrs.Factory(dict)
    acquisitions_of: dict[str, list[Acquisition]] = attrs.Factory(dict)
    counter: int = 0

    def add_loss(self, sale: LossSale) -> None:
        self.counter += 1
        sale.n = self.counter
        self.losses.append(sale)
        self.losses_of.setdefault(sale.symbol, []).append(sale)

    def add_acquisition(self, acq: Acquisition) -> None:
        self.counter += 1
        acq.n = self.counter
        self.acquisitions.append(acq)
        self.acquisitions_of.setdefault(acq.lot.symbol, []).append(acq)

    def reindex(self) -> None:
        """Rebuild the by-symbol index from the lists, in their order (after a snapshot is thawed)."""
        self.losses_of, self.acquisitions_of, self.counter = {}, {}, 0
        losses, acquisitions = self.losses, self.acquisitions
        self.losses, self.acquisitions = [], []
        for sale in losses:
            self.add_loss(sale)
        for acq in acquisitions:
            self.add_acquisition(acq)


def group_of(books, symbol: str) -> str:
    return books.identical.get(symbol, symbol)


def owner_tax(books, owner: str) -> OwnerTax:
    ot = books.owners.get(owner)
    if ot is None:
        ot = books.owners[owner] = OwnerTax()
    return ot


def on_acquisition(books, acct, lot: Lot, day: dt.date) -> None:
    """A purchase: it may replace shares of recent loss sales; later loss sales may use it too."""
    ot = books.owners.get(acct.owner) or owner_tax(books, acct.owner)
    lot.repl = lot.quantity
    cutoff = day - WINDOW
    if ot.acquisitions and ot.acquisitions[0].day < cutoff:
        _drop_before(ot.acquisitions, cutoff, _acquired)
    if ot.losses and ot.losses[0].sold < cutoff:
        _drop_before(ot.losses, cutoff, _sold)
    ot.add_acquisition(Acquisition(day=day, account=acct.account, lot=lot))
    if not ot.losses:
        return
    account, mine = acct.account, purchase_of(lot.lot_id)
    for loss in _in_group(books, ot.losses_of, lot.symbol, cutoff, _sold, _live_losses):
        if lot.repl <= 0:
            break
        if loss.quantity > loss.matched and not (loss.account == account and _is_part(loss.lot_id, mine)):
            _match(books, loss, acct, lot)


# The fold goes forward in time, so purchases and loss sales arrive in date order: what falls out of the
# window is a prefix, dropped in place (found by bisection, the key read at C speed). Spent entries (no
# replacement shares left, or a fully matched loss) stay until then and are skipped.
_acquired = operator.attrgetter("day")
_sold = operator.attrgetter("sold")


def _drop_before(entries: list, cutoff: dt.date, day_of) -> None:
    n = bisect.bisect_left(entries, cutoff, key=day_of)
    if n:
        del entries[:n]


def _live_losses(entries: list["LossSale"]) -> list["LossSale"]:
    """The losses not yet fully matched."""
    return [s for s in entries if s.quantity > s.matched]


def _live_acquisitions(entries: list["Acquisition"]) -> list["Acquisition"]:
    """The purchases that may still replace shares."""
    return [a for a in entries if a.lot.repl > 0 and a.lot.quantity > 0]


def _in_group(books, index: dict[str, list], symbol: str, cutoff: dt.date, day_of, live) -> list:
    """The window's live entries of every symbol in `symbol`'s group, in the order they were recorded.

    Losses are keyed by the symbol sold, acquisitions by their lot's current symbol (a rename moves them,
    see `on_rename`), so an entry is in the group exactly when its key is: the group is looked up now.
    A spent entry (a fully matched loss, a purchase with no replacement shares left) never comes back to life,
    so it leaves the index here (the owner's lists keep it until it falls out of the window): a busy account's
    scans then walk only what can still match."""
    if not books.identical:  # the common case, and the fold's hot path: a group of one symbol
        entries = index.get(symbol)
        if not entries:
            return ()
        if day_of(entries[0]) < cutoff:
            _drop_before(entries, cutoff, day_of)
        kept = live(entries)
        if len(kept) != len(entries):
            entries[:] = kept
        return kept
    group = group_of(books, symbol)
    members = [group] if not books.identical else [m for m in group_members(books, group) if group_of(books, m) == group]
    lists = []
    for m in members:
        entries = index.get(m)
        if entries:
            _drop_before(entries, cutoff, day_of)
            kept = live(entries)  # a copy too: matching may add entries while the caller walks them
            if len(kept) != len(entries):
                entries[:] = kept
            if kept:
                lists.append(kept)
    if len(lists) == 1:
        return lists[0]
    return sorted((e for entries in lists for e in entries), key=lambda e: e.n)


def on_rename(books, old: str, new: str) -> None:
    """Lots of `old` now carry `new`: their acquisitions move to the new symbol's entries, and its loss sales are
    recorded under the new symbol (each in recorded order)."""
    for ot in books.owners.values():
        moved = ot.acquisitions_of.pop(old, None)
        if moved:
            ot.acquisitions_of[new] = sorted(ot.acquisitions_of.get(new, []) + moved, key=lambda a: a.n)
        for sale in ot.losses + ot.recent_losses:  # (the two lists share sales)
            if sale.symbol == old:
                sale.symbol = new
        moved = ot.losses_of.pop(old, None)
        if moved:
            ot.losses_of[new] = sorted(ot.losses_of.get(new, []) + moved, key=lambda l: l.n)


def purchase_of(lot_id: str) -> str:
    """The id of the purchase a lot is (a part of): a wash sale splits a lot into `<id>` and `<id>w<seq>`.
    Two parts of one purchase in one account never replace each other."""
    return lot_id.split("w", 1)[0]


def _is_part(lot_id: str, purchase: str) -> bool:
    """`purchase_of(lot_id) == purchase`, without making a string (a purchase's id holds no "w")."""
    return lot_id.startswith(purchase) and (len(lot_id) == len(purchase) or lot_id[len(purchase)] == "w")


def on_loss_sale(books, acct, lot: Lot, gain_index: int, quantity: Decimal, loss: Decimal, day: dt.date, seq: int,
                 hp_start: dt.date | None = None) -> None:
    """A sale at a loss: earlier purchases within 30 days may disallow it now; later ones when they come.

    `hp_start` is the sold shares' holding-period start at the moment they were sold."""
    on_loss_sales(books, acct, [(lot, gain_index, quantity, loss, day, seq, hp_start)])


def on_loss_sales(books, acct, losses: list[tuple]) -> None:
    """The loss lots of one sale (one symbol, one day), each as `on_loss_sale`'s arguments, in the order sold.

    One scan of the window's purchases serves them all: a purchase spent by one loss is skipped by the next
    (nothing a match does adds a purchase), so this is `on_loss_sale` for each in turn, done once."""
    ot = books.owners.get(acct.owner) or owner_tax(books, acct.owner)
    day = losses[0][4]
    cutoff = day - WINDOW
    if ot.acquisitions and ot.acquisitions[0].day < cutoff:
        _drop_before(ot.acquisitions, cutoff, _acquired)
    recent = ot.recent_losses
    if recent and recent[0].sold < day - RECENT:
        _drop_before(recent, day - RECENT, _sold)
    account, accounts = acct.account, books.accounts
    # the window's purchases of the group, each with its account's books and, in the seller's account, the
    # purchase it is (a part of): a copy, from whose head spent purchases are dropped as the losses go
    candidates = [(acq.lot, accounts[acq.account], purchase_of(acq.lot.lot_id) if acq.account == account else None)
                  for acq in _in_group(books, ot.acquisitions_of, losses[0][0].symbol, cutoff, _acquired,
                                       _live_acquisitions)]
    for lot, gain_index, quantity, loss, day, seq, hp_start in losses:
        sale = LossSale(seq, day, lot.symbol, account, gain_index, lot.lot_id, quantity, loss,
                        (day - (hp_start or lot.hp_start)).days)
        if candidates:
            mine, spent, live_seen = purchase_of(lot.lot_id), 0, False
            for replacement, holder, purchase in candidates:
                if replacement.repl > 0 and replacement.quantity > 0:
                    live_seen = True
                    if replacement is not lot and purchase != mine:
                        _match(books, sale, holder, replacement)
                        if sale.matched == sale.quantity:
                            break
                elif not live_seen:
                    spent += 1
            if spent:
                del candidates[:spent]
        if sale.quantity > sale.matched:  # (a fully matched loss restricts no purchase, and no purchase matches it)
            recent.append(sale)
            ot.add_loss(sale)


_DAYS: dict[int, dt.timedelta] = {}  # holding periods a wash sale carries over, by length: made once each


def _match(books, sale: LossSale, acct, lot: Lot) -> None:
    """Match as many of the sale's loss shares as the lot can replace; move the disallowed loss."""
    m = sale.quantity - sale.matched  # min(unmatched, replaceable, held), written out: the fold's hottest path
    if lot.repl < m:
        m = lot.repl
    if lot.quantity < m:
        m = lot.quantity
    if m <= 0:
        return
    matched = sale.matched = sale.matched + m
    total = sale.loss if matched == sale.quantity else (sale.loss * matched / sale.quantity).quantize(CENT, ROUND_HALF_EVEN)
    disallowed = total - sale.disallowed
    sale.disallowed = total
    if books.keep_gains:
        seller = books.accounts[sale.account]
        g = seller.gains[sale.gain_index]
        seller.gains[sale.gain_index] = type(g)(g.lot_id, g.symbol, g.quantity, g.acquired, g.sold, g.proceeds,
                                                g.cost_basis, g.term, g.reason, g.seq, g.adjustment + disallowed, "W",
                                                g.held_from)  # attrs.evolve, written out (5x faster)
    part = _split_off(acct, lot, m, sale.seq) if m != lot.quantity else lot
    part.repl = ZERO
    held = _DAYS.get(sale.held_days)
    if held is None:
        held = _DAYS[sale.held_days] = dt.timedelta(days=sale.held_days)
    new_start = part.acquired - held
    if acct.tax_status == "taxable":
        part.basis += disallowed
        acct.basis_in += disallowed
    if new_start < part.hp_start:
        part.hp_start = new_start
    part.origin += ((sale.seq, (washed, disallowed, sale.lot_id, sale.seq, new_start, acct.tax_status)),)


def washed(disallowed: Decimal, lot_id: str, seq: int, held_from: dt.date, tax_status: str) -> str:
    """A wash sale's line in its replacement shares' origin (written when the lot is read)."""
    if tax_status == "taxable":
        return f"wash sale: +{disallowed} disallowed loss of lot {lot_id} (sold seq {seq}); held from {held_from}"
    return f"wash sale: {disallowed} loss of lot {lot_id} (sold seq {seq}) disallowed and lost ({tax_status})"


def _split_off(acct, lot: Lot, quantity: Decimal, seq: int) -> Lot:
    """The part of `lot` holding `quantity` shares (fewer than it holds), split into a lot of its own."""
    basis = (lot.basis * quantity / lot.quantity).quantize(CENT, ROUND_HALF_EVEN)  # round_cents, inlined
    # A lot and a sale meet only while one event is folded (the sale's, or the lot's purchase), so the parts
    # split off a lot for one sale are made together: the first is `<lot>w<seq>`, the next `<lot>w<seq>-2`...
    # and the lot itself remembers how many it has made for the sale it last met.
    last_seq, parts = lot.last_split
    parts = parts + 1 if last_seq == seq else 1
    lot.last_split = (seq, parts)
    lot_id = f"{lot.lot_id}w{seq}" if parts == 1 else f"{lot.lot_id}w{seq}-{parts}"
    part = Lot(lot_id, lot.symbol, quantity, basis, lot.acquired, lot.order, lot.origin, lot.hp_start)
    lot.quantity -= quantity
    lot.basis -= basis
    lot.repl -= quantity
    lots = acct.lots[lot.symbol]
    at = lot.at  # where the lot was when last split (a sale's losses often split one lot in turn): else, look
    if at >= len(lots) or lots[at] is not lot:
        at = lot.at = lots.index(lot)
    lots.insert(at + 1, part)
    return part


def replaceable(books, acct, symbol: str, day: dt.date):
    """For ranking lots to sell (`min-tax`): a function giving, for a lot, how many shares of the owner's other
    purchases of the symbol's group in the 30 days up to `day` could replace its loss if it were sold now (parts of
    its own purchase in its account never do). An estimate for the ranking; the fold then applies the rule."""
    ot = books.owners.get(acct.owner)
    if ot is None or not ot.acquisitions:
        return None
    group, cutoff = group_of(books, symbol), day - WINDOW
    entries = [a for a in ot.acquisitions if cutoff <= a.day <= day and a.lot.repl > 0 and a.lot.quantity > 0
               and group_of(books, a.lot.symbol) == group]
    if not entries:
        return None

    def shares(lot: Lot) -> Decimal:
        own = purchase_of(lot.lot_id)
        return sum((min(a.lot.repl, a.lot.quantity) for a in entries
                    if a.lot is not lot and not (a.account == acct.account and purchase_of(a.lot.lot_id) == own)), ZERO)
    return shares


def restrictions(books, owner: str, day: dt.date) -> list[tuple[str, dt.date, LossSale]]:
    """(group, last restricted day, the loss sale) for loss sales of the 30 days up to `day` whose loss a
    purchase would still disallow (a fully matched loss restricts nothing more)."""
    ot = books.owners.get(owner)
    if ot is None:
        return []
    out = []
    for sale in ot.recent_losses:
        until = sale.sold + WINDOW
        if sale.sold <= day <= until and sale.unmatched > 0:
            out.append((group_of(books, sale.symbol), until, sale))
    return out


def group_members(books, group: str) -> list[str]:
    return sorted({group} | {s for s, g in books.identical.items() if g == group})
