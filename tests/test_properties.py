"""Properties of the ledger that must hold for every history, checked with hypothesis.

- the codec: every registered event round-trips through its stored form, canonically;
- conservation: shares, basis and cash are conserved exactly, to the cent, over random histories;
- snapshots: a fold that starts from a snapshot equals the full fold at every point in both time axes;
- export/import: a JSONL export restored into an empty ledger is the same ledger (rows, head, books);
- known-at: the books as known at seq K are the books of a ledger that only ever recorded the first K events.

Histories are drawn from small vocabularies (tests/strategies.py) so that dates collide, trades are
backdated, lots are partly relieved, losses are washed across an owner's accounts and cents get rounded;
commands the ledger refuses are part of the history (and must write nothing). Examples are derandomized
(the same on every run); FOLIO_HYPOTHESIS_DEEP=10 runs ten times as many, fresh each time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import random
import tempfile
from collections import defaultdict
from decimal import Decimal

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given, note
from hypothesis import strategies as st

from commands import service
from commands.imports import export_lines, read_jsonl
from domain import events as ev
from domain import values as v
from domain.errors import InvalidValue
from ledger import codec
from ledger.store import EventStore, NewEvent
from projections.replay import Point, _from_snapshot, _merge as _MERGE, build_snapshots, load_books, resolve_point
from projections.replay import verify_snapshots
from tests import strategies as S
from tests.conftest import TickingClock

#: derandomized by default (see tests/strategies.py `budget`): the same examples on every run and machine
FAST = S.budget(100)
CODEC = S.budget(40)
HISTORY = S.budget(40)


# ======================================================================================
# 1. The codec
# ======================================================================================
def test_every_registered_event_type_has_a_strategy():
    assert set(S.EVENTS) == set(ev.REGISTRY), "add a strategy to tests/strategies.py EVENTS for each new event type"


@pytest.mark.parametrize("name", sorted(ev.REGISTRY))
@CODEC
@given(data=st.data())
def test_every_event_round_trips_through_its_canonical_encoding(name, data):
    """encode then decode gives an equal event; the bytes are canonical (the same twice, sorted keys, compact)
    and do not depend on the order of the keys a payload arrives with."""
    event = data.draw(S.EVENTS[name], label="event")
    type_, schema, payload = codec.encode(event)
    assert (type_, schema) == (name, ev.REGISTRY[name].schema)
    back = codec.decode(type_, schema, payload)
    assert type(back) is type(event) and back == event
    # canonical: the same bytes twice, sorted-key compact JSON, and a decoded event re-encodes to the very same bytes
    assert codec.encode(event)[2] == payload
    assert codec.encode(back) == (type_, schema, payload)
    parsed = json.loads(payload)
    assert codec.canonical(parsed) == payload
    # a payload whose keys arrive in any order (as a dict or as spaced-out text) decodes to the same event
    keys = list(parsed)
    random.Random(data.draw(st.integers(0, 2**32), label="key order")).shuffle(keys)
    shuffled = {k: parsed[k] for k in keys}
    for given_payload in (shuffled, json.dumps(shuffled, separators=(", ", ": "), ensure_ascii=False)):
        again = codec.decode(name, schema, given_payload)
        assert again == event
        assert codec.encode(again)[2] == payload


def _slow_structure(name: str, payload: dict):
    """cattrs's generic structure function, which the compiled fast one must always agree with."""
    gen = codec.make_dict_structure_fn(ev.REGISTRY[name], codec.converter, _cattrs_forbid_extra_keys=True)
    return gen(payload, ev.REGISTRY[name])


def _outcome(fn, payload):
    """The event, or what `codec.decode` would say of the refusal (the text a person sees)."""
    try:
        return ("event", fn(dict(payload)))
    except codec.STRUCTURE_ERRORS as e:
        return ("refused", codec._describe(e))


# values a stored payload could hold instead of what Folio writes: each sends the fast path to cattrs's
# (and the texts that read as a Decimal but that a field's validator may refuse, or a symbol or account never seen:
# each must fail the compiled function's plain-value tests, and go through the class's validators)
_ODD_VALUES = st.sampled_from([1, 0, -3, 2.5, True, None, "", "x", "NaN", "-1", "1E+3", " 7", [], ["a"], {}, {"a": 1},
                               "0", "-0", "0.001", "1.005", "Infinity", "-Infinity", "sNaN", "1E+30", "1e-30",
                               "lower", "A B", "X" * 70, "buy", "sell", "fifo", "min-tax", "USD"])


@pytest.mark.parametrize("name", sorted(ev.REGISTRY))
@FAST
@given(data=st.data())
def test_the_compiled_structure_function_agrees_with_cattrs_on_any_payload(name, data):
    """Replays build events with a compiled function for the payloads Folio writes; for those, and for any
    payload changed behind Folio's back (a value of another type, a key missing or added), it gives the very
    event, or the very refusal, that cattrs's generic function gives."""
    payload = json.loads(codec.encode(data.draw(S.EVENTS[name], label="event"))[2])
    change = data.draw(st.sampled_from(["none", "value", "drop", "add", "rename"]), label="change")
    key = data.draw(st.sampled_from(sorted(payload)), label="key") if payload else None
    if change == "value" and key:
        payload[key] = data.draw(_ODD_VALUES, label="value")
    elif change == "drop" and key:
        del payload[key]
    elif change == "add":
        payload["extra"] = 1
    elif change == "rename" and key:  # as many keys as fields, one of them wrong
        payload["extra"] = payload.pop(key)
    fast = codec._structure_fn(name)
    assert _outcome(fast, payload) == _outcome(lambda p: _slow_structure(name, p), payload)


