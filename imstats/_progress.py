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
        self.last = self.t_start = time.monotonic()
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
        self.done = min(self.done + images, float(self.total))
        if self.t_first is None and images > 0:
            # start the clock at the first finished work: compile/start-up excluded, and
            # that first work too (it took an unknown part of the wait before it)
            self.t_first, self.d_first = now, self.done
        if self.bar is not None:
            n = int(self.done + 1e-9)
            if n != self.bar.n:
                self.bar.n = n
                self.bar.refresh()
            return
        if self.enabled and now - self.last >= self.every:
            self.say(now)

    def rate(self, now: float | None = None) -> float:
        """Images per second after the first finished work (0 until there is a measure)."""
        now = now if now is not None else time.monotonic()
        return measured_rate(self.done, self.d_first, self.t_first, now, min_seconds=0.05)

    def say(self, now: float | None = None) -> None:
        """One plain progress line (off a terminal)."""
        now = now if now is not None else time.monotonic()
        done = int(self.done + 1e-9)
        self.last, self.logged = now, done
        rate = self.rate(now)
        head = f"{done}/{self.total} images ({100.0 * done / max(self.total, 1):.1f} %)"
        if rate > 0:
            self.log(f"{head}, {rate:.2f} img/s, ETA {eta_text((self.total - self.done) / rate)}")
        elif done >= self.total:  # finished in one piece: no speed of its own to give
            took = max(now - self.t_start, 1e-3)
            self.log(f"{head}, {done / took:.2f} img/s over {took:.1f} s, start-up included")
        else:  # nothing timed yet: no made-up speed
            self.log(f"{head}, measuring the speed")

    def final(self) -> None:
        """The closing line off a terminal, unless the last line said the same."""
        if self.bar is None and self.enabled and self.logged != int(self.done + 1e-9):
            self.say()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def measured_rate(
    done: float, d_first: float, t_first: float | None, now: float, min_seconds: float = 0.0
) -> float:
    """Work per second since ``t_first``, when ``d_first`` of it was done: 0 until more
    than that is done, more than ``min_seconds`` later (no speed made up from one piece)."""
    if t_first is None or done <= d_first or now - t_first <= min_seconds:
        return 0.0
    return (done - d_first) / (now - t_first)


def eta_text(seconds: float) -> str:
    """``H:MM:SS`` for a remaining time (``?`` when unknown), e.g. ``0:03:07``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class StepProgress:
    """Progress over a known number of steps run in stages (training batches in epochs).

    Used by ``agreement train``: a stage is one model's epoch (or, batched, all models'
    epoch), a step one training batch; ``total`` counts the steps of every stage still to
    run, so the ETA is that of the whole run. On a terminal (``tty``, default: stderr is
    one) each stage is a tqdm bar over its steps whose postfix gives the run's steps done
    and its ETA; otherwise ``say`` receives a line at most every ``every`` seconds during a
    stage and one at its end.

    The rate (steps per second) is measured from the end of the first step on, over the
    wall time since then, so start-up and the first batch's warm-up do not distort it, and
    the time spent between training batches (eval passes, writing the log) is part of it,
    as it is part of what remains. ``clock`` is ``time.monotonic`` (a fake one in tests).
    """

    def __init__(
        self,
        total: int,
        say: Callable[[str], None],
        *,
        tty: bool | None = None,
        every: float = 10.0,
        unit: str = "batch",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.done, self.say_line, self.every = total, 0, say, every
        self.unit, self.clock = unit, clock
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.t_first: float | None = None  # end of the first step (warm-up excluded)
        self.d_first = 0
        self.label, self.n, self.i = "", 0, 0
        self.last = clock()
        self.bar: Any = None

    def add(self, steps: int) -> None:
        """``steps`` more to run (negative: fewer, e.g. a model stopped early)."""
        self.total = max(self.total + steps, self.done)

    def stage(self, label: str, n: int) -> None:
        """A stage of ``n`` steps begins (``label``: e.g. ``model 0 epoch 2/8``)."""
        self._close_bar()
        self.label, self.n, self.i = label, n, 0
        self.last = self.clock()
        if self.tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=n, desc=label, unit=self.unit, leave=False, dynamic_ncols=True,
                file=sys.stderr,
            )  # fmt: skip

    def step(self, steps: int = 1) -> None:
        """``steps`` steps of the current stage are done."""
        now = self.clock()
        self.i += steps
        self.done += steps
        if self.t_first is None:
            self.t_first, self.d_first = now, self.done
        if self.bar is not None:
            self.bar.set_postfix_str(self._overall(now), refresh=False)
            self.bar.update(steps)
        elif now - self.last >= self.every:
            self._line(now)

    def end_stage(self) -> None:
        """The current stage's steps are done: its closing line (off a terminal)."""
        if self.bar is not None:
            self._close_bar()
        elif self.n:
            self._line(self.clock())

    def rate(self, now: float | None = None) -> float:
        """Steps per second since the end of the first step (0 until a second one ends)."""
        now = self.clock() if now is None else now
        return measured_rate(self.done, self.d_first, self.t_first, now)

    def eta(self, now: float | None = None) -> float:
        """Seconds until the whole run is done at the measured rate (inf when unknown)."""
        rate = self.rate(now)
        return (self.total - self.done) / rate if rate > 0 else math.inf

    def write(self, msg: str) -> None:
        """A message line that does not tear a bar on the terminal."""
        if self.bar is not None:
            from tqdm.auto import tqdm

            tqdm.write(msg, file=sys.stderr)
        else:
            self.say_line(msg)

    def close(self) -> None:
        self._close_bar()

    def _overall(self, now: float) -> str:
        rate = self.rate(now)
        speed = f"{rate:.2f} {self.unit}/s" if rate > 0 else f"? {self.unit}/s"
        return f"overall {self.done}/{self.total}, {speed}, ETA {eta_text(self.eta(now))}"

    def _line(self, now: float) -> None:
        self.last = now
        self.say_line(f"{self.label}: {self.unit} {self.i}/{self.n}; {self._overall(now)}")

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
