"""The `folio` CLI: exact output of every command on small ledgers built by commands.

Every number below is worked out by hand in a comment next to it. Human output is compared
line for line; `--json` output is compared as parsed JSON (every number a string). The log's
`recorded_at` comes from the real clock, so it is masked (human) or left out (JSON), together
with `meta.command_id` and `hash`, which depend on it.
"""

from __future__ import annotations

import json
import re
import shlex
from decimal import Decimal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import commands.cli as cli_module
from commands.cli import cli
from ledger.store import EventStore
from tests.cli_helpers import js, out, text


# -- helpers ------------------------------------------------------------------------

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def mask_times(s: str) -> str:
    """Replace the log's recorded_at column (real clock) by a same-width placeholder."""
    return TIMESTAMP.sub("<recorded_at>-------", s)


def stable(entry: dict) -> dict:
    """A log --json entry without what the real clock decides (recorded_at, command_id, hash)."""
    e = dict(entry)
    del e["recorded_at"], e["hash"]
    e["meta"] = {k: v for k, v in e["meta"].items() if k != "command_id"}
    return e


def gain(lot_id, symbol, quantity, acquired, sold, proceeds, cost_basis, gain_, term) -> dict:
    """A `gains --json` row of a plain sale (no wash-sale adjustment)."""
    return {"lot_id": lot_id, "symbol": symbol, "quantity": quantity, "acquired": acquired, "sold": sold,
            "proceeds": proceeds, "cost_basis": cost_basis, "adjustment": "0.00", "code": "", "gain": gain_, "term": term,
            "reason": "sale"}


@pytest.fixture
def ira(folio):
    """The README's ledger: one tax-deferred FIFO account, three buys, a HIFO sale, a specific-lot sale, cash moves."""
    steps = [
        "init",
        "account open IRA-1 --date 2024-01-02 --owner alice --tax-status tax-deferred --lot-method fifo",  # seq 1
        "record deposit IRA-1 10000 --date 2024-01-02",  # seq 2: cash 10000.00
        "record buy IRA-1 AAPL 10 --price 185.50 --fees 1 --date 2024-01-03",  # seq 3: 10 x 185.50 + 1.00 = 1856.00
        "record buy IRA-1 AAPL 5 --price 190 --date 2024-02-01",  # seq 4: 5 x 190 = 950.00
        "record buy IRA-1 MSFT 3 --price 400.10 --fees 0.5 --date 2024-03-01",  # seq 5: 3 x 400.10 + 0.50 = 1200.80
        "record sell IRA-1 AAPL 4 --price 200 --fees 1 --date 2025-01-06 --lots hifo",  # seq 6
        "record sell IRA-1 AAPL 3 --price 210 --date 2025-01-07 --lot 3:3",  # seq 7
        "record withdraw IRA-1 100 --date 2025-02-01",  # seq 8
        "record fee IRA-1 2.50 --date 2025-02-01",  # seq 9
        "record interest IRA-1 1.23 --date 2025-02-02",  # seq 10
    ]
    for step in steps:
        out(folio(step))
    return folio


# -- init, account, record -------------------------------------------------------------
def test_init_and_recording_messages(folio, db_path):
    assert out(folio("init")) == f"Created ledger at {db_path}\n"
    assert out(folio("init")) == f"Ledger already exists at {db_path}\n"
    assert out(folio("account open IRA-1 --date 2024-01-02 --owner alice --tax-status tax-deferred --lot-method fifo")) == \
        "Opened IRA-1 on 2024-01-02 (seq 1)\n"
    # amounts are shown in cents; trade quantities and prices as given, without trailing zeros
    assert out(folio("record deposit IRA-1 10000 --date 2024-01-02")) == "Recorded seq 2: 2024-01-02 IRA-1 deposit 10000.00\n"
    assert out(folio("record buy IRA-1 AAPL 10 --price 185.50 --fees 1 --date 2024-01-03")) == \
        "Recorded seq 3: 2024-01-03 IRA-1 buy 10 AAPL @ 185.50 fees 1.00\n"
    assert out(folio("record buy IRA-1 aapl 5 --price 190 --date 2024-02-01")) == \
        "Recorded seq 4: 2024-02-01 IRA-1 buy 5 AAPL @ 190\n"  # the symbol is upper-cased
    assert out(folio("record buy IRA-1 MSFT 3 --price 400.10 --fees 0.5 --date 2024-03-01")) == \
        "Recorded seq 5: 2024-03-01 IRA-1 buy 3 MSFT @ 400.10 fees 0.50\n"
    assert out(folio("record sell IRA-1 AAPL 4 --price 200 --fees 1 --date 2025-01-06 --lots hifo")) == \
        "Recorded seq 6: 2025-01-06 IRA-1 sell 4 AAPL @ 200 fees 1.00 (hifo)\n"
    assert out(folio("record sell IRA-1 AAPL 3 --price 210 --date 2025-01-07 --lot 3:3")) == \
        "Recorded seq 7: 2025-01-07 IRA-1 sell 3 AAPL @ 210 lots 3:3\n"
    assert out(folio("record withdraw IRA-1 100 --date 2025-02-01")) == "Recorded seq 8: 2025-02-01 IRA-1 withdraw 100.00\n"
    assert out(folio("record fee IRA-1 2.50 --date 2025-02-01")) == "Recorded seq 9: 2025-02-01 IRA-1 fee 2.50\n"
    assert out(folio("record interest IRA-1 1.23 --date 2025-02-02")) == "Recorded seq 10: 2025-02-02 IRA-1 interest 1.23\n"


def test_ref_makes_a_command_idempotent(folio):
    out(folio("init"))
    out(folio("account open A --date 2024-01-02"))
    out(folio("record deposit A 1000 --date 2024-01-02"))
    assert out(folio("record buy A VTI 2 --price 100 --date 2024-01-03 --ref T-1")) == \
        "Recorded seq 3: 2024-01-03 A buy 2 VTI @ 100\n"
    assert out(folio("record buy A VTI 2 --price 100 --date 2024-01-03 --ref T-1")) == \
        "Already recorded as seq 3 (ref T-1); nothing new written\n"
    # 1000.00 - 2 x 100 = 800.00, bought once
    assert js(folio("cash A --json")) == [{"currency": "USD", "balance": "800.00"}]


# -- read models: human tables ------------------------------------------------------------
def test_positions_lots_cash_tables(ira):
    # AAPL: lot 3 = 10 sh / 1856.00; lot 4 = 5 sh / 950.00.
    # seq 6 sells 4 by HIFO: unit basis lot 3 = 185.60, lot 4 = 190.00, so 4 come from lot 4 (basis 4 x 190 = 760.00),
    #   leaving lot 4 = 1 sh / 190.00.
    # seq 7 sells 3 from lot 3: relieved 1856.00 x 3/10 = 556.80, leaving lot 3 = 7 sh / 1299.20.
    # AAPL = 8 sh, 1299.20 + 190.00 = 1489.20; MSFT = 3 sh, 1200.80.
    # cash: 10000 - 1856.00 - 950.00 - 1200.80 = 5993.20; + (800 - 1) = 6792.20; + 630.00 = 7422.20;
    #   - 100.00 = 7322.20; - 2.50 = 7319.70; + 1.23 = 7320.93
    assert out(ira("positions IRA-1")) == text("""
        Positions of IRA-1 as of today (known at seq 10)
        symbol  quantity  cost_basis  price  price_date  market_value  weight
        ------  --------  ----------  -----  ----------  ------------  ------
        AAPL           8     1489.20      -  -                      -       -
        MSFT           3     1200.80      -  -                      -       -
        cash 7320.93 USD
    """)
    assert out(ira("lots IRA-1")) == text("""
        Lots of IRA-1 as of today (known at seq 10)
        lot_id  symbol  quantity  cost_basis  acquired    price  unrealized  term
        ------  ------  --------  ----------  ----------  -----  ----------  ----
             3  AAPL           7     1299.20  2024-01-03      -           -  -
             4  AAPL           1      190.00  2024-02-01      -           -  -
             5  MSFT           3     1200.80  2024-03-01      -           -  -
    """)
    assert out(ira("cash IRA-1")) == text("""
        Cash of IRA-1 as of today (known at seq 10)
        currency  balance
        --------  -------
        USD       7320.93
    """)


