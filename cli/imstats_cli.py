"""``imstats`` command line: parses options and calls one library function."""

from __future__ import annotations

import inspect
import itertools
import os
import re
import sys
from operator import not_

import click

from cli._interrupts import interruptible
from cli._options import alias_option, workers_option
from cli._pairs import format_value, parse_pairs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imstats-agreement")
def main() -> None:
    """Per-image statistics for whole datasets (entropy, segments, PMI edges, DCT).

    \b
    Examples:
      imstats stats                                   # the statistics and their parameters
      imstats datasets                                # the dataset readers
      imstats compute sample --out sample.parquet     # every statistic of the sample
      imstats show photo.jpg --out photo_stats.png
    """


@main.command()
@click.argument("dataset")
@click.option("--root", type=click.Path(), help="Dataset root (default: $IMSTATS_DATA/<dataset>).")
@click.option("--out", type=click.Path(), help="Output Parquet file [default: <dataset>.parquet].")
@click.option(
    "--stats",
    help="Comma-separated statistic names (`imstats stats` lists them; default: all).",
)
@click.option("--split", help="Only this split.")
@click.option("--limit", type=click.IntRange(min=0), help="Only the first N examples.")
@click.option(
    "--resize",
    type=click.IntRange(min=0),
    help="Resize to N x N (bilinear) for entropy and DCT; default: the dataset's preset "
    "(128 for imagenet, else native); 0 = native.",
)
@workers_option()
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Examples per shard: the unit of work handed to a worker, of resume after an "
    "interrupt, and of memory use.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for statistics that take one (PMI edges), the same for every image.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="STAT.KEY=VALUE",
    help="Statistic parameter (repeatable), e.g. entropy.window=7; `imstats stats` lists them "
    "with their defaults. Checked before any image is read.",
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
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar or log lines on stderr (errors still)."
)
@alias_option(
    "--progress/--no-progress", new="--quiet", dest="quiet", deprecated=False, convert=not_
)
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
    quiet: bool,
    scheduler: str | None,
    timeout: float,
) -> None:
    """Compute statistics for every image of DATASET into one Parquet table.

    DATASET is a reader name (`imstats datasets` lists them). Re-running the same command
    resumes from the finished shards; into a finished --out it says so and does nothing.
    --workers: 0 (the default) starts one process per CPU, never more than there are
    shards to do; 1 computes in this process. Parameters (--param) are checked before
    any image is read.

    \b
    Examples:
      imstats compute sample --out sample.parquet
      imstats compute folder --root ~/photos --stats entropy,dct_coefficients --out p.parquet
      imstats compute cifar10 --param entropy.window=7 --workers 4 -q --out c10.parquet
      imstats compute imagenet --root /data/ILSVRC2012 --out in.parquet --scheduler sched.json
    """
    from imstats.cluster import SchedulerError
    from imstats.dataset import DatasetNotFoundError
    from imstats.engine import RunLockedError, RunMismatchError
    from imstats.engine import compute as run

    out = out or f"{dataset}.parquet"
    before = _stamp(out)
    # Ctrl-C or SIGTERM: finished shards are kept, and RunInterrupted says how to resume
    with interruptible("imstats"):
        try:
            table = run(
                dataset,
                root=root,
                out=out,
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
                progress=not quiet,
                scheduler=scheduler,
                timeout=timeout,
            )
        except (KeyError, ValueError, DatasetNotFoundError, FileNotFoundError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.UsageError(str(msg)) from None
        except (RunMismatchError, RunLockedError, SchedulerError, ImportError) as exc:
            raise click.ClickException(str(exc)) from None
    n = table.num_rows
    if before is not None and before == _stamp(out):  # the file was not rewritten
        click.echo(f"{out} is complete ({n} rows); nothing to do")
    else:
        n_err = n - table.column("error").null_count if "error" in table.column_names else 0
        click.echo(f"{out}: {n} rows, {n_err} with errors")


def _stamp(path: str) -> tuple[int, int, int] | None:
    """Identity of the file at ``path`` (inode, mtime, size), None when there is none.

    The engine writes ``--out`` under a temporary name and renames it, so a run that
    wrote it changes the inode; an unchanged stamp means the run found it complete.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@main.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(), required=True, help="Figure file (.png, .pdf, .svg).")
@click.option("--seed", type=int, default=0, show_default=True, help="PMI pair-sampling seed.")
def show(image: str, out: str, seed: int) -> None:
    """Draw IMAGE with its entropy map, segments, edge map and DCT matrix (paper, fig. 3).

    \b
    Examples:
      imstats show photo.jpg --out photo_stats.png
      imstats show photo.jpg --out photo_stats.pdf --seed 1
    """
    from imstats.dataset import ImageReadError
    from imstats.show import show as draw

    try:
        click.echo(str(draw(image, out=out, seed=seed)))
    except (ImageReadError, ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None


@main.command("stats")
def stats_cmd() -> None:
    """List the statistics, their output columns and their parameters with defaults.

    Each statistic is listed with its one-line description, its output columns (with
    their Arrow types), whether --resize applies to it, and one `--param NAME.KEY=DEFAULT`
    line per parameter with the first sentence of its documentation. The defaults are
    written as `--param` reads them (JSON: null, true, 0.5; a bare string), so a line can
    be copied into `imstats compute` as it is.

    \b
    Examples:
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
        helps = _param_docs(st.func)
        lines = [(f"--param {name}.{k}={format_value(v)}", helps.get(k, "")) for k, v in
                 st.defaults.items()]  # fmt: skip
        width = max((len(opt) for opt, _ in lines), default=0)
        for opt, text in lines:
            click.echo(f"  {opt:<{width}}  {text}".rstrip())


def _param_docs(func: object, depth: int = 0) -> dict[str, str]:
    """``{parameter: first sentence}`` from ``func``'s numpydoc "Parameters" section.

    "As :func:`other`." is replaced by ``other``'s text (a function of the same module).
    """
    lines = inspect.cleandoc(getattr(func, "__doc__", None) or "").splitlines() + [""]
    if "Parameters" not in lines:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    header = False  # the previous line was a header ending in "," (names continue)
    for line, below in itertools.pairwise(lines[lines.index("Parameters") + 2 :]):
        if line and not line.startswith(" ") and below and set(below) == {"-"}:
            break  # the next section's title
        if line and not line.startswith(" "):
            more = [n.strip() for n in line.split(" : ")[0].split(",") if n.strip()]
            names = names + more if header else more
            header = line.rstrip().endswith(",")
        elif line.strip():
            header = False
            for n in names:
                out[n] = f"{out.get(n, '')} {line.strip()}".strip()
    module = sys.modules.get(getattr(func, "__module__", ""), None)
    for k, v in out.items():
        ref = re.fullmatch(r"As :func:`~?([\w.]+)`\.?", v)
        other = getattr(module, ref.group(1).split(".")[-1], None) if ref else None
        if other is not None and depth < 2:
            out[k] = _param_docs(other, depth + 1).get(k, v)
        else:
            out[k] = _first_sentence(v.replace("``", "`"))
    return out


def _first_sentence(text: str, limit: int = 90) -> str:
    end = text.find(". ")
    text = text if end < 0 else text[: end + 1]
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


@main.command()
def datasets() -> None:
    """List the dataset readers (names usable as DATASET).

    \b
    Examples:
      imstats datasets
      imstats compute kth-tips2b --root /data/KTH-TIPS2-b --out kth.parquet
    """
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
    compiled or loaded, then the total and the cache folder.

    \b
    Examples:
      imstats warmup
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
