"""Domain errors: one subclass per broken rule, each with a message a person can act on."""

from __future__ import annotations

from typing import Callable

#: what a command was doing, for an error message: the text, or (in the fold's hot paths) a function that
#: makes it, so replaying a long log formats no message it never shows
Doing = str | Callable[[], str]


def say(doing: Doing) -> str:
    return doing if isinstance(doing, str) else doing()


class DomainError(Exception):
    """A command or event breaks a business rule; nothing was recorded."""


class InvalidValue(DomainError, ValueError):
    """A value (quantity, price, date, symbol, account id) has the wrong shape."""


class UnknownAccount(DomainError):
    """The account was never opened (as of the date in question)."""


class AccountExists(DomainError):
    """An account with that id is already open."""


class InsufficientShares(DomainError):
    """A sale of more shares than are held on the trade date."""


class InsufficientCash(DomainError):
    """Cash would go below zero in an account that allows no overdraft."""


class UnknownLot(DomainError):
    """Specific identification names a lot that is not open."""


class InvalidVoid(DomainError):
    """A void of an unknown, already voided or unvoidable event."""


class TimelineConflict(DomainError):
    """A backdated event would make a later recorded event impossible."""

    def __init__(self, message: str, *, conflicts: tuple[int, ...] = ()):
        super().__init__(message)
        self.conflicts = conflicts