def test_gains_table(ira):
    # seq 6: 4 x 200 - 1.00 fees = 799.00 proceeds against 760.00 of lot 4 -> 39.00; bought 2024-02-01, sold
    #        2025-01-06, before the anniversary -> short.
    # seq 7: 3 x 210 = 630.00 against 556.80 of lot 3 -> 73.20; bought 2024-01-03, sold 2025-01-07, after the
    #        anniversary 2025-01-03 -> long.
    assert out(ira("gains IRA-1")) == text("""
        Realized gains of IRA-1 as of today (known at seq 10)
        lot_id  symbol  quantity  acquired    sold        proceeds  cost_basis  adjustment  code   gain  term   reason
        ------  ------  --------  ----------  ----------  --------  ----------  ----------  ----  -----  -----  ------
             4  AAPL           4  2024-02-01  2025-01-06    799.00      760.00                    39.00  short  sale
             3  AAPL           3  2024-01-03  2025-01-07    630.00      556.80                    73.20  long   sale
        short-term 39.00  long-term 73.20  total 112.20
    """)
    # no sale in 2024: an empty table and zero totals
    assert out(ira("gains IRA-1 --year 2024")) == text("""
        Realized gains of IRA-1 as of today (known at seq 10), 2024
        lot_id  symbol  quantity  acquired  sold  proceeds  cost_basis  adjustment  code  gain  term  reason
        ------  ------  --------  --------  ----  --------  ----------  ----------  ----  ----  ----  ------
        short-term 0.00  long-term 0.00  total 0.00
    """)
    # as of 2025-01-06 only the HIFO sale has happened
    assert out(ira("gains IRA-1 --as-of 2025-01-06 --year 2025")) == text("""
        Realized gains of IRA-1 as of 2025-01-06 (known at seq 10), 2025
        lot_id  symbol  quantity  acquired    sold        proceeds  cost_basis  adjustment  code   gain  term   reason
        ------  ------  --------  ----------  ----------  --------  ----------  ----------  ----  -----  -----  ------
             4  AAPL           4  2024-02-01  2025-01-06    799.00      760.00                    39.00  short  sale
        short-term 39.00  long-term 0.00  total 39.00
    """)


# -- read models: JSON -------------------------------------------------------------------
def test_json_shapes(ira):
    assert js(ira("positions IRA-1 --json")) == [
        {"symbol": "AAPL", "quantity": "8", "cost_basis": "1489.20"},
        {"symbol": "MSFT", "quantity": "3", "cost_basis": "1200.80"},
    ]
    lots = js(ira("lots IRA-1 --json"))
    assert [{k: l[k] for k in ("lot_id", "symbol", "quantity", "cost_basis", "acquired")} for l in lots] == [
        {"lot_id": "3", "symbol": "AAPL", "quantity": "7", "cost_basis": "1299.20", "acquired": "2024-01-03"},
        {"lot_id": "4", "symbol": "AAPL", "quantity": "1", "cost_basis": "190.00", "acquired": "2024-02-01"},
        {"lot_id": "5", "symbol": "MSFT", "quantity": "3", "cost_basis": "1200.80", "acquired": "2024-03-01"},
    ]
    assert [l["holding_period_start"] for l in lots] == ["2024-01-03", "2024-02-01", "2024-03-01"]
    assert [l["origin"] for l in lots] == [
        [{"seq": "3", "what": "bought 10 at 185.50"}],
        [{"seq": "4", "what": "bought 5 at 190"}],
        [{"seq": "5", "what": "bought 3 at 400.10"}],
    ]
    assert js(ira("cash IRA-1 --json")) == [{"currency": "USD", "balance": "7320.93"}]
    assert js(ira("gains IRA-1 --json")) == [
        gain("4", "AAPL", "4", "2024-02-01", "2025-01-06", "799.00", "760.00", "39.00", "short"),
        gain("3", "AAPL", "3", "2024-01-03", "2025-01-07", "630.00", "556.80", "73.20", "long"),
    ]
    assert [g["lot_id"] for g in js(ira("gains IRA-1 --year 2025 --json"))] == ["4", "3"]
    assert js(ira("gains IRA-1 --year 2024 --json")) == []


def test_as_of_and_known_at_seq(ira):
    # as of 2024-01-31: only the deposit and the first buy; cash 10000 - 1856.00 = 8144.00
    assert out(ira("positions IRA-1 --as-of 2024-01-31")) == text("""
        Positions of IRA-1 as of 2024-01-31 (known at seq 10)
        symbol  quantity  cost_basis  price  price_date  market_value  weight
        ------  --------  ----------  -----  ----------  ------------  ------
        AAPL          10     1856.00      -  -                      -       -
        cash 8144.00 USD
    """)
    # as of 2024-12-31: all three buys, no sale: 10000 - 1856.00 - 950.00 - 1200.80 = 5993.20
    assert js(ira("cash IRA-1 --as-of 2024-12-31 --json")) == [{"currency": "USD", "balance": "5993.20"}]
    assert js(ira("positions IRA-1 --as-of 2024-12-31 --json")) == [
        {"symbol": "AAPL", "quantity": "15", "cost_basis": "2806.00"},  # 1856.00 + 950.00
        {"symbol": "MSFT", "quantity": "3", "cost_basis": "1200.80"},
    ]
    # known at seq 3: the log ended with the first buy, whatever the as-of date
    assert out(ira("lots IRA-1 --known-at-seq 3")) == text("""
        Lots of IRA-1 as of today (known at seq 3)
        lot_id  symbol  quantity  cost_basis  acquired    price  unrealized  term
        ------  ------  --------  ----------  ----------  -----  ----------  ----
             3  AAPL          10     1856.00  2024-01-03      -           -  -
    """)
    # known at seq 6: the HIFO sale is known, the specific-lot sale and the cash moves are not:
    # 5993.20 + 799.00 = 6792.20
    assert js(ira("cash IRA-1 --known-at-seq 6 --json")) == [{"currency": "USD", "balance": "6792.20"}]
    assert [g["lot_id"] for g in js(ira("gains IRA-1 --known-at-seq 6 --json"))] == ["4"]
    # both axes: as of 2024-01-31 known at seq 2 -> just the deposit
    assert js(ira("positions IRA-1 --as-of 2024-01-31 --known-at-seq 2 --json")) == []
    assert js(ira("cash IRA-1 --as-of 2024-01-31 --known-at-seq 2 --json")) == [{"currency": "USD", "balance": "10000.00"}]


def test_known_at_timestamp_from_the_log(ira):
    # the recorded_at of seq 5 (real clock) as --known-at: exactly seqs 1..5 are known
    at = {e["seq"]: e["recorded_at"] for e in js(ira("log --json"))}
    assert js(ira(f"cash IRA-1 --known-at {at['5']} --json")) == [{"currency": "USD", "balance": "5993.20"}]
    assert out(ira(f"cash IRA-1 --known-at {at['5']}")).splitlines()[0] == "Cash of IRA-1 as of today (known at seq 5)"


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: str):
        self.now = now

    def __call__(self) -> str:
        return self.now


