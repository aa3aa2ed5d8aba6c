"""The end-to-end demo, small: 2 models, 2 epochs, two statistics, on the embedded sample."""

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

import agreement
from cli.agreement_cli import main


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--models", "2", "--epochs", "2", "--workers", "1"]
    args += ["--stats", "entropy,dct_coefficients", "--n-boot", "50"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "rho" in res.output and "report:" in res.output

    logs = agreement.load_log(out / "run")
    assert logs["train"].correct.shape == (2, 2, 3000)
    assert logs["test"].correct.shape == (2, 2, 1000)
    stats = pq.read_table(out / "run" / "stats.parquet")
    assert stats.num_rows == 4000 and stats.column("error").null_count == 4000
    # the stats table joins every logged example, by id
    assert set(stats.column("id").to_pylist()) == set(logs["train"].ids) | set(logs["test"].ids)

    curves = pq.read_table(out / "run" / "analysis" / "curves.parquet")
    test = curves.filter(np.asarray(curves.column("split").to_pylist()) == "test")
    acc = np.asarray(test.column("accuracy_mean"))
    # the recomputed accuracy from the log equals the table's
    np.testing.assert_allclose(acc, 100 * logs["test"].correct.mean(axis=2).mean(axis=0))
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "run" / "analysis" / "figures" / "test_agreement_entropy.png").exists()

    # running it again resumes: nothing is retrained, the same table comes back
    res2 = CliRunner().invoke(main, [*args, "-q"])
    assert res2.exit_code == 0, res2.output
    assert res2.stderr == "" and "report:" in res2.stdout  # -q: the results only
    assert pq.read_table(out / "run" / "stats.parquet").equals(stats)
