"""locate across layouts: a layer whose activations hold the torch twin's numbers in another layout
(NHWC vs NCHW, heads split from features) is judged in the JAX layout and names the change; a pair
no layout fits is not judged and never counts as a failure."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscheck import copy_torch_to_jax, locate
from crosscheck.porting.activation_layouts import assumed_layout, find_layout


class TorchConvNet(torch.nn.Module):
    def __init__(self, channels=4):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, channels, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


class JaxConvNet(nnx.Module):
    def __init__(self, channels=4, bug=False):
        self.conv1 = nnx.Conv(3, channels, (3, 3), padding=1, rngs=nnx.Rngs(0))
        self.conv2 = nnx.Conv(channels, channels, (3, 3), padding=1, rngs=nnx.Rngs(0))
        self.bug = bug

    def __call__(self, x):
        y = nnx.relu(self.conv1(x))
        return self.conv2(y * 1.001 if self.bug else y)


def test_an_nhwc_port_is_judged_in_its_own_layout_even_when_channels_equal_height_and_width():
    ref, port = TorchConvNet(), JaxConvNet()
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype(np.float32)  # C = H = W = 4 inside
    result = locate(port, ref, x, channels_first=True)
    assert result.passed and result.first_failure is None, str(result)
    assert result.not_judged == [] and all(layer.inputs == "truth" for layer in result.layers)
    conv2 = next(layer for layer in result.layers if layer.path == "conv2")
    assert conv2.layouts == [
        "input 0: torch (2, 4, 4, 4) -> JAX (2, 4, 4, 4): axes (0, 2, 3, 1)",
        "output: torch (2, 4, 4, 4) -> JAX (2, 4, 4, 4): axes (0, 2, 3, 1)",
    ]


def test_a_bug_between_layers_of_another_layout_is_blamed_on_the_model_not_on_a_layer():
    ref, port = TorchConvNet(), JaxConvNet(bug=True)
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 3)).astype(np.float32)
    result = locate(port, ref, x, channels_first=True)
    assert result.first_failure == "" and result.not_judged == [], str(result)


class TorchHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = torch.nn.Linear(8, 8)
        self.k_proj = torch.nn.Linear(8, 8)
        self.out = torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.out(torch.tanh(self.q_proj(x)) * self.k_proj(x))


class JaxHeads(nnx.Module):
    """Heads split from features: q and k are ``(batch, seq, heads=2, head_dim=4)``."""

    def __init__(self, bug=""):
        self.q_proj = nnx.LinearGeneral(8, (2, 4), rngs=nnx.Rngs(0))
        self.k_proj = nnx.LinearGeneral(8, (2, 4), rngs=nnx.Rngs(1))
        self.out = nnx.LinearGeneral((2, 4), 8, axis=(-2, -1), rngs=nnx.Rngs(2))
        self.bug = bug

    def __call__(self, x):
        q = self.q_proj(x)
        if self.bug == "q-scale":
            q = q * 1.01
        return self.out(nnx.tanh(q) * self.k_proj(x))


def _heads(bug=""):
    ref, port = TorchHeads(), JaxHeads(bug)
    copy_torch_to_jax(ref, port)
    return ref, port, np.random.default_rng(1).standard_normal((2, 5, 8)).astype(np.float32)


def test_split_heads_are_judged_through_the_split():
    ref, port, x = _heads()
    result = locate(port, ref, x, grads=True)
    assert result.passed and result.not_judged == [], str(result)
    rows = {layer.path: layer for layer in result.layers}
    assert rows["q_proj"].layouts == ["output: torch (2, 5, 8) -> JAX (2, 5, 2, 4): split"]
    assert rows["out"].layouts == ["input 0: torch (2, 5, 8) -> JAX (2, 5, 2, 4): split"]
    assert all(layer.inputs == "truth" for layer in result.layers)
    gradients = ["output", "grads.weight", "grads.bias", "grads.input"]  # in the JAX layout, named as torch's
    assert [item.item for item in rows["q_proj"].items] == gradients
    assert [item.item for item in rows["out"].items] == gradients


class InputGradientLost(nnx.LinearGeneral):
    """The same forward, no gradient to its input: a bug only gradients show."""

    def __call__(self, x, **kwargs):
        return super().__call__(jax.lax.stop_gradient(x), **kwargs)


def test_a_gradient_bug_inside_a_layer_of_another_layout_is_found_there():
    ref, port, x = _heads()
    port.q_proj = InputGradientLost(8, (2, 4), rngs=nnx.Rngs(0))
    copy_torch_to_jax(ref, port)
    assert locate(port, ref, x).passed  # forward only: nothing to see
    result = locate(port, ref, x, grads=True)
    assert result.first_failure == "q_proj", str(result)
    q_proj = next(layer for layer in result.layers if layer.path == "q_proj")
    assert [item.item for item in q_proj.items if not item.passed] == ["grads.input"]
    assert q_proj.layouts == ["output: torch (2, 5, 8) -> JAX (2, 5, 2, 4): split"]


def test_an_nhwc_conv_is_checked_with_gradients_in_the_jax_layout():
    ref, port = TorchConvNet(), JaxConvNet()
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 3)).astype(np.float32)
    result = locate(port, ref, x, channels_first=True, grads=True)
    assert result.passed and result.not_judged == [], str(result)
    for layer in result.layers:
        assert [item.item for item in layer.items][-1] == "grads.input", layer.path
        assert "axes (0, 2, 3, 1)" in layer.layouts[0]


def test_a_planted_bug_after_a_split_is_found_where_it_is():
    ref, port, x = _heads("q-scale")
    result = locate(port, ref, x)
    assert result.first_failure == "", str(result)  # the scale is the model's own code
    rows = {layer.path: layer for layer in result.layers}
    assert rows["q_proj"].passed and rows["k_proj"].passed and rows["out"].passed


class TorchWide(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 6)

    def forward(self, x):
        return self.proj(x)[..., :4]


class JaxNarrow(nnx.Module):
    def __init__(self):
        self.proj = nnx.Linear(8, 6, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.proj(x)[..., :4]


def _patched_proj(monkeypatch, change):
    ref, port = TorchWide(), JaxNarrow()
    copy_torch_to_jax(ref, port)
    real = port.proj.__class__.__call__
    monkeypatch.setattr(nnx.Linear, "__call__", lambda self, x: change(real(self, x)))
    return ref, port, np.random.default_rng(2).standard_normal((3, 8)).astype(np.float32)


def test_a_pair_no_layout_fits_is_not_judged_and_never_a_failure(monkeypatch):
    # as many values as torch's (3, 6), in a shape no split, merge or permutation of those values gives
    ref, port, x = _patched_proj(monkeypatch, lambda y: jnp.roll(y, 1, axis=-1).reshape(2, 9))
    result = locate(port, ref, x)
    assert result.not_judged == [
        "proj: not judged: output has shape (2, 9) in JAX, (3, 6) in torch, and no axis permutation, split "
        "or merge of torch's values gives JAX's"
    ]
    assert "not judged" in result.rows()[1][-1]
    model = result.layers[0]  # which does give other values: (2, 9)[..., :4] against torch's (3, 6)[..., :4]
    assert model.failure.startswith("output has shape (2, 4) in JAX, (3, 4) in torch from the same input")
    assert result.first_failure == "", str(result)  # the unmatched proj is never the failure


def test_a_layer_giving_another_number_of_values_from_the_truths_input_fails_for_its_shape(monkeypatch):
    ref, port, x = _patched_proj(monkeypatch, lambda y: y[..., :5])  # torch's proj gives 6 per row
    result = locate(port, ref, x)
    proj = next(layer for layer in result.layers if layer.path == "proj")
    assert proj.judged and not proj.passed and proj.inputs == "truth" and result.not_judged == []
    assert proj.failure == (
        "output has shape (3, 5) in JAX, (3, 6) in torch from the same input (15 values against 18): a "
        "different function, not a layout"
    )
    assert result.first_failure == "proj" and "FAIL: output has shape (3, 5)" in str(result)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    data=st.data(),
)
def test_every_permutation_and_split_is_found_back(shape, data):
    a = np.random.default_rng(len(shape)).standard_normal(shape)
    order = data.draw(st.permutations(range(len(shape))))
    torch_side = np.transpose(a, order)
    merge = data.draw(st.booleans()) and len(shape) >= 2
    if merge:
        torch_side = torch_side.reshape(*torch_side.shape[:-2], -1)
    layout = find_layout(a, torch_side)
    assert layout is not None
    assert np.array_equal(layout.to_jax(torch_side), a) and np.array_equal(layout.to_torch(a), torch_side)


@pytest.mark.parametrize(
    ("torch_shape", "jax_shape", "text"),
    [
        ((2, 17, 32), (2, 17, 4, 8), "split"),
        ((2, 17, 4, 8), (2, 17, 32), "merge"),
        ((2, 3, 5, 6), (2, 5, 6, 3), "axes (0, 2, 3, 1)"),
    ],
)
def test_the_assumed_layouts(torch_shape, jax_shape, text):
    assert assumed_layout(torch_shape, jax_shape).describe().endswith(text)
    assert assumed_layout((2, 3), (2, 4)) is None


class JaxCounter(nnx.Module):
    """A stateful layer: its output depends on how often it was called (a cache advances alike)."""

    def __init__(self):
        self.proj = nnx.Linear(4, 4, rngs=nnx.Rngs(0))
        self.calls = nnx.Variable(jnp.zeros((), jnp.float32))

    def __call__(self, x):
        self.calls[...] = self.calls[...] + 1
        return self.proj(x) * self.calls[...]


class TorchCounter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)
        self.register_buffer("calls", torch.zeros(()), persistent=False)

    def forward(self, x):
        self.calls += 1
        return self.proj(x) * self.calls


class JaxTwice(nnx.Module):
    def __init__(self):
        self.counter = JaxCounter()

    def __call__(self, x):
        return self.counter(self.counter(x))


class TorchTwice(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.counter = TorchCounter()

    def forward(self, x):
        return self.counter(self.counter(x))


def test_a_stateful_layer_is_replayed_from_the_state_it_had_before_its_call():
    ref, port = TorchTwice(), JaxTwice()
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    result = locate(port, ref, x)
    assert result.passed and result.not_judged == [], str(result)
    assert float(port.counter.calls[...]) == 0 and float(ref.counter.calls) == 0  # left as they were


def test_locate_reports_its_progress_layer_by_layer_and_is_quiet_off_a_terminal(capsys):
    ref, port, x = _heads()
    seen = []
    result = locate(port, ref, x, progress=lambda done, total: seen.append((done, total)))
    total = len(result.layers)
    assert seen == [(done, total) for done in range(total + 1)]
    locate(port, ref, x)  # standard error is not a terminal under pytest: no bar
    assert capsys.readouterr().err == ""


class TorchBlock(torch.nn.Module):
    """Called with its input as a keyword, a table its parent made, a flag; returns a tuple. Holds a
    parameter of its own beside its layer's."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)
        self.scale = torch.nn.Parameter(torch.linspace(0.75, 1.25, 4))

    def forward(self, hidden_states, table=None, use_cache=False):
        return self.proj(hidden_states) * table * self.scale, None


