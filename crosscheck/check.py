"""``check``: one jaxlin module against one torch_ref module that share weights.

For the output and every gradient (each parameter and the input) it computes:

- **same function** — both modules in float64 (parameters and inputs upcast exactly) must agree
  within twice the float64 bound. Rounding noise there is ~5·10^8 times smaller than in float32,
  so a larger difference is different math, however small it looks in float32.
- **acceptable rounding** — in the working dtype, each framework's error against the float64
  truth (torch_ref in float64) must be within the size-aware allowance of :class:`Bound`.

Magnitudes ``M`` come from :func:`crosscheck.evaluate.magnitudes`; reduction lengths ``K`` from
:func:`reduction_lengths`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from crosscheck.compare import Bound, Comparison, compare
from crosscheck.evaluate import Evaluation, cast_inputs, evaluate_jax, evaluate_torch, magnitudes


@dataclass
class ItemResult:
    """Verdicts for one tensor (``"output"``, ``"grads.weight"``, ``"grads.input"``, ...)."""

    item: str
    k: int
    same_function: Comparison
    rounding: Comparison
    cross_bound_ratio: float  # max |jax - torch| / (both sides' allowance), working dtype

    @property
    def passed(self) -> bool:
        return self.same_function.passed and self.rounding.passed


@dataclass
class CaseResult:
    """All items of one jaxlin-vs-torch_ref comparison; ``passed`` when every item passes both tiers."""

    name: str
    dtype: str
    items: list[ItemResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(item.passed for item in self.items)

    def worst(self, key: str) -> float:
        """Largest metric ``key`` over items, from the rounding tier (e.g. ``"actual_max_error"``)."""
        return max((item.rounding.metrics.get(key, 0.0) for item in self.items), default=0.0)

    def failures(self) -> list[str]:
        """Torch-style messages for every failed tier of every item."""
        header = f"{self.name} ({self.dtype})"
        messages = []
        for item in self.items:
            path = "['output']" if item.item == "output" else f"['grads']['{item.item.split('.', 1)[1]}']"
            what = "outputs" if item.item == "output" else "gradients"
            if not item.same_function.passed:
                messages.append(
                    item.same_function.message(f"{what} in float64 (same function)", path, header)
                )
            if not item.rounding.passed:
                messages.append(item.rounding.message(f"{what} against float64 truth", path, header))
        return messages


def _pooled_length(module, x_shape) -> int:
    axis = getattr(module, "axis", None)
    return int(x_shape[axis]) if isinstance(axis, int) and len(x_shape) > 1 else 0


def reduction_lengths(module: nnx.Module, x_shape: tuple[int, ...]) -> dict[str, int]:
    """``K`` for the output, the input gradient and the parameter gradients of ``module``.

    Errors of chained reductions add (Higham: ``γ_a + γ_b + γ_aγ_b <= γ_{a+b}``), so ``K`` is the
    sum along the chain: every kernel's fan-in (+1 for its bias) and the pooled length for the
    output; fan-outs and the pooled length for the input gradient; for a parameter gradient, the
    rows it sums over plus both chains (an upper bound, as the error analysis needs).
    """
    kernels = [leaf for path, leaf in nnx.to_flat_state(nnx.state(module, nnx.Param)) if leaf[...].ndim >= 2]
    biases = sum(1 for path, leaf in nnx.to_flat_state(nnx.state(module, nnx.Param)) if leaf[...].ndim < 2)
    pooled = _pooled_length(module, x_shape)
    forward = sum(int(k[...].shape[-2]) for k in kernels) + biases + pooled
    backward = sum(int(k[...].shape[-1]) for k in kernels) + pooled
    rows = math.prod(x_shape[:-1]) // max(getattr(module, "num_heads", 1), 1)
    return {"output": max(forward, 1), "input": max(backward, 1), "params": forward + backward + rows}


def _torch_float64(module):
    double = copy.deepcopy(module).double()
    return double


def check(
    jax_module: nnx.Module,
    torch_module,
    *inputs,
    grads: bool = True,
    channels_first: bool | None = None,
    name: str = "",
    seed: int = 0,
) -> CaseResult:
    """Compare a jaxlin module with a torch_ref module holding the same weights.

    ``inputs`` are NumPy arrays in jaxlin's layout (a mask is just another input); ``check``
    moves the features axis for channels-first torch modules (``torch_ref.PointwiseConv`` is
    detected). The working dtype is the jaxlin module's parameter dtype.

    Shape:
        inputs as the jaxlin module takes them.

    >>> import jaxlin, torch_ref
    >>> from crosscheck.weights import copy_torch_to_jax
    >>> theirs = torch_ref.Linear(8, 4)
    >>> ours = jaxlin.Linear(8, 4, rngs=nnx.Rngs(0))
    >>> copy_torch_to_jax(theirs, ours)
    >>> check(ours, theirs, np.random.default_rng(0).standard_normal((3, 8))).passed
    True
    """
    import torch_ref

    if channels_first is None:
        channels_first = isinstance(torch_module, torch_ref.PointwiseConv)
    dtype = next(iter(jax.tree.leaves(nnx.state(jax_module, nnx.Param)))).dtype
    work_inputs = cast_inputs(inputs, dtype)
    truth_inputs = cast_inputs(work_inputs, np.float64)
    result = CaseResult(name or f"{type(jax_module).__name__} vs {type(torch_module).__name__}", str(dtype))
    with jax.enable_x64(True):
        shape = jax.eval_shape(lambda *a: jax_module(*a), *work_inputs).shape
        cotangent = np.random.default_rng(seed).standard_normal(shape)
        jax_work = evaluate_jax(jax_module, work_inputs, cotangent, grads=grads)
        graphdef, params, rest = nnx.split(jax_module, nnx.Param, ...)
        params64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        jax_truth = evaluate_jax(nnx.merge(graphdef, params64, rest), truth_inputs, cotangent, grads=grads)
        size = magnitudes(jax_module, truth_inputs, cotangent, grads=grads)
    torch_work = evaluate_torch(
        torch_module, work_inputs, cotangent, grads=grads, channels_first=channels_first
    )
    torch_truth = evaluate_torch(
        _torch_float64(torch_module), truth_inputs, cotangent, grads=grads, channels_first=channels_first
    )
    ks = reduction_lengths(jax_module, np.shape(inputs[0]))
    for item, k in _items(jax_truth, ks):
        pick = _picker(item)
        m = pick(size)
        same = compare(pick(jax_truth), pick(torch_truth), bound=Bound(m, k, "float64"))
        bound = Bound(m, k, str(dtype))
        rounding = compare(pick(jax_work), pick(torch_work), reference=pick(torch_truth), bound=bound)
        result.items.append(ItemResult(item, k, same, rounding, rounding.metrics["cross_bound_ratio"]))
    return result


def _items(evaluation: Evaluation, ks: dict[str, int]):
    yield "output", ks["output"]
    for name in evaluation.grads:
        yield f"grads.{name}", ks["input"] if name == "input" else ks["params"]


def _picker(item: str):
    if item == "output":
        return lambda e: e.output
    key = item.split(".", 1)[1]
    return lambda e: e.grads[key]
