"""Choosing and folding the events of a point in both time axes, with snapshots to start from.

A point is (`as_of`, `known_seq`): events effective on or before `as_of`,
recorded at or before `known_seq`, less those voided by a void recorded by then.
A snapshot of a scope at (D, S) is the fold at as_of D, known at S. It serves a
point (A, K) when D <= A, S <= K, and nothing recorded in (S, K] is effective on
or before D (a void carries the effective date of the event it voids, so a late
void invalidates the snapshots it must).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import heapq
import itertools
import multiprocessing
import os
import pickle
import re
from decimal import Decimal
from typing import Callable, Iterable, Iterator, Sequence

import attrs
import orjson

from domain import tax
from domain.books import Account, Books, HeldAtEx, Income, Payment, RealizedGain, fold
from domain.events import Recorded
from domain.lots import Lot
from domain.events import PolicySet
from ledger.codec import converter
from ledger.store import EventStore, decode_rows

SNAPSHOT_FORMAT = 16  # 16: gain records a text a field (`gain_columns`); 15: and by renames (no more copied splits); 14: an account's shares converted by tax-free stock mergers; 13: an account's splits (a qualified dividend's shares sold after one); 12: a qualified dividend keeps its entitled lots' holding periods; 11: a symbol change moves loss sales, reinvestment and payments due, and leaves no alias; merger cash per position; 10: min-tax ranks washed losses as no saving; 9: loss sales scale with a split
#: a fold of the whole ledger from its start, of this many events or more, is split by owner over two processes
PARALLEL_FROM = 5_000
#: the forked process's share of the owners' estimated fold cost (`fold_weight`; measured at 10^6 events, with each
#: process reading its own rows: 0.6 best of 0.55-0.65)
CHILD_SHARE = 0.6
#: a snapshot is worth writing once a fold has passed this many events since the last one
SNAPSHOT_EVERY = 5_000
#: holdings-only snapshots (no gain or income history, so small whatever the ledger's age) are taken this often:
#: they serve positions, lots and cash as of any date
STATE_EVERY = 500
#: ... or, of the whole ledger, further apart after a large state: `build_snapshots` writes the next holdings snapshot
#: once the events folded since the last reach STATE_PER_LOT times the size of the state that one held (open lots and accounts,
#: `state_size`). Freezing costs about what folding 1.4 events does, a lot (the whole 10^6-event bench ledger: 8,431
#: lots, 1,001 accounts, 155 ms and 1.7 MB a snapshot), so a steady state's snapshots cost about a third of the fold
#: that makes them and a few percent of the log's bytes; every 500 events, that ledger's whole-ledger snapshots took
#: 240 s and 2.7 GB (1,604 of them)
STATE_PER_LOT = 4
#: a snapshot with gains holds the whole gain history, so they are spaced by SNAPSHOT_EVERY only while the history
#: is short: then each time the scope's events have grown by 1/GAINS_GROWTH, so that all of them together hold a
#: few copies of the history, not one per SNAPSHOT_EVERY events (at 10^6 events: 30 snapshots, not 200)
GAINS_GROWTH = 4


def gains_spacing(events: int, every: int | None = None) -> int:
    """How many events after a snapshot with gains the next is due, for a scope of `events` events."""
    return max(every or SNAPSHOT_EVERY, events // GAINS_GROWTH)


def state_size(books: Books) -> int:
    """What a holdings snapshot of the books holds, counted: open lots and accounts."""
    return len(books.accounts) + sum(len(lots) for acct in books.accounts.values() for lots in acct.lots.values())


def state_spacing(books: Books) -> int:
    """How many events after a holdings snapshot of these books the next is due (`build_snapshots`)."""
    return max(STATE_EVERY, STATE_PER_LOT * state_size(books))


@attrs.frozen
class Point:
    """Where in both time axes to look: `as_of` inclusive (None: no limit), `known_seq` (the log head when resolved)."""

    as_of: dt.date | None
    known_seq: int


def resolve_point(
    store: EventStore,
    as_of: dt.date | None = None,
    known_at: str | None = None,
    known_seq: int | None = None,
) -> Point:
    """Turn CLI-style options into a point. `known_at` is a UTC timestamp, or a date meaning its end."""
    head = store.head()[0]
    if known_at is not None and known_seq is not None:
        raise ValueError("give --known-at or --known-at-seq, not both")
    if known_seq is not None and known_seq > head:  # (found by review: the fold took the head, the prices none)
        raise ValueError(f"--known-at-seq {known_seq}: the log ends at seq {head}")
    if known_at is not None:
        known_seq = store.seq_known_at(known_at_timestamp(known_at))
    if known_seq is None or known_seq > head:
        known_seq = head
    return Point(as_of=as_of, known_seq=known_seq)


def known_at_timestamp(text: str) -> str:
    """Normalise a --known-at value to the stored timestamp form. A date (2024-04-15, 20240415) means the end of that
    day (UTC); a time without fractions the end of its last unit, as a date means the end of its day: what `folio
    log` shows as recorded at 09:30:00 was recorded within that second, and is known at it (09:30 is the end of the
    minute, 09 of the hour); with fractions (09:30:00.5, or 09:30:00,5) the instant given."""
    text = text.strip()
    try:
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
    except ValueError:
        raise ValueError(f"--known-at {text!r} is not a date or an ISO timestamp (2024-04-15 or 2024-04-15T09:30:00Z)") from None
    match = _CLOCK.match(text)
    if match is None:  # a date alone (any form fromisoformat reads): its end
        return f"{when.date().isoformat()}T23:59:59.999999Z"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    clock = match.group(1)
    if "." not in clock and "," not in clock:
        digits = sum(c.isdigit() for c in clock)  # 2: an hour, 4: a minute, 6: a second (with colons or without)
        unit = {2: dt.timedelta(hours=1), 4: dt.timedelta(minutes=1)}.get(digits, dt.timedelta(seconds=1))
        when = when + unit - dt.timedelta(microseconds=1)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: the time of a timestamp: what follows the date's separator (T, t or a blank), up to a zone (Z, z, +, -)
_CLOCK = re.compile(r"^[^Tt ]+[Tt ]([0-9:.,]+)")


def scope_of(accounts: Sequence[str] | None, keep_gains: bool = True) -> str:
    """The snapshot scope of a fold: its accounts (or `*`), and `|holdings` for folds that keep no gain history."""
    return ("*" if accounts is None else ",".join(sorted(accounts))) + ("" if keep_gains else "|holdings")


def owner_scope(store: EventStore, accounts: Sequence[str] | None, known_seq: int | None = None) -> list[str] | None:
    """Every account of the owners of `accounts`: wash sales cross accounts, so a fold needs all of them. Owners as
    known at `known_seq` (found by review: after an owner was amended, views known before it left out the accounts
    that shared the owner then, and showed wash sales that were never on the books)."""
    if accounts is None:
        return None
    owners = store.account_owners_at(known_seq)
    wanted = {owners[a] for a in accounts if a in owners}
    scope = set(accounts) | {a for a, o in owners.items() if o in wanted}
    if scope >= owners.keys():
        return None  # every account: the whole ledger's fold (and its snapshots)
    return sorted(scope)


#: how a long fold reports its progress: (what it is doing, events so far, of how many or None); see commands.progress
Report = Callable[[str, int, "int | None"], None]


def counted(items: Iterable, report: Report | None, what: str, total: int | None = None, every: int = 2_000) -> Iterable:
    """`items` as they are, telling `report` how many have gone by, every `every` and at the end (with no report,
    `items` themselves: a replay's rows pass through no extra generator)."""
    return items if report is None else _counting(items, report, what, total, every)


def _counting(items: Iterable, report: Report, what: str, total: int | None, every: int) -> Iterator:
    n = 0
    for n, item in enumerate(items, 1):
        if n % every == 0:
            report(what, n, total)
        yield item
    report(what, n, n)  # done: all of them (a total given ahead may count rows the fold skips, voids say)


def load_books(
    store: EventStore,
    point: Point,
    *,
    accounts: Sequence[str] | None = None,
    keep_gains: bool = True,
    use_snapshots: bool = True,
    progress: Report | None = None,
) -> Books:
    """The books at a point, for some accounts (with their owners' other accounts, and every security) or all.
    `progress` hears of the events read as they go (of the log's length, for the whole ledger)."""
    accounts = owner_scope(store, accounts, point.known_seq)
    voided = set(store.voided(point.known_seq))
    books, after = (None, None)
    with collector_paused():
        if use_snapshots:
            books, after = _from_snapshot(store, point, accounts, keep_gains)
        if books is None and accounts is None and point.known_seq >= PARALLEL_FROM:
            books = _fold_in_two(store, point, voided, keep_gains, progress)
            if books is not None:
                return books
        books = books if books is not None else Books(keep_gains=keep_gains)
        records = store.fold_records(known_seq=point.known_seq, after=after, as_of=point.as_of, accounts=accounts)
        total = point.known_seq if accounts is None and after is None else None
        return fold(counted(records, progress, "replaying events", total), books, voided=voided, until=point.as_of)


# -- a long fold of the whole ledger, split by owner over two processes ---------------------------
def _fold_in_two(store: EventStore, point: Point, voided: set[int], keep_gains: bool,
                 progress: Report | None = None) -> Books | None:
    """The whole ledger's books at a point, folded by two processes at once: the owners split in two halves
    of about equal cost, each process folding its half's account and owner streams with every security
    stream. Owners never meet in the fold (wash sales are an owner's; a corporate action is applied to each
    holder on its own; a dividend is paid to each account on its own), so each half's books are the full
    fold's books of its accounts, and the two together are the full fold's (a property test holds them equal).

    Each process reads its own rows (SQLite filters them, in fold order): the forked one on a connection of its
    own, opened after the fork (it never touches this process's connection, whose lock state is this process's).
    Rows at or before `known_seq` never change, so both read the same log. (Sending the forked process its rows
    from here cost this process the reading and pickling of them, and starved the forked one whenever this one
    folded a window of its own.)

    None, and the caller folds in one process, where that is not possible (no fork on this platform, one
    owner, a ledger that is not a file) and when either half fails: the one-process fold then raises the
    error, the first in fold order."""
    if not hasattr(os, "fork") or not os.path.isfile(store.path):
        return None
    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        return None
    weights = _owner_weights(store, point.known_seq)
    theirs = _half_of_the_owners(store, point.known_seq, weights)
    if not theirs:
        return None
    groups = _owner_groups(store, point.known_seq, weights)
    # (multiprocessing flushes stdout and stderr before it forks: the child never writes the parent's output again)
    from_child = None
    try:
        from_child, child_end = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_fold_half, daemon=True, args=(
            store.path, child_end, point, voided, keep_gains, sorted(theirs),
            {s: g for s, g in groups.items() if s in theirs}))
        child.start()  # refused in a daemonic process, or out of processes or files: fold in one
    except (OSError, AssertionError, ValueError):
        if from_child is not None:
            from_child.close()
        return None
    child_end.close()
    mine = store.fold_rows(known_seq=point.known_seq, as_of=point.as_of, except_streams=sorted(theirs))
    if progress is not None:  # this process's rows as it reads them, of the log's (the whole is said at the end)
        mine = _telling(mine, progress, point.known_seq)
    try:
        try:
            books, shared = fold_grouped(mine, {s: g for s, g in groups.items() if s not in theirs}, keep_gains,
                                         voided, point.as_of)
            status, other = _answer(from_child, child)
        except Exception:  # noqa: BLE001  (the one-process fold raises it; a broken pipe: the child is gone)
            return None
    finally:
        from_child.close()
        if child.is_alive():
            child.kill()
        child.join()
    if status != "ok":
        return None
    frozen, columns, effects, folded = other
    other = thaw(frozen, keep_gains)
    for account, texts in columns.items():
        other.accounts[account].gains = gains_of_columns(texts)
    other.effects, other.folded = effects, folded - shared  # (the security rows: both halves folded them)
    books = _merge(store, point, voided, books, other)
    if progress is not None:
        progress("replaying events", books.folded, books.folded)
    return books