def test_the_decimals_a_replay_keeps_are_bounded_and_never_hold_a_refused_text():
    """A compiled structure function keeps each Decimal field's texts it has read (a replay meets the same numbers
    again and again), at most `DECIMAL_CACHE` of them, and only texts the field's check passed: a refused one is
    refused again the next time, with cattrs's message."""
    fn = codec._structure_fn("TradeExecuted")
    caches = {k: v for k, v in fn.__globals__.items() if k.startswith("_c") and isinstance(v, dict)}
    assert len(caches) == 3  # quantity, price, fees
    base = {"account": "A", "symbol": "XYZ", "side": "buy", "quantity": "1", "price": "1", "fees": "0",
            "lot_method": None, "lots": [], "ref": None, "proposal": None}
    for i in range(codec.DECIMAL_CACHE + 100):
        event = fn({**base, "price": f"{i + 1}.25"})
        assert event.price == Decimal(i + 1) + Decimal("0.25")
    assert all(0 < len(c) <= codec.DECIMAL_CACHE for c in caches.values())
    again = fn({**base, "price": f"{codec.DECIMAL_CACHE + 100}.25"})  # the last one read: from the cache
    assert again.price == Decimal(f"{codec.DECIMAL_CACHE + 100}.25")
    for _ in range(2):
        assert _outcome(fn, {**base, "quantity": "-1"})[0] == "refused"
    assert all("-1" not in c for c in caches.values())


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(st.characters(exclude_categories=()), max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)


@CODEC
@given(data=_JSON)
def test_the_fast_canonical_text_is_the_canonical_text(data):
    """Payloads without floats and every row hash are written by orjson (`canonical_plain`): byte for byte what
    the stdlib's canonical JSON writes, for any text (controls, surrogates, astral characters) and any integer,
    or the rows of an existing ledger would no longer verify."""
    assert codec.canonical_plain(data) == codec.canonical(data)


def test_events_with_free_form_content_keep_the_stdlib_canonical_text():
    """orjson writes some floats differently (0.00001, not 1e-05): event types whose payload may hold a float
    (a proposal's content, a model's metadata) are never written by it."""
    assert codec.canonical_plain(1e-05) != codec.canonical(1e-05)
    assert {c.__name__ for c in ev.REGISTRY.values() if c not in codec._FLOAT_FREE} == {"ModelSet", "RebalanceProposed"}


_DECIMALS = st.one_of(st.decimals(allow_nan=True, allow_infinity=True, places=None),
                      st.builds(lambda d, e: d.scaleb(e), st.decimals(-10**9, 10**9, places=0), st.integers(-12, 30)),
                      st.sampled_from([Decimal(t) for t in ("0", "-0", "0.00", "1.000", "190.00", "1E+1", "1E-7",
                                                              "12.345", "0.10", "-3.20", "sNaN", "-Infinity",
                                                              # the edges of the magnitudes Folio takes
                                                              "999999999999.99", "1E+12", "1000000000000.00",
                                                              "1E-12", "0.9E-12", "0E-30", "0E+30")]))


@FAST
@given(d=_DECIMALS)
def test_decimal_validators_take_their_fast_path_only_for_what_the_full_check_accepts(d):
    """The event validators skip the full check for plainly valid Decimals; whatever the value, they accept
    exactly what the full check (domain.values) accepts."""
    def full(kind) -> bool:
        try:
            kind(d, "amount")
            return True
        except (InvalidValue, ArithmeticError):
            return False

    def event(make) -> bool:
        try:
            make()
            return True
        except (InvalidValue, ArithmeticError):
            return False

    assert event(lambda: ev.CashDeposited(account="A", amount=d)) == full(lambda x, w: v.positive(v.money(x, w), w))
    assert event(lambda: ev.TradeExecuted(account="A", symbol="X", side="buy", quantity=Decimal(1), price=Decimal(1),
                                          fees=d)) == full(lambda x, w: v.non_negative(v.money(x, w), w))
    assert event(lambda: ev.TradeExecuted(account="A", symbol="X", side="buy", quantity=d,
                                          price=Decimal(1))) == full(v.positive)
    # the plain-value tests the codec's compiled structure functions run instead of the validators: a value
    # they pass is one the full check accepts
    for validator, kind in ((ev._money, lambda x, w: v.positive(v.money(x, w), w)),
                            (ev._money_or_zero, lambda x, w: v.non_negative(v.money(x, w), w)),
                            (ev._positive, v.positive), (ev._non_negative, v.non_negative)):
        assert not validator.plain(d) or full(kind)


@FAST
@given(d=_DECIMALS.filter(lambda d: d.is_finite()))
def test_the_canonical_text_of_a_decimal_is_its_normalized_value_in_full(d):
    """What a payload stores for a Decimal: its value without trailing zeros, in plain notation, every digit
    kept (a fast path takes text already in that shape)."""
    expected = "0" if d == 0 else format(d.normalize(decimal.Context(prec=max(28, len(d.as_tuple().digits)))), "f")
    assert codec._decimal_text(d) == expected
    assert Decimal(codec._decimal_text(d)) == d


@FAST
@given(d=_DECIMALS.filter(lambda d: d.is_finite() and d.adjusted() < 28))  # as many digits as the context holds
def test_quantity_and_price_texts_are_what_their_definitions_say(d):
    """`plain_text` and `price_text` take a fast path on text already in shape; it gives what the definitions
    give: the normalized number, and a price whole or to at least the cent."""
    n = v.normalize(d)
    assert v.plain_text(d) == format(n, "f")
    exponent = n.as_tuple().exponent
    assert v.price_text(d) == format(n if exponent >= 0 or exponent <= -2 else n.quantize(v.CENT), "f")


@FAST
@given(event=S.EVENTS["AccountOpened"])
def test_schema_1_account_openings_upcast_to_fifo_without_overdraft(event):
    old = {k: val for k, val in json.loads(codec.encode(event)[2]).items() if k not in ("lot_method", "overdraft")}
    upcast = codec.decode("AccountOpened", 1, old)
    assert upcast == ev.AccountOpened(account=event.account, owner=event.owner, tax_status=event.tax_status,
                                      currency=event.currency, lot_method="fifo", overdraft=False)


