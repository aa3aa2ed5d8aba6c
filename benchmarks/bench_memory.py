"""Peak memory of each statistic per megapixel: the basis of their ``max_pixels`` limits.

Run: ``PYTHONPATH=. python benchmarks/bench_memory.py [statistic ...] [--sizes 768x1024,...]``.
The images (``skimage.data.coffee()`` resized) are made here and saved; for each statistic
and size a fresh interpreter loads one, warms up (imports, JIT) on its 64 x 64 corner, then
computes the statistic once on the whole image and reports the growth of its resident-set
high-water mark over its RSS before the call (``VmHWM`` reset through
``/proc/self/clear_refs``; else ``ru_maxrss`` over the warm-up, which hides peaks below the
import's), in MiB and MiB per megapixel. The PMI
edges also allocate through SciPy and LAPACK, which tracemalloc does not see, hence the RSS.
A statistic's own ``max_pixels`` limit is lifted for the measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from skimage import data
from skimage.transform import resize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from benchmarks._timing import cpu_model  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import numpy as np
import imstats
name, path = sys.argv[1], sys.argv[2]
func = getattr(imstats, name)
kw = {"seed": 0} if name == "edge_strength" else {}
if "max_pixels" in imstats.registry.get(name).defaults:
    kw["max_pixels"] = None
img = np.load(path)
func(np.ascontiguousarray(img[:64, :64]), **kw)

def status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])

try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base, how = status_kib("VmRSS"), "VmHWM reset"
except OSError:
    base, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
t = time.perf_counter()
func(img, **kw)
s = time.perf_counter() - t
peak = status_kib("VmHWM") if how == "VmHWM reset" else resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_mib": (peak - base) / 1024, "seconds": s, "how": how}))
"""

STATS = ["edge_strength", "segment_count", "entropy", "dct_coefficients"]


def main() -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stats", nargs="*", default=STATS)
    parser.add_argument("--sizes", default="768x1024,1086x1448")
    opts = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in opts.sizes.split(",")]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'statistic':<18} {'size':>11} {'Mpx':>6} {'peak MiB':>9} {'MiB/Mpx':>8} {'s':>7}")
    tmp = tempfile.mkdtemp(prefix="bench_memory_")
    paths = {}
    for h, w in sizes:  # made here, so the children's high-water marks hold no resize temporaries
        img = (resize(data.coffee(), (h, w), anti_aliasing=True) * 255).round().astype(np.uint8)
        paths[h, w] = os.path.join(tmp, f"coffee_{h}x{w}.npy")
        np.save(paths[h, w], img)
    for name in opts.stats:
        for h, w in sizes:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, name, paths[h, w]],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.splitlines()[-1])
            mpx = h * w / 1e6
            print(
                f"{name:<18} {h:>5}x{w:<5} {mpx:6.3f} {r['rss_mib']:9.0f} "
                f"{r['rss_mib'] / mpx:8.0f} {r['seconds']:7.2f}  ({r['how']})",
                flush=True,
            )
    shutil.rmtree(tmp)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
