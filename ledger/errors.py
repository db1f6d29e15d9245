"""Storage errors: what went wrong with the log itself, not with a business rule."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every storage error."""


class NotALedger(LedgerError):
    """The file is not a Folio ledger (or not a SQLite database at all)."""


class ConcurrencyConflict(LedgerError):
    """Another writer appended to a stream since this command read it; nothing was written."""

    def __init__(self, stream: str, expected: int, actual: int):
        super().__init__(
            f"stream {stream} is at version {actual}, this command expected {expected}: "
            "another writer got there first; nothing was written, run the command again"
        )
        self.stream, self.expected, self.actual = stream, expected, actual


class IdempotencyConflict(LedgerError):
    """An idempotency key was already used for a different event."""


class UnknownEventType(LedgerError):
    """A stored row names an event type (or schema version) this version of Folio does not know."""


class CorruptRow(LedgerError):
    """A stored row cannot be decoded (malformed JSON or a payload that does not fit its event)."""


class TamperDetected(LedgerError):
    """The hash chain does not match: a row was altered, inserted or removed outside Folio."""

    def __init__(self, seq: int, reason: str):
        super().__init__(f"hash chain broken at seq {seq}: {reason}")
        self.seq = seq
