"""The HTML report: its content on a real run directory, and its rendering in a browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from agreement import runlog as rl
from agreement.correlate import correlate
from agreement.gallery import load_images, pick_examples, thumbnail_png
from agreement.report import report
from cli.agreement_cli import main
from imstats.dataset.base import get_reader

CHROMIUM = "/usr/bin/chromium"
K = 3


def make_run(
    root: Path,
    *,
    n: int = 60,
    epochs: int = 7,
    logged: np.ndarray | None = None,
    dataset: dict | None = None,
    drop_stats: int = 0,
    seed: int = 0,
    n_boot: int = 50,
) -> Path:
    """A training run on the embedded sample's first n test images, and its analysis.

    The log is synthetic (harder examples learned later); the files are written with the
    trainer's own writers, so load_log, load_metrics and the report read them as a real run.
    """
    reader = get_reader("sample")
    refs = [r for _, r in zip(range(n), reader.examples("test"), strict=False)]
    ids = np.array([r.id for r in refs])
    labels = np.array([r.label for r in refs])
    rng = np.random.default_rng(seed)
    difficulty = rng.uniform(0, epochs + 3, n)
    ep = np.arange(1, epochs + 1)[None, :, None]
    correct = ep >= difficulty[None, None, :] + rng.normal(0, 0.7, (K, 1, n))
    logged = np.ones((K, epochs), bool) if logged is None else logged
    run = root / "run"
    run.mkdir(parents=True)
    rl.write_examples(run, "test", ids, labels, False)
    for k in range(K):
        for t in range(epochs):
            if not logged[k, t]:
                continue
            pred = np.where(correct[k, t], labels, (labels + 1) % 10)
            rl.write_epoch_log(run, "test", k, t + 1, correct[k, t], pred, 10, False)
            acc = float(correct[k, t].mean())
            rl.commit_epoch(
                run,
                k,
                {
                    "epoch": t + 1,
                    "lr": 0.05,
                    "train_loss": 1.0 / (t + 1),
                    "train_accuracy": min(1.0, acc + 0.05),
                    "test_loss": 1.2 / (t + 1),
                    "test_accuracy": acc,
                    "seconds": 1.0,
                },
            )
    desc = dataset or {"dataset": "sample", "root": None, "options": {}}
    preset = {
        "name": "sample",
        "dataset": "sample",
        "arch": "lenet5",
        "input_size": 28,
        "resize": None,
        "epochs": epochs,
        "batch_size": 64,
        "optimizer": "sgd",
        "lr": 0.05,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 0.0005,
        "schedule": "cosine",
        "eta_min": 0.0,
        "random_fraction": 0.0,
    }
    rl.write_json(
        rl.run_json(run),
        {
            "format": rl.FORMAT,
            "settings": {
                "preset": preset,
                "models": K,
                "seed": 7,
                "model_seeds": [11, 22, 33],
                "limit": None,
                "train_eval_pass": False,
            },
            "meta": {
                "dataset": desc,
                "classes": reader.classes(),
                "multilabel": False,
                "splits": {"test": {"split": "test", "n": n}},
                "versions": {"agreement": "0.1.0", "torch": "2.x", "numpy": np.__version__},
                "device": "cpu",
                "created": "2026-01-01T00:00:00+00:00",
            },
        },
    )
    keep = slice(drop_stats, None)
    stats = pa.table(
        {
            "id": ids[keep],
            "split": ["test"] * (n - drop_stats),
            "label": labels[keep],
            "entropy": (difficulty + rng.normal(0, 1.0, n))[keep],
            "segment_count": rng.integers(1, 9, n)[keep],
            "error": pa.nulls(n - drop_stats, pa.string()),
        }
    )
    pq.write_table(stats, run / "stats.parquet")
    correlate(rl.load_log(run), run / "stats.parquet", n_boot=n_boot, out=run / "analysis")
    return run


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("report"))
    page = report(run / "analysis", run / "analysis" / "report.html", n_examples=4)
    return run, page, page.read_text()


class _Outline(HTMLParser):
    """Headings (with ids), tables as rows of cell texts, image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.headings: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h2", "h3", "h4"):
            self._heading = []
        elif tag == "img":
            self.images.append(a.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag in ("h2", "h3", "h4") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)


def _outline(text: str) -> _Outline:
    p = _Outline()
    p.feed(text)
    return p


def _table_with(outline: _Outline, header: str) -> list[list[str]]:
    for t in outline.tables:
        if t and any(header == c for c in t[0]):
            return t
    raise AssertionError(f"no table with a {header!r} column")


