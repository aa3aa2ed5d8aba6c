"""agreement.curriculum: pacing closed forms, orderings against a plain sort, curriculum runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import agreement
import agreement.train as train_mod
from agreement import runlog as rl
from agreement.curriculum import (
    export_order,
    make_curriculum,
    pacing_sizes,
    read_order,
)
from agreement.train import RunSettingsError, evaluate_checkpoint, model_seeds, train
from cli.agreement_cli import main

SMALL = dict(models=2, limit=120, epochs=3, batch_size=16, threads=1)
STEPS = math.ceil(120 / 16)  # 8 steps per epoch, the last batch of 8


class Killed(Exception):
    pass


# -- pacing -------------------------------------------------------------------------------


def reference_g(pacing, i, n, start, inc, length):
    """g(i) written out from Hacohen & Weinshall's definitions, one step at a time."""
    if pacing == "exponential":
        f = start * inc ** (i // length)
    elif pacing == "step":
        f = start if i < length else 1.0
    else:
        f = start + (1.0 - start) * i / length
    return min(n, max(1, math.ceil(round(min(f, 1.0) * n, 6))))


@pytest.mark.parametrize("pacing", ["exponential", "step", "linear"])
@pytest.mark.parametrize(
    "n, start, inc, length", [(60000, 0.2, 1.9, 469), (120, 0.1, 2.0, 3), (7, 0.04, 1.5, 1)]
)
def test_pacing_equals_its_closed_form(pacing, n, start, inc, length):
    steps = np.arange(0, 12 * length + 5)
    got = pacing_sizes(pacing, steps, n, start=start, inc=inc, step_length=length)
    assert got.dtype == np.int64
    assert got.tolist() == [reference_g(pacing, int(i), n, start, inc, length) for i in steps]
    assert (np.diff(got) >= 0).all() and got[-1] == n and got.min() >= 1


def test_pacing_values_by_hand():
    g = pacing_sizes(
        "exponential", [0, 9, 10, 19, 20, 29, 30], 60000, start=0.2, inc=1.9, step_length=10
    )
    # 0.2 N, 0.38 N, 0.722 N, then min(1.3718, 1) N; 0.2 * 60000 is 12000 exactly, not 12001
    assert g.tolist() == [12000, 12000, 22800, 22800, 43320, 43320, 60000]
    assert pacing_sizes("step", [0, 4, 5], 100, start=0.3, inc=2, step_length=5).tolist() == [
        30,
        30,
        100,
    ]
    lin = pacing_sizes("linear", [0, 1, 2, 4, 9], 100, start=0.2, inc=1, step_length=4)
    assert lin.tolist() == [20, 40, 60, 100, 100]
    assert pacing_sizes("exponential", 0, 10, start=1e-6, inc=2, step_length=1).tolist() == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(pacing="cubic"), "pacing must be one of exponential, step, linear"),
        (dict(start=0.0), r"start .* must be in \(0, 1\]"),
        (dict(start=1.5), r"start .* must be in \(0, 1\]"),
        (dict(inc=1.0), "inc .* must be > 1"),
        (dict(step_length=0), "step_length must be an integer >= 1"),
        (dict(step_length=2.5), "step_length must be an integer >= 1"),
    ],
)
def test_bad_pacing_parameters(kwargs, match):
    args = dict(pacing="exponential", start=0.2, inc=1.9, step_length=3) | kwargs
    pacing = args.pop("pacing")
    with pytest.raises(ValueError, match=match):
        pacing_sizes(pacing, [0, 1], 10, **args)


# -- orderings ----------------------------------------------------------------------------


def naive_average_ranks(key):
    """0-based average ranks by counting: (#smaller) + (#equal - 1) / 2."""
    return [sum(k < x for k in key) + (sum(k == x for k in key) - 1) / 2 for x in key]


def naive_tie_keys(ids, seed):
    perm = np.random.default_rng(seed).permutation(len(ids))
    return {i: int(perm[j]) for j, i in enumerate(sorted(ids))}


def naive_key(value, ascending):
    """Missing (None/NaN) is larger than every value."""
    v = math.inf if value is None or value != value else value
    return v if ascending else -v


