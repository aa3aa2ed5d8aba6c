"""``agreement experiment curriculum``: the pre-registered curriculum experiment."""

from __future__ import annotations

from pathlib import Path

import click

from cli._options import workers_option
from cli.agreement_curriculum import PACING_CHOICES


@click.group("experiment")
def experiment_group() -> None:
    """Pre-registered experiments built on agreement runs.

    \b
    Examples:
      agreement experiment curriculum --preset fashion-mnist --models 3 --out exp/
    """


@experiment_group.command("curriculum")
@click.option("--preset", default="fashion-mnist", show_default=True, help="Training preset.")
@click.option("--models", "-k", type=int, default=3, show_default=True, help="Models per arm.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Experiment folder (re-running resumes).",
)
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset root.")
@click.option("--limit", type=int, default=None, help="Use the first N examples of each split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed of every arm.")
@click.option("--prior-seed", type=int, default=None, help="Seed of the prior run [seed+1000].")
@click.option(
    "--stats",
    default="entropy,segment_count,edge_strength,dct_coefficients",
    show_default=True,
    help="Comma-separated statistic names, as for `imstats compute`: the rule chooses among them.",
)
@click.option(
    "--arm",
    "arms",
    multiple=True,
    help="Train only these arms (repeatable; default all: vanilla, learned, learned-anti, "
    "statistic, statistic-anti, random).",
)
@click.option(
    "--pacing",
    type=click.Choice(PACING_CHOICES),
    default="exponential",
    show_default=True,
    help="Pacing function of every curriculum arm (see `agreement train --help`).",
)
@click.option("--start", type=float, default=0.2, show_default=True, help="First fraction.")
@click.option("--inc", type=float, default=1.9, show_default=True, help="Exponential growth.")
@click.option("--step-length", type=int, default=None, help="Steps per stage [one epoch].")
@click.option("--epochs", type=int, default=None, help="Override the preset's epochs.")
@click.option("--batch-size", type=int, default=None, help="Override the batch size.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@workers_option(" for the image statistics (imstats)")
@click.option("--n-boot", type=int, default=10000, show_default=True, help="Bootstrap resamples.")
@click.option("--summary-only", is_flag=True, help="Only summarise the finished models.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def curriculum_experiment_cmd(
    preset: str,
    models: int,
    out: Path,
    root: Path | None,
    limit: int | None,
    seed: int,
    prior_seed: int | None,
    stats: str,
    arms: tuple[str, ...],
    pacing: str,
    start: float,
    inc: float,
    step_length: int | None,
    epochs: int | None,
    batch_size: int | None,
    device: str,
    threads: int | None,
    workers: int,
    n_boot: int,
    summary_only: bool,
    quiet: bool,
) -> None:
    """Vanilla vs curricula by learned epoch and by an image statistic, their anti-curricula
    and a random curriculum, on the same data, schedule and seeds.

    \b
    Examples:
      agreement experiment curriculum --preset fashion-mnist --models 3 --out exp/
      agreement experiment curriculum --preset sample --limit 600 --epochs 3 --out exp/ -q
      agreement experiment curriculum --out exp/ --summary-only --n-boot 1000
    """
    from agreement.experiment import ARMS, curriculum_experiment, summarize_experiment
    from imstats.dataset import DatasetNotFoundError

    def say(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)

    try:
        if summary_only:
            results = summarize_experiment(out, n_boot=n_boot)
        else:
            results = curriculum_experiment(
                preset,
                out=out,
                models=models,
                root=root,
                limit=limit,
                seed=seed,
                prior_seed=prior_seed,
                stats=[s.strip() for s in stats.split(",") if s.strip()],
                arms=list(arms) or ARMS,
                pacing=pacing,
                start=start,
                inc=inc,
                step_length=step_length,
                device=device,
                threads=threads,
                workers=workers,
                n_boot=n_boot,
                progress=say,
                epochs=epochs,
                batch_size=batch_size,
            )
    except (DatasetNotFoundError, KeyError, ValueError) as e:
        raise click.ClickException(e.args[0] if e.args else str(e)) from e
    click.echo((results / "summary.md").read_text())
    click.echo(f"results: {results}")
