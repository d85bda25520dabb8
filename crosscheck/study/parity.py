"""Kernel parity: which part of a jaxlin/torch gap is the backends' matmul kernels, and which is jaxlin's.

Every per-head and block row times, in the same interleaved rounds as the formulations, each
framework's plain GEMM of the row's shape (:data:`~crosscheck.study.names.KERNEL_PARITY`: a batched
GEMM ``(heads, rows, in) @ (heads, in, out)``; for the block, the projection GEMM then the batched one,
no copy). Their ratio, jax GEMM / torch GEMM, is the row's **kernel parity**: how much slower (above 1)
or faster XLA's matmul is than PyTorch's at that shape, before any formulation. Two targets follow:

- **jaxlin / jax's fastest program** for the same math (every JAX formulation the row times, the
  plain GEMM included) ≤ 1.05: what jaxlin controls.
- **(jaxlin / torch) / kernel parity** ≤ 1.05: jaxlin adds nothing beyond the backends' GEMM gap.

Each is a ratio with its 95% interval from the paired rounds (:func:`crosscheck.runtime.ratio_intervals.
paired_ratio`); a target is NOT MET only when its whole interval lies above the limit (the limit is the
5% of "as fast" already). Records read back from ``study.json`` have no rounds: their ratios are of
medians, without an interval.

>>> from crosscheck.study import names
>>> rows = [
...     {"study": "per-head", "config": "c", "impl": impl, "framework": framework, "median_s": median}
...     for impl, framework, median in (
...         (names.JAXLIN_AUTO, "jax", 3.0),
...         (names.JAX_BMM, "jax", 2.0),
...         (names.TORCH_REF_BMM, "torch", 2.0),
...         (names.TORCH_BMM, "torch", 1.0),
...     )
... ]
>>> row = parity_rows(rows)[0]
>>> row.parity.ratio, row.over_torch.ratio, row.beyond_parity.ratio, row.own.ratio, row.fastest_jax
(2.0, 1.5, 0.75, 1.5, 'jax batched GEMM jnp.matmul (heads, rows, in) @ (heads, in, out), kernel parity')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from crosscheck.reporting.tables import markdown_table
from crosscheck.runtime.ratio_intervals import RatioInterval, paired_ratio
from crosscheck.study import names

LIMIT = 1.05
OWN, BEYOND = "own", "beyond parity"
OWN_TEXT = "jaxlin / jax's fastest program for the same math (what jaxlin controls)"
BEYOND_TEXT = "(jaxlin / torch) / kernel parity (jaxlin adds nothing beyond the backends' GEMM gap)"
MEANING = (
    "Kernel parity is jax's plain (batched) GEMM of the row's shape over torch's, timed in the same rounds: "
    "the part of a jaxlin/torch gap that is the backends' matmul kernels, which jaxlin cannot change. "
    "(jaxlin / torch) / kernel parity is what jaxlin adds beyond it; both targets are NOT MET only when "
    "their whole 95% interval lies above 1.05."
)
HEADS_LAST, HEADS_FIRST = "heads last", "heads first"


@dataclass(frozen=True)
class Layout:
    """One row kind: the study, the jaxlin implementation judged, the torch one it is compared with
    (``None``: the fastest torch formulation of the common layout), and the JAX programs of the same math
    (``None``: every JAX formulation of the common layout)."""

    study: str
    name: str
    ours: str
    torch: str | None = None
    jax_same_math: tuple[str, ...] | None = None


LAYOUTS = (
    Layout(names.PER_HEAD, HEADS_LAST, names.JAXLIN_AUTO),
    Layout(
        names.PER_HEAD,
        HEADS_FIRST,
        names.JAXLIN_HEADS_FIRST,
        names.TORCH_REF_BMM_HEADS_FIRST,
        (names.JAXLIN_HEADS_FIRST, names.JAX_BMM),
    ),
    Layout(names.BLOCK, "", names.JAXLIN_BLOCK),
    Layout(
        names.BF16_PER_HEAD,
        "",
        names.JAXLIN_PER_HEAD_BF16,
        None,
        (names.JAXLIN_PER_HEAD_BF16, names.JAX_BMM_BF16),
    ),
    Layout(
        names.BF16_LINEAR,
        "",
        names.JAXLIN_LINEAR_BF16,
        names.TORCH_REF_LINEAR_BF16,
        (names.JAXLIN_LINEAR_BF16, names.JAX_MM_BF16),
    ),
)


@dataclass(frozen=True)
class ParityRow:
    """One row's kernel parity and its two targets (each ratio with its interval)."""

    study: str
    config: str
    layout: str
    sizes: dict
    parity: RatioInterval  # jax GEMM / torch GEMM
    over_torch: RatioInterval  # jaxlin / torch
    torch: str
    beyond_parity: RatioInterval  # (jaxlin / torch) / parity
    own: RatioInterval  # jaxlin / jax's fastest program
    fastest_jax: str
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.config}, {self.layout}" if self.layout else self.config

    def as_dict(self) -> dict:
        """For ``study.json`` (whose records keep no rounds): the row with its intervals."""
        data = {key: getattr(self, key) for key in ("study", "config", "layout", "sizes", "torch", "extra")}
        data["fastest_jax"] = self.fastest_jax
        return data | {key: getattr(self, key).as_dict() for key in RATIOS}

    @classmethod
    def from_dict(cls, data: dict) -> ParityRow:
        """The inverse of :meth:`as_dict`."""
        ratios = {key: RatioInterval.from_dict(data[key]) for key in RATIOS}
        return cls(**{k: v for k, v in data.items() if k not in RATIOS}, **ratios)


