"""Options shared by the ``imstats`` and ``agreement`` commands, so each name means one thing.

- :func:`workers_option`: ``--workers`` with the one rule of :mod:`imstats.workers`.
- :func:`alias_option`: an old spelling kept working (hidden from ``--help``) for an option
  that was renamed, e.g. ``agreement correlate --stats`` -> ``--stats-table``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from imstats.workers import AUTO_HELP

WORKERS_HELP = f"Worker processes{{what}}: {AUTO_HELP}, N = at most N."


def workers_option(what: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--workers N``, default 0 (one per CPU); ``what`` completes "Worker processes..."."""
    return click.option(
        "--workers",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help=WORKERS_HELP.format(what=what),
    )


def alias_option(
    old: str,
    *,
    new: str,
    dest: str,
    deprecated: bool = True,
    convert: Callable[[Any], Any] | None = None,
    **option_kwargs: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A hidden option ``old`` that sets the parameter ``dest`` of the option ``new``.

    Place it under ``@click.command`` like any option. When ``old`` is given, its value
    (through ``convert``, if given) becomes ``dest``'s, and, if ``deprecated``, a warning
    naming ``new`` goes to stderr. Giving both spellings is a usage error. ``old`` may be
    a ``"--on/--off"`` pair; ``option_kwargs`` are click's (``type``, ``multiple``, ...).
    """
    key = "alias_" + old.split("/")[0].lstrip("-").replace("-", "_")
    multiple = option_kwargs.get("multiple", False)
    shown = old.split("/")[0]

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = kwargs.pop(key)
            if value is None or (multiple and not value):
                return f(*args, **kwargs)
            ctx = click.get_current_context()
            source = ctx.get_parameter_source(dest)
            if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
                raise click.UsageError(f"give {new} only ({shown} is its old spelling)", ctx)
            if deprecated:
                click.echo(f"warning: {shown} is deprecated here; use {new}", err=True)
            kwargs[dest] = convert(value) if convert is not None else value
            return f(*args, **kwargs)

        option_kwargs.setdefault("default", None)
        return click.option(old, key, hidden=True, **option_kwargs)(wrapper)

    return decorate
