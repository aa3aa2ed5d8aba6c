"""``agreement correlate``, ``agreement plot`` and ``agreement report``: thin click commands.

Each parses its options, calls one library function and prints a short summary.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click

from cli._options import alias_option

ANALYSIS_DIR = "analysis"

# Options that several commands share (click makes a new option each time one is applied)
_ALL_EPOCHS = click.option(
    "--all-epochs",
    is_flag=True,
    help="Draw the metric curves at every epoch, ignoring the display rule (the curves "
    "are shown from `correlate --min-epoch` on, where TP agreement >= --min-agreement: by "
    "default from epoch 5, where it is >= 20 %).",
)
_BOOT_SEED = click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of the bootstrap resampling."
)


def _stats_path(run_dir: Path, stats: Path | None) -> Path:
    """--stats-table if given, else RUN_DIR/stats.parquet, else run.json's "stats" (relative)."""
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
        f"no stats table for run {str(run_dir)!r}: pass --stats-table PATH, or put "
        'stats.parquet in the run directory, or name it in run.json as "stats"'
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


class _Percent(click.FloatRange):
    """A float range that also refuses NaN (which every comparison lets through)."""

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        out = super().convert(value, param, ctx)
        if out != out:
            limits = f"[{self.min}, {self.max}]"
            self.fail(f"{value!r} is not a number in the range {limits}", param, ctx)
        return out


@click.command("correlate")
@click.argument(
    "run_dir", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--stats-table",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="imstats table (Parquet), or any table with an 'id' column (.parquet, .csv), "
    "CIFAR-10H cifar10h-probs.npy, Pascal VOC difficulty .txt. Repeatable: the tables are "
    "joined by id. Default: RUN_DIR/stats.parquet or run.json 'stats'.",
)
@alias_option(
    "--stats",
    new="--stats-table",
    dest="stats_table",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
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
@click.option(
    "--min-epoch",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="Display rule: metric curves are shown from this epoch on (tables keep every "
    "epoch; see the display rule above).",
)
@click.option(
    "--min-agreement",
    default=20.0,
    show_default=True,
    type=_Percent(0, 100),
    help="Display rule: metric curves are shown where TP agreement is at least this "
    "(percent); below it the agreed set is too small for its mean to mean much.",
)
@click.option(
    "--never",
    type=click.Choice(["exclude", "after_last"]),
    default="exclude",
    show_default=True,
    help="Never-learned examples in the correlation: left out, or ranked after the last epoch.",
)
@click.option(
    "--n-boot",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Bootstrap replicates of the correlation intervals (0: no interval).",
)
@_BOOT_SEED
def correlate_cmd(
    run_dir: Path,
    stats_table: tuple[Path, ...],
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
    """Correlate agreement curves of RUN_DIR with image statistics (joined on example id).

    Writes RUN_DIR/analysis/: curves, metric_curves, categorical, correlations and
    per_example.parquet (each example's learned epoch joined with its statistics).

    The display rule: a metric curve (a statistic's mean over the examples every model
    gets right) is only meaningful once the agreed set is large, so figures and the
    report show it from epoch --min-epoch on and only where TP agreement is at least
    --min-agreement percent. The Parquet tables keep every epoch, with a `display`
    column saying which ones the rule shows; `plot`/`report --all-epochs` draw them all.

    \b
    Examples:
      agreement correlate runs/cifar10 --stats-table cifar10_stats.parquet
      agreement correlate runs/c10 --stats-table c10.parquet --never after_last
    """
    import agreement
    from agreement.correlate import correlate

    paths = list(stats_table) or [_stats_path(run_dir, None)]
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
        n_inf = sum((rep.get("n_infinite") or {}).values())
        if n_inf:
            line += f", {n_inf} infinite statistic values treated as missing"
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


def _label(d: Path) -> str:
    d = d.resolve()
    return d.parent.name if d.name == ANALYSIS_DIR else d.name


def _log_for(results: Path, n_boot: int) -> object | None:
    """The correctness log of the run a results folder belongs to (None, with a note, if absent)."""
    import agreement
    from agreement.report import find_run_dir

    if n_boot <= 0:
        return None
    run_dir = find_run_dir(results)
    if run_dir is None:
        click.echo(
            f"note: no run.json next to {results}: the metric curves get no bootstrap band",
            err=True,
        )
        return None
    try:
        return agreement.load_log(run_dir)
    except Exception as err:  # the band is optional: say why it is missing
        click.echo(f"note: the log of {run_dir} could not be read ({err}): no band", err=True)
        return None


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for msg in dict.fromkeys(str(w.message) for w in caught):
        click.echo(f"warning: {msg}", err=True)


@click.command("plot")
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Figure folder. Default: <results>/figures (one run) or ./figures.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="Name of each DIR in the overlay's legend, in the order of DIRS (repeatable). "
    "Default: the run folders' names.",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["png", "pdf", "svg"]),
    default=("png", "pdf"),
    show_default=True,
    help="File formats to write (repeatable).",
)
@click.option(
    "--style",
    type=click.Choice(["screen", "paper"]),
    default="screen",
    show_default=True,
    help="screen: 6.4 in wide, 150 dpi. paper: one column of a two-column paper "
    "(3.3 in wide, 6-7 pt fonts, 300 dpi).",
)
@_ALL_EPOCHS
@click.option(
    "--n-boot",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="Bootstrap replicates of the metric curves' band (read from the run's log) and of "
    "the intervals in the learned-epoch figures; 0: no band.",
)
@_BOOT_SEED
def plot_cmd(
    dirs: tuple[Path, ...],
    out: Path | None,
    labels: tuple[str, ...],
    formats: tuple[str, ...],
    style: str,
    all_epochs: bool,
    n_boot: int,
    seed: int,
) -> None:
    """The paper's figures from correlate results (DIRS: run or results folders; default .).

    Per split: the agreement curves; per statistic, its metric curve with a bootstrap band
    and the split mean; histograms; each statistic against the learned epoch; categorical
    columns. With several DIRS the runs' curves are also overlaid (ablations).

    \b
    Examples:
      agreement plot runs/cifar10                      # -> runs/cifar10/analysis/figures
      agreement plot runs/cifar10 --style paper --format pdf --out paper/figures
      agreement plot runs/bs128 runs/bs256 --label "batch 128" --label "batch 256"
    """
    from agreement.correlate import read_result
    from agreement.plots import plot_ablation, plot_result, save_figure

    found = [_result_dir(d) for d in (dirs or (Path("."),))]
    if labels and len(labels) != len(found):
        raise click.ClickException(f"give one --label per DIR ({len(found)}), got {len(labels)}")
    names = list(labels) or [_label(d) for d in found]
    paths = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for d in found:
                target = out if (out is not None and len(found) == 1) else d / "figures"
                paths += plot_result(
                    d,
                    target,
                    formats=formats,
                    display_rule=not all_epochs,
                    log=_log_for(d, n_boot),
                    n_boot=n_boot,
                    seed=seed,
                    style=style,
                )
            if len(found) > 1:
                runs = {n: read_result(d).curves for n, d in zip(names, found, strict=True)}
                paths += save_figure(
                    plot_ablation(runs, style=style),
                    (out or Path("figures")) / "runs_compared",
                    formats,
                )
        except (ValueError, TypeError) as err:
            raise click.ClickException(str(err)) from err
    _echo_warnings(caught)
    click.echo(f"wrote {len(paths)} figure files, e.g. {paths[0] if paths else '-'}")


