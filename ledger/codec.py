"""The one place events become stored rows and back: a cattrs converter, canonical JSON, upcasters.

Canonical JSON is sorted keys, no spaces, Decimals and dates as strings, so
the same event always has the same bytes, and so the same hash.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import typing
from decimal import Decimal
from typing import Any, Callable

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn

from domain.errors import DomainError
from domain.events import REGISTRY, Event
from domain.values import is_plain
from ledger.errors import CorruptRow, UnknownEventType

def _decimal_text(d: Decimal) -> str:
    """Equal decimals give equal text (10, 10.0 and 1E+1 all become "10"), so equal events hash the same."""
    if d == 0:
        return "0"
    text = str(d)
    if is_plain(text):
        return text
    n = d.normalize(decimal.Context(prec=max(28, len(d.as_tuple().digits))))  # never round a digit away
    return format(n, "f")


converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_unstructure_hook(Decimal, _decimal_text)
converter.register_unstructure_hook(dt.date, dt.date.isoformat)


def _structure_decimal(value: Any, _type: type) -> Decimal:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return Decimal(value)
    raise ValueError(f"expected a decimal as a string, got {value!r}")


def _structure_date(value: Any, _type: type) -> dt.date:
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    raise ValueError(f"expected an ISO date string, got {value!r}")


converter.register_structure_hook(Decimal, _structure_decimal)
converter.register_structure_hook(dt.date, _structure_date)

#: (type name, from schema version) -> function turning a v payload dict into a v+1 payload dict
UPCASTERS: dict[tuple[str, int], Callable[[dict], dict]] = {}


def upcaster(type_name: str, from_version: int):
    def wrap(fn):
        UPCASTERS[(type_name, from_version)] = fn
        return fn

    return wrap


@upcaster("AccountOpened", 1)
def _account_opened_v1(payload: dict) -> dict:
    """Schema 1 had no lot method and no overdraft flag: every account relieved FIFO and allowed no overdraft."""
    return {**payload, "lot_method": "fifo", "overdraft": False}


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_plain(obj: Any) -> str:
    """`canonical` of data without floats (strings, ints, bools, None, lists, dicts with string keys), made by
    orjson at 5-10x the speed, byte for byte the same text; anything orjson will not write (a lone surrogate,
    an integer past 64 bits, a key not a string) goes to `canonical`. Floats are the one thing the two write
    differently (1e-05 and 0.00001): never hand this one a float."""
    try:
        return orjson.dumps(obj, option=_PLAIN).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return canonical(obj)


# types orjson would write and the stdlib refuses (or writes otherwise) go to the stdlib, which decides
_PLAIN = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
          | orjson.OPT_PASSTHROUGH_SUBCLASS)


def _float_free(cls: type) -> bool:
    """Whether every field of an event class unstructures to strings, ints, bools, None, or lists of attrs
    classes that do too: its payloads may go to `canonical_plain`."""
    plain = (str, bool, int, Decimal, dt.date, str | None, Decimal | None, dt.date | None)
    hints = typing.get_type_hints(cls)
    for t in (hints[f.name] for f in attrs.fields(cls)):
        if t in plain:
            continue
        args = typing.get_args(t)
        if typing.get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis and (
                args[0] in plain or (attrs.has(args[0]) and _float_free(args[0]))):
            continue
        return False
    return True


_FLOAT_FREE = {cls for cls in REGISTRY.values() if _float_free(cls)}


def encode(event: Event) -> tuple[str, int, str]:
    """An event as (type, schema, canonical JSON payload)."""
    cls = type(event)
    name = cls.__name__
    if REGISTRY.get(name) is not cls:
        raise UnknownEventType(f"{name} is not a registered event")
    data = converter.unstructure(event)
    return name, cls.schema, canonical_plain(data) if cls in _FLOAT_FREE else canonical(data)


def upcast(type_name: str, schema: int, payload: dict) -> dict:
    cls = REGISTRY.get(type_name)
    if cls is None:
        raise UnknownEventType(f"event type {type_name!r} is not known to this version of Folio")
    if schema > cls.schema:
        raise UnknownEventType(
            f"{type_name} schema {schema} is newer than this version of Folio understands ({cls.schema}); upgrade Folio"
        )
    while schema < cls.schema:
        step = UPCASTERS.get((type_name, schema))
        if step is None:
            raise UnknownEventType(f"no upcaster for {type_name} from schema {schema}")
        payload = step(payload)
        schema += 1
    return payload


_structure_fns: dict[str, Callable[[dict], Event]] = {}


def _structure_fn(type_name: str) -> Callable[[dict], Event]:
    fn = _structure_fns.get(type_name)
    if fn is None:
        cls = REGISTRY[type_name]
        gen = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)
        slow = lambda d, _gen=gen, _cls=cls: _gen(d, _cls)  # noqa: E731
        fn = _structure_fns[type_name] = _fast_structure(cls, slow) or slow
    return fn


def _fast_structure(cls: type, slow: Callable[[dict], Event]) -> Callable[[dict], Event] | None:
    """A structure function for the payloads Folio writes (every field present, each of its exact JSON type),
    compiled for one event class: 2-3x cattrs's generic one, which any other payload goes to (`slow`), as
    does any payload it cannot build an event from, so the result, and every error, is cattrs's.
    None for a class with a field it does not know how to read.

    When every validator of the class offers its plain-value test (`validator.plain`, see `domain.events`),
    a payload whose values all pass them is built without the class's `__init__`: the fields set through
    their slots, then `__attrs_post_init__`, which is what `__init__` would do with validators that pass
    (twice the speed); a value that does not pass goes through `__init__`, whose validators decide."""
    hints = typing.get_type_hints(cls)
    scope: dict[str, object] = {"_slow": slow, "_cls": cls,
                                "_D": Decimal, "_day": dt.date.fromisoformat, "_new": object.__new__}
    reads, checks, makes, args, plain, sets = [], [], [], [], [], []
    direct = "__slots__" in cls.__dict__
    decimals = {}  # field index -> its plain test, for Decimal fields that have one (see the cache below)
    for i, field in enumerate(attrs.fields(cls)):
        t, v, a = hints[field.name], f"v{i}", f"a{i}"
        reads.append(f"{v} = d[{field.name!r}]")
        converted = False
        if t in (str, bool, int):
            checks.append(f"{v}.__class__ is not {t.__name__}")
            a = v
        elif t is Decimal:
            checks.append(f"{v}.__class__ is not str")
            decimals[i] = getattr(field.validator, "plain", None) if field.validator is not None else True
        elif t is dt.date:
            checks.append(f"{v}.__class__ is not str")
            makes.append(f"{a} = _day({v})")
        elif t == str | None:
            checks.append(f"({v} is not None and {v}.__class__ is not str)")
            a = v
        elif t == Decimal | None:
            checks.append(f"({v} is not None and {v}.__class__ is not str)")
            makes.append(f"{a} = None if {v} is None else _D({v})")
        elif typing.get_origin(t) is tuple:
            checks.append(f"{v}.__class__ is not list or {v}")  # an empty list; any other goes the slow way
            makes.append(f"{a} = ()")
            converted = True  # an empty tuple is what the field's converter (tuple) would make of it
        else:
            return None
        args.append(f"{field.alias}={a}")
        if i in decimals:
            if decimals[i] is None:
                direct = False  # a validator with no plain test: it decides every value
            # the text's Decimal, made and tested once: a replay meets the same prices, quantities and fees
            # again and again (Decimals are immutable, so one may stand for every equal text)
            scope[f"_c{i}"] = {}
            makes.append(f"{a} = _c{i}.get({v})")
            makes.append(f"if {a} is None:")
            makes.append(f"    {a} = _D({v})")
            if decimals[i] is True:
                makes.append(f"    _keep(_c{i}, {v}, {a})")
            elif decimals[i] is not None:
                scope[f"_p{i}"] = decimals[i]
                makes.append(f"    if _p{i}({a}):")
                makes.append(f"        _keep(_c{i}, {v}, {a})")
                makes.append(f"    else:")
                makes.append(f"        plain = False")
        elif field.validator is not None:
            test = getattr(field.validator, "plain", None)
            if test is None:
                direct = False
            elif isinstance(getattr(test, "__self__", None), (set, frozenset)) and test.__name__ == "__contains__":
                scope[f"_p{i}"] = test.__self__  # a set's membership: tested in place, not called
                plain.append(f"{a} in _p{i}")
            else:
                scope[f"_p{i}"] = test
                plain.append(f"_p{i}({a})")
        if field.converter is not None and not converted:
            direct = False
        scope[f"_s{i}"] = getattr(cls.__dict__.get(field.name), "__set__", None)
        direct = direct and scope[f"_s{i}"] is not None
        sets.append(f"_s{i}(o, {a})")
    body = ["try:", *(f"    {r}" for r in reads), "except KeyError:", "    return _slow(d)"]
    if checks:
        body += [f"if {' or '.join(checks)}:", "    return _slow(d)"]
    scope["_keep"] = _keep
    body += ["try:", "    plain = True", *(f"    {m}" for m in makes)]
    if direct:
        body += [f"    if {' and '.join(['plain', *plain])}:", "        o = _new(_cls)", *(f"        {x}" for x in sets)]
        if hasattr(cls, "__attrs_post_init__"):
            body.append("        o.__attrs_post_init__()")
        body.append("        return o")
    body += [f"    return _cls({', '.join(args)})",
             "except Exception:", "    return _slow(d)  # a refusal: cattrs's, so the error is too"]
    # as many keys as fields, each found: the payload has exactly the fields' keys
    source = (f"def structure(d):\n    if len(d) != {len(attrs.fields(cls))}:\n        return _slow(d)\n"
              + "".join(f"    {line}\n" for line in body))
    exec(compile(source, f"<fast structure of {cls.__name__}>", "exec"), scope)
    return scope["structure"]


#: how many texts each Decimal field's cache keeps (then it starts again): bounded, so a replay's memory follows
#: its open lots, not the variety of its prices
DECIMAL_CACHE = 2_048


def _keep(cache: dict, text: str, value: Decimal) -> None:
    if len(cache) >= DECIMAL_CACHE:
        cache.clear()
    cache[text] = value


#: what building an event from a payload that does not fit raises
STRUCTURE_ERRORS = (cattrs.BaseValidationError, DomainError, ValueError, TypeError, KeyError)


#: type name -> (current schema, compiled structure function), for `decoder`'s fast path
_current: dict[str, tuple[int, Callable[[dict], Event]]] = {}


def decoder() -> Callable[[str, int, str], Event]:
    """`decode` without `where`, for a replay's every row: a payload of a type already met at its current schema
    goes straight to its structure function; anything else, and any failure, goes to `decode`, which gives the
    event or raises the error."""
    current, loads = _current, orjson.loads

    def fast(type_name: str, schema: int, payload: str) -> Event:
        known = current.get(type_name)
        if known is not None and known[0] == schema and payload.__class__ is str:
            try:
                data = loads(payload)
                if data.__class__ is dict:
                    return known[1](data)
            except Exception:  # noqa: BLE001  (decode says what is wrong)
                pass
        return decode(type_name, schema, payload)
    return fast


def decode(type_name: str, schema: int, payload: str | dict, *, where: str = "") -> Event:
    """A stored row's payload as its event, upcast to the current schema. Errors name `where`."""
    try:
        data = orjson.loads(payload) if isinstance(payload, str) else payload  # 3x json.loads; same objects
    except ValueError as e:
        raise CorruptRow(f"{where}payload is not valid JSON: {e}") from None
    if data.__class__ is not dict:
        raise CorruptRow(f"{where}payload is not a JSON object")
    fn = _structure_fns.get(type_name)
    if fn is None or schema != REGISTRY[type_name].schema:
        data = upcast(type_name, schema, data)
        fn = _structure_fn(type_name)
    try:
        event = fn(data)
    except STRUCTURE_ERRORS as e:
        raise CorruptRow(f"{where}{type_name} payload does not fit the event: {_describe(e)}") from None
    cls = REGISTRY[type_name]
    _current.setdefault(type_name, (cls.schema, fn))
    return event


def _describe(error: Exception) -> str:
    if isinstance(error, cattrs.BaseValidationError):
        parts = [_describe(sub) for sub in error.exceptions]
        return "; ".join(parts) or str(error)
    return str(error)
