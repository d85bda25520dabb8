"""A JAX module built by ``nnx.eval_shape`` (shapes and dtypes, no arrays) takes its weights from a copy
or a file: the arrays a module built with a random init gets, never a random init compiled or held."""

import jax
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

import crosscheck
import jaxlin
import torch_ref
from crosscheck import WeightsError, check, copy_jax_to_torch, copy_torch_to_jax, load_weights, save_weights

# Each JAX maker takes the kernel's init: the default (what a port writes) for the abstract module,
# zeros for the built one, whose kernel the copy overwrites (a random init compiles a program per
# shape, a second each: most of this file's time).
DEFAULT, ZEROS = {}, {"kernel_init": nnx.initializers.zeros_init()}
LAYERS = {
    "jaxlin.Linear": (
        lambda i, o: torch_ref.Linear(i, o),
        lambda i, o, init: jaxlin.Linear(i, o, rngs=nnx.Rngs(0), **init),
    ),
    "jaxlin.PerHeadLinear": (
        lambda i, o: torch_ref.PerHeadLinear(2, i, o),
        lambda i, o, init: jaxlin.PerHeadLinear(2, i, o, rngs=nnx.Rngs(0), **init),
    ),
    "nnx.Conv": (
        lambda i, o: torch.nn.Conv2d(i, o, 3),
        lambda i, o, init: nnx.Conv(i, o, (3, 3), padding="VALID", rngs=nnx.Rngs(0), **init),
    ),
    "nnx.BatchNorm": (
        lambda i, o: torch.nn.BatchNorm1d(i),
        lambda i, o, init: nnx.BatchNorm(i, rngs=nnx.Rngs(0)),
    ),
}


def _leaves(module) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(nnx.state(module))]


@pytest.mark.parametrize("kind", sorted(LAYERS))
@given(n_in=st.integers(1, 9), n_out=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_a_copy_into_an_abstract_module_gives_the_arrays_a_built_one_gets(kind, n_in, n_out, seed):
    make_torch, make_jax = LAYERS[kind]
    torch.manual_seed(seed)
    theirs = make_torch(n_in, n_out)
    built, abstract = make_jax(n_in, n_out, ZEROS), nnx.eval_shape(lambda: make_jax(n_in, n_out, DEFAULT))
    assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree.leaves(nnx.state(abstract)))
    copy_torch_to_jax(theirs, built, strict=False)
    copy_torch_to_jax(theirs, abstract, strict=False)
    for have, want in zip(_leaves(abstract), _leaves(built), strict=True):
        assert have.dtype == want.dtype and have.shape == want.shape
        np.testing.assert_array_equal(have, want)


def test_an_abstract_port_passes_the_check_a_built_one_passes():
    theirs = torch_ref.Linear(6, 4)
    ours = nnx.eval_shape(lambda: jaxlin.Linear(6, 4, rngs=nnx.Rngs(0)))
    copy_torch_to_jax(theirs, ours)
    assert check(ours, theirs, np.random.default_rng(0).standard_normal((5, 6))).passed


def test_a_file_loads_into_an_abstract_module(tmp_path):
    path = tmp_path / "linear.safetensors"
    source = jaxlin.Linear(3, 2, rngs=nnx.Rngs(1))
    save_weights(source, path)
    target = nnx.eval_shape(lambda: jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)))
    load_weights(target, path)
    np.testing.assert_array_equal(np.asarray(target.kernel[...]), np.asarray(source.kernel[...]))


def test_an_abstract_sharded_variable_gets_its_array_placed_as_its_sharding_says():
    mesh = jax.make_mesh((1,), ("model",))
    init = nnx.with_partitioning(nnx.initializers.lecun_normal(), (None, "model"))
    with jax.set_mesh(mesh):
        ours = nnx.eval_shape(lambda: nnx.Linear(3, 2, kernel_init=init, rngs=nnx.Rngs(0)))
        wanted = ours.kernel.get_raw_value().sharding
        copy_torch_to_jax(torch.nn.Linear(3, 2), ours)
    assert ours.kernel[...].sharding.spec == wanted.spec == jax.P(None, "model")
    assert ours.kernel[...].sharding.mesh.axis_names == ("model",)


