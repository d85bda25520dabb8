"""save_weights / load_weights: one safetensors format in torch_ref's names and layouts, bit-exact
round trips in every dtype, and a WeightsError that leaves the module untouched on any bad file."""

from __future__ import annotations

import json
import os
import re
import struct
import sys

import chex
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors.torch
import torch
from flax import nnx

import crosscheck
import jaxlin
import torch_ref
from crosscheck.weights import (
    WeightsError,
    copy_jax_to_torch,
    load_weights,
    numpy_of_torch,
    save_weights,
    torch_of_numpy,
    torch_state_of_jax,
)
from crosscheck.weights.files import header
from tests._helpers import params_of

DTYPES = {
    "float32": (jnp.float32, torch.float32),
    "float64": (jnp.float64, torch.float64),
    "float16": (jnp.float16, torch.float16),
    "bfloat16": (jnp.bfloat16, torch.bfloat16),
}


def _numpy_init(seed: int):
    """A NumPy-drawn initializer: jax.random would compile anew for every shape and dtype (~1 s each)."""
    rng = np.random.default_rng(seed)
    return lambda key, shape, dtype=jnp.float32: jnp.asarray(rng.standard_normal(shape), dtype)


def _inits(seed: int) -> dict:
    return {"kernel_init": _numpy_init(seed), "bias_init": _numpy_init(seed + 1000), "rngs": nnx.Rngs(seed)}


