"""A stateful test: random commands against the real ledger and against a naive model of the books.

The model (`Model`) is written from the rules in README.md, not from the code: it keeps every accepted
command, and decides each new one by refolding the *whole* timeline (effective date, then security
events before account events, then seq) with the new command in its place; a command is refused when
any event of that timeline becomes impossible (an unknown or not-yet-open account, a second opening,
cash below zero without overdraft, a sale of shares not held or of a lot not open, fees above the sale).
Numbers are exact fractions, rounded half to even to the cent only where the rules say so:

- a buy costs round(qty × price + fees), which is the lot's basis; a sale brings round(qty × price − fees);
- relief: FIFO (date, then seq), LIFO (the reverse), HIFO (highest basis per share first), specific lots,
  or min-tax (tax per share at the owner's rates, else short-term losses, long-term losses, long-term
  gains, short-term gains);
- a partial relief takes round(basis × shares / lot shares) and leaves the exact remainder in the lot;
  proceeds are split over the lots sold in proportion to shares, the last lot taking the remainder;
- wash sales across an owner's accounts: a loss on a sale in a taxable account (a loss inside a
  tax-deferred or tax-exempt account is never deductible, so never washed) is disallowed share for share against substantially
  identical shares (the same symbol, or one declared identical by then: declarations only widen a group)
  acquired within 30 days before or after (losses in sale order, replacement shares in
  purchase order; never the sold lot itself nor another part of the same purchase (a lot split by an
  earlier wash sale, `<lot>` and `<lot>w<seq>`); shares sold in the same sale are gone, so they replace
  nothing); the disallowed total after k of n shares is round(loss × k / n), the whole loss once all are
  matched; a partly matched replacement lot is split (the matched part is `<lot>w<sale seq>`, right after
  it); the disallowed loss goes into the part's basis in a taxable account (lost elsewhere) and its
  holding period starts earlier by the sold shares' holding period (as it was when they were sold);
- voids take an event out of every fold known from the void on; a void cannot be voided, an opening only once every
  other event of its account is (then the account may be opened again).

Rules record commands through `commands.service` on a real SQLite file; after every step the books
(positions, lots with holding-period starts, cash, realized gains with wash-sale adjustments, interest
income) must equal the model's, folded for all accounts and for each account's owner alone, and a
`check_point` rule compares any point in both time axes (as of a date, as known at an earlier seq). The
same machine runs a second time with snapshots rebuilt after every step, so the write path and every read
start from (possibly stale) snapshots. `test_wash_sale_heavy_histories_match_the_model` crowds short
histories into the wash-sale window, where the general machine rarely goes.

Examples are derandomized (the same on every run); FOLIO_HYPOTHESIS_DEEP=10 runs ten times as many, fresh.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from decimal import Decimal
from fractions import Fraction as F

from hypothesis import event, given, note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from commands import service
from ledger.store import EventStore
from projections import views
from projections.replay import Point, build_snapshots, load_books
from tests import strategies as S
from tests.conftest import TickingClock

WINDOW = 30
ZERO = F(0)


def cents(x: F) -> F:
    """Round half to even to the cent."""
    scaled = F(x) * 100
    whole, rest = divmod(scaled, 1)
    if rest > F(1, 2) or (rest == F(1, 2) and whole % 2 == 1):
        whole += 1
    return F(int(whole), 100)


def anniversary(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def long_term(start: dt.date, sold: dt.date) -> bool:
    return sold > anniversary(start)


class Refuse(Exception):
    pass


class MLot:
    def __init__(self, lot_id, symbol, qty, basis, acquired, order, hp_start=None, repl=ZERO):
        self.id, self.symbol, self.qty, self.basis = lot_id, symbol, F(qty), F(basis)
        self.acquired, self.order, self.hp_start, self.repl = acquired, order, hp_start or acquired, F(repl)

    def __repr__(self):
        return f"lot {self.id} {self.symbol} {float(self.qty)} @ basis {float(self.basis)}"


class MAccount:
    def __init__(self, name, owner, tax_status, method, overdraft, opened):
        self.name, self.owner, self.taxable = name, owner, tax_status == "taxable"
        self.method, self.overdraft, self.opened = method, overdraft, opened
        self.cash = ZERO
        self.lots: list[MLot] = []
        self.gains: list[dict] = []
        self.interest: list[tuple] = []


class MLoss:
    def __init__(self, seq, sold, symbol, gain, qty, loss, held):
        self.seq, self.sold, self.symbol, self.gain = seq, sold, symbol, gain
        self.qty, self.loss, self.held = qty, loss, held
        self.matched = self.disallowed = ZERO

    @property
    def unmatched(self):
        return self.qty - self.matched


class MOwner:
    def __init__(self):
        self.rates = None
        self.losses: list[MLoss] = []
        self.acquisitions: list[tuple[dt.date, str, MLot]] = []


class MBooks:
    """One fold of the model's timeline."""

    def __init__(self):
        self.accounts: dict[str, MAccount] = {}
        self.owners: dict[str, MOwner] = {}
        self.groups: list[set[str]] = []

    def owner(self, name) -> MOwner:
        return self.owners.setdefault(name, MOwner())

    def identical(self, a, b) -> bool:
        return a == b or any(a in g and b in g for g in self.groups)

    def account(self, name, day) -> MAccount:
        acct = self.accounts.get(name)
        if acct is None or day < acct.opened:
            raise Refuse(f"{name} is not open on {day}")
        return acct

    @staticmethod
    def spend(acct: MAccount, amount: F):
        if not acct.overdraft and acct.cash - amount < 0:
            raise Refuse(f"{acct.name}: cash {float(acct.cash)} < {float(amount)}")
        acct.cash -= amount

    def apply(self, seq: int, c: S.Command):
        k, day = c.kind, c.day
        if k == "open":
            if c.account in self.accounts:
                raise Refuse(f"{c.account} is already open")
            self.accounts[c.account] = MAccount(c.account, c.owner, c.tax_status, c.method, c.overdraft, day)
        elif k == "rates":
            if not any(a.owner == c.account for a in self.accounts.values()):
                raise Refuse(f"no account of {c.account} is open")
            self.owner(c.account).rates = tuple(F(r) for r in c.rates)
        elif k == "identical":
            merged = {c.symbol, c.other}
            for g in [g for g in self.groups if c.symbol in g or c.other in g]:
                merged |= g
                self.groups.remove(g)
            self.groups.append(merged)
        elif k in ("deposit", "interest"):
            acct = self.account(c.account, day)
            acct.cash += F(c.amount)
            if k == "interest":
                acct.interest.append((day, F(c.amount), seq))
        elif k in ("withdraw", "fee"):
            self.spend(self.account(c.account, day), F(c.amount))
        elif k == "buy":
            acct = self.account(c.account, day)
            cost = cents(F(c.quantity) * F(c.price) + F(c.fees))
            self.spend(acct, cost)
            lot = MLot(str(seq), c.symbol, c.quantity, cost, day, seq)
            acct.lots.append(lot)
            self.acquired(acct, lot, day)
        elif k == "sell":
            self.sell(seq, c)
        else:
            raise AssertionError(k)

    # -- sales -------------------------------------------------------------------------
    def order(self, lots, method, price, day, rates):
        if method == "fifo":
            return sorted(lots, key=lambda l: (l.acquired, l.order))
        if method == "lifo":
            return sorted(lots, key=lambda l: (l.acquired, l.order), reverse=True)
        if method == "hifo":
            return sorted(lots, key=lambda l: (-(l.basis / l.qty), l.acquired, l.order))
        assert method == "min-tax"

        def category(l):
            gain = price - l.basis / l.qty
            lt = long_term(l.hp_start, day)
            return ((1 if lt else 0) if gain < 0 else (2 if lt else 3), gain, l.acquired, l.order)

        if rates is None:
            return sorted(lots, key=category)
        return sorted(lots, key=lambda l: ((rates[1] if long_term(l.hp_start, day) else rates[0]) * (price - l.basis / l.qty),
                                           category(l)))

    def sell(self, seq, c: S.Command):
        acct = self.account(c.account, c.day)
        qty, price, day = F(c.quantity), F(c.price), c.day
        lots = [l for l in acct.lots if l.symbol == c.symbol]
        if not lots:
            raise Refuse(f"no {c.symbol} held")
        proceeds = cents(qty * price - F(c.fees))
        if proceeds < 0:
            raise Refuse("fees above the sale")
        if qty > sum(l.qty for l in lots):
            raise Refuse("not enough shares")
        chosen = []
        if c.picks:
            for lot_id, q in c.picks:
                lot = next((l for l in lots if l.id == lot_id), None)
                if lot is None or F(q) > lot.qty:
                    raise Refuse(f"lot {lot_id} cannot give {q}")
                chosen.append((lot, F(q)))
        else:
            owner = self.owners.get(acct.owner)
            rest = qty
            for lot in self.order(lots, c.method or acct.method, price, day, owner.rates if owner else None):
                if rest <= 0:
                    break
                take = min(lot.qty, rest)
                chosen.append((lot, take))
                rest -= take
        total = sum(q for _, q in chosen)
        shares = [cents(proceeds * q / total) for _, q in chosen[:-1]]
        shares.append(proceeds - sum(shares))
        losses = []
        for (lot, q), part in zip(chosen, shares):
            relieved = lot.basis if q == lot.qty else cents(lot.basis * q / lot.qty)
            lot.qty -= q
            lot.basis -= relieved
            gain = dict(lot_id=lot.id, symbol=lot.symbol, quantity=q, acquired=lot.acquired, sold=day, proceeds=part,
                        cost_basis=relieved, term="long" if long_term(lot.hp_start, day) else "short", seq=seq,
                        adjustment=ZERO, code="")
            acct.gains.append(gain)
            if part < relieved and acct.taxable:  # a loss inside a tax-deferred or exempt account is never deductible
                losses.append(MLoss(seq, day, lot.symbol, gain, q, relieved - part, (day - lot.hp_start).days))
                losses[-1].lot = lot
        acct.lots = [l for l in acct.lots if l.qty > 0]
        acct.cash += proceeds
        owner = self.owner(acct.owner)
        for loss in losses:  # after every share of the sale is gone
            for aday, aname, alot in owner.acquisitions:
                if loss.unmatched <= 0:
                    break
                if (aday >= day - dt.timedelta(days=WINDOW) and self.identical(alot.symbol, loss.symbol)
                        and not (aname == c.account and alot.id.split("w")[0] == loss.lot.id.split("w")[0])):
                    self.match(loss, self.accounts[aname], alot)
            if loss.unmatched > 0:
                owner.losses.append(loss)

    # -- wash sales --------------------------------------------------------------------
    def acquired(self, acct: MAccount, lot: MLot, day: dt.date):
        lot.repl = lot.qty
        owner = self.owner(acct.owner)
        owner.acquisitions.append((day, acct.name, lot))
        for loss in owner.losses:
            if lot.repl <= 0:
                break
            if loss.unmatched > 0 and loss.sold >= day - dt.timedelta(days=WINDOW) and self.identical(lot.symbol, loss.symbol):
                self.match(loss, acct, lot)

    def match(self, loss: MLoss, acct: MAccount, lot: MLot):
        m = min(loss.unmatched, lot.repl, lot.qty)
        if m <= 0:
            return
        loss.matched += m
        total = loss.loss if loss.matched == loss.qty else cents(loss.loss * loss.matched / loss.qty)
        now = total - loss.disallowed
        loss.disallowed = total
        loss.gain["adjustment"] += now
        loss.gain["code"] = "W"
        if m == lot.qty:
            part = lot
        else:
            basis = cents(lot.basis * m / lot.qty)
            taken = {l.id for l in acct.lots}
            part_id, n = f"{lot.id}w{loss.seq}", 2
            while part_id in taken:
                part_id, n = f"{lot.id}w{loss.seq}-{n}", n + 1
            part = MLot(part_id, lot.symbol, m, basis, lot.acquired, lot.order, lot.hp_start)
            lot.qty, lot.basis, lot.repl = lot.qty - m, lot.basis - basis, lot.repl - m
            at = next(i for i, l in enumerate(acct.lots) if l is lot)
            acct.lots.insert(at + 1, part)
        part.repl = ZERO
        if acct.taxable:
            part.basis += now
        part.hp_start = min(part.hp_start, part.acquired - dt.timedelta(days=loss.held))


