"""The unit of work of the dataset engine: statistic specs, the output schema and rows.

:func:`compute_rows` turns examples of a reader into output rows (a dict per example,
keyed by column); a bad example becomes a row with an ``error`` and null statistics,
never an exception. Everything here runs in worker processes as well as the driver.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from imstats import registry
from imstats._io import jsonable
from imstats._progress import advance
from imstats.dataset.base import ExampleRef, ImageReadError, Reader, reader_from_spec

# fixed row columns, before the statistics
_ID_FIELDS = (pa.field("id", pa.string(), nullable=False), pa.field("split", pa.string()))
_SIZE_FIELDS = (pa.field("width", pa.int32()), pa.field("height", pa.int32()))


# --------------------------------------------------------------------------------------
# statistic specs
# --------------------------------------------------------------------------------------
def resolve_stats(
    stats: Sequence[str] | str | None = None,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """The statistics of a run with their full parameters, as JSON-able dicts.

    Parameters
    ----------
    stats : list of str, comma-separated str, or None
        Statistic names; None means every registered statistic (registry order).
    params : dict, optional
        ``{"entropy.window": 7}`` or ``{"entropy": {"window": 7}}``; keys must be keyword
        parameters of the statistic.
    seed : int, optional
        Passed as ``seed`` to every chosen statistic that takes one (unless ``params``
        sets it); the same seed is used for every image, so a row does not depend on
        which worker computed it.

    Raises
    ------
    KeyError
        For an unknown statistic.
    ValueError
        For a parameter the statistic does not take, or an empty selection.
    """
    if isinstance(stats, str):
        stats = [s.strip() for s in stats.split(",") if s.strip()]
    names = list(stats) if stats is not None else registry.available()
    if not names:
        raise ValueError(
            "stats is empty; choose at least one of: " + ", ".join(registry.available())
        )
    if len(set(names)) != len(names):
        raise ValueError(f"stats lists a statistic twice: {names}")
    chosen = {n: registry.get(n) for n in names}
    given: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in (params or {}).items():
        if isinstance(value, dict) and "." not in key:
            items = [(key, k, v) for k, v in value.items()]
        else:
            if "." not in key:
                raise ValueError(
                    f"parameter {key!r} must be written <statistic>.<name>, e.g. entropy.window"
                )
            st, _, k = key.partition(".")
            items = [(st, k, value)]
        for st, k, v in items:
            if st not in chosen:
                raise ValueError(
                    f"parameter {st}.{k} is for statistic {st!r}, which is not computed in "
                    f"this run (stats: {', '.join(names)})"
                )
            if k not in chosen[st].defaults:
                raise ValueError(
                    f"statistic {st!r} has no parameter {k!r}; its parameters are: "
                    f"{', '.join(sorted(chosen[st].defaults)) or '(none)'}"
                )
            if _annotation(chosen[st].func, k) in ("int", "float", "bool", "str"):
                v = _check_param_type(st, k, v, chosen[st].defaults[k])
            given[st][k] = v
    out = []
    for n in names:
        s = chosen[n]
        p = dict(s.defaults)
        if seed is not None and "seed" in p and "seed" not in given[n]:
            p["seed"] = seed
        p.update(given[n])
        out.append(
            {
                "name": n,
                "module": s.func.__module__,
                "params": {k: jsonable(v) for k, v in p.items()},
                "resize_applies": s.resize_applies,
                "fields": [f.name for f in s.fields],
            }
        )
    return out


def _annotation(func: Any, name: str) -> str:
    """The type annotation of parameter ``name`` of ``func``, as text ('' if none)."""
    import inspect

    ann = inspect.signature(func).parameters[name].annotation
    if ann is inspect.Parameter.empty:
        return ""
    return ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))


def _check_param_type(stat: str, key: str, value: Any, default: Any) -> Any:
    """``value`` if it has the kind of the parameter's default (number, flag, text, ...).

    Catches a mistyped ``--param entropy.window=abc`` before any image is read; each
    statistic still checks the range of its values itself.
    """
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok, words = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, np.integer)):
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        words = "an integer"
    elif isinstance(default, (float, np.floating)):
        ok = isinstance(value, (int, float, np.integer, np.floating))
        ok = ok and not isinstance(value, bool)
        words = "a number"
    elif isinstance(default, str):
        ok, words = isinstance(value, str), "text"
    else:
        return value
    if not ok:
        raise ValueError(
            f"parameter {stat}.{key} must be {words} (like its default, {default!r}); got {value!r}"
        )
    return value


def _statistic(spec: dict[str, Any]) -> registry.Statistic:
    """The registered statistic of ``spec``, importing its module first if needed (workers)."""
    if not registry.is_registered(spec["name"]):
        importlib.import_module(spec["module"])
    return registry.get(spec["name"])


# --------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------
def output_schema(reader: Reader, stat_specs: list[dict[str, Any]]) -> pa.Schema:
    """The output columns: id, split, label, width, height, statistics, extras, error."""
    label = pa.list_(pa.int64()) if reader.multilabel else pa.int64()
    fields: list[pa.Field] = [*_ID_FIELDS, pa.field("label", label), *_SIZE_FIELDS]
    for spec in stat_specs:
        fields += list(_statistic(spec).fields)
    fields += list(reader.extra_fields)
    fields.append(pa.field("error", pa.string()))
    names = [f.name for f in fields]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"output columns collide: {sorted(dup)}; rename a statistic field")
    return pa.schema(fields)


# --------------------------------------------------------------------------------------
# the unit of work
# --------------------------------------------------------------------------------------
_READER_CACHE: dict[str, Reader] = {}


def _cached_reader(spec: dict[str, Any]) -> Reader:
    key = json.dumps(spec, sort_keys=True)
    if key not in _READER_CACHE:
        _READER_CACHE[key] = reader_from_spec(spec)
    return _READER_CACHE[key]


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` resized to ``size x size`` (bilinear, aspect not kept; Pillow, uint8).

    Pillow's bilinear filter widens its support when shrinking (antialiasing), as
    torchvision's ``Resize`` on PIL images does.
    """
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


