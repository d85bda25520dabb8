"""Reduction lengths ``K`` of the analytic rule: how many rounded additions stand behind each element of
a module's output, input gradient and parameter gradients.

>>> import jaxlin
>>> reduction_lengths(jaxlin.Linear(8, 4, rngs=nnx.Rngs(0)), (3, 8))
{'output': 9, 'input': 4, 'params': 16}
"""

from __future__ import annotations

import math

from flax import nnx


def _pooled_length(module, x_shape) -> int:
    axis = getattr(module, "axis", None)
    return int(x_shape[axis]) if isinstance(axis, int) and len(x_shape) > 1 else 0


def reduction_lengths(module: nnx.Module, x_shape: tuple[int, ...]) -> dict[str, int]:
    """``K`` for the output, the input gradient and the parameter gradients of ``module``.

    Errors of chained reductions add (Higham: ``γ_a + γ_b + γ_aγ_b <= γ_{a+b}``), so ``K`` is the
    sum along the chain: every kernel's fan-in (+1 for its bias) and the pooled length for the
    output; fan-outs and the pooled length for the input gradient; for a parameter gradient, the
    rows it sums over plus both chains (an upper bound, as the error analysis needs). A convolution's
    fan-in and fan-out include its window; an embedding's output is a gather (exact) and its
    gradient sums over every token.
    """
    if isinstance(module, nnx.Embed):
        return {"output": 1, "input": 1, "params": max(math.prod(x_shape), 1)}
    if isinstance(module, nnx.Conv):
        kernel = module.kernel[...].shape  # (window..., in / groups, out)
        forward = math.prod(kernel[:-1]) + bool(module.use_bias)
        backward = math.prod(kernel[:-2]) * kernel[-1]
        return {"output": forward, "input": backward, "params": forward + backward + math.prod(x_shape[:-1])}
    leaves = [leaf[...] for _, leaf in nnx.to_flat_state(nnx.state(module, nnx.Param))]
    kernels = [leaf for leaf in leaves if leaf.ndim >= 2]
    biases = len(leaves) - len(kernels)
    pooled = _pooled_length(module, x_shape)
    forward = sum(int(k.shape[-2]) for k in kernels) + biases + pooled
    backward = sum(int(k.shape[-1]) for k in kernels) + pooled
    rows = math.prod(x_shape[:-1]) // max(getattr(module, "num_heads", 1), 1)
    return {"output": max(forward, 1), "input": max(backward, 1), "params": forward + backward + rows}