class Model:
    """Every accepted command, by seq; any point of the books is a fold of them."""

    def __init__(self):
        self.rows: list[S.Command] = []  # seq = index + 1

    @property
    def head(self) -> int:
        return len(self.rows)

    def fold(self, rows=None, as_of=None, known=None) -> MBooks:
        rows = self.rows if rows is None else rows
        known = len(rows) if known is None else known
        voided = {c.target for seq, c in enumerate(rows[:known], 1) if c.kind == "void"}
        live = [(seq, c) for seq, c in enumerate(rows[:known], 1)
                if c.kind != "void" and seq not in voided and (as_of is None or c.day <= as_of)]
        live.sort(key=lambda sc: (sc[1].day, {"identical": 0, "open": 1}.get(sc[1].kind, 2), sc[0]))
        books = MBooks()
        for seq, c in live:
            books.apply(seq, c)
        return books

    def accepts(self, commands) -> bool:
        """Would the whole timeline still fold with these commands recorded (a void: with its target voided)?"""
        if len(commands) == 1 and commands[0].kind == "void":
            t = commands[0].target
            if not 1 <= t <= self.head:
                return False
            target = self.rows[t - 1]
            voided = {c.target for c in self.rows if c.kind == "void"}
            if target.kind == "void" or t in voided:
                return False
            if target.kind == "open" and any(c.account == target.account and c.kind not in ("void", "open")
                                             and seq not in voided for seq, c in enumerate(self.rows, 1)):
                return False  # an opening is voided only once nothing else of its account is left
        try:
            self.fold(self.rows + list(commands))
        except Refuse as e:
            note(f"model refuses: {e}")
            return False
        return True


