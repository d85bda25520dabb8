"""``jaxlin.jitted`` compiles once per input signature: ``chex.assert_max_traces`` on each module's
``__call__`` fails the test on any retrace (the study and ``crosscheck run`` time steady state on it)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxlin
from tests._helpers import CHEAP

# name -> (module, a first input shape, a second one)
MODULES = {
    "linear": (lambda: jaxlin.Linear(8, 4, **CHEAP, rngs=nnx.Rngs(0)), (6, 8), (3, 6, 8)),
    "pointwise-matmul": (
        lambda: jaxlin.PointwiseConv(8, 4, impl="matmul", **CHEAP, rngs=nnx.Rngs(0)),
        (2, 5, 8),
        (2, 7, 8),
    ),
    "pointwise-conv": (
        lambda: jaxlin.PointwiseConv(8, 4, impl="conv", **CHEAP, rngs=nnx.Rngs(0)),
        (2, 5, 8),
        (2, 7, 8),
    ),
    **{
        f"perhead-{impl}": (
            lambda impl=impl: jaxlin.PerHeadLinear(2, 8, 4, impl=impl, **CHEAP, rngs=nnx.Rngs(0)),
            (3, 2, 8),
            (5, 2, 8),
        )
        for impl in ("einsum", "vmap", "loop")
    },
    "pooled-head": (lambda: jaxlin.PooledHead(8, 6, 4, **CHEAP, rngs=nnx.Rngs(0)), (2, 5, 8), (3, 5, 8)),
    "batch-invariant": (lambda: jaxlin.BatchInvariantLinear(8, 4, **CHEAP, rngs=nnx.Rngs(0)), (6, 8), (9, 8)),
}


@pytest.fixture(autouse=True)
def fresh_trace_counter():
    chex.clear_trace_counter()


def allow_traces(monkeypatch, cls, n: int) -> None:
    """Every call of ``cls.__call__`` under a trace counts; the ``n + 1``-st raises AssertionError."""
    monkeypatch.setattr(cls, "__call__", chex.assert_max_traces(cls.__call__, n=n))


def inputs(shape, count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.standard_normal(shape), jnp.float32) for _ in range(count)]


@pytest.mark.parametrize("name", MODULES)
def test_ten_calls_of_one_shape_trace_once_and_a_new_shape_once_more(monkeypatch, name):
    make, shape, other = MODULES[name]
    module = make()
    allow_traces(monkeypatch, type(module), n=2)
    forward = jaxlin.jitted(module)
    pooled = name == "pooled-head"  # the sequence axis is pooled away
    for x in inputs(shape, 10):
        chex.assert_shape(forward(x), (shape[:-2] if pooled else shape[:-1]) + (4,))
    for x in inputs(other, 10, seed=1):
        forward(x)
    with pytest.raises(AssertionError, match="traced > 2 times"):
        forward(jnp.ones((1, *shape), jnp.float32))


def test_a_mask_is_one_more_signature_and_new_mask_values_are_not(monkeypatch):
    allow_traces(monkeypatch, jaxlin.PooledHead, n=2)
    forward = jaxlin.jitted(MODULES["pooled-head"][0]())
    x = jnp.ones((2, 5, 8), jnp.float32)
    forward(x)
    for length in range(1, 6):
        forward(x, jnp.arange(5)[None, :] < jnp.asarray([[length], [5]]))


def test_lowering_for_hlo_reuses_the_trace_of_the_call(monkeypatch):
    allow_traces(monkeypatch, jaxlin.PerHeadLinear, n=1)
    forward = jaxlin.jitted(MODULES["perhead-einsum"][0]())
    x = jnp.ones((3, 2, 8), jnp.float32)
    assert "dot" in forward.lower(x).compile().as_text()
    forward(x)


def test_the_count_catches_a_wrapper_that_compiles_on_every_call(monkeypatch):
    # What the assertion exists for: a fresh jax.jit per call retraces although nothing changed.
    module = MODULES["linear"][0]()
    allow_traces(monkeypatch, jaxlin.Linear, n=1)
    x = jnp.ones((6, 8), jnp.float32)
    jax.jit(lambda v: module(v))(x)
    with pytest.raises(AssertionError, match="traced > 1 times"):
        jax.jit(lambda v: module(v))(x)
