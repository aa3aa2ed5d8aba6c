"""JIT warm-up: what a new process pays before its first result, cold and with the cache.

1. ``cold``: ``imstats warmup`` in a new process on an empty ``IMSTATS_CACHE_DIR``, with the
   time of each case (compiling) and the whole process.
2. ``first call``: with that cache warm, one new process per statistic does
   ``import imstats`` and the first call on the 500 x 375 coffee image
   (``skimage.data.coffee()`` resized, PMI edges included); printed: the process's wall time, the
   import + first call as timed inside it, and a second call in the same process (the
   computation alone). Target: import + first call <= 1.5 s.
3. ``show``: ``imstats show`` on a 512 x 512 PNG (``skimage.data.astronaut()``) with the
   warm cache, process wall time. Target <= 4 s.

Every process starts from the repository root (this checkout's imstats). Medians of
``--repeat`` runs for 2 and 3; no asserts. Usage::

    python benchmarks/bench_warmup.py [--repeat 3] [--threads N] [--cache-dir DIR]
        [--parts cold,first,show]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout
from benchmarks._timing import cpu_model  # noqa: E402

CLI = "from cli.imstats_cli import main; main()"
KEYS = ("import", "first", "again")
CALLS = {
    "entropy": "imstats.entropy(img)",
    "segment_count": "imstats.segment_count(img)",
    "edge_strength": "imstats.edge_strength(img, seed=0)",
    "dct_coefficients": "imstats.dct_coefficients(img)",
}
FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np
import imstats
img = np.load({path!r})
t1 = time.perf_counter()
value = {call}
t2 = time.perf_counter()
{call}
t3 = time.perf_counter()
import json
print(json.dumps({{"import": t1 - t0, "first": t2 - t0, "again": t3 - t2}}))
"""


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system) of ``python args`` from the repository root,
    and its stdout. On a shared machine the CPU time is the steadier figure: with one Numba
    thread it is what the wall time would be with the machine to itself."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{proc.stderr}")
    return wall, cpu, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per warm measurement")
    parser.add_argument(
        "--threads", type=int, help="NUMBA_NUM_THREADS of the processes (default: unset)"
    )
    parser.add_argument(
        "--cache-dir",
        help="use this cache folder (default: a new empty one); with 'cold', empty it first",
    )
    parser.add_argument(
        "--parts", default="cold,first,show", help="comma-separated: cold, first, show"
    )
    opts = parser.parse_args()
    parts = set(opts.parts.split(","))

    import numba
    import numpy as np
    import skimage.data
    from PIL import Image

    tmp = Path(tempfile.mkdtemp(prefix="bench-warmup-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSTATS_")}
    cache = Path(opts.cache_dir) if opts.cache_dir else tmp / "cache"
    if "cold" in parts and cache.exists():
        shutil.rmtree(cache)
    env["IMSTATS_CACHE_DIR"] = str(cache)
    if opts.threads:
        env["NUMBA_NUM_THREADS"] = str(opts.threads)
    from skimage.transform import resize

    coffee = tmp / "coffee.npy"  # 600 x 400, resized to 500 x 375 as in bench_stats.py
    small = resize(skimage.data.coffee(), (375, 500, 3), order=1, anti_aliasing=True)
    np.save(coffee, np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8))
    png = tmp / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(png)

    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}")
    threads = opts.threads or numba.config.NUMBA_NUM_THREADS
    print(f"numba {numba.__version__}, {threads} Numba threads; cache {cache}")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    if "cold" in parts:
        print("\n1. cold: imstats warmup on an empty cache (new process)")
        wall, cpu, out = run(["-c", CLI, "warmup"], env)
        print("   " + out.rstrip().replace("\n", "\n   "))
        print(f"   process: wall time {wall:.1f} s, CPU time {cpu:.1f} s")
    if parts & {"first", "show"} and "cold" not in parts:
        run(["-c", CLI, "warmup"], env)  # whatever is missing; not timed

    if "first" in parts:
        print(
            f"\n2. warm cache, one new process per statistic, coffee 500 x 375, {opts.repeat} runs"
        )
        print(
            f"   {'statistic':<18s} {'process':>8s} {'best':>6s} {'CPU':>6s} {'import':>7s} "
            f"{'+ first':>8s} {'again':>7s}"
        )
        for name, call in CALLS.items():
            rows = []
            for _ in range(opts.repeat):
                wall, cpu, out = run(["-c", FIRST_CALL.format(path=str(coffee), call=call)], env)
                rows.append((wall, cpu, json.loads(out.splitlines()[-1])))
            wall = statistics.median(w for w, _, _ in rows)
            best = min(w for w, _, _ in rows)
            cpu = statistics.median(c for _, c, _ in rows)
            imp, first, again = (statistics.median(r[k] for _, _, r in rows) for k in KEYS)
            print(
                f"   {name:<18s} {wall:7.2f}s {best:5.2f}s {cpu:5.2f}s {imp:6.2f}s {first:7.2f}s "
                f"{again:6.2f}s"
            )
        print("   (medians; process: wall time of the process, best: its fastest run, CPU: its")
        print("    CPU time; import: numpy, imstats, image; + first: import and the first call,")
        print("    timed inside; again: a second call, the computation alone)")

    if "show" in parts:
        print(f"\n3. imstats show, 512 x 512 PNG, warm cache, median of {opts.repeat}")
        walls, cpus = [], []
        for _ in range(opts.repeat):
            wall, cpu, _ = run(["-c", CLI, "show", str(png), "--out", str(tmp / "fig.png")], env)
            walls.append(wall)
            cpus.append(cpu)
        runs = ", ".join(f"{w:.2f}" for w in walls)
        print(
            f"   wall time {statistics.median(walls):.2f} s, best {min(walls):.2f} s "
            f"(runs: {runs}), CPU time {statistics.median(cpus):.2f} s"
        )
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