def naive_order(rows, by, seed):
    """Plain sorted() over (score, tie-break) with rows as dicts; by = [(column, asc)]."""
    ids = [r["id"] for r in rows]
    tie = naive_tie_keys(ids, seed)
    if len(by) == 1:
        name, asc = by[0]
        key = {r["id"]: naive_key(r[name], asc) for r in rows}
    else:
        per_col = [naive_average_ranks([naive_key(r[c], a) for r in rows]) for c, a in by]
        key = {i: sum(col[j] for col in per_col) / len(by) for j, i in enumerate(ids)}
    return sorted(ids, key=lambda i: (key[i], tie[i])), key


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    entropy = rng.integers(0, 5, n).astype(float)  # many ties
    entropy[rng.choice(n, 3, replace=False)] = np.nan
    learned = rng.integers(1, 4, n).astype(object)
    learned[rng.choice(n, 6, replace=False)] = None  # never learned
    ids = [f"ds/train/{i}" for i in rng.permutation(n)]
    return pa.table(
        {
            "id": ids,
            "split": ["train"] * n,
            "entropy": entropy,
            "learned_epoch": pa.array(learned.tolist(), pa.int64()),
            "dct_coefficients": rng.integers(0, 3, n).astype(float),
        }
    )


@pytest.mark.parametrize(
    "by",
    [
        ["entropy"],
        ["entropy:desc"],
        ["learned_epoch"],
        ["learned_epoch:desc"],
        ["entropy:asc", "learned_epoch:asc"],
        ["entropy:desc", "learned_epoch:asc", "dct_coefficients:desc"],
    ],
)
@pytest.mark.parametrize("seed", [0, 5])
def test_export_matches_a_plain_sort_ties_included(by, seed):
    table = _table(seed=seed)
    got = export_order(table, by, seed=seed)
    parsed = [(b.split(":")[0], not b.endswith(":desc")) for b in by]
    ref_ids, ref_key = naive_order(table.to_pylist(), parsed, seed)
    assert got.column("id").to_pylist() == ref_ids
    assert got.column("rank").to_pylist() == list(range(len(ref_ids)))
    assert got.schema.names == ["id", "score", "rank"]
    scores = got.column("score").to_pylist()
    if len(by) == 1:
        raw = dict(zip(table["id"].to_pylist(), table[parsed[0][0]].to_pylist(), strict=True))
        want = [None if raw[i] is None or raw[i] != raw[i] else float(raw[i]) for i in ref_ids]
        assert scores == want
    else:
        assert scores == pytest.approx([ref_key[i] for i in ref_ids])
    meta = json.loads(got.schema.metadata[b"curriculum"])
    assert [b["column"] for b in meta["by"]] == [c for c, _ in parsed]
    assert [b["direction"] for b in meta["by"]] == [
        "ascending" if a else "descending" for _, a in parsed
    ]
    assert meta["seed"] == seed and meta["split"] == "train" and meta["n"] == 40


def test_export_does_not_depend_on_row_order_and_writes_parquet(tmp_path):
    table = _table()
    shuffled = table.take(np.random.default_rng(1).permutation(len(table)))
    a = export_order(table, ["entropy", "learned_epoch:desc"], seed=3)
    b = export_order(shuffled, ["entropy", "learned_epoch:desc"], seed=3, out=tmp_path / "o.pq")
    assert a.equals(b)
    back = pq.read_table(tmp_path / "o.pq")
    assert back.equals(a) and back.schema.metadata == a.schema.metadata
    ids, meta = read_order(tmp_path / "o.pq")
    assert ids.tolist() == a.column("id").to_pylist() and meta["format"].startswith("agreement")
    # another seed changes only the order within ties
    c = export_order(table, ["entropy", "learned_epoch:desc"], seed=4)
    assert c.column("score").to_pylist() == a.column("score").to_pylist()
    assert c.column("id").to_pylist() != a.column("id").to_pylist()


def test_export_ascending_default_and_split_filter():
    table = _table()
    other = pa.table(
        {
            "id": ["ds/test/0"],
            "split": ["test"],
            "entropy": [0.0],
            "learned_epoch": pa.array([1], pa.int64()),
            "dct_coefficients": [0.0],
        }
    )
    both = pa.concat_tables([table, other])
    desc = export_order(both, "entropy", ascending=False)
    assert desc.equals(export_order(table, "entropy:desc"))
    assert "ds/test/0" not in desc.column("id").to_pylist()
    assert export_order(both, "entropy", split="test").column("id").to_pylist() == ["ds/test/0"]


