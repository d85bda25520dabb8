"""locate across layouts: a layer whose activations hold the torch twin's numbers in another layout
(NHWC vs NCHW, heads split from features) is judged in the JAX layout and names the change; a pair
no layout fits is not judged and never counts as a failure."""

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


class OtherShape(nnx.Module):
    """A row whose output has other sizes: no layout can match it."""

    def __init__(self):
        self.proj = nnx.Linear(8, 6, rngs=nnx.Rngs(0))

    def __call__(self, x):
        y = self.proj(x)
        return y[..., :4]


def test_a_pair_no_layout_fits_is_not_judged_and_never_a_failure(monkeypatch):
    ref, port = TorchWide(), JaxNarrow()
    copy_torch_to_jax(ref, port)
    real = port.proj.__class__.__call__

    def truncated(self, x):
        return real(self, x)[..., :5]  # a layer whose output the torch twin's cannot become

    monkeypatch.setattr(nnx.Linear, "__call__", truncated)
    x = np.random.default_rng(2).standard_normal((3, 8)).astype(np.float32)
    result = locate(port, ref, x)
    assert result.not_judged == [
        "proj: not judged: output has shape (3, 5) in JAX, (3, 6) in torch, and no axis permutation, split "
        "or merge of torch's values gives JAX's"
    ]
    assert result.first_failure is None and "not judged" in result.rows()[1][-1]


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
