"""The `folio` command line: parse, call one use case or read model, render. Nothing happens at import time."""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import sys
from decimal import Decimal
from pathlib import Path

import attrs
import click

from commands import render, service
from commands.progress import progress
from commands.imports import (cash_event, export_lines, looks_like_jsonl, read_csv, read_jsonl, read_price_rows,
                              read_prices, trade_event)
from commands.service import Context, Pending, account_stream
from domain import events as ev
from domain import values as v
from domain.errors import DomainError, UnknownAccount
from ledger.errors import LedgerError
from ledger.prices import add_prices, price_rows, restore_prices
from ledger.store import EventStore, NewEvent
from projections import views
from projections.pricing import price_for
from projections.replay import (Point, build_snapshots, counted, known_at_timestamp, load_books, owner_scope,
                                resolve_point, verify_snapshots)
from projections.tax_views import lot_value


# -- parameter types ------------------------------------------------------------
class DecimalType(click.ParamType):
    """A Decimal from the command line; floats never enter, NaN and infinity are refused."""

    name = "decimal"

    def convert(self, value, param, ctx):
        if isinstance(value, Decimal):
            return value
        try:
            return v.to_decimal(str(value), param.human_readable_name if param else "value")
        except DomainError as e:
            self.fail(str(e), param, ctx)


class DateType(click.ParamType):
    name = "date"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            return v.parse_date(value)
        except DomainError as e:
            self.fail(str(e), param, ctx)


DECIMAL = DecimalType()
DATE = DateType()


