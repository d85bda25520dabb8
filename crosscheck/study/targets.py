"""The study's targets, as a table: what each compares, at which sizes, and its limit.

Implementations and studies are named by the constants of :mod:`crosscheck.study.names`, the same
ones the configurations use, and configurations are picked by their sizes, never by display text.
:func:`evaluate` turns the table and one run's records into the measured targets.

>>> [goal["met"] for goal in evaluate([Ratio("demo", "s", "a", "b", 1.0)], [])]
[None]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crosscheck.study import names

FASTEST_TORCH, FASTEST_JAX = "fastest torch", "fastest JAX"
"""Bases meaning the fastest correct implementation of that framework in the common layout."""


Base = str | tuple[str, ...]
"""An implementation's name, :data:`FASTEST_TORCH`/:data:`FASTEST_JAX`, or a tuple: the fastest of those."""


@dataclass(frozen=True)
class Ratio:
    """``ours / base`` (medians) at each configuration of ``study`` whose sizes include ``sizes``."""

    text: str
    study: str
    ours: str
    base: Base
    limit: float
    sizes: dict = field(default_factory=dict)
    at_least: bool = False
    exclude: tuple[str, ...] = ()  # left out of a FASTEST_* base


@dataclass(frozen=True)
class Fraction:
    """``impl``'s ``metric`` (e.g. ``roofline_fraction``) at the configurations matching ``sizes``."""

    text: str
    study: str
    impl: str
    metric: str
    limit: float
    sizes: dict = field(default_factory=dict)
    at_least: bool = True


@dataclass(frozen=True)
class WorstRatio:
    """The worst ``ours / base`` over every configuration of ``study`` and every impl in ``ours``."""

    text: str
    study: str
    ours: tuple[str, ...]
    base: Base
    limit: float
    exclude: tuple[str, ...] = ()
    distinct_programs: bool = False  # only where ours and the base compiled to different programs


@dataclass(frozen=True)
class Highest:
    """The highest ``metric`` of any timed row of the run (a sanity bound, e.g. on the roofline)."""

    text: str
    metric: str
    limit: float


ROWS_2048 = {"rows": 2048}
JAXLIN_PER_HEAD = (names.JAXLIN_EINSUM, names.JAXLIN_VMAP, names.JAXLIN_LOOP)
JAXLIN_BLOCKS = tuple(names.JAXLIN_BLOCK_IMPL[impl] for impl in ("einsum", "loop"))
JAXLIN_POINTWISE = (names.JAXLIN_POINTWISE["matmul"], names.JAXLIN_POINTWISE["conv"])


def _at_target_shapes(text: str, study: str, ours: str, base: Base) -> list[Ratio]:
    return [
        Ratio(text, study, ours, base, 1.0, {"heads": heads, "size": size} | ROWS_2048)
        for heads, size in ((8, 64), (16, 128), (4, 512))
    ]