def test_report_header_and_sections(sample_run):
    run, page, text = sample_run
    o = _outline(text)
    for section in (
        "warnings",
        "run-details",
        "definitions",
        "curves",
        "correlations",
        "by-epoch",
        "examples",
        "join",
        "files",
    ):
        assert section in o.ids
    kv = {row[0]: row[1] for t in o.tables for row in t if len(row) == 2}
    assert kv["architecture"].startswith("lenet5")
    assert kv["models (K)"] == "3" and kv["epochs"] == "7"
    assert "SGD, learning rate 0.05, momentum 0.9" in kv["optimiser"]
    assert kv["schedule"] == "cosine annealing to 0"
    assert "11, 22, 33" in kv["seeds"] and "base seed 7" in kv["seeds"]
    assert "test: 60 examples" in kv["splits"]
    assert "numpy" in kv["versions"]
    models = _table_with(o, "test accuracy")
    assert [r[0] for r in models[1:4]] == ["0", "1", "2"]
    metrics = rl.load_metrics(run).to_pylist()
    last0 = max((m for m in metrics if m["model"] == 0), key=lambda m: m["epoch"])
    assert models[1][4] == f"{100 * last0['test_accuracy']:.1f} %"
    for words in ("True-positive (TP) agreement", "Lower bound", "Display rule", "Learned epoch"):
        assert words in text
    assert "per_example.parquet" in text
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert all(src.startswith("data:image/png;base64,") for src in o.images)


def test_report_correlation_table_is_sorted_and_readable(sample_run):
    run, _, text = sample_run
    table = _table_with(_outline(text), "ρ")
    head, rows = table[0], table[1:]
    col = head.index("ρ")
    for target in ("learned epoch", "first agreed epoch"):
        rhos = [abs(float(r[col])) for r in rows if r[1] == target and r[col] != "–"]
        assert len(rhos) == 2 and rhos == sorted(rhos, reverse=True)
    names = {r[2] for r in rows}
    assert names == {"mean local entropy (bits)", "segment count (segments)"}
    assert all(re.match(r"\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", r[col + 1]) for r in rows)


def test_report_gallery(sample_run):
    run, _, text = sample_run
    o = _outline(text)
    pe = pq.read_table(run / "analysis" / "per_example.parquet")
    picks = pick_examples(pe, "test", n=4)
    for group in ("first", "last", "never"):
        for i in picks[(group, None)].column("id").to_pylist():
            assert f"title='{i}:" in text
    for heading in ("Learned first (4 shown)", "Learned last (4 shown)", "Never learned (4 shown)"):
        assert heading in o.headings
    per_class = _table_with(o, "learned first")
    assert {r[0] for r in per_class[1:]} <= set(get_reader("sample").classes())
    assert len(per_class) > 3
    # thumbnails are the dataset's pixels
    first = picks[("first", None)].column("id")[0].as_py()
    img = load_images(json.loads((run / "run.json").read_text()), "test", [first]).by_id[first]
    assert base64_of(thumbnail_png(img)) in text
    # captions carry the statistics with units
    assert re.search(r"entropy \d+(\.\d+)?\xa0bits", text) and re.search(r"segments \d+<", text)


