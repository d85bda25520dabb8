"""The batch-size probe over jaxlin and torch_ref modules: ``crosscheck batch-probe`` and the
``batch_probe`` section of ``crosscheck run``'s report.

Each subject is a module pair built from one set of weights (torch's init copied into jaxlin, as
in :mod:`crosscheck.cases`) and a row shape. It is probed (:func:`crosscheck.probe.probe`) in
three ways: jaxlin under ``jax.jit`` over ``nnx.split`` state, jaxlin eagerly, and torch_ref
eagerly, in each dtype. A subject that promises invariance (``BatchInvariantLinear``) fails the
run when any row differs; for the others a difference is reported, not failed, unless it exceeds
twice the rounding allowance or the repeated call is not deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crosscheck.probe import DEFAULT_REPEATS, probe

MODES = ("jax.jit", "eager", "torch")
"""jaxlin under jax.jit, jaxlin eagerly, torch_ref eagerly."""


@dataclass(frozen=True)
class Subject:
    """A module pair to probe: constructors as in :class:`crosscheck.cases.Case`, and one row's
    shape in jaxlin's layout (torch_ref takes it channels first when ``channels_first``)."""

    name: str
    make_jax: Callable[..., object]
    make_torch: Callable[..., object]
    row_shape: tuple[int, ...]
    channels_first: bool = False
    promises_invariance: bool = False


def subjects() -> dict[str, Subject]:
    """The probed modules: the seed's Linear 768→768, its batch-invariant twin, and one of each
    other variant at a moderate size."""
    import jaxlin
    import torch_ref
    from crosscheck.cases import PLACEHOLDER_INIT

    def pair(jax_cls, torch_cls, *sizes, **options):
        return (
            lambda rngs, dtype: jax_cls(*sizes, param_dtype=dtype, rngs=rngs, **PLACEHOLDER_INIT, **options),
            lambda dtype: torch_cls(*sizes, dtype=dtype, **options),
        )

    listed = [
        Subject("linear", *pair(jaxlin.Linear, torch_ref.Linear, 768, 768), (768,)),
        Subject(
            "batch-invariant-linear",
            *pair(jaxlin.BatchInvariantLinear, torch_ref.BatchInvariantLinear, 768, 768),
            (768,),
            promises_invariance=True,
        ),
        Subject(
            "pointwise", *pair(jaxlin.PointwiseConv, torch_ref.PointwiseConv, 256, 32), (8, 256),
            channels_first=True,
        ),  # fmt: skip
        Subject("perhead", *pair(jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, 8, 64, 64), (8, 64)),
        Subject("pooled", *pair(jaxlin.PooledHead, torch_ref.PooledHead, 64, 48, 8), (16, 64)),
    ]
    return {subject.name: subject for subject in listed}


def forward_of(mode: str, jax_module, torch_module, channels_first: bool) -> Callable:
    """``rows (b, *row) -> outputs (b, *out_row)`` as NumPy, through the chosen call path."""
    if mode == "torch":
        import torch

        from crosscheck.weights import numpy_of_torch, torch_of_numpy

        def run_torch(x: np.ndarray) -> np.ndarray:
            x = np.ascontiguousarray(np.swapaxes(x, -1, -2)) if channels_first else x
            with torch.no_grad():
                y = numpy_of_torch(torch_module(torch_of_numpy(x)))
            return np.swapaxes(y, -1, -2) if channels_first else y

        return run_torch
    import jax.numpy as jnp

    import jaxlin

    if mode == "eager":
        return lambda x: np.asarray(jax_module(jnp.asarray(x)))
    call = jaxlin.jitted(jax_module)
    return lambda x: np.asarray(call(jnp.asarray(x)))


def allowance_of(jax_module, pool: np.ndarray, dtype: str) -> np.ndarray:
    """Each output element's rounding allowance in ``dtype`` (:class:`crosscheck.compare.Bound`)."""
    from crosscheck.check import reduction_lengths
    from crosscheck.compare import Bound
    from crosscheck.evaluate import magnitudes

    magnitude = magnitudes(jax_module, (pool,), None, grads=False).output
    return Bound(magnitude, reduction_lengths(jax_module, pool.shape)["output"], dtype).allowed()


def verdict(subject: Subject, result) -> tuple[bool, str]:
    """``(passed, words)``: invariance where promised, rounding-sized differences, determinism."""
    problems = []
    if subject.promises_invariance and not result.invariant:
        problems.append("rows depend on the batch size, but this module promises they don't")
    if result.max_error_over_allowance > 2:
        problems.append("differences exceed two rounding allowances (different math, not rounding)")
    if not result.deterministic:
        problems.append("repeated calls gave different bits")
    if problems:
        return False, "; ".join(problems)
    return True, "invariant" if result.invariant else "varies within rounding"


