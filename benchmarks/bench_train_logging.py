"""Logging overhead of `agreement train`: the same epoch with and without correctness logging.

Fashion-MNIST, LeNet5, CPU. One "epoch" is the training pass plus the test eval pass.
Without logging the loop keeps only the summed loss and the number correct (what any
training loop computes); with logging it also records per-example correctness and the
prediction from the pre-step outputs, and writes both splits' Parquet files, exactly as
`agreement.train` does. The two variants alternate, and the medians are compared. The
logging operations are also timed on their own, which is steadier than the difference of
two noisy epoch times on a shared machine.

    PYTHONPATH=. python benchmarks/bench_train_logging.py [--limit 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from agreement import runlog as rl
from agreement._epoch import Scorer
from agreement.data import Transform, batches, load_dataset
from agreement.models import build_model
from agreement.presets import get_preset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from benchmarks._timing import cpu_model  # noqa: E402


def epoch(net, opt, data, transform, scorer, y_train, y_test, *, log: bool, out: str, ep: int):
    """One train pass + test pass; returns (seconds, seconds spent in logging code)."""
    t0 = time.perf_counter()
    in_log = 0.0
    net.train()
    n = len(data.train)
    if log:
        correct = torch.zeros(n, dtype=torch.bool)
        pred = torch.zeros(n, dtype=torch.long)
    n_right = torch.zeros((), dtype=torch.long)
    loss_sum = torch.zeros((), dtype=torch.float64)
    for x, pos in batches(data.train, transform, batch_size=128, train=True, seed=1, epoch=ep):
        y = y_train[pos]
        out_ = net(x)
        loss = scorer.loss(out_, y)
        t = time.perf_counter()
        if log:
            c, pr = scorer.score(out_.detach(), y)
            correct[pos], pred[pos] = c, pr
            in_log += time.perf_counter() - t
        else:
            n_right += (out_.detach().argmax(1) == y).sum()
        loss_sum += loss.detach().double() * len(pos)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    m = len(data.test)
    te_correct = torch.zeros(m, dtype=torch.bool)
    te_pred = torch.zeros(m, dtype=torch.long)
    with torch.no_grad():
        for x, pos in batches(data.test, transform, batch_size=128, train=False, seed=0, epoch=0):
            out_ = net(x)
            y = y_test[pos]
            t = time.perf_counter()
            if log:
                c, pr = scorer.score(out_, y)
                te_correct[pos], te_pred[pos] = c, pr
                in_log += time.perf_counter() - t
            else:
                n_right += (out_.argmax(1) == y).sum()
    if log:
        t = time.perf_counter()
        for split, c, pr in (("train", correct, pred), ("test", te_correct, te_pred)):
            rl.write_epoch_log(out, split, 0, ep, c.numpy(), pr.numpy(), 10, False)
        in_log += time.perf_counter() - t
    float(loss_sum)
    return time.perf_counter() - t0, in_log


def main() -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=20000, help="train images (test: limit / 2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = get_preset("fashion-mnist")
    data = load_dataset(p, limit=args.limit)
    data.test.ids = data.test.ids[: args.limit // 2]
    data.test.labels = data.test.labels[: args.limit // 2]
    data.test.images = data.test.images[: args.limit // 2]
    transform, scorer = Transform(p), Scorer(False)
    y_train, y_test = scorer.targets(data.train, "cpu"), scorer.targets(data.test, "cpu")
    torch.manual_seed(0)
    net = build_model("lenet5", 10, 1, 28)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    times: dict[bool, list[float]] = {False: [], True: []}
    log_parts: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        epoch(
            net, opt, data, transform, scorer, y_train, y_test, log=True, out=out, ep=0
        )  # warm-up
        ep = 1
        for _ in range(args.repeats):
            for log in (False, True):
                s, part = epoch(
                    net, opt, data, transform, scorer, y_train, y_test, log=log, out=out, ep=ep
                )
                times[log].append(s)
                if log:
                    log_parts.append(part / s)
                ep += 1
    plain, logged = statistics.median(times[False]), statistics.median(times[True])
    print(f"Fashion-MNIST LeNet5, CPU, {args.threads} thread(s), {len(data.train)} train + "
          f"{len(data.test)} test images, batch 128, median of {args.repeats}")  # fmt: skip
    print(f"{'variant':<28}{'epoch s':>10}")
    print(f"{'without logging':<28}{plain:>10.3f}")
    print(f"{'with logging':<28}{logged:>10.3f}")
    print(
        f"end-to-end ratio logged/plain: {logged / plain:.4f} ({100 * (logged / plain - 1):+.2f} %)"
    )
    best = min(times[True]) / min(times[False])
    print(f"ratio of the fastest epochs (least disturbed): {best:.4f} ({100 * (best - 1):+.2f} %)")
    print(f"logging code's share of the logged epoch (timed directly): "
          f"{100 * statistics.median(log_parts):.2f} %")  # fmt: skip


if __name__ == "__main__":
    main()