@S.budget(50)
@given(trade=S.EVENTS["TradeExecuted"].filter(lambda t: t.side == "buy"), shares=st.integers(1, 10**6))
def test_equal_events_encode_to_the_same_bytes(trade, shares):
    """10, 10.0 and 1E+1 shares are the same event: the same bytes, so the same hash and idempotency check."""
    whole = attrs.evolve(trade, quantity=Decimal(shares))
    for spelling in (f"{shares}.0", f"{shares}.000", f"{shares}E0", f"{Decimal(shares) * 10}E-1"):
        respelled = attrs.evolve(trade, quantity=Decimal(spelling))
        assert respelled == whole
        assert codec.encode(respelled) == codec.encode(whole)


@S.budget(20)
@given(digits=st.integers(29, 40), data=st.data())
def test_decimals_longer_than_the_context_precision_survive_encoding(digits, data):
    """A price typed with 29+ significant digits is stored as typed, not rounded to the context's 28 digits."""
    text = data.draw(st.text("123456789", min_size=digits, max_size=digits))
    price = Decimal(text[:4] + "." + text[4:])
    trade = ev.TradeExecuted(account="A", symbol="X", side="buy", quantity=Decimal(1), price=price)
    assert codec.decode(*codec.encode(trade)).price == price


@FAST
@given(sym=S.symbols, account=S.account_ids, cur=S.currencies)
def test_identifiers_with_a_trailing_newline_are_refused(sym, account, cur):
    """'AAPL\\n' is not a symbol (a pattern ending in '$' used with re.match would let it through)."""
    for check, value in ((v.symbol, sym), (v.account_id, account), (v.currency, cur)):
        with pytest.raises(InvalidValue):
            check(value + "\n")


# ======================================================================================
# 2. Conservation over random valid histories
# ======================================================================================
def _expected_account_flows(history: S.History, as_of: dt.date | None):
    """Per account, the totals the books must agree with, summed straight from the accepted commands."""
    flows = defaultdict(lambda: {"bought": defaultdict(Decimal), "sold": defaultdict(Decimal), "buy_cash": Decimal(0),
                                 "cash": Decimal(0), "sales": {}})
    for seq, c in history.live(as_of):
        if c.kind not in ("deposit", "interest", "withdraw", "fee", "buy", "sell"):
            continue
        f = flows[c.account]
        if c.kind in ("deposit", "interest"):
            f["cash"] += c.amount
        elif c.kind in ("withdraw", "fee"):
            f["cash"] -= c.amount
        elif c.kind == "buy":
            cost = S.cents(c.quantity * c.price + c.fees)
            f["bought"][c.symbol] += c.quantity
            f["buy_cash"] += cost
            f["cash"] -= cost
        elif c.kind == "sell":
            proceeds = S.cents(c.quantity * c.price - c.fees)
            f["sold"][c.symbol] += c.quantity
            f["cash"] += proceeds
            f["sales"][seq] = (c.quantity, proceeds)
    return flows


def _check_conservation(store, history: S.History, as_of: dt.date | None):
    """Shares, basis and cash of every account (and every owner) add up exactly, at the head and as of a date.

    Wash sales move basis between lots, possibly across an owner's accounts: a disallowed loss (the gain's
    `adjustment`) goes into a replacement lot's basis in a taxable account, and is lost in the others.
    """
    books = load_books(store, Point(as_of=as_of, known_seq=store.head()[0]), use_snapshots=False)
    flows = _expected_account_flows(history, as_of)
    taxable = {c.account: c.tax_status == "taxable" for _, c in history.live() if c.kind == "open"}
    assert set(flows) <= set(books.accounts)
    by_owner = defaultdict(lambda: {"paid": Decimal(0), "held": Decimal(0), "adjustments": Decimal(0), "all_taxable": True})
    for name, acct in books.accounts.items():
        f = flows[name]
        note(f"as of {as_of}, account {name}: cash {acct.cash}, lots "
             f"{[(l.lot_id, l.symbol, str(l.quantity), str(l.basis)) for l in acct.open_lots()]}, gains "
             f"{[(g.seq, g.lot_id, str(g.quantity), str(g.proceeds), str(g.cost_basis), str(g.adjustment)) for g in acct.gains]}")
        # shares: bought - sold == open, per symbol
        for sym in set(f["bought"]) | set(f["sold"]) | set(acct.lots):
            assert f["bought"][sym] - f["sold"][sym] == acct.held(sym), f"{name} {sym}: shares not conserved"
        for lot in acct.open_lots():
            assert lot.quantity > 0 and lot.basis >= 0, f"lot {lot.lot_id}: {lot.quantity} shares, basis {lot.basis}"
            assert lot.basis == lot.basis.quantize(S.CENT), f"lot {lot.lot_id}: basis {lot.basis} is not whole cents"
        # basis: what came in (purchases, plus disallowed losses in a taxable account) == open + relieved, to the cent
        open_basis = sum((lot.basis for lot in acct.open_lots()), Decimal(0))
        relieved = sum((g.cost_basis for g in acct.gains), Decimal(0))
        assert acct.basis_out == relieved
        assert acct.basis_in == open_basis + relieved, f"{name}: basis in {acct.basis_in} != open {open_basis} + relieved {relieved}"
        washed_in = acct.basis_in - f["buy_cash"]
        assert washed_in >= 0 if taxable[name] else washed_in == 0, f"{name}: basis in {acct.basis_in}, paid {f['buy_cash']}"
        # cash: deposits + interest + proceeds - withdrawals - fees - buys
        assert acct.cash == f["cash"], f"{name}: cash {acct.cash}, flows say {f['cash']}"
        # each sale's gains add up to its shares and its net proceeds; a wash adjustment never exceeds the loss
        by_sale = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for g in acct.gains:
            by_sale[g.seq][0] += g.quantity
            by_sale[g.seq][1] += g.proceeds
            assert 0 <= g.adjustment <= max(Decimal(0), g.cost_basis - g.proceeds), g
            assert g.code in ("", "W") and (g.adjustment == 0 or g.code == "W"), g
        assert {seq: tuple(x) for seq, x in by_sale.items()} == f["sales"]
        o = by_owner[acct.owner]
        o["paid"] += f["buy_cash"]
        o["held"] += open_basis + relieved
        o["adjustments"] += sum((g.adjustment for g in acct.gains), Decimal(0))
        o["all_taxable"] &= taxable[name]
    for owner, o in by_owner.items():
        # basis paid == basis in open lots + basis relieved, plus the losses moved into replacement lots
        assert o["paid"] <= o["held"] <= o["paid"] + o["adjustments"], f"owner {owner}: {o}"
        if o["all_taxable"]:
            assert o["held"] == o["paid"] + o["adjustments"], f"owner {owner}: disallowed losses went missing: {o}"


