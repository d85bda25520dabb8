"""``called``: a module run as one compiled program (``locate``'s rows judged forward only), the same
values and truth notes as the eager call, and eager where a trace cannot take it."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlin
from crosscheck import copy_torch_to_jax, locate
from crosscheck.porting import compiled_call, locating
from crosscheck.porting.compiled_call import called
from crosscheck.porting.fused import traced_once
from crosscheck.porting.truth import TruthNotes
from tests.crosscheck.porting.test_locate_traced import JaxStack, TorchStack
from tests.crosscheck.porting.test_locate_traced import X as STACK_X
from tests.crosscheck.porting.test_truth import JaxModel


class Flagged(nnx.Module):
    """Keyword flags, a ``None`` and a Python number beside the arrays: constants to the program."""

    def __init__(self):
        self.linear = jaxlin.Linear(6, 5, rngs=nnx.Rngs(0))

    def __call__(self, x, mask=None, *, scale=2.0, square=False):
        y = self.linear(x) * scale
        y = y * y if square else y
        return (y, None) if mask is None else (jnp.where(mask, y, 0.0), y.sum())


X = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)


def test_a_compiled_call_gives_the_eager_calls_values_bit_for_bit():
    module = Flagged()
    mask = np.array([[True], [False], [True]])
    for args, kwargs in [((X,), {}), ((X, mask), {"square": True, "scale": 0.5})]:
        compiled, eager = called(module, args, kwargs, True), called(module, args, kwargs, False)
        assert jax.tree.structure(compiled) == jax.tree.structure(eager)
        for ours, theirs in zip(jax.tree.leaves(compiled), jax.tree.leaves(eager), strict=True):
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_the_weights_go_in_as_arguments_not_constants(monkeypatch):
    lowered = []
    original = jax.jit

    def recording(function, **options):
        jitted = original(function, **options)
        return lambda *args: lowered.append(jitted.lower(*args).as_text()) or jitted(*args)

    monkeypatch.setattr(compiled_call.jax, "jit", recording)
    layer = jaxlin.Linear(256, 256, rngs=nnx.Rngs(0))
    called(layer, (np.ones((1, 256), np.float32),), {}, True)
    signature, body = lowered[0].split("\n", 2)[1:]
    assert len(lowered) == 1 and "tensor<256x256xf32>" in signature  # the kernel is an argument of main
    assert "stablehlo.constant" not in body


def test_a_float64_truth_run_notes_each_promoted_cast_once_compiled_or_not():
    model = JaxModel()
    x = np.random.default_rng(1).standard_normal((4, 8))
    with jax.enable_x64(True):
        lines = []
        for compiled in (True, False):
            notes = TruthNotes()
            out = called(model, (jnp.asarray(x),), {}, compiled, notes)
            lines.append(notes.lines())
            assert out.dtype == jnp.float64
    assert lines[0] == lines[1] and lines[0]


class NamedCast(nnx.Module):
    """A float32 cast (promoted in a truth run) before an output a compiled program cannot give back."""

    def __call__(self, x):
        return x.astype(jnp.float32) * 2, "done"


def test_what_a_trace_cannot_take_runs_eagerly_with_its_notes_said_once():
    lines = []
    with jax.enable_x64(True):
        for compiled in (True, False):
            notes = TruthNotes()
            doubled, said = called(NamedCast(), (jnp.ones(3, jnp.float64),), {}, compiled, notes)
            assert said == "done" and doubled.dtype == jnp.float64 and doubled.tolist() == [2.0, 2.0, 2.0]
            lines.append(notes.lines())
    assert lines[0] == lines[1] == ["1 float32 cast promoted in the model (NamedCast)"]


def test_locate_runs_its_forward_rows_compiled_where_rows_run_beside(monkeypatch):
    runs = []
    original = compiled_call._compiled_call
    monkeypatch.setattr(compiled_call, "_compiled_call", lambda *a: runs.append(a[0]) or original(*a))
    monkeypatch.setattr(locating, "GRADIENT_SHARE", 0.0)  # every row over its share: judged forward
    monkeypatch.setattr(locating, "SMALL_MODEL", 0)
    ref, port = TorchStack(), JaxStack()
    copy_torch_to_jax(ref, port)
    compiled = locate(port, ref, STACK_X, grads=True)
    assert runs and compiled.passed
    monkeypatch.setattr(locating, "rows_fit_beside", lambda _: False)  # a model near the machine's size
    runs.clear()
    eager = locate(port, ref, STACK_X, grads=True)
    assert not runs and [str(row) for row in eager.rows()] == [str(row) for row in compiled.rows()]


def test_calls_of_one_structure_and_shapes_compile_once_within_a_locate_and_say_their_notes(monkeypatch):
    traced = []
    original = compiled_call.jax.jit
    monkeypatch.setattr(compiled_call.jax, "jit", lambda function: traced.append(1) or original(function))
    first, second = JaxModel(), JaxModel()
    second.norm.scale[...] = 2 * second.norm.scale[...]
    x = np.random.default_rng(1).standard_normal((4, 8))
    outputs, lines = [], []
    with jax.enable_x64(True), traced_once():
        for model in (first, second, first):
            notes = TruthNotes()
            outputs.append(np.asarray(called(model, (jnp.asarray(x),), {}, True, notes)))
            lines.append(notes.lines())
        called(first, (jnp.asarray(x[:2]),), {}, True, TruthNotes())  # other shapes: traced again
    assert len(traced) == 2
    assert lines[0] == lines[1] == lines[2] and lines[0]
    with jax.enable_x64(True):
        alone = np.asarray(called(second, (jnp.asarray(x),), {}, True, TruthNotes()))  # its own program
    np.testing.assert_array_equal(outputs[1], alone)  # the second model's own weights, not the first's
    np.testing.assert_array_equal(outputs[0], outputs[2])
