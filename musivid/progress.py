"""Progress of long loops, the same way everywhere: a tqdm bar with the time remaining on an
interactive terminal; where stderr is not a terminal (logs, CI, pipes), no stream of carriage-return
updates but, through `logging`, a line with the time remaining every `REPORT_EVERY_S` seconds of a
long loop, and one summary line when it ends."""
from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

log = logging.getLogger("musivid.progress")

ProgressFn = Callable[[str, int, int], None]  # on_progress(stage, done, total): how work advances
REPORT_EVERY_S = 30.0  # not a terminal: a loop still running after this long says how long it has left


def format_eta(seconds: float) -> str:
    """`about 40 s left`, `about 3 min left`, `about 1 h 05 min left`."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    minutes = round(seconds / 60)
    return f"about {minutes} min left" if minutes < 60 else f"about {minutes // 60} h {minutes % 60:02d} min left"


class Bar:
    """`with Bar(total, "optimizing", "step", enabled=progress) as bar: ... bar.update(1)`."""

    def __init__(self, total: int | None, desc: str, unit: str, enabled: bool = True, initial: int = 0,
                 unit_scale: bool = False):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.enabled, self.unit_scale = enabled, unit_scale
        self._start = self._said = time.monotonic()
        self._initial = initial
        self._tqdm = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit_scale,
                              leave=True, dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self.enabled and self.total:
            now = time.monotonic()
            if now - self._said >= REPORT_EVERY_S and self._initial < self.n < self.total:
                self._said = now
                rate = (self.n - self._initial) / max(now - self._start, 1e-9)
                done = (f"{100 * self.n // self.total}%" if self.unit_scale
                        else f"{self.n}/{self.total} {self.unit}s")
                log.info("%s: %s, %s", self.desc, done, format_eta((self.total - self.n) / rate))

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self.enabled:
            self.enabled = False  # one line, even if closed twice
            secs = time.monotonic() - self._start
            done = self.n - self._initial
            if self.unit_scale:  # bytes and the like: 234MB in 3.1 s, 75.2MB/s
                from tqdm import tqdm

                size = tqdm.format_sizeof
                rate = f", {size(done / secs)}{self.unit}/s" if secs > 0 and done else ""
                log.info("%s: %s%s in %.1f s%s", self.desc, size(self.n), self.unit, secs, rate)
                return
            rate = f", {done / secs:.1f} {self.unit}/s" if secs > 0 and done else ""
            total = f"/{self.total}" if self.total else ""
            log.info("%s: %d%s %ss in %.1f s%s", self.desc, self.n, total, self.unit, secs, rate)

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


@dataclass
class RunLog:
    """What a run reports as it goes, and what it measured: progress bars on or off,
    `on_progress(stage, done, total)` (the studio shows it), the seconds each stage took, and how
    many optimizer steps ran."""

    progress: bool = False
    on_progress: ProgressFn | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    optimize_steps: int = 0

    @contextmanager
    def stage(self, name: str, message: str | None = None, logger: logging.Logger | None = None) -> Iterator[None]:
        """A step of a run: said when it starts (INFO), its seconds added to `seconds[name]`, reported
        as 0/1 then 1/1."""
        if message:
            (logger or log).info(message)
        self.report(name, 0, 1)
        t = time.monotonic()
        yield
        self.add_seconds(name, time.monotonic() - t)
        self.report(name, 1, 1)

    def add_seconds(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def report(self, stage: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(stage, done, total)
