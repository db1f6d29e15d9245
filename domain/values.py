"""Value types: Decimal quantities, prices and money; symbols; account ids; dates.

Decimals are built from str or int only: a float is refused, so no binary
rounding error ever enters the books.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from domain.errors import InvalidValue

CENT = Decimal("0.01")
ZERO = Decimal(0)

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-/]{0,19}$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


#: the magnitudes Folio takes: below 10^12 and, unless zero, at least 10^-12. A quantity times a price then fits,
#: to the cent, within Decimal's 28 digits; a number past them is a typo, refused with its name, not a crash later
DIGITS = 12


def in_range(d: Decimal) -> bool:
    """Whether a finite Decimal is zero or of a magnitude in [10^-12, 10^12)."""
    return not d or -DIGITS <= d.adjusted() < DIGITS


def to_decimal(value: object, what: str = "value") -> Decimal:
    """Parse a Decimal from str, int or Decimal; refuse floats, NaN, infinities and magnitudes out of `in_range`."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidValue(f"{what} must be given as text or an integer, not {type(value).__name__} {value!r}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidValue(f"{what} {value!r} is not a number") from None
    else:
        raise InvalidValue(f"{what} {value!r} is not a number")
    if not d.is_finite():
        raise InvalidValue(f"{what} {value!r} is not a finite number")
    if not in_range(d):
        if d.adjusted() >= DIGITS:
            raise InvalidValue(f"{what} {value!r} is too large: Folio takes numbers below 10^{DIGITS} (1,000,000,000,000)")
        raise InvalidValue(f"{what} {value!r} is too small: Folio takes numbers of 10^-{DIGITS} or more (or zero)")
    return d


def positive(value: object, what: str) -> Decimal:
    d = to_decimal(value, what)
    if d <= 0:
        raise InvalidValue(f"{what} must be greater than zero, got {d}")
    return d


def non_negative(value: object, what: str) -> Decimal:
    d = to_decimal(value, what)
    if d < 0:
        raise InvalidValue(f"{what} must not be negative, got {d}")
    return d


def money(value: object, what: str = "amount") -> Decimal:
    """A cash amount in whole cents; more precision is refused, not rounded away."""
    d = to_decimal(value, what)
    if d != d.quantize(CENT, rounding=ROUND_HALF_EVEN):
        raise InvalidValue(f"{what} {d} has more than two decimal places")
    return d.quantize(CENT)


def round_cents(d: Decimal) -> Decimal:
    """Round to cents, half to even: the one rounding rule where cash moves."""
    return d.quantize(CENT, ROUND_HALF_EVEN)  # (positional: half the time of `rounding=`; a replay calls it millions of times)


def normalize(d: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (10 stays 10, not 1E+1)."""
    if d == 0:
        return ZERO
    n = d.normalize()
    return n.quantize(Decimal(1)) if n.as_tuple().exponent > 0 else n


def is_plain(text: str) -> bool:
    """Whether a Decimal's `str` is already its plain spelling: no exponent, no trailing zero after a point (the
    fast path of the texts below and of canonical JSON: a replay or an import spells numbers by the thousand)."""
    return not ("E" in text or "e" in text or ("." in text and text[-1] == "0"))


def plain_text(d: Decimal) -> str:
    """`normalize(d)` as text (10, 2.5, 0.001): what a quantity reads as."""
    text = str(d)  # as is when plain, and short enough that normalize() would not round it to the context's 28 digits
    if len(text) > 27 or not is_plain(text) or text in ("0", "-0"):
        return format(normalize(d), "f")
    return text


def price_text(d: Decimal) -> str:
    """A price as people write one: whole numbers bare (190), otherwise at least to the cent (185.50, 12.345)."""
    text = str(d)  # the fast path, as in `plain_text`: 190, 12.345 and 185.55 are already as written
    if len(text) <= 27 and is_plain(text) and text[-1] != "0" and not text.startswith("-"):
        point = text.find(".")
        if point == -1 or len(text) - point > 2:
            return text
    n = normalize(d)
    exponent = n.as_tuple().exponent
    if exponent >= 0 or exponent <= -2:
        return format(n, "f")
    return format(n.quantize(CENT), "f")


def symbol(value: object) -> str:
    if not isinstance(value, str) or not _SYMBOL.fullmatch(value):
        raise InvalidValue(
            f"symbol {value!r} is not valid: use 1-20 capital letters, digits, '.', '-' or '/'"
        )
    return value


def _identifier(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        raise InvalidValue(
            f"{what} {value!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def owner_id(value: object) -> str:
    """An owner's name: the same rule as an account id, said of an owner."""
    return _identifier(value, "owner")


def account_id(value: object) -> str:
    return _identifier(value, "account id")


def currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise InvalidValue(f"currency {value!r} is not a three-letter ISO code such as USD")
    return value


def parse_date(value: object, what: str = "date") -> dt.date:
    if isinstance(value, dt.datetime):
        raise InvalidValue(f"{what} must be a date, not a timestamp")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):  # the one form (fromisoformat also reads 20240105
        try:                                                            # and week dates: found by review)
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidValue(f"{what} {value!r} is not a date in the form YYYY-MM-DD")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def one_year_after(day: dt.date) -> dt.date:
    """The anniversary of a date; 29 February's is 28 February of the next year."""
    anniversary = _ANNIVERSARIES.get(day)
    if anniversary is None:
        try:
            anniversary = day.replace(year=day.year + 1)
        except ValueError:
            anniversary = day.replace(year=day.year + 1, day=28)
        if len(_ANNIVERSARIES) > 100_000:
            _ANNIVERSARIES.clear()
        _ANNIVERSARIES[day] = anniversary
    return anniversary


_ANNIVERSARIES: dict[dt.date, dt.date] = {}  # every gain asks for its lot's: a replay meets each date many times


def is_long_term(acquired: dt.date, sold: dt.date) -> bool:
    """Held more than one year: counting starts the day after purchase and includes the sale date.

    A sale on the anniversary is therefore short-term, the next day long-term.
    """
    return sold > one_year_after(acquired)