def test_export_errors():
    table = _table()
    with pytest.raises(ValueError, match="no source has a column 'nope'.*'entropy'"):
        export_order(table, "nope")
    with pytest.raises(ValueError, match="direction after ':' must be asc or desc"):
        export_order(table, "entropy:up")
    with pytest.raises(ValueError, match="names a column twice"):
        export_order(table, ["entropy", "entropy:desc"])
    with pytest.raises(TypeError, match="column 'kind' must be numeric to order by"):
        export_order(table.append_column("kind", pa.array(["x"] * 40)), "kind")
    with pytest.raises(ValueError, match="repeats ids"):
        export_order(pa.concat_tables([table, table.slice(0, 2)]), "entropy")
    with pytest.raises(ValueError, match=r"different examples: 1 ids .* \(e.g. \['ds/train/"):
        export_order([table, table.slice(1)], ["entropy", "dct_coefficients"])
    with pytest.raises(ValueError, match="does not exist"):
        export_order("/no/such/table.parquet", "entropy")


# -- curriculum runs --------------------------------------------------------------------


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    """A plain run (its learned epochs) and an ordering exported from it."""
    root = tmp_path_factory.mktemp("curr")
    run = train("sample", out=root / "prior", seed=1000, **SMALL)
    order = root / "order.parquet"
    export_order(run, "learned_epoch", out=order)
    return run, order


@pytest.fixture(scope="module")
def curr_run(prior, tmp_path_factory):
    out = tmp_path_factory.mktemp("curr") / "run"
    train(
        "sample",
        out=out,
        curriculum=prior[1],
        pacing="exponential",
        start=0.2,
        inc=2.0,
        step_length=3,
        keep_checkpoints=True,
        **SMALL,
    )
    return out


def test_export_from_a_run_puts_never_learned_last(prior):
    run, order = prior
    per = agreement.per_example(agreement.load_log(run, ["train"]), "train").to_pylist()
    learned = {r["id"]: r["learned_epoch"] for r in per}
    ids, _ = read_order(order)
    key = [math.inf if learned[i] is None else learned[i] for i in ids]
    assert key == sorted(key) and math.inf in key  # a few are never learned, all last
    meta = json.loads(pq.read_table(order).schema.metadata[b"curriculum"])
    assert meta["sources"] == [{"path": str(run), "kind": "run"}]


def _recording(monkeypatch):
    """Record the batches of each training pass (test only: wraps train.batches)."""
    seen = []
    real = train_mod.batches

    def batches(*args, plan=None, **kwargs):
        if not kwargs["train"]:
            yield from real(*args, plan=plan, **kwargs)
            return
        assert plan is not None
        seen.append((kwargs["seed"], kwargs["epoch"], [np.asarray(p) for p in plan]))
        for (x, pos), want in zip(real(*args, plan=plan, **kwargs), plan, strict=True):
            # what the network is fed is what the sampler drew
            assert pos.tolist() == np.asarray(want).tolist() and len(x) == len(pos)
            yield x, pos

    monkeypatch.setattr(train_mod, "batches", batches)
    return seen


@pytest.mark.parametrize("anti", [False, True], ids=["curriculum", "anti"])
def test_every_batch_is_drawn_from_the_allowed_prefix(prior, tmp_path, monkeypatch, anti):
    _, order = prior
    seen = _recording(monkeypatch)
    run = train(
        "sample",
        out=tmp_path,
        curriculum=order,
        start=0.1,
        inc=2.0,
        step_length=2,
        anti=anti,
        **SMALL,
    )
    ids, _ = read_order(order)
    if anti:
        ids = ids[::-1]
    position = {
        i: p for p, i in enumerate(pq.read_table(rl.examples_path(run, "train"))["id"].to_pylist())
    }
    ranked = np.array([position[i] for i in ids])  # positions, easiest (or hardest) first
    sizes = [16] * 7 + [8]
    seeds = model_seeds(0, 2)
    assert [(s, e) for s, e, _ in seen] == [(s, e) for s in seeds for e in (1, 2, 3)]
    for _, epoch, plan in seen:
        assert len(plan) == STEPS
        for j, pos in enumerate(plan):
            i = (epoch - 1) * STEPS + j
            g = reference_g("exponential", i, 120, 0.1, 2.0, 2)
            assert len(pos) == min(sizes[j], g) and len(set(pos.tolist())) == len(pos)
            assert set(pos.tolist()) <= set(ranked[:g].tolist()), (epoch, j, g)
    assert seen[0][2][0].size == 12  # the first batch: all of the 12 available
    # the whole split is logged every epoch, for both splits
    log = agreement.load_log(run)
    assert log["train"].correct.shape == (2, 3, 120) and log["train"].logged.all()