RATIOS = ("parity", "over_torch", "beyond_parity", "own")


def _ratio(top: list[dict], bottom: list[dict]) -> RatioInterval:
    """``prod(top) / prod(bottom)`` of the records' times: the median of the per-round ratios with its
    interval where every record has the same rounds, else the ratio of medians (no interval: rounds 0)."""
    rounds = {len(r.get("samples_s") or ()) for r in top + bottom}
    if len(rounds) == 1 and 0 not in rounds:
        product = lambda side: np.prod([r["samples_s"] for r in side], axis=0)  # noqa: E731
        return paired_ratio(product(top), product(bottom))
    value = math.prod(r["median_s"] for r in top) / math.prod(r["median_s"] for r in bottom)
    return RatioInterval(value, value, value, 0)


def _timed(records: list[dict], study: str, config: str) -> dict[str, dict]:
    return {
        r["impl"]: r
        for r in records
        if r.get("study") == study and r.get("config") == config and "median_s" in r and r.get("equal", True)
    }


def _fastest(timed: dict[str, dict], framework: str, among: tuple[str, ...] | None) -> dict | None:
    """The fastest record of ``framework`` among ``among`` (``None``: its formulations of the common
    layout; torch's plain GEMM is parity, not a formulation, and is left out)."""
    found = [
        r
        for name, r in timed.items()
        if r.get("framework") == framework
        and (
            name in among
            if among is not None
            else "heads-first" not in name and (framework == "jax" or name not in names.PARITY_IMPLS)
        )
    ]
    return min(found, key=lambda r: r["median_s"]) if found else None


def _row(records: list[dict], layout: Layout, config: str) -> ParityRow | None:
    timed = _timed(records, layout.study, config)
    gemms = [timed.get(names.KERNEL_PARITY[layout.study][side]) for side in ("jax", "torch")]
    ours = timed.get(layout.ours)
    torch = timed.get(layout.torch) if layout.torch else _fastest(timed, "torch", None)
    best_jax = _fastest(timed, "jax", layout.jax_same_math)
    if None in (*gemms, ours, torch, best_jax):
        return None
    jax_gemm, torch_gemm = gemms
    sizes = {key: ours.get(key) for key in ("heads", "size", "rows")}
    return ParityRow(
        layout.study,
        config,
        layout.name,
        sizes,
        parity=_ratio([jax_gemm], [torch_gemm]),
        over_torch=_ratio([ours], [torch]),
        torch=torch["impl"],
        beyond_parity=_ratio([ours, torch_gemm], [torch, jax_gemm]),
        own=_ratio([ours], [best_jax]),
        fastest_jax=best_jax["impl"],
        extra={"jax_gemm_s": jax_gemm["median_s"], "torch_gemm_s": torch_gemm["median_s"]},
    )


def parity_rows(records: list[dict], layouts: tuple[str, ...] | None = None) -> list[ParityRow]:
    """Every per-head row (heads last and heads first) and block row that timed both GEMMs, in run
    order; only those of the named ``layouts`` (:data:`HEADS_LAST`, :data:`HEADS_FIRST`, ``""`` for the
    block) when given."""
    found = []
    for layout in (kind for kind in LAYOUTS if layouts is None or kind.name in layouts):
        configs = dict.fromkeys(r["config"] for r in records if r.get("study") == layout.study)
        found += [row for config in configs if (row := _row(records, layout, config))]
    order = {config: i for i, config in enumerate(dict.fromkeys(r.get("config") for r in records))}
    return sorted(found, key=lambda row: (order[row.config], row.layout != HEADS_LAST))


def met(interval: RatioInterval, limit: float = LIMIT) -> bool:
    """A ratio target is met unless its whole interval lies above ``limit``.

    >>> met(RatioInterval(1.08, 1.01, 1.15, 9)), met(RatioInterval(1.3, 1.2, 1.4, 9))
    (True, False)
    """
    return not interval.low > limit