def test_known_at_a_date_means_the_end_of_that_day(folio, monkeypatch):
    """The commands run through the real CLI; only the store's clock is set by the test."""
    clock = _Clock("2024-04-10T09:00:00.000000Z")

    class ClockedStore(EventStore):
        @classmethod
        def create(cls, path, **kw):
            return EventStore.create.__func__(cls, path, clock=clock)

        @classmethod
        def open(cls, path, **kw):
            return EventStore.open.__func__(cls, path, clock=clock)

    monkeypatch.setattr(cli_module, "EventStore", ClockedStore)
    out(folio("init"))
    out(folio("account open A --date 2024-01-02"))  # seq 1, recorded 2024-04-10
    out(folio("record deposit A 500 --date 2024-01-02"))  # seq 2, recorded 2024-04-10
    clock.now = "2024-04-15T23:59:59.999999Z"
    out(folio("record buy A VTI 2 --price 100 --date 2024-03-01"))  # seq 3, recorded at the last instant of 04-15
    clock.now = "2024-04-16T00:00:00.000000Z"
    out(folio("record deposit A 250 --date 2024-03-31"))  # seq 4, recorded 2024-04-16, backdated into March
    # "what did the books say on 2024-03-31, as known on 2024-04-10?": just the deposit
    assert js(folio("cash A --as-of 2024-03-31 --known-at 2024-04-10 --json")) == [{"currency": "USD", "balance": "500.00"}]
    assert js(folio("positions A --as-of 2024-03-31 --known-at 2024-04-10 --json")) == []
    # as known on 2024-04-15 (its end, inclusive): the buy too: 500.00 - 2 x 100 = 300.00
    assert out(folio("cash A --as-of 2024-03-31 --known-at 2024-04-15")) == text("""
        Cash of A as of 2024-03-31 (known at seq 3)
        currency  balance
        --------  -------
        USD        300.00
    """)
    # as known on 2024-04-16: the backdated deposit too: 300.00 + 250.00 = 550.00
    assert js(folio("cash A --as-of 2024-03-31 --known-at 2024-04-16 --json")) == [{"currency": "USD", "balance": "550.00"}]
    # a timestamp: one microsecond before seq 4 was recorded
    assert js(folio("cash A --known-at 2024-04-15T23:59:59.999999Z --json")) == [{"currency": "USD", "balance": "300.00"}]
    # a timestamp with an offset is turned into UTC: 2024-04-16T01:00+02:00 = 2024-04-15T23:00Z, before seq 3
    assert js(folio("cash A --known-at 2024-04-16T01:00:00+02:00 --json")) == [{"currency": "USD", "balance": "500.00"}]
    # a time without fractions means the end of that second (minute, hour), as a date means the end of its day: the
    # log's 2024-04-15T23:59:59Z knows seq 3, recorded within that second; one microsecond before it does not
    assert js(folio("cash A --known-at 2024-04-15T23:59:59Z --json")) == [{"currency": "USD", "balance": "300.00"}]
    assert js(folio("cash A --known-at 2024-04-15T23:59 --json")) == [{"currency": "USD", "balance": "300.00"}]
    assert js(folio("cash A --known-at 2024-04-15T23:59:59.999998Z --json")) == [{"currency": "USD", "balance": "500.00"}]
    assert js(folio("cash A --known-at 2024-04-15T23:58 --json")) == [{"currency": "USD", "balance": "500.00"}]
    # the log is deterministic under this clock, recorded_at included
    assert out(folio("log")) == text("""
        seq  recorded_at           effective   stream     type           what
        ---  --------------------  ----------  ---------  -------------  ------------------------------------
          1  2024-04-10T09:00:00Z  2024-01-02  account:A  AccountOpened  open A (taxable, USD, owner A, fifo)
          2  2024-04-10T09:00:00Z  2024-01-02  account:A  CashDeposited  deposit 500.00
          3  2024-04-15T23:59:59Z  2024-03-01  account:A  TradeExecuted  buy 2 VTI @ 100
          4  2024-04-16T00:00:00Z  2024-03-31  account:A  CashDeposited  deposit 250.00
    """)


def test_default_lot_method_and_multi_lot_specific_sale(folio):
    out(folio("init"))
    out(folio("account open L --date 2024-01-02 --lot-method lifo"))  # seq 1
    out(folio("record deposit L 1000 --date 2024-01-02"))  # seq 2
    out(folio("record buy L XYZ 3 --price 10 --fees 0.01 --date 2024-01-03"))  # seq 3: 3 x 10 + 0.01 = 30.01
    out(folio("record buy L XYZ 2 --price 12 --date 2024-01-04"))  # seq 4: 2 x 12 = 24.00
    out(folio("record buy L XYZ 4 --price 11 --date 2024-01-05"))  # seq 5: 4 x 11 = 44.00
    # no --lots: the account's LIFO takes lot 5 first: 1 share of 44.00 / 4 = 11.00
    assert out(folio("record sell L XYZ 1 --price 13 --date 2024-02-01")) == \
        "Recorded seq 6: 2024-02-01 L sell 1 XYZ @ 13\n"
    # specific lots across two lots: 1 of lot 3 and 1 of lot 4; 2 x 12.51 - 0.01 fees = 25.01 proceeds split 1:1:
    # round_half_even(12.505) = 12.50 to lot 3, the last lot takes the remainder 25.01 - 12.50 = 12.51
    # lot 3 relieves round(30.01 x 1/3) = round(10.00333) = 10.00 and keeps 20.01; lot 4 relieves 24.00 / 2 = 12.00
    assert out(folio("record sell L XYZ 2 --price 12.51 --fees 0.01 --date 2024-02-02 --lot 3:1 --lot 4:1")) == \
        "Recorded seq 7: 2024-02-02 L sell 2 XYZ @ 12.51 fees 0.01 lots 3:1,4:1\n"
    assert js(folio("gains L --json")) == [
        gain("5", "XYZ", "1", "2024-01-05", "2024-02-01", "13.00", "11.00", "2.00", "short"),
        gain("3", "XYZ", "1", "2024-01-03", "2024-02-02", "12.50", "10.00", "2.50", "short"),
        gain("4", "XYZ", "1", "2024-01-04", "2024-02-02", "12.51", "12.00", "0.51", "short"),
    ]
    # basis is conserved: 30.01 + 24.00 + 44.00 = 98.01 paid = 20.01 + 12.00 + 33.00 open + 11.00 + 10.00 + 12.00 relieved
    assert out(folio("lots L")) == text("""
        Lots of L as of today (known at seq 7)
        lot_id  symbol  quantity  cost_basis  acquired    price  unrealized  term
        ------  ------  --------  ----------  ----------  -----  ----------  ----
             3  XYZ            2       20.01  2024-01-03      -           -  -
             4  XYZ            1       12.00  2024-01-04      -           -  -
             5  XYZ            3       33.00  2024-01-05      -           -  -
    """)
    # cash: 1000 - 30.01 - 24.00 - 44.00 + 13.00 + 25.01 = 940.00
    assert js(folio("cash L --json")) == [{"currency": "USD", "balance": "940.00"}]


def test_holding_period_edges(folio):
    out(folio("init"))
    out(folio("account open H --date 2024-01-02"))
    out(folio("record deposit H 1000 --date 2024-01-02"))
    out(folio("record buy H ABC 2 --price 100 --date 2024-02-29"))  # seq 3: a leap day; anniversary 2025-02-28
    out(folio("record sell H ABC 1 --price 100 --date 2025-02-28"))  # on the anniversary: short
    out(folio("record sell H ABC 1 --price 100 --date 2025-03-01"))  # the day after: long
    assert [(g["sold"], g["term"]) for g in js(folio("gains H --json"))] == [("2025-02-28", "short"), ("2025-03-01", "long")]