def real_state(books, account: str) -> dict:
    acct = books.accounts[account]
    return {
        "cash": F(acct.cash),
        "positions": [(p.symbol, F(p.quantity), F(p.cost_basis)) for p in views.positions(acct)],
        "lots": sorted((l.lot_id, l.symbol, F(l.quantity), F(l.cost_basis), l.acquired, l.hp_start) for l in views.lots(acct)),
        "gains": sorted((g.seq, g.lot_id, g.symbol, F(g.quantity), g.acquired, g.sold, F(g.proceeds), F(g.cost_basis),
                         g.term, F(g.adjustment), g.code) for g in views.gains(acct)),
        "interest": [(i.pay_date, F(i.gross), i.seq) for i in acct.income if i.kind == "interest"],
    }


def model_state(books: MBooks, account: str) -> dict:
    acct = books.accounts[account]
    positions = {}
    for l in acct.lots:
        q, b = positions.get(l.symbol, (ZERO, ZERO))
        positions[l.symbol] = (q + l.qty, b + l.basis)
    return {
        "cash": acct.cash,
        "positions": [(sym, q, b) for sym, (q, b) in sorted(positions.items())],
        "lots": sorted((l.id, l.symbol, l.qty, l.basis, l.acquired, l.hp_start) for l in acct.lots),
        "gains": sorted((g["seq"], g["lot_id"], g["symbol"], g["quantity"], g["acquired"], g["sold"], g["proceeds"],
                         g["cost_basis"], g["term"], g["adjustment"], g["code"]) for g in acct.gains),
        "interest": acct.interest,
    }