def _telling(rows: Iterable[tuple], progress: Report, total: int, every: int = 2_000) -> Iterator[tuple]:
    for n, row in enumerate(rows, 1):
        if n % every == 0:
            progress("replaying events", n, total)
        yield row


def _answer(pipe, child) -> tuple[str, object]:
    """The child's (status, books), waiting no longer than it lives."""
    while not pipe.poll(0.2):
        if not child.is_alive() and not pipe.poll(0):
            return "failed", None
    return pickle.loads(pipe.recv_bytes())


#: an owner's fold cost per event grows with how busy its trading is, as its wash sales split lots into parts
#: that later sales relieve one by one and later purchases match one by one: measured about the same at 1.4
#: events a day as at 0.1 (8 us), ten times that at 12 (90 us). Estimated as 1 + (events a day / BUSY)^2
BUSY = 4.5


def fold_weight(events: int, days: int) -> float:
    """The estimated fold cost of an owner's `events` events over `days` days, in events of a quiet owner."""
    return events * (1 + (events / max(days, 1) / BUSY) ** 2)


def _owner_weights(store: EventStore, known_seq: int) -> tuple[dict[str, float], dict[str, set[str]]]:
    """Each owner's estimated fold cost (`fold_weight`), and its account and owner streams."""
    owner_of = store.account_owners_at(known_seq)
    spans: dict[str, list] = {}
    streams: dict[str, set[str]] = {}
    for stream, (size, first, last) in store.stream_spans(known_seq).items():
        kind, _, name = stream.partition(":")
        owner = owner_of.get(name) if kind == "account" else name if kind == "owner" else None
        if owner is not None:
            span = spans.setdefault(owner, [0, first, last])
            span[0] += size
            span[1], span[2] = min(span[1], first), max(span[2], last)
            streams.setdefault(owner, set()).add(stream)  # (a Python set of the owner's stream names)
    day = dt.date.fromisoformat
    return {o: fold_weight(n, (day(last) - day(first)).days + 1) for o, (n, first, last) in spans.items()}, streams