# -- log and void -------------------------------------------------------------------------
def test_log_and_void(ira):
    assert out(ira("void 9 --reason 'charged in error'")) == "Voided seq 9 (void recorded as seq 11)\n"
    # the fee of 2.50 is gone from every fold: 7320.93 + 2.50 = 7323.43
    assert js(ira("cash IRA-1 --json")) == [{"currency": "USD", "balance": "7323.43"}]
    # ...but not from what was known before the void
    assert js(ira("cash IRA-1 --known-at-seq 10 --json")) == [{"currency": "USD", "balance": "7320.93"}]
    log = mask_times(out(ira("log")))
    assert log == text("""
        seq  recorded_at           effective   stream         type              what
        ---  --------------------  ----------  -------------  ----------------  -------------------------------------------------
          1  <recorded_at>-------  2024-01-02  account:IRA-1  AccountOpened     open IRA-1 (tax-deferred, USD, owner alice, fifo)
          2  <recorded_at>-------  2024-01-02  account:IRA-1  CashDeposited     deposit 10000.00
          3  <recorded_at>-------  2024-01-03  account:IRA-1  TradeExecuted     buy 10 AAPL @ 185.50 fees 1.00
          4  <recorded_at>-------  2024-02-01  account:IRA-1  TradeExecuted     buy 5 AAPL @ 190
          5  <recorded_at>-------  2024-03-01  account:IRA-1  TradeExecuted     buy 3 MSFT @ 400.10 fees 0.50
          6  <recorded_at>-------  2025-01-06  account:IRA-1  TradeExecuted     sell 4 AAPL @ 200 fees 1.00 (hifo)
          7  <recorded_at>-------  2025-01-07  account:IRA-1  TradeExecuted     sell 3 AAPL @ 210 lots 3:3
          8  <recorded_at>-------  2025-02-01  account:IRA-1  CashWithdrawn     withdraw 100.00
          9  <recorded_at>-------  2025-02-01  account:IRA-1  FeeCharged        fee 2.50  [voided by seq 11]
         10  <recorded_at>-------  2025-02-02  account:IRA-1  InterestReceived  interest 1.23
         11  <recorded_at>-------  2025-02-01  account:IRA-1  EventVoided       void seq 9: charged in error
    """)
    # recorded_at never decreases down the log
    stamps = TIMESTAMP.findall(out(ira("log")))
    assert len(stamps) == 11 and stamps == sorted(stamps)


