"""The verdicts of one comparison: each output and gradient judged in two tiers by one of two rules.

- **analytic** (linear maps, means, elementwise monotone activations: jaxlin's layers,
  ``nnx.Linear``, ``nnx.Conv``, ``nnx.Embed``): each element within its own rounding allowance
  ``c·√K·u·|x|·|W|`` (:class:`crosscheck.numerics.Bound`), in float64 (same function) and in the
  working dtype against the float64 truth (acceptable rounding);
- **relative** (anything else: layer norm, softmax, attention, a user's op): each framework's error
  against the float64 truth within ``c`` times the other's (:mod:`crosscheck.numerics.relative`).

Every item records the rule that judged it.

>>> rngs = nnx.Rngs(0)
>>> has_analytic_bound(jaxlin.Linear(2, 2, rngs=rngs)), has_analytic_bound(nnx.LayerNorm(2, rngs=rngs))
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from flax import nnx

import jaxlin
from crosscheck.numerics import Bound, Comparison, compare
from crosscheck.numerics.judging import all_finite
from crosscheck.numerics.relative import (
    compare_relative,
    compare_same_function,
    finite_differences,
    rms,
    root_mean,
    sum_of_squares,
)

ANALYTIC_TYPES = (
    *(jaxlin.Linear, jaxlin.PointwiseConv, jaxlin.PerHeadLinear, jaxlin.PooledHead),
    *(nnx.Linear, nnx.Conv, nnx.Embed),
)
"""The modules whose rounding error has the bound ``γ_K·|x|·|W|`` (their magnitudes carry it): linear
maps, means, and an embedding (a gather forward, sums over tokens backward)."""


def has_analytic_bound(module) -> bool:
    """Whether ``module`` is one whose rounding error the analytic bound covers."""
    return isinstance(module, ANALYTIC_TYPES)


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
    rule: str = "analytic"  # "analytic" (γ_K·|x|·|W|), "relative" (no analytic bound known) or "exact"

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
        """``['output']``, ``['output'][1]``, ``['output'].logits`` or ``['grads']['weight']``, as a failure
        message names the item."""
        if self.item.startswith("output"):
            return "['output']" + self.item[len("output") :]
        return f"['grads']['{self.item.split('.', 1)[1]}']"


@dataclass(frozen=True)
class OutputTruth:
    """A check's float64 output (torch's, the truth), each element's magnitude ``M`` (``None`` under the
    relative rule) and the output's ``K``: what comparing two cases' functions needs
    (:mod:`crosscheck.suite.answers`).

    Shape:
        ``output`` and ``magnitude``: the module's output.
    """

    output: np.ndarray
    magnitude: np.ndarray | None
    k: int


@dataclass
class CaseResult:
    """All items of one comparison; ``passed`` when every item passes both tiers."""

    name: str
    dtype: str
    items: list[ItemResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # configuration differences the weights cannot show
    truth: OutputTruth | None = None
    mode: str = "inference"  # both models ran in inference mode (torch .eval(), Flax deterministic)
    switched: list[str] = field(default_factory=list)  # layers that were in training mode (restored after)
    frozen: list[str] = field(default_factory=list)  # torch parameters with requires_grad=False: not compared
    tied: dict[str, list[str]] = field(default_factory=dict)  # an item's key -> the keys tied to it
    # keys left out: num_batches_tracked, ignore= matches, and (strict=False) torch keys the JAX side lacks
    ignored: list[str] = field(default_factory=list)
    unpaired_jax: list[str] = field(default_factory=list)  # output paths with no counterpart
    unpaired_torch: list[str] = field(default_factory=list)
    differing_weights: list[str] = field(default_factory=list)  # mapped weights whose values differ
    missing: list[str] = field(default_factory=list)  # strict=False: the JAX keys the torch side lacks
    truth_notes: list[str] = field(default_factory=list)  # narrowing casts promoted in the float64 runs

    def weights_message(self) -> str:
        """What differs between the two models' weights, and what to do about it ("" when nothing)."""
        if not self.differing_weights:
            return ""
        shown = self.differing_weights[:5]
        more = len(self.differing_weights) - len(shown)
        return (
            f"{self.name}: the two models hold different weights: {'; '.join(shown)}"
            + (f"; and {more} more" if more > 0 else "")
            + "; copy them first with copy_torch_to_jax(torch_model, jax_model) (check compares two "
            "models holding the same weights)"
        )

    @property
    def passed(self) -> bool:
        return not self.differing_weights and all(item.passed for item in self.items)

    def problems(self) -> list[str]:
        """What failed, in words: ``weights differ``, ``same function``, ``rounding``, ``non-finite
        output``, ...."""
        words = ["weights differ"] if self.differing_weights else []
        if not all(item.same_function.passed for item in self.items):
            words.append("same function")
        if not all(item.rounding.passed for item in self.items):
            words.append("rounding")
        outputs = [item for item in self.items if item.item.startswith("output")]
        gradients = [item for item in self.items if not item.item.startswith("output")]
        for kind, items in (("output", outputs), ("gradients", gradients)):
            if any(item.nonfinite for item in items):
                words.append(f"non-finite {kind}")
        return words

    def failures(self) -> list[str]:
        """Torch-style messages for every failed tier of every item."""
        header = f"{self.name} ({self.dtype})"
        messages = [self.weights_message()] if self.differing_weights else []
        for item in self.items:
            what = "outputs" if item.item.startswith("output") else "gradients"
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


