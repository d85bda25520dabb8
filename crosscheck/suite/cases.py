"""The cases: a jaxlin module and its torch_ref twin, the inputs they take, and their registry.

One :class:`Case` type serves ``crosscheck run`` (``make_inputs``), the batch-size probe
(``row_shape``) and the study. Inputs are made in jaxlin's layout as NumPy arrays;
:meth:`Case.torch_inputs` hands them to torch_ref in its layout (channels first for PointwiseConv),
and :func:`~crosscheck.porting.channels.swap_channels` is the one place that moves the features axis.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np
import torch

import jaxlin
import torch_ref
from crosscheck.porting.channels import swap_channels

SHAPES = {"batch": 4, "seq": 16, "features": 32, "hidden": 24, "out": 8, "heads": 4}


def placeholder(key, shape, dtype=np.float32):
    """Zeros made by NumPy, as an initializer: a case's jaxlin module gets torch's weights copied in
    anyway, so drawing its own would only cost a compile per shape."""
    return jax.numpy.asarray(np.zeros(shape, np.dtype(dtype)))


PLACEHOLDER_INIT = {"kernel_init": placeholder, "bias_init": placeholder}


@dataclass(frozen=True)
class Case:
    """A jaxlin module and a torch_ref module computing the same function, and their inputs.

    ``make_jax(rngs, param_dtype)`` and ``make_torch(dtype)`` build the two modules;
    ``make_inputs(rng)`` the inputs of a check (jaxlin layout); ``row_shape`` one row of the
    batch-size probe's pool. ``channels_first``: torch takes the first input as ``(N, features, L)``.
    ``promises_invariance``: rows must not depend on the batch size. ``group``: cases of one group
    are checked together, their JAX evaluations in one compiled program (``crosscheck run``; a case
    of its own by default).
    """

    name: str
    make_jax: Callable[..., object]
    make_torch: Callable[..., object]
    make_inputs: Callable[[np.random.Generator], tuple[np.ndarray, ...]] | None = None
    channels_first: bool = False
    row_shape: tuple[int, ...] | None = None
    promises_invariance: bool = False
    group: str = ""

    def torch_inputs(self, inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """The same inputs in torch_ref's layout."""
        if not self.channels_first:
            return tuple(inputs)
        return (np.ascontiguousarray(swap_channels(inputs[0])),) + tuple(inputs[1:])

    def jax_output(self, torch_output: np.ndarray) -> np.ndarray:
        """A torch_ref output in jaxlin's layout."""
        return swap_channels(torch_output) if self.channels_first else torch_output


def pair_of(jax_cls, torch_cls, *sizes, **options) -> tuple[Callable, Callable]:
    """``(make_jax, make_torch)`` for classes taking the same positional sizes and keyword options."""
    return (
        lambda rngs, dtype: jax_cls(*sizes, param_dtype=dtype, rngs=rngs, **PLACEHOLDER_INIT, **options),
        lambda dtype: torch_cls(*sizes, dtype=dtype, **options),
    )


def _normal(*shape: int) -> Callable[[np.random.Generator], tuple[np.ndarray, ...]]:
    return lambda rng: (rng.standard_normal(shape),)