def test_log_json_and_account_filter(ira):
    out(ira("account open TAX --date 2024-05-01"))  # seq 11, another stream
    entries = js(ira("log --account IRA-1 --json"))
    assert [e["seq"] for e in entries] == [str(n) for n in range(1, 11)]
    assert [stable(e) for e in entries[:3]] == [
        {"seq": "1", "stream": "account:IRA-1", "version": "1", "type": "AccountOpened", "schema": "2",
         "effective": "2024-01-02",
         "payload": {"account": "IRA-1", "currency": "USD", "lot_method": "fifo", "overdraft": False, "owner": "alice",
                     "tax_status": "tax-deferred"},
         "meta": {"actor": "tester", "source": "cli"}, "idem_key": None, "voided_by": None},
        {"seq": "2", "stream": "account:IRA-1", "version": "2", "type": "CashDeposited", "schema": "1",
         "effective": "2024-01-02", "payload": {"account": "IRA-1", "amount": "10000"},  # canonical: no trailing zeros
         "meta": {"actor": "tester", "source": "cli"}, "idem_key": None, "voided_by": None},
        {"seq": "3", "stream": "account:IRA-1", "version": "3", "type": "TradeExecuted", "schema": "1",
         "effective": "2024-01-03",
         "payload": {"account": "IRA-1", "symbol": "AAPL", "side": "buy", "quantity": "10", "price": "185.5",
                     "fees": "1", "lot_method": None, "lots": [], "ref": None, "proposal": None},
         "meta": {"actor": "tester", "source": "cli"}, "idem_key": None, "voided_by": None},
    ]
    assert stable(entries[6])["payload"] == {
        "account": "IRA-1", "symbol": "AAPL", "side": "sell", "quantity": "3", "price": "210", "fees": "0",
        "lot_method": None, "lots": [{"lot": "3", "quantity": "3"}], "ref": None, "proposal": None}
    for e in entries:
        assert re.fullmatch(r"[0-9a-f]{64}", e["hash"]) and re.fullmatch(r"[0-9a-f]{32}", e["meta"]["command_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", e["recorded_at"])
    other = js(ira("log --account TAX --json"))
    assert [(e["seq"], e["stream"], e["version"]) for e in other] == [("11", "account:TAX", "1")]
    assert len(js(ira("log --json"))) == 11


# -- import / export -----------------------------------------------------------------------
TRADES_CSV = """\
date,account,action,symbol,quantity,price,amount,fees,lots,ref
2024-01-02,A,deposit,,,,5000,,,r1
2024-01-03,A,buy,VTI,10,220.10,,1.00,,r2
2024-01-04,A,buy,vti,5,221,,,,r3
2024-06-03,A,sell,VTI,12,250,,2,fifo,r4
2024-06-04,A,interest,,,,0.37,,,r5
"""


def test_csv_import_and_reimport(folio, tmp_path):
    out(folio("init"))
    out(folio("account open A --date 2024-01-02"))
    path = tmp_path / "trades.csv"
    path.write_text(TRADES_CSV)
    assert out(folio(f"import {path}")) == "Recorded 5 events from trades.csv\n"
    # the second time every ref is already recorded
    assert out(folio(f"import {path}")) == "Nothing recorded: all 5 rows of trades.csv were already recorded\n"
    assert js(folio(f"import {path} --json")) == {"format": "csv", "recorded": "0", "already_recorded": "5"}
    # buy 10 @ 220.10 + 1.00 = 2202.00 (lot 3); buy 5 @ 221 = 1105.00 (lot 4)
    # sell 12 FIFO @ 250 - 2.00 fees = 2998.00 proceeds: 10 from lot 3, 2 from lot 4
    #   proceeds split 10:2 -> round(2998 x 10/12) = round(2498.333) = 2498.33, the last lot takes 2998 - 2498.33 = 499.67
    #   basis: lot 3 all 2202.00; lot 4 1105.00 x 2/5 = 442.00, keeping 3 sh / 663.00
    assert js(folio("gains A --json")) == [
        gain("3", "VTI", "10", "2024-01-03", "2024-06-03", "2498.33", "2202.00", "296.33", "short"),
        gain("4", "VTI", "2", "2024-01-04", "2024-06-03", "499.67", "442.00", "57.67", "short"),
    ]
    assert out(folio("lots A")) == text("""
        Lots of A as of today (known at seq 6)
        lot_id  symbol  quantity  cost_basis  acquired    price  unrealized  term
        ------  ------  --------  ----------  ----------  -----  ----------  ----
             4  VTI            3      663.00  2024-01-04      -           -  -
    """)
    # 5000 - 2202.00 - 1105.00 + 2998.00 + 0.37 = 4691.37
    assert js(folio("cash A --json")) == [{"currency": "USD", "balance": "4691.37"}]
    # each row's meta names the file and line; its ref is the idempotency key
    entries = js(folio("log --json"))[1:]
    assert [(e["meta"]["source"], e["idem_key"]) for e in entries] == [
        ("trades.csv:2", "r1"), ("trades.csv:3", "r2"), ("trades.csv:4", "r3"), ("trades.csv:5", "r4"), ("trades.csv:6", "r5")]
    assert {e["meta"]["actor"] for e in entries} == {"tester"}
    # a file with one new row among recorded ones records just that row
    path.write_text(TRADES_CSV + "2024-06-05,A,withdraw,,,,91.37,,,r6\n")
    assert out(folio(f"import {path}")) == "Recorded 1 events from trades.csv (5 already recorded, skipped)\n"
    assert js(folio("cash A --json")) == [{"currency": "USD", "balance": "4600.00"}]  # 4691.37 - 91.37


def test_export_then_import_gives_the_same_head(ira, tmp_path):
    export = tmp_path / "all.jsonl"
    assert out(ira(f"export -o {export}")) == ""
    lines = export.read_text().splitlines()
    assert len(lines) == 10
    assert out(ira("export")) == export.read_text()  # stdout and -o write the same bytes
    first = json.loads(lines[0])
    assert sorted(first) == ["effective", "hash", "idem_key", "meta", "payload", "recorded_at", "schema", "seq", "stream",
                             "type", "version"]
    assert (first["seq"], first["version"], first["schema"], first["type"]) == (1, 1, 2, "AccountOpened")

    head = out(ira("audit head"))
    fresh = str(tmp_path / "fresh.db")
    runner = CliRunner()

    def other(args: str):
        return runner.invoke(cli, ["--db", fresh, "--actor", "restorer", *shlex.split(args)])

    out(other("init"))
    assert out(other(f"import {export}")) == "Recorded 10 events from all.jsonl\n"
    assert out(other("audit head")) == head
    assert out(other("audit verify")).splitlines()[0] == out(ira("audit verify")).splitlines()[0]
    assert out(other("log --json")) == out(ira("log --json"))  # meta (actor, command id) and times are kept
    for query in ("positions IRA-1 --json", "lots IRA-1 --json", "cash IRA-1 --json", "gains IRA-1 --json"):
        assert out(other(query)) == out(ira(query))
    # importing the same export again records nothing
    assert out(other(f"import {export}")) == "Nothing recorded: all 10 rows of all.jsonl were already recorded\n"
    assert js(other(f"import {export} --json")) == {"format": "jsonl", "recorded": "0", "already_recorded": "10"}
    assert out(other("audit head")) == head


def test_audit_verify_and_head(ira):
    head = out(ira("audit head"))
    seq, digest = head.split()
    assert seq == "10" and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == js(ira("log --json"))[-1]["hash"]
    verified = out(ira("audit verify")).splitlines()
    assert verified[0] == f"OK: 10 events verified, head seq 10 hash {digest}"
    assert verified[1] == "OK: 0 snapshots match the log" and len(verified) == 2  # (a short ledger keeps none)
    assert out(ira("audit verify --no-snapshots")) == f"OK: 10 events verified, head seq 10 hash {digest}\n"


def test_audit_on_an_empty_ledger(folio):
    out(folio("init"))
    assert out(folio("audit head")) == "0 " + "0" * 64 + "\n"
    assert out(folio("audit verify")) == "OK: 0 events verified, head seq 0 hash " + "0" * 64 + "\n" \
        "OK: 0 snapshots match the log\n"


# -- prices -------------------------------------------------------------------------------
def test_a_close_in_another_currency_values_nothing(folio, tmp_path):
    """Folio converts no currency: a USD close of SAP does not value a EUR account's SAP (weights would add USD to
    EUR); a EUR close does."""
    for step in ("init", "account open EU --date 2024-01-01 --currency EUR", "record deposit EU 1000 --date 2024-01-01",
                 "record buy EU SAP 2 --price 100 --date 2024-01-03"):
        out(folio(step))
    f = tmp_path / "sap.csv"
    f.write_text("date,symbol,close,currency\n2024-01-04,SAP,50,USD\n")
    out(folio(f"prices import {f}"))
    assert js(folio("positions EU --as-of 2024-01-05 --json")) == [
        {"symbol": "SAP", "quantity": "2", "cost_basis": "200.00"}]
    assert "price" not in js(folio("lots EU --as-of 2024-01-05 --json"))[0]
    assert js(folio("harvest EU --as-of 2024-01-05 --json")) == []  # no loss of 100.00 read off a USD close
    f.write_text("date,symbol,close,currency\n2024-01-05,SAP,140,EUR\n")
    out(folio(f"prices import {f}"))
    assert js(folio("positions EU --as-of 2024-01-05 --json")) == [
        {"symbol": "SAP", "quantity": "2", "cost_basis": "200.00", "price": "140.00", "price_date": "2024-01-05",
         "market_value": "280.00", "weight": "0.259259"}]  # 280 / (280 + 800)


def test_prices_long_and_wide_and_valued_positions(ira, tmp_path):
    long_ = tmp_path / "long.csv"
    long_.write_text("date,symbol,close\n2025-01-31,AAPL,220.25\n2025-01-31,msft,410\n")
    wide = tmp_path / "wide.csv"
    # a blank cell is skipped; float noise beyond 8 places is cut
    wide.write_text("date,AAPL,MSFT\n2025-02-28,230.5,\n2025-03-31,240.00000000000003,420.125\n")
    assert out(ira(f"prices import {long_}")) == "Recorded 2 prices from long.csv\n"
    assert out(ira(f"prices import {long_}")) == "Recorded 0 prices from long.csv (2 already known, skipped)\n"
    assert out(ira(f"prices import {wide}")) == "Recorded 3 prices from wide.csv\n"

    # no price on or before 2025-01-30: no valuation
    assert js(ira("positions IRA-1 --as-of 2025-01-30 --json")) == [
        {"symbol": "AAPL", "quantity": "8", "cost_basis": "1489.20"},
        {"symbol": "MSFT", "quantity": "3", "cost_basis": "1200.80"},
    ]
    # as of 2025-02-28 (all events but the 2025-02-01/02 cash moves are in; they are too: cash 7320.93)
    # AAPL 8 x 230.50 = 1844.00 (price of 02-28); MSFT 3 x 410 = 1230.00 (latest on or before: 01-31)
    # total 1844.00 + 1230.00 + 7320.93 = 10394.93; weights 1844/10394.93 = 0.177394, 1230/10394.93 = 0.118327
    assert out(ira("positions IRA-1 --as-of 2025-02-28")) == text("""
        Positions of IRA-1 as of 2025-02-28 (known at seq 10)
        symbol  quantity  cost_basis   price  price_date  market_value  weight
        ------  --------  ----------  ------  ----------  ------------  ------
        AAPL           8     1489.20  230.50  2025-02-28       1844.00  17.74%
        MSFT           3     1200.80  410.00  2025-01-31       1230.00  11.83%
        cash 7320.93 USD
    """)
    assert js(ira("positions IRA-1 --as-of 2025-02-28 --json")) == [
        {"symbol": "AAPL", "quantity": "8", "cost_basis": "1489.20", "price": "230.50", "price_date": "2025-02-28",
         "market_value": "1844.00", "weight": "0.177394"},
        {"symbol": "MSFT", "quantity": "3", "cost_basis": "1200.80", "price": "410.00", "price_date": "2025-01-31",
         "market_value": "1230.00", "weight": "0.118327"},
    ]
    # lots are valued too: lot 3 7 x 230.50 = 1613.50 - 1299.20 = 314.30; lot 4 230.50 - 190.00 = 40.50;
    # lot 5 3 x 410 = 1230.00 - 1200.80 = 29.20. Held more than a year on 2025-02-28: lots 3 and 4 (anniversaries
    # 2025-01-03, 2025-02-01) are long; lot 5 (anniversary 2025-03-01) is short.
    assert out(ira("lots IRA-1 --as-of 2025-02-28")) == text("""
        Lots of IRA-1 as of 2025-02-28 (known at seq 10)
        lot_id  symbol  quantity  cost_basis  acquired     price  unrealized  term
        ------  ------  --------  ----------  ----------  ------  ----------  -----
             3  AAPL           7     1299.20  2024-01-03  230.50      314.30  long
             4  AAPL           1      190.00  2024-02-01  230.50       40.50  long
             5  MSFT           3     1200.80  2024-03-01  410.00       29.20  short
    """)
    valued = js(ira("lots IRA-1 --as-of 2025-02-28 --json"))
    assert [{k: l[k] for k in ("lot_id", "price", "price_date", "market_value", "unrealized_gain", "term")} for l in valued] == [
        {"lot_id": "3", "price": "230.50", "price_date": "2025-02-28", "market_value": "1613.50", "unrealized_gain": "314.30",
         "term": "long"},
        {"lot_id": "4", "price": "230.50", "price_date": "2025-02-28", "market_value": "230.50", "unrealized_gain": "40.50",
         "term": "long"},
        {"lot_id": "5", "price": "410.00", "price_date": "2025-01-31", "market_value": "1230.00", "unrealized_gain": "29.20",
         "term": "short"},
    ]
    # as of 2025-03-31: AAPL 8 x 240 = 1920.00; MSFT 3 x 420.125 = 1260.375 -> 1260.38 (half to even: 0.375 -> 0.38)
    # total 1920.00 + 1260.38 + 7320.93 = 10501.31; 1920/10501.31 = 0.182834; 1260.38/10501.31 = 0.120021
    assert js(ira("positions IRA-1 --as-of 2025-03-31 --json")) == [
        {"symbol": "AAPL", "quantity": "8", "cost_basis": "1489.20", "price": "240.00", "price_date": "2025-03-31",
         "market_value": "1920.00", "weight": "0.182834"},
        {"symbol": "MSFT", "quantity": "3", "cost_basis": "1200.80", "price": "420.125", "price_date": "2025-03-31",
         "market_value": "1260.38", "weight": "0.120021"},
    ]
    # a different close for a known (symbol, date) corrects it
    fix = tmp_path / "fix.csv"
    fix.write_text("date,symbol,close\n2025-01-31,MSFT,400\n2025-01-31,AAPL,220.25\n")
    assert out(ira(f"prices import {fix}")) == "Recorded 1 prices from fix.csv (1 already known, skipped)\n"
    msft = js(ira("positions IRA-1 --as-of 2025-02-27 --json"))[1]
    # 3 x 400 = 1200.00; AAPL 8 x 220.25 = 1762.00; total 1762.00 + 1200.00 + 7320.93 = 10282.93
    # 1200/10282.93 = 0.116698
    assert msft == {"symbol": "MSFT", "quantity": "3", "cost_basis": "1200.80", "price": "400.00", "price_date": "2025-01-31",
                    "market_value": "1200.00", "weight": "0.116698"}


def test_weight_needs_every_holding_priced(ira, tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("date,symbol,close\n2025-01-31,AAPL,220.25\n")
    out(ira(f"prices import {p}"))
    # AAPL 8 x 220.25 = 1762.00; MSFT has no price, so no weight anywhere
    assert js(ira("positions IRA-1 --as-of 2025-03-01 --json")) == [
        {"symbol": "AAPL", "quantity": "8", "cost_basis": "1489.20", "price": "220.25", "price_date": "2025-01-31",
         "market_value": "1762.00"},
        {"symbol": "MSFT", "quantity": "3", "cost_basis": "1200.80"},
    ]


def test_positions_known_at_ignores_later_price_corrections(folio, tmp_path):
    out(folio("init"))
    out(folio("account open A --date 2024-01-02"))
    out(folio("record deposit A 1000 --date 2024-01-02"))
    out(folio("record buy A VTI 4 --price 100 --date 2024-02-01"))  # 400.00; cash 600.00
    p1, p2 = tmp_path / "p1.csv", tmp_path / "p2.csv"
    p1.write_text("date,symbol,close\n2024-02-01,VTI,100\n")
    p2.write_text("date,symbol,close\n2024-02-01,VTI,150\n")
    out(folio(f"prices import {p1}"))
    out(folio("record interest A 1 --date 2024-02-02"))  # seq 4, recorded after p1 and before p2; cash 601.00
    out(folio(f"prices import {p2}"))
    then = js(folio("log --json"))[-1]["recorded_at"]
    # as known then, VTI closed at 100 on 2024-02-01: 4 x 100 = 400.00; weight 400 / (400 + 601) = 0.399600
    assert js(folio(f"positions A --as-of 2024-02-02 --known-at {then} --json")) == [
        {"symbol": "VTI", "quantity": "4", "cost_basis": "400.00", "price": "100.00", "price_date": "2024-02-01",
         "market_value": "400.00", "weight": "0.399600"}]


# -- global options, env vars, help ------------------------------------------------------------
def test_env_vars_set_db_and_actor(tmp_path):
    db = str(tmp_path / "env.db")
    runner = CliRunner(env={"FOLIO_DB": db, "FOLIO_ACTOR": "env-actor"})
    assert out(runner.invoke(cli, ["init"])) == f"Created ledger at {db}\n"
    assert out(runner.invoke(cli, ["account", "open", "E", "--date", "2024-01-02"])) == "Opened E on 2024-01-02 (seq 1)\n"
    assert out(runner.invoke(cli, ["record", "deposit", "E", "12.34", "--date", "2024-01-03"])) == \
        "Recorded seq 2: 2024-01-03 E deposit 12.34\n"
    # --actor on the command line beats FOLIO_ACTOR
    out(runner.invoke(cli, ["--actor", "flag-actor", "record", "deposit", "E", "1", "--date", "2024-01-03"]))
    entries = json.loads(out(runner.invoke(cli, ["log", "--json"])))
    assert [(e["meta"]["actor"], e["meta"]["source"]) for e in entries] == [
        ("env-actor", "cli"), ("env-actor", "cli"), ("flag-actor", "cli")]
    assert Path(db).exists()
    # the same ledger through --db, with FOLIO_DB unset
    plain = CliRunner(env={"FOLIO_DB": None, "FOLIO_ACTOR": None})
    assert json.loads(out(plain.invoke(cli, ["--db", db, "cash", "E", "--json"]))) == [{"currency": "USD", "balance": "13.34"}]


def test_default_db_is_folio_db_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"FOLIO_DB": None, "FOLIO_ACTOR": None})
    assert out(runner.invoke(cli, ["init"])) == "Created ledger at folio.db\n"
    assert (tmp_path / "folio.db").exists()