@HISTORY
@given(data=st.data(), steps=st.integers(5, 30))
def test_shares_basis_and_cash_are_conserved_to_the_cent(data, steps):
    """Over random histories (1-3 accounts, two owners, backdated trades, every relief method, voids), at the
    head and as of random dates: bought - sold == open shares per symbol; basis paid == open basis + relieved
    basis (+ disallowed wash-sale losses); cash == the cash flows; each sale's gains add up to its shares and
    its net proceeds."""
    with S.temp_store() as store:
        history = run(data, store, steps=steps, voids=data.draw(st.booleans(), label="with voids"))
        _check_conservation(store, history, None)
        for as_of in data.draw(st.lists(S.as_of_dates, min_size=1, max_size=3, unique=True), label="as of"):
            _check_conservation(store, history, as_of)


@HISTORY
@given(data=st.data())
def test_a_loss_sale_over_several_recent_lots_conserves_shares_and_basis(data):
    """Lots of one symbol bought within 30 days, then sold together at a loss by any method: the wash-sale rule
    may move basis between them, but shares and basis are still conserved exactly."""
    with S.temp_store() as store:
        history = S.History()
        account = data.draw(st.sampled_from(S.ACCOUNTS), label="account")
        opening = S.draw_open(data, account, S.FIRST_DAY)
        for cmd in (opening, S.Command("deposit", S.FIRST_DAY, account, amount=Decimal("100000"))):
            history.add(store, cmd, S.submit(store, [cmd]))
        for _ in range(data.draw(st.integers(2, 4), label="buys")):
            buy = S.Command("buy", dt.date(2024, 3, data.draw(st.integers(1, 20), label="day")), account, "Z",
                            data.draw(S.quantities, label="quantity"), data.draw(st.sampled_from([Decimal(90), Decimal(100), Decimal(120)])))
            history.add(store, buy, S.submit(store, [buy]))
        held = sum((q for _, _, q in S.open_lots_on(store, account, dt.date(2024, 3, 25))), Decimal(0))
        quantity = data.draw(st.sampled_from([held, held * 3 / 4, held / 2, max(held - 1, held / 3)]), label="sold")
        sale = S.Command("sell", dt.date(2024, 3, 25), account, "Z", quantity, Decimal(50),
                         method=data.draw(S.methods, label="method"))
        history.add(store, sale, S.submit(store, [sale]))
        note("history:\n" + history.describe())
        _check_conservation(store, history, None)


@S.budget(100)
@given(data=st.data())
def test_buying_back_the_same_symbol_within_30_days_washes_the_loss_whatever_is_declared_in_between(data):
    """Declaring another symbol substantially identical widens a wash-sale group; it never narrows it."""
    with S.temp_store() as store:
        sold, other = "B", data.draw(st.sampled_from(["A", "C", "BB"]), label="other symbol")
        steps = [S.draw_open(data, "A", S.FIRST_DAY, tax_status="taxable"), S.Command("deposit", S.FIRST_DAY, "A", amount=Decimal("10000")),
                 S.Command("buy", dt.date(2024, 1, 5), "A", sold, Decimal(10), Decimal(100)),
                 S.Command("sell", dt.date(2024, 3, 1), "A", sold, Decimal(10), Decimal(50))]
        declared_on = dt.date(2024, 3, 1) + dt.timedelta(days=data.draw(st.integers(1, 29), label="declared days later"))
        pair = data.draw(st.sampled_from([(sold, other), (other, sold)]), label="declaration")
        steps.append(S.Command("identical", declared_on, symbol=pair[0], other=pair[1]))
        again = declared_on + dt.timedelta(days=data.draw(st.integers(0, 30 - (declared_on - dt.date(2024, 3, 1)).days),
                                                          label="bought back days later"))
        steps.append(S.Command("buy", again, "A", sold, Decimal(10), Decimal(50)))
        for cmd in steps:
            assert S.submit(store, [cmd]), cmd
        acct = load_books(store, Point(None, store.head()[0])).accounts["A"]
        (gain,) = acct.gains
        assert (gain.adjustment, gain.code) == (Decimal("500.00"), "W"), gain


def run(data, store, **kwargs) -> S.History:
    history = S.run_history(data, store, **kwargs)
    note("history:\n" + history.describe())
    assert sum(ok for _, ok in history.submitted) == store.head()[0] == len(history.accepted)
    return history


# ======================================================================================
# 3. Snapshots never change an answer
# ======================================================================================
def _points(data, store, n):
    head = store.head()[0]
    return data.draw(st.lists(st.tuples(S.as_of_dates, st.integers(0, head)), min_size=n, max_size=n), label="points")