def _half_of_the_owners(store: EventStore, known_seq: int, weights=None) -> set[str]:
    """The account and owner streams of about CHILD_SHARE of the ledger's fold cost (`fold_weight`), whole owners
    only (empty: one owner, nothing to split). `weights`: `_owner_weights`, when already read."""
    weight, streams = weights or _owner_weights(store, known_seq)
    if len(weight) < 2:
        return set()
    halves: tuple[list[str], list[str]] = ([], [])
    loads, shares = [0.0, 0.0], (1 - CHILD_SHARE, CHILD_SHARE)
    for owner in sorted(weight, key=lambda o: (-weight[o], o)):  # the heaviest first, each to the half most short
        lighter = 0 if loads[0] / shares[0] < loads[1] / shares[1] else 1
        halves[lighter].append(owner)
        loads[lighter] += weight[owner]
    return {stream for owner in halves[1] for stream in streams[owner]}


def _owner_groups(store: EventStore, known_seq: int, weights=None) -> dict[str, int]:
    """Each account and owner stream's group (`fold_grouped`): owners dealt to GROUPS groups in turn, heaviest first,
    so that the groups of either half weigh about the same."""
    weight, streams = weights or _owner_weights(store, known_seq)
    ranked = sorted(weight, key=lambda o: (-weight[o], o))
    return {stream: i % GROUPS for i, owner in enumerate(ranked) for stream in streams[owner]}


