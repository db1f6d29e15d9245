"""The event store: one SQLite file, an append-only `events` table with a SHA-256 hash chain.

Appends are atomic per call (`BEGIN IMMEDIATE` … `COMMIT`): expected stream
versions are checked, every row gets the next gapless seq, the next version of
its stream, a `recorded_at` that never decreases, and a hash over the previous
row's hash and its own canonical content. Triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import attrs

from domain.events import Event, Recorded
from ledger import codec
from ledger.errors import ConcurrencyConflict, CorruptRow, IdempotencyConflict, LedgerError, NotALedger

FORMAT = 1
GENESIS = "0" * 64
APP_ID = 0x466F6C69  # "Foli": SQLite's application_id marks the file as a Folio ledger

SCHEMA = """
CREATE TABLE IF NOT EXISTS folio_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema INTEGER NOT NULL,
    effective TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    meta TEXT NOT NULL,
    idem_key TEXT UNIQUE,
    hash TEXT NOT NULL,
    UNIQUE (stream, version)
);
CREATE INDEX IF NOT EXISTS events_fold_order ON events (effective, (CASE WHEN substr(stream, 1, 9) = 'security:' THEN 0 WHEN type = 'AccountOpened' THEN 1 ELSE 2 END), seq);
CREATE INDEX IF NOT EXISTS events_stream_effective ON events (stream, effective);
CREATE INDEX IF NOT EXISTS events_recorded ON events (recorded_at);
CREATE INDEX IF NOT EXISTS events_type ON events (type);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: record a correction instead'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: void the event instead'); END;
CREATE TABLE IF NOT EXISTS prices (
    id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    date TEXT NOT NULL,
    close TEXT NOT NULL,
    currency TEXT NOT NULL,
    source TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS prices_lookup ON prices (symbol, date, id);
CREATE TRIGGER IF NOT EXISTS prices_no_update BEFORE UPDATE ON prices
BEGIN SELECT RAISE(ABORT, 'prices are append-only: record a corrected price instead'); END;
CREATE TRIGGER IF NOT EXISTS prices_no_delete BEFORE DELETE ON prices
BEGIN SELECT RAISE(ABORT, 'prices are append-only'); END;
CREATE TABLE IF NOT EXISTS snapshots (
    scope TEXT NOT NULL,
    as_of TEXT NOT NULL,
    seq INTEGER NOT NULL,
    format INTEGER NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (scope, as_of, seq)
);
"""

COLUMNS = "seq, stream, version, type, schema, effective, recorded_at, payload, meta, idem_key, hash"
#: an event's phase (`Event.phase`): a security's events first on a date, then accounts' openings, then the rest; the
#: index `events_fold_order` serves the fold order (ledgers made with the older two-phase `events_fold` gain it once)
PHASE = "(CASE WHEN substr(stream, 1, 9) = 'security:' THEN 0 WHEN type = 'AccountOpened' THEN 1 ELSE 2 END)"
FOLD_ORDER = f"effective, {PHASE}, seq"


@attrs.frozen
class NewEvent:
    """An event about to be appended, with where it goes and what is known of its origin."""

    stream: str
    event: Event
    effective: dt.date
    meta: Mapping[str, object] = attrs.Factory(dict)
    idem_key: str | None = None


@attrs.frozen
class StoredRow:
    """One row of the log, exactly as stored."""

    seq: int
    stream: str
    version: int
    type: str
    schema: int
    effective: str
    recorded_at: str
    payload: str
    meta: str
    idem_key: str | None
    hash: str

    def decode(self) -> Event:
        return codec.decode(self.type, self.schema, self.payload, where=f"seq {self.seq}: ")

    def recorded(self) -> Recorded:
        return Recorded(seq=self.seq, effective=dt.date.fromisoformat(self.effective), stream=self.stream, event=self.decode())

    def as_dict(self) -> dict:
        d = attrs.asdict(self)
        d["payload"] = json.loads(self.payload)
        d["meta"] = json.loads(self.meta)
        return d


@attrs.frozen
class AppendResult:
    rows: tuple[StoredRow, ...]
    #: idempotency keys that were already recorded (identically): nothing new was written for them
    duplicates: tuple[tuple[str, int], ...] = ()


def row_hash(prev: str, seq, stream, version, type_, schema, effective, recorded_at, payload, meta, idem_key) -> str:
    content = codec.canonical_plain([seq, stream, version, type_, schema, effective, recorded_at, payload, meta, idem_key])
    return hashlib.sha256((prev + content).encode()).hexdigest()


def _meta_text(cache: dict, meta: Mapping[str, object]) -> str:
    """Canonical JSON of an event's meta; the events of one command share theirs, so it is encoded once."""
    try:
        key = tuple(sorted(meta.items()))
        text = cache.get(key)
    except TypeError:  # an unhashable value: no caching
        return codec.canonical(dict(meta))
    if text is None:
        text = cache[key] = codec.canonical(dict(meta))
    return text


def idem_conflict_message(key: str, seq: int, voided_by: int | None = None) -> str:
    """A reference names one event for good (voiding it does not free the reference)."""
    if voided_by is not None:
        return (f"reference {key!r} was recorded as seq {seq} (voided by seq {voided_by}) for a different event; "
                f"a voided event's reference stays spent: use a new reference")
    return (f"reference {key!r} was already recorded as seq {seq} for a different event; use a new reference "
            f"(to correct seq {seq}, void it and record the corrected event under a new reference)")


def voided_reference_message(key: str, seq: int, voided_by: int) -> str:
    """What recording a voided event again under its own reference is told."""
    return (f"reference {key!r} was recorded as seq {seq}, which seq {voided_by} voided; a voided event's reference "
            f"stays spent: to record the event again, give it a new reference")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decode_rows(rows: Iterable[tuple]) -> Iterator[Recorded]:
    """Rows as `EventStore.fold_rows` reads them, decoded into records, lazily; a row that does not decode is
    named by its seq."""
    decode = codec.decoder()
    fromiso = dt.date.fromisoformat
    record = tuple.__new__  # Recorded(...) without its Python-level __new__: a replay makes one per row
    dates: dict[str, dt.date] = {}
    for row in rows:
        seq, effective, stream, type_, schema, payload = row if len(row) == 6 else row[:6]
        day = dates.get(effective)
        if day is None:
            day = dates[effective] = fromiso(effective)
        try:
            event = decode(type_, schema, payload)
        except CorruptRow as e:  # named by its seq only now: no message is made for a row that reads
            raise CorruptRow(f"seq {seq}: {e}") from None
        yield record(Recorded, (seq, day, stream, event))


class EventStore:
    """A Folio ledger file. Open with `EventStore.open(path)`; create with `EventStore.create(path)`."""

    def __init__(self, conn: sqlite3.Connection, path: str, clock: Callable[[], str] = utc_now):
        self.conn = conn
        self.path = path
        self.clock = clock
        #: account -> owner at a log position (seq, hash): see `account_owners`
        self._owners: tuple[int, str, dict[str, str]] | None = None
        #: derived reads worth keeping while this connection lives, each keyed by the state it derives from
        #: (an append-only table's last row, a log position): see `projections.risk`
        self.memo: dict = {}

    # -- opening --------------------------------------------------------------
    @classmethod
    def _connect(cls, path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    @classmethod
    def create(cls, path: str, *, clock: Callable[[], str] = utc_now) -> "EventStore":
        """Create a new ledger (or open an existing one unchanged)."""
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return cls.open(path, clock=clock)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise LedgerError(f"{path}: cannot create a ledger there: folder {folder} does not exist")
        try:
            conn = cls._connect(path)
        except sqlite3.OperationalError as e:
            raise LedgerError(f"{path}: cannot create a ledger there ({e})") from None
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA application_id = {APP_ID}")
        conn.execute("BEGIN IMMEDIATE")
        for statement in _statements(SCHEMA):
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO folio_meta VALUES ('format', ?)", (str(FORMAT),))
        conn.execute("INSERT OR IGNORE INTO folio_meta VALUES ('created_at', ?)", (clock(),))
        conn.execute("COMMIT")
        return cls(conn, path, clock)

    @classmethod
    def open(cls, path: str, *, clock: Callable[[], str] = utc_now) -> "EventStore":
        """Open an existing ledger; refuse a file that is missing or is not a Folio ledger."""
        if not os.path.exists(path):
            raise NotALedger(f"{path}: no ledger here; create one with `folio init`")
        try:
            conn = cls._connect(path)
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            fmt = conn.execute("SELECT value FROM folio_meta WHERE key = 'format'").fetchone() if app == APP_ID else None
        except sqlite3.DatabaseError as e:
            raise NotALedger(f"{path}: not a Folio ledger ({e})") from None
        if app != APP_ID or fmt is None:
            conn.close()
            raise NotALedger(f"{path}: not a Folio ledger (a SQLite file of something else)")
        if int(fmt[0]) > FORMAT:
            raise NotALedger(f"{path}: ledger format {fmt[0]} is newer than this Folio understands ({FORMAT})")
        conn.execute("PRAGMA synchronous = FULL")
        try:  # ledgers created before these indexes gain them once (reads work without them, more slowly)
            conn.execute("CREATE INDEX IF NOT EXISTS events_stream_effective ON events (stream, effective)")
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'events_fold'").fetchone():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"CREATE INDEX IF NOT EXISTS events_fold_order ON events (effective, {PHASE}, seq)")
                conn.execute("DROP INDEX events_fold")
                conn.execute("COMMIT")
        except sqlite3.DatabaseError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return cls(conn, path, clock)

    @classmethod
    def reader(cls, path: str) -> "EventStore":
        """A ledger someone has opened already, for reading on a connection of its own (a forked process's: it must
        not use the connection it inherits), without `open`'s checks and upgrades."""
        return cls(cls._connect(path), path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- transactions ---------------------------------------------------------
    def transaction(self) -> "_Transaction":
        """`with store.transaction():` holds the write lock from the first read to the commit."""
        return _Transaction(self.conn)

    # -- writing --------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        row = self.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (row[0], row[1])

    def version(self, stream: str) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM events WHERE stream = ?", (stream,)).fetchone()
        return row[0] or 0

    def append(self, new: Sequence[NewEvent], expected: Mapping[str, int] | None = None) -> AppendResult:
        """Append events atomically. `expected` maps streams to the version the caller read.

        An idempotency key already recorded for the same event is skipped (and reported in
        `duplicates`); one recorded for a different event raises `IdempotencyConflict`.
        """
        with self.transaction():
            return self._append_locked(new, expected or {})

    def _append_locked(self, new: Sequence[NewEvent], expected: Mapping[str, int]) -> AppendResult:
        conn = self.conn
        for stream, want in expected.items():
            actual = self.version(stream)
            if actual != want:
                raise ConcurrencyConflict(stream, want, actual)
        seq, prev = self.head()
        self._check_head(seq, prev)
        last_recorded = conn.execute("SELECT MAX(recorded_at) FROM events").fetchone()[0]
        recorded_at = max(self.clock(), last_recorded or "")
        versions: dict[str, int] = {}
        rows: list[tuple] = []
        duplicates: list[tuple[str, int]] = []
        seen_keys: dict[str, tuple] = {}
        metas: dict[tuple, str] = {}
        recorded = self.find_idems([item.idem_key for item in new if item.idem_key is not None])
        for item in new:
            type_, schema, payload = codec.encode(item.event)
            effective = item.effective.isoformat()
            if item.idem_key is not None:
                found = recorded.get(item.idem_key)
                if found is None and item.idem_key in seen_keys:
                    found = seen_keys[item.idem_key]
                if found is not None:
                    if tuple(found[1:]) != (item.stream, type_, effective, payload):
                        raise IdempotencyConflict(idem_conflict_message(item.idem_key, found[0]))
                    duplicates.append((item.idem_key, found[0]))
                    continue
            stream_version = versions.get(item.stream)
            if stream_version is None:
                stream_version = self.version(item.stream)
            stream_version += 1
            versions[item.stream] = stream_version
            seq += 1
            meta = _meta_text(metas, item.meta)
            digest = row_hash(prev, seq, item.stream, stream_version, type_, schema, effective, recorded_at, payload, meta, item.idem_key)
            row = (seq, item.stream, stream_version, type_, schema, effective, recorded_at, payload, meta, item.idem_key, digest)
            if item.idem_key is not None:
                seen_keys[item.idem_key] = (seq, item.stream, type_, effective, payload)
            rows.append(row)
            prev = digest
        conn.executemany(f"INSERT INTO events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        return AppendResult(rows=tuple(StoredRow(*r) for r in rows), duplicates=tuple(duplicates))

    def restore(self, rows: Iterable[StoredRow], *, batch: int = 10_000, progress=None) -> tuple[int, int]:
        """Append rows exported from a ledger verbatim, keeping seq, times and hashes.

        Each row must continue this ledger's chain; rows already present (same seq and hash)
        are skipped, so restoring the same export twice is a no-op. Returns (added, skipped).
        All or nothing: any mismatch raises and nothing is written. `progress(what, done, total)`,
        if given, hears of the rows checked and written, a batch at a time.
        """
        total = len(rows) if isinstance(rows, Sequence) else None
        added = skipped = 0
        with self.transaction():
            seq, prev = self.head()
            last_recorded = self.conn.execute("SELECT MAX(recorded_at) FROM events").fetchone()[0] or ""
            versions: dict[str, int] = {}  # each stream's last version: the file's next row of it must follow
            keys: set[str] = set()  # idempotency keys the file adds
            pending: list[tuple] = []
            for row in rows:
                if row.seq <= seq:
                    have = self.conn.execute("SELECT hash FROM events WHERE seq = ?", (row.seq,)).fetchone()
                    if have is None or have[0] != row.hash:
                        raise LedgerError(f"seq {row.seq} in the file differs from seq {row.seq} in this ledger: the file is from another ledger")
                    skipped += 1
                    continue
                if row.seq != seq + 1:
                    raise LedgerError(f"seq {row.seq} does not follow seq {seq}: the file has a gap")
                expect = row_hash(prev, row.seq, row.stream, row.version, row.type, row.schema, row.effective,
                                  row.recorded_at, row.payload, row.meta, row.idem_key)
                if expect != row.hash:
                    raise LedgerError(f"seq {row.seq}: hash does not match its content and the row before it: the file was altered")
                if row.recorded_at < last_recorded:
                    raise LedgerError(f"seq {row.seq}: recorded_at goes back in time")
                try:
                    dt.date.fromisoformat(row.effective)
                except (TypeError, ValueError):
                    raise LedgerError(f"seq {row.seq}: effective date {row.effective!r} is not a date (YYYY-MM-DD)") from None
                last = versions[row.stream] if row.stream in versions else self.version(row.stream)
                if row.version != last + 1:
                    raise LedgerError(f"seq {row.seq}: version {row.version} of stream {row.stream} does not follow "
                                      f"version {last}: the file is not one ledger's log")
                versions[row.stream] = row.version
                if row.idem_key is not None:
                    if row.idem_key in keys or self.conn.execute(
                            "SELECT 1 FROM events WHERE idem_key = ?", (row.idem_key,)).fetchone():
                        raise LedgerError(f"seq {row.seq}: reference {row.idem_key!r} is recorded twice")
                    keys.add(row.idem_key)
                event = row.decode()  # refuse a row this version cannot read before anything is written
                kind, _, name = row.stream.partition(":")
                named = getattr(event, {"account": "account", "security": "symbol", "owner": "owner"}.get(kind, ""), name)
                if named != name:  # a scoped fold reads a stream for its own account (symbol, owner) only
                    raise LedgerError(f"seq {row.seq}: a {row.type} of {named} is in stream {row.stream}: "
                                      f"the file is not one ledger's log")
                pending.append(attrs.astuple(row))
                seq, prev, last_recorded = row.seq, row.hash, row.recorded_at
                if len(pending) >= batch:
                    self.conn.executemany(f"INSERT INTO events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", pending)
                    added += len(pending)
                    pending.clear()
                    if progress is not None:
                        progress("checking and writing events", added + skipped, total)
            self.conn.executemany(f"INSERT INTO events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", pending)
            added += len(pending)
            if progress is not None:
                progress("checking and writing events", added + skipped, added + skipped)
        return added, skipped

    # -- reading --------------------------------------------------------------
    def rows(
        self,
        *,
        stream: str | None = None,
        streams: Sequence[str] | None = None,
        seq_from: int | None = None,
        seq_to: int | None = None,
        effective_from: dt.date | None = None,
        effective_to: dt.date | None = None,
        known_seq: int | None = None,
        type_: str | None = None,
        fold_order: bool = False,
    ) -> Iterator[StoredRow]:
        """Rows matching every filter given, in seq order (or fold order)."""
        where, args = [], []
        if stream is not None:
            where.append("stream = ?")
            args.append(stream)
        if streams is not None:
            where.append(f"stream IN ({','.join('?' * len(streams))})")
            args.extend(streams)
        if seq_from is not None:
            where.append("seq >= ?")
            args.append(seq_from)
        if seq_to is not None:
            where.append("seq <= ?")
            args.append(seq_to)
        if known_seq is not None:
            where.append("seq <= ?")
            args.append(known_seq)
        if effective_from is not None:
            where.append("effective >= ?")
            args.append(effective_from.isoformat())
        if effective_to is not None:
            where.append("effective <= ?")
            args.append(effective_to.isoformat())
        if type_ is not None:
            where.append("type = ?")
            args.append(type_)
        sql = f"SELECT {COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {FOLD_ORDER if fold_order else 'seq'}"
        for r in self.conn.execute(sql, args):
            yield StoredRow(*r)

    def row(self, seq: int) -> StoredRow | None:
        r = self.conn.execute(f"SELECT {COLUMNS} FROM events WHERE seq = ?", (seq,)).fetchone()
        return None if r is None else StoredRow(*r)

    def fold_records(
        self,
        *,
        known_seq: int | None = None,
        after: dt.date | None = None,
        as_of: dt.date | None = None,
        accounts: Sequence[str] | None = None,
    ) -> Iterator[Recorded]:
        """Decoded events in fold order (effective, phase, seq), lazily, for (after, as_of] and seq <= known_seq.

        With `accounts`, only those account streams and every security stream.
        """
        return decode_rows(self.fold_rows(known_seq=known_seq, after=after, as_of=as_of, accounts=accounts))

    def fold_rows(
        self,
        *,
        known_seq: int | None = None,
        after: dt.date | None = None,
        as_of: dt.date | None = None,
        accounts: Sequence[str] | None = None,
        only_streams: Sequence[str] | None = None,
        except_streams: Sequence[str] | None = None,
    ) -> Iterator[tuple]:
        """`fold_records`'s rows as read, (seq, effective, stream, type, schema, payload, ...), not decoded.

        Without `accounts`, `only_streams` keeps the rows of those streams and of every security; `except_streams`
        the rows of every stream but those (the two halves of a fold split by owner). Both filter a walk of the
        fold order's index (`+stream`: not the stream index, which would need a sort)."""
        where, args = ["type <> 'EventVoided'"], []
        if only_streams is not None:
            where.append("(+stream IN (SELECT value FROM json_each(?)) OR +stream >= 'security:' AND +stream < 'security;')")
            args.append(json.dumps(list(only_streams)))
        if except_streams is not None:
            where.append("+stream NOT IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(except_streams)))
        if known_seq is not None:
            # scoped, `+seq`: never walk the log by seq, use the stream index
            where.append("seq <= ?" if accounts is None else "+seq <= ?")
            args.append(known_seq)
        if after is not None:
            where.append("effective > ?")
            args.append(after.isoformat())
        if as_of is not None:
            where.append("effective <= ?")
            args.append(as_of.isoformat())
        cond = " AND ".join(where)
        if accounts is None:
            sql = f"SELECT seq, effective, stream, type, schema, payload FROM events WHERE {cond} ORDER BY {FOLD_ORDER}"
        else:
            # two index ranges (the scope's streams, then every security stream) instead of one scan of the
            # whole log filtered by stream: a one-account fold reads that account's rows, whatever the log's size
            streams = self.scope_streams(accounts, known_seq)
            sql = (f"SELECT seq, effective, stream, type, schema, payload, 2 - (type = 'AccountOpened') AS phase FROM events "
                   f"WHERE stream IN ({','.join('?' * len(streams))}) AND {cond} "
                   f"UNION ALL SELECT seq, effective, stream, type, schema, payload, 0 AS phase FROM events "
                   f"WHERE stream >= 'security:' AND stream < 'security;' AND {cond} ORDER BY effective, phase, seq")
            args = [*streams, *args, *args]
        return self.conn.execute(sql, args)

    def voided(self, known_seq: int | None = None) -> dict[int, int]:
        """Voided seq -> the seq of the void, as known at `known_seq`."""
        sql = "SELECT seq, payload FROM events WHERE type = 'EventVoided'"
        args: list = []
        if known_seq is not None:
            sql += " AND seq <= ?"
            args.append(known_seq)
        return {json.loads(p)["seq"]: s for s, p in self.conn.execute(sql, args)}

    def seq_known_at(self, timestamp: str) -> int:
        """The last seq recorded at or before a UTC timestamp (0 when nothing was)."""
        row = self.conn.execute("SELECT MAX(seq) FROM events WHERE recorded_at <= ?", (timestamp,)).fetchone()
        return row[0] or 0

    def earliest_effective_since(self, seq: int, known_seq: int | None = None, accounts: Sequence[str] | None = None) -> str | None:
        """The earliest effective date among rows recorded after `seq` (up to `known_seq`): what a snapshot at `seq` misses."""
        sql = "SELECT MIN(effective) FROM events WHERE seq > ?"
        args: list = [seq]
        if known_seq is not None:
            sql += " AND seq <= ?"
            args.append(known_seq)
        if accounts is not None:
            streams = self.scope_streams(accounts, known_seq)
            sql += f" AND (stream IN ({','.join('?' * len(streams))}) OR substr(stream, 1, 9) = 'security:')"
            args.extend(streams)
        return self.conn.execute(sql, args).fetchone()[0]

    def scope_streams(self, accounts: Sequence[str], known_seq: int | None = None) -> list[str]:
        """The streams a fold of these accounts reads (besides every security stream): theirs and their owners' (as
        known at `known_seq`: an owner amended since was not their owner then)."""
        owners = self.account_owners_at(known_seq)
        return [f"account:{a}" for a in accounts] + sorted({f"owner:{owners[a]}" for a in accounts if a in owners})

    def find_idem(self, key: str) -> tuple | None:
        """(seq, stream, type, effective, payload) of the row recorded under an idempotency key."""
        return self.find_idems([key]).get(key)

    def find_idems(self, keys: Sequence[str]) -> dict[str, tuple]:
        """`find_idem` of many keys at once (an import's): key -> (seq, stream, type, effective, payload)."""
        found: dict[str, tuple] = {}
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 500):  # well under SQLite's limit on bound parameters
            chunk = keys[i:i + 500]
            for key, *row in self.conn.execute(
                    f"SELECT idem_key, seq, stream, type, effective, payload FROM events "
                    f"WHERE idem_key IN ({','.join('?' * len(chunk))})", chunk):
                found[key] = tuple(row)
        return found

    def latest_snapshot_seq(self, scope: str) -> int:
        return self.conn.execute("SELECT MAX(seq) FROM snapshots WHERE scope = ?", (scope,)).fetchone()[0] or 0

    def stream_spans(self, known_seq: int) -> dict[str, tuple[int, str, str]]:
        """Stream -> (how many of its events are recorded at or before `known_seq`, the first and last effective
        date among them). At the head, a few index probes a stream, not a walk of the log: the streams one after
        another (each the least above the last), a stream's count its last version (versions count from 1,
        gapless), its dates the ends of its (stream, effective) range (a GROUP BY walks the whole index: 0.25-0.5 s
        at 10^6 events, before a split fold can start; 0.02 s so). Known earlier, the probes would walk back over
        every later event of a stream: the GROUP BY then."""
        if known_seq < self.head()[0]:
            return {stream: (n, first, last) for stream, n, first, last in self.conn.execute(
                "SELECT stream, COUNT(*), MIN(effective), MAX(effective) FROM events WHERE seq <= ? GROUP BY stream",
                (known_seq,))}
        return {stream: (n, first, last) for stream, n, first, last in self.conn.execute(
            """WITH RECURSIVE s(stream) AS (
                   SELECT MIN(stream) FROM events
                   UNION ALL SELECT (SELECT MIN(stream) FROM events WHERE stream > s.stream) FROM s
                   WHERE s.stream IS NOT NULL)
               SELECT stream,
                   (SELECT MAX(version) FROM events e WHERE e.stream = s.stream AND e.seq <= :k),
                   (SELECT MIN(effective) FROM events e WHERE e.stream = s.stream AND e.seq <= :k),
                   (SELECT MAX(effective) FROM events e WHERE e.stream = s.stream AND e.seq <= :k)
               FROM s WHERE stream IS NOT NULL""", {"k": known_seq}) if n is not None}

    def account_openings(self, known_seq: int) -> list[tuple[int, str, str]]:
        """(seq, effective, stream) of every account opening recorded at or before `known_seq`."""
        return self.conn.execute("SELECT seq, effective, stream FROM events WHERE type = 'AccountOpened' AND seq <= ?",
                                 (known_seq,)).fetchall()

    def account_owners_at(self, known_seq: int | None) -> dict[str, str]:
        """Account id -> owner as the log knew it at `known_seq` (voided openings left out, a later one taking over:
        an amended owner counts from its amendment on); the head's when None."""
        if known_seq is None or known_seq >= self.head()[0]:
            return self.account_owners()
        voided = self.voided(known_seq)
        owners = {}
        for seq, payload in self.conn.execute(
                "SELECT seq, payload FROM events WHERE type = 'AccountOpened' AND seq <= ? ORDER BY seq", (known_seq,)):
            if seq not in voided:
                p = json.loads(payload)
                owners[p["account"]] = p["owner"]
        return owners

    def account_owners(self) -> dict[str, str]:
        """Account id -> owner, from every account ever opened.

        Cached by log position: while the row at the cached seq still has the cached hash (the chain then
        proves the whole prefix unchanged, even after a rolled-back append), only later rows are read."""
        head_seq, head_hash = self.head()
        since, owners = 0, {}
        if self._owners is not None:
            seq, hash_, known = self._owners
            row = self.conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone() if seq else None
            if seq == 0 or (row is not None and row[0] == hash_):
                since, owners = seq, dict(known)
        if since < head_seq:
            for (payload,) in self.conn.execute(
                    "SELECT payload FROM events WHERE type = 'AccountOpened' AND seq > ?", (since,)):
                p = json.loads(payload)
                owners[p["account"]] = p["owner"]
        self._owners = (head_seq, head_hash, owners)
        return dict(owners)

    def streams(self, prefix: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT stream FROM events WHERE stream >= ? AND stream < ? ORDER BY stream", (prefix, prefix + "\uffff"))]

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # -- audit ----------------------------------------------------------------
    #: the triggers that keep the log append-only
    GUARDS = ("events_no_update", "events_no_delete")

    def missing_guards(self) -> list[str]:
        """The append-only triggers the file no longer has (dropped outside Folio)."""
        have = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        return [g for g in self.GUARDS if g not in have]

    def _check_head(self, seq: int, digest: str) -> None:
        """Refuse to chain onto a last row whose content does not match its hash (found by review: a write onto an
        altered row was taken, and chained the alteration in). One row is checked, not the chain: `audit verify` walks
        that."""
        missing = self.missing_guards()
        if missing:  # (found by review: writes went on without them)
            raise LedgerError(f"{self.path}: the log's append-only triggers ({', '.join(missing)}) were removed outside "
                              f"Folio; nothing was written (`folio audit verify` says what else changed)")
        if seq == 0:
            return
        rows = self.conn.execute(f"SELECT {COLUMNS} FROM events WHERE seq IN (?, ?) ORDER BY seq", (seq - 1, seq)).fetchall()
        head = StoredRow(*rows[-1])
        prev = GENESIS if seq == 1 or len(rows) < 2 else rows[0][-1]
        if row_hash(prev, head.seq, head.stream, head.version, head.type, head.schema, head.effective, head.recorded_at,
                    head.payload, head.meta, head.idem_key) != digest:
            raise LedgerError(f"{self.path}: the log's last row, seq {seq}, does not match its hash: the ledger was altered "
                              f"outside Folio; nothing was written (`folio audit verify` names the first altered row)")

    def verify(self, progress=None) -> tuple[int, int | None, str]:
        """Walk the hash chain. Returns (rows checked, first bad seq or None, reason). `progress(what, done,
        total)`, if given, hears of the rows checked every 10,000."""
        prev, expected_seq, last_recorded, checked = GENESIS, 1, "", 0
        total = self.head()[0] if progress is not None else None
        for r in self.conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY seq"):
            if progress is not None and checked % 10_000 == 0:
                progress("verifying events", checked, total)
            row = StoredRow(*r)
            if row.seq != expected_seq:
                return checked, expected_seq, f"seq {expected_seq} is missing (next row is seq {row.seq})"
            digest = row_hash(prev, row.seq, row.stream, row.version, row.type, row.schema, row.effective,
                              row.recorded_at, row.payload, row.meta, row.idem_key)
            if digest != row.hash:
                return checked, row.seq, "its content does not match its hash"
            if row.recorded_at < last_recorded:
                return checked, row.seq, "recorded_at goes back in time"
            prev, expected_seq, last_recorded = row.hash, row.seq + 1, row.recorded_at
            checked += 1
        if progress is not None:
            progress("verifying events", checked, checked)
        return checked, None, ""

    # -- snapshots (a cache: never part of the chain, always rebuildable) -----
    def put_snapshot(self, scope: str, as_of: str, seq: int, fmt: int, state: bytes) -> None:
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?,?)", (scope, as_of, seq, fmt, state))

    def snapshots(self, scope: str, *, as_of: str, known_seq: int, fmt: int) -> list[tuple[str, int]]:
        """(as_of, seq) of usable snapshot candidates, latest date first."""
        return list(self.conn.execute(
            "SELECT as_of, seq FROM snapshots WHERE scope = ? AND as_of <= ? AND seq <= ? AND format = ? "
            "ORDER BY as_of DESC, seq DESC", (scope, as_of, known_seq, fmt)))

    def snapshot_keys(self, fmt: int) -> list[tuple[str, str, int]]:
        """(scope, as_of, seq) of every snapshot of format `fmt`, by scope, seq, then date."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT scope, as_of, seq FROM snapshots WHERE format = ? ORDER BY scope, seq, as_of", (fmt,))]

    def snapshot_state(self, scope: str, as_of: str, seq: int) -> bytes:
        return self.conn.execute(
            "SELECT state FROM snapshots WHERE scope = ? AND as_of = ? AND seq = ?", (scope, as_of, seq)).fetchone()[0]

    def clear_snapshots(self, scope: str | None = None) -> None:
        with self.transaction():
            if scope is None:
                self.conn.execute("DELETE FROM snapshots")
            else:
                self.conn.execute("DELETE FROM snapshots WHERE scope = ?", (scope,))


class _Transaction:
    """Re-entrant `BEGIN IMMEDIATE` … `COMMIT`; rolls back on any exception."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.outer = False

    def __enter__(self):
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.outer:
            if exc_type is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")
        return False


def _statements(script: str) -> list[str]:
    """Split the schema into statements, keeping trigger bodies whole."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and (not text.upper().startswith("CREATE TRIGGER") or text.upper().endswith("END;")):
            out.append(text)
            current = []
    return out
