"""`folio demo`: build a realistic ledger from fixtures/ and walk through what Folio does.

Everything goes through the same CLI a user types, so the demo is also a
smoke test of the commands it shows.
"""

from __future__ import annotations

import os
import shlex
from decimal import Decimal
import tempfile
from pathlib import Path
from typing import Callable

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def run_demo(db: str | None, *, actor: str, echo: Callable[[str], None]) -> None:
    from click.testing import CliRunner

    from commands.cli import cli

    tmpdir = None
    if db is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="folio-demo-")
        db = os.path.join(tmpdir.name, "demo.db")
    elif Path(db).exists():
        raise ValueError(f"{db} already exists; the demo builds a new ledger, give a new file name")
    runner = CliRunner()

    def folio(args: str, note: str | None = None, *, refused: bool = False, actor_name: str = actor) -> str:
        if note:
            echo(f"\n## {note}")
        echo(f"$ folio {args}")
        result = runner.invoke(cli, ["--db", db, "--actor", actor_name, *shlex.split(args)], catch_exceptions=False)
        output = result.output.rstrip()
        if output:
            echo(output)
        if (result.exit_code != 0) != refused:
            raise RuntimeError(f"demo step {'succeeded' if refused else 'failed'} unexpectedly: folio {args}")
        return output

    demo = FIXTURES / "demo"
    echo(f"Folio demo ledger: {db}")
    folio("init", "A new ledger: one SQLite file, an append-only log with a hash chain")
    folio("account open taxable --date 2022-01-03 --owner alice --tax-status taxable --lot-method fifo",
          "Two accounts of one owner")
    folio("account open ira --date 2022-01-03 --owner alice --tax-status tax-deferred")
    folio(f"import {demo / 'trades.csv'}", "Three years of a broker's activity, imported all or nothing")
    folio(f"import {demo / 'trades.csv'}", "The same file again: every row carries a reference, so nothing is recorded twice")
    folio(f"prices import {demo / 'prices.csv'}", "Real daily closes (adjusted) for valuation")
    folio("positions taxable --as-of 2024-11-29", "Positions valued at the latest close on or before the date")
    folio("lots taxable --as-of 2024-11-29", "Open tax lots with exact basis (buy fees included)")
    folio("gains taxable --year 2024", "Realized gains in 2024, per lot, short or long term")
    folio("positions taxable --as-of 2022-12-31", "The same account as it stood at the end of 2022")
    folio("account open legacy --date 2020-01-02 --owner alice", "An older account that lived through corporate actions")
    folio(f"import {demo / 'corporate_actions.csv'}",
          "Apple's 4:1 split, GE's 1:8 reverse split with cash in lieu, and the GE HealthCare and GE Vernova spinoffs:\n"
          "## each recorded once, as a security event, and applied by the fold to every account holding the stock")
    folio("corporate-actions")
    folio("lots legacy --as-of 2021-07-30", "Lots before the reverse split ...")
    folio("lots legacy", "... and now: quantities scaled, basis split between GE, GEHC and GEV, acquisition dates kept")
    folio("gains legacy", "Fractions paid in cash are sales of the fraction, with its share of the basis")
    folio("owner rates alice --short-term 0.37 --long-term 0.20 --date 2022-01-03",
          "Taxes: alice's rates, and a declared substitute for harvesting Pfizer")
    folio("security substitute PFE MRK --date 2022-01-03")
    folio("harvest --owner alice --as-of 2024-11-29 --min-loss 500",
          "Harvest scanner: lots with a loss worth taking, the tax it saves, wash-sale risks and substitutes")
    folio("record sell taxable PFE 350 --price 26.21 --date 2024-11-29",
          "Harvest them: sell both Pfizer lots at a loss ...")
    folio("restrictions alice --as-of 2024-12-02", "... and Pfizer may not be bought back for 30 days without washing the loss")
    folio("gains taxable --year 2024 --format csv", "The year's gains in the layout of IRS Form 8949")
    with tempfile.TemporaryDirectory(prefix="folio-demo-fills-") as scratch:  # never beside the user's files
        rebalance(folio, echo, tmp_dir=scratch)
    head = folio("audit head", "The head hash, to keep outside the file").split()[0]
    folio("record fee taxable 12.50 --date 2023-03-31",
          "A fee from March 2023, found late: recorded today, effective then (a backdated event)")
    folio("cash taxable --as-of 2023-12-31", "Cash at the end of 2023, as we know it now")
    folio(f"cash taxable --as-of 2023-12-31 --known-at-seq {head}", "... and as it was known before the fee was recorded")
    folio("record sell taxable AAPL 100 --price 190 --date 2024-01-02",
          "A sale of more than is held is refused, and nothing is written", refused=True)
    folio("record withdraw taxable 45000 --date 2022-01-04",
          "A backdated withdrawal that would leave a later buy without cash is refused too", refused=True)
    out = folio("record fee taxable 25.00 --date 2024-06-28", "The June statement fee, keyed in a second time by mistake")
    seq = out.split()[2].rstrip(":")
    folio(f"void {seq} --reason 'duplicate of the June statement fee'",
          "A mistaken event is voided, never edited or deleted")
    folio("cash taxable --as-of 2024-06-30")
    folio("log --account taxable")
    folio("audit verify", "An auditor checks that the log was never altered")
    echo(f"\nThe demo ledger is {'gone with its temporary folder' if tmpdir else 'kept at ' + db}. "
         "Try: folio --db FILE positions taxable --as-of 2023-06-30")
    if tmpdir:
        tmpdir.cleanup()


