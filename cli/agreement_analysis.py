"""``agreement correlate``, ``agreement plot`` and ``agreement report``: thin click commands.

Each parses its options, calls one library function and prints a short summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

ANALYSIS_DIR = "analysis"


def _stats_path(run_dir: Path, stats: Path | None) -> Path:
    """--stats if given, else RUN_DIR/stats.parquet, else run.json's "stats" (relative)."""
    if stats is not None:
        return stats
    if (run_dir / "stats.parquet").exists():
        return run_dir / "stats.parquet"
    meta = run_dir / "run.json"
    if meta.exists():
        try:
            rel = json.loads(meta.read_text()).get("stats")
        except ValueError as err:
            raise click.ClickException(f"{meta} is not valid JSON: {err}") from err
        if rel:
            return run_dir / rel
    raise click.ClickException(
        f"no stats table for run {str(run_dir)!r}: pass --stats PATH, or put stats.parquet in "
        'the run directory, or name it in run.json as "stats"'
    )


def _result_dir(path: Path) -> Path:
    if (path / "curves.parquet").exists():
        return path
    if (path / ANALYSIS_DIR / "curves.parquet").exists():
        return path / ANALYSIS_DIR
    raise click.ClickException(
        f"no correlate results in {str(path)!r} (nor in its {ANALYSIS_DIR}/ folder): "
        "run `agreement correlate` first"
    )


def _num(v: float | None) -> str:
    return "  n/a" if v is None or v != v else f"{v:+.3f}"


def _parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"expected LOG_SPLIT=STATS_SPLIT, got {pair!r}")
        a, b = pair.split("=", 1)
        out[a] = b
    return out


