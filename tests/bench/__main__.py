"""`python -m tests.bench [--quick] [--sizes 10000,100000]`: build seeded ledgers and print Folio's figures
beside raw-SQLite baselines measured in the same run. Tables go to stdout; progress to stderr (a TTY only)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from projections.replay import build_snapshots
from tests import bench as b

ROOT = Path(__file__).resolve().parents[2]
FULL, QUICK = (10_000, 100_000, 1_000_000), (10_000, 100_000)
REPS = 20
BUDGET_S = 60  # as-of queries of one kind stop after this many seconds (3 queries at least)
TRACED_UP_TO = 100_000  # tracemalloc slows a replay several times: traced peaks on ledgers this size or smaller
REPLAYS = 5  # full replays (and their baseline) timed this many times on ledgers up to TRACED_UP_TO; the best counts


def progress(message: str) -> None:
    if sys.stderr.isatty():
        print(f"  ... {message}", file=sys.stderr, flush=True)


def machine() -> str:
    cpu, rev = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except (OSError, StopIteration):
        pass
    return (f"machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
            f"{platform.system()} {platform.release()}; folio {rev or 'unknown revision'}; "
            f"load average {os.getloadavg()[0]:.1f} at the start")


def rate(events: int, seconds: float) -> str:
    return f"{events / seconds:,.0f} ev/s"


def ratio(folio: float, baseline: float) -> str:
    """Folio's speed as a fraction of the baseline's: `1/3.2` means 3.2 times slower."""
    r = folio / baseline
    return f"1/{1 / r:.1f}" if r < 1 else f"{r:.2f}"


def ms(stats: tuple[float, float, int]) -> str:
    median, p95, count = stats
    return f"median {median:.1f} ms, p95 {p95:.1f}" + (f" ({count} of {REPS})" if count < REPS else "")


def guard(rows: list[tuple[str, ...]], labels: list[str], measure) -> None:
    """Add a row per label from measure()'s cells; if it raises, FAILED rows, so the rest of the table still prints."""
    try:
        cells = measure()
    except Exception as e:  # noqa: BLE001  (a broken path is a result to report, not a reason to stop)
        why = f"FAILED: {type(e).__name__}: {e}".splitlines()[0][:100]
        cells = [(why, "", "", "")] * len(labels)
    rows.extend((label, *c) for label, c in zip(labels, cells))