@HISTORY
@given(data=st.data(), steps=st.integers(5, 30), every=st.integers(1, 4))
def test_folding_from_snapshots_equals_the_full_fold_at_every_point(data, steps, every):
    """Histories with corporate actions (splits, dividends paid later, reinvestment, renames reusing tickers),
    wash sales, backdated events and voids, with snapshots built at random moments (so later events make
    some of them stale) and at the end: for all accounts and for each account, at random (as of, known at seq) points, the fold from
    the best usable snapshot equals the fold from nothing."""
    with S.temp_store() as store:
        history = run(data, store, steps=steps, corporate=True, snapshot_every=every, renames=True)
        # and a fresh set at the head, as `folio snapshot` and an import would leave
        build_snapshots(store, every=every)
        accounts = sorted({c.account for c in history.accepted.values() if c.kind == "open"})
        for account in accounts:
            build_snapshots(store, [account], every=every)
            if data.draw(st.booleans(), label=f"holdings-only snapshots of {account}"):
                build_snapshots(store, [account], every=every, keep_gains=False)
        head = store.head()[0]
        assert _from_snapshot(store, Point(None, head), None)[0] is not None, "a snapshot at the head serves the head"
        checked, wrong = verify_snapshots(store)  # every snapshot, however made, is what `audit verify` expects
        assert checked > 0 and wrong == []
        for as_of, known in [(None, head)] + _points(data, store, 8):
            point = Point(as_of, known)
            for scope in [None] + [[a] for a in accounts]:
                for gains in (True, False):  # a fold without gains may start from either kind of snapshot
                    fast = load_books(store, point, accounts=scope, use_snapshots=True, keep_gains=gains)
                    slow = load_books(store, point, accounts=scope, use_snapshots=False, keep_gains=gains)
                    assert S.books_state(fast) == S.books_state(slow), \
                        f"at {point} for {scope or 'all accounts'}, keep_gains={gains}"


@HISTORY
@given(data=st.data(), steps=st.integers(5, 30))
def test_the_fold_split_over_two_processes_equals_the_one_process_fold(data, steps):
    """A long fold of the whole ledger is split by owner over two processes (ann's accounts in one, bob's in
    the other, every security event in both): the merged books equal the one-process fold, accounts in the
    same order, at random points, with and without gains, whatever the window; a refused or corrupt history
    falls back to one."""
    from projections import replay

    with S.temp_store() as store, pytest.MonkeyPatch.context() as monkeypatch:
        run(data, store, steps=steps, corporate=True, renames=True)
        head = store.head()[0]
        monkeypatch.setattr(replay, "PARALLEL_FROM", 1)
        # a small window, so a short history crosses its edges
        monkeypatch.setattr(replay, "WINDOW", data.draw(st.integers(1, 5), label="window"))
        split = []
        monkeypatch.setattr(replay, "_merge", lambda *args: split.append(1) or _MERGE(*args))
        for as_of, known in [(None, head)] + _points(data, store, 3):
            for gains in (True, False):
                point = Point(as_of, known)
                two = load_books(store, point, use_snapshots=False, keep_gains=gains)
                monkeypatch.setattr(replay, "PARALLEL_FROM", 10**12)
                one = load_books(store, point, use_snapshots=False, keep_gains=gains)
                monkeypatch.setattr(replay, "PARALLEL_FROM", 1)
                assert S.books_state(two) == S.books_state(one), f"at {point}, keep_gains={gains}"
                assert list(two.accounts) == list(one.accounts)
                assert (two.last_seq, two.as_of, sorted(two.due), two.effects) == \
                    (one.last_seq, one.as_of, sorted(one.due), one.effects)
                assert {o: S.owner_state(t) for o, t in two.owners.items()} == \
                    {o: S.owner_state(t) for o, t in one.owners.items()}
        owners = {store.account_owners()[a] for a in store.account_owners()}
        assert bool(split) is (len(owners) > 1), "two owners' ledgers are folded in two processes"


def test_gain_records_sent_a_field_at_a_time_come_back_the_same_to_the_text():
    """A snapshot holds, and the forked half of a split fold sends, the gain history a field at a time: every record
    comes back equal, each number spelled as it was (1E+2 stays 1E+2, 0.10 stays 0.10), dates and a missing held-from date as they were."""
    from domain.books import RealizedGain
    from projections.replay import gain_columns, gains_of_columns

    day = dt.date(2024, 3, 1)
    gains = [RealizedGain("3", "XQ", Decimal("1E+2"), day, dt.date(2024, 5, 2), Decimal("0.10"), Decimal("12.345"),
                          "short", "sale", 7),
             RealizedGain("3w7-2", "BRK.B", Decimal("0.5"), day, day, Decimal("-0.00"), Decimal("0"), "long",
                          "cash-in-lieu", 123456789, Decimal("5.42"), "W", dt.date(2023, 1, 31))]
    back = gains_of_columns(gain_columns(gains))
    assert back == gains and [[str(x) for x in g] for g in back] == [[str(x) for x in g] for g in gains]
    assert all(type(g) is RealizedGain for g in back) and gains_of_columns(gain_columns([])) == []
    texts = gain_columns(gains)
    texts[0] += "|3w9"  # a value too many in one field (as a separator inside a value would make): refused, not cut
    with pytest.raises(ValueError, match="13 fields of as many values each"):
        gains_of_columns(texts)


@HISTORY
@given(data=st.data(), steps=st.integers(5, 30))
def test_the_fold_by_owner_groups_equals_the_one_fold(data, steps):
    """`fold_grouped` folds each group of owners (ann's, bob's) with every security event into books of its own, a
    window of rows at a time, and combines them: the one fold's books, at random points, with and without gains,
    whatever the window, the number of groups and the voids."""
    from projections import replay

    with S.temp_store() as store, pytest.MonkeyPatch.context() as monkeypatch:
        run(data, store, steps=steps, corporate=True, renames=True)
        head = store.head()[0]
        monkeypatch.setattr(replay, "WINDOW", data.draw(st.integers(1, 7), label="window"))
        monkeypatch.setattr(replay, "GROUPS", data.draw(st.integers(1, 3), label="groups"))
        monkeypatch.setattr(replay, "PARALLEL_FROM", 10**12)
        for as_of, known in [(None, head)] + _points(data, store, 3):
            voided = set(store.voided(known))
            groups = replay._owner_groups(store, known)
            for gains in (True, False):
                point = Point(as_of, known)
                grouped, shared = replay.fold_grouped(store.fold_rows(known_seq=known, as_of=as_of), groups, gains,
                                                      voided, as_of)
                one = load_books(store, point, use_snapshots=False, keep_gains=gains)
                assert S.books_state(grouped) == S.books_state(one), f"at {point}, keep_gains={gains}"
                assert (grouped.last_seq, grouped.as_of, sorted(grouped.due), grouped.effects, grouped.folded) == \
                    (one.last_seq, one.as_of, sorted(one.due), one.effects, one.folded)
                assert {o: S.owner_state(t) for o, t in grouped.owners.items()} == \
                    {o: S.owner_state(t) for o, t in one.owners.items()}
                assert shared == sum(1 for row in store.fold_rows(known_seq=known, as_of=as_of)
                                     if row[2].startswith("security:"))


