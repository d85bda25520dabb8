"""The batch-size probe over jaxlin and torch_ref modules: ``crosscheck batch-probe`` and the
``batch_probe`` section of ``crosscheck run``'s report.

Each probed module is a :class:`~crosscheck.suite.cases.Case` with a ``row_shape``
(:func:`~crosscheck.suite.cases.probe_cases`), built by :func:`~crosscheck.suite.pairs.build_pair`
and probed (:func:`crosscheck.probes.probing.probe`) in three ways: jaxlin through
:func:`jaxlin.jitted`, jaxlin eagerly, and torch_ref eagerly. A module that promises invariance
(``BatchInvariantLinear``) fails when any row differs; for the others a difference is reported, not
failed, unless it exceeds twice the rounding allowance or a repeated call is not deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
from crosscheck.numerics import Bound
from crosscheck.porting.checking import reduction_lengths
from crosscheck.porting.magnitudes import magnitudes
from crosscheck.probes.probing import DEFAULT_REPEATS, ProbeResult, max_pool_rows, probe
from crosscheck.runtime.choices import PROBE_MODES
from crosscheck.suite.cases import Case
from crosscheck.suite.pairs import build_pair
from crosscheck.weights import numpy_of_torch, torch_of_numpy

MODES = PROBE_MODES
"""jaxlin through jaxlin.jitted, jaxlin eagerly, torch_ref eagerly."""


def forward_of(mode: str, case: Case, jax_module, torch_module) -> Callable[[np.ndarray], np.ndarray]:
    """``rows (b, *row) -> outputs (b, *out_row)`` as NumPy (jaxlin's layout), through one call path."""
    if mode == "torch":

        def run_torch(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                y = numpy_of_torch(torch_module(torch_of_numpy(case.torch_inputs((x,))[0])))
            return case.jax_output(y)

        return run_torch
    call = jax_module if mode == "eager" else jaxlin.jitted(jax_module)
    return lambda x: np.asarray(call(jnp.asarray(x)))


def allowance_of(jax_module, pool: np.ndarray, dtype: str) -> np.ndarray:
    """Each output element's rounding allowance in ``dtype`` (:class:`crosscheck.numerics.Bound`)."""
    magnitude = magnitudes(jax_module, (pool,), None, grads=False).output
    return Bound(magnitude, reduction_lengths(jax_module, pool.shape)["output"], dtype).allowed()


def verdict(case: Case, result: ProbeResult) -> tuple[bool, str]:
    """``(passed, words)``: invariance where promised, rounding-sized differences, determinism."""
    problems = []
    if case.promises_invariance and not result.invariant:
        problems.append("rows depend on the batch size, but this module promises they don't")
    if result.max_error_over_allowance > 2:
        problems.append("differences exceed two rounding allowances (different math, not rounding)")
    if not result.deterministic:
        problems.append("repeated calls gave different bits")
    if problems:
        return False, "; ".join(problems)
    return True, "invariant" if result.invariant else "varies within rounding"


def probe_case(
    case: Case, dtype: str, modes, batch_sizes, *, seed: int = 0, repeats: int = DEFAULT_REPEATS
) -> list[dict]:
    """One record per mode for ``case`` in ``dtype`` (see docs/report-schema.md); a mode that raises
    fails its record and the others go on."""
    pair = build_pair(case, dtype, seed=seed)
    pool = (
        np.random.default_rng(seed)
        .standard_normal((max(batch_sizes), *case.row_shape))
        .astype(jnp.dtype(dtype))
    )
    allowance = allowance_of(pair.jax, pool, dtype)
    records = []
    for mode in modes:
        record = {"module": case.name, "framework": "torch_ref" if mode == "torch" else "jaxlin"}
        record |= {"mode": mode, "dtype": dtype}
        try:
            forward = forward_of(mode, case, pair.jax, pair.torch)
            result = probe(forward, pool, batch_sizes, allowance=allowance, repeats=repeats)
        except Exception as error:  # a module that raises fails its row; the probe goes on
            records.append(record | {"passed": False, "verdict": f"ERROR: {type(error).__name__}: {error}"})
            continue
        passed, words = verdict(case, result)
        records.append(record | result.as_dict() | {"passed": passed, "verdict": words})
    return records


def failed_record(name: str, dtype: str, why: str) -> dict:
    """The one record of a probe that could not run at all."""
    return {
        "module": name,
        "framework": "–",
        "mode": "–",
        "dtype": dtype,
        "passed": False,
        "verdict": f"ERROR: {why}",
    }


def pool_limit(case: Case, dtype: str, memory: int | None = None) -> int:
    """The largest batch whose pool fits in half the available memory, from the module's row and
    output widths in ``dtype`` (:func:`crosscheck.probes.probing.max_pool_rows`)."""
    module = case.make_jax(nnx.Rngs(0), jnp.dtype(dtype))
    row = jax.ShapeDtypeStruct((1, *case.row_shape), jnp.dtype(dtype))
    out = jax.eval_shape(lambda x: module(x), row)
    itemsize = jnp.dtype(dtype).itemsize
    return max_pool_rows(math.prod(case.row_shape), math.prod(out.shape[1:]), itemsize, memory)