_BLOCK_IMAGES = 1024  # compute_rows holds at most this many decoded images at once ...
_BLOCK_BYTES = 64 << 20  # ... or about this many bytes of them


def base_row(ref: ExampleRef, error: str | None = None) -> dict[str, Any]:
    """The row of ``ref`` before any statistic: id, split, label, extras, ``error``."""
    return {
        "id": ref.id,
        "split": ref.split,
        "label": list(ref.label) if isinstance(ref.label, tuple) else ref.label,
        "width": None,
        "height": None,
        "error": error,
        **ref.extra,
    }


def compute_rows(
    reader: Reader,
    refs: Iterable[ExampleRef],
    stat_specs: list[dict[str, Any]],
    resize: int | None = None,
) -> list[dict[str, Any]]:
    """One output row (a dict keyed by column) per example; failures become ``error`` text.

    Images are decoded in blocks (at most ``_BLOCK_IMAGES`` images or about ``_BLOCK_BYTES``
    bytes); within a block, a statistic with a batch form (``Statistic.batch``) computes each
    group of two or more same-shape inputs in one call, with the same values as image by
    image. If that call raises, the group is computed image by image, so one bad image
    still gives exactly one error row.
    """
    stats = [(s, _statistic(s)) for s in stat_specs]
    rows: list[dict[str, Any]] = []
    block: list[tuple[dict[str, Any], list[str], np.ndarray | None]] = []
    nbytes = 0
    for ref in refs:
        row = base_row(ref)
        errors: list[str] = []
        image = None
        try:
            image = reader.load(ref)
        except Exception as exc:  # every failure to read is an error row
            errors.append(str(exc) if isinstance(exc, ImageReadError) else _exc(exc))
            advance(1.0)
        else:
            row["height"], row["width"] = int(image.shape[0]), int(image.shape[1])
            nbytes += getattr(image, "nbytes", 0)
        block.append((row, errors, image))
        if len(block) >= _BLOCK_IMAGES or nbytes >= _BLOCK_BYTES:
            rows += _compute_block(block, stats, resize)
            block, nbytes = [], 0
    if block:
        rows += _compute_block(block, stats, resize)
    return rows


def _compute_block(
    block: list[tuple[dict[str, Any], list[str], np.ndarray | None]],
    stats: list[tuple[dict[str, Any], registry.Statistic]],
    resize: int | None,
) -> list[dict[str, Any]]:
    """Fill the rows of a block of decoded images (None: unreadable), statistic by statistic."""
    smalls: dict[int, np.ndarray] = {}
    for spec, st in stats:
        inputs: dict[int, Any] = {}
        for i, (_, _, image) in enumerate(block):
            if image is None:
                continue
            if resize and st.resize_applies:
                if i not in smalls:
                    smalls[i] = resize_image(image, resize)
                inputs[i] = smalls[i]
            else:
                inputs[i] = image
        batched = _batch_values(st, spec["params"], inputs)
        share = 1.0 / len(stats)  # of an image, for the progress display
        for i, x in inputs.items():
            row, errors, _ = block[i]
            _fill(row, errors, st, spec["params"], x, batched.get(i, _NONE))
            advance(share)
    out = []
    for row, errors, _ in block:
        if errors:
            row["error"] = "; ".join(errors)
        out.append(row)
    return out


_NONE = object()


def _fill(
    row: dict[str, Any],
    errors: list[str],
    st: registry.Statistic,
    params: dict[str, Any],
    x: Any,
    value: Any = _NONE,
) -> None:
    """Compute ``st`` on ``x`` (unless its batch ``value`` is given) into ``row``."""
    if value is _NONE:
        try:
            value = st.func(x, **params)
        except Exception as exc:
            errors.append(f"{st.name}: {_exc(exc)}")
            return
    try:
        if len(st.fields) == 1:
            values = {st.fields[0].name: _plain(value)}
        elif isinstance(value, dict):
            values = {f.name: _plain(value[f.name]) for f in st.fields}
        else:
            values = {f.name: _plain(v) for f, v in zip(st.fields, value, strict=True)}
        for f in st.fields:  # a value the column cannot hold is this row's error
            pa.scalar(values[f.name], type=f.type)
    except Exception as exc:
        errors.append(f"{st.name}: returned {value!r}, not storable: {_exc(exc)}")
        return
    row.update(values)


def _batch_values(
    st: registry.Statistic, params: dict[str, Any], inputs: dict[int, Any]
) -> dict[int, Any]:
    """Values of ``st`` from its batch form for every group of >= 2 same-shape inputs."""
    if st.batch is None:
        return {}
    groups: dict[tuple, list[int]] = {}
    for i, x in inputs.items():
        if isinstance(x, np.ndarray):
            groups.setdefault((x.shape, x.dtype.str), []).append(i)
    values: dict[int, Any] = {}
    for idx in groups.values():
        if len(idx) < 2:
            continue
        try:
            out = st.batch(np.stack([inputs[i] for i in idx]), **params)
        except Exception:  # e.g. one bad image: image by image, one error row each
            continue
        values.update(zip(idx, out, strict=True))
    return values


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