TARGETS = [
    Highest(
        "highest fraction of the roofline of any row (above it: a measurement error)",
        "roofline_fraction",
        1.05,
    ),
    *_at_target_shapes(
        "jaxlin block / torch_ref block eager", names.BLOCK, names.JAXLIN_BLOCK, names.TORCH_BLOCK
    ),
    *_at_target_shapes(
        "jaxlin block / torch.compile block", names.BLOCK, names.JAXLIN_BLOCK, names.TORCH_COMPILE_BLOCK
    ),
    *_at_target_shapes(
        "PerHeadLinear default / fastest torch", names.PER_HEAD, names.JAXLIN_AUTO, FASTEST_TORCH
    ),
    *_at_target_shapes(
        "PerHeadLinear default on heads-first input / torch_ref bmm on the same",
        names.PER_HEAD,
        names.JAXLIN_HEADS_FIRST,
        names.TORCH_REF_BMM_HEADS_FIRST,
    ),
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


def _matches(record: dict, sizes: dict) -> bool:
    """Whether ``record`` has every size in ``sizes`` (a tuple value: any of them)."""
    return all(
        record.get(key) in (value if isinstance(value, tuple) else (value,)) for key, value in sizes.items()
    )


def _configs(records: list[dict], study: str, sizes: dict) -> list[str]:
    return list(dict.fromkeys(r["config"] for r in records if r.get("study") == study and _matches(r, sizes)))


def _record(records, study: str, config: str, impl: str) -> dict | None:
    """The record of ``impl`` at ``config`` of ``study``, or ``None``."""
    return next(
        (r for r in records if r.get("study") == study and r["config"] == config and r.get("impl") == impl),
        None,
    )


def _median(records, study: str, config: str, impl: str) -> float | None:
    record = _record(records, study, config, impl)
    return record.get("median_s") if record else None


def _fastest(records, study: str, config: str, base: str, exclude) -> tuple[str, float] | None:
    """The fastest correct implementation of the base's framework at ``config`` in the common layout
    (a heads-first variant answers another question), or ``None``."""
    framework = {FASTEST_TORCH: "torch", FASTEST_JAX: "jax"}[base]
    found = [
        (r["median_s"], r["impl"])
        for r in records
        if r.get("study") == study
        and r["config"] == config
        and r.get("framework") == framework
        and "median_s" in r
        and r["impl"] not in exclude
        and "heads-first" not in r["impl"]
        and r.get("equal", True)
    ]
    return (min(found)[1], min(found)[0]) if found else None


def _base(records, study, config, base: Base, exclude) -> tuple[str, float | None]:
    if isinstance(base, tuple):
        found = [(m, name) for name in base if (m := _median(records, study, config, name))]
        return (min(found)[1], min(found)[0]) if found else ("fastest of " + ", ".join(base), None)
    if base in (FASTEST_TORCH, FASTEST_JAX):
        fastest = _fastest(records, study, config, base, exclude)
        return (fastest[0], fastest[1]) if fastest else (base, None)
    return base, _median(records, study, config, base)


def _is_fastest_of(base: Base) -> bool:
    return isinstance(base, tuple) or base in (FASTEST_TORCH, FASTEST_JAX)


def _goal(text: str, value: float | None, limit: float, at_least: bool, detail: str = "") -> dict:
    met = None if value is None else (value >= limit if at_least else value <= limit)
    return {"target": text, "value": value, "limit": limit, "met": met, "detail": detail}


def _ratio_goals(target: Ratio, records: list[dict]) -> list[dict]:
    configs = _configs(records, target.study, target.sizes) or ["(not measured)"]
    goals = []
    for config in configs:
        ours = _median(records, target.study, config, target.ours)
        base_name, base = _base(records, target.study, config, target.base, target.exclude)
        value = ours / base if ours and base else None
        label = "fastest" if isinstance(target.base, tuple) else target.base
        detail = f"{label}: {base_name}" if _is_fastest_of(target.base) and base else ""
        goals.append(_goal(f"{target.text} at {config}", value, target.limit, target.at_least, detail))
    return goals


def _fraction_goals(target: Fraction, records: list[dict]) -> list[dict]:
    configs = _configs(records, target.study, target.sizes) or ["(not measured)"]
    goals = []
    for config in configs:
        record = _record(records, target.study, config, target.impl)
        value = record.get(target.metric) if record else None
        goals.append(_goal(f"{target.text} at {config}", value, target.limit, target.at_least))
    return goals


def _program(records, study: str, config: str, impl: str) -> str | None:
    record = _record(records, study, config, impl)
    return record.get("program") if record else None


def _worst_goal(target: WorstRatio, records: list[dict]) -> dict:
    worst, where = None, ""
    for config in _configs(records, target.study, {}):
        base_name, base = _base(records, target.study, config, target.base, target.exclude)
        for impl in target.ours:
            ours = _median(records, target.study, config, impl)
            program = _program(records, target.study, config, impl)
            if (
                target.distinct_programs
                and program
                and program == _program(records, target.study, config, base_name)
            ):
                continue
            if base and ours and (worst is None or ours / base > worst):
                worst, where = ours / base, f"{impl} at {config} vs {base_name}"
    return _goal(target.text, worst, target.limit, False, where)


def _highest_goal(target: Highest, records: list[dict]) -> dict:
    found = [(r[target.metric], f"{r['impl']} at {r['config']}") for r in records if target.metric in r]
    value, where = max(found) if found else (None, "")
    return _goal(target.text, value, target.limit, False, where)


def evaluate(targets: list, records: list[dict]) -> list[dict]:
    """Each target measured: ``{"target", "value", "limit", "met", "detail"}`` (``met`` is ``None``
    when the run did not measure it)."""
    goals = []
    for target in targets:
        if isinstance(target, Ratio):
            goals += _ratio_goals(target, records)
        elif isinstance(target, Fraction):
            goals += _fraction_goals(target, records)
        elif isinstance(target, Highest):
            goals.append(_highest_goal(target, records))
        else:
            goals.append(_worst_goal(target, records))
    return goals


def named_impls(targets: list = TARGETS) -> set[str]:
    """Every implementation name the targets read (tested against what the plan builds)."""
    found = set()
    for target in targets:
        for value in (getattr(target, "ours", ()), getattr(target, "base", ""), getattr(target, "impl", "")):
            found |= set(value) if isinstance(value, tuple) else {value}
    return found - {"", FASTEST_TORCH, FASTEST_JAX}
