"""Long work shows its progress on a terminal (stderr, one line rewritten in place, erased at the end) and
stays quiet under --json or when stderr is not a terminal; the books are the same with it or without."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest

from commands.progress import Progress, progress
from domain import events as ev
from ledger.store import NewEvent
from projections import replay
from projections.replay import counted, load_books, resolve_point
from tests import strategies as S
from tests.cli_helpers import out


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_line_is_drawn_in_place_at_most_every_fifth_of_a_second_and_erased_at_the_end():
    screen, clock = Terminal(), Clock()
    shown = Progress("importing a.csv", show=True, stream=screen, clock=clock)
    shown("reading rows", 0, 4000)
    clock.now += 0.1
    shown("reading rows", 2000, 4000)  # too soon: not drawn
    clock.now += 0.15
    shown("reading rows", 3000, 4000)
    clock.now += 0.01
    shown("reading rows", 4000, 4000)  # the last of a phase is always drawn
    clock.now += 12
    shown("writing events", 12345)  # no total known: the count alone
    shown.close()
    last = "importing a.csv: reading rows 4,000 of 4,000 (100%), 0.3 s"
    final = "importing a.csv: writing events 12,345, 12 s"
    assert screen.getvalue().split("\r") == [
        "",
        "importing a.csv: reading rows 0 of 4,000 (0%), 0.0 s",
        "importing a.csv: reading rows 3,000 of 4,000 (75%), 0.2 s",
        last,
        final + " " * (len(last) - len(final)),  # blanks over what is left of the longer line before
        " " * len(final),  # erased (past it, blanks already), and the cursor back at the start of the line
        "",
    ]


def test_hidden_progress_writes_nothing():
    screen = Terminal()
    with Progress("x", show=False, stream=screen) as shown:
        shown("reading rows", 1, 2)
    assert screen.getvalue() == ""


@pytest.mark.parametrize("tty, as_json, env, shown", [
    (True, False, None, True), (False, False, None, False), (True, True, None, False),
    (False, False, "1", True), (True, True, "1", False), (True, False, "0", False)])
def test_progress_is_shown_on_a_terminal_never_under_json_and_as_folio_progress_says(monkeypatch, tty, as_json, env, shown):
    if env is None:
        monkeypatch.delenv("FOLIO_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("FOLIO_PROGRESS", env)
    stream = Terminal() if tty else io.StringIO()
    assert progress("folio import", as_json=as_json, stream=stream).show is shown


def test_counted_reports_every_so_many_and_at_the_end_and_changes_nothing():
    heard = []
    items = list(counted(iter(range(7)), lambda *a: heard.append(a), "folding events", 10, every=3))
    assert items == list(range(7))
    assert heard == [("folding events", 3, 10), ("folding events", 6, 10), ("folding events", 7, 7)]
    assert list(counted(range(3), None, "x")) == [0, 1, 2]


def _ledger(store, owners: int, days: int) -> None:
    day = dt.date(2024, 1, 2)
    new = []
    for i in range(owners):
        a = f"A{i}"
        new.append(NewEvent(f"account:{a}", ev.AccountOpened(account=a, owner=f"o{i}", tax_status="taxable",
                                                           currency="USD", lot_method="fifo"), day, {}))
        new += [NewEvent(f"account:{a}", ev.CashDeposited(account=a, amount=Decimal("10.00")),
                         day + dt.timedelta(days=d), {}) for d in range(days)]
    store.append(new)


@pytest.mark.parametrize("split", [False, True])
def test_a_replay_of_the_whole_ledger_reports_the_events_it_reads(monkeypatch, split):
    monkeypatch.setattr(replay, "PARALLEL_FROM", 1 if split else 10**12)
    monkeypatch.setattr(replay, "_merge", lambda *args, real=replay._merge: merged.append(1) or real(*args))
    merged = []
    with S.temp_store() as store:
        _ledger(store, owners=5, days=1500)  # 7,505 events; split, two owners' 3,002 are this process's
        heard = []
        point = resolve_point(store)
        books = load_books(store, point, use_snapshots=False, progress=lambda *a: heard.append(a))
        assert bool(merged) is split
        assert heard[-1] == ("replaying events", 7505, 7505)
        # one process reads every row; two read theirs each, and this one tells of its own as it goes
        assert [h[1] for h in heard[:-1]] == ([2000] if split else [2000, 4000, 6000])
        assert {h[2] for h in heard[:-1]} == {7505}
        plain = load_books(store, point, use_snapshots=False)
        assert S.books_state(books) == S.books_state(plain)


def _csv(rows: int, ref: str = "r") -> str:
    lines = ["date,account,action,symbol,quantity,price,amount,fees,lots,ref"]
    for i in range(rows):
        lines.append(f"{dt.date(2024, 1, 2) + dt.timedelta(days=i // 10)},A,deposit,,,,5.00,,,{ref}{i}")
    return "\n".join(lines) + "\n"


def _lines(stderr: str) -> list[str]:
    return [part.rstrip() for part in stderr.split("\r") if part.strip()]


def test_an_import_shows_reading_checking_and_writing_then_erases_its_line(folio, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLIO_PROGRESS", "1")
    out(folio("init"))
    out(folio("account open A --date 2024-01-01"))
    path = tmp_path / "big.csv"
    path.write_text(_csv(4500))
    result = folio(f"import {path}")
    assert out(result) == "Recorded 4500 events from big.csv\n"
    lines = _lines(result.stderr)
    phases = [re.match(r"importing big\.csv: (\w+ \w+) ", line).group(1) for line in lines]
    assert phases[0] == "reading rows" and phases[-1] == "writing events"
    assert "checking events" in phases
    assert lines[-1].startswith("importing big.csv: writing events 4,500 of 4,500 (100%), ")
    assert result.stderr.endswith("\r" + " " * len(lines[-1]) + "\r")  # erased at the end


def test_progress_is_quiet_under_json_and_when_stderr_is_not_a_terminal(folio, tmp_path, monkeypatch):
    out(folio("init"))
    out(folio("account open A --date 2024-01-01"))
    path = tmp_path / "big.csv"
    path.write_text(_csv(3000))
    monkeypatch.delenv("FOLIO_PROGRESS", raising=False)
    result = folio(f"import {path}")  # the test runner's stderr is not a terminal
    assert out(result) == "Recorded 3000 events from big.csv\n" and result.stderr == ""
    monkeypatch.setenv("FOLIO_PROGRESS", "1")
    path.write_text(_csv(3000, ref="s"))
    result = folio(f"import {path} --json")
    assert result.stderr == "" and '"recorded": "3000"' in out(result)


def test_an_export_import_and_a_snapshot_rebuild_show_their_progress(folio, tmp_path, monkeypatch):
    out(folio("init"))
    out(folio("account open A --date 2024-01-01"))
    out(folio("account open B --date 2024-01-01"))
    path = tmp_path / "big.csv"
    path.write_text(_csv(2500))
    out(folio(f"import {path}"))
    export = tmp_path / "log.jsonl"
    out(folio(f"export -o {export}"))
    out(folio(f"--db {tmp_path / 'copy.db'} init"))
    monkeypatch.setenv("FOLIO_PROGRESS", "1")
    result = folio(f"--db {tmp_path / 'copy.db'} import {export}")
    assert out(result) == "Recorded 2502 events from log.jsonl\n"
    lines = _lines(result.stderr)
    assert lines[0].startswith("importing log.jsonl: reading lines 2,000 of 2,502 (79%), ")
    assert any(line.startswith("importing log.jsonl: checking and writing events 2,502 of 2,502 (100%)") for line in lines)
    assert lines[-1].startswith("importing log.jsonl: folding events for snapshots 2,502 of 2,502 (100%)")
    result = folio("snapshot")
    assert out(result).startswith("Built ")
    lines = _lines(result.stderr)
    assert lines[0].startswith("folio snapshot: folding events (whole ledger) 2,000 of 2,502 (79%), ")
    assert lines[-1].startswith("folio snapshot: accounts 2 of 2 (100%), ")


def test_an_export_and_an_audit_show_their_progress_and_write_the_same(folio, tmp_path, monkeypatch):
    out(folio("init"))
    out(folio("account open A --date 2024-01-01"))
    path = tmp_path / "big.csv"
    path.write_text(_csv(2500))
    out(folio(f"import {path}"))
    plain = folio("export")
    monkeypatch.setenv("FOLIO_PROGRESS", "1")
    shown = folio("export")  # stdout is not a terminal here: progress on stderr
    assert out(shown) == out(plain) and plain.stderr == ""
    assert _lines(shown.stderr)[-1].startswith("folio export: exporting events 2,501 of 2,501 (100%), ")
    result = folio(f"export -o {tmp_path / 'log.jsonl'}")
    assert (tmp_path / "log.jsonl").read_text() == out(plain) and out(result) == ""
    result = folio("audit verify")
    assert out(result).startswith("OK: 2501 events verified, head seq 2501 hash ")
    assert [re.sub(r", [0-9.]+ s$", "", line) for line in _lines(result.stderr)] == [
        "folio audit verify: verifying events 0 of 2,501 (0%)", "folio audit verify: verifying events 2,501 of 2,501 (100%)"]
