"""Overhead of agreement.Recorder in a plain PyTorch loop: LeNet5 epochs with and without it.

The embedded sample (3 000 train + 1 000 test Fashion-MNIST images), LeNet5, SGD, batch
64, one torch thread, on the CPU. One epoch is the training pass plus an eval pass over the
test split. "without": the loop alone; "with": the same loop calling
``Recorder.record`` for every batch of both splits (logits, so ``p_true`` / ``margin`` are
kept too) and ``Recorder.end_epoch`` (log files, commit). Both variants start from the
same seeds and run ``--epochs`` epochs; ``--repeats`` pairs of runs alternate (ABBA
order) and the median of the paired ratios is reported. The time spent inside the
Recorder's calls is also summed on its own, which is steadier than the difference of two
noisy epoch times. Both are measured as wall time and as this process's CPU time
(``time.process_time``), which other processes on a busy machine inflate less.

    PYTHONPATH=. python benchmarks/bench_recorder.py [--epochs 2] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import agreement
from imstats.dataset import get_reader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
from benchmarks._timing import cpu_model  # noqa: E402


def load():
    reader = get_reader("sample")
    splits, tensors = {}, {}
    for s in ("train", "test"):
        images, labels, _ = reader.arrays(s)
        splits[s] = ([r.id for r in reader.examples(s)], labels)
        x = torch.tensor(images).float().unsqueeze(1).div(255).sub(0.286).div(0.353)
        tensors[s] = (x, torch.tensor(labels).long())
    return splits, tensors


def _clocks() -> np.ndarray:
    return np.array([time.perf_counter(), time.process_time()])


def run(tensors, splits, epochs: int, record: bool, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Train one LeNet5 from seed 0 for ``epochs`` epochs.

    Returns the mean seconds per epoch and the mean seconds per epoch spent inside the
    Recorder's calls, each as (wall, CPU).
    """
    torch.manual_seed(0)
    net = agreement.build_model("lenet5", 10, in_channels=1, input_size=28)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    rec = agreement.Recorder(out, models=1, splits=splits, epochs=epochs) if record else None
    (x, y), (xt, yt) = tensors["train"], tensors["test"]
    # two plain floats per clock read: the harness must cost next to nothing itself
    wall = cpu = 0.0
    t0 = _clocks()
    for epoch in range(1, epochs + 1):
        g = torch.Generator().manual_seed(epoch)
        net.train()
        for pos in torch.randperm(len(y), generator=g).split(64):
            logits = net(x[pos])
            loss = F.cross_entropy(logits, y[pos])
            if rec is not None:
                w, c = time.perf_counter(), time.process_time()
                rec.record(split="train", model=0, epoch=epoch, index=pos, output=logits)
                wall, cpu = wall + time.perf_counter() - w, cpu + time.process_time() - c
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            for pos in torch.arange(len(yt)).split(256):
                logits = net(xt[pos])
                if rec is not None:
                    w, c = time.perf_counter(), time.process_time()
                    rec.record(split="test", model=0, epoch=epoch, index=pos, output=logits)
                    wall, cpu = wall + time.perf_counter() - w, cpu + time.process_time() - c
        if rec is not None:
            w, c = time.perf_counter(), time.process_time()
            rec.end_epoch(model=0, epoch=epoch)
            wall, cpu = wall + time.perf_counter() - w, cpu + time.process_time() - c
    return (_clocks() - t0) / epochs, np.array([wall, cpu]) / epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    splits, tensors = load()
    run(tensors, splits, 1, False, Path())  # warm-up: allocator, kernels
    load_before = os.getloadavg()[0]
    plain, recorded, inside = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            # pairs in ABBA order, so that a slow drift of the machine cancels
            for record in (False, True) if r % 2 == 0 else (True, False):
                t, s = run(tensors, splits, args.epochs, record, Path(tmp) / f"run{r}")
                (recorded if record else plain).append(t)
                if record:
                    inside.append(s)
    plain, recorded, inside = np.array(plain), np.array(recorded), np.array(inside)
    ratios = recorded / plain
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after), torch {torch.__version__}, 1 thread")  # fmt: skip
    print(f"LeNet5 on the embedded sample (3 000 + 1 000 images), {args.repeats} pairs of "
          f"{args.epochs}-epoch runs; medians per epoch:")  # fmt: skip
    for j, name in enumerate(("wall", "CPU")):
        a, b, c = (float(np.median(v[:, j])) for v in (plain, recorded, inside))
        print(f" {name} time")
        print(f"  without Recorder      {a * 1000:8.1f} ms")
        print(f"  with Recorder         {b * 1000:8.1f} ms   paired ratio, median "
              f"{np.median(ratios[:, j]):.4f}")  # fmt: skip
        print(
            f"  inside Recorder calls {c * 1000:8.1f} ms   {100 * c / a:.2f} % of the plain epoch"
        )


if __name__ == "__main__":
    main()
