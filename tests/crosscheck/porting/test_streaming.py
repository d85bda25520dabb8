"""The float64 truth without whole-model float64 copies: torch layers widened in place while called
(or for the whole run, with gradients), JAX parameters widened where used. Each gives the same numbers,
bit for bit, as the float64 copy it replaces, and leaves the model exactly as it was."""

import copy

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscheck.porting.magnitudes import float64_jax, float64_view
from crosscheck.porting.streaming import float64_streamed, float64_whole
from crosscheck.porting.truth import TruthNotes, promoted_call, promoting_torch


class TiedHead(torch.nn.Module):
    """An embedding, a norm, attention, and a head reading the embedding's weight outside its call."""

    def __init__(self, vocab=11, width=8):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.norm = torch.nn.LayerNorm(width)
        self.attention = torch.nn.MultiheadAttention(width, 2, batch_first=True)
        self.register_buffer("scale", torch.tensor(0.5))

    def forward(self, ids):
        x = self.norm(self.embed(ids)) * self.scale
        x = x + self.attention(x, x, x, need_weights=False)[0]
        return torch.nn.functional.linear(x, self.embed.weight)


def _tensors(model):
    return {name: t.detach().clone() for name, t in model.state_dict(keep_vars=True).items()}


def _same_tensors(model, saved):
    now = model.state_dict(keep_vars=True)
    return all(now[k].dtype == v.dtype and torch.equal(now[k].detach(), v) for k, v in saved.items())


def _truth_by_copy(model, *args):
    double = copy.deepcopy(model).double()
    with torch.no_grad(), promoting_torch(double, TruthNotes()):
        return double(*args)


def _truth_streamed(model, *args):
    with torch.no_grad(), float64_streamed(model), promoting_torch(model, TruthNotes()):
        return model(*args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_streamed_truth_equals_the_float64_copys_bit_for_bit_and_leaves_every_tensor_as_it_was(dtype):
    torch.manual_seed(0)
    model = TiedHead().to(dtype).eval()
    saved = _tensors(model)
    ids = torch.randint(0, 11, (2, 5))
    assert torch.equal(_truth_streamed(model, ids), _truth_by_copy(model, ids))
    assert _same_tensors(model, saved)
    assert model.embed.weight is dict(model.named_parameters())["embed.weight"]


def test_a_streamed_layer_holds_float64_weights_only_during_its_own_call():
    seen = {}
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))

    def record(index):
        def hook(module, args, output):
            seen[index] = (model[0].weight.dtype, model[2].weight.dtype)

        return hook

    for index in (0, 2):
        model[index].register_forward_hook(record(index))
    _truth_streamed(model, torch.ones(1, 3, dtype=torch.float64))
    assert seen == {0: (torch.float64, torch.float32), 2: (torch.float32, torch.float64)}


def test_a_forward_that_raises_gives_every_tensor_back():
    class Fails(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(3, 3)

        def forward(self, x):
            self.proj(x)
            with torch.no_grad(), float64_streamed(self.proj):
                raise RuntimeError("inside the call")

    model = Fails()
    saved = _tensors(model)
    with pytest.raises(RuntimeError, match="inside the call"):
        _truth_streamed(model, torch.ones(1, 3, dtype=torch.float64))
    assert _same_tensors(model, saved)


@settings(max_examples=10, deadline=None)
@given(width=st.integers(1, 6), rows=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_whole_float64_gradients_equal_the_float64_copys_bit_for_bit(width, rows, seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(width, 3), torch.nn.GELU(), torch.nn.LayerNorm(3))
    x = torch.randn(rows, width, dtype=torch.float64)
    double = copy.deepcopy(model).double()
    expected = torch.autograd.grad(double(x).square().sum(), list(double.parameters()))
    saved = _tensors(model)
    with float64_whole(model):
        got = torch.autograd.grad(model(x).square().sum(), list(model.parameters()))
    assert all(g.dtype == torch.float64 and torch.equal(g, e) for g, e in zip(got, expected, strict=True))
    assert _same_tensors(model, saved)


def test_whole_float64_keeping_the_originals_gives_back_the_very_tensors_and_the_same_gradients():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    x = torch.randn(2, 4, dtype=torch.float64)
    saved = _tensors(model)
    results = []
    for keep in (False, True):
        with float64_whole(model, keep=keep):
            results.append(torch.autograd.grad(model(x).square().sum(), list(model.parameters())))
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))
    assert _same_tensors(model, saved)
    kept = {name: p.data_ptr() for name, p in model.named_parameters()}
    with float64_whole(model, keep=True):
        assert all(p.dtype == torch.float64 for p in model.parameters())
    assert {name: p.data_ptr() for name, p in model.named_parameters()} == kept  # the very storage back