@click.command("correlate")
@click.argument(
    "run_dir", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--stats",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="imstats table (Parquet), or any table with an 'id' column (.parquet, .csv), "
    "CIFAR-10H cifar10h-probs.npy, Pascal VOC difficulty .txt. Repeatable: the tables are "
    "joined by id. Default: RUN_DIR/stats.parquet or run.json 'stats'.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Output folder. Default: RUN_DIR/{ANALYSIS_DIR}.",
)
@click.option("--split", default=None, help="Analyse one split (default: every split).")
@click.option(
    "--statistic",
    "statistics",
    multiple=True,
    help="Numeric column to correlate (repeatable; default: all numeric columns).",
)
@click.option(
    "--categorical",
    multiple=True,
    help="Categorical column (repeatable; default: string columns + KTH attributes).",
)
@click.option(
    "--stats-split",
    multiple=True,
    metavar="LOG=STATS",
    help="Map a log split to the stats table's split name, e.g. test=val.",
)
@click.option("--min-epoch", default=5, show_default=True, type=int)
@click.option("--min-agreement", default=20.0, show_default=True, type=float)
@click.option(
    "--never",
    type=click.Choice(["exclude", "after_last"]),
    default="exclude",
    show_default=True,
    help="Never-learned examples in the correlation.",
)
@click.option("--n-boot", default=1000, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
def correlate_cmd(
    run_dir: Path,
    stats: tuple[Path, ...],
    out: Path | None,
    split: str | None,
    statistics: tuple[str, ...],
    categorical: tuple[str, ...],
    stats_split: tuple[str, ...],
    min_epoch: int,
    min_agreement: float,
    never: str,
    n_boot: int,
    seed: int,
) -> None:
    """Correlate agreement curves of RUN_DIR with image statistics (joined on example id)."""
    import agreement
    from agreement.correlate import correlate

    paths = list(stats) or [_stats_path(run_dir, None)]
    for stats_path in paths:
        if not stats_path.exists():
            raise click.ClickException(f"stats table {str(stats_path)!r} does not exist")
    load_log = getattr(agreement, "load_log", None)
    if load_log is None:
        raise click.ClickException("agreement.load_log is not available in this install")
    try:
        log = load_log(run_dir)
        res = correlate(
            log,
            paths[0] if len(paths) == 1 else paths,
            split=split,
            statistics=list(statistics) or None,
            categorical=list(categorical) or None,
            stats_split=_parse_map(stats_split),
            min_epoch=min_epoch,
            min_agreement=min_agreement,
            never=never,
            n_boot=n_boot,
            seed=seed,
            out=out if out is not None else run_dir / ANALYSIS_DIR,
        )
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    out = out if out is not None else run_dir / ANALYSIS_DIR
    for name, rep in res.report["splits"].items():
        joined = " + ".join(p.name for p in paths)
        line = f"{name}: {rep['n_matched']}/{rep['n_log']} examples joined to {joined}"
        if rep["n_missing_in_stats"]:
            line += f", {rep['n_missing_in_stats']} without statistics"
        if rep["n_error_rows"]:
            line += f", {rep['n_error_rows']} error rows skipped"
        if rep["partial_epochs"]:
            line += f", PARTIAL epochs {rep['partial_epochs']}"
        click.echo(line)
    for name, msg in res.report["skipped_splits"].items():
        click.echo(f"{name}: skipped ({msg})", err=True)
    for row in res.correlations.to_pylist():
        click.echo(
            f"  {row['split']:6s} {row['statistic']:18s} ~ {row['target']:18s} "
            f"rho {_num(row['rho'])} [{_num(row['ci_low'])}, {_num(row['ci_high'])}] "
            f"n={row['n']}"
        )
    click.echo(f"wrote {out}")


@click.command("plot")
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Figure folder. Default: <results>/figures (one run) or ./figures.",
)
@click.option("--label", "labels", multiple=True, help="Run label per DIR (for overlays).")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["png", "pdf", "svg"]),
    default=("png", "pdf"),
    show_default=True,
)
@click.option("--all-epochs", is_flag=True, help="Ignore the display rule.")
def plot_cmd(
    dirs: tuple[Path, ...],
    out: Path | None,
    labels: tuple[str, ...],
    formats: tuple[str, ...],
    all_epochs: bool,
) -> None:
    """The paper's figures from correlate results (DIRS: run or results folders; default .).

    With several DIRS the runs' curves are also overlaid (ablations).
    """
    from agreement.correlate import read_result
    from agreement.plots import plot_ablation, plot_result, save_figure

    found = [_result_dir(d) for d in (dirs or (Path("."),))]
    if labels and len(labels) != len(found):
        raise click.ClickException(f"give one --label per DIR ({len(found)}), got {len(labels)}")
    names = list(labels) or [_label(d) for d in found]
    paths = []
    try:
        for d in found:
            target = out if (out is not None and len(found) == 1) else d / "figures"
            paths += plot_result(d, target, formats=formats, display_rule=not all_epochs)
        if len(found) > 1:
            runs = {n: read_result(d).curves for n, d in zip(names, found, strict=True)}
            paths += save_figure(
                plot_ablation(runs), (out or Path("figures")) / "runs_compared", formats
            )
    except (ValueError, TypeError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {len(paths)} figure files, e.g. {paths[0] if paths else '-'}")


def _label(d: Path) -> str:
    d = d.resolve()
    return d.parent.name if d.name == ANALYSIS_DIR else d.name


@click.command("report")
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file. Default: <results>/report.html (one run) or ./report.html.",
)
@click.option("--label", "labels", multiple=True, help="Run label per DIR.")
@click.option("--title", default="Agreement and image statistics", show_default=True)
@click.option("--all-epochs", is_flag=True, help="Ignore the display rule.")
def report_cmd(
    dirs: tuple[Path, ...],
    out: Path | None,
    labels: tuple[str, ...],
    title: str,
    all_epochs: bool,
) -> None:
    """One self-contained HTML page with the figures and tables of correlate results."""
    from agreement.report import report

    found = [_result_dir(d) for d in (dirs or (Path("."),))]
    if labels and len(labels) != len(found):
        raise click.ClickException(f"give one --label per DIR ({len(found)}), got {len(labels)}")
    names = list(labels) or [_label(d) for d in found]
    if len(set(names)) != len(names):
        names = [f"{i + 1}: {n}" for i, n in enumerate(names)]
    if out is None:
        out = found[0] / "report.html" if len(found) == 1 else Path("report.html")
    try:
        path = report(
            dict(zip(names, found, strict=True)), out, title=title, display_rule=not all_epochs
        )
    except (ValueError, TypeError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