def run_size(n: int, tmp: str) -> tuple[str, list[tuple[str, ...]]]:
    gen = b.LedgerGenerator(n)
    path = os.path.join(tmp, f"ledger-{n}.db")
    rows: list[tuple[str, ...]] = []
    bad: list[str] = []

    progress(f"{n:,}: generating and appending through EventStore.append")
    wall, (store, t_append) = b.timed(b.build, path, gen, n)
    progress(f"{n:,}: baseline executemany")
    plain, t_plain = b.plain_insert(store.conn, os.path.join(tmp, f"plain-{n}.db"))
    rows.append((f"bulk import: EventStore.append, {b.BATCH:,}/txn", rate(n, t_append),
                 rate(n, t_plain) + " executemany", ratio(t_plain, t_append), ">= 1/3"))
    big = store.conn.execute("SELECT COUNT(*) FROM events WHERE stream = ?", (f"account:{b.BIG}",)).fetchone()[0]
    title = (f"N = {n:,} events: {len(gen.accounts):,} accounts ({big:,} events on {b.BIG}), {gen.first_day} .. {gen.day}; "
             f"generating the events took another {wall - t_append:.1f} s")

    best = f" (best of {REPLAYS})" if n <= TRACED_UP_TO else ""

    def replays():
        progress(f"{n:,}: full replays")
        reps = REPLAYS if n <= TRACED_UP_TO else 1  # this machine's timings swing by a third: the best of a few
        t_base = min(b.timed(b.plain_replay, store.conn)[0] for _ in range(reps))
        t_replay, books = b.timed(b.replay, store, False)
        bad.extend(gen.disagreements(books))
        del books
        t_replay = min([t_replay] + [b.timed(b.replay, store, False)[0] for _ in range(reps - 1)])
        t_gains = min(b.timed(b.replay, store, True)[0] for _ in range(reps))
        # the aim is the replay into positions, lots and cash; the fold that also books every gain is shown beside it
        return [(rate(n, t), rate(n, t_base) + " SELECT+json.loads", ratio(t_base, t), aim)
                for t, aim in ((t_replay, ">= 1/4"), (t_gains, ""))]
    guard(rows, [f"full replay, keep_gains=False{best}", f"full replay, keep_gains=True{best}"], replays)

    def memory():
        progress(f"{n:,}: peak memory of a replay, in a fresh process")
        probe = subprocess.run([sys.executable, "-m", "tests.bench", "--memory-probe", path]
                               + (["--traced"] if n <= TRACED_UP_TO else []), cwd=ROOT, capture_output=True, text=True)
        if probe.returncode:
            raise RuntimeError(probe.stderr.strip().splitlines()[-1])
        mem = json.loads(probe.stdout)
        traced = f"{mem['traced_mb']:.1f} MB traced, " if "traced_mb" in mem else ""
        lots = max(1, mem["open_lots"])
        per_lot = f"{mem['rss_mb'] * 1024 / lots:.1f} KB RSS" + (
            f", {mem['traced_mb'] * 1024 / lots:.2f} KB traced" if traced else "") + " per open lot"
        return [(f"{traced}{mem['rss_mb']:.1f} MB resident", f"ledger file {mem['file_mb']:.0f} MB", "", ""),
                (f"{mem['open_lots']:,}", per_lot, "", "")]
    guard(rows, ["peak memory of a full replay", "open lots after the replay"], memory)

    progress(f"{n:,}: as-of queries on {b.BIG}, without and with snapshots")
    days = b.query_days(gen, REPS)
    raw = b.latencies(b.plain_account_read, [(plain, b.BIG, d) for d in days])

    def as_of(snapshots: bool):
        got = b.as_of_latencies(store, b.BIG, days, snapshots, BUDGET_S)
        return [(ms(got), ms(raw) + " account rows", ratio(raw[0], got[0]), "< 50 ms at 10^6" if snapshots else "")]
    guard(rows, [f"as-of positions of {b.BIG}, no snapshots"], lambda: as_of(False))

    def snapshots():
        seconds, made = b.timed(build_snapshots, store, [b.BIG])
        h_seconds, h_made = b.timed(build_snapshots, store, [b.BIG], keep_gains=False)
        return [(f"{seconds:.2f} s, {made} snapshots", "", "", ""),
                (f"{h_seconds:.2f} s, {h_made} snapshots", "", "", "")]
    guard(rows, [f"build_snapshots(store, [{b.BIG}]) (with gains)",
                 f"build_snapshots(store, [{b.BIG}], keep_gains=False)"], snapshots)
    guard(rows, [f"as-of positions of {b.BIG}, snapshots"], lambda: as_of(True))

    k = min(10_000, n)

    def checked():
        progress(f"{n:,}: holdings snapshots of the whole ledger, then a checked import of {k:,} events")
        t_snap, made = b.timed(build_snapshots, store, None, keep_gains=False)
        t = b.checked_import(store, gen, k)
        return [(f"{t_snap:.2f} s, {made} snapshots", "", "", ""),
                (rate(k, t), rate(n, t_plain) + " executemany", ratio(t_plain / n, t / k), "")]
    guard(rows, ["build_snapshots(store, keep_gains=False) (all accounts)",
                 f"checked import: service.record of {k:,} (1 call)"], checked)

    progress(f"{n:,}: durable single appends, dated the next day")
    single = b.median_p95(b.plain_single_inserts(plain, REPS + 1)[1:])
    base = ms(single) + " INSERT+COMMIT"

    def deposits(account: str, reps: int):
        got = b.median_p95(b.single_deposits(store, gen, account, reps)[-REPS:])
        return [(ms(got) if reps > 1 else f"{got[0]:.1f} ms (once)", base, ratio(single[0], got[0]), "")]
    guard(rows, ["record 1 deposit, account without snapshot"], lambda: deposits(gen.small[len(gen.small) // 2].name, 1))
    guard(rows, [f"record 1 deposit on {b.BIG} (FULL, WAL)"], lambda: deposits(b.BIG, REPS + 1))
    store.close()
    plain.close()
    if bad:
        title += (f"\nWARNING: the replay disagrees with the generated history (cash or shares) in {len(bad)} of "
                  f"{len(gen.accounts)} accounts, e.g. {', '.join(bad[:3])}")
    return title, rows


def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    header = ("measure", "folio", "raw SQLite baseline", "folio/base", "aim")
    measured = [r for r in (header, *rows) if not r[1].startswith("FAILED")]
    widths = [max(len(r[i]) for r in measured) for i in range(len(header))]
    line = lambda r: "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip()
    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(f"{r[0].ljust(widths[0])}  {r[1]}" if r[1].startswith("FAILED") else line(r))
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="stop at 10^5 events")
    parser.add_argument("--sizes", help="comma-separated ledger sizes, e.g. 10000,100000")
    parser.add_argument("--memory-probe", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(b.memory_probe(args.memory_probe, args.traced)))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else (QUICK if args.quick else FULL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temporary ledgers are removed on kill
    started = time.perf_counter()
    print(machine())
    print(f"seed {b.SEED}; {REPS} as-of queries at seeded random dates; folio/base is folio's speed over the baseline's (1/3 = 3x slower)")
    with tempfile.TemporaryDirectory(prefix="folio-bench-") as tmp:
        for n in sizes:
            print_table(*run_size(n, tmp))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
