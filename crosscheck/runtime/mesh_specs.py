"""A device mesh as the command line names it, ``data=2,heads=4`` — plain Python, so ``--help`` and
argument parsing need no JAX.

>>> parse_mesh("data=2,heads=4"), devices_needed(parse_mesh("data=2,heads=4"))
((('data', 2), ('heads', 4)), 8)
"""

from __future__ import annotations

import math

MeshSpec = tuple[tuple[str, int], ...]


def parse_mesh(text: str) -> MeshSpec:
    """``"data=2,heads=4"`` as ``(("data", 2), ("heads", 4))``; ValueError naming the part that is not."""
    axes = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, size = part.partition("=")
        if not name.isidentifier() or not size.isdigit() or int(size) < 1:
            raise ValueError(f"mesh: {part!r} is not an axis like heads=4 (a name, '=', a positive size)")
        axes.append((name, int(size)))
    if not axes or len({name for name, _ in axes}) != len(axes):
        raise ValueError(f"mesh: {text!r} must name one or more different axes, e.g. data=2,heads=4")
    return tuple(axes)


def devices_needed(spec: MeshSpec) -> int:
    return math.prod(size for _, size in spec)
