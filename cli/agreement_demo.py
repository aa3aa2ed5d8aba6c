"""``agreement demo``: the whole pipeline on the embedded sample data (thin click command)."""

from __future__ import annotations

from pathlib import Path

import click

from cli._options import workers_option


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Output folder; re-running resumes.",
)
@click.option(
    "--models",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="K, the number of classifiers trained.",
)
@click.option(
    "--epochs",
    default=None,
    type=click.IntRange(min=1),
    help="Training epochs (default: the sample preset's).",
)
@workers_option(" for the statistics")
@click.option(
    "--stats",
    default=None,
    help="Comma-separated statistic names, as for `imstats compute` (default: all four).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the training run, the PMI pair sampling and the bootstrap.",
)
@click.option(
    "--n-boot",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Bootstrap replicates of the correlation intervals (0: no interval).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
def demo_cmd(
    out: Path,
    models: int,
    epochs: int | None,
    workers: int,
    stats: str | None,
    seed: int,
    n_boot: int,
    quiet: bool,
) -> None:
    """Statistics, K classifiers, agreement curves, correlations and a report on the
    embedded sample (3 000 + 1 000 Fashion-MNIST images); no download needed.

    Writes OUT/run/ (the training run, its stats.parquet and analysis/ with figures and
    report.html). Re-running the same command resumes.

    \b
    Examples:
      agreement demo
      agreement demo --out demo --models 3 --epochs 5 --workers 2 --stats entropy,dct_coefficients
    """
    from agreement.demo import demo

    names = [s.strip() for s in stats.split(",") if s.strip()] if stats else None
    res = demo(
        out,
        models=models,
        epochs=epochs,
        workers=workers,
        stats=names,
        seed=seed,
        n_boot=n_boot,
        **({"progress": None} if quiet else {}),
    )
    curves = res["correlations"]
    click.echo("\nSpearman correlation of each statistic with the learned epoch (95 % CI):")
    for row in curves.to_pylist():
        if row["target"] != "learned_epoch":
            continue
        rho, lo, hi = row["rho"], row["ci_low"], row["ci_high"]
        click.echo(
            f"  {row['split']:5s} {row['statistic']:17s} rho {rho:+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}]  n={row['n']}"
        )
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in res["seconds"].items())
    click.echo(f"\ntimes: {secs}")
    click.echo(f"report: {res['report']}")