def test_weights_whose_torch_layout_is_a_transposed_view_are_compared_in_place():
    from crosscheck.porting import model_pair

    kernel = np.arange(12, dtype=np.float32).reshape(3, 4)  # a JAX kernel, (in, out)
    weight = np.ascontiguousarray(kernel.T)
    assert model_pair._equal_in_torch(kernel.T, weight)
    assert model_pair._largest_difference(kernel.T, weight) is None
    weight[2, 1] += 0.25
    assert not model_pair._equal_in_torch(kernel.T, weight)
    assert model_pair._largest_difference(kernel.T, weight) == 0.25
    assert not model_pair._equal_in_torch(kernel.T, weight.astype(np.float64))  # the chunked path then
    for dtype in (">f4", ml_dtypes.bfloat16):  # what torch cannot view: the chunked path alone
        ours = kernel.astype(dtype).T
        theirs = np.ascontiguousarray(ours)
        assert (
            not model_pair._equal_in_torch(ours, theirs)
            and model_pair._largest_difference(ours, theirs) is None
        )
        theirs[0, 2] = 100
        assert model_pair._largest_difference(ours, theirs) == 100 - 8


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 9),
    columns=st.integers(1, 9),
    tile=st.sampled_from([1, 2, 3, 512]),
    changed=st.one_of(st.none(), st.tuples(st.integers(0, 8), st.integers(0, 8))),
    value=st.sampled_from([0.5, np.nan, np.inf]),
)
def test_a_transposed_kernel_is_compared_a_tile_at_a_time_as_a_whole(
    rows, columns, tile, changed, value, monkeypatch
):
    """Tiles that cover a matrix unevenly (any size against any tile) find one changed element wherever
    it is, and equal matrices equal; NaN is unequal, as for one comparison of the whole."""
    from crosscheck.porting import model_pair

    monkeypatch.setattr(model_pair, "_TILE", tile)
    kernel = np.random.default_rng(rows * 10 + columns).standard_normal((columns, rows)).astype(np.float32)
    weight = kernel.T.copy()  # its own memory even where the view is C-ordered (one row or column)
    if changed is not None:
        weight[changed[0] % rows, changed[1] % columns] += value
    expected = changed is None
    assert model_pair._equal_in_torch(kernel.T, weight) is expected
    assert model_pair._equal_in_torch(weight, kernel.T) is expected