def nonfinite_count(*arrays: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """How many elements are NaN or inf in any of ``arrays`` (one shape), and the first such index."""
    if all_finite(*(np.asarray(a) for a in arrays)):
        return 0, ()
    bad = np.logical_or.reduce([~np.isfinite(np.asarray(a, np.float64)) for a in arrays])
    if not bad.any():
        return 0, ()
    return int(bad.sum()), tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


@dataclass(frozen=True)
class Evidence:
    """One tensor as both frameworks computed it: in the working dtype and in float64 (the truth is
    torch's float64)."""

    jax_work: np.ndarray
    torch_work: np.ndarray
    jax_truth: np.ndarray
    torch_truth: np.ndarray


def judge_analytic(item: str, evidence: Evidence, magnitude: np.ndarray, k: int, dtype: str, *,
                   equal_nan: bool = False, truth_dtype: str = "float64") -> ItemResult:  # fmt: skip
    """Both tiers with the allowance ``c·√K·u·M`` of each element (``M = Σ|x||w|`` in float64); the
    same-function tier's ``u`` is ``truth_dtype``'s (float32 where the truth could not be promoted)."""
    magnitude = np.asarray(magnitude)
    if not np.isfinite(np.sum(magnitude)):  # a NaN input: its elements are judged as non-finite
        magnitude = np.nan_to_num(magnitude, nan=np.inf)
    same = compare(
        evidence.jax_truth, evidence.torch_truth, bound=Bound(magnitude, k, truth_dtype), equal_nan=equal_nan
    )
    rounding = compare(evidence.jax_work, evidence.torch_work, reference=evidence.torch_truth,
                       bound=Bound(magnitude, k, dtype), equal_nan=equal_nan)  # fmt: skip
    return _item(item, k, same, rounding, evidence, equal_nan, "analytic")


def judge_exact(item: str, evidence: Evidence) -> ItemResult:
    """Integer (or boolean) outputs: both tiers ask for equality."""
    same = compare(evidence.jax_truth, evidence.torch_truth)
    rounding = compare(evidence.jax_work, evidence.torch_work, reference=evidence.torch_truth)
    return _item(item, 0, same, rounding, evidence, False, "exact")


def judge_relative(
    item: str, evidence: Evidence, dtype: str, *, scale: float = 0.0, equal_nan: bool = False,
    truth_dtype: str = "float64", truth_squares: float | None = None,
) -> ItemResult:  # fmt: skip
    """Both tiers without an analytic bound: errors judged against the other framework's (``scale``:
    see :func:`crosscheck.numerics.relative.compare_relative`). Each side's difference from the truth,
    whether every value is finite and the truth's RMS are read once and given to both tiers;
    ``truth_squares``: the truth's sum of squares, where the caller has it."""
    truth = evidence.torch_truth
    differences = finite_differences(evidence.jax_work, evidence.torch_work, truth)
    finite = differences is not None
    truth_squares = sum_of_squares(truth) if finite and truth_squares is None else truth_squares
    truth_rms = root_mean(truth_squares, np.size(truth)) if finite else None
    known = {"finite": finite, "truth_rms": truth_rms, "differences": differences}
    rounding = compare_relative(
        evidence.jax_work, evidence.torch_work, truth, dtype, scale=scale, equal_nan=equal_nan, **known
    )
    if finite:
        errors = [rounding.metrics[f"{side}_rms_error"] for side in ("actual", "expected")]
    else:
        truth = np.asarray(evidence.torch_truth, np.float64)
        errors = [rms(_finite(evidence.jax_work, truth)), rms(_finite(evidence.torch_work, truth))]
    working = max(errors)
    if np.dtype(truth_dtype) != np.float64:  # u/u64 no longer shrinks the port's error: the reference's only
        working = errors[1]
    same = compare_same_function(
        evidence.jax_truth, evidence.torch_truth, working_error=working, dtype=dtype, equal_nan=equal_nan,
        truth_dtype=truth_dtype, expected_rms=truth_rms,
    )  # fmt: skip
    return _item(item, 0, same, rounding, evidence, equal_nan, "relative", work_finite=finite)


def _finite(values, truth: np.ndarray) -> np.ndarray:
    difference = np.asarray(values, np.float64) - truth
    return difference[np.isfinite(difference)]


def _item(
    item, k, same, rounding, evidence: Evidence, equal_nan: bool, rule: str, work_finite: bool = False
) -> ItemResult:
    """``work_finite``: both working-dtype results are known to be finite (else they are counted)."""
    count, first = (0, ()) if work_finite else nonfinite_count(evidence.jax_work, evidence.torch_work)
    cross = rounding.metrics.get("cross_bound_ratio", 0.0)
    return ItemResult(item, k, same, rounding, cross, count, first, equal_nan, rule)
