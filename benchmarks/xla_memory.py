"""XLA's own memory analysis of the JAX programs one ``check`` compiles, at a named size: how much scratch
memory (``temp``) each holds beside its arguments, against the model's weights in float64.

    PYTHONPATH=. python benchmarks/xla_memory.py decoder-medium [--grads]

It explains a peak the process measurements cannot take apart: the float64 truth program of a ``check``
without gradients holds most of the widened weights at once (docs/scale.md (p)).
"""

from __future__ import annotations

import argparse

import jax
from flax import nnx


def program_memory(size_name: str, grads: bool = False) -> tuple[int, list[dict]]:
    """The JAX model's parameter count, and for each program ``check`` compiles (the working dtype's,
    then the float64 truth's; one holding both where JAX's 64-bit mode is on) XLA's temp, argument and
    output bytes."""
    from benchmarks.sizes import SIZES
    from crosscheck.porting import fused
    from crosscheck.porting.checking import prepare_check

    port, reference, inputs, torch_inputs, rename = SIZES[size_name].build()
    rows: list[dict] = []
    compiled = fused._compiled

    def measured(lowered):
        program = compiled(lowered)
        analysis = program.memory_analysis()
        rows.append(
            {
                "temp_bytes": analysis.temp_size_in_bytes,
                "argument_bytes": analysis.argument_size_in_bytes,
                "output_bytes": analysis.output_size_in_bytes,
            }
        )
        return program

    fused._compiled = measured
    try:
        prepared = prepare_check(
            port, reference, *inputs, torch_inputs=torch_inputs, rename=rename, grads=grads
        )
        fused.evaluate_all(prepared.requests)
    finally:
        fused._compiled = compiled
    parameters = sum(leaf.size for leaf in jax.tree.leaves(nnx.state(port, nnx.Param)))
    return parameters, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", help="a size of benchmarks.sizes, e.g. decoder-medium")
    parser.add_argument("--grads", action="store_true", help="the programs of a check with gradients")
    options = parser.parse_args()
    parameters, rows = program_memory(options.size, options.grads)
    print(f"{options.size}: {parameters / 1e6:.1f} M parameters, {8 * parameters / 1e9:.2f} GB in float64")
    one = ("both runs, one program (64-bit mode on)",)
    names = ("working dtype", "float64 truth") if len(rows) == 2 else one
    for name, row in zip(names, rows, strict=False):
        sizes = {key: row[f"{key}_bytes"] / 1e9 for key in ("temp", "argument", "output")}
        print(f"  {name}: temp {sizes['temp']:.2f} GB, arguments {sizes['argument']:.2f} GB, "
              f"outputs {sizes['output']:.3f} GB")  # fmt: skip


if __name__ == "__main__":
    main()