def test_an_abstract_sharded_module_copied_outside_its_mesh_is_refused():
    init = nnx.with_partitioning(nnx.initializers.lecun_normal(), (None, "model"))
    with jax.set_mesh(jax.make_mesh((1,), ("model",))):
        ours = nnx.eval_shape(lambda: nnx.Linear(3, 2, kernel_init=init, rngs=nnx.Rngs(0)))
    with pytest.raises(WeightsError) as raised:
        copy_torch_to_jax(torch.nn.Linear(3, 2), ours)
    assert str(raised.value).endswith(
        ": flax.Linear was built abstract (nnx.eval_shape: shapes, no arrays) under a mesh, and 'weight' is to be placed on its axes, but no mesh is set here; copy inside the "
        "same jax.set_mesh(...) as the build"
    )
    assert isinstance(ours.bias.get_raw_value(), jax.ShapeDtypeStruct)


def test_a_variable_the_copy_leaves_abstract_is_refused_and_nothing_changes():
    class WithDropout(nnx.Module):
        def __init__(self):
            self.dense = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
            self.drop = nnx.Dropout(0.1, rngs=nnx.Rngs(0))  # its RNG key and count: no torch counterpart

    ours = nnx.eval_shape(WithDropout)
    theirs = torch.nn.Sequential()
    theirs.dense = torch.nn.Linear(3, 2)
    with pytest.raises(WeightsError) as raised:
        copy_torch_to_jax(theirs, ours)
    assert str(raised.value).endswith(
        "WithDropout was built abstract (nnx.eval_shape: shapes, no arrays), and this copy gives no value to "
        "'drop.rngs.count', 'drop.rngs.key' (no torch weight maps to them); build the module with arrays "
        "(any init), or give them values first"
    )
    assert isinstance(ours.dense.kernel.get_raw_value(), jax.ShapeDtypeStruct)  # all or nothing


def test_an_abstract_module_has_no_weights_to_give(tmp_path):
    ours = nnx.eval_shape(lambda: jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)))
    tail = (
        "jaxlin.Linear(in_features=3, out_features=2) was built abstract (nnx.eval_shape: shapes, no arrays) "
    )
    tail += "and holds no weights; copy or load weights into it first"
    with pytest.raises(WeightsError, match=r"^copy_jax_to_torch from jaxlin.Linear\(.*\): ") as raised:
        copy_jax_to_torch(ours, torch_ref.Linear(3, 2))
    assert str(raised.value).endswith(tail)
    with pytest.raises(WeightsError, match=r"^save_weights to .*w.safetensors: ") as raised:
        save_weights(ours, tmp_path / "w.safetensors")
    assert str(raised.value).endswith(tail) and not (tmp_path / "w.safetensors").exists()


def test_a_tensor_made_of_several_abstract_variables_is_refused():
    ours = nnx.eval_shape(lambda: nnx.LSTMCell(3, 4, rngs=nnx.Rngs(0)))
    with pytest.raises(WeightsError, match=r"built abstract .*, and '\w+' is one tensor made of several"):
        copy_torch_to_jax(torch.nn.LSTMCell(3, 4), ours)


@pytest.mark.parametrize("function", ["check", "locate", "align"])
def test_a_model_given_no_weights_yet_is_refused_by_name(function):
    ours = nnx.eval_shape(lambda: jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)))
    with pytest.raises(WeightsError) as raised:
        getattr(crosscheck, function)(ours, torch_ref.Linear(3, 2), np.ones((1, 3)))
    assert str(raised.value) == (
        f"{function}: jaxlin.Linear(in_features=3, out_features=2) was built abstract (nnx.eval_shape: shapes, "
        "no arrays) and holds no weights; copy or load weights into it first"
    )
