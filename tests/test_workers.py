"""The one ``workers`` rule (imstats.workers.resolve_workers) and its users."""

from __future__ import annotations

import numpy as np
import pytest

import imstats
import tests.engine_stats  # noqa: F401  (registers the test statistics)
from imstats.workers import cpu_count, resolve_workers


def test_none_and_zero_mean_one_per_cpu_capped_at_the_tasks():
    assert resolve_workers(None) == cpu_count() == resolve_workers(0)
    assert resolve_workers(0, tasks=1) == 1
    assert resolve_workers(None, tasks=10**6) == cpu_count()
    assert resolve_workers(0, tasks=0) == 1  # never fewer than one


def test_a_positive_count_is_an_upper_bound():
    assert resolve_workers(1) == 1
    assert resolve_workers(7) == 7
    assert resolve_workers(7, tasks=3) == 3
    assert resolve_workers(np.int64(4)) == 4


def test_negative_and_non_integer_counts_name_the_argument():
    with pytest.raises(ValueError, match=r"--workers must be >= 0 .*got -1"):
        resolve_workers(-1, name="--workers")
    with pytest.raises(TypeError, match=r"workers must be an integer or None; got 2.5"):
        resolve_workers(2.5)
    with pytest.raises(TypeError, match=r"workers must be an integer or None; got True"):
        resolve_workers(True)
    with pytest.raises(TypeError, match=r"got '4'"):
        resolve_workers("4")


def test_compute_applies_the_rule_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"workers must be >= 0 .*got -2"):
        imstats.compute("sample", out=tmp_path / "x.parquet", workers=-2, progress=False)
    assert not list(tmp_path.iterdir())
    # 0 = one per CPU, capped at the single shard: computed in this process, no pool
    images = np.zeros((3, 8, 8), np.uint8)
    t = imstats.compute(images, stats=["test_n_pixels"], workers=0, progress=False)
    assert t.num_rows == 3


def test_demo_applies_the_rule_before_training(tmp_path):
    from agreement.demo import demo

    with pytest.raises(ValueError, match=r"workers must be >= 0 .*got -1"):
        demo(tmp_path / "d", workers=-1, progress=None)
    assert not (tmp_path / "d").exists()


def test_every_workers_option_has_the_same_default_and_accepts_0():
    from click.testing import CliRunner

    from cli.agreement_cli import main as agreement
    from cli.imstats_cli import main as imstats_main

    commands = [
        imstats_main.commands["compute"],
        agreement.commands["demo"],
        agreement.commands["experiment"].commands["curriculum"],
    ]
    for cmd in commands:
        (opt,) = [p for p in cmd.params if p.name == "workers"]
        assert opt.default == 0 and "0 = one per CPU" in opt.help, cmd.name
    r = CliRunner().invoke(agreement, ["demo", "--workers", "-1"])
    assert r.exit_code == 2 and "-1 is not in the range x>=0" in r.output
