"""``imstats`` command line: parses options and calls one library function."""

from __future__ import annotations

import click

from cli._interrupts import interruptible
from cli._pairs import parse_pairs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imstats-agreement")
def main() -> None:
    """Per-image statistics for whole datasets (entropy, segments, PMI edges, DCT)."""


@main.command()
@click.argument("dataset")
@click.option("--root", type=click.Path(), help="Dataset root (default: $IMSTATS_DATA/<dataset>).")
@click.option("--out", type=click.Path(), help="Output Parquet file [default: <dataset>.parquet].")
@click.option("--stats", help="Comma-separated statistics (default: all registered).")
@click.option("--split", help="Only this split.")
@click.option("--limit", type=click.IntRange(min=0), help="Only the first N examples.")
@click.option(
    "--resize",
    type=click.IntRange(min=0),
    help="Resize to N x N (bilinear) for entropy and DCT; default: the dataset's preset "
    "(128 for imagenet, else native); 0 = native.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Worker processes; 0 = one per CPU, 1 = in this process.",
)
@click.option("--shard-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for statistics that take one (PMI edges), the same for every image.",
)
@click.option(
    "--param", "params", multiple=True, metavar="STAT.KEY=VALUE", help="Statistic parameter."
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Reader option, e.g. test_sample=a (kth-tips2b), max_pixels=200000000.",
)
@click.option(
    "--force", is_flag=True, help="Recompute even if --out or shards are from another run."
)
@click.option("--keep-shards", is_flag=True, help="Keep <out>.shards/ after writing --out.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run on Dask instead of the local pool: tcp://host:port, a scheduler file "
    "(dask scheduler --scheduler-file F), or local / local:N for an embedded cluster of N "
    "worker processes. The root must be readable at the same path on every worker.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the Dask scheduler and its workers before failing.",
)
def compute(
    dataset: str,
    root: str | None,
    out: str | None,
    stats: str | None,
    split: str | None,
    limit: int | None,
    resize: int | None,
    workers: int,
    shard_size: int,
    seed: int,
    params: tuple[str, ...],
    options: tuple[str, ...],
    force: bool,
    keep_shards: bool,
    progress: bool,
    scheduler: str | None,
    timeout: float,
) -> None:
    """Compute statistics for every image of DATASET into one Parquet table.

    \b
    Examples:
      imstats compute sample --out sample.parquet
      imstats compute imagenet --root /data/ILSVRC2012 --out in.parquet --scheduler sched.json
    """
    from imstats.cluster import SchedulerError
    from imstats.dataset import DatasetNotFoundError
    from imstats.engine import RunLockedError, RunMismatchError
    from imstats.engine import compute as run

    # Ctrl-C or SIGTERM: finished shards are kept, and RunInterrupted says how to resume
    with interruptible("imstats"):
        try:
            run(
                dataset,
                root=root,
                out=out or f"{dataset}.parquet",
                stats=stats,
                split=split,
                limit=limit,
                resize=resize,
                workers=workers,
                shard_size=shard_size,
                params=parse_pairs(params, "--param", "entropy.window=7"),
                seed=seed,
                reader_options=parse_pairs(options, "--option", "test_sample=a"),
                force=force,
                keep_shards=keep_shards,
                progress=progress,
                scheduler=scheduler,
                timeout=timeout,
            )
        except (KeyError, ValueError, DatasetNotFoundError, FileNotFoundError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.UsageError(str(msg)) from None
        except (RunMismatchError, RunLockedError, SchedulerError, ImportError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(out or f"{dataset}.parquet")


@main.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(), required=True, help="Figure file (.png, .pdf, .svg).")
@click.option("--seed", type=int, default=0, show_default=True, help="PMI pair-sampling seed.")
def show(image: str, out: str, seed: int) -> None:
    """Draw IMAGE with its entropy map, segments, edge map and DCT matrix (paper, fig. 3)."""
    from imstats.dataset import ImageReadError
    from imstats.show import show as draw

    try:
        click.echo(str(draw(image, out=out, seed=seed)))
    except (ImageReadError, ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None


@main.command("stats")
def stats_cmd() -> None:
    """List the statistics, their output columns and their parameters with defaults.

    \b
    Example:
      imstats stats
      imstats compute sample --stats entropy --param entropy.window=7 --out s.parquet
    """
    from imstats import registry

    for name in registry.available():
        st = registry.get(name)
        doc = (st.func.__doc__ or "").strip().splitlines()[0]
        cols = ", ".join(f"{f.name} ({f.type})" for f in st.fields)
        click.echo(f"{name}: {doc}")
        click.echo(f"  columns: {cols}; --resize applies: {'yes' if st.resize_applies else 'no'}")
        for key, default in st.defaults.items():
            click.echo(f"  --param {name}.{key}={default!r}")


@main.command()
def datasets() -> None:
    """List the dataset readers (names usable as DATASET)."""
    from imstats.dataset.base import _READERS, available_readers

    for name in available_readers():
        doc = (_READERS[name].__doc__ or "").strip().splitlines()[0]
        click.echo(f"{name:14s} {doc}")


@main.command()
@click.option(
    "--stats",
    help="Comma-separated statistics whose kernels to warm, e.g. entropy,dct_coefficients "
    "(default: all registered).",
)
def warmup(stats: str | None) -> None:
    """Compile the statistics' Numba kernels into the on-disk cache, once per machine.

    Later processes (dataset workers, `imstats show`) then load the compiled kernels
    instead of compiling them. Prints each case's time and how many kernel signatures it
    compiled or loaded, then the total and the cache folder. Example:

    \b
        imstats warmup --stats entropy,dct_coefficients
    """
    from imstats.jit import cache_dir
    from imstats.jit import warmup as run

    names = [s.strip() for s in stats.split(",") if s.strip()] if stats else None
    try:
        records = run(names, log=click.echo)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0] if exc.args else exc)) from None
    seconds = sum(r.seconds for r in records)
    compiled = sum(r.compiled for r in records)
    loaded = sum(r.loaded for r in records)
    click.echo(f"{'total':<38s} {seconds:7.2f} s  {compiled:3d} compiled  {loaded:3d} loaded")
    folder = cache_dir()
    click.echo(
        f"cache folder: {folder}" if folder else "cache folder: none (IMSTATS_NUMBA_CACHE=0)"
    )
