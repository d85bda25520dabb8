"""The kinds of target the study's table declares (a ratio of two medians, a metric's value, the worst
ratio over a study, the highest value of any row), and :func:`evaluate`, which measures each from one
run's records.

A target names its implementations by the constants of :mod:`crosscheck.study.names` and picks its
configurations by their sizes, never by display text. The table is :data:`crosscheck.study.targets.TARGETS`.

>>> [goal["met"] for goal in evaluate([Ratio("demo", "s", "a", "b", 1.0)], [])]
[None]
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def _goal(
    text: str, value: float | None, limit: float, at_least: bool, detail: str = "", name: str = ""
) -> dict:
    """One measured target; ``name`` is the target without its configuration (``text`` has both)."""
    met = None if value is None else (value >= limit if at_least else value <= limit)
    return {
        "target": text,
        "name": name or text,
        "value": value,
        "limit": limit,
        "at_least": at_least,
        "met": met,
        "detail": detail,
    }


def _ratio_goals(target: Ratio, records: list[dict]) -> list[dict]:
    configs = _configs(records, target.study, target.sizes) or ["(not measured)"]
    goals = []
    for config in configs:
        ours = _median(records, target.study, config, target.ours)
        base_name, base = _base(records, target.study, config, target.base, target.exclude)
        value = ours / base if ours and base else None
        label = "fastest" if isinstance(target.base, tuple) else target.base
        detail = f"{label}: {base_name}" if _is_fastest_of(target.base) and base else ""
        text = f"{target.text} at {config}"
        goals.append(_goal(text, value, target.limit, target.at_least, detail, target.text))
    return goals


def _fraction_goals(target: Fraction, records: list[dict]) -> list[dict]:
    configs = _configs(records, target.study, target.sizes) or ["(not measured)"]
    goals = []
    for config in configs:
        record = _record(records, target.study, config, target.impl)
        value = record.get(target.metric) if record else None
        text = f"{target.text} at {config}"
        goals.append(_goal(text, value, target.limit, target.at_least, name=target.text))
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
    """Each target measured: ``{"target", "name", "value", "limit", "at_least", "met", "detail"}``
    (``met`` is ``None`` when the run did not measure it; ``name`` is the target without its
    configuration; a ratio with a 95% interval from paired rounds adds ``"interval": [low, high]``). A
    target with a ``goals(records)`` method (:class:`crosscheck.study.parity.ParityTarget`) measures
    itself."""
    goals = []
    for target in targets:
        if hasattr(target, "goals"):  # a target that measures itself (the kernel-parity targets)
            goals += target.goals(records)
        elif isinstance(target, Ratio):
            goals += _ratio_goals(target, records)
        elif isinstance(target, Fraction):
            goals += _fraction_goals(target, records)
        elif isinstance(target, Highest):
            goals.append(_highest_goal(target, records))
        else:
            goals.append(_worst_goal(target, records))
    return goals