# ======================================================================================
# 4. Export, then import into an empty ledger: the same ledger
# ======================================================================================
@HISTORY
@given(data=st.data(), steps=st.integers(0, 25))
def test_export_then_restore_into_an_empty_ledger_gives_the_same_rows_head_and_books(data, steps):
    """export_lines -> read_jsonl -> EventStore.restore into an empty file: the same rows (seq, times, meta,
    hashes), the same head, a verifying chain, the same export, the same books; restoring twice adds nothing."""
    with S.temp_store() as store, S.temp_store("copy.db") as copy:
        run(data, store, steps=steps, corporate=True)
        text = "\n".join(export_lines(store.rows())) + "\n"
        added, skipped = copy.restore(read_jsonl(text))
        assert (added, skipped) == (store.head()[0], 0)
        assert copy.head() == store.head()
        assert list(copy.rows()) == list(store.rows())
        assert copy.verify() == (store.head()[0], None, "")
        assert "\n".join(export_lines(copy.rows())) + "\n" == text, "export(import(export)) == export"
        # restoring the same file again is a no-op
        assert copy.restore(read_jsonl(text)) == (0, store.head()[0])
        for as_of, known in _points(data, store, 3):
            point = Point(as_of, known)
            assert S.books_state(load_books(copy, point)) == S.books_state(load_books(store, point))


@S.budget(10)
@given(data=st.data(), steps=st.integers(0, 20))
def test_cli_export_then_import_gives_an_identical_audit_head(data, steps):
    """`folio export -o F`, then `folio init` and `folio import F` elsewhere: `folio audit head` prints the same
    line, `folio audit verify` passes, and the rows and books are the same."""
    from commands.cli import cli

    runner = CliRunner()
    with tempfile.TemporaryDirectory(prefix="folio-cli-", dir=S.TMP_ROOT) as folder:
        original, restored, dump = (os.path.join(folder, n) for n in ("a.db", "b.db", "export.jsonl"))

        def folio(db, *args):
            result = runner.invoke(cli, ["--db", db, "--actor", "tester", *args])
            assert result.exit_code == 0, result.output
            return result.output

        store = EventStore.create(original, clock=TickingClock())
        try:
            run(data, store, steps=steps, corporate=True)
        finally:
            store.close()
        folio(original, "export", "-o", dump)
        folio(restored, "init")
        folio(restored, "import", dump)
        assert folio(restored, "audit", "head") == folio(original, "audit", "head")
        assert "OK:" in folio(restored, "audit", "verify")
        with EventStore.open(original) as a, EventStore.open(restored) as b:
            assert list(b.rows()) == list(a.rows())
            for as_of, known in _points(data, a, 3):
                assert S.books_state(load_books(b, Point(as_of, known), use_snapshots=False)) == S.books_state(
                    load_books(a, Point(as_of, known), use_snapshots=False))


# ======================================================================================
# 5. Known-at: the past as it was known is a ledger that stopped recording then
# ======================================================================================
@HISTORY
@given(data=st.data(), steps=st.integers(3, 25))
def test_books_known_at_seq_k_equal_a_ledger_that_recorded_only_the_first_k_events(data, steps):
    """Record a random history (voids, backdated events, corporate actions); record its first K rows again, one
    by one through `service.record`, into an empty ledger (each is accepted, with the same seq): at every as-of
    date the books known at K equal that ledger's books. And --known-at seq K's recorded_at resolves to K."""
    with S.temp_store() as store, S.temp_store("prefix.db") as prefix:
        run(data, store, steps=steps, corporate=True)
        head = store.head()[0]
        k = data.draw(st.integers(0, head), label="K")
        for row in store.rows(known_seq=k):
            outcome = service.record(prefix, [service.Pending(NewEvent(row.stream, row.decode(),
                                                                       dt.date.fromisoformat(row.effective), {}))])
            assert outcome.result.rows[0].seq == row.seq
        assert prefix.head()[0] == k
        for as_of in (None,) + S.DATES + (dt.date(2026, 6, 30),):
            known = load_books(store, Point(as_of, k), use_snapshots=False)
            replayed = load_books(prefix, Point(as_of, k), use_snapshots=False)
            assert S.books_state(known) == S.books_state(replayed), f"as of {as_of}, known at seq {k}"
        # --known-at with seq K's timestamp resolves to seq K
        if k:
            assert resolve_point(store, known_at=store.row(k).recorded_at).known_seq == k


