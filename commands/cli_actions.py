"""CLI commands for corporate actions and account settings (registered on the `folio` group)."""

from __future__ import annotations

import datetime as dt
import json

import click

from commands import render, service
from commands.actions import (dividend_event, merger_event, reinvest_event, security_stream, spinoff_event,
                              split_event, symbol_change_event)
from commands.cli import DATE, DECIMAL, App, account, cli, fail_on_errors, pass_app, record
from commands.service import Pending, account_stream
from domain import events as ev
from ledger.store import NewEvent
from projections.views import describe_action


FRACTION = click.option("--fraction", type=click.Choice(ev.FRACTION_POLICIES),
                        help="Fractional shares: cash in lieu, round up, round down, or keep (default: keep for a split, "
                             "cash for a merger or spinoff).")
CASH_PRICE = click.option("--cash-price", type=DECIMAL, help="Price per share for cash in lieu of fractions.")


def _record_action(app: App, event: ev.Event, day: dt.date, ref: str | None = None) -> None:
    """Record a corporate action and say which accounts it touched (none is not an error)."""
    new = NewEvent(security_stream(event.symbol), event, day, app.ctx.meta(), idem_key=ref)
    out = service.record(app.store, [Pending(new)])
    if out.result.duplicates:
        key, seq = out.result.duplicates[0]
        service.refuse_voided_duplicate(app.store, key, seq)
        click.echo(f"Already recorded as seq {seq} (ref {key}); nothing new written")
        return
    row = out.result.rows[0]
    click.echo(f"Recorded seq {row.seq}: {row.effective} {describe_action(event, day)}")
    voided = app.store.voided()
    before = [r for r in app.store.rows(stream=row.stream, effective_from=day, effective_to=day)
              if r.seq < row.seq and r.seq not in voided and r.type != "EventVoided"]
    if before:  # actions of one security and date apply in the order recorded: say so, where it matters
        click.echo(f"Applied after {', '.join(f'seq {r.seq} ({describe_action(r.decode(), day)})' for r in before)}, "
                   f"recorded earlier for the same date: actions of a date apply in the order recorded (to apply "
                   f"this one first, void and record them again after it)")
    effects = out.books.effects.get(row.seq, {})
    if not effects:
        click.echo(f"No account held {event.symbol} on {row.effective}: nothing changed")
    for account_id, text in sorted(effects.items()):
        click.echo(f"  {account_id}: {text}")


@record.command("split")
@click.argument("symbol")
@click.argument("ratio")
@click.option("--date", "day", type=DATE, required=True, help="Effective date: the first day of trading on the new terms.")
@FRACTION
@CASH_PRICE
@click.option("--stock-dividend", is_flag=True, help="Record it as a stock dividend (e.g. 3:1 for Tesla 2022).")
@click.option("--ref", help="Your reference; recording the same reference twice is a no-op.")
@pass_app
@fail_on_errors
def record_split(app: App, symbol, ratio, day, fraction, cash_price, stock_dividend, ref):
    """Record a split of SYMBOL at RATIO new:old (4:1, 3:2, reverse 1:8)."""
    _record_action(app, split_event(symbol.upper(), ratio, fraction or "keep", cash_price, stock_dividend), day, ref)


@record.command("dividend")
@click.argument("symbol")
@click.argument("per_share", type=DECIMAL)
@click.option("--ex-date", type=DATE, required=True, help="Holders at the start of this date are entitled.")
@click.option("--pay-date", type=DATE, required=True, help="Cash arrives on this date.")
@click.option("--kind", type=click.Choice(ev.DIVIDEND_KINDS), default="ordinary", show_default=True)
@click.option("--withholding", type=DECIMAL, help="Tax withheld, as a rate (0.15 for 15%).")
@click.option("--reinvest-price", type=DECIMAL, help="Price at which reinvesting accounts buy.")
@click.option("--ref", help="Your reference; recording the same reference twice is a no-op.")
@pass_app
@fail_on_errors
def record_dividend(app: App, symbol, per_share, ex_date, pay_date, kind, withholding, reinvest_price, ref):
    """Record a cash dividend of PER_SHARE on SYMBOL."""
    event = dividend_event(symbol.upper(), per_share, pay_date, kind, withholding, reinvest_price)
    _record_action(app, event, ex_date, ref)


