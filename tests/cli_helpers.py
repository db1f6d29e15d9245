"""Helpers for the CLI tests: what a command printed, and what the ledger holds."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from textwrap import dedent


def out(result) -> str:
    """stdout of a command that must have succeeded."""
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return result.stdout


def js(result):
    """The JSON a command that must have succeeded printed."""
    return json.loads(out(result))


def text(s: str) -> str:
    """An expected block of output, written indented in the test."""
    return dedent(s).lstrip("\n")


def count(db_path: str) -> int:
    """How many events the ledger holds (a refused command leaves it unchanged)."""
    with contextlib.closing(sqlite3.connect(db_path)) as c:
        return c.execute("SELECT COUNT(*) FROM events").fetchone()[0]
