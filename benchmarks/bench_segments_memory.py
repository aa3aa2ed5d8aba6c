"""Peak memory of segment_count vs skimage's felzenszwalb, each in a fresh subprocess.

Run: ``PYTHONPATH=. python benchmarks/bench_segments_memory.py``. For each image size and
each implementation a new interpreter warms up (JIT, imports) on a tiny image, then
measures one call: the growth of the resident-set high-water mark (``ru_maxrss``) and the
tracemalloc peak (every large array of ours is a NumPy allocation, so tracemalloc sees it;
scikit-image's arrays are NumPy's too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from benchmarks._timing import cpu_model  # noqa: E402

CHILD = r"""
import json, resource, sys, tracemalloc
import numpy as np
from skimage.transform import resize
from tests.images import sample_images
which, h, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
src = sample_images()["astronaut"]
img = np.ascontiguousarray(resize(src, (h, w), preserve_range=True).round().astype(np.uint8))
if which == "ours":
    from imstats.stats.segments import segment_count as f
else:
    from skimage.segmentation import felzenszwalb
    def f(x):
        return len(np.unique(felzenszwalb(x, scale=500, sigma=0.5, min_size=20)))
f(img[:16, :16])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
f(img)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"rss_mib": rss / 1024, "tracemalloc_mib": peak / 2**20}))
"""


def measure(which: str, h: int, w: int) -> dict:
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(h), str(w)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
    print(f"{'size':>10} {'what':>16} {'ours MiB':>9} {'skimage MiB':>12} {'ratio':>6}")
    for h, w in [(375, 500), (768, 1024)]:
        ours, ref = measure("ours", h, w), measure("skimage", h, w)
        for key, label in (("tracemalloc_mib", "tracemalloc peak"), ("rss_mib", "maxrss growth")):
            ratio = ours[key] / ref[key] if ref[key] > 0 else float("nan")
            print(f"{h:>4}x{w:<5} {label:>16} {ours[key]:9.1f} {ref[key]:12.1f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