def compare(store: EventStore, model: Model, point: Point) -> None:
    """The ledger's books at a point equal the model's: for all accounts, and for each account on its own."""
    books = model.fold(as_of=point.as_of, known=point.known_seq)
    everything = load_books(store, point)
    assert sorted(everything.accounts) == sorted(books.accounts), f"accounts at {point}"
    for account in books.accounts:
        expected = model_state(books, account)
        for scope, real in (("all accounts", everything), ("its owner's accounts", load_books(store, point, accounts=[account]))):
            actual = real_state(real, account)
            if actual != expected:
                for key in expected:
                    if actual[key] != expected[key]:
                        note(f"{account} {key} at {point}, folded with {scope}:\n  ledger: {actual[key]}\n  model:  {expected[key]}")
            assert actual == expected, f"{account} at {point}, folded with {scope}: see the notes"
        # a fold without gain or income history (positions, lots, cash; the write path's check) agrees on the rest
        holdings = real_state(load_books(store, point, accounts=[account], keep_gains=False), account)
        assert holdings["interest"] == []
        assert {k: v for k, v in holdings.items() if k not in ("gains", "interest")} == \
            {k: v for k, v in expected.items() if k not in ("gains", "interest")}, f"{account} at {point}, holdings only"


def submit_both(store: EventStore, model: Model, *commands: S.Command) -> bool:
    """Give commands to the ledger and to the model; they must agree on whether they are recorded."""
    expected = model.accepts(commands)
    head = store.head()[0]
    recorded = S.submit(store, commands)
    note(f"{'ok ' if recorded else 'no '} {' + '.join(map(str, commands))}")
    event(f"{'+'.join(c.kind for c in commands)}: {'recorded' if recorded else 'refused'}")
    assert recorded == expected, (
        f"the ledger {'recorded' if recorded else 'refused'} {' + '.join(map(str, commands))}, "
        f"the model {'accepts' if expected else 'refuses'} it")
    if recorded:
        model.rows.extend(commands)
        assert store.head()[0] == head + len(commands) == model.head
    return recorded


