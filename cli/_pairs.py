"""``KEY=VALUE`` option parsing shared by the ``imstats`` and ``agreement`` commands."""

from __future__ import annotations

import json
from typing import Any

import click


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (7, 0.5, true, null, [1,2]), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def format_value(value: Any) -> str:
    """``value`` written so that :func:`parse_value` reads it back (JSON, or a bare string)."""
    if isinstance(value, str):
        return value if parse_value(value) == value else json.dumps(value)
    try:
        return json.dumps(value, separators=(",", ":"))  # no space: one shell word
    except (TypeError, ValueError):
        return repr(value)


def parse_pairs(items: tuple[str, ...], option: str, example: str) -> dict[str, Any]:
    """``("a=1", "b=x")`` -> ``{"a": 1, "b": "x"}``; a UsageError names ``option`` otherwise."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(
                f"{option} expects KEY=VALUE (e.g. {option} {example}); got {item!r}"
            )
        out[key.strip()] = parse_value(val)
    return out
