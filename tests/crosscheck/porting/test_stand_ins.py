"""Stand-in children: a container row of ``locate`` judged on its own code, its passing children replaced
by the same function in both frameworks; what it still catches, and where it falls back to its real
children."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxlin
from crosscheck import check, copy_torch_to_jax, locate
from crosscheck.porting.activation_layouts import find_layout
from crosscheck.porting.capture import capture_jax, capture_torch
from crosscheck.porting.stand_ins import StandIn, rebuildable_jax, rebuildable_torch
from crosscheck.porting.streaming import float64_whole, left_as_they_are
from crosscheck.porting.truth import TruthNotes, promoting_torch
from crosscheck.weights.tree import submodules
from tests.crosscheck.porting.models import build_jax, build_torch

X = np.random.default_rng(0).standard_normal((3, 5, 16))


def _pair(jax_model):
    theirs = build_torch()
    copy_torch_to_jax(theirs, jax_model)
    return jax_model, theirs


def _rows(result):
    return {layer.path: layer for layer in result.layers}


@settings(max_examples=12, deadline=None)
@given(batch=st.integers(1, 3), heads=st.integers(1, 3), width=st.integers(1, 4), seed=st.integers(0, 99))
def test_a_stand_in_is_one_function_in_both_layouts_forward_and_backward(batch, heads, width, seed):
    """torch's (B, H·d) input and output against JAX's (B, H, d): the same values, the same input
    gradient, each framework in its own layout."""
    random = np.random.default_rng(seed)
    star = random.standard_normal((batch, heads * width))
    out = random.standard_normal((batch, heads * width))
    split = find_layout(star.reshape(batch, heads, width), star)
    stand_in = StandIn("layer", [star], [out], 1, template=torch.zeros(1))
    stand_in.in_jax_layout([split], [split])
    x = star + 1e-3 * random.standard_normal(star.shape)
    cotangent = random.standard_normal(star.shape)

    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = stand_in.torch_forward(None)(x_torch)
    y_torch.backward(torch.tensor(cotangent))

    def jax_side(value):
        arrays = stand_in.jax
        from crosscheck.porting.stand_ins import _directions, _follow

        s = _directions([value], arrays["x"], arrays["w"], value.dtype, jnp, [False])
        return _follow(jnp.asarray(arrays["y"][0]), arrays["v"][0], s)

    with jax.enable_x64(True):
        x_jax = jnp.asarray(x.reshape(batch, heads, width))
        y_jax, pullback = jax.vjp(jax_side, x_jax)
        (grad_jax,) = pullback(jnp.asarray(cotangent.reshape(batch, heads, width)))
    np.testing.assert_allclose(np.asarray(y_jax).reshape(star.shape), y_torch.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grad_jax).reshape(star.shape), x_torch.grad.numpy(), rtol=1e-10)
    moved = np.max(np.abs(y_torch.detach().numpy() - out))  # the input moved it: a wrong input shows,
    assert moved > 1e3 * np.finfo(np.float64).eps * np.max(np.abs(out))  # far above float64's rounding


def test_at_its_truth_input_a_stand_in_gives_the_truth_output_and_a_gradient_for_its_input():
    star = np.linspace(-1, 1, 6).reshape(2, 3)
    stand_in = StandIn("fc", [star], [np.full((2, 4), 5.0)], 1, template=torch.zeros(1))
    x = torch.tensor(star, requires_grad=True)
    y = stand_in.torch_forward(None)(x)
    y.sum().backward()
    assert torch.equal(y, torch.full((2, 4), 5.0, dtype=torch.float64))
    assert float(x.grad.abs().sum()) > 0  # the gradient flows where the input equals its truth too


def test_an_infinity_equal_to_the_truths_adds_nothing():
    star = np.array([[0.0, -np.inf, 1.0]])
    stand_in = StandIn("mask", [star], [np.ones((1, 3))], 1, template=torch.zeros(1))
    y = stand_in.torch_forward(None)(torch.tensor(star))
    assert torch.equal(y, torch.ones(1, 3, dtype=torch.float64))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 99), infinite=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_torchs_stand_in_skips_the_infinity_fix_only_where_the_truth_has_none(seed, infinite, dtype):
    """A truth without infinities has no ∞ − ∞ to zero: torch's runs skip the fix, bit for bit the same
    values and gradients; its arrays are cast to a run's dtype once and never changed by a run."""
    random = np.random.default_rng(seed)
    star = random.standard_normal((2, 5))
    if infinite:
        star[0, 1] = -np.inf
    stand_in = StandIn("fc", [star], [random.standard_normal((2, 3))], 1, template=torch.zeros(1))
    assert stand_in.finite == (not infinite,)
    forward = stand_in.torch_forward(None)
    x = torch.tensor(star + 1e-3 * random.standard_normal(star.shape) * np.isfinite(star), dtype=dtype)
    runs = []
    for _ in range(2):  # the second run reads the cast arrays the first one made
        given = x.clone().requires_grad_(True)
        y = forward(given)
        y.backward(torch.ones_like(y))
        runs.append((y.detach(), given.grad))
    fixed = dataclasses.replace(stand_in)  # the same arrays (drawn from its path), the fix always run
    fixed.finite = (False,)
    given = x.clone().requires_grad_(True)
    y = fixed.torch_forward(None)(given)
    y.backward(torch.ones_like(y))
    for values, grads in runs:
        assert torch.equal(values, y.detach()) and torch.equal(grads, given.grad)
        assert torch.isfinite(values).all()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 99), dtype=st.sampled_from([jnp.float32, jnp.float64]))
