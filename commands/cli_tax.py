"""CLI commands for the tax engine: declarations, rates, gains reports (Form 8949), income, harvesting, restrictions."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from decimal import Decimal
from pathlib import Path

import click

from commands import render, service
from commands.actions import security_stream
from commands.cli import DATE, DECIMAL, App, _books, _heading, cli, fail_on_errors, pass_app, point_options
from commands.service import Pending
from domain import events as ev
from domain import values as v
from domain.errors import DomainError, UnknownAccount
from projections.pricing import price_for
from ledger.store import NewEvent
from projections import tax_views, views
from projections.replay import load_books, resolve_point


@cli.group()
def security():
    """Declare substantially identical securities and substitutes (for wash sales and harvesting)."""


def _record(app: App, stream: str, event: ev.Event, day, text: str) -> None:
    row = service.record(app.store, [Pending(NewEvent(stream, event, day, app.ctx.meta()))]).result.rows[0]
    click.echo(f"Recorded seq {row.seq}: {row.effective} {text}")


@security.command("identical")
@click.argument("symbol")
@click.argument("other")
@click.option("--date", "day", type=DATE, required=True, help="From when they count as one security for wash sales.")
@pass_app
@fail_on_errors
def security_identical(app: App, symbol, other, day):
    """Declare SYMBOL and OTHER substantially identical (a sale of one, a buy of the other: a wash sale)."""
    event = ev.IdenticalDeclared(symbol=v.symbol(symbol.upper()), identical_to=v.symbol(other.upper()))
    _record(app, security_stream(event.symbol), event, day, f"{event.symbol} and {event.identical_to} are substantially identical")


@security.command("substitute")
@click.argument("symbol")
@click.argument("substitute")
@click.option("--date", "day", type=DATE, required=True)
@pass_app
@fail_on_errors
def security_substitute(app: App, symbol, substitute, day):
    """Declare SUBSTITUTE an acceptable buy (not substantially identical) when harvesting a loss in SYMBOL."""
    event = ev.SubstituteDeclared(symbol=v.symbol(symbol.upper()), substitute=v.symbol(substitute.upper()))
    _record(app, security_stream(event.symbol), event, day, f"{event.substitute} may replace {event.symbol} when harvesting")


@cli.group()
def owner():
    """Owners: the scope of wash sales, and their tax rates."""


@owner.command("rates")
@click.argument("owner_id")
@click.option("--short-term", type=DECIMAL, required=True, help="Marginal rate on short-term gains (0.37 for 37%).")
@click.option("--long-term", type=DECIMAL, required=True, help="Rate on long-term gains (0.20 for 20%).")
@click.option("--date", "day", type=DATE, required=True)
@pass_app
@fail_on_errors
def owner_rates(app: App, owner_id, short_term, long_term, day):
    """Set OWNER_ID's tax rates, used for estimates (harvesting, min-tax relief, proposals)."""
    event = ev.TaxRatesSet(owner=v.owner_id(owner_id), short_term=short_term, long_term=long_term)
    _record(app, f"owner:{owner_id}", event, day, f"{owner_id} rates: short-term {short_term}, long-term {long_term}")


# -- gains --------------------------------------------------------------------------------
GAIN_COLUMNS = ["lot_id", "symbol", "quantity", "acquired", "sold", "proceeds", "cost_basis", "adjustment", "code", "gain",
                "term", "reason"]


