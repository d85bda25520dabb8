"""``locate``'s float64 pass as one compiled program: the eager pass's calls (paths, order, counts,
modules, states, values to float64's rounding, truth notes), and the eager pass itself wherever the
compiled one could not show the same (a pass that changes the model's state, records a NumPy array, or
cannot be traced)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxlin
from crosscheck.porting import compiled_capture as compiled
from crosscheck.porting.capture import capture_jax
from crosscheck.porting.compiled_capture import compiled_capture
from crosscheck.porting.truth import TruthNotes, promoted_call


class Narrowing(nnx.Module):
    """Two layers, the second called twice, and a float32 cast the float64 pass promotes."""

    def __init__(self, width: int, rngs: nnx.Rngs):
        self.first = jaxlin.Linear(width, width, rngs=rngs)
        self.second = jaxlin.Linear(width, width, rngs=rngs)

    def __call__(self, x, scale=None):
        y = self.second(jnp.tanh(self.first(x)).astype(jnp.float32))
        return self.second(y) * (1.0 if scale is None else scale)


class Counting(nnx.Module):
    """A pass that advances the model's state (as a cache would)."""

    def __init__(self, rngs: nnx.Rngs):
        self.layer = jaxlin.Linear(3, 3, rngs=rngs)
        self.calls = nnx.Variable(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        self.calls[...] += 1
        return self.layer(x)


class HandsOverNumPy(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.layer = jaxlin.Linear(3, 3, rngs=rngs)

    def __call__(self, x):
        return self.layer(np.ones((1, 3))) + self.layer(x)


class Untraceable(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.layer = jaxlin.Linear(3, 3, rngs=rngs)

    def __call__(self, x):
        return self.layer(x) if float(x.sum()) > 0 else -self.layer(x)


def _both(model, x, keywords=None):
    with jax.enable_x64(True):
        arrays = (jnp.asarray(x),)
        eager_notes, compiled_notes = TruthNotes(), TruthNotes()
        eager = promoted_call(model, lambda: capture_jax(model, arrays, keywords), eager_notes)
        fused = compiled_capture(model, arrays, keywords or {}, compiled_notes)
    return eager, fused, eager_notes, compiled_notes


@settings(max_examples=8, deadline=None)
@given(batch=st.integers(1, 4), width=st.integers(1, 6), scaled=st.booleans(), seed=st.integers(0, 99))
def test_the_compiled_pass_gives_the_eager_pass_calls(batch, width, scaled, seed):
    model = Narrowing(width, nnx.Rngs(seed))
    x = np.random.default_rng(seed).standard_normal((batch, width))
    keywords = {"scale": np.float64(2.0)} if scaled else None
    (eager, eager_out), (fused, fused_out), eager_notes, fused_notes = _both(model, x, keywords)
    assert [(c.path, c.order, c.count) for c in fused] == [(c.path, c.order, c.count) for c in eager]
    assert [(c.path, c.count) for c in fused] == [("", 1), ("first", 1), ("second", 2)]
    assert all(f.module is e.module for f, e in zip(fused, eager, strict=True))
    assert fused_notes.lines() == eager_notes.lines() == ["1 float32 cast promoted in the model (Narrowing)"]
    for f, e in zip(fused, eager, strict=True):
        ours, theirs = (
            jax.tree.leaves((f.args, f.kwargs, f.output)),
            jax.tree.leaves((e.args, e.kwargs, e.output)),
        )
        assert jax.tree.structure((f.args, f.kwargs, f.output)) == jax.tree.structure(
            (e.args, e.kwargs, e.output)
        )
        for a, b in zip(ours, theirs, strict=True):
            assert np.asarray(a).dtype == np.asarray(b).dtype == np.float64
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(np.asarray(fused_out), np.asarray(eager_out), rtol=1e-13)


def test_a_pass_that_changes_the_models_state_runs_eagerly_and_records_each_state_before_its_call():
    model = Counting(nnx.Rngs(0))
    with jax.enable_x64(True):
        calls, _ = compiled_capture(model, (jnp.ones((2, 3)),), {}, TruthNotes())
    assert int(model.calls[...]) == 1  # the eager pass ran on the model, as capture_jax's does
    assert int(calls[0].state["calls"][...]) == 0


@pytest.mark.parametrize("model", [HandsOverNumPy, Untraceable])
def test_a_pass_recording_numpy_or_that_cannot_be_traced_runs_eagerly(model):
    model = model(nnx.Rngs(0))
    with jax.enable_x64(True), pytest.raises(Exception):  # noqa: B017, PT011 - whichever the trace raises
        compiled._compiled(model, (jnp.ones((1, 3)),), {}, TruthNotes())
    (eager, eager_out), (fused, fused_out), *_ = _both(model, np.ones((1, 3)))
    assert [call.path for call in fused] == [call.path for call in eager] == ["", "layer"]
    np.testing.assert_array_equal(np.asarray(fused_out), np.asarray(eager_out))  # the same eager pass