def test_jaxs_stand_in_without_the_infinity_fix_gives_the_same_bits_where_the_truth_has_none(seed, dtype):
    """A static flag per input: where the truth holds no infinity, JAX's programs leave the fix out (fewer
    kernels to compile), and the values and input gradients are those the fix gives, bit for bit."""
    from crosscheck.porting.stand_ins import _directions

    random = np.random.default_rng(seed)
    star = random.standard_normal((2, 5))
    maps = random.standard_normal((2, 2, 5))
    x = star + 1e-3 * random.standard_normal(star.shape)

    def product(value, finite):
        return _directions([value], [star], [maps], value.dtype, jnp, [finite])

    with jax.enable_x64(True):
        value = jnp.asarray(x, dtype)
        runs = [jax.value_and_grad(lambda v, f=f: jnp.sum(product(v, f) ** 2))(value) for f in (True, False)]
    (fast, fast_grad), (fixed, fixed_grad) = runs
    assert np.array_equal(np.asarray(fast), np.asarray(fixed))
    assert np.array_equal(np.asarray(fast_grad), np.asarray(fixed_grad))


def test_a_cast_a_truth_run_promoted_is_not_kept_for_the_working_run():
    """A child without inputs takes its dtype from its weights (float32 in both runs); the float64 truth
    run promotes the cast to float32, and the working run after it must still get float32."""
    linear = torch.nn.Linear(2, 3)
    stand_in = StandIn("embeddings", [], [np.linspace(0.1, 0.6, 6).reshape(2, 3)], 1, template=torch.zeros(1))
    forward = stand_in.torch_forward(linear)
    notes = TruthNotes()
    with promoting_torch(linear, notes):
        truth = forward()
    work = forward()
    assert truth.dtype == torch.float64 and work.dtype == torch.float32
    assert torch.equal(work, torch.tensor(stand_in.y[0], dtype=torch.float32))


def test_a_truth_run_after_a_working_run_gets_float64_from_a_child_without_inputs():
    """The working run casts the arrays to the weights' float32 and keeps them; the truth run after it,
    whose weights may still be float32 (streamed in only while their own layer is called, which a stand-in
    never is), must get the float64 values, not the kept float32 ones."""
    linear = torch.nn.Linear(2, 3)
    stand_in = StandIn(
        "embeddings", [], [np.linspace(0.1, 0.6, 6).reshape(2, 3) / 3], 1, template=torch.zeros(1)
    )
    forward = stand_in.torch_forward(linear)
    work = forward()
    with promoting_torch(linear, TruthNotes()):
        truth = forward()
    assert work.dtype == torch.float32 and truth.dtype == torch.float64
    assert torch.equal(truth, torch.from_numpy(stand_in.y[0]))


class _Tokens(nnx.Module):
    """A container of an embedding and a norm, as BERT's embeddings are: its own call holds no weights."""

    def __init__(self):
        self.table = nnx.Embed(10, 8, rngs=nnx.Rngs(0))
        self.norm = nnx.LayerNorm(8, epsilon=1e-5, rngs=nnx.Rngs(1))

    def __call__(self, ids):
        return self.norm(self.table(ids))


class _TokensThenProject(nnx.Module):
    def __init__(self):
        self.embed = _Tokens()
        self.proj = jaxlin.Linear(8, 4, rngs=nnx.Rngs(2))

    def __call__(self, ids):
        return self.proj(self.embed(ids))


class _TorchTokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table, self.norm = torch.nn.Embedding(10, 8), torch.nn.LayerNorm(8)

    def forward(self, ids):
        return self.norm(self.table(ids))