@cli.command()
@click.argument("account_id")
@point_options
@click.option("--year", type=int, help="Only sales in this calendar year.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="csv: the layout of IRS Form 8949 (short-term and long-term parts, with totals).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@pass_app
@fail_on_errors
def gains(app: App, account_id, as_of, known_at, known_at_seq, as_json, year, fmt, output):
    """Realized gains of ACCOUNT_ID, per lot sold, with wash-sale adjustments (code W)."""
    point, acct = _books(app, account_id, as_of, known_at, known_at_seq)
    rows = views.gains(acct, year)
    if as_json and fmt not in ("table", "json"):  # found by review: --json won silently
        raise click.UsageError(f"give --json or --format {fmt}, not both")
    fmt = "json" if as_json else fmt
    if fmt == "json":
        text = render.dumps([{
            "lot_id": g.lot_id, "symbol": g.symbol, "quantity": render.qty(g.quantity), "acquired": g.acquired.isoformat(),
            "sold": g.sold.isoformat(), "proceeds": render.amount(g.proceeds), "cost_basis": render.amount(g.cost_basis),
            "adjustment": render.amount(g.adjustment), "code": g.code, "gain": render.amount(g.gain), "term": g.term,
            "reason": g.reason} for g in rows]) + "\n"
    elif fmt == "csv":
        if acct.tax_status != "taxable":  # found by review: an IRA's sales were laid out as a Form 8949
            raise DomainError(f"{account_id} is {acct.tax_status}: its sales are not reported on Form 8949 (use "
                              f"--format table or json to see them)")
        text = form_8949_csv(account_id, acct.owner, year, rows)
    else:
        lines = [_heading("Realized gains", account_id, point) + (f", {year}" if year else ""),
                 render.table(GAIN_COLUMNS, [[g.lot_id, g.symbol, render.qty_short(g.quantity), g.acquired.isoformat(),
                                              g.sold.isoformat(), render.amount(g.proceeds), render.amount(g.cost_basis),
                                              render.amount(g.adjustment) if g.adjustment else "", g.code,
                                              render.amount(g.gain), g.term, g.reason] for g in rows],
                              right=("lot_id", "quantity", "proceeds", "cost_basis", "adjustment", "gain"))]
        short = sum((g.gain for g in rows if g.term == "short"), Decimal(0))
        long_ = sum((g.gain for g in rows if g.term == "long"), Decimal(0))
        lines.append(f"short-term {render.amount(short)}  long-term {render.amount(long_)}  total {render.amount(short + long_)}")
        text = "\n".join(lines) + "\n"
    if output:
        write_atomically(output, text)
        click.echo(f"Wrote {len(rows)} gains to {output}")
    else:
        click.echo(text, nl=False)


def form_8949_csv(account_id: str, owner_id: str, year: int | None, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Form 8949", f"account {account_id}", f"owner {owner_id}", f"tax year {year}" if year else "all years"])
    parts = tax_views.form_8949_rows(rows)
    for title, term in (("Part I - Short-term transactions (held one year or less)", "short"),
                        ("Part II - Long-term transactions (held more than one year)", "long")):
        w.writerow([])
        w.writerow([title])
        w.writerow(tax_views.FORM_8949_HEADER)
        w.writerows(parts[term])
    return buf.getvalue()


#: the first bytes of every SQLite database file, a Folio ledger among them
SQLITE_MAGIC = b"SQLite format 3\x00"


def refuse_database(path: str) -> None:
    """An output file must not be a database (a ledger, above all) or the journal beside one: `export -o books.db`
    for `-o books.jsonl` replaced the ledger with its export and exited 0 (found by review)."""
    target = Path(path)
    journal_of = [Path(path.removesuffix(x)) for x in ("-wal", "-shm", "-journal") if path.endswith(x)]
    for candidate in [target, *journal_of]:
        try:
            with open(candidate, "rb") as f:
                is_database = f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
        except OSError:
            continue
        if is_database:
            what = "is a database" if candidate == target else f"is the journal of database {candidate}"
            raise click.ClickException(f"will not write {path}: it {what} (a ledger, perhaps); write the output to "
                                       f"another file")


def write_atomically(path: str, text: str) -> None:
    """Write a whole file or nothing: a temporary file beside it, renamed into place."""
    refuse_database(path)
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent or Path(".")))
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {path}: {e.strerror}") from None


# -- income -------------------------------------------------------------------------------
@cli.command()
@click.argument("account_id")
@point_options
@click.option("--year", type=int, help="Only income paid in this calendar year.")
@pass_app
@fail_on_errors
def income(app: App, account_id, as_of, known_at, known_at_seq, as_json, year):
    """Dividends by kind and interest received by ACCOUNT_ID, with tax withheld."""
    point, acct = _books(app, account_id, as_of, known_at, known_at_seq)
    payments, lines = tax_views.income_summary(acct, year)
    short = tax_views.not_qualified(acct, payments)
    if as_json:
        click.echo(render.dumps({
            "totals": [{"kind": l.kind, "gross": render.amount(l.gross), "withheld": render.amount(l.withheld),
                        "net": render.amount(l.net)} for l in lines],
            "payments": [{"symbol": p.symbol, "kind": p.kind, "ex_date": p.ex_date.isoformat(),
                          "pay_date": p.pay_date.isoformat(), "gross": render.amount(p.gross),
                          "withheld": render.amount(p.withheld), "net": render.amount(p.net),
                          "reinvested": p.reinvested,
                          **({"not_qualified": render.amount(short.get(p.seq, Decimal(0)))} if p.kind == "qualified" else {})}
                         for p in payments]}))
        return
    click.echo(_heading("Income", account_id, point) + (f", {year}" if year else ""))
    income = [l for l in lines if l.kind != "return-of-capital"]  # a return of capital is not income: it cut basis
    click.echo(render.table(["kind", "gross", "withheld", "net"],
                            [[l.kind, render.amount(l.gross), render.amount(l.withheld), render.amount(l.net)] for l in lines]
                            + [["total income", render.amount(sum((l.gross for l in income), Decimal(0))),
                                render.amount(sum((l.withheld for l in income), Decimal(0))),
                                render.amount(sum((l.net for l in income), Decimal(0)))]],
                            right=("gross", "withheld", "net")))
    for p in payments:
        if short.get(p.seq):
            click.echo(f"{render.amount(short[p.seq])} of the qualified dividend of {p.symbol} ex {p.ex_date} is ordinary: "
                       f"shares sold before they were held 61 days of the 121 around the ex-date")


