"""Use cases: each builds events, checks them against the whole timeline they land in, and appends them.

The check and the append happen under one write lock (`BEGIN IMMEDIATE`), so
nothing can slip in between. A refused command writes nothing and raises
`Refused` with every problem found (an import reports all its bad rows at once).
"""

from __future__ import annotations

import datetime as dt
import heapq
import sqlite3
import uuid
from typing import Mapping, Sequence

import attrs

from domain.books import Books, check_timeline
from domain.errors import (AccountExists, DomainError, InsufficientCash, InsufficientShares, InvalidValue, InvalidVoid,
                           UnknownAccount, UnknownLot)
from domain.events import (HOLDINGS_AND_CASH, AccountOpened, CashWithdrawn, DividendDeclared, Event, EventVoided,
                           FeeCharged, MergerCompleted, Recorded, SpinoffCompleted, SplitApplied, SymbolChanged, TradeExecuted)
from ledger.store import AppendResult, EventStore, NewEvent, idem_conflict_message, voided_reference_message
from ledger import codec
from projections.replay import (SNAPSHOT_EVERY, STATE_EVERY, Point, Report, counted, gains_spacing, load_books,
                                owner_scope, save_snapshot, scope_of)
from projections.views import describe_action, summarize


class Refused(DomainError):
    """One or more events were refused; nothing was written. `problems` lists (where, why)."""

    def __init__(self, problems: Sequence[tuple[str, str]]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            where, why = self.problems[0]
            message = f"{where}: {why}" if where else why
        else:
            message = f"{len(self.problems)} problems, nothing was recorded:\n" + "\n".join(
                f"  {where}: {why}" if where else f"  {why}" for where, why in self.problems)
        super().__init__(message)


@attrs.frozen
class Pending:
    """An event to record and how to name it in an error (a CSV line, or empty for a CLI command)."""

    new: NewEvent
    label: str = ""


@attrs.frozen
class Context:
    """Who is acting and through what; stamped into each event's meta."""

    actor: str
    source: str = "cli"

    def meta(self, source: str | None = None, **extra) -> dict:
        return {"actor": self.actor, "source": source or self.source, "command_id": uuid.uuid4().hex, **extra}


@attrs.frozen
class Outcome:
    result: AppendResult
    books: Books


def accounts_touched(store: EventStore, pending: Sequence[Pending]) -> list[str] | None:
    """The accounts a set of events needs checked, with every account of their owners (wash sales cross
    accounts); None (everything) when a security event is among them."""
    accounts: set[str] = set()
    owners = store.account_owners()
    for p in pending:
        kind, _, name = p.new.stream.partition(":")
        if kind == "account":
            accounts.add(name)
            if isinstance(p.new.event, AccountOpened):  # an amended owner's accounts too: their wash sales now meet
                # this account's (found by review: moved to bob, A's lot became a replacement for bob's loss, was split,
                # and A's later sale of the whole lot could no longer fold)
                accounts |= {a for a, o in owners.items() if o == p.new.event.owner}
        elif kind == "owner":
            accounts |= {a for a, o in owners.items() if o == name}
        else:
            return None
    return owner_scope(store, sorted(accounts))


#: the most events past a scope's latest snapshot with gains that the write path folds with gains to make a new one
GAINS_FOLD_LIMIT = 50_000


def record(store: EventStore, pending: Sequence[Pending], *, expected: Mapping[str, int] | None = None,
           problems: Sequence[tuple[str, str]] = (), progress: Report | None = None,
           refuse_repeats: bool = False) -> Outcome:
    """Check new events against the timeline and append them, all or nothing.

    `problems` found earlier (rows that did not even parse) are reported together with every problem the
    check finds, so a file's author sees them all at once. `progress` hears how the fold, the check and
    the append go (an import of many events). `refuse_repeats`: events without a reference that are, to the last
    digit, recorded ones are refused (`repeats`: a file imported again). A corporate action already recorded is
    refused always (`action_repeats`).
    """
    with store.transaction():
        problems = list(problems)
        pending, duplicates = _drop_duplicates(store, pending, problems)
        head = store.head()[0]
        if not pending:
            if problems:
                raise Refused(_by_line(problems))
            return Outcome(AppendResult(rows=(), duplicates=tuple(duplicates)), Books())
        problems += _in_the_future(pending)
        # the voids as they will stand: those recorded, and those among the new events (a void and its correction
        # recorded together are no repeat); read once for every check below
        voided = set(store.voided(head)) | {p.new.event.seq for p in pending if isinstance(p.new.event, EventVoided)}
        problems += action_repeats(store, pending, voided)
        if refuse_repeats:  # read under the write lock, as the check is: no writer can slip a row in between
            problems += repeats(store, pending, voided)
        accounts = accounts_touched(store, pending)
        earliest = min(p.new.effective for p in pending)
        day_before = earliest - dt.timedelta(days=1)
        labels = {head + i: p.label for i, p in enumerate(pending, start=1)}
        # folded as the log will hold them: canonical JSON spells 10.00 as 10, so the events as given would leave books,
        # and a snapshot at the head, that differ from the log's fold in the text of their numbers (equal in value;
        # found by a bench: `audit verify` called such a snapshot not the log's fold). A refusal is told in the
        # numbers as given (below).
        new_recs = _new_records(head, pending, as_stored)
        # the check needs holdings, cash and wash-sale state, not the gain history: the lighter fold, unless
        # a snapshot with gains is due at the head (then this very fold makes it, for reports and the rebalancer)
        # and the gain history is near enough to fold: a scope with no snapshot with gains in GAINS_FOLD_LIMIT
        # events (a ledger appended to in bulk) gets one from `folio snapshot` or a `--all` read, not from a
        # command that would spend a whole replay on it
        since_gains = head - store.latest_snapshot_seq(scope_of(accounts))
        full_due = (gains_spacing(head + len(pending), SNAPSHOT_EVERY) <= since_gains + len(pending)  # as at the save below
                    and since_gains <= GAINS_FOLD_LIMIT)
        opened = [(dt.date.fromisoformat(day), stream.partition(":")[2]) for seq, day, stream in
                  store.account_openings(head) if seq not in voided]
        opened += [(p.new.effective, p.new.event.account) for p in pending if isinstance(p.new.event, AccountOpened)]

        def check(new_recs: list[Recorded], save_base: bool) -> tuple[Books, list]:
            base = load_books(store, Point(as_of=day_before, known_seq=head), accounts=accounts, keep_gains=full_due,
                              progress=progress)
            if save_base and base.folded >= STATE_EVERY:  # the next command dated the same day starts here
                save_snapshot(store, base, head, accounts, as_of=day_before, gains=False)
            base.opens_later = {account: day for day, account in sorted(opened, reverse=True)}  # the earliest wins
            existing = store.fold_records(known_seq=head, after=day_before, accounts=accounts)
            timeline = heapq.merge(existing, new_recs, key=Recorded.sort_key)
            return check_timeline(counted(timeline, progress, "checking events"), set(labels), base, voided=voided)

        books, refusals = check(new_recs, save_base=True)
        if refusals:  # checked again with the events as given, for messages in their numbers ("5.00", not "5")
            given = _new_records(head, pending, lambda event: event)
            _, told = check(given, save_base=False)
            if told:  # (equal numbers decide alike: the same refusals; else the first check's stand)
                refusals, new_recs = told, given
        if refusals or problems:
            raise Refused(_by_line(problems + _explain(refusals, labels, new_recs)))
        if progress is not None:
            progress("writing events", 0, len(pending))
        result = store.append([p.new for p in pending], expected)
        if progress is not None:
            progress("writing events", len(pending), len(pending))
        result = attrs.evolve(result, duplicates=tuple(duplicates) + result.duplicates)
        new_head = store.head()[0]
        due = gains_spacing(new_head, SNAPSHOT_EVERY) if books.keep_gains else SNAPSHOT_EVERY
        if new_head - store.latest_snapshot_seq(scope_of(accounts, books.keep_gains)) >= due:
            save_snapshot(store, books, new_head, accounts)
        return Outcome(result, books)


def as_stored(event: Event) -> Event:
    """The event as the log gives it back: through its canonical JSON (numbers normalized: 10.00 reads 10). Text
    that cannot be stored (bytes no UTF-8 character is, as a command line can carry them) is refused by name."""
    type_, schema, payload = codec.encode(event)
    try:
        payload.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidValue(f"{type_}: its text holds {_bytes_named(payload[e.start:e.end])}, which no UTF-8 "
                           f"character is; give the text in UTF-8") from None
    return codec.decode(type_, schema, payload)


def _bytes_named(text: str) -> str:
    """Undecodable bytes as Python carries them (U+DC80..U+DCFF for 0x80..0xFF), named: "byte 0xff"."""
    codes = [ord(ch) - 0xDC00 if 0xDC80 <= ord(ch) <= 0xDCFF else ord(ch) for ch in text]
    return ("byte " if len(codes) == 1 else "bytes ") + " ".join(f"0x{c:02x}" for c in codes)


def _new_records(head: int, pending: Sequence[Pending], event_of) -> list[Recorded]:
    """The pending events as the records they will be (seqs after `head`), in fold order."""
    recs = [Recorded(seq=head + i, effective=p.new.effective, stream=p.new.stream, event=event_of(p.new.event))
            for i, p in enumerate(pending, start=1)]
    return sorted(recs, key=Recorded.sort_key)


def restore(store: EventStore, rows: Sequence, progress: Report | None = None) -> tuple[int, int]:
    """Restore an export, all or nothing: its rows must continue this ledger's chain, verbatim
    (`EventStore.restore`), and make a history the books can fold. An event the fold refuses (a sale of
    shares not held, cash an account does not have) refuses the whole file, naming its seq, and nothing is
    written: a forged or damaged export never reaches the log, where it could not be taken back.
    Returns (added, skipped)."""
    with store.transaction():
        added, skipped = store.restore(rows, progress=progress)
        if added:
            head = store.head()[0]
            records = counted(store.fold_records(known_seq=head), progress, "checking the history", head)
            books, refusals = check_timeline(records, set(), Books(keep_gains=False), voided=set(store.voided(head)))
            problems = [(f"seq {r.record.seq}", str(r.error)) for r in refusals[:1]]
            if not problems:
                try:
                    books.settle()
                except DomainError as e:
                    problems = [("the restored history", str(e))]
            if problems:
                (where, why), = problems
                raise Refused([(where, f"{why}; the file makes a history the books refuse, nothing was recorded")])
    return added, skipped


def load_all(store: EventStore, point: Point, progress: Report | None = None) -> Books:
    """Every account's books at a point (`check --all`, `propose --all`). A fold that read SNAPSHOT_EVERY events or
    more leaves a snapshot of all accounts at its point behind: the write path snapshots the scope each command
    touches, which is never every account when files come account by account, so without this each `--all`
    would fold the log from its start. A ledger file this process may not write keeps none (the fold stands)."""
    books = load_books(store, point, progress=progress)
    if books.folded >= SNAPSHOT_EVERY and point.as_of is not None:
        try:
            save_snapshot(store, books, point.known_seq, None, as_of=point.as_of)
        except sqlite3.OperationalError:  # read-only or busy: a cache not written, nothing lost
            pass
    return books


def latest_day() -> dt.date:
    """Today, as far as anyone may be: tomorrow in UTC (a day's grace for time zones east of it). What views fold to
    without --as-of, and the latest date a trade or cash movement may be recorded with."""
    return dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)


