"""The float64 truth is float64: narrowing casts inside either model are promoted in the truth runs,
and each promotion is reported where it happened."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from crosscheck.porting.truth import TruthNotes, promoting_jax, promoting_torch

X = np.random.default_rng(0).standard_normal((3, 8))
WEIGHT = np.linspace(0.5, 1.5, 8).astype(np.float32)  # float32 data: an input of the function


class TorchUpcastNorm(torch.nn.Module):
    """An RMSNorm as transformers writes it: float32 inside whatever the input."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.from_numpy(WEIGHT))

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return self.weight * x.to(dtype)


class TorchModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = TorchUpcastNorm()

    def forward(self, x):
        scale = torch.arange(8, dtype=torch.float32).float() / 7
        return torch.softmax(self.norm(x) * scale, -1, dtype=torch.float32)


def _reference(x):
    """The same function in float64 NumPy."""
    y = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6) * WEIGHT * (np.arange(8) / 7)
    e = np.exp(y - y.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_torch_narrowing_casts_are_promoted_and_counted_by_module():
    model = TorchModel().double()
    plain = model(torch.from_numpy(X))
    assert plain.dtype == torch.float32  # the softmax's dtype= narrows: the truth would be float32
    notes = TruthNotes()
    with promoting_torch(model, notes):
        promoted = model(torch.from_numpy(X))
    assert promoted.dtype == torch.float64
    assert np.abs(promoted.detach().numpy() - _reference(X)).max() < 1e-15
    assert np.abs(plain.detach().numpy() - _reference(X)).max() > 1e-9
    assert notes.lines() == [
        "3 float32 casts promoted in the model (TorchModel)",
        "1 float32 cast promoted in norm (TorchUpcastNorm)",
    ]
    assert torch.get_default_dtype() == torch.float32  # restored


def test_torch_to_another_tensor_and_type_are_promoted():
    notes = TruthNotes()
    model = torch.nn.Identity()
    narrow = torch.zeros(1, dtype=torch.float32)
    with promoting_torch(model, notes):
        a = torch.ones(2, dtype=torch.float64).to(narrow)
        b = torch.ones(2, dtype=torch.float64).type(torch.float16)
        c = torch.ones(2, dtype=torch.float64).to("cpu", torch.bfloat16)
        d = torch.tensor([1.0, 2.0])  # the default dtype is float64 in a truth run
    assert {t.dtype for t in (a, b, c, d)} == {torch.float64}
    assert notes.lines() == [
        "1 float32 cast promoted in the model (Identity)",
        "1 float16 cast promoted in the model (Identity)",
        "1 bfloat16 cast promoted in the model (Identity)",
    ]


class JaxUpcastNorm(nnx.Module):
    def __init__(self):
        self.scale = nnx.Param(jnp.asarray(WEIGHT))

    def __call__(self, x):
        y = x.astype(jnp.float32)
        y = y * jax.lax.rsqrt(jnp.mean(y**2, -1, keepdims=True) + 1e-6)
        return self.scale[...][None] * y.astype(x.dtype)


class JaxModel(nnx.Module):
    def __init__(self):
        self.norm = JaxUpcastNorm()

    def __call__(self, x):
        scale = (jnp.arange(8, dtype=jnp.float32) / 7)[None]
        return jax.nn.softmax((self.norm(x) * scale).astype(jnp.float32), -1)


def _promoted_jax(model, x, notes):
    @jax.jit
    def run(x):
        with promoting_jax(model, notes):
            return model(x)

    return run(x)


def test_jax_narrowing_casts_are_promoted_and_counted_by_module():
    with jax.enable_x64(True):
        model = JaxModel()
        model.norm.scale = nnx.Param(jnp.asarray(WEIGHT, jnp.float64))
        x = jnp.asarray(X)
        assert model(x).dtype == jnp.float32
        notes = TruthNotes()
        promoted = _promoted_jax(model, x, notes)
    assert promoted.dtype == jnp.float64
    assert np.abs(np.asarray(promoted) - _reference(X)).max() < 1e-15
    assert notes.lines() == [
        "1 float32 cast promoted in norm (JaxUpcastNorm)",
        "1 float32 cast promoted in the model (JaxModel)",
    ]


def test_jax_attention_softmax_is_float64_in_the_truth():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 5, 2, 4)) for _ in range(3))
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / 2.0
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    want = np.einsum("bhqk,bkhd->bqhd", weights / weights.sum(-1, keepdims=True), v)
    with jax.enable_x64(True):
        plain = jax.nn.dot_product_attention(q, k, v)
        notes = TruthNotes()

        class Attention(nnx.Module):
            def __call__(self, q, k, v):
                return jax.nn.dot_product_attention(q, k, v)

        model = Attention()

        @jax.jit
        def run(q, k, v):
            with promoting_jax(model, notes):
                return model(q, k, v)

        promoted = run(q, k, v)
    assert np.abs(np.asarray(plain) - want).max() > 1e-10  # jax computes the softmax in float32
    assert np.abs(np.asarray(promoted) - want).max() < 1e-14
    assert notes.lines() and all("float32" in line for line in notes.lines())