def _walk(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        yield path + (name,), command
        if isinstance(command, click.Group):
            yield from _walk(command, path + (name,))


def test_every_command_has_help():
    runner = CliRunner()
    commands = list(_walk(cli))
    names = {" ".join(p) for p, _ in commands}
    # the commands of the issue are all there
    assert {"init", "account open", "record deposit", "record withdraw", "record fee", "record interest", "record buy",
            "record sell", "void", "import", "export", "positions", "lots", "cash", "gains", "log", "audit verify",
            "audit head", "prices import", "demo"} <= names
    assert (cli.help or "").strip()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0 and "Usage: " in top.stdout
    for path, command in commands:
        assert (command.help or command.short_help or "").strip(), f"folio {' '.join(path)} has no help text"
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, f"folio {' '.join(path)} --help: {result.output}"
        assert result.stdout.startswith("Usage: ")
        assert command.help.strip().split("\n")[0][:30] in result.stdout
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.opts[0] in result.stdout


def test_demo_tells_the_whole_story_on_a_kept_ledger(folio, tmp_path):
    """`folio demo` (the README's first command) runs every step, and the ledger it leaves checks out."""
    kept = tmp_path / "demo.db"
    (tmp_path / "fills.csv").write_text("the user's own file\n")  # beside the ledger: the demo's scratch goes elsewhere
    story = out(folio(f"demo --db {kept}"))
    assert (tmp_path / "fills.csv").read_text() == "the user's own file\n"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("demo.db")) == ["fills.csv"]
    for line in ("P0002: identical (digest ",                      # a proposal recomputed byte for byte
                 "OK: 52 events verified, head seq 52 hash ",       # the auditor's check
                 "Model core version 2 (min-vol, active-set QP (exact KKT): optimal)",
                 "optimizer: HiGHS (highspy) optimal, objective ",
                 "Error: ",                                         # the refused steps say why
                 f"The demo ledger is kept at {kept}."):
        assert line in story, line
    # the refusals left nothing behind, and the ledger is an ordinary one the CLI can query
    assert out(folio(f"--db {kept} audit verify")).startswith("OK: 52 events verified")
    held = {p["symbol"] for p in js(folio(f"--db {kept} positions taxable --json"))}
    assert {"AAPL", "GOOG", "JPM", "WMT", "XOM"} <= held and "PFE" not in held  # rebalanced; Pfizer harvested
    assert "filled" in out(folio(f"--db {kept} proposals show P0002"))
    # a second demo into the same file is refused, not mixed in
    assert "already exists" in folio(f"demo --db {kept}").output