def _padded(batch: int, seq: int, features: int) -> Callable[[np.random.Generator], tuple[np.ndarray, ...]]:
    """Input with a padding mask: row lengths spread over 0..seq (row 0 has no real position)."""

    def make(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        lengths = np.linspace(0, seq, batch).round().astype(int)
        mask = np.arange(seq)[None, :] < lengths[:, None]
        return rng.standard_normal((batch, seq, features)), mask

    return make


def _linear_cases() -> list[Case]:
    b, t, f, o = SHAPES["batch"], SHAPES["seq"], SHAPES["features"], SHAPES["out"]
    cases = [
        Case("linear", *pair_of(jaxlin.Linear, torch_ref.Linear, f, o), _normal(b, t, f), group="linear")
    ]
    for impl in ("matmul", "conv"):
        makers = pair_of(jaxlin.PointwiseConv, torch_ref.PointwiseConv, f, o, impl=impl)
        cases.append(
            Case(f"pointwise-{impl}", *makers, _normal(b, t, f), channels_first=True, group="linear")
        )
    return cases


@dataclass(frozen=True)
class PooledVariant:
    """One configuration of the PooledHead cases, and its case name."""

    pool_at: str
    activation: str | None
    masked: bool
    reorder: bool

    @property
    def name(self) -> str:
        mask_word, order_word = (
            ("masked" if self.masked else "full"),
            ("reorder" if self.reorder else "literal"),
        )
        return f"pooled-{self.pool_at}-{self.activation or 'linear'}-{mask_word}-{order_word}"


POOLED_VARIANTS = tuple(
    PooledVariant(*options)
    for options in itertools.product(
        ("input", "hidden", "output"), (None, "relu"), (False, True), (True, False)
    )
)


def _pooled_cases() -> list[Case]:
    b, t, f, h, o = (SHAPES[k] for k in ("batch", "seq", "features", "hidden", "out"))
    cases = []
    for variant in POOLED_VARIANTS:
        stage, act, masked, reorder, name = (
            variant.pool_at, variant.activation, variant.masked, variant.reorder, variant.name,
        )  # fmt: skip
        options = {"pool_at": stage, "reorder": reorder}
        jax_make = pair_of(
            jaxlin.PooledHead,
            torch_ref.PooledHead,
            f,
            h,
            o,
            **options,
            activation=jax.nn.relu if act else None,
        )[0]
        torch_make = pair_of(
            jaxlin.PooledHead,
            torch_ref.PooledHead,
            f,
            h,
            o,
            **options,
            activation=torch.relu if act else None,
        )[1]
        inputs = _padded(b, t, f) if masked else _normal(b, t, f)
        cases.append(Case(name, jax_make, torch_make, inputs, group="pooled"))
    return cases


def _per_head_cases() -> list[Case]:
    b, t, heads, f, o = (SHAPES[k] for k in ("batch", "seq", "heads", "features", "out"))
    return [
        Case(
            f"perhead-{jax_impl}-{torch_impl}",
            pair_of(jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, heads, f, o, impl=jax_impl)[0],
            pair_of(jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, heads, f, o, impl=torch_impl)[1],
            _normal(b, t, heads, f),
            group="perhead",
        )
        for jax_impl, torch_impl in itertools.product(("einsum", "vmap", "loop"), ("bmm", "vmap", "loop"))
    ]


def _collapse_cases() -> list[Case]:
    b, t, f, h, o = (SHAPES[k] for k in ("batch", "seq", "features", "hidden", "out"))

    def make_jax(rngs, dtype):
        layers = [
            jaxlin.Linear(m, n, param_dtype=dtype, rngs=rngs, **PLACEHOLDER_INIT) for m, n in ((f, h), (h, o))
        ]
        return jaxlin.collapse(*layers)

    def make_torch(dtype):
        first, second = torch_ref.Linear(f, h, dtype=dtype), torch_ref.Linear(h, o, dtype=dtype)
        with torch.no_grad():  # collapse the stacked pair; the merged layer is what both sides run
            return torch_ref.collapse(first, second)

    return [Case("collapse", make_jax, make_torch, _normal(b, t, f), group="linear")]


def all_cases() -> dict[str, Case]:
    """Every case of ``crosscheck run`` by name, in a stable order."""
    cases = _linear_cases() + _pooled_cases() + _per_head_cases() + _collapse_cases()
    return {case.name: case for case in cases}


def probe_cases() -> dict[str, Case]:
    """The modules of the batch-size probe: Linear 768→768 (the layer of the batch-size question
    in docs/batch-invariance.md), its batch-invariant twin, and one of each other variant."""
    listed = [
        Case("linear", *pair_of(jaxlin.Linear, torch_ref.Linear, 768, 768), row_shape=(768,)),
        Case(
            "batch-invariant-linear",
            *pair_of(jaxlin.BatchInvariantLinear, torch_ref.BatchInvariantLinear, 768, 768),
            row_shape=(768,),
            promises_invariance=True,
        ),
        Case(
            "pointwise",
            *pair_of(jaxlin.PointwiseConv, torch_ref.PointwiseConv, 256, 32),
            row_shape=(8, 256),
            channels_first=True,
        ),
        Case(
            "perhead", *pair_of(jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, 8, 64, 64), row_shape=(8, 64)
        ),
        Case("pooled", *pair_of(jaxlin.PooledHead, torch_ref.PooledHead, 64, 48, 8), row_shape=(16, 64)),
    ]
    return {case.name: case for case in listed}