def probe_subject(
    subject: Subject, dtype: str, modes, batch_sizes, *, seed: int = 0, repeats: int = DEFAULT_REPEATS
) -> list[dict]:
    """One record per mode for ``subject`` in ``dtype`` (see docs/report-schema.md)."""
    import jax.numpy as jnp

    from crosscheck.runner import build_modules

    jax_module, torch_module = build_modules(subject, dtype, seed=seed, weights=None)  # as for a case
    rng = np.random.default_rng(seed)
    pool = rng.standard_normal((max(batch_sizes), *subject.row_shape)).astype(jnp.dtype(dtype))
    allowance = allowance_of(jax_module, pool, dtype)
    records = []
    for mode in modes:
        record = {"module": subject.name, "framework": "torch_ref" if mode == "torch" else "jaxlin"}
        record |= {"mode": mode, "dtype": dtype}
        try:
            forward = forward_of(mode, jax_module, torch_module, subject.channels_first)
            result = probe(forward, pool, batch_sizes, allowance=allowance, repeats=repeats)
        except Exception as error:  # a module that raises fails its row; the probe goes on
            records.append(record | {"passed": False, "verdict": f"ERROR: {type(error).__name__}: {error}"})
            continue
        passed, words = verdict(subject, result)
        records.append(record | result.as_dict() | {"passed": passed, "verdict": words})
    return records


# ---- the table (console and Markdown) ----------------------------------------------------------

HEADERS = (
    "module", "framework", "mode", "dtype", "batch sizes where rows differ", "bitwise equal",
    "max ULP", "max diff / allowance", "deterministic", "verdict",
)  # fmt: skip


def _sizes(sizes: list[int]) -> str:
    return "none" if not sizes else ", ".join(map(str, sizes))


def table_rows(records: list[dict]) -> list[tuple[str, ...]]:
    """One row per record under :data:`HEADERS`."""
    rows = []
    for r in records:
        head = (r["module"], r["framework"], r["mode"], r["dtype"])
        if "rows_compared" not in r:
            rows.append(head + ("–",) * 5 + (r["verdict"],))
            continue
        repeats = f"yes ({r['repeats']}×)" if r["deterministic"] else f"NO ({r['repeats']}×)"
        rows.append(
            head
            + (
                _sizes(r["differing_batch_sizes"]),
                f"{r['fraction_bitwise_equal']:.1%}",
                f"{float(r['max_ulp']):g}",
                f"{float(r['max_error_over_allowance']):.2g}",
                repeats,
                r["verdict"] if r["passed"] else f"FAIL: {r['verdict']}",
            )
        )
    return rows


def print_table(console, records: list[dict], title: str) -> None:
    """The probe table on a rich console; failed rows in red."""
    from rich.table import Table

    table = Table(*HEADERS, title=title)
    for record, row in zip(records, table_rows(records), strict=True):
        table.add_row(*row, style=None if record["passed"] else "red")
    console.print(table)


def render_document(env: dict, probe: dict) -> str:
    """``probe.md`` of ``crosscheck batch-probe``: the command, the machine, the table."""
    device, precision = env.get("device", {}), env.get("precision", {})
    lines = [
        "# crosscheck batch-probe",
        "",
        f"`{env.get('command', '')}` · {env.get('timestamp', '')}",
        "",
        f"{device.get('cpu_model')} · {device.get('cpu_cores')} cores · jax {device.get('jax_backend')} · "
        f"torch {device.get('torch_device')} ({device.get('torch_threads')} threads) · precision "
        f"{precision.get('mode')} · XLA_FLAGS={env.get('xla_flags') or '(unset)'} · "
        f"torch deterministic algorithms {'on' if env.get('torch_deterministic') else 'off'} · "
        f"versions {env.get('versions')}",
        "",
    ]
    return "\n".join(lines + markdown(probe["records"], probe["batch_sizes"])) + "\n"


def markdown(records: list[dict], batch_sizes: list[int]) -> list[str]:
    """The Markdown section: what was compared, then the table."""
    lines = [
        f"Each row of a pool of {max(batch_sizes)} was computed alone and in batches of "
        f"{_sizes(batch_sizes) if len(batch_sizes) <= 20 else f'{len(batch_sizes)} sizes'} "
        "at several positions; a row counts as equal only when every bit is. The last column "
        "fails a module that promises invariance and differs, differences beyond two rounding "
        "allowances, and repeated calls that differ.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    return lines + ["| " + " | ".join(row) + " |" for row in table_rows(records)]
