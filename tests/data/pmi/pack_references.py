"""Pack the PMI reference outputs into this folder, compressed (run once, by hand).

    python tests/data/pmi/pack_references.py ../shared/refs/pmi

Writes ``references.npz`` (every E map, feature image and the filter bank, float32
except where a test's tolerance needs float64), ``astronaut_speedy_exactPMI_seed1_W_upper.npz``
(the affinity matrix's upper triangle in CSR form, float64) and copies the three input
PNGs and ``summary.csv``. See README.md for what each test needs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent

# tests compare these to 1e-6 absolute or 1e-12: float32 (about 1.6e-6 at E = 27) is too coarse
FLOAT64 = {"oeFilters_sigma1_support3_deriv1", "astronaut_speedy_exactPMI_seed1_E"}
W_FILE = "astronaut_speedy_exactPMI_seed1_full_W.npz"
N = 96 * 96  # the astronaut's half-resolution grid


def main(src: Path) -> None:
    arrays = {}
    for path in sorted(src.glob("*.npy")):
        a = np.load(path, allow_pickle=False)
        arrays[path.stem] = a if path.stem in FLOAT64 else a.astype(np.float32)
    np.savez_compressed(HERE / "references.npz", **arrays)
    with np.load(src / W_FILE, allow_pickle=False) as z:
        w = sp.csr_matrix((z["w"], (z["i"], z["j"])), shape=(N, N))
    assert abs(w - w.T).max() == 0 and not w.diagonal().any()  # symmetric, zero diagonal
    upper = sp.triu(w, k=1, format="csr")
    upper.sort_indices()
    np.savez_compressed(
        HERE / "astronaut_speedy_exactPMI_seed1_W_upper.npz",
        indptr=upper.indptr.astype(np.int32),
        indices=upper.indices.astype(np.int16),
        data=upper.data,
        shape=np.array(upper.shape),
    )
    for name in ("square.png", "texture.png", "astronaut.png", "summary.csv"):
        shutil.copyfile(src / name, HERE / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