# -- harvesting and restrictions --------------------------------------------------------------
def _owner_books(app: App, owner_id: str | None, account_id: str | None, as_of, known_at=None, known_at_seq=None):
    point = resolve_point(app.store, as_of, known_at, known_at_seq)
    owners = app.store.account_owners_at(point.known_seq)
    if account_id:
        if account_id not in owners:
            raise UnknownAccount(f"account {account_id} is not open")
        owner_id = owners[account_id]
    elif owner_id not in set(owners.values()):
        raise DomainError(f"unknown owner {owner_id}: no account names {owner_id} as its owner")
    accounts = sorted(a for a, o in owners.items() if o == owner_id)
    books = load_books(app.store, point, accounts=accounts)
    return point, owner_id, books, ([account_id] if account_id else tax_views.owner_accounts(books, owner_id))


@cli.command()
@click.argument("account_id", required=False)
@click.option("--owner", "owner_id", help="Scan every account of this owner.")
@click.option("--as-of", type=DATE, help="Prices on or before this date (default: today).")
@click.option("--min-loss-pct", type=DECIMAL, default=Decimal(0), help="Minimum loss as a fraction of basis (0.05 for 5%).")
@click.option("--min-loss", type=DECIMAL, default=Decimal(0), help="Minimum loss in money.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def harvest(app: App, account_id, owner_id, as_of, min_loss_pct, min_loss, as_json):
    """Lots worth harvesting for a tax loss: loss, estimated saving, wash-sale risks, substitutes."""
    if bool(account_id) == bool(owner_id):
        raise click.UsageError("give an ACCOUNT or --owner, not both" if account_id else "give an ACCOUNT or --owner")
    if not 0 <= min_loss_pct < 1:  # found by review: 5 (meant as 5%) listed nothing, without a word
        raise click.UsageError(f"--min-loss-pct is a fraction of the basis (0.05 for 5%), got {min_loss_pct}")
    day = as_of or app.today()
    point, owner_id, books, accounts = _owner_books(app, owner_id, account_id, as_of or day)
    found, unpriced = tax_views.harvest(books, accounts, day,
                                        lambda s: price_for(app.store, s, day, known_seq=point.known_seq),
                                        min_loss_pct=min_loss_pct, min_loss=min_loss)
    if as_json:
        click.echo(render.dumps([{
            "account": c.account, "lot_id": c.lot_id, "symbol": c.symbol, "quantity": render.qty(c.quantity),
            "cost_basis": render.amount(c.cost_basis), "price": render.price(c.value.price.close),
            "price_date": c.value.price.date.isoformat(), "market_value": render.amount(c.value.market_value),
            "loss": render.amount(c.loss), "loss_pct": str(c.loss_pct), "term": c.value.term,
            "estimated_saving": render.amount(c.estimated_saving) if c.estimated_saving is not None else None,
            "wash_sale_risk": bool(c.wash_risks), "wash_sale_reasons": list(c.wash_risks),
            "substitutes": list(c.substitutes), "restricted_until": c.restricted_until.isoformat()} for c in found]))
        return
    click.echo(f"Harvest candidates for {account_id or 'owner ' + owner_id} at prices on or before {day}")
    if not found:
        click.echo("none")
    for c in found:
        saving = render.amount(c.estimated_saving) if c.estimated_saving is not None else "? (no tax rates: folio owner rates)"
        click.echo(f"{c.account} lot {c.lot_id}: {render.qty_short(c.quantity)} {c.symbol} basis {render.amount(c.cost_basis)}, "
                   f"worth {render.amount(c.value.market_value)} at {render.price(c.value.price.close)} "
                   f"({c.value.price.date}): loss {render.amount(c.loss)} ({c.loss_pct * 100:.2f}%), {c.value.term}-term, "
                   f"estimated saving {saving}")
        for risk in c.wash_risks:
            click.echo(f"    wash-sale risk: {risk}")
        click.echo(f"    substitutes: {', '.join(c.substitutes) or 'none declared'}; if sold on {day}, "
                   f"do not buy {c.symbol} back through {c.restricted_until}")
    if unpriced:
        click.echo(f"no price on or before {day} for: {', '.join(unpriced)}")


@cli.command()
@click.argument("owner_id")
@point_options
@pass_app
@fail_on_errors
def restrictions(app: App, owner_id, as_of, known_at, known_at_seq, as_json):
    """Securities OWNER_ID may not buy until a date, because of a recent loss sale (a buy would wash it); as known at
    a time or seq too (found by review: the only read model without --known-at)."""
    day = as_of or app.today()
    point, owner_id, books, _ = _owner_books(app, owner_id, None, day, known_at, known_at_seq)
    rows = tax_views.restrictions(books, owner_id, day)
    if as_json:
        click.echo(render.dumps([{"symbols": list(r.symbols), "restricted_until": r.restricted_until.isoformat(),
                                  "account": r.account, "lot_id": r.lot_id, "sold": r.sold.isoformat(),
                                  "loss": render.amount(r.loss), "seq": str(r.seq)} for r in rows]))
        return
    click.echo(f"Restrictions of {owner_id} on {day}")
    if not rows:
        click.echo("none")
        return
    click.echo(render.table(["symbols", "no buy through", "sold", "account", "lot", "loss at stake", "seq"],
                            [[",".join(r.symbols), r.restricted_until.isoformat(), r.sold.isoformat(), r.account, r.lot_id,
                              render.amount(r.loss), str(r.seq)] for r in rows], right=("loss at stake", "seq")))
