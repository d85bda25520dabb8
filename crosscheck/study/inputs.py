"""What every study configuration needs: inputs in each implementation's framework and layout, the
layout changes, the pair builder's study cases, and magnitudes for the agreement check.

>>> heads_first(np.zeros((2, 3, 4, 5))).shape
(4, 2, 3, 5)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch

from crosscheck.study.engine import Impl, Traffic, float32_traffic
from crosscheck.suite.cases import Case, pair_of
from crosscheck.suite.pairs import build_pair


def heads_first(a: np.ndarray) -> np.ndarray:
    """``(..., heads, in)`` -> ``(heads, ..., in)``."""
    return np.moveaxis(a, -2, 0)


def heads_last(a: np.ndarray) -> np.ndarray:
    """``(heads, ..., out)`` -> ``(..., heads, out)``."""
    return np.moveaxis(a, 0, -2)


SHARE_FROM_BYTES = 64 * 2**20
"""Input sets this large are shared between the implementations of one framework and layout. An
implementation called right after another in a round then reads the set the other has just read; a
set of twice the last-level cache (32 MiB on the AMD EPYC the study runs on) or more is not still
there, so the timing is as with a copy of its own. Smaller sets (where it could be) are not shared:
they cost little memory."""


def float32_normal(seed: int, shape) -> np.ndarray:
    """``default_rng(seed).standard_normal(shape).astype(np.float32)``, the same values, drawn one slice of
    the first axis at a time (the generator's stream continues from slice to slice): no float64 copy of
    the whole array (537 MB at per-head h32 1024→1024 on 2048 rows).

    >>> x = float32_normal(3, (4, 2, 5))
    >>> x.dtype, np.array_equal(x, np.random.default_rng(3).standard_normal((4, 2, 5)).astype(np.float32))
    (dtype('float32'), True)
    """
    rng, shape = np.random.default_rng(seed), tuple(shape)
    if not shape:
        return rng.standard_normal(shape).astype(np.float32)
    x = np.empty(shape, np.float32)
    for i in range(shape[0]):
        x[i] = rng.standard_normal(shape[1:])
    return x


def random_inputs(shape, device: str) -> Callable[[int, Impl], tuple]:
    """``make(seed, impl)``: one random float32 array, NumPy-made, in the impl's framework and layout.

    It depends on nothing of ``impl`` but its framework and ``to_layout``: ``make.share_key`` says so,
    and :func:`crosscheck.study.engine.run_config` gives every implementation with the same key the
    same arrays (:func:`~crosscheck.study.engine.shared_inputs`) where one set is at least
    :data:`SHARE_FROM_BYTES`; smaller sets stay one per implementation."""

    def make(seed: int, impl: Impl):
        x = float32_normal(seed, shape)
        x = np.ascontiguousarray(impl.to_layout(x)) if impl.to_layout else x
        if impl.framework == "jax":
            return (jnp.asarray(x),)
        return (torch.from_numpy(x).to(device),)

    shared = 4 * int(np.prod(shape)) >= SHARE_FROM_BYTES
    make.share_key = lambda seed, impl: (seed, impl.framework, impl.to_layout) if shared else None
    return make


def study_pair(jax_cls, torch_cls, *sizes, device: str, jax_options=None, torch_options=None, **options):
    """A jaxlin/torch_ref pair on the study's one set of weights (torch's init under seed 0), the
    torch module on ``device``; ``jax_options``/``torch_options`` go to one side only (an impl name)."""
    make_jax = pair_of(jax_cls, torch_cls, *sizes, **options, **(jax_options or {}))[0]
    make_torch = pair_of(jax_cls, torch_cls, *sizes, **options, **(torch_options or {}))[1]
    pair = build_pair(Case(f"study {jax_cls.__name__}", make_jax, make_torch), "float32", seed=0)
    return pair.jax, pair.torch.to(device)


def no_grad(module) -> Callable:
    """``module`` called without autograd, as a timed torch call."""

    def call(*inputs):
        with torch.no_grad():
            return module(*inputs)

    return call


def compiled_hlo(fn, *args) -> Callable[[], str]:
    """``hlo()`` of ``jax.jit(fn)`` on ``args``; a :class:`jax.ShapeDtypeStruct` among them is zeros of
    that shape, made when ``hlo()`` runs (not held while the configuration's other calls are prepared
    and timed)."""

    def hlo():
        concrete = [jnp.zeros(a.shape, a.dtype) if isinstance(a, jax.ShapeDtypeStruct) else a for a in args]
        return jax.jit(fn).lower(*concrete).compile().as_text()

    return hlo


def module_hlo(call, shape) -> Callable[[], str]:
    """``hlo()`` of a :func:`jaxlin.jitted` call on a float32 input of ``shape``."""
    return lambda: call.lower(jnp.zeros(shape, jnp.float32)).compile().as_text()


def linear_magnitude(kernel, bias, rows: int = 8) -> Callable[[tuple], np.ndarray]:
    """``|x| @ |W| + |b|`` of the first ``rows`` rows, float64 (those rows alone converted)."""
    w, b = np.abs(np.asarray(kernel, np.float64)), np.abs(np.asarray(bias, np.float64))
    return lambda inputs: (
        np.abs(np.asarray(np.asarray(inputs[0]).reshape(-1, w.shape[0])[:rows], np.float64)) @ w + b
    )


def per_head_magnitude(kernel, bias, rows: int, heads: int, size: int) -> Callable[[tuple], np.ndarray]:
    """``Σ|x||w| + |b|`` per head of the first 8 rows, float64 (those rows alone converted)."""
    w, b = np.abs(np.asarray(kernel, np.float64)), np.abs(np.asarray(bias, np.float64))

    def magnitude(inputs):
        x = np.abs(np.asarray(np.asarray(inputs[0]).reshape(rows, heads, size)[:8], np.float64))
        return np.einsum("rhi,hio->rho", x, w) + b

    return magnitude


def first_rows(features: int, rows: int = 8) -> Callable[[np.ndarray], np.ndarray]:
    """The first ``rows`` rows of an output with ``features`` per row."""
    return lambda y: y.reshape(-1, features)[:rows]


def per_head_traffic(rows: int, heads: int, size: int) -> Traffic:
    """The least traffic of ``heads`` size→size linears with bias on ``rows`` rows (float32)."""
    return float32_traffic(rows * heads * size, heads * size * (size + 1), rows * heads * size)
