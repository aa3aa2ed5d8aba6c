"""Shell brace patterns (``shards/train-{000000..000146}.tar``), as WebDataset expands them.

A module of its own so that dataset sniffing and the WebDataset reader can both use it
without importing each other.
"""

from __future__ import annotations

import re

__all__ = ["MAX_EXPANSION", "expand_braces"]

#: a brace pattern may expand to at most this many names
MAX_EXPANSION = 1_000_000

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$")


def expand_braces(pattern: str) -> list[str]:
    """The names a shell brace pattern stands for, in order.

    ``{a..b}`` (and ``{a..b..step}``) is an integer range, zero-padded to the longer end
    when an end is written with a leading zero; ``{x,y,z}`` is a list (items may hold
    braces themselves); braces without a comma or a range are kept literally.

    Examples
    --------
    >>> expand_braces("train-{000..002}.tar")
    ['train-000.tar', 'train-001.tar', 'train-002.tar']
    >>> expand_braces("{train,val}-{0..1}.tar")
    ['train-0.tar', 'train-1.tar', 'val-0.tar', 'val-1.tar']
    """
    out = _expand(pattern)
    if len(out) > MAX_EXPANSION:
        raise ValueError(f"brace pattern {pattern!r} expands to more than {MAX_EXPANSION} names")
    return out


def _expand(pattern: str) -> list[str]:
    depth, start = 0, -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                head, body, tail = pattern[:start], pattern[start + 1 : i], pattern[i + 1 :]
                alts = _alternatives(body)
                if alts is None:  # literal braces
                    return [head + "{" + b + "}" + t for b in _expand(body) for t in _expand(tail)]
                tails = _expand(tail)
                out = [head + a + t for alt in alts for a in _expand(alt) for t in tails]
                if len(out) > MAX_EXPANSION:
                    raise ValueError(
                        f"brace pattern {pattern!r} expands to more than {MAX_EXPANSION} names"
                    )
                return out
    return [pattern]


def _alternatives(body: str) -> list[str] | None:
    m = _RANGE.match(body)
    if m:
        a, b = int(m[1]), int(m[2])
        step = abs(int(m[3])) if m[3] else 1
        if step == 0:
            step = 1
        if abs(b - a) // step + 1 > MAX_EXPANSION:
            raise ValueError(f"brace range {{{body}}} is longer than {MAX_EXPANSION} names")
        padded = any(len(s.lstrip("-")) > 1 and s.lstrip("-")[0] == "0" for s in (m[1], m[2]))
        width = max(len(m[1]), len(m[2])) if padded else 0
        nums = range(a, b + 1, step) if a <= b else range(a, b - 1, -step)
        return [f"{n:0{width}d}" for n in nums]
    parts, depth, cur = [], 0, ""
    for c in body:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}" and depth > 0
        cur += c
    parts.append(cur)
    return parts if len(parts) > 1 else None