@pytest.mark.parametrize("appended, makes_gains", [(8, True), (20, False)])
def test_the_write_path_folds_the_gain_history_only_when_it_is_near(monkeypatch, appended, makes_gains):
    """A command folds with gains, and leaves a snapshot with gains at the head, when one is due (SNAPSHOT_EVERY
    events since the last) and the last is within GAINS_FOLD_LIMIT events; a ledger appended to in bulk (no
    such snapshot near) is checked with the holdings fold and left for `folio snapshot`. The books are the same."""
    monkeypatch.setattr(service, "SNAPSHOT_EVERY", 5)
    monkeypatch.setattr(service, "GAINS_FOLD_LIMIT", 10)
    day = dt.date(2024, 1, 2)

    def new(event) -> NewEvent:
        return NewEvent("account:A", event, day, {"actor": "t"})

    with S.temp_store() as store:
        store.append([new(ev.AccountOpened(account="A", owner="o", tax_status="taxable", currency="USD",
                                           lot_method="fifo"))]
                     + [new(ev.CashDeposited(account="A", amount=Decimal("10.00"))) for _ in range(appended - 1)])
        out = service.record(store, [service.Pending(new(ev.CashWithdrawn(account="A", amount=Decimal("5.00"))))])
        assert out.books.keep_gains is makes_gains
        with_gains = [s for (s,) in store.conn.execute("SELECT DISTINCT scope FROM snapshots WHERE scope NOT LIKE '%|holdings'")]
        assert with_gains == (["*"] if makes_gains else [])  # A is every account: the whole-ledger scope
        full = load_books(store, resolve_point(store), accounts=["A"], use_snapshots=False)
        assert S.books_state(load_books(store, resolve_point(store), accounts=["A"])) == S.books_state(full)
        assert full.accounts["A"].cash == Decimal("10.00") * (appended - 1) - Decimal("5.00")
        # every snapshot is the fold of the log, to the text: the log holds "10" and "5" for 10.00 and 5.00 (found by
        # a bench: the head snapshot, folded from the command's own events, held 10.00 and 5.00 where the log's fold
        # holds 10 and 5, and `audit verify` called it not the fold of the log)
        checked, bad = verify_snapshots(store)
        assert checked >= 1 and bad == []


def test_a_split_fold_weighs_owners_by_how_busy_they_are():
    """A busy owner's wash sales fragment its lots, so its events cost more to fold: the split weighs each owner's
    events by how many it has a day. Forty deposits on one day outweigh sixty and fifty spread one a day, so the
    busy owner alone is the forked process's share (by count alone, it would have had the sixty)."""
    from projections import replay

    start = dt.date(2024, 1, 1)
    with S.temp_store() as store:
        for account, events, spread in (("A", 40, False), ("B", 60, True), ("C", 50, True)):
            store.append([NewEvent(f"account:{account}", ev.AccountOpened(
                account=account, owner=f"owner-{account}", tax_status="taxable", currency="USD", lot_method="fifo"),
                start, {})] + [NewEvent(f"account:{account}", ev.CashDeposited(account=account, amount=Decimal("1.00")),
                                        start + dt.timedelta(days=i if spread else 0), {}) for i in range(events)])
        assert replay._half_of_the_owners(store, store.head()[0]) == {"account:A"}
        assert replay.fold_weight(41, 1) > replay.fold_weight(61, 60) + replay.fold_weight(51, 50)


@pytest.mark.parametrize("half", ["parent", "child"])
def test_a_corrupt_row_in_either_half_of_a_split_fold_gives_the_one_process_error(monkeypatch, half):
    """Each half folds its own owners: a row that does not decode is met by one of them; the fold then runs in
    one process and names the row as it would have (the first bad row in fold order)."""
    import sqlite3

    from ledger.errors import CorruptRow
    from projections import replay

    day = dt.date(2024, 1, 2)
    with S.temp_store() as store:
        for account, owner in (("A", "heavy"), ("B", "light")):
            store.append([NewEvent(f"account:{account}", ev.AccountOpened(
                account=account, owner=owner, tax_status="taxable", currency="USD", lot_method="fifo"), day, {})]
                + [NewEvent(f"account:{account}", ev.CashDeposited(account=account, amount=Decimal("1.00")), day, {})]
                * (5 if account == "A" else 2))
        assert replay._half_of_the_owners(store, store.head()[0]) == {"account:A"}  # the heavier owner: the child's
        bad = 8 if half == "parent" else 2  # a deposit of B (the parent's half) or of A (the child's)
        with sqlite3.connect(store.path) as c:
            c.execute("DROP TRIGGER events_no_update")
            c.execute("UPDATE events SET payload = ? WHERE seq = ?", ('{"account":"A"}', bad))
        monkeypatch.setattr(replay, "PARALLEL_FROM", 1)
        tried = []
        real = replay._fold_in_two
        monkeypatch.setattr(replay, "_fold_in_two", lambda *args: tried.append(real(*args)) or tried[-1])
        with pytest.raises(CorruptRow) as split:
            load_books(store, resolve_point(store), use_snapshots=False)
        assert tried == [None]  # the split was tried, and gave way to the one-process fold
        monkeypatch.setattr(replay, "PARALLEL_FROM", 10**12)
        with pytest.raises(CorruptRow) as one:
            load_books(store, resolve_point(store), use_snapshots=False)
        assert str(split.value) == str(one.value) and str(one.value).startswith(f"seq {bad}: ")


def test_a_split_fold_inside_a_transaction_that_appended_folds_in_one_process():
    """The forked process reads the ledger on a connection of its own, which does not see what this one appended and
    has not committed: it says so, and the fold runs in one process, with those rows."""
    from projections import replay

    day = dt.date(2024, 1, 2)
    with S.temp_store() as store, pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(replay, "PARALLEL_FROM", 1)
        store.append([NewEvent(f"account:{a}", ev.AccountOpened(account=a, owner=a.lower(), tax_status="taxable",
                                                                currency="USD", lot_method="fifo"), day, {})
                      for a in ("A", "B")])
        tried = []
        real = replay._fold_in_two
        monkeypatch.setattr(replay, "_fold_in_two", lambda *args: tried.append(real(*args)) or tried[-1])
        assert load_books(store, resolve_point(store), use_snapshots=False).accounts.keys() == {"A", "B"}
        assert tried[-1] is not None  # committed: split
        with store.transaction():
            store.append([NewEvent("account:B", ev.CashDeposited(account="B", amount=Decimal("7.00")), day, {})])
            books = load_books(store, resolve_point(store), use_snapshots=False)
            assert tried[-1] is None and books.accounts["B"].cash == Decimal("7.00")