def rebalance(folio, echo, tmp_dir: str) -> None:
    """The rebalancer's story: drift, triggers, a proposal rejected, another approved, orders out, fills in."""
    folio("model set core --target AAPL=0.15:0.03:25% --target GOOG=0.10:0.03:25% --target JPM=0.20:0.03:25% "
          "--target WMT=0.20:0.03:25% --target XOM=0.25:0.03:25% --cash 0.10 --date 2024-11-01",
          "Rebalancing: a model with absolute and relative bands (outside either is out)")
    folio("account assign taxable core --date 2024-11-01")
    folio("policy set taxable --triggers drift,cash,corporate-action,harvest --min-cash 0.05 --max-cash 0.15 "
          "--min-trade 250 --cost-bps 5 --fractional --rebalance-to target --expiry-days 7 --harvest-min-loss 100 "
          "--date 2024-11-01")
    folio("drift taxable --as-of 2024-11-29", "Drift after the market moved (and the Pfizer sale raised cash)")
    folio("check taxable --as-of 2024-11-29", "Which triggers fire, and why")
    out = folio("propose taxable --as-of 2024-11-29", "A proposal, recorded for review, with its tax estimate", actor_name="ann")
    first = out.split()[1]
    folio(f"reject {first} --reason 'fractional shares: this broker takes whole shares only'",
          "A reviewer rejects it", actor_name="bob")
    folio("policy set taxable --triggers drift,cash,corporate-action,harvest --min-cash 0.05 --max-cash 0.15 "
          "--min-trade 250 --cost-bps 5 --whole-shares --rebalance-to band-edge --expiry-days 7 --harvest-min-loss 100 "
          "--date 2024-11-29",
          "The policy now asks for whole shares, moved to the band edges (idle cash still goes to the targets) ...")
    out = folio("propose taxable --as-of 2024-11-29", "... and a fresh proposal", actor_name="ann")
    second = out.split()[1]
    folio(f"approve {second}", "Its own proposer may not approve it (four eyes) ...", refused=True, actor_name="ann")
    folio(f"approve {second} --comment 'whole shares, ok'", "... another reviewer does", actor_name="carol")
    orders = folio(f"orders {second} --format json", "Orders for the broker")
    import json
    fills = os.path.join(tmp_dir, "fills.csv")
    with open(fills, "w") as f:
        f.write("proposal,symbol,side,quantity,price,fees,date,fill_id\n")
        for n, o in enumerate(json.loads(orders), start=1):
            slip = Decimal("1.0005") if o["side"] == "buy" else Decimal("0.9995")
            price = (Decimal(o["limit_price"]) * slip).quantize(Decimal("0.01"))
            f.write(f"{o['proposal']},{o['symbol']},{o['side']},{o['quantity']},{price},1.00,2024-12-02,broker-{n}\n")
    folio(f"fills import {fills}", "The broker's fills come back as trades that reference the proposal")
    folio(f"fills import {fills}", "Importing them twice records nothing")
    folio(f"proposals show {second}", "Fills against orders, with slippage")
    folio(f"proposals verify {second}", "Any proposal can be recomputed from the log, byte for byte")
    folio("drift taxable --as-of 2024-12-02", "The account is back within its bands")
    folio("proposals")
    risk_and_optimal(folio)


def risk_and_optimal(folio) -> None:
    """Risk from the real daily closes, risk-based targets as a new model version, and the optimizer."""
    folio("risk taxable --as-of 2024-12-02",
          "Risk from a year of real daily closes: volatility, VaR and CVaR, tracking error, contributions")
    bounds = " ".join(f"--bounds {s}=0.05:0.30" for s in ("AAPL", "GOOG", "JPM", "WMT", "XOM"))
    folio(f"model optimize core --objective min-vol {bounds} --as-of 2024-12-02",
          "Minimum-volatility targets (5% to 30% each, cash kept at 10%) recorded as version 2 of the model")
    folio("drift taxable --as-of 2024-12-02", "Against the new targets the account is out of its bands")
    folio("propose taxable --mode optimal --as-of 2024-12-02 --dry-run",
          "The lot-level optimizer: drift, costs and taxes in one objective, in whole shares, beside the heuristic")
    folio(f"backtest {FIXTURES / 'backtests' / 'four_stocks.toml'}",
          "A backtest: four rebalancing strategies over twenty years of real closes, each on Folio's own books\n"
          "## (lots, wash sales, realized gains, costs), compared on return, risk, turnover and tax")
