"""The benchmark script runs end to end on a small ledger: every row measured, none failed, the fold agreeing
with the generator's own account of cash and shares. (Its figures are read by people, not asserted here.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ROWS = ["bulk import", "full replay, keep_gains=False (best of 5)", "full replay, keep_gains=True (best of 5)", "peak memory of a full replay",
        "open lots after the replay", "as-of positions of BIG, no snapshots", "build_snapshots(store, [BIG]) (with gains)",
        "build_snapshots(store, [BIG], keep_gains=False)", "as-of positions of BIG, snapshots",
        "build_snapshots(store, keep_gains=False) (all accounts)", "checked import", "record 1 deposit, account without",
        "record 1 deposit on BIG"]


def test_the_benchmark_prints_every_row_of_its_table():
    run = subprocess.run([sys.executable, "-m", "tests.bench", "--sizes", "3000"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # progress goes to a terminal only
    lines = run.stdout.splitlines()
    assert lines[0].startswith("machine: ") and "N = 3,000 events" in run.stdout
    for row in ROWS:
        found = [line for line in lines if line.startswith(row)]
        assert len(found) == 1, f"{row!r}: {found}"
        assert "FAILED" not in found[0], found[0]
    assert "WARNING" not in run.stdout
