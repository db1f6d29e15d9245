"""Progress of long work (imports, replays, snapshot rebuilds) on a terminal.

One line on stderr, rewritten in place at most a few times a second and erased when the work is done,
so the result the command prints is all that stays. Nothing at all when stderr is not a terminal or
the command writes JSON: pipes, scripts and logs see only the result. `FOLIO_PROGRESS=1` shows it
anyway (stderr sent to a log file), `FOLIO_PROGRESS=0` never.

The layers below report through a plain callable, `progress(what, done, total)` (total None when not
known), and never import this module.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, TextIO

class Progress:
    """A `projections.replay.Report` that draws one line: `importing trades.csv: checking 12,000 of 40,000 events (30%), 3 s`."""

    def __init__(self, title: str, *, show: bool, stream: TextIO | None = None, every: float = 0.2,
                 clock: Callable[[], float] = time.monotonic):
        self.title, self.show, self.every, self.clock = title, show, every, clock
        self.stream = stream if stream is not None else sys.stderr
        self.started = clock()
        self.last: float | None = None
        self.what = ""
        self.drawn = 0  # width of the line on screen, to erase

    def __call__(self, what: str, done: int, total: int | None = None) -> None:
        if not self.show:
            return
        now = self.clock()
        if (self.last is not None and now - self.last < self.every and what == self.what
                and (total is None or done < total)):
            return  # drawn a moment ago: a new phase, and the end of one, are always drawn
        self.last, self.what = now, what
        count = f"{done:,}" if total is None else f"{done:,} of {total:,} ({100 * done // max(total, 1)}%)"
        elapsed = now - self.started
        self._draw(f"{self.title}: {what} {count}, {elapsed:.1f} s" if elapsed < 10 else
                   f"{self.title}: {what} {count}, {elapsed:.0f} s")

    def _draw(self, line: str) -> None:
        self.stream.write("\r" + line + " " * max(0, self.drawn - len(line)))
        self.stream.flush()
        self.drawn = len(line)

    def close(self) -> None:
        """Erase the line (the command's own output follows on a clean line)."""
        if self.show and self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(title: str, *, as_json: bool = False, stream: TextIO | None = None) -> Progress:
    """A progress line for a command: shown on a terminal (stderr), never under `--json`; FOLIO_PROGRESS overrides."""
    stream = stream if stream is not None else sys.stderr
    forced = os.environ.get("FOLIO_PROGRESS", "").strip()
    if as_json or forced == "0":
        show = False
    elif forced == "1":
        show = True
    else:
        isatty = getattr(stream, "isatty", None)
        show = bool(isatty and isatty())
    return Progress(title, show=show, stream=stream)