class TorchOuter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = TorchBlock()

    def forward(self, x):
        table = torch.linspace(0.5, 1.5, 4, dtype=x.dtype)
        return self.block(hidden_states=x, table=table, use_cache=False)[0]


class JaxBlock(nnx.Module):
    """Makes its own table; ``lost`` drops its input's gradient (the forward is the same)."""

    def __init__(self, lost=False):
        self.proj = nnx.Linear(4, 4, rngs=nnx.Rngs(0))
        self.scale = nnx.Param(jnp.zeros(4, jnp.float32))
        self.lost = lost

    def __call__(self, x):
        x = jax.lax.stop_gradient(x) if self.lost else x
        return self.proj(x) * jnp.linspace(0.5, 1.5, 4, dtype=x.dtype)[None, :] * self.scale[None, :]


class JaxOuter(nnx.Module):
    def __init__(self, lost=False):
        self.block = JaxBlock(lost)

    def __call__(self, x):
        return self.block(x)


@pytest.fixture
def block_layout(monkeypatch):
    """The block's own parameter maps by a rule of its own (its layer maps by nnx.Linear's)."""
    from crosscheck.weights import Layout, ParamRule, layouts, register_layout

    monkeypatch.setattr(layouts, "_REGISTRY", list(layouts._REGISTRY))
    register_layout(Layout("test.JaxBlock", (JaxBlock,), (ParamRule("scale", "scale"),), ("TorchBlock",)))


@pytest.mark.usefixtures("block_layout")
@pytest.mark.parametrize("lost", [False, True])
def test_a_layer_whose_torch_call_carries_more_arrays_is_checked_with_gradients(lost):
    """torch's block takes its input as a keyword beside a table its parent made; the JAX block makes its
    own. The torch call is replayed as captured around the JAX argument: gradients are judged, the
    block's own parameter's there and its layer's at the layer's row."""
    ref, port = TorchOuter(), JaxOuter(lost)
    copy_torch_to_jax(ref, port)
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    result = locate(port, ref, x, grads=True)
    block = next(layer for layer in result.layers if layer.path == "block")
    assert [item.item for item in block.items] == ["output", "grads.scale", "grads.input"]
    proj = next(layer for layer in result.layers if layer.path == "block.proj")
    assert [item.item for item in proj.items] == ["output", "grads.weight", "grads.bias", "grads.input"]
    assert [item.item for item in block.items if not item.passed] == (["grads.input"] if lost else [])
    assert result.first_failure == ("block" if lost else None), str(result)
