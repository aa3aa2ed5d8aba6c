"""``imstats`` CLI through click's CliRunner: exit codes and files written."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import imstats
import tests.engine_stats  # noqa: F401  (test statistics)
from cli._pairs import format_value
from cli.imstats_cli import main
from imstats.engine import run_metadata


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_compute_writes_the_table(tmp_path):
    out = tmp_path / "s.parquet"
    r = invoke(
        "compute", "sample", "--out", str(out), "--stats", "test_mean_luma,test_seeded",
        "--limit", "12", "--split", "test", "--resize", "10", "--seed", "3",
        "--param", "test_mean_luma.offset=1.5", "--workers", "1", "--quiet",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.output == f"{out}: 12 rows, 0 with errors\n"  # --quiet: only the result
    t = imstats.read(out)
    assert t.num_rows == 12 and set(t.column("split").to_pylist()) == {"test"}
    m = run_metadata(t)
    assert m["statistics"][0]["params"] == {"offset": 1.5}
    assert m["statistics"][1]["params"] == {"seed": 3} and m["resize"] == 10


def test_compute_reader_option(tmp_path):
    root = tmp_path / "imgs"
    (root / "x").mkdir(parents=True)
    Image.new("L", (5, 5), 3).save(root / "x" / "a.png")
    out = tmp_path / "f.parquet"
    r = invoke(
        "compute", "folder", "--root", str(root), "--out", str(out),
        "--stats", "test_n_pixels", "--option", "max_pixels=10", "--no-progress",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "decompression-bomb limit of 10" in imstats.read(out).column("error")[0].as_py()


@pytest.mark.parametrize(
    "args, match",
    [
        (["compute", "imagenet-21k"], "unknown dataset 'imagenet-21k'; known datasets: cifar10"),
        (["compute", "voc", "--root", "/nonexistent/voc"], "'/nonexistent/voc' for 'voc' does not"),
        (["compute", "sample", "--stats", "nope"], "unknown statistic 'nope'"),
        (["compute", "sample", "--stats", "test_n_pixels", "--param", "x"], "KEY=VALUE"),
        (["compute", "sample", "--stats", "test_n_pixels", "--param", "test_n_pixels.k=1"],
         "has no parameter 'k'"),
        (["compute", "sample", "--split", "val", "--stats", "test_n_pixels"], "choose one of"),
    ],
)  # fmt: skip
def test_compute_usage_errors_exit_2(args, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(*args)
    assert r.exit_code == 2
    assert match in r.output


def test_missing_default_root_lists_places(tmp_path, monkeypatch):
    monkeypatch.setenv("IMSTATS_DATA", str(tmp_path))
    r = invoke("compute", "kth-tips2b")
    assert r.exit_code == 2
    assert str(tmp_path / "kth-tips2b") in r.output and "Pass --root DIR" in r.output


def test_compute_other_run_exits_1_and_force(tmp_path):
    out = str(tmp_path / "o.parquet")
    base = ["compute", "sample", "--out", out, "--limit", "5", "-q"]
    assert invoke(*base, "--stats", "test_n_pixels").exit_code == 0
    r = invoke(*base, "--stats", "test_mean_luma")
    assert r.exit_code == 1 and "already exists" in r.output
    assert invoke(*base, "--stats", "test_mean_luma", "--force").exit_code == 0
    assert "test_mean_luma" in imstats.read(out).column_names


def test_a_second_run_into_a_finished_out_says_so(tmp_path):
    out = tmp_path / "o.parquet"
    args = ["compute", "sample", "--out", str(out), "--limit", "6", "--stats", "test_n_pixels"]
    assert invoke(*args, "-q").output == f"{out}: 6 rows, 0 with errors\n"
    stamp = out.stat().st_mtime_ns
    r = invoke(*args, "-q")
    assert r.exit_code == 0 and r.output == f"{out} is complete (6 rows); nothing to do\n"
    assert out.stat().st_mtime_ns == stamp  # not rewritten
    r = invoke(*args, "--force", "-q")  # a forced run rewrites it and says what it wrote
    assert r.output == f"{out}: 6 rows, 0 with errors\n" and out.stat().st_mtime_ns != stamp


def test_progress_flags_quiet_and_the_hidden_old_spelling(tmp_path):
    args = ["compute", "sample", "--limit", "3", "--stats", "test_n_pixels"]
    loud = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a.pq")])
    assert loud.exit_code == 0 and "imstats: wrote" in loud.stderr
    for flag in ("-q", "--quiet", "--no-progress"):
        r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / f"{flag}.pq"), flag])
        assert r.exit_code == 0 and r.stderr == "", (flag, r.stderr)
    r = invoke(*args, "--out", str(tmp_path / "b.pq"), "--quiet", "--progress")
    assert r.exit_code == 2 and "give --quiet only" in r.output
    help_text = invoke("compute", "--help").output
    assert "--quiet" in help_text and "--progress" not in help_text


def test_datasets_lists_readers():
    r = invoke("datasets")
    assert r.exit_code == 0
    names = [line.split()[0] for line in r.output.splitlines()]
    assert names == sorted(names) and {"imagenet", "voc", "cifar10", "sample"} <= set(names)


def test_show_rejects_a_non_image(tmp_path):
    p = tmp_path / "x.png"
    p.write_text("text")
    r = invoke("show", str(p), "--out", str(tmp_path / "f.png"))
    assert r.exit_code == 2 and "not an image file" in r.output


def test_show_draws_the_figure(tmp_path):
    import skimage.data

    img = tmp_path / "coffee.png"
    Image.fromarray(skimage.data.coffee()[100:164, 200:280]).save(img)
    out = tmp_path / "fig.png"
    r = invoke("show", str(img), "--out", str(out), "--seed", "1")
    assert r.exit_code == 0, r.output
    fig = np.asarray(Image.open(out))
    assert fig.shape[1] > 3 * fig.shape[0]  # five panels side by side
    from imstats.show import _panel_data

    panels = _panel_data(np.asarray(Image.open(img)), seed=1)
    assert [type(a).__name__ for _, a, _ in panels] == ["ndarray"] * 5
    assert panels[1][0] == f"entropy {imstats.entropy(np.asarray(Image.open(img))):.3f} bits"


def test_relevant_dct_mask_counts_the_fewest_coefficients():
    from imstats.show import relevant_dct_mask

    c = np.array([[10.0, 0.0], [0.1, -3.0]])
    # norm of all: sqrt(109.01); top 1: 10 (ratio 0.958); top 2: sqrt(109) (ratio 0.99995)
    assert relevant_dct_mask(c).tolist() == [[True, False], [False, True]]
    assert relevant_dct_mask(c, threshold=0.99999).tolist() == [[True, False], [True, True]]
    assert relevant_dct_mask(c, threshold=0.9).tolist() == [[True, False], [False, False]]
    assert not relevant_dct_mask(np.zeros((2, 2))).any()


def test_stats_command_lists_every_statistic_with_its_parameters():
    from imstats import registry

    r = CliRunner().invoke(main, ["stats"])
    assert r.exit_code == 0
    for name in registry.available():
        st = registry.get(name)
        assert f"{name}: " in r.output
        for key, default in st.defaults.items():
            opt = f"--param {name}.{key}={format_value(default)}"
            assert any(ln.strip().split("  ")[0] == opt for ln in r.output.splitlines()), opt
    assert "entropy (double); --resize applies: yes" in r.output
