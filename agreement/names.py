"""Readable names and units of the columns that figures and the report show.

Tables keep their snake_case column names; only what a reader sees is translated. An
unknown column is shown with its underscores replaced by spaces and no unit.
"""

from __future__ import annotations

__all__ = ["display_name", "unit", "axis_label", "short_value", "is_integer_valued"]

import numpy as np

#: column -> (name shown to a reader, unit or "")
_NAMES: dict[str, tuple[str, str]] = {
    # the four imstats statistics (METHOD.md, "Image statistics")
    "entropy": ("mean local entropy", "bits"),
    "segment_count": ("segment count", "segments"),
    "edge_strength": ("edge strength", "a.u. (sum of PMI edge map)"),
    "dct_coefficients": ("relevant DCT coefficients", "% of coefficients"),
    # dataset metadata columns
    "n_instances": ("object instances", "objects"),
    "bbox_area_ratio": ("box area / image area", "ratio"),
    # per-example targets of the correlation
    "learned_epoch": ("learned epoch", "epoch"),
    "first_agreed_epoch": ("first agreed epoch", "epoch"),
    "forgetting_events": ("forgetting events", "events"),
    "mean_correct": ("fraction of (model, epoch) pairs correct", ""),
    # curves
    "accuracy_mean": ("accuracy, mean over models", "%"),
    "tp_agreement": ("true-positive agreement", "%"),
    "lower_bound": ("lower bound of agreement", "%"),
}


def display_name(column: str) -> str:
    """The name of ``column`` as a reader should see it, e.g. ``"mean local entropy"``."""
    return _NAMES.get(column, (column.replace("_", " "), ""))[0]


def unit(column: str) -> str:
    """The unit of ``column`` (``""`` when it has none or is unknown)."""
    return _NAMES.get(column, ("", ""))[1]


def axis_label(column: str, prefix: str = "") -> str:
    """``"<prefix><name> (<unit>)"``; ``"<name>, <unit>"`` when the unit has parentheses."""
    u = unit(column)
    text = f"{prefix}{display_name(column)}"
    if not u:
        return text
    return f"{text}, {u}" if "(" in u else f"{text} ({u})"


def short_value(column: str, value: float | int | None, *, with_name: bool = True) -> str:
    """``value`` with a short name and unit for captions, e.g. ``"entropy 3.21 bits"``.

    The unit follows the number after a no-break space (U+00A0).

    Examples
    --------
    >>> short_value("entropy", 3.2149), short_value("segment_count", 4.0, with_name=False)
    ('entropy 3.21\xa0bits', '4')
    """
    name, u = _SHORT.get(column, (display_name(column), ""))
    name = f"{name} " if with_name else ""
    if value is None or (isinstance(value, float) and value != value):
        return f"{name}–"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        text = str(int(value))
    elif isinstance(value, float):
        text = f"{value:.3g}"
    else:
        text = str(value)
    return f"{name}{text}{u}"


#: column -> (short name, short unit) for captions under images; a no-break space joins
#: the unit to the number so that a caption never wraps between them
_SHORT: dict[str, tuple[str, str]] = {
    "entropy": ("entropy", "\u00a0bits"),
    "segment_count": ("segments", ""),
    "edge_strength": ("edges", "\u00a0a.u."),
    "dct_coefficients": ("DCT", "\u00a0%"),
}


def is_integer_valued(values: np.ndarray) -> bool:
    """Whether every finite value is a whole number (and there is at least one)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return len(v) > 0 and bool(np.all(v == np.round(v)))