def read_text(path: str) -> str:
    """A file of text as UTF-8 (a byte-order mark dropped); one that is not says so, naming it (found by review: a
    UTF-16 export from a spreadsheet gave a bare codec error)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        hint = ("it is UTF-16 text: save it as CSV UTF-8" if utf16 else
                "it is not text (or in another encoding): save it as CSV UTF-8")
        raise click.ClickException(f"{path}: not UTF-8 (byte {e.start}): {hint}; nothing was recorded") from None


# -- shared state -----------------------------------------------------------------
class App:
    def __init__(self, db: str, actor: str):
        self.db = db
        self.actor = actor
        self._store: EventStore | None = None

    @property
    def store(self) -> EventStore:
        if self._store is None:
            self._store = EventStore.open(self.db)
        return self._store

    @property
    def ctx(self) -> Context:
        return Context(actor=self.actor)

    def today(self) -> dt.date:
        return dt.datetime.now(dt.timezone.utc).date()


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


pass_app = click.make_pass_decorator(App)


def fail_on_errors(fn):
    """Turn the one domain error and the ledger's errors into a clean message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (DomainError, LedgerError) as e:
            raise click.ClickException(str(e)) from None
        except ValueError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def point_options(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Machine-readable output, every number a string.")(fn)
    fn = click.option("--known-at-seq", type=click.IntRange(min=0), help="Fold only events recorded up to this seq.")(fn)
    fn = click.option("--known-at", help="Fold only events recorded by this UTC time (a date means its end).")(fn)
    fn = click.option("--as-of", type=DATE, help="Fold only events effective on or before this date.")(fn)
    return fn


@click.group()
@click.option("--db", envvar="FOLIO_DB", default="folio.db", show_default=True, help="The ledger file (FOLIO_DB).")
@click.option("--actor", envvar="FOLIO_ACTOR", default=None, help="Who is acting (FOLIO_ACTOR; default: your login).")
@click.version_option(package_name="folio")
@click.pass_context
def cli(ctx: click.Context, db: str, actor: str | None):
    """Folio: an event-sourced portfolio ledger."""
    ctx.obj = App(db=db, actor=actor or default_actor())


def main():
    cli(prog_name="folio")


@cli.command()
@pass_app
@fail_on_errors
def init(app: App):
    """Create an empty ledger."""
    existed = Path(app.db).exists() and Path(app.db).stat().st_size > 0
    EventStore.create(app.db).close()
    click.echo(f"{'Ledger already exists' if existed else 'Created ledger'} at {app.db}")


# -- accounts ---------------------------------------------------------------------
@cli.group()
def account():
    """Open accounts, correct their openings, assign models, set dividend reinvestment."""


@account.command("open")
@click.argument("account_id")
@click.option("--date", "day", type=DATE, help="Date the account opens (default: today, UTC).")
@click.option("--owner", help="Owner (default: the account id).")
@click.option("--tax-status", type=click.Choice(ev.TAX_STATUSES), default="taxable", show_default=True)
@click.option("--lot-method", type=click.Choice(ev.LOT_METHODS), default="fifo", show_default=True)
@click.option("--currency", default="USD", show_default=True)
@click.option("--overdraft/--no-overdraft", default=False, show_default=True, help="Allow cash below zero.")
@pass_app
@fail_on_errors
def account_open(app: App, account_id, day, owner, tax_status, lot_method, currency, overdraft):
    """Open ACCOUNT_ID."""
    event = ev.AccountOpened(account=v.account_id(account_id), owner=v.owner_id(owner or account_id),
                             tax_status=tax_status, currency=v.currency(currency.upper()), lot_method=lot_method,
                             overdraft=overdraft)
    out = service.open_account(app.store, app.ctx, event, day or app.today())
    row = out.result.rows[0]
    click.echo(f"Opened {account_id} on {row.effective} (seq {row.seq})")


@account.command("amend")
@click.argument("account_id")
@click.option("--date", "day", type=DATE, help="The date it opened.")
@click.option("--owner", help="Its owner.")
@click.option("--tax-status", type=click.Choice(ev.TAX_STATUSES), help="Its tax status.")
@click.option("--lot-method", type=click.Choice(ev.LOT_METHODS), help="Its default lot relief method.")
@click.option("--currency", help="Its base currency (only while nothing else is recorded on it).")
@click.option("--overdraft/--no-overdraft", default=None, help="Allow cash below zero.")
@click.option("--reason", required=True, help="What was wrong (kept in the log with the void of the old opening).")
@pass_app
@fail_on_errors
def account_amend(app: App, account_id, day, owner, tax_status, lot_method, currency, overdraft, reason):
    """Correct how ACCOUNT_ID was opened: the old opening is voided and the corrected one recorded, checked
    against every event of the account and of the accounts of its old and new owner."""
    out = service.amend_account(app.store, app.ctx, account_id, reason, day=day,
                                owner=v.owner_id(owner) if owner else None, tax_status=tax_status, lot_method=lot_method,
                                currency=v.currency(currency.upper()) if currency else None, overdraft=overdraft)
    void, opened = out.result.rows
    e = opened.decode()
    click.echo(f"Amended {account_id}: opens on {opened.effective} as {service.describe_opening(e)} (seq {opened.seq}; "
               f"the old opening, seq {void.decode().seq}, voided by seq {void.seq})")


# -- recording ----------------------------------------------------------------------
@cli.group()
def record():
    """Record deposits, withdrawals, fees, interest, buys and sells."""


def _record_one(app: App, account_id: str, event: ev.Event, day: dt.date, idem_key: str | None = None) -> None:
    new = NewEvent(account_stream(account_id), event, day, app.ctx.meta(), idem_key=idem_key)
    out = service.record(app.store, [Pending(new)])
    if out.result.duplicates:
        key, seq = out.result.duplicates[0]
        service.refuse_voided_duplicate(app.store, key, seq)
        click.echo(f"Already recorded as seq {seq} (ref {key}); nothing new written")
        return
    row = out.result.rows[0]
    click.echo(f"Recorded seq {row.seq}: {row.effective} {account_id} {views.summarize(row)}")


#: a negative number is a value, refused as one ("must be greater than zero"), not an unknown option "-5" (found by
#: review); a misspelt option still fails, as an unexpected argument
NUMBERS_MAY_BE_NEGATIVE = {"ignore_unknown_options": True}


def _cash_command(action: str, help_text: str):
    @record.command(action, help=help_text, context_settings=NUMBERS_MAY_BE_NEGATIVE)
    @click.argument("account_id")
    @click.argument("amount", type=DECIMAL)
    @click.option("--date", "day", type=DATE, required=True)
    @click.option("--ref", help="Your reference; recording the same reference twice is a no-op.")
    @pass_app
    @fail_on_errors
    def command(app: App, account_id, amount, day, ref):
        _record_one(app, account_id, cash_event(action, account_id, amount), day, idem_key=ref)

    return command


_cash_command("deposit", "Record a cash deposit of AMOUNT into ACCOUNT_ID.")
_cash_command("withdraw", "Record a cash withdrawal of AMOUNT from ACCOUNT_ID.")
_cash_command("fee", "Record a fee of AMOUNT charged to ACCOUNT_ID.")
_cash_command("interest", "Record interest of AMOUNT received by ACCOUNT_ID.")


def _trade_command(side: str):
    @record.command(side, help=f"Record a {side} of QUANTITY SYMBOL in ACCOUNT_ID.", context_settings=NUMBERS_MAY_BE_NEGATIVE)
    @click.argument("account_id")
    @click.argument("symbol")
    @click.argument("quantity", type=DECIMAL)
    @click.option("--price", type=DECIMAL, required=True, help="Price per share.")
    @click.option("--fees", type=DECIMAL, default=Decimal("0"), show_default=True, help="Commission and fees.")
    @click.option("--date", "day", type=DATE, required=True, help="Trade date.")
    @click.option("--lots", "method", type=click.Choice(ev.LOT_METHODS), help="Relief method for a sell (default: the account's).")
    @click.option("--lot", "picks", multiple=True, metavar="ID:QTY", help="Specific lot to sell from (repeatable).")
    @click.option("--ref", help="Your reference; recording the same reference twice is a no-op.")
    @pass_app
    @fail_on_errors
    def command(app: App, account_id, symbol, quantity, price, fees, day, method, picks, ref):
        if method and picks:
            raise click.UsageError("give --lots or --lot, not both")
        lots = method or ";".join(picks)
        event = trade_event(account_id, side, symbol.upper(), quantity, price, str(fees), lots, ref)
        _record_one(app, account_id, event, day, idem_key=ref)

    return command


_trade_command("buy")
_trade_command("sell")


@cli.command()
@click.argument("seq", type=int)
@click.option("--reason", required=True, help="Why the event should never have been recorded.")
@pass_app
@fail_on_errors
def void(app: App, seq, reason):
    """Void the event at SEQ (it stays in the log; folds skip it from now on)."""
    out = service.void(app.store, app.ctx, seq, reason)
    click.echo(f"Voided seq {seq} (void recorded as seq {out.result.rows[0].seq})")


# -- import / export ------------------------------------------------------------------
@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.option("--allow-repeats", is_flag=True,
              help="Record rows without a ref even when the same event is already recorded (a new, identical event).")
@pass_app
@fail_on_errors
def import_(app: App, file, as_json, allow_repeats):
    """Import FILE: broker CSV (date,account,action,...) or a JSONL export. All or nothing."""
    text = read_text(file)
    name = Path(file).name
    with progress(f"importing {name}", as_json=as_json) as shown:
        if looks_like_jsonl(file, text):
            rows = read_jsonl(text, shown, name)
            added, skipped = service.restore(app.store, rows, progress=shown)
            build_snapshots(app.store, progress=lambda what, done, total: shown(f"{what} for snapshots", done, total))
            summary = {"format": "jsonl", "recorded": added, "already_recorded": skipped}
        else:
            pending, problems = read_csv(text, Context(actor=app.actor, source="import"), name, shown)
            out = service.record(app.store, pending, problems=problems, progress=shown, refuse_repeats=not allow_repeats)
            summary = {"format": "csv", "recorded": len(out.result.rows), "already_recorded": len(out.result.duplicates)}
            voids = app.store.voided() if out.result.duplicates else {}
            # rows whose reference names a voided event: skipped like any repeat (a file imported again must not
            # bring back what was voided), and said, so that a row meant to come back gets a new reference
            summary["voided"] = sorted({seq for _, seq in out.result.duplicates if seq in voids})
    voided = summary.pop("voided", [])
    if as_json:
        click.echo(render.dumps({**{k: str(x) if isinstance(x, int) else x for k, x in summary.items()},
                                 **({"already_recorded_voided": [str(seq) for seq in voided]} if voided else {})}))
        return
    if summary["recorded"] == 0 and summary["already_recorded"]:
        click.echo(f"Nothing recorded: all {summary['already_recorded']} rows of {name} were already recorded")
    else:
        tail = f" ({summary['already_recorded']} already recorded, skipped)" if summary["already_recorded"] else ""
        click.echo(f"Recorded {summary['recorded']} events from {name}{tail}")
    if voided:
        click.echo(f"Of those already recorded, seq {', '.join(map(str, voided))} {'is' if len(voided) == 1 else 'are'} "
                   f"voided: to record such a row again, give it a new reference")


@cli.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout.")
@pass_app
@fail_on_errors
def export(app: App, output):
    """Export the whole log as JSONL, one event per line with every column."""
    total = app.store.head()[0]
    # the lines themselves on a terminal: no progress line among them
    on_screen = output is None and sys.stdout.isatty()
    with progress("folio export", as_json=on_screen) as shown:
        _write_lines(output, counted(export_lines(app.store.rows()), shown, "exporting events", total, every=10_000))


def _write_lines(output: str | None, lines) -> None:
    """Lines to a file (whole or not at all: written aside, then renamed) or to stdout."""
    if output:
        from commands.cli_tax import refuse_database
        refuse_database(output)
        folder = Path(output).resolve().parent
        if not folder.is_dir():
            raise click.ClickException(f"cannot write {output}: folder {folder} does not exist")
        tmp = Path(output + ".part")
        with tmp.open("w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
        tmp.replace(output)
    else:
        for line in lines:
            click.echo(line)


# -- read models ----------------------------------------------------------------------
def _books(app: App, account_id: str, as_of, known_at, known_at_seq, *, gains: bool = True):
    """The account's books at the point; `gains=False` for views of holdings (faster: no gain history). Without
    --as-of the books are today's, as the heading says: an event dated later (a split announced for next week) is
    not in them yet (found by review: `cash` headed "as of today" counted a trade dated 2099)."""
    point = resolve_point(app.store, as_of or service.latest_day(), known_at, known_at_seq)
    try:
        books = load_books(app.store, point, accounts=[account_id], keep_gains=gains)
    except UnknownAccount:  # (a point inside an amendment: its events without an opening) say why, if that is why
        _not_open(app, account_id, point, as_of)
        raise
    if account_id not in books.accounts:
        _not_open(app, account_id, point, as_of)
    return attrs.evolve(point, as_of=as_of), views.account_of(books, account_id, as_of)


def _not_open(app: App, account_id: str, point: Point, as_of) -> None:
    """Why an account is not in the books at a point, when its opening is in the log (found by review: a known-at
    time before it was recorded said it was "not open as of" a date it was open on)."""
    voided = app.store.voided()
    openings = list(app.store.rows(stream=account_stream(account_id), type_="AccountOpened"))
    opened = next((r for r in openings if r.seq not in voided), None)
    if opened is None:
        return
    k = point.known_seq
    if opened.seq > k:
        # the latest opening voided by then, and the next one recorded after (found by review: the first voided was
        # named, and the head's opening as the next)
        gone = [r for r in openings if r.seq <= k and r.seq in voided and voided[r.seq] <= k]
        if gone:  # a point between a void of the opening and the next one (an amendment, or a void and a new opening)
            last, after = gone[-1], min(r.seq for r in openings if r.seq > k)
            how = "in the amendment that records the new one" if after == voided[last.seq] + 1 else "and the next one is"
            raise DomainError(f"account {account_id} had no opening at seq {k}: its opening, seq {last.seq}, was voided "
                              f"by seq {voided[last.seq]} {how} as seq {after}; ask at seq {after} or later, or before "
                              f"seq {voided[last.seq]}")
        first = openings[0]  # (the first recorded, though an amendment voided it since: found by review)
        raise DomainError(f"account {account_id} was not yet recorded at seq {point.known_seq}: its opening is seq "
                          f"{first.seq}, recorded {first.recorded_at}")
    if point.as_of is not None and opened.effective > point.as_of.isoformat():
        raise DomainError(f"account {account_id} opens on {opened.effective}, after {point.as_of}")


def prices_known_at(app: App, known_at: str | None, known_at_seq: int | None) -> str | None:
    """The price table as it was known at the same point as the events: a timestamp, or the time seq N was recorded."""
    if known_at is not None:
        return known_at_timestamp(known_at)
    if known_at_seq is not None:
        row = app.store.row(known_at_seq) if known_at_seq > 0 else None
        return row.recorded_at if row else "0000"
    return None


def _heading(what: str, account_id: str, point: Point) -> str:
    parts = [f"{what} of {account_id}"]
    parts.append(f"as of {point.as_of}" if point.as_of else "as of today")
    parts.append(f"known at seq {point.known_seq}")
    return " ".join(parts[:2]) + f" ({parts[2]})"


@cli.command()
@click.argument("account_id")
@point_options
@pass_app
@fail_on_errors
def positions(app: App, account_id, as_of, known_at, known_at_seq, as_json):
    """Holdings of ACCOUNT_ID, valued at the latest price on or before the as-of date."""
    point, acct = _books(app, account_id, as_of, known_at, known_at_seq, gains=False)
    day = point.as_of or app.today()
    known = prices_known_at(app, known_at, known_at_seq)
    rows = views.positions(acct, lambda s: price_for(app.store, s, day, known, point.known_seq, acct.currency))
    if as_json:
        out = []
        for r in rows:
            d = {"symbol": r.symbol, "quantity": render.qty(r.quantity), "cost_basis": render.amount(r.cost_basis)}
            if r.price is not None:
                d.update(price=render.price(r.price.close), price_date=r.price.date.isoformat(),
                         market_value=render.amount(r.market_value))
            if r.weight is not None:
                d["weight"] = str(r.weight)
            out.append(d)
        click.echo(render.dumps(out))
        return
    click.echo(_heading("Positions", account_id, point))
    body = [[r.symbol, render.qty_short(r.quantity), render.amount(r.cost_basis),
             render.price(r.price.close) if r.price else "-", r.price.date.isoformat() if r.price else "-",
             render.amount(r.market_value) if r.market_value is not None else "-",
             f"{r.weight * 100:.2f}%" if r.weight is not None else "-"] for r in rows]
    click.echo(render.table(["symbol", "quantity", "cost_basis", "price", "price_date", "market_value", "weight"], body,
                            right=("quantity", "cost_basis", "price", "market_value", "weight")))
    click.echo(f"cash {render.amount(acct.cash)} {acct.currency}")


@cli.command()
@click.argument("account_id")
@point_options
@pass_app
@fail_on_errors
def lots(app: App, account_id, as_of, known_at, known_at_seq, as_json):
    """Open tax lots of ACCOUNT_ID, with the unrealized gain and term of each at the latest price."""
    point, acct = _books(app, account_id, as_of, known_at, known_at_seq, gains=False)
    day = point.as_of or app.today()
    rows = views.lots(acct)
    known = prices_known_at(app, known_at, known_at_seq)
    closes = {s: price_for(app.store, s, day, known, point.known_seq, acct.currency) for s in {l.symbol for l in rows}}
    valued = {l.lot_id: lot_value(l.quantity, l.cost_basis, l.hp_start, closes[l.symbol], day)
              for l in rows if closes[l.symbol] is not None}
    if as_json:
        out = []
        for l in rows:
            d = {"lot_id": l.lot_id, "symbol": l.symbol, "quantity": render.qty(l.quantity),
                 "cost_basis": render.amount(l.cost_basis), "acquired": l.acquired.isoformat(),
                 "holding_period_start": l.hp_start.isoformat(),
                 "origin": [{"seq": str(seq), "what": what} for seq, what in l.origin]}
            if l.lot_id in valued:
                val = valued[l.lot_id]
                d.update(price=render.price(val.price.close), price_date=val.price.date.isoformat(),
                         market_value=render.amount(val.market_value), unrealized_gain=render.amount(val.unrealized),
                         term=val.term)
            out.append(d)
        click.echo(render.dumps(out))
        return
    click.echo(_heading("Lots", account_id, point))
    body = []
    for l in rows:
        val = valued.get(l.lot_id)
        body.append([l.lot_id, l.symbol, render.qty_short(l.quantity), render.amount(l.cost_basis), l.acquired.isoformat(),
                     render.price(val.price.close) if val else "-", render.amount(val.unrealized) if val else "-",
                     val.term if val else "-"])
    click.echo(render.table(["lot_id", "symbol", "quantity", "cost_basis", "acquired", "price", "unrealized", "term"], body,
                            right=("lot_id", "quantity", "cost_basis", "price", "unrealized")))


@cli.command()
@click.argument("account_id")
@point_options
@pass_app
@fail_on_errors
def cash(app: App, account_id, as_of, known_at, known_at_seq, as_json):
    """Cash balance of ACCOUNT_ID."""
    point, acct = _books(app, account_id, as_of, known_at, known_at_seq, gains=False)
    rows = views.cash(acct)
    if as_json:
        click.echo(render.dumps([{"currency": c.currency, "balance": render.amount(c.balance)} for c in rows]))
        return
    click.echo(_heading("Cash", account_id, point))
    click.echo(render.table(["currency", "balance"], [[c.currency, render.amount(c.balance)] for c in rows], right=("balance",)))


@cli.command()
@click.option("--account", "account_id", help="Only this account's events.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def log(app: App, account_id, as_json):
    """The event log in recording order; voided events are marked."""
    if account_id is not None and account_id not in app.store.account_owners():
        raise click.ClickException(f"account {account_id} is not open: no event of the log opens it")
    entries = views.log(app.store, account=account_id)
    if as_json:
        out = []
        for e in entries:
            try:
                d = e.row.as_dict()
            except ValueError as error:  # a damaged payload or meta: the row as stored, and why it cannot be read
                d = {**attrs.asdict(e.row), "unreadable": f"{error}"}
            d["seq"], d["version"], d["schema"] = str(d["seq"]), str(d["version"]), str(d["schema"])
            d["voided_by"] = str(e.voided_by) if e.voided_by else None
            out.append(d)
        click.echo(render.dumps(out))
        return
    body = [[str(e.row.seq), e.row.recorded_at[:19] + "Z", e.row.effective, e.row.stream, e.row.type,
             views.readable(e.row) + (f"  [voided by seq {e.voided_by}]" if e.voided_by else "")] for e in entries]
    click.echo(render.table(["seq", "recorded_at", "effective", "stream", "type", "what"], body, right=("seq",)))


# -- audit --------------------------------------------------------------------------------
@cli.group()
def audit():
    """Prove the log was never altered."""


@audit.command()
@click.option("--snapshots/--no-snapshots", default=True, show_default=True,
              help="Also check every snapshot (a cache outside the chain) against a fold of the log.")
@pass_app
@fail_on_errors
def verify(app: App, snapshots: bool):
    """Walk the hash chain, naming the first row that does not match; then check the snapshots against the log."""
    with progress("folio audit verify") as shown:
        checked, bad, reason = app.store.verify(shown)
        if bad is None and snapshots:
            try:
                made, wrong = verify_snapshots(app.store, shown)
            except DomainError as e:  # (found by review: a log that no longer folds stopped the audit with its error)
                made, wrong = 0, [f"the log no longer folds: {e}"]
    if bad is not None:
        raise click.ClickException(f"hash chain broken at seq {bad}: {reason} ({checked} rows before it verified)")
    seq, head = app.store.head()
    missing = app.store.missing_guards()
    if missing:  # the chain still proves the rows, but nothing stops an edit now (found by review)
        raise click.ClickException(f"{checked} events verified, but the log's append-only triggers ({', '.join(missing)}) "
                                   f"were removed outside Folio: the file was opened for editing")
    last_snapshot = app.store.conn.execute("SELECT MAX(seq) FROM snapshots").fetchone()[0] or 0
    if last_snapshot > seq:  # a snapshot of a seq the log no longer has: rows were cut from its end (found by review)
        raise click.ClickException(f"{checked} events verified, but a snapshot was taken at seq {last_snapshot} and the "
                                   f"log ends at seq {seq}: rows were removed from its end (restore the ledger from a "
                                   f"copy or an export; rebuilding the snapshots would hide it)")
    click.echo(f"OK: {checked} events verified, head seq {seq} hash {head}")
    if snapshots and wrong:
        raise click.ClickException(
            f"{len(wrong)} of {made} snapshots do not match the log, and queries starting from them would be wrong:\n"
            + "\n".join(f"  {line}" for line in wrong[:20]) + ("\n  ..." if len(wrong) > 20 else "")
            + "\nrebuild them from the log with `folio snapshot`")
    if snapshots:
        click.echo(f"OK: {made} snapshots match the log")


@audit.command()
@pass_app
@fail_on_errors
def head(app: App):
    """Print the head seq and hash (keep it outside the file)."""
    seq, digest = app.store.head()
    click.echo(f"{seq} {digest}")


# -- prices and snapshots ----------------------------------------------------------------------
@cli.group()
def prices():
    """Market prices (append-only; a later row corrects an earlier one)."""


@prices.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--currency", default="USD", show_default=True)
@pass_app
@fail_on_errors
def prices_import(app: App, file, currency):
    """Import FILE: long `date,symbol,close` or wide `date,SYM1,SYM2,...`, or a `prices export` file (kept verbatim)."""
    text, name = read_text(file), Path(file).name
    if text.lstrip().startswith("{"):
        added, same = restore_prices(app.store, read_price_rows(text, name))
        click.echo(f"Restored {added} price rows from {name}" + (f" ({same} already here, skipped)" if same else ""))
        return
    rows = read_prices(text, name, v.currency(currency.upper()))
    added, same = add_prices(app.store, rows)
    click.echo(f"Recorded {added} prices from {name}" + (f" ({same} already known, skipped)" if same else ""))


@prices.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout.")
@pass_app
@fail_on_errors
def prices_export(app: App, output):
    """Export every price row as JSONL, with when it was recorded: `prices import` restores them as they were
    (with `export` and `import` of the log, a ledger whose proposals and known-at views reproduce)."""
    _write_lines(output, (render.canonical_line(row) for row in price_rows(app.store)))


@cli.command()
@pass_app
@fail_on_errors
def snapshot(app: App):
    """Rebuild the snapshots that make as-of queries fast (a cache; safe at any time)."""
    app.store.clear_snapshots()
    with progress("folio snapshot") as shown:
        made = build_snapshots(app.store, progress=lambda what, done, total: shown(f"{what} (whole ledger)", done, total))
        made += build_snapshots(app.store, keep_gains=False)
        streams = app.store.streams("account:")
        done: set = {()}  # (a scope of every account is the whole ledger's, built above)
        for i, stream in enumerate(streams):
            shown("accounts", i, len(streams))
            account = [stream.partition(":")[2]]
            scope = tuple(owner_scope(app.store, account) or ())
            if scope in done:  # an owner's accounts share one scope: built once (found by review: counted twice)
                continue
            done.add(scope)
            made += build_snapshots(app.store, account) + build_snapshots(app.store, account, keep_gains=False)
        shown("accounts", len(streams), len(streams))
    click.echo(f"Built {made} snapshots")


@cli.command()
@click.option("--db", "demo_db", type=click.Path(dir_okay=False), help="Build the demo in this file (default: a temporary one).")
@pass_app
@fail_on_errors
def demo(app: App, demo_db):
    """Build a realistic demo ledger from fixtures/ and show what Folio does."""
    from commands.demo import run_demo

    run_demo(demo_db, actor=app.actor, echo=click.echo)




# the other command families register themselves on the groups above
from commands import cli_actions, cli_backtest, cli_rebalance, cli_risk, cli_tax  # noqa: E402,F401
