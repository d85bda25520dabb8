"""The study's targets, as a table: what each compares, at which sizes, and its limit.

Implementations and studies are named by the constants of :mod:`crosscheck.study.names`, the same
ones the configurations use, and configurations are picked by their sizes, never by display text. The
kinds of target, and :func:`evaluate`, which turns the table and one run's records into the measured
targets, are in :mod:`crosscheck.study.target_kinds` (``evaluate`` is imported here for the command).

>>> names.JAXLIN_AUTO in named_impls() and FASTEST_TORCH not in named_impls()
True
"""

from __future__ import annotations

from crosscheck.study import names, parity
from crosscheck.study.configs import TARGET_SHAPES
from crosscheck.study.parity import ParityTarget
from crosscheck.study.target_kinds import (
    FASTEST_JAX,
    FASTEST_TORCH,
    Fraction,
    Highest,
    Ratio,
    WorstRatio,
)
from crosscheck.study.target_kinds import evaluate as evaluate

ROWS_2048 = {"rows": 2048}
JAXLIN_PER_HEAD = (names.JAXLIN_EINSUM, names.JAXLIN_VMAP, names.JAXLIN_LOOP)
JAXLIN_BLOCKS = tuple(names.JAXLIN_BLOCK_IMPL[impl] for impl in ("einsum", "loop"))
JAXLIN_POINTWISE = (names.JAXLIN_POINTWISE["matmul"], names.JAXLIN_POINTWISE["conv"])


def _kernel_parity_targets() -> list[ParityTarget]:
    """The two kernel-parity targets (:mod:`crosscheck.study.parity`) at the three target shapes, for the
    per-head layer (heads last and heads first) and the block; they replace "≤ 1.0× torch"."""
    kinds = [(names.PER_HEAD, parity.HEADS_LAST), (names.PER_HEAD, parity.HEADS_FIRST), (names.BLOCK, "")]
    return [
        ParityTarget(which, study, layout, {"heads": heads, "size": size} | ROWS_2048)
        for study, layout in kinds
        for which in (parity.OWN, parity.BEYOND)
        for heads, size in TARGET_SHAPES
    ]


TARGETS = [
    Highest(
        "highest fraction of the roofline of any row (above it: a measurement error)",
        "roofline_fraction",
        1.05,
    ),
    *_kernel_parity_targets(),
    WorstRatio(
        "worst PerHeadLinear auto / fastest jaxlin formulation (all per-head configs)",
        names.PER_HEAD,
        (names.JAXLIN_AUTO,),
        JAXLIN_PER_HEAD,
        1.05,
    ),
    WorstRatio(
        "worst PerHeadLinear auto / fastest jaxlin formulation, where the two compiled to different "
        "programs (elsewhere the ratio is the run's noise)",
        names.PER_HEAD,
        (names.JAXLIN_AUTO,),
        JAXLIN_PER_HEAD,
        1.05,
        distinct_programs=True,
    ),
    WorstRatio(
        "worst jaxlin block default / fastest jaxlin block impl",
        names.BLOCK,
        (names.JAXLIN_BLOCK,),
        JAXLIN_BLOCKS,
        1.05,
    ),
    Fraction(
        "PerHeadLinear default, fraction of the roofline",
        names.PER_HEAD,
        names.JAXLIN_AUTO,
        "roofline_fraction",
        0.85,
        {"heads": 4, "size": 512} | ROWS_2048,
    ),
    Ratio("recommended call path / raw jax.jit", names.CALL_PATH, names.RECOMMENDED, names.RAW_JIT, 1.10),
    Ratio(
        "jaxlin PointwiseConv auto / its fastest path",
        names.POINTWISE,
        names.JAXLIN_POINTWISE["auto"],
        JAXLIN_POINTWISE,
        1.05,
    ),
    Ratio(
        "jaxlin Linear / its fastest lowering", names.LINEAR_ROWS, names.JAXLIN_LINEAR, JAXLIN_POINTWISE, 1.05
    ),
    Ratio(
        "torch_ref PointwiseConv matmul / nn.Linear on channels first",
        names.POINTWISE,
        names.TORCH_REF_POINTWISE["matmul"],
        names.TORCH_LINEAR_CHANNELS_FIRST,
        1.05,
    ),
    Ratio(
        "PooledHead reorder speed-up",
        names.POOLED,
        names.JAXLIN_REORDER[False],
        names.JAXLIN_REORDER[True],
        30,
        {"length": 2048},
        at_least=True,
    ),
    Ratio(
        "PooledHead reorder / the bare mean over the same input (its bandwidth limit)",
        names.POOLED,
        names.JAXLIN_REORDER[True],
        names.JAX_MEAN,
        1.10,
        {"length": 2048},
    ),
    Fraction(
        "PooledHead reorder, fraction of the roofline",
        names.POOLED,
        names.JAXLIN_REORDER[True],
        "roofline_fraction",
        0.8,
        {"length": 2048},
    ),
    Ratio(
        "jaxlin Linear with bias / without",
        names.BIAS,
        names.JAXLIN_BIAS[True],
        names.JAXLIN_BIAS[False],
        1.10,
    ),
    Ratio(
        "jaxlin BatchInvariantLinear / jaxlin Linear",
        names.INVARIANT,
        names.JAXLIN_INVARIANT,
        names.JAXLIN_LINEAR,
        1.3,
        {"rows": (128, 4096)},
    ),
    Ratio(
        "torch BatchInvariantLinear / torch Linear",
        names.INVARIANT,
        names.TORCH_INVARIANT,
        names.TORCH_LINEAR,
        1.3,
        {"rows": (128, 4096)},
    ),
]


def named_impls(targets: list = TARGETS) -> set[str]:
    """Every implementation name the targets read (tested against what the plan builds)."""
    found = set()
    for target in targets:
        for value in (getattr(target, "ours", ()), getattr(target, "base", ""), getattr(target, "impl", "")):
            found |= set(value) if isinstance(value, tuple) else {value}
    return found - {"", FASTEST_TORCH, FASTEST_JAX}
