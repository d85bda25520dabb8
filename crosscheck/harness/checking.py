"""``check``: a JAX module against a torch module that holds the same weights, in two tiers.

For the output and every gradient (each parameter and the input):

- **same function** — both modules in float64 (parameters and inputs upcast exactly) must agree
  within twice the float64 bound. Rounding noise there is ~5·10^8 times smaller than in float32,
  so a larger difference is different math, however small it looks in float32.
- **acceptable rounding** — in the working dtype, each framework's error against the float64
  truth (the torch module in float64) must be within the size-aware allowance of
  :class:`~crosscheck.numerics.Bound`.

Magnitudes ``M`` come from :func:`crosscheck.harness.evaluate.magnitudes`; reduction lengths ``K``
from :func:`reduction_lengths`. NaN and inf never pass unless ``equal_nan=True`` and every side,
the truth included, has them at the same places.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import torch_ref
from crosscheck.harness.evaluate import Evaluation, cast_inputs, evaluate_jax, evaluate_torch, magnitudes
from crosscheck.numerics import Bound, Comparison, compare


@dataclass
class ItemResult:
    """Verdicts for one tensor (``"output"``, ``"grads.weight"``, ``"grads.input"``, ...).

    ``nonfinite``: the NaN and inf values either framework produced in the working dtype, and where
    the first one is; without ``equal_nan`` any of them fails the item, even where all sides agree.
    """

    item: str
    k: int
    same_function: Comparison
    rounding: Comparison
    cross_bound_ratio: float  # max |jax - torch| / (both sides' allowance), working dtype
    nonfinite_count: int = 0
    first_nonfinite: tuple[int, ...] = ()
    equal_nan: bool = False

    @property
    def passed(self) -> bool:
        finite = self.equal_nan or self.nonfinite_count == 0
        return self.same_function.passed and self.rounding.passed and finite

    @property
    def nonfinite(self) -> bool:
        """Whether a NaN or inf failed this item."""
        return bool(self.same_function.nonfinite or self.rounding.nonfinite) or (
            self.nonfinite_count > 0 and not self.equal_nan
        )

    @property
    def path(self) -> str:
        """``['output']`` or ``['grads']['weight']``, as a failure message names the item."""
        return "['output']" if self.item == "output" else f"['grads']['{self.item.split('.', 1)[1]}']"


@dataclass
class CaseResult:
    """All items of one comparison; ``passed`` when every item passes both tiers."""

    name: str
    dtype: str
    items: list[ItemResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(item.passed for item in self.items)

    def problems(self) -> list[str]:
        """What failed, in words: ``same function``, ``rounding``, ``non-finite output``, ...."""
        words = []
        if not all(item.same_function.passed for item in self.items):
            words.append("same function")
        if not all(item.rounding.passed for item in self.items):
            words.append("rounding")
        for kind, items in (("output", self.items[:1]), ("gradients", self.items[1:])):
            if any(item.nonfinite for item in items):
                words.append(f"non-finite {kind}")
        return words

    def failures(self) -> list[str]:
        """Torch-style messages for every failed tier of every item."""
        header = f"{self.name} ({self.dtype})"
        messages = []
        for item in self.items:
            what = "outputs" if item.item == "output" else "gradients"
            if not item.same_function.passed:
                messages.append(
                    item.same_function.message(f"{what} in float64 (same function)", item.path, header)
                )
            if not item.rounding.passed:
                messages.append(item.rounding.message(f"{what} against float64 truth", item.path, header))
            if item.nonfinite_count and not item.equal_nan:
                messages.append(
                    f"{header}: {what} hold {item.nonfinite_count} NaN or inf values "
                    f"(non-finite {what[:-1]}), the first at index {item.first_nonfinite}; check passes "
                    "non-finite values only with equal_nan=True, where every side and the truth agree\n"
                    f"The failure occurred for item {item.path}"
                )
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
    leaves = [leaf[...] for _, leaf in nnx.to_flat_state(nnx.state(module, nnx.Param))]
    kernels = [leaf for leaf in leaves if leaf.ndim >= 2]
    biases = len(leaves) - len(kernels)
    pooled = _pooled_length(module, x_shape)
    forward = sum(int(k.shape[-2]) for k in kernels) + biases + pooled
    backward = sum(int(k.shape[-1]) for k in kernels) + pooled
    rows = math.prod(x_shape[:-1]) // max(getattr(module, "num_heads", 1), 1)
    return {"output": max(forward, 1), "input": max(backward, 1), "params": forward + backward + rows}


def _working_dtype(module: nnx.Module) -> np.dtype:
    return np.dtype(next(iter(jax.tree.leaves(nnx.state(module, nnx.Param)))).dtype)


def _float64_jax(module: nnx.Module) -> nnx.Module:
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return nnx.merge(graphdef, jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params), rest)


def check(
    jax_module: nnx.Module,
    torch_module,
    *inputs,
    grads: bool = True,
    channels_first: bool | None = None,
    equal_nan: bool = False,
    name: str = "",
    seed: int = 0,
) -> CaseResult:
    """Compare a jaxlin module with a torch_ref module holding the same weights.

    ``inputs`` are NumPy arrays in jaxlin's layout (a mask is just another input); ``check``
    moves the features axis for channels-first torch modules (``torch_ref.PointwiseConv`` is
    detected). The working dtype is the jaxlin module's parameter dtype. A NaN or inf in an output or
    gradient fails its item ("non-finite output"), even where all sides agree, unless
    ``equal_nan=True``: then non-finite values pass where both frameworks and the float64 truth
    hold the same one.

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
    if channels_first is None:
        channels_first = isinstance(torch_module, torch_ref.PointwiseConv)
    dtype = _working_dtype(jax_module)
    work_inputs = cast_inputs(inputs, dtype)
    truth_inputs = cast_inputs(work_inputs, np.float64)
    result = CaseResult(name or f"{type(jax_module).__name__} vs {type(torch_module).__name__}", str(dtype))
    with jax.enable_x64(True):
        shape = jax.eval_shape(lambda *a: jax_module(*a), *work_inputs).shape
        cotangent = np.random.default_rng(seed).standard_normal(shape)
        jax_work = evaluate_jax(jax_module, work_inputs, cotangent, grads=grads)
        jax_truth = evaluate_jax(_float64_jax(jax_module), truth_inputs, cotangent, grads=grads)
        size = magnitudes(jax_module, truth_inputs, cotangent, grads=grads)
    evaluate = {"grads": grads, "channels_first": channels_first}
    torch_work = evaluate_torch(torch_module, work_inputs, cotangent, **evaluate)
    torch_truth = evaluate_torch(copy.deepcopy(torch_module).double(), truth_inputs, cotangent, **evaluate)
    ks = reduction_lengths(jax_module, np.shape(inputs[0]))
    for item, k in _items(jax_truth, ks):
        pick = _picker(item)
        magnitude = np.nan_to_num(
            pick(size), nan=np.inf
        )  # a NaN input: its elements are judged as non-finite
        same = compare(
            pick(jax_truth), pick(torch_truth), bound=Bound(magnitude, k, "float64"), equal_nan=equal_nan
        )
        bound = Bound(magnitude, k, str(dtype))
        rounding = compare(
            pick(jax_work), pick(torch_work), reference=pick(torch_truth), bound=bound, equal_nan=equal_nan
        )
        count, first = _nonfinite(pick(jax_work), pick(torch_work))
        cross = rounding.metrics["cross_bound_ratio"]
        result.items.append(ItemResult(item, k, same, rounding, cross, count, first, equal_nan))
    return result


def _nonfinite(*arrays: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """How many elements are NaN or inf in any of ``arrays`` (one shape), and the first such index."""
    bad = np.logical_or.reduce([~np.isfinite(np.asarray(a, np.float64)) for a in arrays])
    if not bad.any():
        return 0, ()
    return int(bad.sum()), tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def _items(evaluation: Evaluation, ks: dict[str, int]):
    yield "output", ks["output"]
    for name in evaluation.grads:
        yield f"grads.{name}", ks["input"] if name == "input" else ks["params"]


def _picker(item: str):
    if item == "output":
        return lambda e: e.output
    key = item.split(".", 1)[1]
    return lambda e: e.grads[key]
