"""Progress of a dataset run: tqdm on a terminal, plain log lines on stderr otherwise."""

from __future__ import annotations

import math
import sys
import time


class Progress:
    """tqdm on a terminal; otherwise a plain log line on stderr at most every ``every`` s."""

    def __init__(self, total: int, done: int, enabled: bool, every: float = 10.0) -> None:
        self.total, self.done, self.enabled, self.every = total, done, enabled, every
        self.start_done = done
        self.logged = -1
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit="img", dynamic_ncols=True)

    def log(self, msg: str) -> None:
        if self.enabled:
            if self.bar is not None:
                self.bar.write(msg, file=sys.stderr)
            else:
                print(f"imstats: {msg}", file=sys.stderr, flush=True)

    def update(self, n: int, final: bool = False) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < self.every):
            return
        if final and self.logged == self.done:
            return  # already said
        self.last, self.logged = now, self.done
        rate = (self.done - self.start_done) / max(now - self.t0, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = "?" if math.isinf(left) else time.strftime("%H:%M:%S", time.gmtime(left))
        pct = 100.0 * self.done / max(self.total, 1)
        self.log(f"{self.done}/{self.total} images ({pct:.1f} %), {rate:.1f} img/s, ETA {eta}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
