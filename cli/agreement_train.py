"""``agreement train``: K classifiers with per-example correctness logs."""

from __future__ import annotations

from pathlib import Path

import click

from cli._interrupts import interruptible
from cli._pairs import parse_pairs
from cli.agreement_curriculum import curriculum_options, pop_options
from imstats.cluster import DEFAULT_TIMEOUT


@click.command("train")
@click.option(
    "--preset",
    required=True,
    help="cifar10, voc, imagenet, kth-tips2b, random-labels, fashion-mnist, sample, or folder "
    "(any image folder given as --root).",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    default=None,
    help="Dataset root (default: the reader's usual places).",
)
@click.option(
    "--models", "-k", type=int, default=5, show_default=True, help="Number of networks K."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Run directory (re-running resumes it).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--limit", type=int, default=None, help="Use the first N examples of each split.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Base seed of the K model seeds."
)
@click.option("--epochs", type=int, default=None, help="Override the preset's epochs.")
@click.option("--batch-size", type=int, default=None, help="Override the batch size.")
@click.option("--arch", default=None, help="lenet5, vgg16, resnet50 or densenet121.")
@click.option(
    "--size",
    type=int,
    default=None,
    help="Resize every image to SIZE x SIZE (aspect not kept) and feed that to the network.",
)
@click.option("--lr", type=float, default=None, help="Override the (peak) learning rate.")
@click.option("--optimizer", default=None, help="sgd or adam.")
@click.option("--momentum", type=float, default=None, help="Override the SGD momentum.")
@click.option("--weight-decay", type=float, default=None, help="Override the L2 weight decay.")
@click.option("--schedule", default=None, help="constant, cosine, step or onecycle.")
@click.option(
    "--random-fraction",
    type=float,
    default=None,
    help="Fraction of train labels replaced at random.",
)
@click.option("--label-seed", type=int, default=None, help="Seed drawing the random labels.")
@click.option(
    "--set",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other preset field, e.g. --set step_size=20.",
)
@click.option(
    "--train-eval-pass", is_flag=True, help="Log train correctness from a clean eval pass."
)
@click.option(
    "--amp",
    type=click.Choice(["none", "bf16", "fp16"]),
    default="none",
    show_default=True,
    help="Mixed precision (autocast): bf16, or fp16 with a gradient scaler (CUDA only).",
)
@click.option("--channels-last", is_flag=True, help="Channels-last memory format (GPU).")
@click.option(
    "--num-workers", type=int, default=0, show_default=True, help="Data-loading processes."
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="torch CPU threads (default: 1 for LeNet5 on the CPU, else torch's default).",
)
@click.option("--keep-checkpoints", is_flag=True, help="Keep every epoch's checkpoint.")
@click.option("--batched", is_flag=True, help="Train the K models as one vmapped computation.")
@click.option(
    "--record-logits",
    is_flag=True,
    help="Also log each example's true-class probability and margin (confidence, variability, "
    "AUM).",
)
@click.option(
    "--model-index", "only", type=int, multiple=True, help="Train only this model (repeatable)."
)
@click.option("--force", is_flag=True, help="Replace a run of different settings in --out.")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Train on a Dask cluster, one task per model: local, local:N, tcp://host:port or a "
    "scheduler file. --out (and --root) must be at the same path on every worker.",
)
@click.option(
    "--timeout",
    type=float,
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="With --scheduler: seconds to wait for the scheduler and its first worker.",
)
@click.option(
    "--worker-resources",
    "resources",
    multiple=True,
    metavar="NAME=AMOUNT",
    help="With --scheduler: Dask resources each model task asks for, e.g. GPU=1 with workers "
    "started as `dask worker ADDR --resources GPU=1` (one model per GPU at a time).",
)
@curriculum_options
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="No progress: without it, stderr shows the batches of the current epoch and the "
    "run's ETA (a bar on a terminal, else a line every 10 s and at each epoch's end) and "
    "one line per model epoch.",
)
def train_cmd(
    preset: str,
    root: Path | None,
    models: int,
    out: Path,
    device: str,
    limit: int | None,
    seed: int,
    extra: tuple[str, ...],
    train_eval_pass: bool,
    amp: str,
    channels_last: bool,
    num_workers: int,
    threads: int | None,
    keep_checkpoints: bool,
    batched: bool,
    record_logits: bool,
    size: int | None,
    only: tuple[int, ...],
    force: bool,
    scheduler: str | None,
    timeout: float,
    resources: tuple[str, ...],
    quiet: bool,
    **overrides: object,
) -> None:
    """Train K classifiers and log, per epoch and example, whether each was correct.

    \b
    Examples:
      agreement train --preset sample --models 5 --out runs/sample
      agreement train --preset cifar10 --root /data/cifar10 --out runs/c10 --device cuda
      agreement train --preset fashion-mnist --out runs/curr --curriculum order.parquet
      agreement train --preset sample --out /shared/runs/s --scheduler tcp://head:8786

    Ctrl-C or SIGTERM stops the run within seconds, keeping every finished epoch; it
    prints the command that resumes it (the same one) and exits with status 130.
    """
    from agreement.runlog import RunWriteError, load_metrics, read_status
    from agreement.train import CheckpointError, train
    from agreement.train_dask import ModelTaskError
    from imstats.cluster import INSTALL_HINT, SchedulerError
    from imstats.dataset import DatasetNotFoundError

    curriculum = pop_options(overrides)
    overrides.update(
        {k.replace("-", "_"): v for k, v in parse_pairs(extra, "--set", "gamma=0.2").items()}
    )
    if size is not None:
        overrides.update(input_size=size, resize=size, resize_mode="square")
    # Ctrl-C or SIGTERM: committed epochs are kept; prints how to resume, exit 130
    with interruptible("agreement", resume=True):
        try:
            run_dir = train(
                preset,
                out=out,
                root=root,
                models=models,
                device=device,
                limit=limit,
                seed=seed,
                train_eval_pass=train_eval_pass,
                amp=amp,
                channels_last=channels_last,
                num_workers=num_workers,
                threads=threads,
                keep_checkpoints=keep_checkpoints,
                batched=batched,
                record_logits=record_logits,
                only=list(only) or None,
                force=force,
                progress=not quiet,
                scheduler=scheduler,
                timeout=timeout,
                resources=parse_pairs(resources, "--worker-resources", "GPU=1") or None,
                **curriculum,
                **overrides,
            )
        except (DatasetNotFoundError, KeyError, ValueError) as e:
            raise click.UsageError(e.args[0] if e.args else str(e)) from e
        except (CheckpointError, SchedulerError, ModelTaskError, RunWriteError) as e:
            raise click.ClickException(str(e)) from e
        except ImportError as e:
            if INSTALL_HINT not in str(e):
                raise
            raise click.ClickException(str(e)) from e
    metrics = load_metrics(run_dir).to_pylist()
    failed = []
    for k in sorted(set(only) or range(models)):
        status = read_status(run_dir, k)
        rows = [r for r in metrics if r["model"] == k]
        last = (
            f"test accuracy {rows[-1]['test_accuracy']:.4f} after epoch {rows[-1]['epoch']}"
            if rows
            else "no epoch"
        )
        click.echo(f"model {k}: {status['state']}, {last}")
        if status["state"] == "failed":
            failed.append(f"model {k}: {status['message']}")
    click.echo(f"log: {run_dir}")
    if failed:
        raise click.ClickException("some models stopped early:\n" + "\n".join(failed))