def base64_of(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def test_report_warns_in_words(tmp_path):
    logged = np.ones((K, 6), bool)
    logged[2, 4:] = False  # model 2 stopped after epoch 4
    run = make_run(tmp_path, epochs=6, logged=logged, drop_stats=5, n_boot=0)
    text = report(run / "analysis", tmp_path / "r.html", images=False).read_text()
    warn = text[text.index("id='warnings'") : text.index("id='run-details'")]
    assert "epochs 5–6 are partial" in warn
    assert re.search(r"\d+ of 60 examples \(\d+ %\) are never learned", warn)
    assert "5 examples of the log have no row in the statistics table" in warn
    o = _outline(text)
    join = _table_with(o, "test")
    rows = {r[0]: r[1] for r in join}
    assert rows["log examples without statistics"] == "5"
    assert rows["partial epochs"] == "5–6"
    assert "{" not in "".join(r[1] for r in join)  # a table, not JSON


def test_report_dataset_unavailable(tmp_path):
    missing = tmp_path / "no-such-cifar"
    run = make_run(
        tmp_path, dataset={"dataset": "cifar10", "root": str(missing), "options": {}}, n_boot=0
    )
    text = report(run / "analysis", tmp_path / "r.html", n_boot=0).read_text()
    assert "Example images are not shown" in text and "cifar10" in text
    assert "no-such-cifar" in text
    assert "no image" in text  # the groups and statistics are still listed


def test_report_without_run_dir(tmp_path):
    run = make_run(tmp_path, n_boot=0)
    shutil.copytree(run / "analysis", tmp_path / "elsewhere")
    text = report(tmp_path / "elsewhere", tmp_path / "r.html").read_text()
    assert "training run was not found" in text
    assert "Example images are not shown" in text
    with_run = report(tmp_path / "elsewhere", tmp_path / "r2.html", run_dir=run).read_text()
    assert "training run was not found" not in with_run and "lenet5" in with_run


def test_cli_report_and_plot_on_a_run(tmp_path):
    run = make_run(tmp_path, n_boot=0)
    runner = CliRunner()
    result = runner.invoke(main, ["report", str(run), "--examples", "2", "--per-class", "0"])
    assert result.exit_code == 0, result.output
    text = (run / "analysis" / "report.html").read_text()
    assert "Learned first (2 shown)" in text and "Per class" not in text
    out = tmp_path / "figs"
    result = runner.invoke(
        main, ["plot", str(run), "--style", "paper", "--format", "pdf", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "test_agreement_entropy.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "test_by_learned_epoch_segment_count.pdf").exists()
    assert "bootstrap band" not in result.output  # the run's log was found
    result = runner.invoke(main, ["report", str(run), "--run", str(run), "--run", str(run)])
    assert result.exit_code == 1 and "give one --run per DIR (1), got 2" in result.output


def test_commands_document_every_option():
    for name, cmd in main.commands.items():
        if name not in ("plot", "report", "correlate"):
            continue
        assert "Examples:" in cmd.help and "\b" in cmd.help, name
        for p in cmd.params:
            if p.param_type_name == "option" and p.name != "help" and not p.hidden:
                assert p.help, f"agreement {name} {p.opts[0]} has no description"


# ----------------------------------------------------------------- in a browser


def _chromium(*args: str, tmp: Path, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt)")
def test_report_in_a_browser(sample_run, tmp_path):
    from PIL import Image

    _, page, _ = sample_run
    url = page.resolve().as_uri()
    start = time.perf_counter()
    shot = tmp_path / "report.png"
    res = _chromium(
        f"--screenshot={shot}",
        "--window-size=1400,3000",
        "--enable-logging=stderr",
        "--v=0",
        url,
        tmp=tmp_path,
    )
    assert shot.exists(), res.stderr[-2000:]
    errors = [
        line
        for line in res.stderr.splitlines()
        if "Uncaught" in line or ":CONSOLE" in line  # the page has no script: no message
    ]
    assert not errors, errors
    assert shot.stat().st_size > 50_000
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (3000, 1400) and pixels.std() > 20  # not blank
    dom = _chromium("--dump-dom", url, tmp=tmp_path).stdout
    o = _outline(dom)
    assert {"warnings", "run-details", "definitions", "correlations", "examples"} <= set(o.ids)
    assert len(o.images) >= 12 + 6  # figures and thumbnails
    assert time.perf_counter() - start < 20


def test_pick_examples_order_and_thumbnails():
    import io

    from PIL import Image

    t = pa.table(
        {
            "id": list("abcdefg"),
            "split": ["test"] * 6 + ["train"],
            "label": [0, 1, 0, 1, 0, 1, 0],
            "learned_epoch": [1, 1, 3, 3, None, None, 1],
            "mean_correct": [0.5, 0.9, 0.2, 0.6, 0.1, 0.3, 1.0],
        }
    )
    picks = pick_examples(t, "test", n=2)
    got = {k[0]: v.column("id").to_pylist() for k, v in picks.items()}
    assert got == {"first": ["b", "a"], "last": ["c", "d"], "never": ["e", "f"]}
    per_class = pick_examples(t, "test", n=5, by_class=True)
    assert per_class[("first", 0)].column("id").to_pylist() == ["a", "c"]
    assert per_class[("never", 1)].column("id").to_pylist() == ["f"]
    with pytest.raises(ValueError, match="single-label 'label' column"):
        pick_examples(t.drop(["label"]), "test", by_class=True)
    big = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    assert Image.open(io.BytesIO(thumbnail_png(big))).size == (64, 96)
    small = np.zeros((28, 28), np.uint8)
    assert Image.open(io.BytesIO(thumbnail_png(small))).size == (28, 28)


def test_load_images_reports_problems():
    run = {"meta": {"dataset": {"dataset": "no-such-dataset"}, "splits": {}}}
    got = load_images(run, "test", ["x"])
    assert got.problem and "no-such-dataset" in got.problem and not got.by_id
    run = {"meta": {"dataset": {"dataset": "sample", "root": None, "options": {}}}}
    got = load_images(run, "test", ["fashion-mnist/test/3", "fashion-mnist/test/nope"])
    assert got.problem is None and got.missing == ["fashion-mnist/test/nope"]
    assert got.by_id["fashion-mnist/test/3"].shape == (28, 28)
    assert load_images({}, "test", ["x"]).problem.startswith("run.json does not name")


def test_report_short_run_warns_once(tmp_path):
    run = make_run(tmp_path, epochs=3, n_boot=0)
    text = report(run / "analysis", tmp_path / "r.html", images=False, n_boot=0).read_text()
    warn = text[text.index("id='warnings'") : text.index("id='run-details'")]
    assert warn.count("display rule") == 1 and "--all-epochs" in warn
    assert "metric curve of entropy hidden" not in warn  # said once per split, not per figure