def test_lot_ids_of_one_day_sort_numerically_part_by_part():
    # ids of different shapes (a buy, a spun-off child, wash-sale splits) on one day once raised TypeError
    from projections.views import _lot_number
    ids = ["12", "3", "3.12", "3w9", "3w9-2", "4.7", "10"]
    assert sorted(ids, key=_lot_number) == ["3w9", "3w9-2", "3", "3.12", "4.7", "10", "12"]


def test_json_output_writes_every_number_as_a_string():
    """The README's promise for every `--json`: numbers as strings (proposal contents carry seqs and versions as
    integers, an optimizer's report counts: they are written as strings too); true, false and null stay."""
    from commands import render

    assert json.loads(render.dumps({"seq": 7, "w": 0.25, "q": Decimal("1.50"), "ok": True, "none": None,
                                    "rows": [1, {"n": 2}, (3,)], "text": "4"})) == \
        {"seq": "7", "w": "0.25", "q": "1.50", "ok": True, "none": None, "rows": ["1", {"n": "2"}, ["3"]], "text": "4"}


def test_prices_export_and_import_restore_the_rows_as_recorded(ira, tmp_path):
    """`prices export` writes every row with when it was recorded; `prices import` of that file into the restored
    ledger keeps them verbatim (ids, times), so valuations known at a past moment read the same; again: skipped."""
    f = tmp_path / "p.csv"
    f.write_text("date,symbol,close\n2025-01-31,AAPL,220.25\n2025-01-31,MSFT,410\n")
    out(ira(f"prices import {f}"))
    f.write_text("date,symbol,close\n2025-01-31,AAPL,221\n")  # a correction, recorded later
    out(ira(f"prices import {f}"))
    rows = [json.loads(line) for line in out(ira("prices export")).splitlines()]
    assert [(r["id"], r["symbol"], r["close"]) for r in rows] == [(1, "AAPL", "220.25"), (2, "MSFT", "410"), (3, "AAPL", "221")]
    log, prices = tmp_path / "log.jsonl", tmp_path / "prices.jsonl"
    out(ira(f"export -o {log}"))
    out(ira(f"prices export -o {prices}"))
    other = cli_on(str(tmp_path / "copy.db"))
    out(other("init"))
    out(other(f"import {log}"))
    assert out(other(f"prices import {prices}")) == "Restored 3 price rows from prices.jsonl\n"
    assert out(other(f"prices import {prices}")) == "Restored 0 price rows from prices.jsonl (3 already here, skipped)\n"
    assert out(other("prices export")) == out(ira("prices export"))
    first = rows[0]["recorded_at"]  # as known when only the first file was in: AAPL at 220.25
    for args, aapl in (("--as-of 2025-02-28", "221.00"), (f"--as-of 2025-02-28 --known-at {first}", "220.25")):
        assert out(other(f"positions IRA-1 {args} --json")) == out(ira(f"positions IRA-1 {args} --json"))
        assert [p["price"] for p in js(other(f"positions IRA-1 {args} --json")) if p["symbol"] == "AAPL"] == [aapl]


def cli_on(db: str):
    runner = CliRunner()
    return lambda args: runner.invoke(cli, ["--db", db, "--actor", "tester", *shlex.split(args)])


@pytest.mark.parametrize("given, instant", [
    ("2024-04-15", "2024-04-15T23:59:59.999999Z"), ("20240415", "2024-04-15T23:59:59.999999Z"),
    ("2024-04-15T09:30:00Z", "2024-04-15T09:30:00.999999Z"), ("20240415T093000Z", "2024-04-15T09:30:00.999999Z"),
    ("2024-04-15T09:30", "2024-04-15T09:30:59.999999Z"), ("2024-04-15t09:30", "2024-04-15T09:30:59.999999Z"),
    ("2024-04-15T09", "2024-04-15T09:59:59.999999Z"), ("2024-04-15 09:30:01", "2024-04-15T09:30:01.999999Z"),
    ("2024-04-15T09:30:00.5Z", "2024-04-15T09:30:00.500000Z"), ("2024-04-15T09:30:00,5Z", "2024-04-15T09:30:00.500000Z"),
    ("2024-04-15T09:30:00+02:00", "2024-04-15T07:30:00.999999Z"), ("2024-04-15T09:30:00-0500", "2024-04-15T14:30:00.999999Z"),
    ("2024-04-15T09:30:00z", "2024-04-15T09:30:00.999999Z"),
])
def test_a_known_at_time_means_the_end_of_its_last_unit_in_every_iso_spelling(given, instant):
    """Extended or basic ISO, T or t or a blank, Z or an offset: a date is its day's end, a time without fractions
    the end of its last unit, a time with fractions that instant (found by review: the basic form was read as an hour)."""
    from projections.replay import known_at_timestamp

    assert known_at_timestamp(given) == instant


def test_books_without_as_of_are_todays_and_leave_out_what_is_dated_later(folio):
    """Found by review: `cash A`, headed "as of today", counted a trade dated 2099. A trade or cash movement dated
    after tomorrow is refused (a typo); a split announced for a later date is recorded, and without --as-of the views
    are today's books: the split shows from its date on."""
    for step in ["init", "account open A --date 2024-01-02", "record deposit A 1000 --date 2024-01-02",
                 "record buy A XYZ 10 --price 10 --date 2024-01-03", "record split XYZ 2:1 --date 2099-01-02"]:
        assert folio(step).exit_code == 0, step
    head = folio("audit head").output
    refused = folio("record buy A XYZ 10 --price 10 --date 2099-01-02")
    assert refused.exit_code == 1 and folio("audit head").output == head  # nothing recorded
    assert "dated 2099-01-02, after today: a trade or cash movement is recorded once it has happened" in refused.output
    assert json.loads(folio("positions A --json").output)[0]["quantity"] == "10"
    assert folio("cash A").output.startswith("Cash of A as of today (known at seq 4)")
    assert json.loads(folio("positions A --as-of 2099-01-02 --json").output)[0]["quantity"] == "20"