@record.command("merger")
@click.argument("target")
@click.option("--date", "day", type=DATE, required=True, help="Effective date of the merger.")
@click.option("--acquirer", help="Symbol of the acquirer's shares received.")
@click.option("--shares", help="Acquirer shares per target share (0.5, or new:old like 1:2).")
@click.option("--cash", type=DECIMAL, help="Cash per target share.")
@click.option("--acquirer-fmv", type=DECIMAL, help="Acquirer's fair market value per share on the date.")
@FRACTION
@CASH_PRICE
@click.option("--taxable", is_flag=True, help="A fully taxable deal: a sale at cash + fair value.")
@click.option("--ref", help="Your reference; recording the same reference twice is a no-op.")
@pass_app
@fail_on_errors
def record_merger(app: App, target, day, acquirer, shares, cash, acquirer_fmv, fraction, cash_price, taxable, ref):
    """Record the merger of TARGET into an acquirer, for stock, cash, or both."""
    event = merger_event(target.upper(), acquirer.upper() if acquirer else None, shares, cash, acquirer_fmv,
                         fraction or "cash", cash_price, taxable)
    _record_action(app, event, day, ref)


@record.command("spinoff")
@click.argument("parent")
@click.argument("child")
@click.option("--date", "day", type=DATE, required=True, help="Distribution date.")
@click.option("--shares", required=True, help="Child shares per parent share (0.241917, or new:old like 1:3).")
@click.option("--allocation", type=DECIMAL, help="Fraction of the parent's basis that goes to the child.")
@click.option("--parent-fmv", type=DECIMAL, help="Parent's fair market value per share (with --child-fmv).")
@click.option("--child-fmv", type=DECIMAL, help="Child's fair market value per share (with --parent-fmv).")
@FRACTION
@CASH_PRICE
@click.option("--ref", help="Your reference; recording the same reference twice is a no-op.")
@pass_app
@fail_on_errors
def record_spinoff(app: App, parent, child, day, shares, allocation, parent_fmv, child_fmv, fraction, cash_price, ref):
    """Record a spinoff of CHILD shares to holders of PARENT."""
    event = spinoff_event(parent.upper(), child.upper(), shares, allocation, parent_fmv, child_fmv,
                          fraction or "cash", cash_price)
    _record_action(app, event, day, ref)


@record.command("symbol-change")
@click.argument("symbol")
@click.argument("new_symbol")
@click.option("--date", "day", type=DATE, required=True)
@click.option("--ref", help="Your reference; recording the same reference twice is a no-op.")
@pass_app
@fail_on_errors
def record_symbol_change(app: App, symbol, new_symbol, day, ref):
    """Record that SYMBOL trades as NEW_SYMBOL from the date on."""
    _record_action(app, symbol_change_event(symbol.upper(), new_symbol.upper()), day, ref)


@account.command("reinvest")
@click.argument("account_id")
@click.argument("symbol")
@click.option("--on/--off", "enabled", default=True, show_default=True)
@click.option("--date", "day", type=DATE, required=True)
@pass_app
@fail_on_errors
def account_reinvest(app: App, account_id, symbol, enabled, day):
    """Turn dividend reinvestment of SYMBOL on or off in ACCOUNT_ID."""
    event = reinvest_event(account_id, symbol.upper(), enabled)
    new = NewEvent(account_stream(account_id), event, day, app.ctx.meta())
    row = service.record(app.store, [Pending(new)]).result.rows[0]
    click.echo(f"Recorded seq {row.seq}: {row.effective} {account_id} reinvests {symbol.upper()} dividends: "
               f"{'on' if enabled else 'off'}")


@cli.command("corporate-actions")
@click.argument("symbol", required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@fail_on_errors
def corporate_actions(app: App, symbol, as_json):
    """List recorded corporate actions (of SYMBOL, or all)."""
    voided = app.store.voided()
    wanted = symbol.upper() if symbol else None
    rows = [r for r in app.store.rows(fold_order=True)
            if r.stream.startswith("security:") and (wanted is None or wanted in _symbols_of(r))]
    rows = [r for r in rows if r.type != "EventVoided"]
    if as_json:
        click.echo(render.dumps([{"seq": str(r.seq), "effective": r.effective, "symbol": r.stream[9:], "type": r.type,
                                  "description": describe_action(r.decode(), dt.date.fromisoformat(r.effective)),
                                  "voided": r.seq in voided, "payload": json.loads(r.payload)} for r in rows]))
        return
    click.echo(render.table(["seq", "effective", "symbol", "action"],
                            [[str(r.seq), r.effective, r.stream[9:],
                              describe_action(r.decode(), dt.date.fromisoformat(r.effective))
                              + (f"  [voided by seq {voided[r.seq]}]" if r.seq in voided else "")] for r in rows],
                            right=("seq",)))


def _symbols_of(row) -> set[str]:
    """Every symbol a corporate action names: the security it is on and any it creates or points to."""
    payload = json.loads(row.payload)
    return {row.stream[9:]} | {payload[k] for k in ("acquirer", "child", "new_symbol", "identical_to", "substitute")
                               if isinstance(payload.get(k), str)}