#: a process folds its owners in this many groups, each with books of its own: a fold of the whole ledger then
#: works on a small part of the state at a time, which the processor's caches hold (measured at 10^6 events, 1,000
#: accounts: 10.0 us an event folded together, 8.5 in 4 groups, 7.5 in 16)
GROUPS = 16
#: rows read before each group folds its share of them (the rows wait in memory meanwhile, ~8 MB: a bound on it;
#: 50,000 was no faster at 10^6 events, and held 20 MB)
WINDOW = 20_000


def fold_grouped(rows: Iterable[tuple], group_of: dict[str, int], keep_gains: bool, voided: set[int],
                 until: dt.date | None) -> tuple[Books, int]:
    """Rows (as `EventStore.fold_rows` reads them, in fold order) folded into books, by owner group: each group's
    account and owner rows, with every security row, into books of their own, WINDOW rows at a time; then the
    groups' books as one. Owners never meet in the fold (see `_fold_in_two`), so these are the one fold's books.
    A row of another stream (a model's, a proposal's: nothing the books hold) goes to the first group.
    Returns the books (`folded`: the rows read, each once) and how many of them were security rows."""
    groups = sorted(set(group_of.values())) or [0]
    parts = {g: Books(keep_gains=keep_gains) for g in groups}
    buckets = {g: [] for g in groups}
    every = list(buckets.values())
    first = buckets[groups[0]]
    shared = 0

    def fold_window() -> None:
        for g, bucket in buckets.items():
            if bucket:
                books, apply = parts[g], parts[g].apply
                for rec in list(decode_rows(bucket)):  # decoded, then folded: ~8% faster than interleaved
                    if rec.seq not in voided:
                        apply(rec)
                books.folded += len(bucket)
                bucket.clear()

    get = group_of.get
    rows = iter(rows)
    while window := list(itertools.islice(rows, WINDOW)):  # read, then dealt, then folded: each loop on its own
        for row in window:
            g = get(row[2])
            if g is not None:
                buckets[g].append(row)
            elif row[2].startswith("security:"):
                for bucket in every:
                    bucket.append(row)
                shared += 1
            else:
                first.append(row)
        fold_window()
    books = parts[groups[0]]
    books.settle(until)
    for g in groups[1:]:
        parts[g].settle(until)
        books = _combine(books, parts[g])
    books.folded -= shared * (len(groups) - 1)
    return books, shared