# name -> (jaxlin maker (param_dtype, seed), torch_ref maker (dtype), input shape in jaxlin layout)
MODULES = {
    "Linear": (
        lambda d, s: jaxlin.Linear(5, 3, param_dtype=d, **_inits(s)),
        lambda d: torch_ref.Linear(5, 3, dtype=d),
        (4, 5),
    ),
    "Linear-nobias": (
        lambda d, s: jaxlin.Linear(5, 3, use_bias=False, param_dtype=d, **_inits(s)),
        lambda d: torch_ref.Linear(5, 3, bias=False, dtype=d),
        (4, 5),
    ),
    "PointwiseConv": (
        lambda d, s: jaxlin.PointwiseConv(5, 3, param_dtype=d, **_inits(s)),
        lambda d: torch_ref.PointwiseConv(5, 3, dtype=d),
        (2, 7, 5),
    ),
    "PooledHead": (
        lambda d, s: jaxlin.PooledHead(
            5, 4, 3, pool_at="hidden", activation=jax.nn.relu, param_dtype=d, **_inits(s)
        ),
        lambda d: torch_ref.PooledHead(5, 4, 3, pool_at="hidden", activation=torch.relu, dtype=d),
        (3, 6, 5),
    ),
    "PerHeadLinear": (
        lambda d, s: jaxlin.PerHeadLinear(2, 5, 3, param_dtype=d, **_inits(s)),
        lambda d: torch_ref.PerHeadLinear(2, 5, 3, dtype=d),
        (4, 2, 5),
    ),
}


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def _torch_bits(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {key: _bits(numpy_of_torch(t)).copy() for key, t in module.state_dict().items()}


def _jax_bits(module: nnx.Module) -> dict[str, np.ndarray]:
    return {key: _bits(a).copy() for key, a in params_of(module).items()}


def _assert_same_bits(actual: dict, expected: dict) -> None:
    """The same names, shapes and dtypes and the same bits; a failure names the parameter."""
    chex.assert_trees_all_equal_shapes_and_dtypes(actual, expected)
    chex.assert_trees_all_equal(actual, expected)


def _torch_module(name: str, dtype: torch.dtype, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MODULES[name][1](dtype)


def _with_special_values(module: torch.nn.Module) -> torch.nn.Module:
    """-0.0, ±inf, NaN and the smallest subnormal in the first weight: the bits must survive too."""
    with torch.no_grad():
        weight = next(iter(module.parameters())).view(-1)
        tiny = torch.finfo(weight.dtype).smallest_normal / 4
        weight[:5] = torch.tensor([-0.0, float("inf"), float("-inf"), float("nan"), tiny], dtype=weight.dtype)
    return module


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("name", sorted(MODULES))
def test_torch_to_file_to_jaxlin_to_file_to_torch_is_bit_exact(tmp_path, name, dtype):
    jax_dtype, torch_dtype = DTYPES[dtype]
    source = _with_special_values(_torch_module(name, torch_dtype))
    save_weights(source, tmp_path / "torch.safetensors")
    ours = MODULES[name][0](jax_dtype, 1)
    load_weights(ours, tmp_path / "torch.safetensors")
    save_weights(ours, tmp_path / "jax.safetensors")
    back = _torch_module(name, torch_dtype, seed=2)
    load_weights(back, tmp_path / "jax.safetensors")
    _assert_same_bits(_torch_bits(back), _torch_bits(source))
    assert header(tmp_path / "jax.safetensors") == header(tmp_path / "torch.safetensors")
    assert all(p.dtype == jax_dtype for p in params_of(ours).values())


@pytest.mark.parametrize("name", sorted(MODULES))
def test_jaxlin_to_file_to_torch_ref_computes_the_same_function_in_float64(tmp_path, name):
    make_jax, make_torch, shape = MODULES[name]
    ours = make_jax(jnp.float64, 3)
    save_weights(ours, tmp_path / "w.safetensors")
    theirs = make_torch(torch.float64)
    load_weights(theirs, tmp_path / "w.safetensors")
    x = np.random.default_rng(0).standard_normal(shape)
    channels_first = name == "PointwiseConv"
    y_torch = theirs(torch.from_numpy(np.swapaxes(x, -1, -2) if channels_first else x)).detach().numpy()
    y_jax = np.asarray(ours(jnp.asarray(x)))
    np.testing.assert_allclose(y_jax, np.swapaxes(y_torch, -1, -2) if channels_first else y_torch, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_pytorch_users_own_file_loads_into_jaxlin(tmp_path, name):
    theirs = _torch_module(name, torch.float32)
    safetensors.torch.save_file(theirs.state_dict(), tmp_path / "model.safetensors")
    ours = MODULES[name][0](jnp.float32, 1)
    load_weights(ours, tmp_path / "model.safetensors")
    save_weights(ours, tmp_path / "again.safetensors")
    again = safetensors.torch.load_file(tmp_path / "again.safetensors")
    _assert_same_bits({k: _bits(numpy_of_torch(t)) for k, t in again.items()}, _torch_bits(theirs))


def test_file_is_hugging_face_style_with_the_state_dict_names_and_layouts(tmp_path):
    path = tmp_path / "head.safetensors"
    save_weights(MODULES["PooledHead"][0](jnp.float32, 0), path)
    with safetensors.safe_open(path, framework="pt") as file:
        metadata = file.metadata()
    assert metadata["format"] == "pt" and metadata["writer"] == "crosscheck"
    assert metadata["module"].startswith("jaxlin.PooledHead(in_features=5, hidden_features=4")
    assert header(path) == {
        "projector.weight": ((4, 5), "float32"),
        "projector.bias": ((4,), "float32"),
        "classifier.weight": ((3, 4), "float32"),
        "classifier.bias": ((3,), "float32"),
    }
    save_weights(MODULES["PerHeadLinear"][0](jnp.float32, 0), path)
    assert header(path) == {"weight": ((2, 3, 5), "float32"), "bias": ((2, 3), "float32")}
    save_weights(MODULES["PointwiseConv"][0](jnp.float32, 0), path)
    assert header(path) == {"weight": ((3, 5, 1), "float32"), "bias": ((3,), "float32")}
    assert set(safetensors.torch.load_file(path)) == {"weight", "bias"}


def test_jaxlin_needs_no_torch(tmp_path, monkeypatch):
    ours, target = MODULES["PooledHead"][0](jnp.bfloat16, 0), MODULES["PooledHead"][0](jnp.bfloat16, 1)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    save_weights(ours, tmp_path / "w.safetensors")
    load_weights(target, tmp_path / "w.safetensors")
    _assert_same_bits(_jax_bits(target), _jax_bits(ours))


def test_save_replaces_the_file_atomically(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_weights(MODULES["Linear"][0](jnp.float32, 0), path)
    before = path.read_bytes()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save_weights(MODULES["Linear"][0](jnp.float32, 1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.safetensors"]  # no temporary file left behind


class Scaled(nnx.Module):
    """A user's layer with a parameter no layout rule knows, beside one that maps."""

    def __init__(self):
        self.dense = jaxlin.Linear(2, 2, rngs=nnx.Rngs(0))
        self.scale = nnx.Param(jnp.ones(2))


def test_a_parameter_no_rule_maps_is_a_weights_error_before_anything_is_written(tmp_path):
    with pytest.raises(
        WeightsError,
        match=r"Scaled: no layout rule maps 'scale'; the known layers are (.*, )?jaxlin.PerHeadLinear",
    ):
        save_weights(Scaled(), tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()
    save_weights(jaxlin.Linear(2, 2, rngs=nnx.Rngs(0)), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="no layout rule maps 'scale'"):
        load_weights(Scaled(), tmp_path / "w.safetensors", prefix="dense.")


def test_a_module_without_weights_saves_an_empty_file(tmp_path):
    save_weights(nnx.Dropout(0.5), tmp_path / "w.safetensors")
    assert header(tmp_path / "w.safetensors") == {}


def test_a_torch_module_where_a_jax_one_belongs_is_a_type_error():
    with pytest.raises(
        TypeError, match=r"expected a Flax NNX module here, got torch_ref.Linear\(in_features=2"
    ):
        copy_jax_to_torch(torch_ref.Linear(2, 2), torch_ref.Linear(2, 2))


# ---------------------------------------------------------------- errors leave the module untouched

HEAD_KEYS = "'projector.weight', 'projector.bias', 'classifier.weight', 'classifier.bias'"


def _state(**changes) -> dict[str, np.ndarray]:
    """A PooledHead(5, 4, 3) state_dict in float32; a change of None drops that key."""
    state = {
        key: numpy_of_torch(t) for key, t in _torch_module("PooledHead", torch.float32).state_dict().items()
    }
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del state[key]
        else:
            state[key] = value
    return state


def _write_state(path, state) -> None:
    safetensors.torch.save_file({k: torch_of_numpy(a) for k, a in state.items()}, path)


def _good_bytes(tmp_path) -> bytes:
    _write_state(tmp_path / "good.safetensors", _state())
    return (tmp_path / "good.safetensors").read_bytes()


def _with_header(data: bytes, edit) -> bytes:
    size = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8 : 8 + size])
    edit(head)
    raw = json.dumps(head).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + size :]


def _offsets_past_the_end(head: dict) -> None:
    head["classifier.bias"]["data_offsets"][1] += 4096


def _pickle(path) -> None:
    torch.save(_torch_module("PooledHead", torch.float32).state_dict(), path)


def _bytes(make):
    return lambda tmp_path, path: path.write_bytes(make(tmp_path))


F32 = np.float32
BAD_FILES = {
    # name: (writer(tmp_path, path), pattern after "<file>: ")
    "missing-key": (
        lambda t, p: _write_state(p, _state(classifier__bias=None)),
        f"missing key 'classifier.bias'; expected exactly the keys {HEAD_KEYS} for {{owner}}",
    ),
    "unexpected-keys": (
        lambda t, p: _write_state(p, _state(extra=np.ones(2, F32), scale=np.ones(1, F32))),
        f"unexpected keys 'extra', 'scale'; expected exactly the keys {HEAD_KEYS} for {{owner}}",
    ),
    "missing-and-unexpected": (
        lambda t, p: _write_state(p, _state(projector__weight=None, **{"head.weight": np.ones((4, 5), F32)})),
        "missing key 'projector.weight' (perhaps 'head.weight': same shape) and unexpected key 'head.weight'; expected exactly the keys",
    ),
    "wrong-shape": (
        lambda t, p: _write_state(p, _state(projector__weight=np.ones((4, 6), F32))),
        "key 'projector.weight' has shape (4, 6), expected (4, 5) for {owner}",
    ),
    "wrong-dtype": (
        lambda t, p: _write_state(p, _state(classifier__bias=np.ones(3, np.float64))),
        "key 'classifier.bias' has dtype float64, expected float32 for {owner}; pass cast=True to convert it",
    ),
    "bfloat16-for-float32": (
        lambda t, p: _write_state(p, _state(classifier__weight=np.ones((3, 4), ml_dtypes.bfloat16))),
        "key 'classifier.weight' has dtype bfloat16, expected float32",
    ),
    "truncated": (_bytes(lambda t: _good_bytes(t)[:-7]), "not a safetensors file (.*not fully covered"),
    "offsets-past-the-end": (
        _bytes(lambda t: _with_header(_good_bytes(t), _offsets_past_the_end)),
        "not a safetensors file (.*invalid shape, data type, or offset",
    ),
    "corrupted-header": (
        _bytes(lambda t: _good_bytes(t)[:12] + b"\xff" + _good_bytes(t)[13:]),
        "not a safetensors file (.*invalid UTF-8",
    ),
    "header-not-json": (
        _bytes(lambda t: struct.pack("<Q", 16) + b"this is not json" + bytes(64)),
        "not a safetensors file (.*invalid JSON",
    ),
    "torch-save-pickle": (
        lambda t, p: _pickle(p),
        "not a safetensors file (.*it looks like a torch.save checkpoint (a pickle, never loaded here)",
    ),
    "random-bytes": (_bytes(lambda t: np.random.default_rng(0).bytes(512)), "not a safetensors file"),
    "empty": (_bytes(lambda t: b""), "not a safetensors file (.*header too small"),
    "nonexistent": (lambda t, p: None, "no such file; expected the weights of {owner} in a safetensors file"),
    "a-directory": (lambda t, p: p.mkdir(), "is a directory; expected the weights of {owner}"),
}


@pytest.fixture(params=["jaxlin", "torch_ref"])
def head(request):
    """A PooledHead(5, 4, 3) in float32 in either framework, and its parameters' bits."""
    if request.param == "jaxlin":
        module = MODULES["PooledHead"][0](jnp.float32, 9)
        return module, lambda: _jax_bits(module)
    module = _torch_module("PooledHead", torch.float32, seed=9)
    return module, lambda: _torch_bits(module)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_raises_weights_error_and_changes_nothing(tmp_path, head, case):
    module, bits = head
    write, pattern = BAD_FILES[case]
    path = tmp_path / "weights.safetensors"
    write(tmp_path, path)
    owner = f"{type(module).__module__.split('.')[0]}.{module.describe()}"
    expected = re.escape(f"{path}: ") + re.escape(pattern.format(owner=owner)).replace(r"\.\*", ".*")
    before = bits()
    with pytest.raises(WeightsError, match=expected):
        load_weights(module, path)
    _assert_same_bits(bits(), before)


def test_the_message_names_the_module_with_its_package(tmp_path):
    _write_state(tmp_path / "w.safetensors", _state(projector__weight=np.ones((4, 6), F32)))
    with pytest.raises(WeightsError, match=r"expected \(4, 5\) for torch_ref\.PooledHead\(in_features=5, "):
        load_weights(_torch_module("PooledHead", torch.float32), tmp_path / "w.safetensors")
    assert issubclass(crosscheck.WeightsError, ValueError) and crosscheck.WeightsError is WeightsError


def _exported(module) -> dict[str, np.ndarray]:
    """A module's parameters in torch_ref's names and layouts, whichever framework it is in."""
    if isinstance(module, nnx.Module):
        return torch_state_of_jax(module)
    return {key: numpy_of_torch(t) for key, t in module.state_dict().items()}


def test_cast_loads_a_float64_file_into_a_float32_module(tmp_path, head):
    module, bits = head
    path = tmp_path / "w.safetensors"
    state = {key: a.astype(np.float64) / 3 for key, a in _state().items()}
    _write_state(path, state)
    before = bits()
    with pytest.raises(WeightsError, match="has dtype float64, expected float32"):
        load_weights(module, path)
    _assert_same_bits(bits(), before)
    load_weights(module, path, cast=True)
    loaded = {key: _bits(a) for key, a in _exported(module).items()}
    _assert_same_bits(loaded, {key: _bits(a.astype(np.float32)) for key, a in state.items()})


def test_cast_still_refuses_a_wrong_shape(tmp_path, head):
    module, bits = head
    _write_state(tmp_path / "w.safetensors", _state(classifier__weight=np.ones((3, 5), np.float64)))
    before = bits()
    with pytest.raises(WeightsError, match=r"key 'classifier.weight' has shape \(3, 5\), expected \(3, 4\)"):
        load_weights(module, tmp_path / "w.safetensors", cast=True)
    _assert_same_bits(bits(), before)
