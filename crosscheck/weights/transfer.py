"""Weights in and out of modules of either framework: files, and copies between live modules.

One exchange format: PyTorch's ``state_dict`` names and layouts, as a safetensors file — what a
PyTorch user (or ``save_pretrained``) already has. A JAX module tree is mapped onto it by
:func:`crosscheck.weights.tree.plan`; a torch module is its own ``state_dict``.

Every function validates everything before it writes anything: the key sets, every shape exactly
(nothing broadcasts), dtypes (converted by copies; by files only with ``cast``), and values that
would overflow in the target dtype. On any problem :class:`WeightsError` names the source, the key,
the expected and the actual value and the module, and the target is left exactly as it was. A JAX
module's new values are private copies (never views of a torch tensor).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from crosscheck.weights import files
from crosscheck.weights.arrays import is_torch_module, numpy_of_torch, numpy_view_of_torch, torch_dtype_name
from crosscheck.weights.files import Loaded
from crosscheck.weights.fit import Spec, WeightsError, converted, require_fit, spec_of, whole_prefix
from crosscheck.weights.selection import Copied, Ignore, select_keys, torch_part
from crosscheck.weights.targets import (
    require_abstract_readable,
    require_arrays,
    require_torch_data,
    require_writable_torch,
    torch_arrays,
    torch_keys,
    torch_spec,
    torch_state,
    write_jax,
    write_torch,
)
from crosscheck.weights.tree import Rename, describe_module, plan, torch_only, torch_state_of_jax, torch_twin

__all__ = [
    "Copied",
    "WeightsError",
    "copy_jax_to_torch",
    "copy_torch_to_jax",
    "expected_specs",
    "load_weights",
    "save_weights",
]


def expected_specs(module, *, rename: Rename = None) -> dict[str, Spec]:
    """``{key: Spec}`` of a module's weights in the exchange format, reading no values; ``rename``
    maps a JAX module's paths, or a torch module's own keys, to the keys of the exchange format.

    >>> import torch
    >>> expected_specs(torch.nn.Linear(3, 2), rename={"weight": "kernel_t"})
    {'kernel_t': Spec(shape=(2, 3), dtype='float32'), 'bias': Spec(shape=(2,), dtype='float32')}
    """
    if is_torch_module(module):
        state = torch_state(module)
        keys = torch_keys(state, rename, describe_module(module))
        return {key: torch_spec(state[own]) for key, own in keys.items()}
    return {entry.key: entry.torch_spec() for entry in plan(module, rename=rename)}


def save_weights(module, path: str | os.PathLike, *, rename: Rename = None) -> None:
    """Write a module's weights (jaxlin, Flax, torch_ref or PyTorch) to ``path`` as a safetensors file.

    Names and layouts are PyTorch's ``state_dict`` (a JAX module is mapped on the way out), with
    metadata ``{"format": "pt", "writer": "crosscheck", "module": ...}``, so PyTorch and Hugging
    Face tooling read the file as one of theirs. Values are stored bit for bit in their own dtype
    and shape (a 0-d tensor stays 0-d). ``rename`` maps the module's keys to the file's: a JAX
    module's paths, or a torch module's own ``state_dict`` keys. A torch module on the meta device
    (no values) is a WeightsError. The write is atomic: the previous file, or none, survives any
    failure.

    Shape:
        each tensor in torch layout, e.g. Linear ``weight (out, in)``, PerHeadLinear
        ``weight (heads, out, in)``, PointwiseConv ``weight (out, in, 1)``; biases as they are.

    >>> import os, tempfile, jaxlin
    >>> from flax import nnx
    >>> path = os.path.join(tempfile.mkdtemp(), "head.safetensors")
    >>> save_weights(jaxlin.PooledHead(2, 3, 1, rngs=nnx.Rngs(0)), path)
    >>> files.header(path)["projector.weight"]
    Spec(shape=(3, 2), dtype='float32')
    >>> import torch
    >>> save_weights(torch.nn.Sequential(torch.nn.Linear(2, 3)), path, rename={"0.": "projector."})
    >>> sorted(files.header(path))
    ['projector.bias', 'projector.weight']
    """
    if is_torch_module(module):
        arrays = torch_arrays(module, f"save_weights to {os.fspath(path)}", "save")
        state = {key: arrays[own] for key, own in torch_keys(arrays, rename, describe_module(module)).items()}
    else:
        require_arrays(module, f"save_weights to {os.fspath(path)}", describe_module(module))
        state = torch_state_of_jax(module, rename=rename)
    metadata = {"format": "pt", "writer": "crosscheck", "module": describe_module(module)}
    files.write(path, state, metadata)


def load_weights(
    module,
    path: str | os.PathLike,
    *,
    prefix: str = "",
    strict: bool = True,
    rename: Rename = None,
    cast: bool | str = False,
) -> Loaded:
    """Load a safetensors file in ``state_dict`` names and layouts into ``module`` (either framework).

    ``prefix="classifier."`` takes a submodule's weights out of a whole checkpoint (the keys
    ``classifier.weight``, ...); a prefix is whole path pieces (``"blocks.1"`` means ``"blocks.1."``,
    never ``blocks.10.*``). With ``strict=False`` the file's other keys are ignored and listed in the
    result's ``ignored``. ``rename`` maps the module's keys onto the file's (see
    :func:`crosscheck.weights.tree.renamed`). A dtype other than the parameter's is an error unless
    ``cast=True`` (convert, refusing every value the conversion would change beyond rounding: complex
    to real, overflow to inf, underflow to 0, and NaN, out-of-range values and fractions into an
    integer dtype) or ``cast="unsafe"`` (convert as NumPy's ``astype`` does). NaN and inf load as
    they are (a checkpoint may hold ``-inf`` masks); the result's ``nonfinite`` counts them per key.
    Nothing is unpickled; torch is not needed for a JAX module. torch parameters keep their device
    and dtype.

    Shape:
        the file holds torch-layout tensors of the module's sizes, e.g. Linear ``weight (out, in)``
        for a jaxlin kernel ``(in, out)``.

    Raises:
        WeightsError: anything that does not fit, a torch tensor that cannot be written (meta device,
        expanded, inference tensor), or two different values for tied weights; the module is then
        unchanged, parameters and buffers alike.

    >>> import os, tempfile, jaxlin
    >>> from flax import nnx
    >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
    >>> save_weights(jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)), path)
    >>> layer = jaxlin.Linear(3, 2, rngs=nnx.Rngs(1))
    >>> load_weights(layer, path).ignored
    []
    >>> bool((np.asarray(layer.kernel[...]) == jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)).kernel[...]).all())
    True
    >>> load_weights(jaxlin.Linear(2, 3, rngs=nnx.Rngs(0)), path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    crosscheck.WeightsError: ...linear.safetensors: key 'weight' has shape (2, 3), expected (3, 2);
    key 'bias' has shape (2,), expected (3,) for jaxlin.Linear(in_features=2, out_features=3)
    """
    name, target = os.fspath(path), describe_module(module)
    if is_torch_module(module):
        state = torch_state(module)
        require_writable_torch(state, name, target)  # before a byte of the file is read
        keys = torch_keys(state, rename, target)
        expected = {
            key: Spec(tuple(state[own].shape), torch_dtype_name(state[own])) for key, own in keys.items()
        }
        stored = files.header(path, target)
        in_file = {k for k in expected if whole_prefix(prefix) + k in stored}
        expected = {k: spec for k, spec in expected.items() if k in in_file or not torch_only(k)}
        loaded = files.read(path, expected, target, cast=cast, prefix=prefix, strict=strict)
        write_torch(module, {keys[key]: array for key, array in loaded.arrays.items()}, name)
        return loaded
    entries = plan(module, rename=rename)
    require_abstract_readable(module, entries, name, target)
    expected = {entry.key: entry.torch_spec() for entry in entries}
    loaded = files.read(path, expected, target, cast=cast, prefix=prefix, strict=strict)
    write_jax(entries, loaded.arrays, name, target, module)
    return loaded


def _fitted(
    source: str, state: dict[str, np.ndarray], expected: dict[str, Spec], target: str, cast: bool | str
) -> dict:
    """``state`` checked against ``expected`` and converted to its dtypes, or WeightsError."""
    require_fit(source, {key: spec_of(a) for key, a in state.items()}, expected, target, cast=cast)
    return {
        key: converted(source, key, state[key], spec.dtype, target, cast=cast)
        for key, spec in expected.items()
    }


class _Converted(Mapping):
    """The torch tensors as NumPy arrays in the expected dtypes, each converted when it is read (a model
    is never held whole in NumPy beside both frameworks' copies)."""

    def __init__(self, source: str, state: dict, expected: dict[str, Spec], target: str, cast):
        self.source, self.state, self.expected, self.target, self.cast = source, state, expected, target, cast

    def __getitem__(self, key: str) -> np.ndarray:
        own = numpy_view_of_torch(self.state[key])
        return converted(self.source, key, own, self.expected[key].dtype, self.target, cast=self.cast)

    def __iter__(self):
        return iter(self.expected)

    def __len__(self) -> int:
        return len(self.expected)


def _copy_options(function, torch_module, jax_module, prefix, strict, ignore, rename, cast):
    """The torch part at ``prefix``, the messages' source and target, and the keys to copy."""
    part = torch_part(torch_module, prefix, function)
    where = f" at {whole_prefix(prefix)!r}" if prefix else ""
    torch_name, jax_name = describe_module(part) + where, describe_module(jax_module)
    to_jax = function == "copy_torch_to_jax"
    source, target = (torch_name, jax_name) if to_jax else (jax_name, torch_name)
    chosen = select_keys(
        expected_specs(jax_module, rename=rename), expected_specs(part), prefix=prefix, strict=strict,
        ignore=ignore, source=f"{function} from {source}", target=target, function=function,
        jax_is_source=not to_jax, cast=cast,
    )  # fmt: skip
    return part, f"{function} from {source}", target, chosen


def _twin_keys(torch_module, prefix: str, function: str):
    """The keys of the torch model (its part at ``prefix``) a JAX module's weights map onto."""
    return torch_state(torch_part(torch_module, prefix, function)).keys()


def copy_torch_to_jax(
    torch_module, jax_module, *, rename: Rename = None, cast: bool | str = True, prefix: str = "",
    strict: bool = True, ignore: Ignore = None,
) -> Copied:  # fmt: skip
    r"""Give ``jax_module`` exactly the weights of ``torch_module``, each in the JAX variable's dtype.

    The key sets must be equal and every shape must match exactly (nothing broadcasts); all of it is
    checked, and every value converted, before the first variable changes. The JAX side gets private
    copies: a later in-place update of the torch tensors does not reach it. ``cast`` is
    :func:`load_weights`'s, but converts by default: ``True`` refuses values the conversion would
    change beyond rounding (overflow to inf, underflow to 0, a fraction into an integer, ...),
    ``"unsafe"`` accepts them, ``False`` requires equal dtypes.

    ``prefix="encoder."`` copies from the torch model's submodule ``encoder`` (whole path pieces, as
    :func:`load_weights` takes them out of a checkpoint; keys outside it play no part, so no
    ``strict=False`` is needed for them); ``rename`` then maps onto the submodule's own keys.
    ``ignore=[r"num_batches_tracked$", r"^pooler\."]`` leaves out every key (either model's, named as
    in the whole torch model's ``state_dict``) a regular expression finds (``re.search``); a pattern
    that finds none is an error. ``strict=False`` copies the keys both hold: torch keys with no JAX
    counterpart are listed in the result's ``ignored``, JAX variables with no torch counterpart in its
    ``missing`` (and keep their values).

    Raises:
        WeightsError: a key missing or extra (``strict=True``), a shape that differs, a value the
        conversion to the JAX dtype would change, an ``ignore`` pattern that finds nothing, or no
        submodule at ``prefix``; ``jax_module`` is then unchanged.

    >>> import jaxlin, torch_ref
    >>> from flax import nnx
    >>> src, dst = torch_ref.Linear(3, 2), jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    >>> copied = copy_torch_to_jax(src, dst)
    >>> copied.ignored, copied.missing
    ([], [])
    >>> bool((np.asarray(dst.kernel[...]) == src.weight.detach().numpy().T).all())
    True
    """
    options = (prefix, strict, ignore, rename, cast)
    with torch_twin(_twin_keys(torch_module, prefix, "copy_torch_to_jax")):
        entries = plan(jax_module, rename=rename)
        require_abstract_readable(jax_module, entries, "copy_torch_to_jax", describe_module(jax_module))
        part, source, target, chosen = _copy_options("copy_torch_to_jax", torch_module, jax_module, *options)
        entries = [entry for entry in entries if entry.key in chosen.paired]
        state = torch_state(part)
        require_torch_data(part, state, source, "copy")
        expected = {entry.key: entry.torch_spec() for entry in entries}
        state = {key: a for key, a in state.items() if key in expected}
        require_fit(source, {key: torch_spec(a) for key, a in state.items()}, expected, target, cast=cast)
        write_jax(entries, _Converted(source, state, expected, target, cast), source, target, jax_module)
    return Copied(chosen.ignored, chosen.missing)


def copy_jax_to_torch(
    jax_module, torch_module, *, rename: Rename = None, cast: bool | str = True, prefix: str = "",
    strict: bool = True, ignore: Ignore = None,
) -> Copied:  # fmt: skip
    """Give ``torch_module`` exactly the weights of ``jax_module``, each in the torch tensor's dtype.

    The same checks as :func:`copy_torch_to_jax`, the other way, and the same ``cast``; torch tensors
    keep their device. Everything is checked before the first tensor changes: a tensor on the meta
    device, an expanded one (stride 0) or an inference tensor is an error, and so are two different
    values for tied weights (one tensor under two keys); equal values keep the tie. ``prefix``,
    ``ignore`` and ``strict`` mean what they mean for :func:`copy_torch_to_jax`: ``torch_module`` is the
    whole model and ``jax_module`` the part written into its submodule at ``prefix``; torch keys left
    out (``ignored``) and JAX keys with no torch counterpart (``missing``) are listed, and the torch
    tensors not written keep their values.

    Raises:
        WeightsError: as :func:`copy_torch_to_jax`, or a target that cannot be written;
        ``torch_module`` is then unchanged, parameters and buffers alike.

    >>> import jaxlin, torch
    >>> from flax import nnx
    >>> src, dst = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)), torch.nn.Linear(3, 2, dtype=torch.float16)
    >>> copy_jax_to_torch(src, dst).missing
    []
    >>> want = np.asarray(src.kernel[...], np.float16).T
    >>> dst.weight.dtype, bool((dst.weight.detach().numpy() == want).all())
    (torch.float16, True)
    >>> whole = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    >>> copy_jax_to_torch(src, whole, prefix="0.").ignored
    []
    >>> with torch.device("meta"):
    ...     empty = torch.nn.Linear(3, 2)
    >>> copy_jax_to_torch(src, empty)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    crosscheck.WeightsError: copy_jax_to_torch from jaxlin.Linear(...): torch.Linear(...) cannot be
    written: keys 'weight', 'bias' are on the meta device (a shape without data), ...
    """
    part = torch_part(torch_module, prefix, "copy_jax_to_torch")
    source, target = f"copy_jax_to_torch from {describe_module(jax_module)}", describe_module(part)
    require_writable_torch(torch_state(part), source, target)  # a meta module: an error, not a no-op
    require_arrays(jax_module, source, describe_module(jax_module))
    options = (prefix, strict, ignore, rename, cast)
    with torch_twin(torch_state(part).keys()):
        part, source, target, chosen = _copy_options("copy_jax_to_torch", torch_module, jax_module, *options)
        state = torch_state_of_jax(jax_module, rename=rename)
    state = {key: a for key, a in state.items() if key in chosen.paired}
    expected = {k: spec for k, spec in expected_specs(part).items() if k in state}
    arrays = _fitted(source, state, expected, target, cast)
    own = torch_state(part)
    kept = {k: numpy_of_torch(t) for k, t in own.items() if k not in arrays and not torch_only(k)}
    write_torch(part, {**arrays, **kept}, source)  # a tensor left out is written its own value
    return Copied(chosen.ignored, chosen.missing)