def test_an_account_opening_is_amended_and_comes_first_among_its_days_events(folio, db_path):
    """A wrong opening date, owner or tax status is corrected by `account amend`: the old opening voided and the new
    one recorded after the account's events, yet folded before those of its own date (found by review: a wrong date
    burned the account id for good)."""
    for step in ["init", "account open A --date 2024-03-01", "record deposit A 1000 --date 2024-03-01",
                 "record buy A VTI 2 --price 100 --date 2024-03-01"]:
        out(folio(step))
    assert out(folio("account amend A --date 2024-02-15 --reason 'opened in February'")) == (
        "Amended A: opens on 2024-02-15 as owner A, taxable, USD, lot method fifo, no overdraft (seq 5; the old opening, "
        "seq 1, voided by seq 4)\n")
    out(folio("record deposit A 5 --date 2024-02-15"))  # seq 6, before the opening's new seq
    assert out(folio("account amend A --owner ann --tax-status tax-deferred --reason 'an IRA'")).startswith(
        "Amended A: opens on 2024-02-15 as owner ann, tax-deferred, USD, lot method fifo, no overdraft (seq 8; the old "
        "opening, seq 5, voided by seq 7)")
    assert json.loads(out(folio("cash A --json"))) == [{"currency": "USD", "balance": "805.00"}]
    assert json.loads(out(folio("positions A --json"))) == [{"symbol": "VTI", "quantity": "2", "cost_basis": "200.00"}]
    assert out(folio("audit verify")).startswith("OK: 8 events verified")
    # an opening with nothing left on it may be voided, and the id opened anew
    for step in ["account open B --date 2024-01-02", "record deposit B 10 --date 2024-01-02", "void 10 --reason typo",
                 "void 9 --reason 'wrong id'", "account open B --date 2024-05-01"]:
        out(folio(step))
    assert json.loads(out(folio("cash B --json"))) == [{"currency": "USD", "balance": "0.00"}]


def test_a_ledger_with_the_two_phase_fold_index_gains_the_three_phase_one_once(folio, db_path):
    import sqlite3
    from ledger.store import EventStore, FOLD_ORDER
    for step in ["init", "account open A --date 2024-03-01", "record deposit A 10 --date 2024-03-01"]:
        out(folio(step))
    conn = sqlite3.connect(db_path)
    conn.executescript("DROP INDEX events_fold_order; CREATE INDEX events_fold ON events "
                       "(effective, (substr(stream, 1, 9) <> 'security:'), seq);")
    conn.close()
    store = EventStore.open(db_path)
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "events_fold_order" in names and "events_fold" not in names
    plan = store.conn.execute(f"EXPLAIN QUERY PLAN SELECT seq FROM events ORDER BY {FOLD_ORDER}").fetchall()
    assert "USING INDEX events_fold_order" in plan[0][3]
    store.close()
    assert json.loads(out(folio("cash A --json"))) == [{"currency": "USD", "balance": "10.00"}]


def _steps(folio, *steps):
    for step in steps:
        out(folio(step))


def test_an_owner_amendment_that_would_break_the_new_owners_history_is_refused(folio, db_path):
    """Found by review: moved to bob, A's lot 7 became the replacement for bob's loss in B1 and was split; A's recorded
    sale of all of lot 7 could no longer fold, and every query of bob's accounts failed. The check now folds the new
    owner's accounts too."""
    _steps(folio, "init", "account open B1 --date 2024-01-02 --owner bob", "account open A --date 2024-01-02 --owner alice",
           "record deposit B1 10000 --date 2024-01-02", "record deposit A 10000 --date 2024-01-02",
           "record buy B1 XYZ 10 --price 100 --date 2024-01-03", "record sell B1 XYZ 5 --price 80 --date 2024-02-01",
           "record buy A XYZ 10 --price 80 --date 2024-02-05", "record sell A XYZ 10 --price 90 --date 2024-03-01 --lot 7:10")
    head = out(folio("audit head"))
    result = folio("account amend A --owner bob --reason 'it is bob'")
    assert result.exit_code == 1 and result.stderr == (
        "Error: this would make recorded seq 8 (2024-03-01, sell 10 XYZ @ 90 lots 7:10) impossible by open A (taxable, "
        "USD, owner bob, fifo), void seq 2 (it is bob): cannot sell 10 XYZ in A on 2024-03-01: lot 7 holds 5, 10 asked. "
        "Record it differently, or void seq 8 first\n")
    assert out(folio("audit head")) == head
    assert json.loads(out(folio("cash B1 --json"))) == [{"currency": "USD", "balance": "9400.00"}]


def test_views_known_before_an_owner_amendment_show_what_was_known_then(folio, db_path):
    """Found by review: after A moved from alice to bob, `gains A --known-at-seq 9` left out A2 (alice's then) and showed
    A's loss without the wash sale A2's purchase made; owners are read as known at the point."""
    _steps(folio, "init", "account open B1 --date 2024-01-02 --owner bob", "account open A --date 2024-01-02 --owner alice",
           "account open A2 --date 2024-01-02 --owner alice", "record deposit A 10000 --date 2024-01-02",
           "record deposit A2 10000 --date 2024-01-02", "record deposit B1 100 --date 2024-01-02",
           "record buy A XYZ 10 --price 100 --date 2024-01-03", "record sell A XYZ 10 --price 80 --date 2024-02-01",
           "record buy A2 XYZ 10 --price 80 --date 2024-02-05")
    before = (out(folio("gains A --json")), out(folio("lots A2 --json")))
    assert json.loads(before[0])[0]["gain"] == "0.00"  # the loss of 200.00 washed by A2's purchase
    out(folio("account amend A --owner bob --reason 'bob'"))
    assert (out(folio("gains A --known-at-seq 9 --json")), out(folio("lots A2 --known-at-seq 9 --json"))) == before
    assert json.loads(out(folio("gains A --json")))[0]["gain"] == "-200.00"  # as known now: no longer alice's account
    out(folio("snapshot"))
    assert out(folio("audit verify")).endswith("snapshots match the log\n")


def test_audit_verify_checks_snapshots_made_before_an_owner_amendment_with_the_owners_of_then(folio, db_path):
    """Found by review: a snapshot of alice's accounts, checked with today's owners after A moved to bob, folded bob's
    rates without a bob account (an error), or was called altered."""
    _steps(folio, "init", "account open A --date 2024-01-02 --owner alice", "account open A2 --date 2024-01-02 --owner alice",
           "account open B --date 2024-01-02 --owner bob", "owner rates bob --short-term 0.3 --long-term 0.1 --date 2024-01-02",
           "record deposit A 100 --date 2024-01-02", "snapshot", "account amend A --owner bob --reason bobs")
    result = out(folio("audit verify"))
    assert result.startswith("OK: 7 events verified") and result.endswith("snapshots match the log\n")


def test_snapshot_builds_each_owners_scope_once_and_counts_what_it_built(folio, db_path):
    """Found by review: two accounts of one owner share a scope, built (and counted) once per account."""
    import sqlite3
    _steps(folio, "init", "account open A --date 2024-01-02 --owner o", "account open B --date 2024-01-02 --owner o",
           "account open C --date 2024-01-02 --owner p", "record deposit A 10 --date 2024-01-02",
           "record deposit C 10 --date 2024-01-03")
    built = int(out(folio("snapshot")).split()[1])
    with sqlite3.connect(db_path) as conn:
        assert built == conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