def test_output_written_before_a_split_fold_is_not_written_twice(tmp_path):
    """The fork copies the parent's unwritten output (stdout to a pipe is block-buffered), which the forked
    process would flush again on its way out: it must be flushed before the fork (multiprocessing does)."""
    import subprocess
    import sys

    script = f"""
import datetime as dt, sys
from decimal import Decimal
from domain import events as ev
from ledger.store import EventStore, NewEvent
from projections import replay
store = EventStore.create({str(tmp_path / "l.db")!r})
day = dt.date(2024, 1, 2)
store.append([NewEvent(f"account:{{a}}", ev.AccountOpened(account=a, owner=a.lower(), tax_status="taxable",
                                                          currency="USD", lot_method="fifo"), day, {{}})
              for a in ("A", "B")])
replay.PARALLEL_FROM = 1
split = []
real = replay._merge
replay._merge = lambda *args: split.append(1) or real(*args)
print("before", end="")
books = replay.load_books(store, replay.resolve_point(store), use_snapshots=False)
print(" after", sorted(books.accounts), len(split))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert run.returncode == 0, run.stderr
    assert run.stdout == "before after ['A', 'B'] 1\n"


def test_holdings_snapshots_are_spaced_by_the_state_the_last_one_held(monkeypatch):
    """A holdings snapshot of a large state costs a lot to write and to store: the next is due STATE_PER_LOT events
    per lot and account of the state the last one held (STATE_EVERY at least), so a scope whose every event adds a
    lot gets snapshots ever further apart, never none; and each is the full fold at its date."""
    from projections import replay

    monkeypatch.setattr(replay, "STATE_EVERY", 4)
    monkeypatch.setattr(replay, "STATE_PER_LOT", 2)
    start = dt.date(2024, 1, 1)
    with S.temp_store() as store:
        store.append([NewEvent("account:A", ev.AccountOpened(account="A", owner="o", tax_status="taxable",
                                                             currency="USD", lot_method="fifo"), start, {}),
                      NewEvent("account:A", ev.CashDeposited(account="A", amount=Decimal("1000.00")),
                               start + dt.timedelta(days=1), {})])
        store.append([NewEvent("account:A", ev.TradeExecuted(account="A", symbol="XYZ", side="buy", quantity=Decimal(1),
                                                             price=Decimal("10.01")), start + dt.timedelta(days=i), {})
                      for i in range(2, 40)])  # one event a day; from the third, each a new lot
        assert build_snapshots(store, keep_gains=False) == 4
        days = [d for (d,) in store.conn.execute(
            "SELECT as_of FROM snapshots WHERE scope = '*|holdings' ORDER BY as_of")]
        folded = [(dt.date.fromisoformat(d) - start).days + 1 for d in days]
        # 4 events (STATE_EVERY): 1 account and 2 lots, so the next is due 2 x 3 = 6 events on, at 10 (1 + 8: 18 on),
        # at 28 (1 + 26: 54 on, past the end); and one at the end, 40
        assert folded == [4, 10, 28, 40]
        head = store.head()[0]
        for day in (start + dt.timedelta(days=i) for i in (3, 9, 12, 27, 30, 39)):
            point = Point(as_of=day, known_seq=head)
            snap, _ = _from_snapshot(store, point, None, False)
            assert snap is not None
            with_snapshots = load_books(store, point, keep_gains=False)
            full = load_books(store, point, keep_gains=False, use_snapshots=False)
            lots = lambda books: [(l.lot_id, l.quantity, l.basis) for l in books.accounts["A"].open_lots()]  # noqa: E731
            assert lots(with_snapshots) == lots(full) and len(lots(full)) == (day - start).days - 1
            assert with_snapshots.accounts["A"].cash == full.accounts["A"].cash == Decimal("1000.00") - Decimal(
                "10.01") * ((day - start).days - 1)


def test_snapshots_with_gains_grow_apart_as_the_history_grows_and_holdings_snapshots_keep_no_history(monkeypatch):
    """A snapshot with gains holds every gain record so far: past the first few they are taken each time the
    scope has grown by a quarter, so together they hold a few copies of the history (not one per SNAPSHOT_EVERY
    events). A holdings-only snapshot holds neither gain nor income records: its size follows open lots."""
    from projections import replay

    monkeypatch.setattr(replay, "SNAPSHOT_EVERY", 4)
    assert [replay.gains_spacing(n) for n in (0, 10, 16, 20, 100, 1000)] == [4, 4, 4, 5, 25, 250]
    start = dt.date(2024, 1, 1)
    with S.temp_store() as store:
        store.append([NewEvent("account:A", ev.AccountOpened(account="A", owner="o", tax_status="taxable",
                                                             currency="USD", lot_method="fifo"), start, {})])
        store.append([NewEvent("account:A", ev.InterestReceived(account="A", amount=Decimal("1.00")),
                               start + dt.timedelta(days=i), {}) for i in range(1, 200)])
        made = build_snapshots(store)
        days = [d for (d,) in store.conn.execute("SELECT as_of FROM snapshots WHERE scope = '*' ORDER BY as_of")]
        folded = [(dt.date.fromisoformat(d) - start).days + 1 for d in days]  # one event a day: events folded
        # due once the events since the last reach max(4, events // 4): 16 -> 21 (5 >= 21 // 4), 21 -> 27 (6),
        # 27 -> 35 (8), ... 142 -> 189 (47); and one at the end
        assert made == len(folded) and folded == [4, 8, 12, 16, 21, 27, 35, 46, 61, 81, 107, 142, 189, 200]
        assert build_snapshots(store, keep_gains=False) == 200 // replay.STATE_EVERY + 1
        (blob,) = store.conn.execute("SELECT state FROM snapshots WHERE scope = '*|holdings' ORDER BY as_of DESC").fetchone()
        state = json.loads(blob)
        assert state["accounts"]["A"]["income"] == [] and state["accounts"]["A"]["gains"] == []
        books = load_books(store, resolve_point(store))
        assert len(books.accounts["A"].income) == 199 and books.accounts["A"].cash == Decimal("199.00")
        assert load_books(store, resolve_point(store), keep_gains=False).accounts["A"].income == []
