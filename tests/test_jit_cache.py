"""The kernels' on-disk cache, in real processes: concurrency, reuse, corruption, off switch.

Each test starts ``python -c ...`` from the repository root (so this checkout's imstats is
imported) with ``IMSTATS_CACHE_DIR`` pointing at its own folder, and reads Numba's cache
hit and miss counters, which the script prints as JSON on its last line. The kernels of
``dct_matrix`` / ``dct_coefficients`` keep them short: one or two kernels, 1 to 5 s to
compile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imstats.jit as jit

ROOT = Path(__file__).resolve().parents[1]

# Runs before each script: NumbaWarning is an error; `report(**values)` prints the JSON line
# with the values and the cache hits and misses of every imstats kernel that ran.
PRELUDE = """
import json, sys, warnings
import numpy as np
from numba.core.errors import NumbaWarning
warnings.simplefilter("error", NumbaWarning)
import imstats, imstats.jit

def report(**values):
    kernels = {}
    for d in imstats.jit._dispatchers():
        s = d.stats
        hits, misses = sum(s.cache_hits.values()), sum(s.cache_misses.values())
        if hits or misses:
            kernels[d.py_func.__name__] = [hits, misses]
    print(json.dumps({"values": values, "kernels": kernels}))

rgb = np.arange(40 * 48 * 3, dtype=np.uint8).reshape(40, 48, 3)
"""

DCT = "report(u8=imstats.dct_coefficients(rgb), f64=imstats.dct_coefficients(rgb / 255.0))"


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMSTATS_", "NUMBA_"))}
    env["IMSTATS_CACHE_DIR"] = str(cache)
    env.update(extra)
    return env


def _start(code: str, cache: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + code],
        cwd=ROOT,
        env=_env(cache, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Warning" not in err, err
    return json.loads(out.strip().splitlines()[-1])


def run(code: str, cache: Path, **extra: str) -> dict:
    return _finish(_start(code, cache, **extra))


def totals(result: dict) -> tuple[int, int]:
    """(hits, misses) over all kernels."""
    counts = result["kernels"].values()
    return sum(h for h, _ in counts), sum(m for _, m in counts)


@pytest.fixture(scope="module")
def dct_cache(tmp_path_factory) -> tuple[Path, dict]:
    """A cache folder holding the dct_coefficients kernels (uint8 and float64 RGB)."""
    cache = tmp_path_factory.mktemp("dct-cache")
    first = run(DCT, cache)
    assert first["kernels"] == {"_luma_rgb": [0, 2], "_select_threshold": [0, 1]}
    return cache, first


def copy_of(cache: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "cache"
    shutil.copytree(cache, dst)
    return dst


def test_eight_processes_at_once_on_an_empty_cache(tmp_path):
    # Two signatures of one kernel (uint8 and float64 RGB), compiled by 4 processes each at
    # the same time, all writing the same index: stock Numba can cross them up.
    code = "x = rgb if {} % 2 else rgb / 255.0; report(s=float(imstats.dct_matrix(x).sum()))"
    procs = [_start(code.format(i), tmp_path) for i in range(8)]
    results = [_finish(p) for p in procs]
    sums = {r["values"]["s"] for r in results}
    assert len(sums) == 1  # uint8 and float64 give the same coefficients
    assert all(sum(r["kernels"]["_luma_rgb"]) == 1 for r in results)
    code = "f = lambda x: float(imstats.dct_matrix(x).sum()); report(a=f(rgb), b=f(rgb / 255.0))"
    later = run(code, tmp_path)
    assert later["values"]["a"] == later["values"]["b"] == sums.pop()
    assert later["kernels"] == {"_luma_rgb": [2, 0]}  # both signatures loaded, none compiled
    assert not list(tmp_path.rglob("*.tmp.*"))  # no temporary file left behind


def test_a_second_process_loads_the_kernels(dct_cache, tmp_path):
    cache, first = dct_cache
    second = run(DCT, copy_of(cache, tmp_path))
    assert second["values"] == first["values"]
    assert totals(second) == (3, 0)


CORRUPTIONS = {
    "garbage": lambda p: p.write_bytes(os.urandom(300)),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]),
    "empty": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize(
    "index_damage, data_damage", [("garbage", "truncated"), ("truncated", "garbage")]
)
def test_a_corrupt_cache_file_is_compiled_again(dct_cache, tmp_path, index_damage, data_damage):
    cache, first = dct_cache
    cache = copy_of(cache, tmp_path)
    # The index of one kernel, the data files of the other.
    for p in cache.rglob("*_luma_rgb*.nbi"):
        CORRUPTIONS[index_damage](p)
    for p in cache.rglob("*_select_threshold-*.nbc"):
        CORRUPTIONS[data_damage](p)
    again = run(DCT, cache)
    assert again["values"] == first["values"]
    assert again["kernels"]["_luma_rgb"] == [0, 2]
    assert again["kernels"]["_select_threshold"] == [0, 1]
    # ... and written back whole: the next process loads everything.
    assert totals(run(DCT, cache)) == (3, 0)


def test_an_emptied_index_and_a_removed_data_file_are_misses(dct_cache, tmp_path):
    cache, first = dct_cache
    cache = copy_of(cache, tmp_path)
    for p in cache.rglob("*_luma_rgb*.nbi"):
        CORRUPTIONS["empty"](p)
    for p in cache.rglob("*_select_threshold-*.nbc"):
        p.unlink()
    again = run(DCT, cache)
    assert again["values"] == first["values"] and totals(again) == (0, 3)


def test_caching_off_writes_nothing(tmp_path):
    cache = tmp_path / "cache"
    code = (
        "report(d=str(imstats.jit.cache_dir()), warm=imstats.jit.ensure_warm(), "
        "s=float(imstats.dct_matrix(rgb).sum()))"
    )
    off = run(code, cache, IMSTATS_NUMBA_CACHE="0")
    assert off["values"]["d"] == "None" and off["values"]["warm"] is False
    assert off["kernels"] == {"_luma_rgb": [0, 1]}
    assert not cache.exists()


def test_an_unwritable_cache_folder_warns_once_and_still_computes(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = _start("report(s=float(imstats.dct_matrix(rgb).sum()))", blocker / "cache")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    # One warning for the ~60 kernels, each of which tried to attach the cache at import.
    assert err.count("CacheWarning") == 1 and "IMSTATS_CACHE_DIR" in err
    assert json.loads(out.splitlines()[-1])["kernels"] == {"_luma_rgb": [0, 1]}


def test_the_default_folder_follows_the_environment(monkeypatch, tmp_path):
    from imstats._config import cache_root

    monkeypatch.setenv("IMSTATS_CACHE_DIR", str(tmp_path / "own"))
    assert cache_root() == tmp_path / "own"
    monkeypatch.delenv("IMSTATS_CACHE_DIR")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))
    assert cache_root() == tmp_path / "nb" / "imstats"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert cache_root() == tmp_path / "xdg" / "imstats"


def test_ensure_warm_across_processes(dct_cache, tmp_path):
    cache = copy_of(dct_cache[0], tmp_path)
    code = """