class LedgerMachine(RuleBasedStateMachine):
    """Commands go to the real ledger and to the model; both must agree on what is refused and on the books."""

    snapshots = False

    def __init__(self):
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="folio-stateful-", dir=S.TMP_ROOT)
        self.store = EventStore.create(os.path.join(self.folder, "ledger.db"), clock=TickingClock())
        self.model = Model()
        self.thresholds = (service.STATE_EVERY, service.SNAPSHOT_EVERY)
        if self.snapshots:  # the write path snapshots its base and its result after every command
            service.STATE_EVERY = service.SNAPSHOT_EVERY = 1

    def teardown(self):
        service.STATE_EVERY, service.SNAPSHOT_EVERY = self.thresholds
        self.teardown_statistics()
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the one way in ------------------------------------------------------------------
    def submit(self, *commands: S.Command) -> None:
        submit_both(self.store, self.model, *commands)
        if self.snapshots:
            build_snapshots(self.store, every=2)
            for account in self.store.account_owners():
                build_snapshots(self.store, [account], every=3)
                build_snapshots(self.store, [account], every=2, keep_gains=False)

    def compare(self, point: Point) -> None:
        compare(self.store, self.model, point)

    # -- rules ---------------------------------------------------------------------------
    @initialize(accounts=st.lists(st.sampled_from(S.ACCOUNTS), min_size=1, max_size=3, unique=True), data=st.data())
    def open_some_accounts_with_cash(self, accounts, data):
        for account in accounts:
            self.submit(S.draw_open(data, account, S.FIRST_DAY))
            self.submit(S.Command("deposit", S.FIRST_DAY, account, amount=Decimal("5000")))

    @rule(kind=st.sampled_from(["open", "rates", "identical"]), day=S.days, data=st.data())
    def open_account_set_rates_or_declare_identical(self, kind, day, data):
        """Open an account, set an owner's tax rates, or declare two symbols substantially identical."""
        if kind == "open":
            self.submit(S.draw_open(data, data.draw(st.sampled_from(S.ACCOUNTS), label="account"), day))
        elif kind == "rates":
            self.submit(S.Command("rates", day, data.draw(st.sampled_from(sorted(set(S.OWNERS.values()))), label="owner"),
                                  rates=data.draw(st.sampled_from(S.RATES), label="rates")))
        else:
            symbols = data.draw(st.permutations(S.SYMBOLS), label="symbols")
            self.submit(S.Command("identical", day, symbol=symbols[0], other=symbols[1]))

    @rule(kind=st.sampled_from(["deposit", "deposit", "withdraw", "fee", "interest"]), account=st.sampled_from(S.ACCOUNTS),
          day=S.days, data=st.data())
    def move_cash(self, kind, account, day, data):
        amounts = S.DEPOSITS if kind == "deposit" else S.SPENDS
        self.submit(S.Command(kind, day, account, amount=data.draw(st.sampled_from(amounts))))

    @rule(account=st.sampled_from(S.ACCOUNTS), symbol=S.symbol_choices, day=S.days, quantity=S.quantities,
          price=S.prices, fees=S.fees)
    def buy(self, account, symbol, day, quantity, price, fees):
        self.submit(S.Command("buy", day, account, symbol, quantity, price, fees))

    @precondition(lambda self: self.model.head > 0)
    @rule(data=st.data())
    def backdated_buy(self, data):
        """A buy effective before the latest recorded date: it changes which lots later sales relieved."""
        latest = max(c.day for c in self.model.rows if c.day)
        earlier = [d for d in S.DATES if d < latest]
        if not earlier:
            return
        self.submit(S.Command("buy", data.draw(st.sampled_from(earlier)), data.draw(st.sampled_from(S.ACCOUNTS)),
                              data.draw(S.symbol_choices), data.draw(S.quantities), data.draw(S.prices),
                              data.draw(S.fees)))

    def _sell(self, data) -> S.Command:
        account, day = data.draw(st.sampled_from(S.ACCOUNTS), label="account"), data.draw(S.days, label="day")
        books = self.model.fold(as_of=day)
        acct = books.accounts.get(account)
        lots = [] if acct is None else [(l.id, l.symbol, Decimal(l.qty.numerator) / Decimal(l.qty.denominator)) for l in acct.lots]
        return S.draw_sell(data, account, day, lots)

    @rule(data=st.data())
    def sell(self, data):
        self.submit(self._sell(data))

    @rule(data=st.data())
    def sell_again(self, data):
        """(Sales twice as often as the other commands.)"""
        self.submit(self._sell(data))

    @precondition(lambda self: self.model.head > 0)
    @rule(data=st.data())
    def void(self, data):
        self.submit(S.Command("void", target=data.draw(st.integers(1, self.model.head + 1), label="void target")))

    @rule(data=st.data())
    def amend(self, data):
        """Correct an account's opening: its date, tax status, lot method or overdraft (`account amend`: the opening
        voided and a corrected one recorded, which folds first among its date's events)."""
        account = data.draw(st.sampled_from(S.ACCOUNTS), label="account")
        voided = {c.target for c in self.model.rows if c.kind == "void"}
        live = [(seq, c) for seq, c in enumerate(self.model.rows, 1)
                if c.kind == "open" and c.account == account and seq not in voided]
        if not live:
            return
        seq, old = live[-1]
        new = S.draw_open(data, account, data.draw(S.days, label="day"))
        if (new.day, new.method, new.overdraft, new.tax_status) == (old.day, old.method, old.overdraft, old.tax_status):
            return  # (nothing would change: refused, and not an amendment)
        self.submit(S.Command("void", target=seq), new)

    @rule(data=st.data())
    def batch(self, data):
        """Several commands in one call (an import): all recorded or none."""
        commands = []
        for _ in range(data.draw(st.integers(2, 3), label="batch size")):
            if data.draw(st.booleans(), label="sell?"):
                commands.append(self._sell(data))
            else:
                commands.append(S.Command("buy", data.draw(S.days), data.draw(st.sampled_from(S.ACCOUNTS)),
                                          data.draw(S.symbol_choices), data.draw(S.quantities),
                                          data.draw(S.prices), data.draw(S.fees)))
        self.submit(*commands)

    @precondition(lambda self: self.model.head > 0)
    @rule(as_of=S.as_of_dates, data=st.data())
    def check_point(self, as_of, data):
        """Any point in both time axes: as of a date, as known at an earlier seq (not one inside an amendment, between
        the void of an opening and the corrected opening it records: the account has events but no opening there, and
        a view says so, see test_bad_input.test_a_point_inside_an_amendment_says_so)."""
        rows = self.model.rows
        inside = {seq for seq in range(1, len(rows)) if rows[seq - 1].kind == "void" and rows[seq].kind == "open"
                  and rows[rows[seq - 1].target - 1].kind == "open"}
        seq = data.draw(st.integers(0, self.model.head).filter(lambda k: k not in inside), label="known at seq")
        self.compare(Point(as_of, seq))

    @invariant()
    def books_agree_with_the_model(self):
        self.compare(Point(None, self.store.head()[0]))

    def teardown_statistics(self) -> None:
        """What the run reached (shown by --hypothesis-show-statistics)."""
        books = self.model.fold()
        gains = [g for a in books.accounts.values() for g in a.gains]
        lots = [l for a in books.accounts.values() for l in a.lots]
        for label, reached in (("a wash sale", any(g["code"] for g in gains)),
                               ("a split replacement lot", any("w" in l.id for l in lots)),
                               ("a long-term gain", any(g["term"] == "long" for g in gains)),
                               ("a sale over several lots", any(len({g["lot_id"] for g in gains if g["seq"] == s}) > 1
                                                                for s in {g["seq"] for g in gains}))):
            if reached:
                event(f"reached {label}")


