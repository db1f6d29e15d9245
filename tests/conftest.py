"""Shared fixtures: a ledger in a temporary folder with a deterministic clock, and a CLI runner."""

from __future__ import annotations

import datetime as dt
import itertools
import shlex

import pytest
from click.testing import CliRunner

from ledger.store import EventStore


class TickingClock:
    """A clock that advances one second per call, from a fixed start: recorded_at is reproducible."""

    def __init__(self, start: str = "2025-01-01T00:00:00"):
        self.now = dt.datetime.fromisoformat(start)
        self.counter = itertools.count()

    def __call__(self) -> str:
        t = self.now + dt.timedelta(seconds=next(self.counter))
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def store(tmp_path):
    s = EventStore.create(str(tmp_path / "ledger.db"), clock=TickingClock())
    yield s
    s.close()


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "cli.db")


@pytest.fixture
def folio(db_path):
    """Run the CLI against a fresh ledger: folio("record deposit A 100 --date 2024-01-02") -> Result."""
    from commands.cli import cli

    runner = CliRunner()

    def run(args: str, *, actor: str = "tester", input: str | None = None):
        return runner.invoke(cli, ["--db", db_path, "--actor", actor, *shlex.split(args)], input=input)

    return run
