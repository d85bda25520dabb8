"""What XLA compiles jaxlin's per-head linear to: every top-level instruction of the optimized HLO.

Usage: python docs/scripts/per_head_hlo.py [heads] [size] (default 16 128; rows = 32 x 64)

Prints, for the "einsum" and "vmap" implementations, the instructions of the entry computation
(fusions, copies, transposes, dots) with their shapes, so one can see which data movement XLA adds
around the single batched dot.
"""

from __future__ import annotations

import re
import sys

import jax.numpy as jnp
from flax import nnx

import jaxlin


def entry_instructions(hlo: str) -> list[str]:
    entry = hlo[hlo.index("ENTRY") :]
    body = entry[entry.index("{") + 1 : entry.index("\n}")]
    lines = [line.strip() for line in body.splitlines() if "=" in line]
    return [re.sub(r", metadata=\{[^}]*\}", "", line)[:160] for line in lines]


def main() -> None:
    heads, size = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (16, 128)
    x = jnp.zeros((32, 64, heads, size), jnp.float32)
    for impl in ("einsum", "vmap"):
        layer = jaxlin.PerHeadLinear(heads, size, size, impl=impl, rngs=nnx.Rngs(0))
        compiled = jaxlin.jitted(layer).lower(x).compile()
        print(f"## impl={impl}, heads={heads}, in=out={size}, rows=2048")
        for line in entry_instructions(compiled.as_text()):
            print("   ", line)


if __name__ == "__main__":
    main()
