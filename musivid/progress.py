"""Progress of long loops, the same way everywhere: a tqdm bar on an interactive terminal; where
stderr is not a terminal (logs, CI, pipes), one summary line through `logging` when the loop ends,
instead of a stream of carriage-return updates."""
from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

log = logging.getLogger("musivid.progress")

ProgressFn = Callable[[str, int, int], None]  # on_progress(stage, done, total): how work advances


class Bar:
    """`with Bar(total, "optimizing", "step", enabled=progress) as bar: ... bar.update(1)`."""

    def __init__(self, total: int | None, desc: str, unit: str, enabled: bool = True, initial: int = 0,
                 unit_scale: bool = False):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.enabled, self.unit_scale = enabled, unit_scale
        self._start = time.monotonic()
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
