"""The dataset engine on one worker, a local pool, and Dask (embedded and external).

On a folder of 500 x 375 JPEGs with all four statistics (native size, PMI edges seeded)
and a warm kernel cache, prints in one run:

- images/s for 1 worker (in this process), the local pool of 2 processes, ``local:2``
  (an embedded Dask cluster) and an external ``dask scheduler`` with 2 ``dask worker``
  processes, with each one's speed-up over 1 worker;
- the Dask per-shard overhead: the wall-time difference of each Dask run to the local
  pool's, as a percentage of the pool's wall time;
- the driver's peak memory (VmHWM of the driving process) for 1 000 and 10 000
  small images, local pool and ``local:2`` (the embedded scheduler runs in the driver);
- a projection to ImageNet (1.28 M images): measured seconds per image per core, as
  hours on 32 / 256 / 1 024 cores at the measured 2-worker scaling efficiency.

Run: ``python benchmarks/bench_distributed.py [--images 24] [--mem 1000,10000]``.
Every figure comes from this run, on this machine; the CPU model is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout
from benchmarks._timing import cpu_model  # noqa: E402

IMAGENET = 1_281_167


def make_jpegs(root: Path, n: int, size: tuple[int, int] = (500, 375)) -> None:
    """``n`` distinct natural-image JPEGs of ``size`` (crops of scikit-image's samples)."""
    import skimage.data
    from PIL import Image

    sources = [
        skimage.data.astronaut(),
        skimage.data.coffee(),
        skimage.data.chelsea(),
        skimage.data.rocket(),
        skimage.data.immunohistochemistry(),
    ]
    rng = np.random.default_rng(0)
    (root / "x").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = Image.fromarray(sources[i % len(sources)])
        w, h = src.size
        s = rng.uniform(0.6, 1.0)
        cw, ch = int(w * s), int(h * s)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = src.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.BILINEAR)
        if i % 2:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img.save(root / "x" / f"img{i:05d}.jpg", quality=90)


def make_small(root: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    (root / "x").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32), np.uint8)).save(root / "x" / f"{i:05d}.png")


class ExternalCluster:
    """``dask scheduler`` + ``dask worker`` subprocesses on 127.0.0.1."""

    def __init__(self, tmp: Path, n: int) -> None:
        self.file = tmp / "scheduler.json"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host=127.0.0.1"]
                + ["--port=0", "--no-dashboard", f"--scheduler-file={self.file}"],
                **quiet,
            )
        ]
        while not self.file.exists():
            time.sleep(0.1)
        for i in range(n):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker"]
                    + ["--scheduler-file", str(self.file), "--nthreads=1", "--no-dashboard"]
                    + ["--host=127.0.0.1", f"--name=w{i}"],
                    **quiet,
                )
            )

    def close(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            p.wait(timeout=60)


def timed_run(root: Path, out: Path, **kw) -> float:
    import imstats

    t = time.perf_counter()
    imstats.compute("folder", root=root, out=out, progress=False, **kw)
    return time.perf_counter() - t


def driver_peak_mib(root: Path, out: Path, mode: str) -> float:
    """Peak RSS (VmHWM, KiB) of a fresh driver process running the engine over ``root``.

    Not ru_maxrss: Linux carries that over from the parent across fork and exec.
    """
    kw = {"workers": 2} if mode == "pool" else {"scheduler": mode}
    code = (
        "import imstats\n"
        f"imstats.compute('folder', root={str(root)!r}, out={str(out)!r}, "
        f"stats=['dct_coefficients'], shard_size=64, progress=False, **{kw!r})\n"
        "print([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", "if __name__ == '__main__':\n" + _indent(code)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    return int(res.stdout.split()[-1]) / 1024


def _indent(code: str) -> str:
    return "".join("    " + line + "\n" for line in code.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24, help="500 x 375 JPEGs to time")
    ap.add_argument("--shard-size", type=int, default=2, help="images per shard")
    ap.add_argument(
        "--mem", default="1000,10000", help="image counts for the memory check (empty: skip it)"
    )
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()

    import imstats
    from imstats import jit

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; imstats {imstats.__version__}")
    t = time.perf_counter()
    compiled = jit.ensure_warm()
    print(f"kernel cache: {'compiled' if compiled else 'warm'} ({time.perf_counter() - t:.1f} s)")
    results: dict[str, object] = {"cpu": cpu_model()}
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp_:
        tmp = Path(tmp_)
        root = tmp / "jpegs"
        make_jpegs(root, args.images)
        kw = {"shard_size": args.shard_size, "seed": 0}
        walls: dict[str, float] = {}
        walls["1 worker"] = timed_run(root, tmp / "w1.parquet", workers=1, **kw)
        walls["local pool, 2"] = timed_run(root, tmp / "w2.parquet", workers=2, **kw)
        walls["dask local:2"] = timed_run(root, tmp / "d2.parquet", scheduler="local:2", **kw)
        ext = ExternalCluster(tmp, 2)
        try:
            walls["dask external, 2"] = timed_run(
                root, tmp / "e2.parquet", scheduler=str(ext.file), **kw
            )
        finally:
            ext.close()
        ref = imstats.read(tmp / "w1.parquet")
        for name in ("w2", "d2", "e2"):
            assert imstats.read(tmp / f"{name}.parquet").equals(ref), name
        n = args.images
        print(f"\n{n} JPEGs of 500 x 375, all four statistics, shard size {args.shard_size}:")
        print(f"{'mode':20s} {'wall s':>8s} {'img/s':>8s} {'vs 1 worker':>12s}")
        for mode, w in walls.items():
            print(f"{mode:20s} {w:8.2f} {n / w:8.3f} {walls['1 worker'] / w:11.2f}x")
        pool = walls["local pool, 2"]
        for mode in ("dask local:2", "dask external, 2"):
            print(f"{mode} overhead vs the local pool: {100 * (walls[mode] - pool) / pool:+.1f} %")
        per_image = walls["1 worker"] / n
        eff = walls["1 worker"] / walls["dask external, 2"] / 2
        results.update(walls=walls, images=n, s_per_image_core=per_image, efficiency=eff)
        print(
            f"\nImageNet projection ({IMAGENET:,} images at {per_image:.2f} s per image per "
            f"core, scaling efficiency {eff:.2f} measured from 1 to 2 workers):"
        )
        for cores in (32, 256, 1024):
            hours = IMAGENET * per_image / (cores * eff) / 3600
            print(f"  {cores:5d} cores: {hours:8.1f} h")
        mem: dict[str, float] = {}
        counts = [int(c) for c in args.mem.split(",") if c.strip()]  # --mem "": no check
        if counts:
            print("\ndriver peak memory (dct_coefficients on 32 x 32 PNGs, shard size 64):")
        for count in counts:
            small = tmp / f"small{count}"
            make_small(small, count)
            for mode in ("pool", "local:2"):
                mib = driver_peak_mib(small, tmp / f"m{count}{mode[-1]}.parquet", mode)
                mem[f"{count} {mode}"] = mib
                print(f"  {count:6d} images, {mode:8s}: {mib:7.1f} MiB")
        results["driver_peak_mib"] = mem
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