class JaxModel(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(11, 8, rngs=rngs)
        self.norm = nnx.LayerNorm(8, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(2, 8, decode=False, rngs=rngs)
        self.out = nnx.Linear(8, 3, rngs=rngs)
        self.scale = nnx.Param(jnp.asarray(0.5, jnp.float32))

    def __call__(self, ids):
        x = self.norm(self.embed(ids)) * self.scale[...]
        return self.out(x + self.attention(x))


def test_a_jax_float64_view_computes_what_the_float64_copy_does_bit_for_bit_without_copying():
    model = JaxModel(nnx.Rngs(0))
    ids = jnp.asarray(np.random.default_rng(0).integers(0, 11, (2, 5)), jnp.int32)
    with jax.enable_x64(True):
        copied, view = float64_jax(model), float64_view(model)
        expected = promoted_call(copied, lambda: copied(ids), TruthNotes())
        got = promoted_call(view, lambda: view(ids), TruthNotes())
    assert got.dtype == jnp.float64 and np.array_equal(np.asarray(got), np.asarray(expected))
    assert view.out.kernel[...] is model.out.kernel[...]  # the working model's own array, not a copy


class CachedSum(nnx.Module):
    """Writes its input into a float32 cache and reads it back: the truth must not round there."""

    def __init__(self):
        self.cache = nnx.Cache(jnp.zeros((2, 3), jnp.float32))
        self.index = nnx.Cache(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        self.cache[...] = self.cache[...] + x
        self.index[...] = self.index[...] + 1
        return self.cache[...] * 3


@pytest.mark.parametrize("make", [float64_jax, float64_view])
def test_the_float64_modules_own_floating_state_is_float64_and_the_working_modules_is_untouched(make):
    model = CachedSum()
    x = np.full((2, 3), 1 / 3)  # not a float32 number
    with jax.enable_x64(True):
        double = make(model)
        out = promoted_call(double, lambda: double(jnp.asarray(x)), TruthNotes())
    assert double.cache[...].dtype == jnp.float64 and double.index[...].dtype == jnp.int32
    assert np.array_equal(np.asarray(out), x * 3)  # 1/3 kept in float64 through the cache
    assert model.cache[...].dtype == jnp.float32 and float(model.cache[...].sum()) == 0.0
    assert int(model.index[...]) == 0


def test_a_float64_views_float64_state_is_the_working_modules_array_and_its_writes_stay_its_own():
    """State already float64 (a stand-in's arrays, a float64 cache) is not copied into the view: arrays
    cannot change, and a value the view writes replaces the view's own variable only."""
    model = CachedSum()
    with jax.enable_x64(True):
        model.cache = nnx.Cache(jnp.zeros((2, 3), jnp.float64))
        before = model.cache.get_value()
        view = float64_view(model)
        assert view.cache.get_value() is before
        promoted_call(view, lambda: view(jnp.ones((2, 3))), TruthNotes())
    assert model.cache.get_value() is before and float(np.asarray(before).sum()) == 0.0
    assert float(np.asarray(view.cache[...]).sum()) == 6.0


def test_forward_magnitudes_taken_inside_the_program_equal_the_float64_copys_bit_for_bit():
    from crosscheck.porting.evaluate import evaluate_jax
    from crosscheck.porting.magnitudes import absolute, magnitudes

    model = JaxModel(nnx.Rngs(1))
    ids = np.random.default_rng(1).integers(0, 11, (2, 5)).astype(np.int32)
    got = magnitudes(model, (ids,), None, grads=False).output
    with jax.enable_x64(True):
        expected = evaluate_jax(*absolute(model, (ids,), None), grads=False).output
    assert got.dtype == np.float64 and np.array_equal(got, expected)


@settings(max_examples=20, deadline=None)
@given(size=st.integers(1, 40), chunk=st.integers(1, 7), where=st.integers(0, 39), nan=st.booleans())
def test_weights_compared_a_chunk_at_a_time_find_the_largest_difference_anywhere(size, chunk, where, nan):
    from crosscheck.porting import model_pair

    ours = np.arange(size, dtype=np.float32)
    theirs = ours.copy()
    index = where % size
    theirs[index] = np.nan if nan else theirs[index] + 0.5
    original = model_pair._CHUNK
    model_pair._CHUNK = chunk
    try:
        assert model_pair._largest_difference(ours, ours.copy()) is None
        assert model_pair._largest_difference(ours, theirs) == (np.inf if nan else 0.5)
    finally:
        model_pair._CHUNK = original


def test_only_new_garbage_hides_what_lived_before_and_gives_it_back():
    import gc

    from crosscheck.porting.streaming import only_new_garbage

    assert gc.get_freeze_count() == 0
    with only_new_garbage():
        assert gc.get_freeze_count() > 0
        cycle = []
        cycle.append(cycle)  # garbage made inside is still collected
        del cycle
        assert gc.collect() >= 1
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a process that froze its own objects keeps its policy
    try:
        frozen = gc.get_freeze_count()
        with only_new_garbage():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(0, 90), min_size=1, max_size=3),  # up to 5.8 MB: many pages
    dtype=st.sampled_from(["float32", "float64", "float16", "int32", ">f8", "longdouble"]),
    seed=st.integers(0, 2**16),
    reversed_rows=st.booleans(),
)
def test_gradients_moved_to_c_order_hold_the_views_values_in_c_order(shape, dtype, seed, reversed_rows):
    from crosscheck.porting.evaluate import c_order

    base = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    view = base.T[::-1] if reversed_rows else base.T  # torch's layout of a JAX kernel: a transposed view
    moved = c_order(view)
    assert moved.flags.c_contiguous and moved.dtype == view.dtype
    assert np.array_equal(moved, view) and moved.tobytes() == np.ascontiguousarray(view).tobytes()
