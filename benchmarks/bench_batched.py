"""Batched mode (K models as one vmapped computation) against K sequential runs.

Trains the same K LeNet5 models on the embedded Fashion-MNIST sample (3 000 train +
1 000 test images) both ways and prints the wall time per epoch, the ratio, and how often
the two modes' logged predictions agree (they differ only by kernel rounding).

    PYTHONPATH=. python benchmarks/bench_batched.py [--models 5] [--epochs 2] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import agreement
from agreement.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from benchmarks._timing import cpu_model  # noqa: E402


def main() -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--preset", default="sample")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    times, logs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for batched in (False, True):
            out = Path(tmp) / f"batched_{batched}"
            t0 = time.perf_counter()
            train(
                args.preset, out=out, models=args.models, epochs=args.epochs, device=args.device,
                threads=args.threads, batched=batched, limit=args.limit,
            )  # fmt: skip
            times[batched] = (time.perf_counter() - t0) / args.epochs
            logs[batched] = agreement.load_log(out)
    print(
        f"{args.models} x LeNet5, preset {args.preset}, device {args.device}, {args.epochs} epochs"
    )
    print(f"{'mode':<24}{'s / epoch (all K)':>20}")
    print(f"{'sequential':<24}{times[False]:>20.2f}")
    print(f"{'batched (vmap)':<24}{times[True]:>20.2f}")
    print(f"speed-up sequential / batched: {times[False] / times[True]:.2f}x")
    for split in ("train", "test"):
        same = np.mean(logs[False][split].pred == logs[True][split].pred, axis=(0, 2))
        acc = {b: logs[b][split].correct[:, -1].mean(1) for b in (False, True)}
        seq, bat = np.round(acc[False], 3).tolist(), np.round(acc[True], 3).tolist()
        print(f"{split}: identical logged predictions per epoch (%): "
              f"{', '.join(f'{100 * x:.1f}' for x in same)}; last-epoch accuracy per model "
              f"sequential {seq} batched {bat}")  # fmt: skip


if __name__ == "__main__":
    main()