@click.command("report")
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file. Default: <results>/report.html (one run) or ./report.html.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="Name of each DIR on the page, in the order of DIRS (repeatable). "
    "Default: the run folders' names.",
)
@click.option(
    "--title", default="Agreement and image statistics", show_default=True, help="Page title."
)
@_ALL_EPOCHS
@click.option(
    "--run",
    "runs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The training run of each DIR, in the order of DIRS (repeatable). Default: the "
    "results folder or its parent, whichever holds run.json.",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dataset root to read the example images from, when it moved since training "
    "(default: the root recorded in run.json).",
)
@click.option(
    "--images/--no-images",
    default=True,
    show_default=True,
    help="Show the examples learned first, learned last and never learned.",
)
@click.option(
    "--examples",
    "n_examples",
    default=8,
    show_default=True,
    type=click.IntRange(min=0),
    help="Images per group (learned first / last / never) over all classes.",
)
@click.option(
    "--per-class",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="Images per group and class (0: no per-class grids).",
)
@click.option(
    "--n-boot",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="Bootstrap replicates of the metric curves' band and of the learned-epoch "
    "intervals; 0: no band.",
)
@_BOOT_SEED
def report_cmd(
    dirs: tuple[Path, ...],
    out: Path | None,
    labels: tuple[str, ...],
    title: str,
    all_epochs: bool,
    runs: tuple[Path, ...],
    root: Path | None,
    images: bool,
    n_examples: int,
    per_class: int,
    n_boot: int,
    seed: int,
) -> None:
    """One self-contained HTML page about a run, to read offline or send to a colleague.

    DIRS are run folders (with analysis/ from `agreement correlate`) or results folders;
    default: the current folder. The page holds the run's settings and each model's final
    accuracy, warnings in words, the definitions, the curves, the correlations sorted by
    strength, each statistic against the learned epoch, images of the examples learned
    first, last and never (overall and per class, read from the dataset), and the join
    diagnostics. Figures and images are embedded: the page needs no network.

    \b
    Examples:
      agreement report runs/cifar10                    # -> runs/cifar10/analysis/report.html
      agreement report runs/cifar10 --root /data/cifar10 --out cifar10.html
      agreement report runs/bs128 runs/bs256 --label "batch 128" --label "batch 256"
    """
    from agreement.report import report

    found = [_result_dir(d) for d in (dirs or (Path("."),))]
    if labels and len(labels) != len(found):
        raise click.ClickException(f"give one --label per DIR ({len(found)}), got {len(labels)}")
    if runs and len(runs) != len(found):
        raise click.ClickException(f"give one --run per DIR ({len(found)}), got {len(runs)}")
    names = list(labels) or [_label(d) for d in found]
    if len(set(names)) != len(names):
        names = [f"{i + 1}: {n}" for i, n in enumerate(names)]
    if out is None:
        out = found[0] / "report.html" if len(found) == 1 else Path("report.html")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            path = report(
                dict(zip(names, found, strict=True)),
                out,
                title=title,
                display_rule=not all_epochs,
                run_dir=dict(zip(names, runs, strict=True)) if runs else None,
                images=images,
                root=root,
                n_examples=n_examples,
                n_per_class=per_class,
                n_boot=n_boot,
                seed=seed,
            )
        except (ValueError, TypeError) as err:
            raise click.ClickException(str(err)) from err
    _echo_warnings(caught)
    click.echo(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
