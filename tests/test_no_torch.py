"""``imstats`` must work without torch: importing and using it never loads torch."""

import subprocess
import sys


def test_imstats_never_imports_torch():
    code = (
        "import sys, numpy as np, imstats\n"
        "import imstats.stats, imstats.dataset, imstats.engine, imstats.show\n"
        "img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)\n"
        "assert imstats.segment_count(img) >= 1\n"
        "t = imstats.compute('sample', stats=['dct_coefficients'], limit=3, progress=False)\n"
        "assert t.num_rows == 3\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
