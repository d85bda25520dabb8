"""The case registry: name -> (jaxlin constructor, torch_ref constructor, input maker).

Inputs are made in jaxlin's layout as NumPy arrays; :meth:`Case.torch_inputs` maps them to
torch_ref's layout (channels first for PointwiseConv). Every case builds both modules from
one set of weights: the torch module is initialized (PyTorch's default init) and copied into
the jaxlin module through :mod:`crosscheck.weights`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SHAPES = {"batch": 4, "seq": 16, "features": 32, "hidden": 24, "out": 8, "heads": 4}


def _placeholder(key, shape, dtype=np.float32):
    """Zeros made by NumPy: torch's weights are copied into the jaxlin module of every case, so
    drawing its own would only cost a compile per shape."""
    import jax.numpy as jnp

    return jnp.asarray(np.zeros(shape), dtype)


PLACEHOLDER_INIT = {"kernel_init": _placeholder, "bias_init": _placeholder}


@dataclass(frozen=True)
class Case:
    """One comparison: a jaxlin module and a torch_ref module computing the same function."""

    name: str
    make_jax: Callable[..., object]  # (rngs, param_dtype) -> nnx.Module
    make_torch: Callable[..., object]  # (dtype) -> torch.nn.Module
    make_inputs: Callable[[np.random.Generator], tuple[np.ndarray, ...]]
    channels_first: bool = False  # torch takes the first input as (N, features, length)
    tags: tuple[str, ...] = field(default=())

    def torch_inputs(self, inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """The same inputs in torch_ref's layout."""
        if not self.channels_first:
            return inputs
        return (np.swapaxes(inputs[0], -1, -2),) + inputs[1:]


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
    import jaxlin
    import torch_ref

    b, t, f, o = SHAPES["batch"], SHAPES["seq"], SHAPES["features"], SHAPES["out"]
    cases = [
        Case(
            "linear",
            lambda rngs, dtype: jaxlin.Linear(f, o, param_dtype=dtype, rngs=rngs, **PLACEHOLDER_INIT),
            lambda dtype: torch_ref.Linear(f, o, dtype=dtype),
            _normal(b, t, f),
        )
    ]
    for jax_impl, torch_impl in (("dot", "linear"), ("conv", "conv")):
        cases.append(
            Case(
                f"pointwise-{jax_impl}-{torch_impl}",
                lambda rngs, dtype, i=jax_impl: jaxlin.PointwiseConv(
                    f, o, impl=i, param_dtype=dtype, rngs=rngs, **PLACEHOLDER_INIT
                ),
                lambda dtype, i=torch_impl: torch_ref.PointwiseConv(f, o, impl=i, dtype=dtype),
                _normal(b, t, f),
                channels_first=True,
            )
        )
    return cases


def _pooled_cases() -> list[Case]:
    import jax
    import torch

    import jaxlin
    import torch_ref

    b, t, f, h, o = (SHAPES[k] for k in ("batch", "seq", "features", "hidden", "out"))
    cases = []
    for stage, act, masked, reorder in itertools.product(
        ("input", "hidden", "output"), (None, "relu"), (False, True), (True, False)
    ):
        mask_word, order_word = ("masked" if masked else "full"), ("reorder" if reorder else "literal")
        name = f"pooled-{stage}-{act or 'linear'}-{mask_word}-{order_word}"
        options = {"pool_at": stage, "reorder": reorder}
        cases.append(
            Case(
                name,
                lambda rngs, dtype, o_=options, a=act: jaxlin.PooledHead(
                    f, h, o, activation=jax.nn.relu if a else None, param_dtype=dtype, rngs=rngs,
                    **PLACEHOLDER_INIT, **o_,
                ),
                lambda dtype, o_=options, a=act: torch_ref.PooledHead(
                    f, h, o, activation=torch.relu if a else None, dtype=dtype, **o_
                ),
                _padded(b, t, f) if masked else _normal(b, t, f),
            )
        )
    return cases


def _per_head_cases() -> list[Case]:
    import jaxlin
    import torch_ref

    b, t, heads, f, o = (SHAPES[k] for k in ("batch", "seq", "heads", "features", "out"))
    return [
        Case(
            f"perhead-{jax_impl}-{torch_impl}",
            lambda rngs, dtype, i=jax_impl: jaxlin.PerHeadLinear(
                heads, f, o, impl=i, param_dtype=dtype, rngs=rngs, **PLACEHOLDER_INIT
            ),
            lambda dtype, i=torch_impl: torch_ref.PerHeadLinear(heads, f, o, impl=i, dtype=dtype),
            _normal(b, t, heads, f),
        )
        for jax_impl, torch_impl in itertools.product(("einsum", "vmap", "loop"), ("bmm", "vmap", "loop"))
    ]


def _collapse_cases() -> list[Case]:
    import torch

    import jaxlin
    import torch_ref

    b, t, f, h, o = (SHAPES[k] for k in ("batch", "seq", "features", "hidden", "out"))

    def make_torch(dtype):
        first, second = torch_ref.Linear(f, h, dtype=dtype), torch_ref.Linear(h, o, dtype=dtype)
        with torch.no_grad():  # collapse the stacked pair; the merged layer is what both sides run
            return torch_ref.collapse(first, second)

    return [
        Case(
            "collapse",
            lambda rngs, dtype: jaxlin.collapse(
                jaxlin.Linear(f, h, param_dtype=dtype, rngs=rngs, **PLACEHOLDER_INIT),
                jaxlin.Linear(h, o, param_dtype=dtype, rngs=rngs, **PLACEHOLDER_INIT),
            ),
            make_torch,
            _normal(b, t, f),
        )
    ]


def all_cases() -> dict[str, Case]:
    """Every registered case by name, in a stable order."""
    cases = _linear_cases() + _pooled_cases() + _per_head_cases() + _collapse_cases()
    return {case.name: case for case in cases}
