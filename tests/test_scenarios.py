"""Every golden scenario in fixtures/scenarios/ replays to its hand-checked lots, cash and gains."""

from __future__ import annotations

import datetime as dt

import pytest

from commands.service import Refused
from projections.replay import Point
from tests import scenario as sc

FILES = sorted(sc.SCENARIOS.glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_replays_to_its_hand_checked_books(path, store):
    spec = sc.load(path)
    sc.record_rows(store, spec.get("before", []))
    seq_before = store.head()[0]
    head_before = store.head()
    if "refused" in spec:
        with pytest.raises(Refused) as refused:
            sc.record_rows(store, spec.get("apply", []))
        for words in spec["refused"]:
            assert words in str(refused.value)
        assert store.head() == head_before, "a refused command must leave the ledger unchanged"
    else:
        sc.record_rows(store, spec.get("apply", []))
    for expect in spec["expect"]:
        as_of = expect.get("as_of")
        known = seq_before if expect.get("known") == "before" else store.head()[0]
        point = Point(as_of=dt.date.fromisoformat(as_of) if as_of else None, known_seq=known)
        actual = sc.snapshot_of(store, point, expect["account"])
        keys = [k for k in ("lots", "cash", "gains", "income") if k in expect]
        assert sc.comparable(actual, keys) == sc.comparable(expect, keys), f"{path.name}: {expect.get('label', '')}"
