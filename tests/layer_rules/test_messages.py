"""Every error message of layer_rules, raised by jaxlin and by torch_ref: one test per message,
parametrized over both frameworks (the messages are the same sentence; only dtype names, layouts
and the cast hints are each framework's own)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
import torch_ref
from tests._helpers import CHEAP


@dataclass(frozen=True)
class Framework:
    name: str

    def make(self, cls: str, *sizes, **options):
        if self.name == "jax":
            return getattr(jaxlin, cls)(*sizes, **options, **CHEAP, rngs=nnx.Rngs(0))
        return getattr(torch_ref, cls)(*sizes, **options)

    def ones(self, shape, dtype="float32"):
        if self.name == "jax":
            return jnp.ones(shape, dtype)
        return torch.ones(shape, dtype=getattr(torch, dtype))

    def dtype(self, name: str) -> str:
        return name if self.name == "jax" else f"torch.{name}"

    @property
    def cast_hint(self) -> str:
        return "x.astype(jnp.float32)" if self.name == "jax" else "x.to(torch.float32)"

    @property
    def mask_hint(self) -> str:
        return "mask.astype(bool)" if self.name == "jax" else "mask.bool()"


FRAMEWORKS = [Framework("jax"), Framework("torch")]
HEADS = "PerHeadLinear(num_heads=4, in_features=8, out_features=2)"
POOLED = "PooledHead(in_features=8, hidden_features=4, out_features=2, pool_at='input')"


@pytest.fixture(params=FRAMEWORKS, ids=lambda f: f.name)
def fw(request) -> Framework:
    return request.param


def _raises(error, message: str):
    return pytest.raises(error, match=re.escape(message))


# ---------------------------------------------------------------- Linear


def test_linear_names_the_features_axis(fw):
    message = (
        "Linear(in_features=128, out_features=10): expected input of shape (..., features=128), got (32, 128, 100); "
        "features are taken from the last axis (axis -1) and axis -1 has 100, not 128."
    )
    with _raises(ValueError, message):
        fw.make("Linear", 128, 10)(fw.ones((32, 128, 100)))


def test_a_scalar_has_no_features_axis(fw):
    with _raises(
        ValueError,
        "got (); features are taken from the last axis (axis -1) and a scalar has no features axis",
    ):
        fw.make("Linear", 1, 1)(fw.ones(()))


@pytest.mark.parametrize(
    "cls, sizes, shape",
    [
        ("Linear", (3, 2), (2, 3)),
        ("PointwiseConv", (3, 2), (2, 5, 3)),
        ("PerHeadLinear", (4, 3, 2), (2, 4, 3)),
        ("PooledHead", (3, 4, 2), (2, 5, 3)),
        ("BatchInvariantLinear", (3, 2), (2, 3)),
    ],
)
@pytest.mark.parametrize("dtype", ["int32", "bool", "complex64"])
def test_integer_bool_and_complex_inputs_are_type_errors(fw, cls, sizes, shape, dtype):
    module = fw.make(cls, *sizes)
    if fw.name == "torch" and cls == "PointwiseConv":
        shape = (2, 3, 5)
    message = (
        f"{module.describe()}: expected a real floating-point input, got dtype {fw.dtype(dtype)}; "
        f"cast it first, e.g. {fw.cast_hint}."
    )
    with _raises(TypeError, message):
        module(fw.ones(shape, dtype))


@pytest.mark.parametrize(
    "cls, sizes, bad, message",
    [
        (
            "Linear",
            (0, 4),
            None,
            "Linear(in_features=0, out_features=4): in_features must be a positive integer, got 0.",
        ),
        ("Linear", (3, 2.5), None, "out_features must be a positive integer, got 2.5."),
        (
            "PointwiseConv",
            (8, -1),
            None,
            "PointwiseConv(in_features=8, out_features=-1): out_features must be a positive integer, got -1.",
        ),
        ("PointwiseConv", (True, 4), None, "in_features must be a positive integer, got True."),
        (
            "PerHeadLinear",
            (0, 8, 4),
            None,
            "PerHeadLinear(num_heads=0, in_features=8, out_features=4): num_heads must be a positive integer, got 0.",
        ),
        ("PerHeadLinear", (2, -8, 4), None, "in_features must be a positive integer, got -8."),
        ("PooledHead", (8, 0, 2), None, "hidden_features must be a positive integer, got 0."),
        ("PooledHead", (8, 4.0, 2), None, "hidden_features must be a positive integer, got 4.0."),
        (
            "BatchInvariantLinear",
            (3, 2),
            {"tile_rows": 0},
            "BatchInvariantLinear(in_features=3, out_features=2): tile_rows must be a positive integer, got 0.",
        ),
    ],
)
def test_sizes_must_be_positive_integers(fw, cls, sizes, bad, message):
    with _raises(ValueError, message):
        fw.make(cls, *sizes, **(bad or {}))


def test_collapse_sizes_must_chain(fw):
    message = (
        "collapse(first=Linear(in_features=4, out_features=8), second=Linear(in_features=6, out_features=2)): "
        "the sizes don't chain; first's out_features=8 must equal second's in_features=6."
    )
    package = jaxlin if fw.name == "jax" else torch_ref
    with _raises(ValueError, message):
        package.collapse(fw.make("Linear", 4, 8), fw.make("Linear", 6, 2))


def test_collapse_takes_linear_layers_only(fw):
    package = jaxlin if fw.name == "jax" else torch_ref
    allowed = "a jaxlin.Linear" if fw.name == "jax" else "a torch_ref.Linear or torch.nn.Linear"
    with _raises(TypeError, f"collapse: second must be {allowed}, got PointwiseConv."):
        package.collapse(fw.make("Linear", 4, 8), fw.make("PointwiseConv", 8, 2))


# ---------------------------------------------------------------- PointwiseConv


def test_pointwise_input_in_the_other_frameworks_layout_names_the_features_axis(fw):
    if fw.name == "jax":  # PyTorch's (batch, features, length) handed to the channels-last module
        shape, message = (
            (2, 8, 100),
            (
                "PointwiseConv(in_features=8, out_features=4): expected input of shape (..., length, features=8), "
                "got (2, 8, 100); features are taken from the last axis (channels last, as nnx.Conv) and axis -1 has 100, not 8."
            ),
        )
    else:  # Flax's (batch, length, features) handed to the channels-first module
        shape, message = (
            (2, 100, 8),
            (
                "PointwiseConv(in_features=8, out_features=4): expected input of shape (batch, features=8, length) or "
                "(features=8, length), got (2, 100, 8); features are taken from axis -2 (channels first, as nn.Conv1d) "
                "and axis -2 has 100, not 8."
            ),
        )
    for impl in ("matmul", "conv"):
        with _raises(ValueError, message):
            fw.make("PointwiseConv", 8, 4, impl=impl)(fw.ones(shape))


def test_pointwise_input_of_the_wrong_rank(fw):
    if fw.name == "jax":
        shape, rule = (
            (8,),
            "a 1x1 convolution needs a length axis and a features axis (channels last, as nnx.Conv), not rank 1.",
        )
    else:
        shape, rule = (
            (2, 8, 3, 3),
            "a 1x1 convolution takes a rank-2 or rank-3 input (channels first, as nn.Conv1d), not rank 4.",
        )
    with _raises(ValueError, rule):
        fw.make("PointwiseConv", 8, 4)(fw.ones(shape))


def test_jaxlin_linear_impl_lists_its_lowerings():
    # Linear's lowering choice is jaxlin's (torch_ref.Linear is nn.Linear's one program).
    message = (
        "Linear(in_features=8, out_features=4): impl must be one of 'auto', 'matmul', 'conv', got 'fft'."
    )
    with _raises(ValueError, message):
        jaxlin.Linear(8, 4, impl="fft", rngs=nnx.Rngs(0))


def test_pointwise_impl_lists_each_frameworks_choices(fw):
    # jaxlin adds "auto" (the formulation chosen from the measured study); torch_ref names the two it runs.
    choices = "'auto', 'matmul', 'conv'" if fw.name == "jax" else "'matmul', 'conv'"
    message = f"PointwiseConv(in_features=8, out_features=4): impl must be one of {choices}, got 'fft'."
    with _raises(ValueError, message):
        fw.make("PointwiseConv", 8, 4, impl="fft")


# ---------------------------------------------------------------- PerHeadLinear


def test_heads_last_input_names_the_features_axis_and_says_the_heads_look_last(fw):
    message = (
        "PerHeadLinear(num_heads=8, in_features=64, out_features=32): expected input of shape "
        "(..., heads=8, features=64) with heads on axis -2, got (32, 64, 64, 8); features are taken from "
        "the last axis and axis -1 has 8, not 64; axis -1 has num_heads=8, so the heads look last: put the "
        "heads axis at head_axis and the features last."
    )
    with _raises(ValueError, message):
        fw.make("PerHeadLinear", 8, 64, 32)(fw.ones((32, 64, 64, 8)))


def test_wrong_number_of_heads(fw):
    message = (
        f"{HEADS}: expected input of shape (..., heads=4, features=8) with heads on axis -2, got (2, 3, 8); "
        "heads are taken from head_axis=-2, which has 3, not 4; put the heads axis at head_axis."
    )
    with _raises(ValueError, message):
        fw.make("PerHeadLinear", 4, 8, 2)(fw.ones((2, 3, 8)))


def test_heads_on_another_axis_get_a_hint(fw):
    message = (
        f"{HEADS}: expected input of shape (..., heads=4, features=8) with heads on axis -2, got (2, 4, 7, 8); heads are "
        "taken from head_axis=-2, which has 7, not 4; put the heads axis at head_axis "
        "(axis -3 has 4: move it to axis -2 or pass head_axis=-3)."
    )
    with _raises(ValueError, message):
        fw.make("PerHeadLinear", 4, 8, 2)(fw.ones((2, 4, 7, 8)))


def test_wrong_features_with_a_moved_head_axis(fw):
    message = (
        f"{HEADS}: expected input of shape (..., features=8) with heads=4 on axis 1, got (2, 4, 7, 5); "
        "features are taken from the last axis and axis -1 has 5, not 8."
    )
    with _raises(ValueError, message):
        fw.make("PerHeadLinear", 4, 8, 2, head_axis=1)(fw.ones((2, 4, 7, 5)))


@pytest.mark.parametrize(
    "head_axis, rule",
    [
        (2, "is the features axis of a rank-3 input"),
        (5, "is out of range for a rank-3 input"),
        (-4, "is out of range for a rank-3 input"),
    ],
)
def test_head_axis_on_the_features_axis_or_outside_the_input(fw, head_axis, rule):
    message = (
        f"{HEADS}: expected input of shape (..., features=8) with heads=4 on axis {head_axis}, got (2, 4, 8); "
        f"head_axis={head_axis} {rule}; valid axes are 0..1 or -3..-2."
    )
    with _raises(ValueError, message):
        fw.make("PerHeadLinear", 4, 8, 2, head_axis=head_axis)(fw.ones((2, 4, 8)))


def test_a_rank_one_input_has_no_heads_axis(fw):
    message = (
        f"{HEADS}: expected input of shape (..., heads=4, features=8) with heads on axis -2, got (8,); "
        "a per-head input needs a heads axis and a features axis, not rank 1."
    )
    with _raises(ValueError, message):
        fw.make("PerHeadLinear", 4, 8, 2)(fw.ones((8,)))


@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_head_axis_argument_is_an_int_other_than_the_features_axis(fw, bad):
    message = f"{HEADS}: head_axis must be an integer naming an axis other than the features axis (-1), got {bad!r}."
    with _raises(ValueError, message):
        fw.make("PerHeadLinear", 4, 8, 2, head_axis=bad)


def test_per_head_impl_lists_each_frameworks_choices(fw):
    # The batched formulation is "einsum" in jaxlin and "bmm" in torch_ref: each refuses the other's word.
    other, choices = (
        ("bmm", "'auto', 'einsum', 'vmap', 'loop'")
        if fw.name == "jax"
        else ("einsum", "'bmm', 'vmap', 'loop'")
    )
    with _raises(ValueError, f"{HEADS}: impl must be one of {choices}, got '{other}'."):
        fw.make("PerHeadLinear", 4, 8, 2, impl=other)


# ---------------------------------------------------------------- PooledHead


def test_pool_axis_that_is_the_features_axis(fw):
    message = (
        f"{POOLED}: expected input of shape (..., seq, features=8) with seq on axis 2, got (2, 5, 8); "
        "axis=2 is the features axis (the last axis); pool over a sequence axis such as -2."
    )
    with _raises(ValueError, message):
        fw.make("PooledHead", 8, 4, 2, axis=2)(fw.ones((2, 5, 8)))


@pytest.mark.parametrize("axis", [3, -4])
def test_pool_axis_out_of_range(fw, axis):
    message = (
        f"{POOLED}: expected input of shape (..., seq, features=8) with seq on axis {axis}, got (2, 5, 8); "
        f"axis={axis} is out of range for a rank-3 input; valid axes are 0..1 or -3..-2."
    )
    with _raises(ValueError, message):
        fw.make("PooledHead", 8, 4, 2, axis=axis)(fw.ones((2, 5, 8)))


@pytest.mark.parametrize("bad", [-1, 1.5, "seq", None, True])
def test_pool_axis_argument_is_an_int_other_than_the_features_axis(fw, bad):
    message = (
        f"{POOLED}: axis must be an integer naming an axis other than the features axis (-1), got {bad!r}."
    )
    with _raises(ValueError, message):
        fw.make("PooledHead", 8, 4, 2, axis=bad)


def test_a_rank_one_input_has_no_sequence_axis(fw):
    message = (
        f"{POOLED}: expected input of shape (..., seq, features=8) with seq on axis -2, got (8,); "
        "pooling needs a sequence axis besides the features axis, not rank 1."
    )
    with _raises(ValueError, message):
        fw.make("PooledHead", 8, 4, 2)(fw.ones((8,)))


def test_pooled_wrong_features(fw):
    message = (
        f"{POOLED}: expected input of shape (..., seq, features=8) with seq on axis -2, got (2, 5, 6); "
        "features are taken from the last axis and axis -1 has 6, not 8."
    )
    with _raises(ValueError, message):
        fw.make("PooledHead", 8, 4, 2)(fw.ones((2, 5, 6)))


@pytest.mark.parametrize("mask_shape", [(2, 5, 8), (5,), (2, 4)])
def test_mask_of_the_wrong_shape(fw, mask_shape):
    message = (
        f"{POOLED}: expected mask of shape (2, 5), got {mask_shape}; "
        "a mask has the input's shape (2, 5, 8) without the features axis."
    )
    with _raises(ValueError, message):
        fw.make("PooledHead", 8, 4, 2)(fw.ones((2, 5, 8)), fw.ones(mask_shape, "bool"))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_floating_mask_is_a_type_error_with_the_frameworks_own_hint(fw, dtype):
    message = (
        f"{POOLED}: expected a boolean mask (True = a real position) or an integer one (nonzero = a real position), "
        f"got dtype {fw.dtype(dtype)}; pass {fw.mask_hint}."
    )
    with _raises(TypeError, message):
        fw.make("PooledHead", 8, 4, 2)(fw.ones((2, 5, 8)), fw.ones((2, 5), dtype))


def test_the_mask_dtype_named_is_the_one_passed_not_the_one_jax_would_make():
    message = "got dtype float64; pass mask.astype(bool)."  # jnp.asarray would have made it float32
    with _raises(TypeError, message):
        Framework("jax").make("PooledHead", 8, 4, 2)(jnp.ones((2, 5, 8)), np.ones((2, 5), np.float64))


def test_pool_at_lists_the_choices(fw):
    message = (
        "PooledHead(in_features=8, hidden_features=4, out_features=2, pool_at='middle'): "
        "pool_at must be one of 'input', 'hidden', 'output', got 'middle'."
    )
    with _raises(ValueError, message):
        fw.make("PooledHead", 8, 4, 2, pool_at="middle")


def test_activation_must_be_callable(fw):
    with _raises(TypeError, f"{POOLED}: activation must be a callable such as relu, or None, got 'relu'."):
        fw.make("PooledHead", 8, 4, 2, activation="relu")
