"""``agreement`` command line: parses options and calls one library function."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imstats-agreement")
def main() -> None:
    """Train K classifiers, log per-example correctness, correlate agreement with statistics.

    \b
    Examples:
      agreement demo --out demo                        # the whole pipeline on embedded data
      agreement train --preset cifar10 --models 5 --out runs/c10
      imstats compute cifar10 --out c10.parquet
      agreement correlate runs/c10 --stats-table c10.parquet
      agreement report runs/c10
    """


from cli.agreement_analysis import correlate_cmd, plot_cmd, report_cmd  # noqa: E402
from cli.agreement_curriculum import curriculum_cmd  # noqa: E402
from cli.agreement_demo import demo_cmd  # noqa: E402
from cli.agreement_experiment import experiment_group  # noqa: E402
from cli.agreement_train import train_cmd  # noqa: E402

main.add_command(train_cmd)
main.add_command(correlate_cmd)
main.add_command(plot_cmd)
main.add_command(report_cmd)
main.add_command(demo_cmd)
main.add_command(curriculum_cmd)
main.add_command(experiment_group)