def test_everything_is_restored_even_when_the_model_raises():
    from jax._src import core

    bind = core.Primitive.bind
    model = JaxUpcastNorm()
    with pytest.raises(ZeroDivisionError), promoting_jax(model, TruthNotes()):
        raise ZeroDivisionError
    assert core.Primitive.bind is bind and type(model).__call__ is JaxUpcastNorm.__call__
    with pytest.raises(ZeroDivisionError), promoting_torch(torch.nn.Identity(), TruthNotes()):
        raise ZeroDivisionError
    assert torch.get_default_dtype() == torch.float32
    assert torch.ones(1).float().dtype == torch.float32


class TorchBlock(torch.nn.Module):
    """A Linear, an RMSNorm computing in float32 (as transformers' do), a GELU."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)
        self.norm = TorchUpcastNorm()

    def forward(self, x):
        return torch.nn.functional.gelu(self.norm(self.proj(x)))


class JaxBlock(nnx.Module):
    def __init__(self, approximate=False):
        self.proj = nnx.Linear(8, 8, rngs=nnx.Rngs(0))
        self.norm = nnx.RMSNorm(8, epsilon=1e-6, rngs=nnx.Rngs(0))
        self.approximate = approximate

    def __call__(self, x):
        y = self.proj(x)
        normed = self.norm(y.astype(jnp.float32)).astype(x.dtype)  # a port that upcasts, too
        return jax.nn.gelu(normed, approximate=self.approximate)


def test_an_honest_pair_that_narrows_inside_passes_the_same_function_tier_and_says_why():
    from crosscheck import check, copy_torch_to_jax

    ref = TorchBlock()
    port = JaxBlock()
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    result = check(port, ref, x)
    assert result.passed, str(result)
    assert "torch: 1 float32 cast promoted in norm (TorchUpcastNorm)" in result.truth_notes
    assert "JAX: 1 float32 cast promoted in the model (JaxBlock)" in result.truth_notes


def test_a_tanh_gelu_still_fails_the_same_function_tier():
    from crosscheck import check, copy_torch_to_jax

    ref, port = TorchBlock(), JaxBlock(approximate=True)
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    result = check(port, ref, x)
    assert not result.passed
    assert any(not item.same_function.passed for item in result.items), str(result)


class JaxBitsBlock(JaxBlock):
    """A port that moves float32 bits around (an identity here): nothing float64 can stand in for."""

    def __call__(self, x):
        y = self.proj(x).astype(jnp.float32)
        bits = jax.lax.bitcast_convert_type(jax.lax.bitcast_convert_type(y, jnp.int32), jnp.float32)
        y = y + jax.lax.stop_gradient(bits - y)
        return jax.nn.gelu(self.norm(y).astype(x.dtype), approximate=self.approximate)


def test_a_narrowing_that_cannot_be_promoted_limits_the_truth_and_says_where():
    from crosscheck import check, copy_torch_to_jax

    ref, port = TorchBlock(), JaxBitsBlock()
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    result = check(port, ref, x)
    limited = [line for line in result.truth_notes if "truth limited to float32 at" in line]
    assert limited and limited[0].startswith("JAX: truth limited to float32 at the model (JaxBitsBlock)")
    assert result.passed, str(result)  # judged at float32's precision: no false failure
    assert "u of float32, the truth's precision" in result.items[0].same_function.bound_text
    planted = JaxBitsBlock(approximate=True)
    copy_torch_to_jax(ref, planted)
    assert not check(planted, ref, x).passed  # a tanh GELU is still far beyond float32 rounding


def test_locate_promotes_too_and_blames_the_planted_gelu_not_the_norm():
    from crosscheck import copy_torch_to_jax, locate

    ref, port = TorchBlock(), JaxBlock()
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    honest = locate(port, ref, x)
    assert honest.passed and honest.first_failure is None, str(honest.rows())
    assert "torch: 1 float32 cast promoted in norm (TorchUpcastNorm)" in honest.truth_notes
    planted = JaxBlock(approximate=True)
    copy_torch_to_jax(ref, planted)
    found = locate(planted, ref, x)
    assert found.first_failure == ""  # the GELU is the block's own code, not a submodule's
    assert [layer.passed for layer in found.layers if layer.path in ("proj", "norm")] == [True, True]


def test_casts_inside_a_custom_jvp_rule_are_promoted_in_both_passes():
    @jax.custom_jvp
    def softplus32(x):
        return jnp.logaddexp(x.astype(jnp.float32), 0.0).astype(x.dtype)

    @softplus32.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return softplus32(x), (jax.nn.sigmoid(x.astype(jnp.float32)).astype(x.dtype) * t)

    class Softplus(nnx.Module):
        def __call__(self, x):
            return softplus32(x)

    model = Softplus()
    x = np.linspace(-3, 3, 7)
    with jax.enable_x64(True):
        notes = TruthNotes()

        @jax.jit
        def value_and_grad(x):
            with promoting_jax(model, notes):
                return jax.value_and_grad(lambda x: model(x).sum())(x)

        value, grad = value_and_grad(jnp.asarray(x))
    assert np.abs(np.asarray(value) - np.logaddexp(x, 0).sum()) < 1e-14
    assert np.abs(np.asarray(grad) - 1 / (1 + np.exp(-x))).max() < 1e-15
    assert notes.lines() and notes.lines()[0].endswith("promoted in the model (Softplus)")


class JaxCache(nnx.Module):
    """Writes its projection into a buffer at an int32 index plus a Python int, as a KV cache does."""

    def __init__(self):
        self.proj = nnx.Linear(4, 4, rngs=nnx.Rngs(0))

    def __call__(self, x, start=1):
        index = jnp.zeros((), jnp.int32) + start
        buffer = jnp.zeros((x.shape[0], 8, 4), x.dtype)
        return jax.lax.dynamic_update_slice(buffer, self.proj(x), (0, index, 0))


class TorchCache(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x, start=1):
        buffer = torch.zeros(x.shape[0], 8, 4, dtype=x.dtype)
        buffer[:, start : start + x.shape[1]] = self.proj(x)
        return buffer


def test_python_ints_beside_an_int32_index_work_in_every_run():
    """The working run is traced as the port runs alone, here outside 64-bit mode (a Python int stays
    int32 there); in the float64 runs an int64 beside an int32 is given back int32."""
    from crosscheck import check, copy_torch_to_jax, locate

    ref, port = TorchCache(), JaxCache()
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
    keywords = {"jax_kwargs": {"start": 2}, "torch_kwargs": {"start": 2}}
    with jax.enable_x64(False):  # as a user runs it (the test suite enables 64-bit mode globally)
        assert check(port, ref, x, **keywords).passed
        assert locate(port, ref, x, **keywords).passed