class LedgerMachineWithSnapshots(LedgerMachine):
    """The same, with snapshots of everything and of each account rebuilt after every command."""

    snapshots = True


TestLedgerAgainstTheModel = LedgerMachine.TestCase
TestLedgerAgainstTheModel.settings = S.budget(25, stateful_step_count=40)
TestLedgerWithSnapshotsAgainstTheModel = LedgerMachineWithSnapshots.TestCase
TestLedgerWithSnapshotsAgainstTheModel.settings = S.budget(15, stateful_step_count=40)

@S.budget(60)
@given(data=st.data())
def test_wash_sale_heavy_histories_match_the_model(data):
    """Short histories crowded into the wash-sale window: one or two accounts of one owner (taxable or not),
    buys of one symbol at a few prices, sales at a loss over one or several lots by every method, repurchases
    within 30 days; the ledger's lots (with holding-period starts), gains (with adjustments) and cash equal
    the model's, at the end and as of every date of the history."""
    with tempfile.TemporaryDirectory(prefix="folio-wash-", dir=S.TMP_ROOT) as folder:
        store = EventStore.create(os.path.join(folder, "ledger.db"), clock=TickingClock())
        try:
            model = Model()
            accounts = data.draw(st.lists(st.sampled_from(["A", "B-2"]), min_size=1, max_size=2, unique=True), label="accounts")
            for account in accounts:
                submit_both(store, model, S.draw_open(data, account, S.FIRST_DAY))
                submit_both(store, model, S.Command("deposit", S.FIRST_DAY, account, amount=Decimal("100000")))
            days = []
            for _ in range(data.draw(st.integers(3, 12), label="commands")):
                day = dt.date(2024, 3, 1) + dt.timedelta(days=data.draw(st.integers(0, 45), label="day"))
                account = data.draw(st.sampled_from(accounts), label="account")
                days.append(day)
                if data.draw(st.booleans(), label="buy?"):
                    submit_both(store, model, S.Command(
                        "buy", day, account, "Z", data.draw(S.quantities, label="quantity"),
                        data.draw(st.sampled_from([Decimal(100), Decimal(90), Decimal(120), Decimal(50)]), label="price")))
                else:
                    acct = model.fold(as_of=day).accounts.get(account)
                    lots = [] if acct is None else [(l.id, l.symbol, Decimal(l.qty.numerator) / Decimal(l.qty.denominator))
                                                    for l in acct.lots]
                    submit_both(store, model, S.draw_sell(data, account, day, lots, symbol="Z",
                                                          price_choices=st.sampled_from([Decimal(50), Decimal(60), Decimal(95)])))
            head = store.head()[0]
            for as_of in [None] + sorted(set(days)):
                compare(store, model, Point(as_of, head))
        finally:
            store.close()
