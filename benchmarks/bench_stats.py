"""Benchmark imstats statistics against their references, one core, same run.

Usage::

    python benchmarks/bench_stats.py [--cases entropy_paper,dct] [--sizes 32x32,500x375]
                                     [--quick] [--out bench-results]

Case modules are the files ``benchmarks/cases_*.py``; each defines ``CASES``, a list of
dicts with keys ``name`` (str), ``ours`` (callable(img) -> value), ``reference``
(callable(img) -> value), ``reference_name`` (str) and optionally ``sizes`` (the subset
of sizes at which the reference is run, for slow references). Images are RGB uint8
crops/resizes of scikit-image samples. Per case and size, the first call of ``ours``
(Numba JIT compilation) is timed separately and excluded; ms per image is the median over
repeats (at least 3, about 0.5 s per measurement; ``--quick`` uses about 0.1 s); the
minimum is reported too, since a shared machine makes medians noisy. A table is printed,
and written as CSV and JSON to ``--out``.
"""

from __future__ import annotations

import os

# One core, set before NumPy / Numba / SciPy are imported.
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._timing import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZES = ("32x32", "128x128", "224x224", "500x375", "1024x768")  # W x H


def parse_size(text: str) -> tuple[int, int]:
    """'500x375' -> (height 375, width 500)."""
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def make_image(size: str) -> np.ndarray:
    """An RGB uint8 image of the given W x H size: a resize of a real photograph."""
    import skimage.data
    from skimage.transform import resize

    h, w = parse_size(size)
    src = skimage.data.astronaut() if w * 3 <= h * 4 + 1 else skimage.data.coffee()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = resize(src, (h, w, 3), order=1, anti_aliasing=True, preserve_range=True)
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def load_cases(selected: list[str] | None) -> list[dict]:
    cases = []
    for path in sorted(HERE.glob("cases_*.py")):
        spec = importlib.util.spec_from_file_location(f"_bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for case in module.CASES:
            missing = {"name", "ours", "reference", "reference_name"} - set(case)
            if missing:
                raise ValueError(f"{path.name}: case {case.get('name')!r} lacks {sorted(missing)}")
            cases.append(case)
    if selected:
        known = {c["name"] for c in cases}
        unknown = [s for s in selected if s not in known]
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; known: {sorted(known)}")
        cases = [c for c in cases if c["name"] in selected]
    return cases


def time_per_call(func, img, budget_s: float, min_repeats: int = 3) -> tuple[float, float]:
    """(median, min) wall time of func(img) in ms over enough repeats to fill about budget_s."""
    t0 = time.perf_counter()
    func(img)
    first = time.perf_counter() - t0
    repeats = max(min_repeats, int(budget_s / max(first, 1e-6)))
    repeats = min(repeats, 10_000)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func(img)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def run(cases: list[dict], sizes: list[str], budget_s: float) -> list[dict]:
    images = {s: make_image(s) for s in sizes}
    rows = []
    for case in cases:
        # JIT warm-up: the first call ever, on the smallest image, measured on its own.
        smallest = images[sizes[0]]
        t0 = time.perf_counter()
        case["ours"](smallest)
        first_call_ms = (time.perf_counter() - t0) * 1e3
        ref_sizes = case.get("sizes")
        for size in sizes:
            img = images[size]
            ours_ms, ours_min = time_per_call(case["ours"], img, budget_s)
            value = case["ours"](img)
            ref_ms = ref_min = None
            ref_value = None
            if ref_sizes is None or size in ref_sizes:
                case["reference"](img)  # the reference's own warm-up
                ref_ms, ref_min = time_per_call(case["reference"], img, budget_s)
                ref_value = case["reference"](img)
            row = {
                "case": case["name"],
                "size": size,
                "ours_ms": round(ours_ms, 4),
                "reference": case["reference_name"],
                "reference_ms": None if ref_ms is None else round(ref_ms, 4),
                "ratio_ref_over_ours": None if ref_ms is None else round(ref_ms / ours_ms, 2),
                "ours_min_ms": round(ours_min, 4),
                "reference_min_ms": None if ref_min is None else round(ref_min, 4),
                "ratio_of_mins": None if ref_min is None else round(ref_min / ours_min, 2),
                "ours_value": _plain(value),
                "reference_value": _plain(ref_value),
                "first_call_ms": round(first_call_ms, 1),
            }
            rows.append(row)
            print(_format_row(row), flush=True)
    return rows


def _plain(v):
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return f"array{v.shape}"
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


HEADER = (
    f"{'case':<22} {'size':>9} {'ours ms':>9} {'ref ms':>10} {'ref/ours':>8} "
    f"{'(of mins)':>9}  {'reference':<37} {'JIT ms':>7}"
)


def _format_row(r: dict) -> str:
    ref = "-" if r["reference_ms"] is None else f"{r['reference_ms']:.3f}"
    ratio = "-" if r["ratio_ref_over_ours"] is None else f"{r['ratio_ref_over_ours']:.2f}"
    rmin = "-" if r["ratio_of_mins"] is None else f"{r['ratio_of_mins']:.2f}"
    return (
        f"{r['case']:<22} {r['size']:>9} {r['ours_ms']:>9.3f} {ref:>10} {ratio:>8} "
        f"{rmin:>9}  {r['reference']:<37} {r['first_call_ms']:>7.0f}"
    )


def import_cost_s() -> dict:
    """Import + first-call cost of each public statistic, each in a fresh interpreter."""
    import subprocess

    code = (
        "import os, time\n"
        "for v in ('NUMBA_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):\n"
        "    os.environ[v] = '1'\n"
        "t0 = time.perf_counter(); import numpy as np; import imstats, imstats.registry\n"
        "imstats.registry.available()\n"
        "t1 = time.perf_counter(); img = np.random.default_rng(0).integers(0, 256, (64, 64, 3))"
        ".astype(np.uint8)\n"
        "r = {'import_s': t1 - t0}\n"
        "for name in {names}:\n"
        "    t = time.perf_counter(); getattr(imstats, name)(img); "
        "r[name + '_first_call_s'] = time.perf_counter() - t\n"
        "print(r)\n"
    )
    names = ["entropy", "dct_coefficients"]
    try:
        import imstats

        names = [n for n in ("entropy", "segment_count", "dct_coefficients") if _has(imstats, n)]
    except Exception:  # pragma: no cover
        pass
    out = subprocess.run(
        [sys.executable, "-c", code.replace("{names}", repr(names))],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    import ast

    return {k: round(v, 3) for k, v in ast.literal_eval(out.stdout.strip()).items()}


def _has(module, name: str) -> bool:
    try:
        getattr(module, name)
        return True
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--sizes", help=f"comma-separated W x H sizes (default: {','.join(SIZES)})")
    parser.add_argument("--quick", action="store_true", help="about 0.1 s per measurement")
    parser.add_argument("--out", default="bench-results", help="output folder for CSV and JSON")
    parser.add_argument("--no-import-cost", action="store_true", help="skip the import timing")
    args = parser.parse_args(argv)

    sizes = args.sizes.split(",") if args.sizes else list(SIZES)
    for s in sizes:
        parse_size(s)
    cases = load_cases(args.cases.split(",") if args.cases else None)
    budget = 0.1 if args.quick else 0.5

    machine = f"{cpu_model()}, {os.cpu_count()} CPUs visible"
    print(
        f"one core (NUMBA/OMP/OPENBLAS threads = 1); {machine}; Python {platform.python_version()}"
    )
    print(HEADER)
    rows = run(cases, sizes, budget)
    extra = {} if args.no_import_cost else import_cost_s()
    if extra:
        print("import + first call (fresh process, 64x64 RGB):", extra)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_stats.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["case"])
        writer.writeheader()
        writer.writerows(rows)
    meta = {"machine": machine, "python": platform.python_version(), "threads": 1}
    with open(out / "bench_stats.json", "w") as fh:
        json.dump({"meta": meta, "import_cost": extra, "rows": rows}, fh, indent=1)
    print(f"wrote {out / 'bench_stats.csv'} and {out / 'bench_stats.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