class _TorchTokensThenProject(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.proj = _TorchTokens(), torch.nn.Linear(8, 4)

    def forward(self, ids):
        return self.proj(self.embed(ids))


@pytest.mark.parametrize("grads", [False, True])
def test_a_child_without_floating_inputs_stands_in_in_float64_in_both_truth_runs(grads):
    """In both frameworks' float64 runs an embedding standing in gives its float64 truth, though the
    weights it takes its dtype from are float32 there: a truth rounded to float32 would fail the model's
    same-function tier, and the model would be judged again with its real children."""
    torch.manual_seed(0)
    theirs, ours = _TorchTokensThenProject(), _TokensThenProject()
    copy_torch_to_jax(theirs, ours)
    ids = np.random.default_rng(0).integers(0, 10, (2, 5))
    model = _rows(locate(ours, theirs, ids, grads=grads))[""]
    assert model.passed and model.stood_in == ["proj", "embed"]
    assert all(item.same_function.metrics.get("rms_difference", 0.0) == 0.0 for item in model.items)


def test_outputs_a_stand_in_can_rebuild():
    assert rebuildable_torch((torch.ones(2), None)) and rebuildable_torch({"a": torch.ones(2)})
    assert not rebuildable_torch(type("Pair", (tuple,), {})((torch.ones(1),)))
    assert rebuildable_jax((jnp.ones(2), [jnp.ones(3)]))
    assert not rebuildable_jax({"a": jnp.ones(2)}) and not rebuildable_jax(
        (jnp.ones(2), jnp.ones(2, jnp.int32))
    )


def test_the_honest_port_judges_each_container_with_its_children_standing_in():
    result = locate(*_pair(build_jax()), X, grads=True)
    rows = _rows(result)
    assert result.passed
    assert rows["block"].stood_in == ["block.down", "block.norm", "block.up"]
    assert rows[""].stood_in == ["head", "block"]  # the block stands in for its own layers there
    assert [item.item for item in rows["block"].items] == ["output", "grads.input"]
    assert rows["block.up"].stood_in == []


class _SwappedBlock(nnx.Module):
    """Two layers of one shape called in the other order: each layer passes, the block does not."""

    def __init__(self):
        self.first = jaxlin.Linear(8, 8, rngs=nnx.Rngs(0))
        self.second = jaxlin.Linear(8, 8, rngs=nnx.Rngs(1))

    def __call__(self, x):
        return self.first(self.second(x))


class _TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.second(self.first(x))


def test_children_wired_in_the_wrong_order_fail_the_container_not_the_children():
    torch.manual_seed(0)
    theirs, ours = _TorchBlock(), _SwappedBlock()
    copy_torch_to_jax(theirs, ours)
    x = np.random.default_rng(1).standard_normal((4, 8))
    result = locate(ours, theirs, x, grads=True)
    rows = _rows(result)
    assert result.first_failure == "" and not rows[""].passed
    assert rows["first"].passed and rows["second"].passed  # each judged on the truth's own input


def test_a_bug_in_a_containers_own_code_fails_it_and_is_named():
    """The model's residual scaled by 1.01 around children that pass."""
    ours = build_jax()
    theirs = build_torch()
    copy_torch_to_jax(theirs, ours)
    original = type(ours).__call__
    type(ours).__call__ = lambda self, x: self.head(1.01 * x + self.block(x))
    try:
        result = locate(ours, theirs, X, grads=True)
    finally:
        type(ours).__call__ = original
    rows = _rows(result)
    assert result.first_failure == "", str(result)
    assert rows["block"].passed and rows["head"].passed


def test_a_childs_bug_is_named_at_the_child_and_the_container_runs_it():
    ours, theirs = _pair(build_jax())
    ours.block.up.kernel[...] = ours.block.up.kernel[...] * 1.001
    result = locate(ours, theirs, X, grads=True)
    rows = _rows(result)
    assert result.first_failure == "block.up"
    assert "block.up" not in rows["block"].stood_in and not rows["block"].passed  # as without stand-ins
    assert rows["block.norm"].passed and rows["block.down"].passed


class _Twice(nnx.Module):
    def __init__(self):
        self.layer = jaxlin.Linear(8, 8, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.layer(self.layer(x))


class _TorchTwice(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.layer(self.layer(x))


def test_a_child_called_twice_runs_as_it_is():
    torch.manual_seed(0)
    theirs, ours = _TorchTwice(), _Twice()
    copy_torch_to_jax(theirs, ours)
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    assert [call.count for call in capture_torch(theirs, (torch.tensor(x),))[0]] == [1, 2]
    assert [call.count for call in capture_jax(ours, (jnp.asarray(x),))[0]] == [1, 2]
    result = locate(ours, theirs, x, grads=True)
    assert result.passed and _rows(result)[""].stood_in == []


def test_weights_left_as_they_are_stay_in_their_dtype_while_the_rest_is_widened():
    model = build_torch()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with left_as_they_are([model.block]), float64_whole(model):
        assert model.head.weight.dtype == torch.float64
        assert {p.dtype for p in model.block.parameters()} == {torch.float32}
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())


def test_weights_left_as_they_are_stay_so_in_torchs_runs_beside_jax():
    """check's torch runs go on a second thread: what the caller set holds there too."""
    ours, theirs = _pair(build_jax())
    seen = []
    handle = theirs.block.up.register_forward_pre_hook(lambda m, a: seen.append((a[0].dtype, m.weight.dtype)))
    try:
        with left_as_they_are([theirs.block.up]):
            check(ours, theirs, X, grads=True)
    finally:
        handle.remove()
    assert (torch.float64, torch.float32) in seen and (torch.float64, torch.float64) not in seen


@pytest.mark.parametrize("grads", [False, True])
def test_stand_ins_leave_both_models_as_they_were(grads):
    ours, theirs = _pair(build_jax())
    result = locate(ours, theirs, X, grads=grads)
    assert result.passed
    assert not any("crosscheck_stand_in" in vars(layer) for _, layer in submodules(ours))
    assert not any("forward" in vars(module) for module in theirs.modules())
    assert type(ours.block).__call__.__name__ == "__call__"
