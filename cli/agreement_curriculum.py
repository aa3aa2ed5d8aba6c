"""``agreement curriculum`` (export an ordering) and the curriculum options of ``train``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

PACING_CHOICES = ("exponential", "step", "linear")
_TRAIN_OPTIONS = ("curriculum", "pacing", "start", "inc", "step_length", "anti")


@click.command("curriculum")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--by",
    "by",
    multiple=True,
    required=True,
    metavar="COLUMN[:asc|:desc]",
    help="Column to order by (repeatable: several are combined by the mean of their average "
    "ranks), e.g. --by entropy:asc --by learned_epoch:asc.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The ordering (Parquet: id, score, rank; rank 0 = first).",
)
@click.option(
    "--split",
    default="train",
    show_default=True,
    help="Rows of this split (tables with a split column; a run's split).",
)
@click.option(
    "--ascending/--descending",
    default=True,
    show_default=True,
    help="Direction of the --by columns that do not give one.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the tie-break.")
def curriculum_cmd(
    sources: tuple[Path, ...],
    by: tuple[str, ...],
    out: Path,
    split: str,
    ascending: bool,
    seed: int,
) -> None:
    """Export an ordering of the examples (easiest first) for `agreement train --curriculum`.

    SOURCES: imstats tables (Parquet), training run directories (their per-example
    learned_epoch, first_agreed_epoch, forgetting_events, mean_correct, ...) or any Parquet
    table with an id column. A missing value (never learned, NaN) counts as larger than
    every value; ties are broken by a seeded random order.

    \b
    Examples:
      agreement curriculum stats.parquet --by entropy --out order.parquet
      agreement curriculum stats.parquet runs/prior --by entropy:asc --by learned_epoch:asc \\
          --out order.parquet
    """
    from agreement.curriculum import export_order

    try:
        table = export_order(
            list(sources), list(by), out=out, split=split, ascending=ascending, seed=seed
        )
    except (ValueError, TypeError) as e:
        raise click.ClickException(str(e)) from e
    ids = table.column("id").to_pylist()
    click.echo(f"{len(ids)} examples ordered by {', '.join(by)}: first {ids[0]}, last {ids[-1]}")
    click.echo(f"wrote {out}")


def curriculum_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The curriculum options of ``agreement train`` (collected by :func:`pop_options`)."""
    options = [
        click.option(
            "--curriculum",
            metavar="ORDER.parquet|random",
            default=None,
            help="Train with a curriculum: an ordering from `agreement curriculum`, or random "
            "(a seeded random ordering with the same pacing, the control).",
        ),
        click.option(
            "--pacing",
            type=click.Choice(PACING_CHOICES),
            default=None,
            help="Pacing function [exponential]: exponential min(start*inc^floor(i/L), 1); "
            "step: start until step L, then all; linear: start to all over L steps.",
        ),
        click.option("--start", type=float, default=None, help="First fraction of the data [0.2]."),
        click.option("--inc", type=float, default=None, help="Exponential growth factor [1.9]."),
        click.option(
            "--step-length",
            type=int,
            default=None,
            help="L, in optimiser steps [one epoch's steps].",
        ),
        click.option("--anti", is_flag=True, default=None, help="Hardest first (reversed order)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def pop_options(params: dict[str, Any]) -> dict[str, Any]:
    """Remove the curriculum options from ``params``; the keyword arguments for ``train``."""
    got = {k: params.pop(k, None) for k in _TRAIN_OPTIONS}
    if got["curriculum"] is None:
        given = [f"--{k.replace('_', '-')}" for k, v in got.items() if v]
        if given:
            raise click.UsageError(f"{', '.join(given)} need(s) --curriculum")
        return {}
    return {k: v for k, v in got.items() if v is not None}
