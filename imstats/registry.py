"""The statistic registry: a plain dict filled by a decorator.

Each entry declares its Arrow fields up front, so a dataset run knows its output schema
before the first image is read. Registering a name twice is an error, never a silent
overwrite. Statistic modules register themselves when they are imported.

This module is a leaf: it imports none of the statistics. :data:`STATISTICS`, the one
ordered list of the built-in statistics (name -> defining module), is how it finds them;
:func:`get` imports a statistic's module on first use and :func:`available` imports them
all. Its order is the output column order (METHOD.md: entropy, segments, edges, dct).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Statistic:
    """One registered statistic.

    Attributes
    ----------
    name : str
        Registry key and output column name.
    func : callable
        ``func(image, **params) -> value``; ``image`` is one checked image.
    fields : tuple of pyarrow.Field
        The output columns this statistic writes (usually one, named ``name``).
    defaults : dict
        Keyword parameters and their defaults, read from ``func``'s signature.
    resize_applies : bool
        Whether a dataset-level ``--resize`` applies to this statistic (METHOD.md:
        ImageNet resizes for entropy and DCT only).
    batch : callable or None
        Optional ``batch(images, **params) -> (N,) array``: ``func`` on each image of a
        same-shape stack, value for value (see :func:`register_batch`). The dataset engine
        uses it for groups of same-shape images.
    """

    name: str
    func: Callable[..., Any]
    fields: tuple[pa.Field, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    resize_applies: bool = False
    batch: Callable[..., Any] | None = None


# The built-in statistics, in output column order: name -> module that registers it.
# Adding a statistic = writing its module and adding one line here.
STATISTICS: dict[str, str] = {
    "entropy": "imstats.stats.entropy",
    "segment_count": "imstats.stats.segments",
    "edge_strength": "imstats.stats.edges",
    "dct_coefficients": "imstats.stats.dct",
}

_REGISTRY: dict[str, Statistic] = {}


def register(
    name: str, fields: list[pa.Field] | None = None, *, resize_applies: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``func`` as statistic ``name``; raises on a duplicate name."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(
                f"statistic {name!r} is already registered (by {_REGISTRY[name].func.__module__}); "
                f"choose another name."
            )
        sig = inspect.signature(func)
        defaults = {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
        }
        flds = tuple(fields) if fields is not None else (pa.field(name, pa.float64()),)
        _REGISTRY[name] = Statistic(name, func, flds, defaults, resize_applies)
        return func

    return deco


def register_batch(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding ``func`` as the batch form of the registered statistic ``name``.

    ``func(images, **params)`` takes an ``N x H x W`` or ``N x H x W x 3`` stack and the
    statistic's keyword parameters and returns an ``(N,)`` array equal to calling the
    per-image function on each image. Only single-column statistics can have one.
    """

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        stat = _REGISTRY.get(name)
        if stat is None:
            raise ValueError(f"register_batch({name!r}): register the statistic {name!r} first.")
        if stat.batch is not None or len(stat.fields) != 1:
            raise ValueError(
                f"register_batch({name!r}): the statistic already has a batch form or writes "
                f"{len(stat.fields)} columns (a batch form needs exactly one)."
            )
        _REGISTRY[name] = dataclasses.replace(stat, batch=func)
        return func

    return deco


def _load(name: str | None = None) -> None:
    """Import the module of built-in statistic ``name`` (None: of every built-in one)."""
    names = STATISTICS if name is None else [name] if name in STATISTICS else []
    for n in names:
        if n not in _REGISTRY:
            importlib.import_module(STATISTICS[n])


def _known() -> list[str]:
    return sorted(set(STATISTICS) | set(_REGISTRY))


def get(name: str) -> Statistic:
    """The registered statistic ``name``; ``KeyError`` listing the known names otherwise."""
    _load(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_known())
        raise KeyError(f"unknown statistic {name!r}; known statistics: {known}") from None


def available() -> list[str]:
    """Names of all registered statistics: the built-in ones in :data:`STATISTICS` order, then
    those registered by other modules (plug-ins), in registration order."""
    _load()
    builtin = [n for n in STATISTICS if n in _REGISTRY]
    return builtin + [n for n in _REGISTRY if n not in STATISTICS]


def unregister(name: str) -> Statistic:
    """Remove statistic ``name`` from the registry and return it (for tests and plug-ins).

    Raises ``KeyError`` naming the known statistics when ``name`` is not registered.
    """
    try:
        return _REGISTRY.pop(name)
    except KeyError:
        raise KeyError(
            f"cannot unregister {name!r}: not registered; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def is_registered(name: str) -> bool:
    """Whether ``name`` is in the registry (without importing the statistic modules)."""
    return name in _REGISTRY
