"""Corporate actions through the CLI and the CSV import: exact outputs, hand-checked numbers, bad input refused.

Every test starts from the same small ledger (`held`), in which two accounts hold XYZ and a third
holds only OTH:

    seq  1-3   open A, B, C on 2024-01-02 (taxable, FIFO, each its own owner)
    seq  4-6   deposit 10000 in each
    seq  7     A buys 10 XYZ at 100 on 2024-01-03  -> lot 7,  basis 1000.00
    seq  8     A buys  7 XYZ at  90 on 2024-01-05  -> lot 8,  basis  630.00
    seq  9     B buys  5 XYZ at 110 on 2024-01-04  -> lot 9,  basis  550.00
    seq 10     C buys  3 OTH at  50 on 2024-01-04  -> lot 10, basis  150.00
    cash: A 10000 - 1000 - 630 = 8370.00; B 10000 - 550 = 9450.00; C 10000 - 150 = 9850.00

Each kind of corporate action is recorded once from the CLI and once from a CSV file (two test
instances, two fresh ledgers) and both must give the same hand-checked books: A and B change, C
stays exactly as it was. JSON read models are compared on the fields the README documents for them
(other fields, such as price columns, may be added by other features).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest

from commands.imports import ALL_COLUMNS
from tests.cli_helpers import out as ok

# -- helpers ------------------------------------------------------------------------
LOT_KEYS = ("lot_id", "symbol", "quantity", "cost_basis", "acquired")
GAIN_KEYS = ("lot_id", "symbol", "quantity", "acquired", "sold", "proceeds", "cost_basis", "gain", "term", "reason")

BASE = [
    "init",
    "account open A --date 2024-01-02",  # seq 1
    "account open B --date 2024-01-02",  # seq 2
    "account open C --date 2024-01-02",  # seq 3
    "record deposit A 10000 --date 2024-01-02",  # seq 4
    "record deposit B 10000 --date 2024-01-02",  # seq 5
    "record deposit C 10000 --date 2024-01-02",  # seq 6
    "record buy A XYZ 10 --price 100 --date 2024-01-03",  # seq 7: 1000.00
    "record buy A XYZ 7 --price 90 --date 2024-01-05",  # seq 8: 630.00
    "record buy B XYZ 5 --price 110 --date 2024-01-04",  # seq 9: 550.00
    "record buy C OTH 3 --price 50 --date 2024-01-04",  # seq 10: 150.00
]

BASE_LOTS = {
    "A": [("7", "XYZ", "10", "1000.00", "2024-01-03"), ("8", "XYZ", "7", "630.00", "2024-01-05")],
    "B": [("9", "XYZ", "5", "550.00", "2024-01-04")],
    "C": [("10", "OTH", "3", "150.00", "2024-01-04")],
}
BASE_CASH = {"A": "8370.00", "B": "9450.00", "C": "9850.00"}



def refused(result) -> str:
    """The message of a command that must have failed cleanly (exit 1, no traceback)."""
    assert result.exit_code == 1, f"expected a refusal, got exit {result.exit_code}: {result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.output


def lots(folio, account: str, *opts: str) -> list[tuple]:
    rows = json.loads(ok(folio(f"lots {account} --json {' '.join(opts)}")))
    return [tuple(r[k] for k in LOT_KEYS) for r in rows]


def gains(folio, account: str, *opts: str) -> list[tuple]:
    rows = json.loads(ok(folio(f"gains {account} --json {' '.join(opts)}")))
    return [tuple(r[k] for k in GAIN_KEYS) for r in rows]


def cash(folio, account: str, *opts: str) -> str:
    return json.loads(ok(folio(f"cash {account} --json {' '.join(opts)}")))[0]["balance"]


def head(folio) -> str:
    return ok(folio("audit head"))


def write_csv(tmp_path, rows: list[dict], name: str = "actions.csv") -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ALL_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow(row)
    path = tmp_path / name
    path.write_text(buf.getvalue())
    return str(path)


@pytest.fixture
def held(folio):
    for step in BASE:
        ok(folio(step))
    return folio


# -- every kind, from the CLI and from CSV, on several accounts at once ------------------------------
# Each case: CLI commands, the same as CSV rows, the exact CLI output of the last command, and the
# books after (lots, cash and gains of A and B; C must equal its base books and have no gains).
KINDS = {
    # 3:2 with cash in lieu at 80 a new share (A's fraction, 0.5 of 25.5, all from lot 8, its only lot with one):
    #   A lot 7: 10 -> 15, basis 1000.00 stays.  A lot 8: 7 -> 10.5: 10 kept, 0.5 paid round(0.5 x 80) = 40.00,
    #     fraction basis round(630 x 0.5 / 10.5) = 30.00, gain 10.00 (short); lot 8 keeps 600.00
    #   B lot 9: 5 -> 7.5: 7 kept, 0.5 paid 40.00, basis round(550 x 0.5 / 7.5) = round(36.666..) = 36.67, gain 3.33;
    #     keeps 550 - 36.67 = 513.33
    #   cash A 8370 + 40 = 8410.00; B 9450 + 40 = 9490.00
    "split-cash-in-lieu": dict(
        cli=["record split XYZ 3:2 --date 2024-02-01 --fraction cash --cash-price 80"],
        csv=[dict(date="2024-02-01", action="split", symbol="XYZ", ratio="3:2", fraction="cash", price="80")],
        output=("Recorded seq 11: 2024-02-01 split 3:2 of XYZ, fractions: cash at 80\n"
                "  A: 17 -> 25 XYZ, cash in lieu 40.00\n"
                "  B: 5 -> 7 XYZ, cash in lieu 40.00\n"),
        lots={"A": [("7", "XYZ", "15", "1000.00", "2024-01-03"), ("8", "XYZ", "10", "600.00", "2024-01-05")],
              "B": [("9", "XYZ", "7", "513.33", "2024-01-04")]},
        cash={"A": "8410.00", "B": "9490.00"},
        gains={"A": [("8", "XYZ", "0.5", "2024-01-05", "2024-02-01", "40.00", "30.00", "10.00", "short", "cash-in-lieu")],
               "B": [("9", "XYZ", "0.5", "2024-01-04", "2024-02-01", "40.00", "36.67", "3.33", "short", "cash-in-lieu")]},
    ),
    # stock dividend 1.1:1, fractions rounded up: lot 7: 10 -> 11; lot 8: 7 -> 7.7 -> 8; lot 9: 5 -> 5.5 -> 6.
    # basis and dates stay, no cash
    "stock-dividend-round-up": dict(
        cli=["record split XYZ 1.1:1 --stock-dividend --fraction round-up --date 2024-02-01"],
        csv=[dict(date="2024-02-01", action="stock-dividend", symbol="XYZ", ratio="1.1:1", fraction="round-up")],
        output=("Recorded seq 11: 2024-02-01 stock dividend 1.1:1 of XYZ, fractions: round-up\n"
                "  A: 17 -> 19 XYZ\n"
                "  B: 5 -> 6 XYZ\n"),
        lots={"A": [("7", "XYZ", "11", "1000.00", "2024-01-03"), ("8", "XYZ", "8", "630.00", "2024-01-05")],
              "B": [("9", "XYZ", "6", "550.00", "2024-01-04")]},
        cash={"A": "8370.00", "B": "9450.00"},
        gains={"A": [], "B": []},
    ),
    # B reinvests XYZ from 2024-02-15. 0.25 a share, ex 2024-03-01, paid 2024-03-15, 15% withheld, reinvested at 40:
    #   A: 17 x 0.25 = 4.25 gross, withheld round(0.6375) = 0.64, net 3.61 in cash -> 8373.61
    #   B: 5 x 0.25 = 1.25 gross, withheld round(0.1875) = 0.19, net 1.06 buys 1.06 / 40 = 0.0265 XYZ (lot 12r,
    #      basis 1.06, acquired on the pay date); cash unchanged 9450.00
    "dividend-withholding-reinvested": dict(
        cli=["account reinvest B XYZ --on --date 2024-02-15",
             "record dividend XYZ 0.25 --ex-date 2024-03-01 --pay-date 2024-03-15 --withholding 0.15 --reinvest-price 40"],
        csv=[dict(date="2024-02-15", account="B", action="reinvest", symbol="XYZ", kind="on"),
             dict(date="2024-03-01", action="dividend", symbol="XYZ", amount="0.25", pay_date="2024-03-15",
                  withholding="0.15", price="40")],
        output=("Recorded seq 12: 2024-03-01 ordinary dividend 0.25 a share of XYZ, ex 2024-03-01, paid 2024-03-15, "
                "withholding 0.15, reinvest at 40\n"
                "  A: 17 XYZ entitled: 4.25 gross, 0.64 withheld, paid 2024-03-15\n"
                "  B: 5 XYZ entitled: 1.25 gross, 0.19 withheld, paid 2024-03-15\n"),
        lots={"A": BASE_LOTS["A"],
              "B": [("9", "XYZ", "5", "550.00", "2024-01-04"), ("12r", "XYZ", "0.0265", "1.06", "2024-03-15")]},
        cash={"A": "8373.61", "B": "9450.00"},
        gains={"A": [], "B": []},
    ),
    # return of capital 100.50 a share, ex 2024-04-01, paid 2024-04-10:
    #   A: 17 x 100.50 = 1708.50, by shares: lot 7 round(1708.50 x 10/17) = 1005.00, lot 8 703.50
    #      lot 7: basis 1000.00 -> 0.00, excess 5.00 realized; lot 8: 630.00 -> 0.00, excess 73.50 realized
    #      cash 8370 + 1708.50 = 10078.50
    #   B: 5 x 100.50 = 502.50 < 550.00: basis 47.50, nothing realized; cash 9450 + 502.50 = 9952.50
    "return-of-capital": dict(
        cli=["record dividend XYZ 100.50 --kind return-of-capital --ex-date 2024-04-01 --pay-date 2024-04-10"],
        csv=[dict(date="2024-04-01", action="dividend", symbol="XYZ", amount="100.50", pay_date="2024-04-10",
                  kind="return-of-capital")],
        output=("Recorded seq 11: 2024-04-01 return-of-capital dividend 100.50 a share of XYZ, ex 2024-04-01, paid 2024-04-10\n"
                "  A: 17 XYZ entitled: 1708.50 gross, 0.00 withheld, paid 2024-04-10\n"
                "  B: 5 XYZ entitled: 502.50 gross, 0.00 withheld, paid 2024-04-10\n"),
        lots={"A": [("7", "XYZ", "10", "0.00", "2024-01-03"), ("8", "XYZ", "7", "0.00", "2024-01-05")],
              "B": [("9", "XYZ", "5", "47.50", "2024-01-04")]},
        cash={"A": "10078.50", "B": "9952.50"},
        gains={"A": [("7", "XYZ", "0", "2024-01-03", "2024-04-10", "5.00", "0.00", "5.00", "short", "return-of-capital"),
                     ("8", "XYZ", "0", "2024-01-05", "2024-04-10", "73.50", "0.00", "73.50", "short", "return-of-capital")],
               "B": []},
    ),
    # XYZ -> 0.5 ACQ + 10.00 cash a share, ACQ worth 170, fractions cashed at 180 (a reorganization), per lot:
    #   A lot 7: cash 100.00; 5 ACQ worth 850.00; realized 100 + 850 - 1000 = -50 -> recognized 0 (never a loss);
    #     the cash relieves 100.00 of basis: gain record 100.00 - 100.00 = 0.00; new basis 900.00, date kept
    #   A lot 8: cash 70.00; 3.5 ACQ worth 595.00; realized 70 + 595 - 630 = 35 -> recognized min(35, 70) = 35.00;
    #     relieved 70 - 35 = 35.00; new basis 630 - 35 = 595.00; 0.5 ACQ redeemed at 180 = 90.00 with basis
    #     round(595 x 0.5/3.5) = 85.00 (gain 5.00); lot 8 keeps 3 ACQ at 510.00
    #   B lot 9: cash 50.00; 2.5 ACQ worth 425.00; realized 50 + 425 - 550 = -75 -> 0; relieved 50.00; basis 500.00;
    #     0.5 ACQ at 180 = 90.00, basis round(500 x 0.5/2.5) = 100.00, gain -10.00; keeps 2 ACQ at 400.00
    #   cash A 8370 + 100 + 70 + 90 = 8630.00; B 9450 + 50 + 90 = 9590.00
    "merger-stock-and-cash": dict(
        cli=["record merger XYZ --acquirer ACQ --shares 0.5 --cash 10 --acquirer-fmv 170 --cash-price 180 --date 2024-05-01"],
        csv=[dict(date="2024-05-01", action="merger", symbol="XYZ", new_symbol="ACQ", ratio="0.5", amount="10",
                  fmv="170", price="180")],
        output=("Recorded seq 11: 2024-05-01 merger of XYZ: 0.5:1 ACQ + 10 cash a share\n"
                "  A: XYZ -> 8 ACQ, cash 260.00\n"
                "  B: XYZ -> 2 ACQ, cash 140.00\n"),
        lots={"A": [("7", "ACQ", "5", "900.00", "2024-01-03"), ("8", "ACQ", "3", "510.00", "2024-01-05")],
              "B": [("9", "ACQ", "2", "400.00", "2024-01-04")]},
        cash={"A": "8630.00", "B": "9590.00"},
        gains={"A": [("7", "XYZ", "0", "2024-01-03", "2024-05-01", "100.00", "100.00", "0.00", "short", "merger-cash"),
                     ("8", "XYZ", "0", "2024-01-05", "2024-05-01", "70.00", "35.00", "35.00", "short", "merger-cash"),
                     ("8", "ACQ", "0.5", "2024-01-05", "2024-05-01", "90.00", "85.00", "5.00", "short", "cash-in-lieu")],
               "B": [("9", "XYZ", "0", "2024-01-04", "2024-05-01", "50.00", "50.00", "0.00", "short", "merger-cash"),
                     ("9", "ACQ", "0.5", "2024-01-04", "2024-05-01", "90.00", "100.00", "-10.00", "short", "cash-in-lieu")]},
    ),
    # cash only, 120.00 a share: a sale of each lot. A: 1200.00 - 1000.00 = 200.00; 840.00 - 630.00 = 210.00;
    # B: 600.00 - 550.00 = 50.00. cash A 8370 + 2040 = 10410.00; B 9450 + 600 = 10050.00
    "merger-cash-only": dict(
        cli=["record merger XYZ --cash 120 --date 2024-05-01"],
        csv=[dict(date="2024-05-01", action="merger", symbol="XYZ", amount="120")],
        output=("Recorded seq 11: 2024-05-01 merger of XYZ: 120 cash a share\n"
                "  A: XYZ -> cash 2040.00\n"
                "  B: XYZ -> cash 600.00\n"),
        lots={"A": [], "B": []},
        cash={"A": "10410.00", "B": "10050.00"},
        gains={"A": [("7", "XYZ", "10", "2024-01-03", "2024-05-01", "1200.00", "1000.00", "200.00", "short", "merger-cash"),
                     ("8", "XYZ", "7", "2024-01-05", "2024-05-01", "840.00", "630.00", "210.00", "short", "merger-cash")],
               "B": [("9", "XYZ", "5", "2024-01-04", "2024-05-01", "600.00", "550.00", "50.00", "short", "merger-cash")]},
    ),
    # fully taxable: 2 NEWCO (worth 60) + 5.00 cash a share: a sale at cash + fair value, new lots at fair value
    # acquired on the merger date. lot 7: 50.00 + 20 x 60 = 1250.00 - 1000.00 = 250.00 -> lot 7.11, 20 NEWCO, 1200.00
    # lot 8: 35.00 + 840.00 = 875.00 - 630.00 = 245.00 -> lot 8.11, 14 NEWCO, 840.00
    # lot 9: 25.00 + 600.00 = 625.00 - 550.00 = 75.00 -> lot 9.11, 10 NEWCO, 600.00
    # cash A 8370 + 85 = 8455.00; B 9450 + 25 = 9475.00
    "merger-taxable": dict(
        cli=["record merger XYZ --acquirer NEWCO --shares 2 --cash 5 --acquirer-fmv 60 --taxable --date 2024-05-01"],
        csv=[dict(date="2024-05-01", action="merger", symbol="XYZ", new_symbol="NEWCO", ratio="2", amount="5", fmv="60",
                  taxable="yes")],
        output=("Recorded seq 11: 2024-05-01 merger of XYZ: 2:1 NEWCO + 5 cash a share, taxable\n"
                "  A: XYZ -> 34 NEWCO, cash 85.00\n"
                "  B: XYZ -> 10 NEWCO, cash 25.00\n"),
        lots={"A": [("7.11", "NEWCO", "20", "1200.00", "2024-05-01"), ("8.11", "NEWCO", "14", "840.00", "2024-05-01")],
              "B": [("9.11", "NEWCO", "10", "600.00", "2024-05-01")]},
        cash={"A": "8455.00", "B": "9475.00"},
        gains={"A": [("7", "XYZ", "10", "2024-01-03", "2024-05-01", "1250.00", "1000.00", "250.00", "short", "merger"),
                     ("8", "XYZ", "7", "2024-01-05", "2024-05-01", "875.00", "630.00", "245.00", "short", "merger")],
               "B": [("9", "XYZ", "5", "2024-01-04", "2024-05-01", "625.00", "550.00", "75.00", "short", "merger")]},
    ),
    # KID 1 per 3 XYZ, FMVs XYZ 60, KID 30: allocation = (30/3) / (60 + 30/3) = 1/7 -> 0.1428571429 (10 places);
    # fractions cashed at the child's FMV, 30:
    #   lot 7: KID basis round(1000 x 0.1428571429) = 142.86, XYZ keeps 857.14; 10/3 KID: 3 kept, 1/3 paid 10.00,
    #     basis round(142.86 x (1/3)/(10/3)) = 14.29, gain -4.29; KID lot 7.11 keeps 128.57, acquired 2024-01-03
    #   lot 8: round(630 x 0.1428571429) = 90.00, XYZ keeps 540.00; 7/3 KID: 2 kept, 1/3 paid 10.00,
    #     basis round(90 x (1/3)/(7/3)) = 12.86, gain -2.86; KID lot 8.11 keeps 77.14, acquired 2024-01-05
    #   lot 9: round(550 x 0.1428571429) = 78.57, XYZ keeps 471.43; 5/3 KID: 1 kept, 2/3 paid 20.00,
    #     basis round(78.57 x (2/3)/(5/3)) = 31.43, gain -11.43; KID lot 9.11 keeps 47.14, acquired 2024-01-04
    #   cash A 8370 + 20 = 8390.00; B 9450 + 20 = 9470.00
    #   (each lot kept to 12 decimals, the roundings evened out: A's 3.333333333333 + 2.333333333333 fall 1e-12 short
    #   of 17/3 kept so, which lot 7.11 takes first; so A's thirds paid are 0.333333333334 and 0.333333333333)
    "spinoff-by-fair-values": dict(
        cli=["record spinoff XYZ KID --shares 1:3 --parent-fmv 60 --child-fmv 30 --date 2024-04-01"],
        csv=[dict(date="2024-04-01", action="spinoff", symbol="XYZ", new_symbol="KID", ratio="1:3", fmv="60", child_fmv="30")],
        output=("Recorded seq 11: 2024-04-01 spinoff of KID from XYZ: 1:3, 0.1428571429 of basis to KID\n"
                "  A: received 5 KID, cash in lieu 20.00\n"
                "  B: received 1 KID, cash in lieu 20.00\n"),
        lots={"A": [("7.11", "KID", "3", "128.57", "2024-01-03"), ("8.11", "KID", "2", "77.14", "2024-01-05"),
                    ("7", "XYZ", "10", "857.14", "2024-01-03"), ("8", "XYZ", "7", "540.00", "2024-01-05")],
              "B": [("9.11", "KID", "1", "47.14", "2024-01-04"), ("9", "XYZ", "5", "471.43", "2024-01-04")]},
        cash={"A": "8390.00", "B": "9470.00"},
        gains={"A": [("7.11", "KID", "0.333333333334", "2024-01-03", "2024-04-01", "10.00", "14.29", "-4.29",
                      "short", "cash-in-lieu"),
                     ("8.11", "KID", "0.333333333333", "2024-01-05", "2024-04-01", "10.00", "12.86", "-2.86",
                      "short", "cash-in-lieu")],
               "B": [("9.11", "KID", "0.666666666667", "2024-01-04", "2024-04-01", "20.00", "31.43", "-11.43",
                      "short", "cash-in-lieu")]},
    ),
    # 0.5 KID a share, 25% of basis given, fractions kept: lot 7: 5 KID at 250.00, XYZ 750.00;
    # lot 8: 3.5 KID at 157.50, XYZ 472.50; lot 9: 2.5 KID at 137.50, XYZ 412.50; no cash
    "spinoff-by-allocation": dict(
        cli=["record spinoff XYZ KID --shares 0.5 --allocation 0.25 --fraction keep --date 2024-04-01"],
        csv=[dict(date="2024-04-01", action="spinoff", symbol="XYZ", new_symbol="KID", ratio="0.5", allocation="0.25",
                  fraction="keep")],
        output=("Recorded seq 11: 2024-04-01 spinoff of KID from XYZ: 0.5:1, 0.25 of basis to KID\n"
                "  A: received 8.5 KID\n"
                "  B: received 2.5 KID\n"),
        lots={"A": [("7.11", "KID", "5", "250.00", "2024-01-03"), ("8.11", "KID", "3.5", "157.50", "2024-01-05"),
                    ("7", "XYZ", "10", "750.00", "2024-01-03"), ("8", "XYZ", "7", "472.50", "2024-01-05")],
              "B": [("9.11", "KID", "2.5", "137.50", "2024-01-04"), ("9", "XYZ", "5", "412.50", "2024-01-04")]},
        cash={"A": "8370.00", "B": "9450.00"},
        gains={"A": [], "B": []},
    ),
    # the lots move to the new symbol; quantity, basis and dates stay
    "symbol-change": dict(
        cli=["record symbol-change XYZ XYZN --date 2024-06-03"],
        csv=[dict(date="2024-06-03", action="symbol-change", symbol="XYZ", new_symbol="XYZN")],
        output=("Recorded seq 11: 2024-06-03 symbol change XYZ -> XYZN\n"
                "  A: 17 XYZ now XYZN\n"
                "  B: 5 XYZ now XYZN\n"),
        lots={"A": [("7", "XYZN", "10", "1000.00", "2024-01-03"), ("8", "XYZN", "7", "630.00", "2024-01-05")],
              "B": [("9", "XYZN", "5", "550.00", "2024-01-04")]},
        cash={"A": "8370.00", "B": "9450.00"},
        gains={"A": [], "B": []},
    ),
}


@pytest.mark.parametrize("via", ["cli", "csv"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_applies_to_every_holder_and_only_to_holders(held, tmp_path, kind, via):
    case = KINDS[kind]
    if via == "cli":
        outputs = [ok(held(command)) for command in case["cli"]]
        assert outputs[-1] == case["output"]
    else:
        path = write_csv(tmp_path, case["csv"], f"{kind}.csv")
        n = len(case["csv"])
        assert ok(held(f"import {path}")) == f"Recorded {n} events from {kind}.csv\n"
    for account in ("A", "B"):
        assert lots(held, account) == case["lots"][account], account
        assert cash(held, account) == case["cash"][account], account
        assert gains(held, account) == case["gains"][account], account
    # C never held XYZ: exactly as before
    assert lots(held, "C") == BASE_LOTS["C"]
    assert cash(held, "C") == BASE_CASH["C"]
    assert gains(held, "C") == []
    # and the day before the action every account still shows its old books
    first_day = min(r.get("date") for r in case["csv"] if not r.get("account"))
    before = f"--as-of {_day_before(first_day)}"
    for account in ("A", "B", "C"):
        assert lots(held, account, before) == BASE_LOTS[account]
        assert cash(held, account, before) == BASE_CASH[account]


def _day_before(day: str) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()


def test_reinvest_command_and_csv_setting(held, tmp_path):
    # the account setting alone: recorded on the account's stream, reported on and off
    assert ok(held("account reinvest B XYZ --on --date 2024-02-15")) == (
        "Recorded seq 11: 2024-02-15 B reinvests XYZ dividends: on\n")
    assert ok(held("account reinvest B XYZ --off --date 2024-02-20")) == (
        "Recorded seq 12: 2024-02-20 B reinvests XYZ dividends: off\n")
    # switched off again: a dividend without a reinvestment price is now fine, and B takes cash (5 x 0.20 = 1.00)
    held("record dividend XYZ 0.20 --ex-date 2024-03-01 --pay-date 2024-03-15")
    assert cash(held, "B") == "9451.00"
    # from CSV, turned on: the next dividend is reinvested. 5 x 0.40 = 2.00 / 50 = 0.04 XYZ, lot 15r
    path = write_csv(tmp_path, [dict(date="2024-04-01", account="B", action="reinvest", symbol="XYZ", kind="on"),
                                dict(date="2024-04-02", action="dividend", symbol="XYZ", amount="0.40",
                                     pay_date="2024-04-20", price="50")])
    assert ok(held(f"import {path}")) == "Recorded 2 events from actions.csv\n"
    assert lots(held, "B")[-1] == ("15r", "XYZ", "0.04", "2.00", "2024-04-20")
    assert cash(held, "B") == "9451.00"
    # A does not reinvest: 17 x 0.20 = 3.40 and 17 x 0.40 = 6.80 in cash
    assert cash(held, "A") == "8380.20"


# -- listing, origins, reasons ---------------------------------------------------------------------
def test_corporate_actions_lists_them_in_fold_order(held):
    ok(held("record symbol-change XYZ XYZN --date 2024-06-03"))  # seq 11
    ok(held("record split XYZ 2:1 --date 2024-02-01"))  # seq 12 (recorded later, effective earlier)
    ok(held("record spinoff XYZ KID --shares 0.5 --allocation 0.25 --fraction keep --date 2024-04-01"))  # seq 13
    ok(held("record dividend OTH 0.10 --ex-date 2024-03-01 --pay-date 2024-03-10"))  # seq 14
    assert ok(held("corporate-actions")) == (
        "seq  effective   symbol  action\n"
        "---  ----------  ------  " + "-" * len("ordinary dividend 0.1 a share of OTH, ex 2024-03-01, paid 2024-03-10") + "\n"
        " 12  2024-02-01  XYZ     split 2:1 of XYZ, fractions: keep\n"
        # the stored payload keeps 0.10 as 0.1 (the recording message above said 0.10)
        " 14  2024-03-01  OTH     ordinary dividend 0.1 a share of OTH, ex 2024-03-01, paid 2024-03-10\n"
        " 13  2024-04-01  XYZ     spinoff of KID from XYZ: 0.5:1, 0.25 of basis to KID\n"
        " 11  2024-06-03  XYZ     symbol change XYZ -> XYZN\n")
    listed = json.loads(ok(held("corporate-actions XYZ --json")))
    assert [(r["seq"], r["effective"], r["symbol"], r["type"], r["description"], r["voided"]) for r in listed] == [
        ("12", "2024-02-01", "XYZ", "SplitApplied", "split 2:1 of XYZ, fractions: keep", False),
        ("13", "2024-04-01", "XYZ", "SpinoffCompleted", "spinoff of KID from XYZ: 0.5:1, 0.25 of basis to KID", False),
        ("11", "2024-06-03", "XYZ", "SymbolChanged", "symbol change XYZ -> XYZN", False),
    ]
    assert listed[0]["payload"] == {"symbol": "XYZ", "new": "2", "old": "1", "fraction": "keep", "cash_price": None,
                                    "stock_dividend": False}
    # the child and the new symbol find the actions that name them
    assert [r["seq"] for r in json.loads(ok(held("corporate-actions KID --json")))] == ["13"]
    assert [r["seq"] for r in json.loads(ok(held("corporate-actions xyzn --json")))] == ["11"]
    assert json.loads(ok(held("corporate-actions NOPE --json"))) == []


def test_corporate_actions_of_a_symbol_does_not_list_symbols_that_merely_contain_it(held):
    ok(held("record split T 2:1 --date 2024-02-01"))  # seq 11
    ok(held("record split TGT 2:1 --date 2024-02-01"))  # seq 12
    assert [r["seq"] for r in json.loads(ok(held("corporate-actions T --json")))] == ["11"]


def test_lots_json_shows_origin(held):
    ok(held("record split XYZ 2:1 --date 2024-02-01"))  # seq 11: lot 7 -> 20, lot 8 -> 14
    ok(held("record spinoff XYZ KID --shares 0.5 --allocation 0.25 --fraction keep --date 2024-04-01"))  # seq 12
    ok(held("record symbol-change XYZ XYZN --date 2024-06-03"))  # seq 13
    ok(held("record merger XYZN --acquirer ACQ --shares 1:2 --fraction keep --date 2024-07-01"))  # seq 14: stock only, 1 ACQ per 2
    rows = {r["lot_id"]: r for r in json.loads(ok(held("lots A --json")))}
    # lot 7: 10 -> 20 XYZ -> 20 XYZN (basis 1000 x 0.75 = 750.00) -> 10 ACQ, basis and date carried
    assert (rows["7"]["symbol"], rows["7"]["quantity"], rows["7"]["cost_basis"], rows["7"]["acquired"]) == (
        "ACQ", "10", "750.00", "2024-01-03")
    assert rows["7"]["origin"] == [
        {"seq": "7", "what": "bought 10 at 100"},
        {"seq": "11", "what": "split 2:1"},
        {"seq": "12", "what": "spun off KID, kept 0.75 of basis"},
        {"seq": "13", "what": "renamed XYZ -> XYZN"},
        {"seq": "14", "what": "merger of XYZN into ACQ, 1:2 + 0 cash a share"},
    ]
    # the child lot of lot 7: 20 x 0.5 = 10 KID, basis 1000 x 0.25 = 250.00, acquired like its parent
    assert (rows["7.12"]["symbol"], rows["7.12"]["quantity"], rows["7.12"]["cost_basis"], rows["7.12"]["acquired"]) == (
        "KID", "10", "250.00", "2024-01-03")
    assert rows["7.12"]["origin"] == [{"seq": "12", "what": "spun off from XYZ lot 7, 0.25 of its basis"}]


def test_gains_json_shows_each_reason(folio):
    for step in [
        "init",
        "account open D --date 2024-01-02",  # seq 1
        "record deposit D 1000 --date 2024-01-02",  # seq 2
        "record buy D P1 10 --price 1 --date 2024-01-03",  # seq 3: basis 10.00
        "record buy D P2 3 --price 10 --date 2024-01-03",  # seq 4: 30.00
        "record buy D P3 2 --price 10 --date 2024-01-03",  # seq 5: 20.00
        "record buy D P4 1 --price 10 --date 2024-01-03",  # seq 6: 10.00
        "record sell D P4 1 --price 11 --date 2024-01-04",  # seq 7: sale 11.00 - 10.00 = 1.00
        "record buy D P4 1 --price 10 --date 2024-01-05",  # seq 8: 10.00
        # seq 9: return of capital 2.00 a share: 20.00 against basis 10.00 -> basis 0, 10.00 realized
        "record dividend P1 2 --kind return-of-capital --ex-date 2024-02-01 --pay-date 2024-02-05",
        # seq 10: 1:2 with cash in lieu at 25: 3 -> 1.5: 0.5 paid 12.50, basis round(30 x 0.5/1.5) = 10.00, gain 2.50
        "record split P2 1:2 --fraction cash --cash-price 25 --date 2024-02-01",
        # seq 11: cash merger 15.00 a share: 30.00 - 20.00 = 10.00
        "record merger P3 --cash 15 --date 2024-02-01",
        # seq 12: taxable merger 1 P5 (worth 12) per share: 12.00 - 10.00 = 2.00
        "record merger P4 --acquirer P5 --shares 1 --acquirer-fmv 12 --taxable --date 2024-02-01",
    ]:
        ok(folio(step))
    assert gains(folio, "D") == [
        ("6", "P4", "1", "2024-01-03", "2024-01-04", "11.00", "10.00", "1.00", "short", "sale"),
        ("4", "P2", "0.5", "2024-01-03", "2024-02-01", "12.50", "10.00", "2.50", "short", "cash-in-lieu"),
        ("5", "P3", "2", "2024-01-03", "2024-02-01", "30.00", "20.00", "10.00", "short", "merger-cash"),
        ("8", "P4", "1", "2024-01-05", "2024-02-01", "12.00", "10.00", "2.00", "short", "merger"),
        # the excess of a return of capital over basis is realized when paid (found by review: dated the ex-date, a
        # distribution ex 27 December, paid in January, fell in the wrong tax year)
        ("3", "P1", "0", "2024-01-03", "2024-02-05", "10.00", "0.00", "10.00", "short", "return-of-capital"),
    ]
    # the table shows the reason too
    table = ok(folio("gains D"))
    for reason in ("sale", "return-of-capital", "cash-in-lieu", "merger-cash", "merger"):
        assert f" {reason}\n" in table


def test_successive_splits_compose(held):
    ok(held("record split XYZ 7:1 --date 2024-02-01"))  # seq 11
    ok(held("record split XYZ 4:1 --date 2024-03-01"))  # seq 12
    # lot 7: 10 x 7 = 70 between the splits, x 28 = 280 after; basis and date stay
    assert lots(held, "A", "--as-of 2024-02-15")[0] == ("7", "XYZ", "70", "1000.00", "2024-01-03")
    assert lots(held, "A") == [("7", "XYZ", "280", "1000.00", "2024-01-03"), ("8", "XYZ", "196", "630.00", "2024-01-05")]
    assert lots(held, "B") == [("9", "XYZ", "140", "550.00", "2024-01-04")]


# Fractions are settled per position, as a broker delivers the shares (found by review: settled lot by lot, two lots
# of half a share each were both dropped or cashed, where the broker keeps the one whole share). D holds
# lot 3: 5 XYZ at 10 (50.00, 2024-01-03), lot 4: 5 at 12 (60.00, 2024-01-04), lot 5: 6 at 12 (72.00, 2024-01-05);
# a 1:10 reverse split makes them 0.5, 0.5 and 0.6: 1.6 shares.
PER_POSITION = {
    # round-down keeps 1 share: 0.6 taken from the lots holding fractions in FIFO order: lot 3 gives its 0.5 (left with
    # no share: given up for nothing, its 50.00 a realized loss), lot 4 gives 0.1 (keeps 0.4 and its basis)
    "round-down": ("16 -> 1 XYZ",
                   [("4", "XYZ", "0.4", "60.00", "2024-01-04"), ("5", "XYZ", "0.6", "72.00", "2024-01-05")],
                   "9818.00",
                   [("3", "XYZ", "0.5", "2024-01-03", "2024-03-01", "0.00", "50.00", "-50.00", "short", "fraction-dropped")]),
    # cash at 100 a new share: 0.6 x 100 = 60.00 for the same 0.6, split by shares: lot 3 round(60 x 0.5/0.6) = 50.00
    # with all its basis 50.00 (gain 0.00); lot 4 10.00 with basis round(60 x 0.1/0.5) = 12.00 (gain -2.00), keeps 48.00
    "cash": ("16 -> 1 XYZ, cash in lieu 60.00",
             [("4", "XYZ", "0.4", "48.00", "2024-01-04"), ("5", "XYZ", "0.6", "72.00", "2024-01-05")],
             "9878.00",
             [("3", "XYZ", "0.5", "2024-01-03", "2024-03-01", "50.00", "50.00", "0.00", "short", "cash-in-lieu"),
              ("4", "XYZ", "0.1", "2024-01-04", "2024-03-01", "10.00", "12.00", "-2.00", "short", "cash-in-lieu")]),
    # round-up to 2 shares: 0.4 more, to lot 3 first (up to a whole share): 0.9; no cost, no gain
    "round-up": ("16 -> 2 XYZ",
                 [("3", "XYZ", "0.9", "50.00", "2024-01-03"), ("4", "XYZ", "0.5", "60.00", "2024-01-04"),
                  ("5", "XYZ", "0.6", "72.00", "2024-01-05")],
                 "9818.00", []),
    "keep": ("16 -> 1.6 XYZ",
             [("3", "XYZ", "0.5", "50.00", "2024-01-03"), ("4", "XYZ", "0.5", "60.00", "2024-01-04"),
              ("5", "XYZ", "0.6", "72.00", "2024-01-05")],
             "9818.00", []),
}


@pytest.mark.parametrize("policy", list(PER_POSITION))
def test_a_reverse_split_settles_the_fraction_of_the_position_not_of_each_lot(folio, policy):
    line, expected_lots, expected_cash, expected_gains = PER_POSITION[policy]
    for step in ["init", "account open D --date 2024-01-02", "record deposit D 10000 --date 2024-01-02",
                 "record buy D XYZ 5 --price 10 --date 2024-01-03", "record buy D XYZ 5 --price 12 --date 2024-01-04",
                 "record buy D XYZ 6 --price 12 --date 2024-01-05"]:
        ok(folio(step))
    price = " --cash-price 100" if policy == "cash" else ""
    out = ok(folio(f"record split XYZ 1:10 --date 2024-03-01 --fraction {policy}{price}"))
    assert out.splitlines()[1] == f"  D: {line}"
    assert lots(folio, "D") == expected_lots
    assert cash(folio, "D") == expected_cash
    assert gains(folio, "D") == expected_gains


def test_two_lots_of_half_a_share_make_one_whole_share_whatever_the_policy(folio):
    for step in ["init", "account open D --date 2024-01-02", "record deposit D 10000 --date 2024-01-02",
                 "record buy D XYZ 5 --price 10 --date 2024-01-03", "record buy D XYZ 5 --price 12 --date 2024-01-04",
                 "record buy D ABC 1 --price 30 --date 2024-01-04", "record buy D ABC 1 --price 30 --date 2024-01-05",
                 "record buy D ABC 1 --price 30 --date 2024-01-08"]:
        ok(folio(step))
    ok(folio("record split XYZ 1:10 --date 2024-03-01 --fraction cash --cash-price 100"))
    assert [l for l in lots(folio, "D") if l[1] == "XYZ"] == [("3", "XYZ", "0.5", "50.00", "2024-01-03"),
                                                             ("4", "XYZ", "0.5", "60.00", "2024-01-04")]
    # 1:3 of three single shares: each lot 1/3 of a share to the 28th digit, the position exactly one share: nothing
    # is rounded away or paid (the last digit given to the first lot), the shares add up to 1
    ok(folio("record split ABC 1:3 --date 2024-03-01 --fraction round-down"))
    abc = [l for l in lots(folio, "D") if l[1] == "ABC"]
    assert [l[0] for l in abc] == ["5", "6", "7"]
    assert sum(Decimal(l[2]) for l in abc) == 1
    assert cash(folio, "D") == "9800.00" and gains(folio, "D") == []


@pytest.mark.parametrize("method, buys, split, policy, line, sale", [
    ("fifo", [1, 3, 2], "1:3", "cash --cash-price 30", "6 -> 2 X", 2),
    ("fifo", [54, 5, 5], "1:7", "cash --cash-price 30", "64 -> 9 X, cash in lieu 4.29", 9),
    ("fifo", [20, 51, 7], "1:3", "round-down", "78 -> 26 X", 26),
    ("lifo", [2, 2, 2, 1], "1:3", "cash --cash-price 30", "7 -> 2 X, cash in lieu 10.00", 2),
    ("fifo", [1, 1, 1], "1:3", "keep", "3 -> 1 X", 1),
])
def test_a_position_settled_to_whole_shares_sells_whole_and_leaves_no_dust(folio, method, buys, split, policy, line,
                                                                            sale):
    """Found by review: lots kept to the 28th digit after a 1:3 or 1:7 added up to 1.999...9 (or 2.000...0 with 29
    digits), so the whole position could not be sold ("2.000000000000000000000000000 held"), a sale left a lot of
    0.000...3 shares for good, and a rounded last digit was booked as a cash-in-lieu sale of 1E-28 of a share. Each
    lot is now kept to 12 decimals, the roundings evened out so the lots add up to the position exactly."""
    steps = ["init", f"account open A --date 2020-01-01 --lot-method {method}", "record deposit A 10000 --date 2020-01-01"]
    steps += [f"record buy A X {q} --price 10 --date 2020-01-{d:02d}" for d, q in enumerate(buys, 2)]
    for step in steps:
        ok(folio(step))
    out = ok(folio(f"record split X {split} --date 2024-01-02 --fraction {policy}"))
    assert out.splitlines()[1] == f"  A: {line}"
    x = [l for l in lots(folio, "A") if l[1] == "X"]
    assert sum(Decimal(l[2]) for l in x) == sale and all(Decimal(l[2]) == Decimal(l[2]).quantize(Decimal("1e-12"))
                                                         for l in x)
    assert all(Decimal(g[2]) >= Decimal("1e-12") for g in gains(folio, "A"))  # no sale of a rounding
    ok(folio(f"record sell A X {sale} --price 30 --date 2024-01-05"))
    assert [l for l in lots(folio, "A") if l[1] == "X"] == []
    assert all(p["symbol"] != "X" for p in json.loads(ok(folio("positions A --json"))))


def test_ref_makes_a_corporate_action_idempotent_and_a_void_undoes_it(held, tmp_path):
    assert ok(held("record split XYZ 2:1 --date 2024-02-01 --ref split-1")).startswith("Recorded seq 11: ")
    assert ok(held("record split XYZ 2:1 --date 2024-02-01 --ref split-1")) == (
        "Already recorded as seq 11 (ref split-1); nothing new written\n")
    before = head(held)
    assert refused(held("record split XYZ 3:1 --date 2024-02-01 --ref split-1")) == (
        "Error: reference 'split-1' was already recorded as seq 11 for a different event; use a new reference "
        "(to correct seq 11, void it and record the corrected event under a new reference)\n")
    assert head(held) == before
    # the same action in a CSV with the same ref is skipped
    path = write_csv(tmp_path, [dict(date="2024-02-01", action="split", symbol="XYZ", ratio="2:1", ref="split-1")])
    assert ok(held(f"import {path}")) == "Nothing recorded: all 1 rows of actions.csv were already recorded\n"
    assert lots(held, "B") == [("9", "XYZ", "10", "550.00", "2024-01-04")]
    # voided: listed as voided, and the lots are back to their old shares (as known from the void on)
    assert ok(held("void 11 --reason 'wrong ratio'")) == "Voided seq 11 (void recorded as seq 12)\n"
    assert ok(held("corporate-actions")).splitlines()[2] == (
        " 11  2024-02-01  XYZ     split 2:1 of XYZ, fractions: keep  [voided by seq 12]")
    assert [r["voided"] for r in json.loads(ok(held("corporate-actions --json")))] == [True]
    assert lots(held, "B") == BASE_LOTS["B"]
    assert lots(held, "B", "--known-at-seq 11") == [("9", "XYZ", "10", "550.00", "2024-01-04")]
    # its reference stays spent: the corrected action goes under a new one
    assert refused(held("record split XYZ 2:1 --date 2024-02-01 --ref split-1")).startswith(
        "Error: reference 'split-1' was recorded as seq 11, which seq 12 voided")
    assert ok(held("record split XYZ 3:1 --date 2024-02-01 --ref split-2")).startswith("Recorded seq 13: ")


# -- nobody held it ------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, description", [
    ("record split NOPE 2:1 --date 2024-02-01", "split 2:1 of NOPE, fractions: keep"),
    ("record dividend NOPE 0.50 --ex-date 2024-02-01 --pay-date 2024-02-10",
     "ordinary dividend 0.50 a share of NOPE, ex 2024-02-01, paid 2024-02-10"),
    ("record merger NOPE --acquirer ACQ --shares 2 --fraction keep --date 2024-02-01", "merger of NOPE: 2:1 ACQ"),
    ("record spinoff NOPE KID --shares 1 --allocation 0.1 --fraction keep --date 2024-02-01",
     "spinoff of KID from NOPE: 1:1, 0.1 of basis to KID"),
    ("record symbol-change NOPE NOPE2 --date 2024-02-01", "symbol change NOPE -> NOPE2"),
])
def test_an_action_on_a_symbol_nobody_held_is_recorded_and_says_so(held, command, description):
    assert ok(held(command)) == (
        f"Recorded seq 11: 2024-02-01 {description}\n"
        "No account held NOPE on 2024-02-01: nothing changed\n")
    assert head(held).startswith("11 ")
    assert [r["seq"] for r in json.loads(ok(held("corporate-actions NOPE --json")))] == ["11"]
    for account in ("A", "B", "C"):
        assert lots(held, account) == BASE_LOTS[account]
        assert cash(held, account) == BASE_CASH[account]
        assert gains(held, account) == []


def test_an_action_on_a_symbol_held_only_later_says_nobody_held_it_then(held):
    # C buys NEW after the split's date: the split (recorded afterwards, effective before) touches nobody
    ok(held("record buy C NEW 4 --price 10 --date 2024-03-01"))  # seq 11
    assert ok(held("record split NEW 2:1 --date 2024-02-01")) == (
        "Recorded seq 12: 2024-02-01 split 2:1 of NEW, fractions: keep\n"
        "No account held NEW on 2024-02-01: nothing changed\n")
    assert lots(held, "C")[0] == ("11", "NEW", "4", "40.00", "2024-03-01")


# -- bad input: a clear error and an unchanged ledger -----------------------------------------------
RATIO = "must be two positive numbers as new:old, such as 4:1, 1:8 or 3:2"
BAD = {
    # name: (CLI arguments, CSV row, the message)
    "split ratio zero": ("record split XYZ 0:1 --date 2024-02-01",
                         dict(action="split", symbol="XYZ", ratio="0:1"), f"split ratio '0:1' {RATIO}"),
    # a leading '-' would be read as an option by the shell parser: `--` passes it as the ratio
    "split ratio negative": ("record split XYZ --date 2024-02-01 -- -2:1",
                             dict(action="split", symbol="XYZ", ratio="-2:1"), f"split ratio '-2:1' {RATIO}"),
    "split ratio malformed": ("record split XYZ 4-1 --date 2024-02-01",
                              dict(action="split", symbol="XYZ", ratio="4-1"), f"split ratio '4-1' {RATIO}"),
    "split ratio not a number": ("record split XYZ abc --date 2024-02-01",
                                 dict(action="split", symbol="XYZ", ratio="abc"), f"split ratio 'abc' {RATIO}"),
    "split old side zero": ("record split XYZ 2:0 --date 2024-02-01",
                            dict(action="split", symbol="XYZ", ratio="2:0"), f"split ratio '2:0' {RATIO}"),
    "spinoff allocation 0": (
        "record spinoff XYZ KID --shares 1:3 --allocation 0 --cash-price 9 --date 2024-02-01",
        dict(action="spinoff", symbol="XYZ", new_symbol="KID", ratio="1:3", allocation="0", price="9"),
        "SpinoffCompleted: allocation must be greater than zero, got 0"),
    "spinoff allocation 1": (
        "record spinoff XYZ KID --shares 1:3 --allocation 1 --cash-price 9 --date 2024-02-01",
        dict(action="spinoff", symbol="XYZ", new_symbol="KID", ratio="1:3", allocation="1", price="9"),
        "SpinoffCompleted: basis allocation 1 must be strictly between 0 and 1"),
    "spinoff allocation 1.5": (
        "record spinoff XYZ KID --shares 1:3 --allocation 1.5 --cash-price 9 --date 2024-02-01",
        dict(action="spinoff", symbol="XYZ", new_symbol="KID", ratio="1:3", allocation="1.5", price="9"),
        "SpinoffCompleted: basis allocation 1.5 must be strictly between 0 and 1"),
    "spinoff allocation negative": (
        "record spinoff XYZ KID --shares 1:3 --allocation -0.1 --cash-price 9 --date 2024-02-01",
        dict(action="spinoff", symbol="XYZ", new_symbol="KID", ratio="1:3", allocation="-0.1", price="9"),
        "SpinoffCompleted: allocation must be greater than zero, got -0.1"),
    "spinoff into itself": (
        "record spinoff XYZ XYZ --shares 1:3 --allocation 0.2 --cash-price 9 --date 2024-02-01",
        dict(action="spinoff", symbol="XYZ", new_symbol="XYZ", ratio="1:3", allocation="0.2", price="9"),
        "SpinoffCompleted: XYZ cannot spin off into itself"),
    "spinoff by share count": (
        "record spinoff XYZ KID --shares 1:3 --cash-price 9 --date 2024-02-01",
        dict(action="spinoff", symbol="XYZ", new_symbol="KID", ratio="1:3", price="9"),
        "spinoff of KID from XYZ: basis cannot be allocated by share count; give the child's basis allocation "
        "fraction, or the fair market values of parent and child on the distribution date"),
    "spinoff with one fair value": (
        "record spinoff XYZ KID --shares 1:3 --parent-fmv 60 --cash-price 9 --date 2024-02-01",
        dict(action="spinoff", symbol="XYZ", new_symbol="KID", ratio="1:3", fmv="60", price="9"),
        "spinoff of KID from XYZ: basis cannot be allocated by share count; give the child's basis allocation "
        "fraction, or the fair market values of parent and child on the distribution date"),
    "merger into itself": (
        "record merger XYZ --acquirer XYZ --shares 1 --date 2024-02-01",
        dict(action="merger", symbol="XYZ", new_symbol="XYZ", ratio="1"),
        "MergerCompleted: XYZ cannot merge into itself"),
    "cash in lieu without a price": (
        "record split XYZ 1:8 --fraction cash --date 2024-02-01",
        dict(action="split", symbol="XYZ", ratio="1:8", fraction="cash"),
        "SplitApplied: fractions of a share are to be paid in cash (fraction policy `cash`, the default for mergers and "
        "spinoffs), which needs a price: give the cash-in-lieu price (--cash-price; CSV column price), or another policy "
        "(--fraction keep, round-up or round-down)"),
    "a cash-in-lieu price with fractions kept": (
        "record split XYZ 1:8 --cash-price 104.16 --date 2024-02-01",
        dict(action="split", symbol="XYZ", ratio="1:8", price="104.16"),
        "split of XYZ: a cash-in-lieu price is given, but fractions of a share are to be keep: give --fraction cash "
        "(CSV: fraction cash) to pay them in cash, or no price"),
    "merger cash in lieu without a price or fair value": (
        "record merger XLNX --acquirer AMD --shares 1.7234 --date 2024-02-01",
        dict(action="merger", symbol="XLNX", new_symbol="AMD", ratio="1.7234"),
        "MergerCompleted: fractions of a share are to be paid in cash (fraction policy `cash`, the default for mergers "
        "and spinoffs), which needs a price: give the cash-in-lieu price (--cash-price; CSV column price) or the "
        "acquirer's fair value (--acquirer-fmv; CSV column fmv), or another policy (--fraction keep, round-up or "
        "round-down)"),
    "spinoff cash in lieu without a price": (
        "record spinoff XYZ KID --shares 1:3 --allocation 0.2 --date 2024-02-01",
        dict(action="spinoff", symbol="XYZ", new_symbol="KID", ratio="1:3", allocation="0.2"),
        "SpinoffCompleted: fractions of a share are to be paid in cash (fraction policy `cash`, the default for mergers "
        "and spinoffs), which needs a price: give the cash-in-lieu price (--cash-price; CSV column price), or another "
        "policy (--fraction keep, round-up or round-down)"),
    "pay date before ex-date": (
        "record dividend XYZ 1 --ex-date 2024-02-01 --pay-date 2024-01-31",
        dict(action="dividend", symbol="XYZ", amount="1", pay_date="2024-01-31"),
        "dividend on XYZ: pay date 2024-01-31 is before the ex-date 2024-02-01"),
    "withholding 1": (
        "record dividend XYZ 1 --ex-date 2024-02-01 --pay-date 2024-02-10 --withholding 1",
        dict(action="dividend", symbol="XYZ", amount="1", pay_date="2024-02-10", withholding="1"),
        "DividendDeclared: withholding rate 1 must be below 1 (0.15 for 15%)"),
    "withholding 1.5": (
        "record dividend XYZ 1 --ex-date 2024-02-01 --pay-date 2024-02-10 --withholding 1.5",
        dict(action="dividend", symbol="XYZ", amount="1", pay_date="2024-02-10", withholding="1.5"),
        "DividendDeclared: withholding rate 1.5 must be below 1 (0.15 for 15%)"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_corporate_action_from_the_cli_is_refused_and_changes_nothing(held, name):
    args, _, message = BAD[name]
    before = head(held)
    output = refused(held(args))
    assert output == f"Error: {message}\n"
    assert head(held) == before
    for account in ("A", "B", "C"):
        assert lots(held, account) == BASE_LOTS[account]


@pytest.mark.parametrize("name", list(BAD))
def test_bad_corporate_action_in_a_csv_names_its_line_and_records_nothing(held, tmp_path, name):
    _, row, message = BAD[name]
    # a good row on line 2 is not recorded either: a file is all or nothing
    path = write_csv(tmp_path, [dict(date="2024-02-01", account="A", action="deposit", amount="5"),
                                dict(date="2024-02-01", **row)], "bad.csv")
    before = head(held)
    output = refused(held(f"import {path}"))
    assert output == f"Error: bad.csv line 3: {message}\n"
    assert head(held) == before
    assert cash(held, "A") == BASE_CASH["A"]


def test_bare_negative_ratio_on_the_command_line_is_refused_too(held):
    # without `--`, click takes -2:1 for an option; still a refusal (usage error, exit 2) and nothing recorded
    before = head(held)
    result = held("record split XYZ -2:1 --date 2024-02-01")
    assert result.exit_code == 2
    assert head(held) == before


def test_cash_merger_into_itself_is_refused(held):
    before = head(held)
    output = refused(held("record merger XYZ --acquirer XYZ --shares 1:1 --cash 1 --date 2024-02-01"))
    assert "cannot merge into itself" in output
    assert head(held) == before


def test_an_acquirer_without_the_shares_it_gives_is_refused_not_ignored(held):
    before = head(held)
    assert refused(held("record merger XYZ --acquirer ACQ --cash 5 --date 2024-02-01")) == (
        "Error: merger of XYZ: an acquirer (ACQ) needs the shares it gives (--shares N:M); a merger for cash alone "
        "names no acquirer\n")
    assert head(held) == before


def test_dividend_to_a_reinvesting_account_needs_a_reinvestment_price(held, tmp_path):
    ok(held("account reinvest B XYZ --on --date 2024-02-15"))  # seq 11
    before = head(held)
    output = refused(held("record dividend XYZ 0.25 --ex-date 2024-03-01 --pay-date 2024-03-15"))
    assert output == ("Error: dividend on XYZ ex 2024-03-01 would be reinvested in B but gives no reinvestment price: "
                      "record it with one\n")
    assert head(held) == before
    path = write_csv(tmp_path, [dict(date="2024-03-01", action="dividend", symbol="XYZ", amount="0.25",
                                     pay_date="2024-03-15")], "div.csv")
    output = refused(held(f"import {path}"))
    assert output == ("Error: div.csv line 2: dividend on XYZ ex 2024-03-01 would be reinvested in B but gives no "
                      "reinvestment price: record it with one\n")
    assert head(held) == before
    # a reinvestment setting recorded late, before an already recorded dividend without a price, is refused too
    ok(held("record dividend OTH 0.10 --ex-date 2024-03-01 --pay-date 2024-03-15"))  # seq 12
    before = head(held)
    output = refused(held("account reinvest C OTH --on --date 2024-02-01"))
    assert "recorded seq 12" in output and "void seq 12" in output and "reinvested in C" in output
    assert head(held) == before


def test_backdated_reverse_split_that_breaks_a_recorded_sale_is_refused(held, tmp_path):
    ok(held("record sell A XYZ 15 --price 120 --date 2024-03-01"))  # seq 11: lots 7 (10) and 8 (5 of 7)
    before = head(held)
    # 1:8 effective 2024-02-01 would leave A 17/8 = 2.125 shares for the sale of 15 on 2024-03-01
    output = refused(held("record split XYZ 1:8 --date 2024-02-01"))
    assert output == (
        "Error: this would make recorded seq 11 (2024-03-01, sell 15 XYZ @ 120) impossible by reverse split 1:8 of XYZ, "
        "fractions: keep: cannot sell 15 XYZ in A on 2024-03-01: 2.125 held. Record it differently, or void seq 11 first\n")
    assert head(held) == before
    path = write_csv(tmp_path, [dict(date="2024-02-01", action="split", symbol="XYZ", ratio="1:8")], "rs.csv")
    output = refused(held(f"import {path}"))
    assert output == (
        "Error: this would make recorded seq 11 (2024-03-01, sell 15 XYZ @ 120) impossible by rs.csv line 2: "
        "cannot sell 15 XYZ in A on 2024-03-01: 2.125 held. Record it differently, or void seq 11 first\n")
    assert head(held) == before
    # after the sale it is fine: A keeps 2 of lot 8 -> 0.25; B 5 -> 0.625
    assert ok(held("record split XYZ 1:8 --date 2024-03-02")) == (
        "Recorded seq 12: 2024-03-02 reverse split 1:8 of XYZ, fractions: keep\n"
        "  A: 2 -> 0.25 XYZ\n"
        "  B: 5 -> 0.625 XYZ\n")


@pytest.mark.parametrize("command, description", [
    ("record symbol-change XYZ XYZN --date 2024-02-01", "symbol change XYZ -> XYZN"),
    ("record merger XYZ --cash 3 --date 2024-02-01", "merger of XYZ: 3 cash a share"),
])
def test_backdated_action_that_takes_away_the_shares_a_recorded_sale_sold_is_refused(held, command, description):
    ok(held("record sell B XYZ 5 --price 120 --date 2024-03-01"))  # seq 11
    before = head(held)
    assert refused(held(command)) == (
        f"Error: this would make recorded seq 11 (2024-03-01, sell 5 XYZ @ 120) impossible by {description}: "
        "cannot sell 5 XYZ in B on 2024-03-01: none held. Record it differently, or void seq 11 first\n")
    assert head(held) == before


def test_dividend_entitlement_is_the_holding_at_the_start_of_the_ex_date(held):
    ok(held("record buy A XYZ 3 --price 100 --date 2024-03-05"))  # seq 11: bought on the ex-date: not entitled
    ok(held("record sell B XYZ 5 --price 100 --date 2024-03-05"))  # seq 12: sold on the ex-date: still entitled
    # A: 17 x 1.00 = 17.00 (not 20); B: 5 x 1.00 = 5.00 (though it holds none by the end of the day)
    assert ok(held("record dividend XYZ 1.00 --ex-date 2024-03-05 --pay-date 2024-03-20")) == (
        "Recorded seq 13: 2024-03-05 ordinary dividend 1.00 a share of XYZ, ex 2024-03-05, paid 2024-03-20\n"
        "  A: 17 XYZ entitled: 17.00 gross, 0.00 withheld, paid 2024-03-20\n"
        "  B: 5 XYZ entitled: 5.00 gross, 0.00 withheld, paid 2024-03-20\n")
    # cash arrives on the pay date: A 8370 - 300 = 8070.00, then 8087.00; B 9450 + 500 = 9950.00, then 9955.00
    assert (cash(held, "A", "--as-of 2024-03-19"), cash(held, "A")) == ("8070.00", "8087.00")
    assert (cash(held, "B", "--as-of 2024-03-19"), cash(held, "B")) == ("9950.00", "9955.00")


# -- as-of and known-at views ------------------------------------------------------------------------
def test_as_of_before_a_split_shows_old_shares_after_shows_new(held):
    ok(held("record split XYZ 4:1 --date 2024-02-01"))  # seq 11
    assert lots(held, "A", "--as-of 2024-01-31") == BASE_LOTS["A"]
    assert lots(held, "A", "--as-of 2024-02-01") == [("7", "XYZ", "40", "1000.00", "2024-01-03"),
                                                     ("8", "XYZ", "28", "630.00", "2024-01-05")]
    assert lots(held, "B", "--as-of 2024-01-31") == BASE_LOTS["B"]
    assert lots(held, "B", "--as-of 2024-02-01") == [("9", "XYZ", "20", "550.00", "2024-01-04")]
    positions = json.loads(ok(held("positions A --as-of 2024-01-31 --json")))
    assert [(p["symbol"], p["quantity"], p["cost_basis"]) for p in positions] == [("XYZ", "17", "1630.00")]
    positions = json.loads(ok(held("positions A --json")))
    assert [(p["symbol"], p["quantity"], p["cost_basis"]) for p in positions] == [("XYZ", "68", "1630.00")]


def test_a_close_from_before_a_split_values_the_new_shares_at_the_adjusted_price(held, tmp_path):
    """A holds 17 XYZ (basis 1630.00). A close of 120 on 2024-01-31, then a 2:1 split on 2024-02-01: 34 shares at
    60 (not at 120: the holding's worth does not double with the split) until a later close; a 1:4 reverse split
    on 2024-03-01 makes the old close worth 4 times more again (34 / 4 = 8.5 shares at 240); a voided split
    adjusts nothing; a close on the split's own date is in new shares."""
    f = tmp_path / "p.csv"
    f.write_text("date,symbol,close\n2024-01-31,XYZ,120\n")
    ok(held(f"prices import {f}"))

    def valued(args: str) -> tuple:
        (p,) = json.loads(ok(held(f"positions A --json {args}")))
        return p["quantity"], p["price"], p["price_date"], p["market_value"]

    assert valued("--as-of 2024-01-31") == ("17", "120.00", "2024-01-31", "2040.00")
    ok(held("record split XYZ 2:1 --date 2024-02-01"))  # seq 11
    assert valued("--as-of 2024-02-01") == ("34", "60.00", "2024-01-31", "2040.00")
    (lot7,) = [l for l in json.loads(ok(held("lots A --json --as-of 2024-02-01"))) if l["lot_id"] == "7"]
    assert (lot7["quantity"], lot7["price"], lot7["market_value"], lot7["unrealized_gain"]) == \
        ("20", "60.00", "1200.00", "200.00")
    ok(held("record split XYZ 1:4 --date 2024-03-01"))  # seq 12: 34 -> 8.5
    assert valued("--as-of 2024-03-01") == ("8.5", "240.00", "2024-01-31", "2040.00")
    ok(held("void 11 --reason mistaken"))  # seq 13: 17 -> 4.25 at 480
    assert valued("--as-of 2024-03-01") == ("4.25", "480.00", "2024-01-31", "2040.00")
    f.write_text("date,symbol,close\n2024-03-01,XYZ,500\n")
    ok(held(f"prices import {f}"))  # on the split's date: already in the new shares
    assert valued("--as-of 2024-03-01") == ("4.25", "500.00", "2024-03-01", "2125.00")


def test_a_split_recorded_late_changes_as_of_views_after_its_date_not_what_was_known_before(held):
    ok(held("record buy A XYZ 1 --price 105 --date 2024-03-01"))  # seq 11: lot 11, after the split's date
    ok(held("record split XYZ 2:1 --date 2024-02-01"))  # seq 12, recorded late
    after_split = [("7", "XYZ", "20", "1000.00", "2024-01-03"), ("8", "XYZ", "14", "630.00", "2024-01-05")]
    # as known now: old shares before 2024-02-01, new from then on; the later buy is not scaled
    assert lots(held, "A", "--as-of 2024-01-31") == BASE_LOTS["A"]
    assert lots(held, "A", "--as-of 2024-02-15") == after_split
    assert lots(held, "A") == after_split + [("11", "XYZ", "1", "105.00", "2024-03-01")]
    # as known at seq 11, before the split was recorded: the old truth, at every as-of date
    assert lots(held, "A", "--as-of 2024-02-15 --known-at-seq 11") == BASE_LOTS["A"]
    assert lots(held, "A", "--known-at-seq 11") == BASE_LOTS["A"] + [("11", "XYZ", "1", "105.00", "2024-03-01")]
    assert lots(held, "B", "--known-at-seq 11") == BASE_LOTS["B"]
    assert lots(held, "B", "--known-at-seq 12") == [("9", "XYZ", "10", "550.00", "2024-01-04")]
    # and the human heading says which point it is
    assert ok(held("lots B --as-of 2024-02-15 --known-at-seq 11")).splitlines()[0] == (
        "Lots of B as of 2024-02-15 (known at seq 11)")


def test_a_split_past_the_magnitudes_folio_takes_is_refused_before_any_holder_changes(held):
    """A 10^12:1 split of A's 17 XYZ would make 1.7 x 10^13 shares (a valuation of them would not fit Decimal's
    digits): refused, naming the holder, and no holder's lots change (found by review)."""
    before = head(held)
    assert refused(held("record split XYZ 999999999999:1 --date 2024-02-01")) == (
        "Error: split 999999999999:1 of XYZ would make A's 16999999999983 shares, more than Folio takes (below 10^12)\n")
    assert head(held) == before and lots(held, "B") == BASE_LOTS["B"]


def test_a_return_of_capital_above_basis_is_a_gain_of_the_year_it_is_paid(folio):
    for step in ["init", "account open D --date 2024-01-02", "record deposit D 100 --date 2024-01-02",
                 "record buy D RC 10 --price 1 --date 2024-01-03",  # basis 10.00
                 # 1.50 a share: 15.00 against 10.00: basis 0, 5.00 realized when paid, in 2025
                 "record dividend RC 1.50 --kind return-of-capital --ex-date 2024-12-27 --pay-date 2025-01-10"]:
        ok(folio(step))
    assert json.loads(ok(folio("gains D --year 2024 --json"))) == []
    (gain,) = json.loads(ok(folio("gains D --year 2025 --json")))
    assert (gain["sold"], gain["proceeds"], gain["cost_basis"], gain["gain"], gain["term"]) == \
        ("2025-01-10", "5.00", "0.00", "5.00", "long")  # held 2024-01-03 .. 2025-01-10: more than a year
    assert json.loads(ok(folio("lots D --json")))[0]["cost_basis"] == "0.00"


def test_a_second_action_of_a_security_on_one_date_says_it_applies_after_the_first(folio):
    for step in ["init", "account open D --date 2024-01-02", "record deposit D 100 --date 2024-01-02",
                 "record buy D XY 10 --price 1 --date 2024-01-03"]:
        ok(folio(step))
    first = ok(folio("record dividend XY 0.10 --ex-date 2024-03-01 --pay-date 2024-03-05"))
    assert "Applied after" not in first
    assert ok(folio("record split XY 2:1 --date 2024-03-01")) == (
        "Recorded seq 5: 2024-03-01 split 2:1 of XY, fractions: keep\n"
        "Applied after seq 4 (ordinary dividend 0.1 a share of XY, ex 2024-03-01, paid 2024-03-05), recorded earlier "
        "for the same date: actions of a date apply in the order recorded (to apply this one first, void and record "
        "them again after it)\n"
        "  D: 10 -> 20 XY\n")
    assert json.loads(ok(folio("cash D --as-of 2024-03-05 --json")))[0]["balance"] == "91.00"  # 10 shares entitled


def test_a_parents_close_from_before_its_spinoff_values_only_what_it_kept(folio, tmp_path):
    """P 100 @50 (5000); spinoff of C, 1 for 2, 20% of the value (and basis) to C, on 2024-03-04, when C closes at 20
    and P's latest close is from 2024-03-01. That close held C's part too: valued as recorded, the account was worth
    6000 the day its value did not change (found by review). Cut to P's 80%: 40, 4000 + 50 C x 20 = 5000."""
    prices = tmp_path / "p.csv"
    prices.write_text("date,symbol,close\n2024-03-01,P,50\n2024-03-04,C,20\n")
    for step in ["init", "account open D --date 2024-01-02", "record deposit D 5000 --date 2024-01-02",
                 "record buy D P 100 --price 50 --date 2024-01-03", f"prices import {prices}",
                 "record spinoff P C --shares 1:2 --allocation 0.2 --fraction round-down --date 2024-03-04"]:
        ok(folio(step))
    rows = {r["symbol"]: r for r in json.loads(ok(folio("positions D --as-of 2024-03-04 --json")))}
    assert (rows["P"]["price"], rows["P"]["market_value"]) == ("40.00", "4000.00")
    assert (rows["C"]["price"], rows["C"]["market_value"]) == ("20.00", "1000.00")
    rows = {r["symbol"]: r for r in json.loads(ok(folio("positions D --as-of 2024-03-01 --json")))}
    assert rows["P"]["market_value"] == "5000.00"  # before the spinoff, the close as recorded


def test_form_8949_leaves_out_merger_cash_that_recognizes_nothing(folio):
    """A stock-and-cash merger at a loss recognizes no gain and no loss: its cash row (no shares, gain 0.00) is in the
    gain history, not on Form 8949 (found by review)."""
    for step in ["init", "account open D --date 2024-01-02", "record deposit D 1000 --date 2024-01-02",
                 "record buy D TGT 10 --price 100 --date 2024-01-03",
                 "record merger TGT --acquirer ACQ --shares 1:1 --cash 10 --acquirer-fmv 50 --date 2024-06-03"]:
        ok(folio(step))
    assert [g["reason"] for g in json.loads(ok(folio("gains D --json")))] == ["merger-cash"]
    form = ok(folio("gains D --format csv"))
    assert "TGT" not in form and form.count("Totals,,,0.00,0.00,,0.00,0.00") == 2