def _in_the_future(pending: Sequence[Pending]) -> list[tuple[str, str]]:
    """A trade or a cash movement dated after `latest_day` is a typo, refused (found by review: a fill dated 2099 was
    taken); a corporate action may be announced ahead of its date, and a dividend's pay date is a field of its own."""
    latest = latest_day()
    return [(p.label, f"dated {p.new.effective}, after today: a trade or cash movement is recorded once it has "
                      f"happened (a typo in the date?)")
            for p in pending if isinstance(p.new.event, HOLDINGS_AND_CASH) and p.new.effective > latest]


def _by_line(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Problems of a file in line order (those without a line last, in the order found)."""
    def key(p):
        where = p[0]
        tail = where.rsplit("line ", 1)
        return (0, int(tail[1])) if len(tail) == 2 and tail[1].isdigit() else (1, 0)
    return sorted(problems, key=key)


def refuse_voided_duplicate(store: EventStore, key: str, seq: int) -> None:
    """A single command that repeats an event already recorded under its reference records nothing and says so;
    when that event was voided, the command is refused instead: nothing would be recorded, and the person means to
    record the event again (which needs a new reference: a reference names one event for good)."""
    voided_by = store.voided().get(seq)
    if voided_by is not None:
        raise DomainError(voided_reference_message(key, seq, voided_by))


def _drop_duplicates(store: EventStore, pending: Sequence[Pending],
                     problems: list[tuple[str, str]]) -> tuple[list[Pending], list[tuple[str, int]]]:
    """Leave out events whose idempotency key is already recorded for the same event; a reused key is a problem."""
    keep, duplicates, seen = [], [], {}
    recorded = store.find_idems([p.new.idem_key for p in pending if p.new.idem_key is not None])
    voided = store.voided() if recorded else {}
    for p in pending:
        key = p.new.idem_key
        if key is None:
            keep.append(p)
            continue
        type_, _, payload = codec.encode(p.new.event)
        mine = (p.new.stream, type_, p.new.effective.isoformat(), payload)
        found = recorded.get(key)
        if found is not None:
            if tuple(found[1:]) != mine:
                problems.append((p.label, idem_conflict_message(key, found[0], voided.get(found[0]))))
            duplicates.append((key, found[0]))
            continue
        if key in seen:
            if seen[key] != mine:
                problems.append((p.label, f"reference {key!r} is used twice in this input for different events"))
            duplicates.append((key, 0))
            continue
        seen[key] = mine
        keep.append(p)
    return keep, duplicates


def _explain(refusals, labels: dict[int, str], new_recs: list[Recorded]) -> list[tuple[str, str]]:
    """Problems for a person: each refused new event by its label; of the recorded events a new one would
    break, the first per stream (later ones usually fail only because it did), with how many follow."""
    problems = []
    broken: dict[str, list] = {}
    for r in refusals:
        if r.is_new:
            problems.append((labels[r.record.seq], str(r.error)))
        else:
            broken.setdefault(r.record.stream, []).append(r)
    for stream, rs in broken.items():
        r = rs[0]
        earlier = [n for n in new_recs
                   if n.sort_key() < r.record.sort_key() and (n.stream == stream or n.stream.startswith("security:"))]
        # none there: an event of another account of the owner did it (an amended opening, a wash sale)
        earlier = earlier or [n for n in new_recs if n.sort_key() < r.record.sort_key()]
        # of those, the ones that could have done it (found by review: a backdated import named every earlier row of
        # the account): for a sale short of shares, the symbol's own events; for cash short, what takes cash out
        relevant = [n for n in earlier if _could_break(n, r)]
        culprits = [labels[n.seq] or (f"void seq {n.event.seq} ({n.event.reason})" if isinstance(n.event, EventVoided)
                                      else describe(n)) for n in (relevant or earlier)]
        by = f" by {', '.join(culprits)}" if culprits else ""
        more = f" ({len(rs) - 1} later recorded event(s) of {stream} would fail in turn)" if len(rs) > 1 else ""
        problems.append(("", (
            f"this would make recorded seq {r.record.seq} ({r.record.effective}, {describe(r.record)}) impossible{by}: "
            f"{r.error}. Record it differently, or void seq {r.record.seq} first{more}")))
    return problems


def _could_break(new: Recorded, refusal) -> bool:
    """Whether a new event may be what makes a recorded one fail: any void, and a security event on the failing
    trade's symbol, may; of an account's events, for a lack of shares those of the same symbol, for a lack of cash those
    that take cash out. Other failures: every earlier event may."""
    e, failed, error = new.event, refusal.record.event, refusal.error
    if isinstance(e, (EventVoided, AccountOpened)):  # (an amended opening changes what every later event meets)
        return True
    symbol = getattr(failed, "symbol", None)
    if isinstance(error, (InsufficientShares, UnknownLot)):
        if new.stream.startswith("security:"):
            return symbol is not None and symbol in (getattr(e, "symbol", None), getattr(e, "new_symbol", None),
                                                     getattr(e, "acquirer", None), getattr(e, "child", None))
        return getattr(e, "symbol", None) == symbol
    if isinstance(error, InsufficientCash):
        if new.stream.startswith("security:"):
            return False
        return isinstance(e, (CashWithdrawn, FeeCharged)) or (isinstance(e, TradeExecuted) and e.side == "buy")
    return True


def describe(rec: Recorded) -> str:
    type_, schema, payload = codec.encode(rec.event)
    from ledger.store import StoredRow
    return summarize(StoredRow(rec.seq, rec.stream, 0, type_, schema, rec.effective.isoformat(), "", payload, "{}", None, ""))


# -- use cases --------------------------------------------------------------------
def account_stream(account: str) -> str:
    return f"account:{account}"


def repeats(store: EventStore, pending: Sequence[Pending], voided: set[int]) -> list[tuple[str, str]]:
    """Rows without a reference that are events already recorded, and not voided: the same stream, date, type and
    content (found by review: a broker file without refs imported twice doubled every deposit, without a word). As
    many rows of one content as the log holds are repeats; more are new. Returns (label, problem) for each."""
    bare = [p for p in pending if p.new.idem_key is None]
    if not bare:
        return []
    streams = sorted({p.new.stream for p in bare})
    first, last = min(p.new.effective for p in bare).isoformat(), max(p.new.effective for p in bare).isoformat()
    recorded: dict[tuple, list[int]] = {}
    for chunk in range(0, len(streams), 500):
        names = streams[chunk:chunk + 500]
        for seq, stream, effective, type_, payload in store.conn.execute(
                f"SELECT seq, stream, effective, type, payload FROM events WHERE effective BETWEEN ? AND ? "
                f"AND stream IN ({','.join('?' * len(names))}) ORDER BY seq", (first, last, *names)):
            if seq not in voided:
                recorded.setdefault((stream, effective, type_, payload), []).append(seq)
    out = []
    for p in bare:
        type_, _, payload = codec.encode(p.new.event)
        seqs = recorded.get((p.new.stream, p.new.effective.isoformat(), type_, payload))
        if seqs:
            seq = seqs.pop(0)
            out.append((p.label or "the event", f"the same {type_} is already recorded as seq {seq} and the row has no "
                                                f"ref to tell them apart: to import a file again, import nothing (give "
                                                f"its rows refs next time); if it is a new event, give it a ref or "
                                                f"import with --allow-repeats"))
    return out


#: corporate actions a security has at most one of on a date (a spinoff: one per child it distributes); a
#: dividend may come twice on an ex-date (a regular and a special one), but not twice of one amount and kind
ONCE_A_DAY = (SplitApplied, MergerCompleted, SymbolChanged, SpinoffCompleted, DividendDeclared)


def _action_key(stream: str, effective: str, event) -> tuple | None:
    if isinstance(event, SpinoffCompleted):
        return stream, effective, SpinoffCompleted, event.child
    if isinstance(event, DividendDeclared):  # the same amount of the same kind again is the same dividend, whatever its
        # pay date or withholding (found by review: one re-entered with a corrected pay date was paid twice)
        return stream, effective, DividendDeclared, event.per_share, event.kind
    if isinstance(event, ONCE_A_DAY):
        return stream, effective, type(event)
    return None


def action_repeats(store: EventStore, pending: Sequence[Pending], voided: set[int]) -> list[tuple[str, str]]:
    """New corporate actions that are already recorded (and not voided), or given twice among the new events:
    a second split, merger, symbol change or spinoff (of the same child) of one security on one date, or a dividend
    of the amount and kind of one recorded (found by review: the same split recorded twice split every holding twice, with or
    without refs, and a corrected ratio recorded over a wrong one applied both). The recorded one is named, to void
    it first if it was wrong."""
    actions = [(p, key) for p in pending if (key := _action_key(p.new.stream, p.new.effective.isoformat(), p.new.event))]
    if not actions:
        return []
    days = [p.new.effective for p, _ in actions]
    streams = sorted({p.new.stream for p, _ in actions})
    recorded: dict[tuple, tuple[int, object]] = {}
    for row in store.rows(streams=streams, effective_from=min(days), effective_to=max(days)):
        if row.seq not in voided and row.type != "EventVoided":
            event = row.decode()
            key = _action_key(row.stream, row.effective, event)
            if key is not None:
                recorded.setdefault(key, (row.seq, event))
    out, given = [], {}
    for p, key in actions:
        event, day = p.new.event, p.new.effective
        what = describe_action(event, day)
        if key in recorded:
            seq, old = recorded[key]
            same = "the same action" if old == event else describe_action(old, day)
            out.append((p.label, f"cannot record {what} on {day}: {same} is already recorded as seq {seq}; a corporate "
                                 f"action is recorded once (if seq {seq} is wrong, void it first: "
                                 f"folio void {seq} --reason ...)"))
        elif key in given:
            out.append((p.label, f"{what} on {day} is given twice ({given[key] or 'above'} too): a corporate action is "
                                 f"recorded once"))
        else:
            given[key] = p.label
    return out


def open_account(store: EventStore, ctx: Context, event: AccountOpened, day: dt.date) -> Outcome:
    if day > latest_day():  # as a trade dated later is refused (found by review: an opening in 2099 was taken)
        raise DomainError(f"cannot open account {event.account} on {day}: that is after today; an account opens on the "
                          f"day of its first event (--date)")
    with store.transaction():
        opened = live_opening(store, event.account)
        if opened is not None:
            raise AccountExists(f"account {event.account} is already open (since {opened.effective}, seq {opened.seq}); "
                                f"to change its date, owner or tax status: folio account amend {event.account}")
        return record(store, [Pending(NewEvent(account_stream(event.account), event, day, ctx.meta()))])


def live_opening(store: EventStore, account: str):
    """The account's opening not voided (the stored row), or None."""
    voided = store.voided()
    return next((r for r in store.rows(stream=account_stream(account), type_="AccountOpened") if r.seq not in voided), None)


def amend_account(store: EventStore, ctx: Context, account: str, reason: str, *, day: dt.date | None = None,
                  **changes) -> Outcome:
    """Correct an account's opening (its date, owner, tax status, lot method, currency or overdraft): the opening is
    voided and the corrected one recorded, in one append, checked against the timeline of the account and of its old and
    new owners' accounts (an opening after its first event is refused like any event that breaks history; a currency
    only while nothing else is recorded on the account)."""
    if not reason.strip():
        raise InvalidVoid(f"cannot amend account {account}: give a reason (--reason), saying what was wrong")
    with store.transaction():
        opened = live_opening(store, account)
        if opened is None:
            raise UnknownAccount(f"cannot amend account {account}: it is not open (open it with `folio account open`)")
        old = opened.decode()
        new = attrs.evolve(old, **{k: x for k, x in changes.items() if x is not None})
        if new.currency != old.currency:  # nothing records a currency: cash and prices recorded in the old one would
            # read as the new one's (found by review)
            voids = store.voided()
            live = [r.seq for r in store.rows(stream=account_stream(account))
                    if r.seq != opened.seq and r.seq not in voids and r.type != "EventVoided"]
            if live:
                raise DomainError(f"cannot amend account {account} to {new.currency}: its events (seq "
                                  f"{', '.join(map(str, live[:5]))}{' ...' if len(live) > 5 else ''}) are in "
                                  f"{old.currency}; a currency is corrected only while nothing else is recorded on it")
        when = day or dt.date.fromisoformat(opened.effective)
        if new == old and when.isoformat() == opened.effective:
            raise DomainError(f"cannot amend account {account}: nothing would change (it opened on {opened.effective} "
                              f"as {describe_opening(old)})")
        if when > latest_day():
            raise DomainError(f"cannot amend account {account} to open on {when}: that is after today")
        stream = account_stream(account)
        void = NewEvent(stream, EventVoided(seq=opened.seq, reason=reason.strip()),
                        dt.date.fromisoformat(opened.effective), ctx.meta())
        return record(store, [Pending(void), Pending(NewEvent(stream, new, when, ctx.meta()))])


def describe_opening(e: AccountOpened) -> str:
    return (f"owner {e.owner}, {e.tax_status}, {e.currency}, lot method {e.lot_method}, "
            f"{'overdraft allowed' if e.overdraft else 'no overdraft'}")


def void(store: EventStore, ctx: Context, seq: int, reason: str) -> Outcome:
    """Void a recorded event: it leaves every fold from now on; the void itself is recorded on its stream."""
    if not reason.strip():  # an audit trail needs the why (found by review: blanks were taken, "" gave attrs' words)
        raise InvalidVoid(f"cannot void seq {seq}: give a reason (--reason), saying why it should never have been recorded")
    reason = reason.strip()
    with store.transaction():
        target = store.row(seq)
        if target is None:
            raise InvalidVoid(f"cannot void seq {seq}: no such event (the log ends at seq {store.head()[0]})")
        voids = store.voided()
        if seq in voids:
            raise InvalidVoid(f"cannot void seq {seq}: already voided by seq {voids[seq]}")
        if target.type == "EventVoided":
            raise InvalidVoid(f"cannot void seq {seq}: it is itself a void; record the voided event again instead")
        if target.type == "AccountOpened":
            live = [r.seq for r in store.rows(stream=target.stream)
                    if r.seq != seq and r.seq not in voids and r.type != "EventVoided"]
            if live:
                account = target.stream.partition(":")[2]
                shown = ", ".join(map(str, live[:5])) + (f" and {len(live) - 5} more" if len(live) > 5 else "")
                raise InvalidVoid(f"cannot void seq {seq}: it opens account {account}, whose events {shown} are not "
                                  f"voided; to correct the opening's date, owner or tax status instead: folio account "
                                  f"amend {account} --reason ...")
        event = EventVoided(seq=seq, reason=reason)
        effective = dt.date.fromisoformat(target.effective)
        return record(store, [Pending(NewEvent(target.stream, event, effective, ctx.meta()))])