def interval_text(interval: RatioInterval) -> str:
    """``1.23 [1.10–1.31]``; a ratio with no rounds behind it (read from ``study.json``) has no interval.

    >>> interval_text(RatioInterval(1.234, 1.1, 1.31, 9)), interval_text(RatioInterval(1.2, 1.2, 1.2, 0))
    ('1.23 [1.1–1.31]', '1.2')
    """
    if not interval.rounds:
        return f"{interval.ratio:.3g}"
    high = "∞" if math.isinf(interval.high) else f"{interval.high:.3g}"
    return f"{interval.ratio:.3g} [{interval.low:.3g}–{high}]"


@dataclass(frozen=True)
class ParityTarget:
    """One of the two kernel-parity targets (:data:`OWN` or :data:`BEYOND`) at the rows of ``layout``
    (a :class:`Layout` name) whose sizes include ``sizes``; :func:`crosscheck.study.target_kinds.evaluate`
    calls :meth:`goals`."""

    which: str
    study: str
    layout: str
    sizes: dict
    limit: float = LIMIT

    @property
    def text(self) -> str:
        return OWN_TEXT if self.which == OWN else BEYOND_TEXT

    def goals(self, records: list[dict]) -> list[dict]:
        mine = [
            r
            for r in records
            if r.get("study") == self.study and all(r.get(k) == v for k, v in self.sizes.items())
        ]
        rows = [row for row in parity_rows(mine, (self.layout,)) if row.study == self.study]
        if not rows:
            where = " ".join(f"{k} {v}" for k, v in self.sizes.items())
            return [self._goal(f"{where}, {self.layout}" if self.layout else where, None, "")]
        return [self._goal_of(row) for row in rows]

    def _goal_of(self, row: ParityRow) -> dict:
        if self.which == OWN:
            return self._goal(row.label, row.own, f"fastest jax: {row.fastest_jax}")
        detail = f"kernel parity {interval_text(row.parity)}; jaxlin / {row.torch}"
        detail += f" {interval_text(row.over_torch)}"
        return self._goal(row.label, row.beyond_parity, detail)

    def _goal(self, where: str, interval: RatioInterval | None, detail: str) -> dict:
        goal = {
            "target": f"{self.text} at {where}",
            "name": self.text,
            "value": None if interval is None else interval.ratio,
            "limit": self.limit,
            "at_least": False,
            "met": None if interval is None else met(interval, self.limit),
            "detail": detail,
        }
        if interval is not None and interval.rounds:
            goal["interval"] = [interval.low, interval.high]
        return goal


def markdown_section(rows: list[ParityRow]) -> list[str]:
    """``study.md``'s kernel-parity table: every row, its parity and both targets (empty without rows)."""
    if not rows:
        return []
    word = lambda interval: "met" if met(interval) else "**NOT MET**"  # noqa: E731
    table = [
        (
            row.label,
            f"{row.extra['jax_gemm_s'] * 1e3:.3g} / {row.extra['torch_gemm_s'] * 1e3:.3g} ms",
            interval_text(row.parity),
            f"{interval_text(row.over_torch)} ({row.torch})",
            f"{interval_text(row.beyond_parity)} {word(row.beyond_parity)}",
            f"{interval_text(row.own)} {word(row.own)} ({row.fastest_jax})",
        )
        for row in rows
    ]
    headers = (
        "row",
        "jax / torch GEMM",
        "kernel parity",
        "jaxlin / torch",
        "(jaxlin / torch) / parity ≤ 1.05",
        "jaxlin / jax's fastest ≤ 1.05",
    )
    return ["## Kernel parity", "", MEANING, "", *markdown_table(headers, table)]


def terminal_lines(records: list[dict]) -> list[str]:
    """The kernel-parity rows for the terminal, one line each (for ``--quick``: a handful of rows; what
    parity means is said with the targets, :func:`crosscheck.study.summary.parity_meaning`)."""
    rows = parity_rows(records)
    if not rows:
        return []
    word = lambda interval: "met" if met(interval) else "NOT MET"  # noqa: E731
    lines = [
        "kernel parity of every row (jax GEMM / torch GEMM) and both targets, each with its 95% interval:"
    ]
    for row in rows:
        lines.append(
            f"  {row.label}: kernel parity {interval_text(row.parity)} · jaxlin / torch "
            f"{interval_text(row.over_torch)} · (jaxlin / torch) / parity {interval_text(row.beyond_parity)} "
            f"{word(row.beyond_parity)} · jaxlin / jax's fastest {interval_text(row.own)} {word(row.own)}"
        )
    return lines