def _fold_half(path: str, answer, point: Point, voided: set[int], keep_gains: bool, theirs: list[str],
               groups: dict[str, int]) -> None:
    """In the forked process: read and fold this half's rows on a connection of its own, send the books back."""
    try:
        store = EventStore.reader(path)
        if store.head()[0] < point.known_seq:  # rows the parent appended and has not committed: they are its alone
            raise LookupError(f"seq {point.known_seq} is not committed")
        rows = store.fold_rows(known_seq=point.known_seq, as_of=point.as_of, only_streams=theirs)
        books, _ = fold_grouped(rows, groups, keep_gains, voided, point.as_of)
        # the books as a snapshot freezes them (what can still act: `thaw` makes the same books of it), which
        # travels 3-5x faster than the pickled objects (attrs classes pickle in Python), but the gain records a
        # field at a time (`gain_columns`), and what no snapshot keeps
        columns = {}
        for acct in books.accounts.values():
            if acct.gains:
                columns[acct.account], acct.gains = gain_columns(acct.gains), []
        message = pickle.dumps(("ok", (freeze(books), columns, books.effects, books.folded)),
                               protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # noqa: BLE001  (the parent folds in one process and raises the error itself)
        message = pickle.dumps(("failed", None))
    try:
        answer.send_bytes(message)
    except OSError:  # the parent has given up on this half
        pass


def _merge(store: EventStore, point: Point, voided: set[int], books: Books, other: Books) -> Books:
    """Two halves' books as one, accounts in the order the full fold opens them."""
    books = _combine(books, other)
    opened = books.accounts
    order = sorted((effective, seq, stream.partition(":")[2]) for seq, effective, stream in
                   store.account_openings(point.known_seq) if seq not in voided)
    books.accounts = {a: opened.pop(a) for _, _, a in order if a in opened}
    books.accounts.update(opened)  # none left: every account was opened by a recorded event
    return books


def _combine(books: Books, other: Books) -> Books:
    """The books of two sets of owners, folded apart with every security event, as one (accounts in no set order;
    `folded` counts the security events twice)."""
    books.accounts.update(other.accounts)
    books.owners.update(other.owners)
    books.due.extend(other.due)
    heapq.heapify(books.due)
    for seq, lines in other.effects.items():
        books.effects.setdefault(seq, {}).update(lines)
    books.last_seq = max(books.last_seq, other.last_seq)
    if other.as_of is not None and (books.as_of is None or other.as_of > books.as_of):
        books.as_of = other.as_of
    books.folded += other.folded
    return books


def _pack_held(held: tuple[HeldAtEx, ...]) -> list[list]:
    return [[h.lot_id, str(h.quantity), str(h.amount), h.held_until and h.held_until.isoformat()] for h in held]


def _unpack_held(rows: list[list]) -> tuple[HeldAtEx, ...]:
    return tuple(HeldAtEx(r[0], Decimal(r[1]), Decimal(r[2]), r[3] and dt.date.fromisoformat(r[3])) for r in rows)


def _pack_ratios(rows: list[tuple[dt.date, int, Decimal, Decimal]]) -> list[list]:
    """An account's splits or conversions, (date, seq, new, old), as a snapshot holds them."""
    return [[day.isoformat(), seq, str(new), str(old)] for day, seq, new, old in rows]


def _unpack_ratios(rows: list[list]) -> list[tuple[dt.date, int, Decimal, Decimal]]:
    return [(dt.date.fromisoformat(day), seq, Decimal(new), Decimal(old)) for day, seq, new, old in rows]


#: what separates the values of a field in `gain_columns`: no symbol, lot id, term, reason or code holds it (a
#: symbol is letters, digits and . - /), and JSON spells it as itself (a control character takes six bytes)
_SEP = "|"
_DATE_FIELDS = [RealizedGain._fields.index(name) for name in ("acquired", "sold", "held_from")]


def gain_columns(gains: list[RealizedGain]) -> list[str]:
    """Gain records as one text a field, the field's values joined by _SEP: how a snapshot holds the gain history,
    and how the forked half of a split fold sends it (at 10^6 events, the busiest account's 1,036,408 records, three
    paired runs: 98 MB, written in 2.2-3.0 s, read in 2.9-4.3 s; as JSON rows 125 MB, 2.3-3.5 s, 3.6-5.1 s; pickled
    as objects 10.9 s and 2.4 s)."""
    if not gains:
        return []
    fields = list(zip(*gains))
    for i in _DATE_FIELDS:  # the dates (and None), each of a few thousand spelled once
        spelled = {day: str(day) for day in set(fields[i])}
        fields[i] = map(spelled.__getitem__, fields[i])
    return [_SEP.join(map(str, field)) for field in fields]


def gains_of_columns(texts: list[str]) -> list[RealizedGain]:
    """`gain_columns` read back: the same records."""
    if not texts:
        return []
    fields = [t.split(_SEP) for t in texts]
    if len(fields) != len(RealizedGain._fields) or len({len(f) for f in fields}) != 1:
        raise ValueError(f"gain records: {len(RealizedGain._fields)} fields of as many values each expected")
    lot_id, symbol, quantity, acquired, sold, proceeds, basis, term, reason, seq, adjustment, code, held_from = fields
    dates: dict[str, dt.date | None] = {"None": None}
    for text in {*acquired, *sold, *held_from} - dates.keys():
        dates[text] = dt.date.fromisoformat(text)
    day, d = dates.__getitem__, Decimal
    return list(map(tuple.__new__, itertools.repeat(RealizedGain), zip(
        lot_id, symbol, map(d, quantity), map(day, acquired), map(day, sold), map(d, proceeds), map(d, basis), term,
        reason, map(int, seq), map(d, adjustment), code, map(day, held_from))))


@contextlib.contextmanager
def collector_paused():
    """Python's cycle collector off while books are built: a fold or thaw makes hundreds of thousands of objects
    (lots, Decimals, dates) and no cycles, and each collection it triggers walks every object made so far
    (a 50,000-lot thaw: 0.3 s paused, 0.5-0.9 s not). Turned back on only if it was on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _from_snapshot(store: EventStore, point: Point, accounts: Sequence[str] | None,
                   keep_gains: bool = True) -> tuple[Books | None, dt.date | None]:
    """The latest usable snapshot at or before the point: a fold without gains takes the latest of either kind
    (a full snapshot loses its gains), a fold with gains only a full one."""
    as_of = point.as_of.isoformat() if point.as_of else "9999-12-31"
    candidates = []
    for scope in ((scope_of(accounts), scope_of(accounts, False)) if not keep_gains else (scope_of(accounts),)):
        candidates += [(snap_as_of, snap_seq, scope) for snap_as_of, snap_seq in
                       store.snapshots(scope, as_of=as_of, known_seq=point.known_seq, fmt=SNAPSHOT_FORMAT)]
    candidates.sort(key=lambda c: (c[0], c[1], c[2].endswith("|holdings")), reverse=True)
    for snap_as_of, snap_seq, scope in candidates:
        earliest = store.earliest_effective_since(snap_seq, point.known_seq, accounts)
        if earliest is None or earliest > snap_as_of:
            books = thaw(store.snapshot_state(scope, snap_as_of, snap_seq), keep_gains)
            return books, dt.date.fromisoformat(snap_as_of)
    return None, None


def build_snapshots(store: EventStore, accounts: Sequence[str] | None = None, every: int | None = None, *,
                    keep_gains: bool = True, progress: Report | None = None) -> int:
    """Fold a scope once from the start, storing a snapshot every `every` events (at a day's end). Returns how many.

    `keep_gains=False` stores holdings-only snapshots every STATE_EVERY events; of the whole ledger, spaced by
    `state_spacing` of the state each snapshot holds (STATE_EVERY events after the start or a small state; more
    after a large one: the size at the last snapshot, not the size now, so a ledger whose every event adds a lot
    still gets snapshots, each about five times the last's events apart). An account's as-of query keeps its
    snapshots 500 events apart (the bench's busiest account, spaced by state, answered in 62-74 ms, not 21-24: found
    by review); a whole-ledger one is a batch's. By default snapshots with gains are spaced by `gains_spacing`, as
    they hold the whole gain history."""
    point = resolve_point(store)
    accounts = owner_scope(store, accounts)
    spacing = ((lambda folded: every) if every else gains_spacing if keep_gains
               else (lambda folded: STATE_EVERY) if accounts is not None else None)
    scope = scope_of(accounts, keep_gains)
    voided = set(store.voided(point.known_seq))
    books = Books(keep_gains=keep_gains)
    since, made, folded, state_due = 0, 0, 0, STATE_EVERY
    pending_day: dt.date | None = None
    records = store.fold_records(known_seq=point.known_seq, accounts=accounts)
    for rec in counted(records, progress, "folding events", point.known_seq if accounts is None else None):
        if pending_day is not None and rec.effective > pending_day:
            store.put_snapshot(scope, pending_day.isoformat(), point.known_seq, SNAPSHOT_FORMAT, freeze(books))
            made += 1
            since, pending_day = 0, None
            if spacing is None:
                state_due = state_spacing(books)
        if rec.seq not in voided:
            books.apply(rec)
        since += 1
        folded += 1
        if since >= (state_due if spacing is None else spacing(folded)):
            pending_day = rec.effective
    if since and books.as_of is not None:
        store.put_snapshot(scope, books.as_of.isoformat(), point.known_seq, SNAPSHOT_FORMAT, freeze(books))
        made += 1
    return made


def verify_snapshots(store: EventStore, progress: Report | None = None) -> tuple[int, list[str]]:
    """Check every snapshot against the log: the books it holds must be the fold of its scope at its point. The
    snapshots are a cache outside the hash chain, which a person with the file could alter (and a query would
    believe): this folds each scope from the start (once, unless backdated events made some snapshots stale),
    comparing at each snapshot's date the books, settled to that date, with the snapshot's, settled the same way.
    Returns (how many checked, a line for each that does not match)."""
    keys = store.snapshot_keys(SNAPSHOT_FORMAT)
    # a snapshot at (D, S) is also the fold at (D, S') for the scope's latest snapshot seq S' when nothing recorded in
    # (S, S'] is effective on or before D (the rule by which a query uses it): those are checked in one fold known at
    # S'; the others (made stale by a backdated event since) each in a fold known at their own seq
    latest: dict[str, int] = {}
    for scope, _, seq in keys:
        latest[scope] = max(latest.get(scope, 0), seq)
    groups: dict[tuple[str, int], list[tuple[str, int]]] = {}
    def accounts_of(scope: str) -> list[str] | None:  # `scope_of` read back
        names = scope.partition("|")[0]
        return None if names == "*" else names.split(",")

    for scope, as_of, seq in keys:
        top = latest[scope]
        earliest = store.earliest_effective_since(seq, top, accounts_of(scope)) if seq < top else None
        fold_seq = top if earliest is None or earliest > as_of else seq
        groups.setdefault((scope, fold_seq), []).append((as_of, seq))
    checked, bad = 0, []
    for (scope, fold_seq), snaps in groups.items():
        gains, accounts = not scope.endswith("|holdings"), accounts_of(scope)
        voided = set(store.voided(fold_seq))
        books, pending = Books(keep_gains=gains), sorted(snaps)
        for rec in itertools.chain(store.fold_records(known_seq=fold_seq, accounts=accounts), [None]):
            while pending and (rec is None or rec.effective.isoformat() > pending[0][0]):
                day, seq = pending.pop(0)
                books.settle(dt.date.fromisoformat(day))
                try:
                    stored = thaw(store.snapshot_state(scope, day, seq), gains)
                    stored.settle(dt.date.fromisoformat(day))
                    same = _comparable(freeze(stored, gains), gains) == _comparable(freeze(books, gains), gains)
                except Exception as e:  # noqa: BLE001  (a snapshot that does not even thaw is as wrong as one that differs)
                    bad.append(f"the snapshot of {scope} as of {day} (known at seq {seq}) cannot be read "
                               f"({type(e).__name__}: {e})")
                else:
                    if not same:
                        bad.append(f"the snapshot of {scope} as of {day} (known at seq {seq}) is not the fold of the "
                                   f"log at that point")
                checked += 1
                if progress is not None:
                    progress("checking snapshots", checked, len(keys))
            if rec is None or not pending:
                break
            if rec.seq not in voided:
                books.apply(rec)
    return checked, bad


def _comparable(frozen: bytes, gains: bool) -> dict:
    """A frozen state as a value to compare: key order aside (two processes' merged books list owners in another
    order), and, without gains, the loss sales' index into a gain history such books do not keep (-1 when folded
    without gains, the real index when a fold with gains was saved as holdings)."""
    state = orjson.loads(frozen)
    if not gains:
        for owner in state["owners"].values():
            for sale in owner["sales"]:
                sale[4] = None
    return state


def save_snapshot(store: EventStore, books: Books, known_seq: int, accounts: Sequence[str] | None,
                  as_of: dt.date | None = None, *, gains: bool = True) -> None:
    """Store books as a snapshot of their scope: folded to the end of the timeline, or (`as_of`) folded and
    settled up to that date; holdings-only when the books keep no gains or `gains=False`."""
    as_of = as_of or books.as_of
    gains = gains and books.keep_gains
    if as_of is not None:
        store.put_snapshot(scope_of(accounts, gains), as_of.isoformat(), known_seq, SNAPSHOT_FORMAT,
                           freeze(books, gains))


# -- snapshot codec: books <-> compact JSON --------------------------------------
def freeze(books: Books, gains: bool = True) -> bytes:
    """The books as compact JSON; `gains=False` leaves the gain and income history out (a holdings-only snapshot)."""
    gains = gains and books.keep_gains
    accounts = {}
    for a in books.accounts.values():
        accounts[a.account] = {
            "info": [a.owner, a.tax_status, a.currency, a.lot_method, a.overdraft, a.opened.isoformat()],
            "sums": [str(a.cash), str(a.basis_in), str(a.basis_out)],
            "lots": [[l.lot_id, l.symbol, str(l.quantity), str(l.basis), l.acquired.isoformat(), l.order,
                      [[seq, what] for seq, what in l.origin_lines()], l.hp_start.isoformat(), str(l.repl)] for l in a.open_lots()],
            "gains": gain_columns(a.gains) if gains else [],
            "income": [[i.symbol, i.kind, i.ex_date.isoformat(), i.pay_date.isoformat(), str(i.gross), str(i.withheld),
                        i.reinvested, i.seq, _pack_held(i.held)] for i in a.income] if gains else [],
            "reinvest": sorted(a.reinvest),
            "splits": {s: _pack_ratios(rows) for s, rows in a.splits.items()},
            "conversions": {p: {s: _pack_ratios(rows) for s, rows in by_symbol.items()}
                            for p, by_symbol in a.conversions.items()},
            "model": a.model,
            "policy": None if a.policy is None else [a.policy_seq, converter.unstructure(a.policy)],
        }
    due = [[p.pay_date.isoformat(), p.seq, p.account, p.symbol, p.kind, p.ex_date.isoformat(), str(p.gross),
            str(p.withheld), None if p.reinvest_price is None else str(p.reinvest_price), _pack_held(p.held)]
           for p in sorted(books.due)]
    def loss(l: tax.LossSale) -> list:
        return [l.seq, l.sold.isoformat(), l.symbol, l.account, l.gain_index, l.lot_id, str(l.quantity), str(l.loss),
                l.held_days, str(l.matched), str(l.disallowed)]

    def sales(t: tax.OwnerTax) -> list:
        """Every loss sale a purchase may still match, once: the two lists share objects, and must again after
        thawing. A fully matched loss is left out: no purchase can match it, and it restricts nothing."""
        seen: dict[int, tax.LossSale] = {}
        for l in t.losses + t.recent_losses:
            if l.quantity > l.matched:
                seen.setdefault(id(l), l)
        return list(seen.values())

    def owner(t: tax.OwnerTax) -> dict:
        every = sales(t)
        index = {id(l): i for i, l in enumerate(every)}
        return {"rates": None if t.rates is None else [str(r) for r in t.rates],
                "sales": [loss(l) for l in every],
                "losses": [index[id(l)] for l in t.losses if id(l) in index],
                "recent": [index[id(l)] for l in t.recent_losses if id(l) in index],
                "acquisitions": [[a.day.isoformat(), a.account, a.lot.lot_id] for a in t.acquisitions
                                 if a.lot.quantity > 0]}

    owners = {o: owner(t) for o, t in books.owners.items()}
    state = {"last_seq": books.last_seq, "as_of": books.as_of.isoformat() if books.as_of else None,
             "accounts": accounts, "due": due, "owners": owners, "identical": books.identical,
             "substitutes": {k: sorted(v) for k, v in books.substitutes.items()}}
    return orjson.dumps(state)


def thaw(blob: bytes, keep_gains: bool = True) -> Books:
    """The books a snapshot froze; `keep_gains=False` leaves its gain history out (a fold that needs none)."""
    state = orjson.loads(blob)
    books = Books(keep_gains=keep_gains)
    books.last_seq = state["last_seq"]
    books.as_of = dt.date.fromisoformat(state["as_of"]) if state["as_of"] else None
    d, day = Decimal, dt.date.fromisoformat
    for account_id, a in state["accounts"].items():
        owner, tax_status, cur, method, overdraft, opened = a["info"]
        cash, b_in, b_out = a["sums"]
        acct = Account(account=account_id, owner=owner, tax_status=tax_status, currency=cur, lot_method=method,
                       overdraft=overdraft, opened=day(opened), cash=d(cash), basis_in=d(b_in), basis_out=d(b_out))
        for lot_id, sym, qty, basis, acquired, order, origin, hp_start, repl in a["lots"]:
            acct.lots.setdefault(sym, []).append(
                Lot(lot_id, sym, d(qty), d(basis), day(acquired), order, tuple(tuple(o) for o in origin), day(hp_start),
                    d(repl)))
        acct.gains = gains_of_columns(a["gains"]) if keep_gains else []
        acct.income = [Income(symbol=i[0], kind=i[1], ex_date=day(i[2]), pay_date=day(i[3]), gross=d(i[4]),
                              withheld=d(i[5]), reinvested=i[6], seq=i[7], held=_unpack_held(i[8]))
                       for i in a["income"]] if keep_gains else []
        acct.reinvest = set(a["reinvest"])
        acct.splits = {s: _unpack_ratios(rows) for s, rows in a["splits"].items()}
        acct.conversions = {p: {s: _unpack_ratios(rows) for s, rows in by_symbol.items()}
                            for p, by_symbol in a["conversions"].items()}
        acct.model = a["model"]
        if a["policy"] is not None:
            acct.policy_seq, acct.policy = a["policy"][0], converter.structure(a["policy"][1], PolicySet)
        books.accounts[account_id] = acct
    books.due = [Payment(pay_date=day(p[0]), seq=p[1], account=p[2], symbol=p[3], kind=p[4], ex_date=day(p[5]),
                         gross=d(p[6]), withheld=d(p[7]), reinvest_price=None if p[8] is None else d(p[8]),
                         held=_unpack_held(p[9]))
                 for p in state["due"]]
    heapq.heapify(books.due)

    def loss(x: list) -> tax.LossSale:
        return tax.LossSale(seq=x[0], sold=day(x[1]), symbol=x[2], account=x[3], gain_index=x[4], lot_id=x[5],
                            quantity=d(x[6]), loss=d(x[7]), held_days=x[8], matched=d(x[9]), disallowed=d(x[10]))

    open_lots: dict[str, dict[str, Lot]] = {}
    for owner, t in state["owners"].items():
        ot = tax.owner_tax(books, owner)
        ot.rates = None if t["rates"] is None else (d(t["rates"][0]), d(t["rates"][1]))
        sales = [loss(x) for x in t["sales"]]
        ot.losses = [sales[i] for i in t["losses"]]
        ot.recent_losses = [sales[i] for i in t["recent"]]
        for when, account, lot_id in t["acquisitions"]:
            if account not in open_lots:
                open_lots[account] = {l.lot_id: l for l in books.accounts[account].open_lots()}
            ot.acquisitions.append(tax.Acquisition(day=day(when), account=account, lot=open_lots[account][lot_id]))
        ot.reindex()
    books.identical = dict(state["identical"])
    books.substitutes = {k: set(v) for k, v in state["substitutes"].items()}
    return books


def iter_records(store: EventStore, point: Point, *, after: dt.date | None = None, accounts: Sequence[str] | None = None) -> Iterator[Recorded]:
    """The records of a point in fold order, voids removed."""
    voided = store.voided(point.known_seq)
    for rec in store.fold_records(known_seq=point.known_seq, after=after, as_of=point.as_of, accounts=accounts):
        if rec.seq not in voided:
            yield rec
