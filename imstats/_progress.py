"""Progress of a dataset run, per image, from whichever process computes it.

Workers count their progress in fractions of an image (one statistic of one image is
``1 / n_statistics``) through a hook that :mod:`imstats._rows` calls; a
:class:`ShardTicker` sums those ticks and sends them at most every quarter second to the
driver (directly in this process, through a queue from pool workers, as Dask events from
Dask workers). The driver's :class:`Progress` adds them up per shard and corrects the
count when the shard's table arrives, so the display moves per image, never
double-counts, and ends exact.

On a terminal it is a tqdm bar; otherwise a plain line on stderr at most every 10 s.
The rate and ETA are measured from the first finished image on, so the kernels' compile
time (or loading them from the cache) does not distort them.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

_HOOK: Callable[[float], None] | None = None


@contextlib.contextmanager
def image_hook(fn: Callable[[float], None] | None) -> Iterator[None]:
    """Let :func:`advance` call ``fn`` while the block runs (in this process)."""
    global _HOOK
    old, _HOOK = _HOOK, fn
    try:
        yield
    finally:
        _HOOK = old


def advance(images: float) -> None:
    """Report ``images`` (a fraction of an image allowed) done, if anyone listens."""
    if _HOOK is not None:
        _HOOK(images)


class ShardTicker:
    """Collects ticks of one shard and sends ``send(shard, images)`` every ``every`` s."""

    def __init__(self, shard: int, send: Callable[[int, float], None], every: float = 0.25):
        self.shard, self.send, self.every = shard, send, every
        self.pending = 0.0
        self.last = time.monotonic()

    def __call__(self, images: float) -> None:
        self.pending += images
        now = time.monotonic()
        if now - self.last >= self.every:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self.pending:
            with contextlib.suppress(Exception):  # progress must never fail the work
                self.send(self.shard, self.pending)
            self.pending = 0.0
        self.last = now if now is not None else time.monotonic()


def run_reporting(send: Callable[[int, float], None], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` (a shard's work, shard index at ``args[4]``) with its ticks sent."""
    ticker = ShardTicker(args[4], send)
    with image_hook(ticker):
        out = fn(*args)
    ticker.flush()
    return out


class Progress:
    """Per-image progress of a run (see the module docstring)."""

    def __init__(self, total: int, done: int, enabled: bool, every: float = 10.0) -> None:
        self.total, self.done, self.enabled, self.every = total, float(done), enabled, every
        self.partial: dict[int, float] = {}
        self.finished: set[int] = set()
        self.t_first: float | None = None  # when the first image of this run finished
        self.d_first = float(done)
        self.logged = -1
        self.last = time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=done,
                unit="img",
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]",
            )

    def log(self, msg: str) -> None:
        if self.enabled:
            if self.bar is not None:
                self.bar.write(f"imstats: {msg}", file=sys.stderr)
            else:
                print(f"imstats: {msg}", file=sys.stderr, flush=True)

    def tick(self, shard: int, images: float) -> None:
        """``images`` more of ``shard`` are done (ignored once the shard has arrived)."""
        if shard in self.finished:
            return
        self.partial[shard] = self.partial.get(shard, 0.0) + images
        self._advance(images)

    def shard_done(self, shard: int, n: int) -> None:
        """Shard ``shard`` arrived with ``n`` rows: count exactly what it held."""
        self.finished.add(shard)
        self._advance(n - self.partial.pop(shard, 0.0))

    def _advance(self, images: float) -> None:
        now = time.monotonic()
        if self.t_first is None and images > 0:
            # start the clock at the first finished work: compile/start-up excluded
            self.t_first, self.d_first = now, self.done
        self.done = min(self.done + images, float(self.total))
        if self.bar is not None:
            n = int(self.done + 1e-9)
            if n != self.bar.n:
                self.bar.n = n
                self.bar.refresh()
            return
        if self.enabled and now - self.last >= self.every:
            self.say(now)

    def rate(self, now: float | None = None) -> float:
        """Images per second since the first finished image (0 before)."""
        if self.t_first is None:
            return 0.0
        now = now if now is not None else time.monotonic()
        return (self.done - self.d_first) / max(now - self.t_first, 1e-9)

    def say(self, now: float | None = None) -> None:
        """One plain progress line (off a terminal)."""
        now = now if now is not None else time.monotonic()
        done = int(self.done + 1e-9)
        self.last, self.logged = now, done
        rate = self.rate(now)
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = "?" if math.isinf(left) else time.strftime("%H:%M:%S", time.gmtime(left))
        pct = 100.0 * done / max(self.total, 1)
        self.log(f"{done}/{self.total} images ({pct:.1f} %), {rate:.2f} img/s, ETA {eta}")

    def final(self) -> None:
        """The closing line off a terminal, unless the last line said the same."""
        if self.bar is None and self.enabled and self.logged != int(self.done + 1e-9):
            self.say()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