before = imstats.jit.is_warm(["dct_coefficients"])
compiled = imstats.jit.ensure_warm(["dct_coefficients"])
report(before=before, compiled=compiled, dct=imstats.jit.is_warm(["dct_coefficients"]),
       entropy=imstats.jit.is_warm(["entropy"]), all=imstats.jit.is_warm(),
       plugin=imstats.jit.is_warm(["no_kernels_here"]))
"""
    first = run(code, cache)["values"]
    # The cache held the uint8 and float64 RGB signatures; the gray ones were compiled.
    assert first == {
        "before": False, "compiled": True, "dct": True,
        "entropy": False, "all": False, "plugin": True,
    }  # fmt: skip
    assert len(list(cache.glob("warm-*.json"))) == 1
    # The next process: warm, decided without importing Numba.
    code = (
        "import json, sys, imstats.jit; w = imstats.jit.ensure_warm(['dct_coefficients']); "
        "print(json.dumps([w, 'numba' in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(cache), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [False, False]
    # Cache files removed behind the marker's back: no longer warm.
    shutil.rmtree(cache / "numba")
    assert run("report(w=imstats.jit.is_warm(['dct_coefficients']))", cache)["values"]["w"] is False


def test_the_marker_is_stale_when_a_kernel_source_changes(monkeypatch, tmp_path):
    source = tmp_path / "kernel.py"
    source.write_text("x = 1\n")
    monkeypatch.setenv("IMSTATS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(jit, "kernel_sources", lambda: [source])
    if jit.cache_dir() is None:
        pytest.skip("IMSTATS_NUMBA_CACHE=0 in this environment")
    assert not jit.is_warm(["dct_coefficients"])
    jit.warmup(["dct_coefficients"])  # in this process: compiled already or loaded
    assert jit.is_warm(["dct_coefficients"]) and not jit.is_warm(["entropy"])
    source.write_text("x = 22\n")  # another size (and mtime)
    assert not jit.is_warm(["dct_coefficients"])
    jit.ensure_warm(["dct_coefficients"])
    assert jit.is_warm(["dct_coefficients"])
    (marker,) = (tmp_path / "cache").glob("warm-*.json")
    marker.write_text("{ not json")
    assert not jit.is_warm(["dct_coefficients"])


def test_warmup_rejects_unknown_statistics():
    with pytest.raises(KeyError, match="unknown statistic 'nope'; known statistics: "):
        jit.warmup(["nope"])
    with pytest.raises(TypeError, match="a list of names"):
        jit.warmup("entropy")


def test_the_warmup_cases_cover_the_registered_statistics():
    from imstats import registry

    builtin = {
        n for n in registry.available() if registry.get(n).func.__module__.startswith("imstats.")
    }
    assert set(jit._cases()) == set(registry.STATISTICS) == builtin  # (tests register others)


@pytest.mark.slow
def test_every_kernel_is_cached_without_numba_warnings():
    # The whole warm-up, twice, in the test session's cache folder (which it warms for the
    # tests that follow): the first run compiles whatever is missing with NumbaWarning as an
    # error, the second must load every signature.
    cache = Path(os.environ["IMSTATS_CACHE_DIR"])
    code = """
records = imstats.jit.warmup()
# Kernels (not inlined helpers) with no entry in the cache for the current sources.
missing = sorted(d.py_func.__name__ for d in imstats.jit._dispatchers()
                 if d.targetoptions.get("inline") != "always"
                 and not d._cache._cache_file._load_index())
report(compiled=sum(r.compiled for r in records), loaded=sum(r.loaded for r in records),
       missing=missing)
"""
    run(code, cache)
    second = run(code, cache)["values"]
    assert second["compiled"] == 0 and second["loaded"] > 30
    # Every kernel the statistics use is cached; these serve only 6-D density queries and
    # filter banks other than the default (cached too when another test has run them).
    assert set(second["missing"]) <= {"_kde_eval_kernel", "_kde_sum6", "_oriented_energy_kernel"}