def test_the_pacing_log_is_checkable_from_the_run_dir(curr_run, prior):
    settings = rl.load_run(curr_run)["settings"]
    cur = settings["curriculum"]
    assert cur == {
        "order": "file",
        "sha256": cur["sha256"],
        "anti": False,
        "pacing": "exponential",
        "start": 0.2,
        "inc": 2.0,
        "step_length": 3,
    }
    assert settings["train_eval_pass"] is True
    pacing = pq.read_table(curr_run / "curriculum" / "pacing.parquet").to_pydict()
    assert pacing["step"] == list(range(3 * STEPS))
    assert pacing["epoch"] == [s // STEPS + 1 for s in range(3 * STEPS)]
    assert pacing["available"] == [
        reference_g("exponential", s, 120, 0.2, 2.0, 3) for s in range(3 * STEPS)
    ]
    avail = pq.read_table(curr_run / "curriculum" / "available.parquet").to_pydict()
    ids, _ = read_order(prior[1])
    assert avail["id"] == ids.tolist() and avail["rank"] == list(range(120))
    for r, step, epoch in zip(
        avail["rank"], avail["first_step"], avail["first_epoch"], strict=True
    ):
        assert pacing["available"][step] > r and (step == 0 or pacing["available"][step - 1] <= r)
        assert epoch == step // STEPS + 1


def test_train_log_is_the_clean_eval_pass_of_the_whole_split(curr_run):
    log = agreement.load_log(curr_run)["train"]
    for k, epoch in ((0, 1), (1, 3)):
        assert np.array_equal(
            log.correct[k, epoch - 1], evaluate_checkpoint(curr_run, k, epoch, "train")
        )


@pytest.mark.parametrize(
    "kill_at", [(0, 2, "after_log"), (1, 1, "after_commit")], ids=["after-log", "after-commit"]
)
def test_a_curriculum_run_resumes_after_a_kill_with_identical_logs(
    prior, curr_run, tmp_path, kill_at
):
    def hook(k, epoch, stage):
        if (k, epoch, stage) == kill_at:
            raise Killed

    kw = dict(curriculum=prior[1], pacing="exponential", start=0.2, inc=2.0, step_length=3)
    with pytest.raises(Killed):
        train("sample", out=tmp_path, hook=hook, **kw, **SMALL)
    train("sample", out=tmp_path, **kw, **SMALL)
    a, b = agreement.load_log(tmp_path), agreement.load_log(curr_run)
    for split in ("train", "test"):
        assert np.array_equal(a[split].correct, b[split].correct)
        assert np.array_equal(a[split].pred, b[split].pred)
    ma = agreement.load_metrics(tmp_path).drop_columns(["seconds"])
    mb = agreement.load_metrics(curr_run).drop_columns(["seconds"])
    assert ma.equals(mb)


def test_a_different_curriculum_is_refused_on_resume(curr_run, prior, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(curr_run, out)
    kw = dict(curriculum=prior[1], pacing="exponential", start=0.2, inc=2.0, step_length=3)
    with pytest.raises(RunSettingsError, match="curriculum.*'anti': False.*'anti': True"):
        train("sample", out=out, **{**kw, "anti": True}, **SMALL)
    with pytest.raises(RunSettingsError, match="curriculum.*'pacing': 'exponential'.*'linear'"):
        train("sample", out=out, **{**kw, "pacing": "linear"}, **SMALL)
    other = tmp_path / "other.parquet"
    export_order(prior[0], "learned_epoch", seed=9, out=other)
    with pytest.raises(RunSettingsError, match="curriculum.*sha256"):
        train("sample", out=out, **{**kw, "curriculum": other}, **SMALL)
    with pytest.raises(RunSettingsError, match="curriculum"):
        train("sample", out=out, **SMALL)  # a plain run in a curriculum run's folder
    # the same ordering from another file, same settings: resumes (nothing to do)
    same = tmp_path / "same.parquet"
    same.write_bytes(prior[1].read_bytes())
    train("sample", out=out, **{**kw, "curriculum": same}, **SMALL)


def test_random_curriculum_and_anti(tmp_path):
    kw = dict(**SMALL, curriculum="random", step_length=2)
    a = train("sample", out=tmp_path / "a", **kw)
    b = train("sample", out=tmp_path / "b", **{**kw, "epochs": 1})
    c = train("sample", out=tmp_path / "c", seed=1, **{**kw, "epochs": 1})
    d = train("sample", out=tmp_path / "d", anti=True, **{**kw, "epochs": 1})

    def ids(run):
        return pq.read_table(run / "curriculum" / "available.parquet")["id"].to_pylist()

    train_ids = pq.read_table(rl.examples_path(a, "train"))["id"].to_pylist()
    assert sorted(ids(a)) == sorted(train_ids) and ids(a) != train_ids  # a permutation
    assert ids(a) == ids(b) != ids(c)  # drawn from the base seed
    assert ids(d) == ids(a)[::-1]  # anti reverses it
    sa, sd = (rl.load_run(r)["settings"]["curriculum"] for r in (a, d))
    assert sa["order"] == "random" and sa["sha256"] == sd["sha256"] and sd["anti"]


def test_ids_that_do_not_match_the_split_are_a_clear_error(prior, tmp_path):
    ids, _ = read_order(prior[1])
    train_ids = np.asarray(ids)
    bad = pa.table(
        {
            "id": np.append(train_ids[3:], ["x/1", "x/2"]),
            "score": np.zeros(119),
            "rank": np.arange(119),
        }
    )
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(
        ValueError,
        match=r"2 of its 119 ids are not in the training split "
        r"\(e.g. \['x/1', 'x/2'\]\); 3 of the 120 training ids are missing",
    ):
        make_curriculum(
            tmp_path / "bad.parquet",
            train_ids,
            seed=0,
            pacing="step",
            start=0.5,
            inc=2,
            step_length=1,
            anti=False,
            batch_size=16,
            epochs=1,
        )
    with pytest.raises(ValueError, match="does not match the training split"):
        train("sample", out=tmp_path / "r", curriculum=tmp_path / "bad.parquet", **SMALL)
    assert not (tmp_path / "r" / "run.json").exists()
    pq.write_table(
        bad.set_column(2, "rank", pa.array(np.zeros(119, np.int64))), tmp_path / "ranks.parquet"
    )
    with pytest.raises(ValueError, match=r"ranks .* must be 0..118, each once"):
        read_order(tmp_path / "ranks.parquet")
    with pytest.raises(ValueError, match="not supported in batched mode"):
        train("sample", out=tmp_path / "r", curriculum="random", batched=True, **SMALL)


def test_cli_curriculum_and_train(prior, tmp_path):
    run, _ = prior
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(
        main,
        [
            "curriculum",
            str(run),
            "--by",
            "learned_epoch",
            "--by",
            "mean_correct:desc",
            "--out",
            str(out),
            "--seed",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "120 examples ordered by learned_epoch, mean_correct:desc" in res.output
    assert pq.read_table(out).equals(
        export_order(run, ["learned_epoch", "mean_correct:desc"], seed=2)
    )
    args = [
        "train",
        "--preset",
        "sample",
        "--limit",
        "120",
        "--epochs",
        "1",
        "-k",
        "1",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "-q",
    ]
    res = CliRunner().invoke(
        main,
        [
            *args,
            "--out",
            str(tmp_path / "r"),
            "--curriculum",
            str(out),
            "--pacing",
            "linear",
            "--start",
            "0.5",
            "--step-length",
            "4",
            "--anti",
        ],
    )
    assert res.exit_code == 0, res.output
    cur = rl.load_run(tmp_path / "r")["settings"]["curriculum"]
    assert (cur["pacing"], cur["start"], cur["step_length"], cur["anti"]) == (
        "linear",
        0.5,
        4,
        True,
    )
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "s"), "--anti"])
    assert res.exit_code == 2 and "--anti need(s) --curriculum" in res.output
    res = CliRunner().invoke(main, ["curriculum", str(run), "--by", "nope", "--out", str(out)])
    assert res.exit_code == 1 and "no source has a column 'nope'" in res.output


@pytest.mark.slow
def test_a_curriculum_run_on_a_dask_cluster_equals_the_sequential_one(prior, curr_run, tmp_path):
    pytest.importorskip("distributed")
    kw = dict(curriculum=prior[1], pacing="exponential", start=0.2, inc=2.0, step_length=3)
    run = train("sample", out=tmp_path / "run", scheduler="local:1", **kw, **SMALL)
    assert rl.load_run(run)["settings"] == rl.load_run(curr_run)["settings"]
    for f in sorted(p.relative_to(curr_run) for p in curr_run.rglob("*.parquet")):
        a, b = pq.read_table(run / f), pq.read_table(curr_run / f)
        if f.parts[0] == "metrics":
            a, b = a.drop(["seconds"]), b.drop(["seconds"])
        assert a.equals(b), f
