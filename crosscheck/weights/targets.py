"""Writes into live modules, all or nothing: every target checked and every new value converted before
the first write, so that a failure leaves the module bitwise as it was (parameters and buffers).

What would make a write fail half way, or silently, is found first:

- a torch tensor on the meta device (a shape without data): there is nothing to read from it, and a
  copy into it writes nothing;
- an expanded torch tensor (stride 0: several elements at one memory location), which ``copy_``
  refuses after the tensors before it were written;
- an inference tensor (made under ``torch.inference_mode``), which cannot change outside it;
- tied weights, one tensor under two ``state_dict`` keys (``out.weight is emb.weight``) or one
  ``nnx.Variable`` at two paths, given two different values: which one won would be an accident of
  order. Equal values are written once; different ones are a :class:`WeightsError` naming the keys.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
from flax import nnx

from crosscheck.weights.arrays import _torch, jax_of_numpy, numpy_of_torch, torch_dtype_name, torch_of_numpy
from crosscheck.weights.fit import Spec, WeightsError
from crosscheck.weights.rules import Packed
from crosscheck.weights.tree import (
    Entry,
    Rename,
    array_or_shape,
    describe_module,
    dotted,
    is_abstract,
    renamed,
    torch_only,
)


def _keys(keys: list[str]) -> str:
    return f"key{'s' if len(keys) > 1 else ''} {', '.join(repr(key) for key in keys)}"


def _are(keys: list[str]) -> str:
    return "are" if len(keys) > 1 else "is"


def torch_state(module) -> dict:
    """A torch module's ``state_dict`` (parameters and buffers, detached; tied ones under every key)."""
    return dict(module.state_dict())


def torch_arrays(module, source: str, purpose: str) -> dict[str, np.ndarray]:
    """NumPy copies of a torch module's ``state_dict``; WeightsError if a tensor has no data (meta).

    >>> import torch
    >>> with torch.device("meta"):
    ...     layer = torch.nn.Linear(2, 1)
    >>> torch_arrays(layer, "save_weights to w.safetensors", "save")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    crosscheck.WeightsError: save_weights to w.safetensors: keys 'weight', 'bias' of torch.Linear(...) are on
    the meta device (a shape without data), so there are no values to save; ...
    """
    state = torch_state(module)
    require_torch_data(module, state, source, purpose)
    return {key: numpy_of_torch(tensor) for key, tensor in state.items()}


def require_torch_data(module, state: Mapping[str, object], source: str, purpose: str) -> None:
    """WeightsError if a tensor of ``state`` (``module``'s) has no data (the meta device)."""
    meta = [key for key, tensor in state.items() if tensor.is_meta]
    if meta:
        raise WeightsError(
            f"{source}: {_keys(meta)} of {describe_module(module)} {_are(meta)} on the meta device (a shape "
            f"without data), so there are no values to {purpose}; give the module memory and weights first "
            "(module.to_empty(device='cpu'), then load_weights)"
        )


def torch_spec(tensor) -> Spec:
    """A torch tensor's shape and dtype name, read from its metadata (a meta tensor has them too)."""
    return Spec(tuple(tensor.shape), torch_dtype_name(tensor))


def torch_keys(state: Mapping[str, object], rename: Rename, target: str) -> dict[str, str]:
    """``{exchange key: the module's own key}``: ``rename`` applied to a torch module's own keys.

    Raises:
        WeightsError: ``rename`` maps two keys to one.
    """
    names = [renamed(key, rename) for key in state]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise WeightsError(
            f"{target}: rename maps two or more keys to {', '.join(repr(name) for name in doubled)}; "
            "each key needs a name of its own"
        )
    return dict(zip(names, state, strict=True))


def require_writable_torch(state: Mapping[str, object], source: str, target: str) -> None:
    """WeightsError, naming every key and what is wrong with it, unless every tensor of ``state`` can
    be written in place: none on the meta device, none expanded, none an inference tensor."""
    meta = [key for key, t in state.items() if t.is_meta]
    expanded = [
        key
        for key, t in state.items()
        if not t.is_meta
        and any(stride == 0 and size > 1 for size, stride in zip(t.shape, t.stride(), strict=True))
    ]
    inference = [key for key, t in state.items() if t.is_inference()]
    problems = []
    if meta:
        problems.append(
            f"{_keys(meta)} {_are(meta)} on the meta device (a shape without data), so there is nowhere to "
            "write the values (module.to_empty(device='cpu') gives the module memory)"
        )
    if expanded:
        problems.append(
            f"{_keys(expanded)} {_are(expanded)} expanded (stride 0: several elements at one memory "
            "location), so the elements cannot take values of their own (give each a tensor of its own, "
            "e.g. a torch.nn.Parameter of its .clone())"
        )
    if inference:
        problems.append(
            f"{_keys(inference)} {_are(inference)} inference tensors (made under torch.inference_mode), "
            "which cannot change outside it"
        )
    if problems:
        raise WeightsError(
            f"{source}: {target} cannot be written: {'; '.join(problems)}; nothing was written"
        )


def _extent(tensor) -> tuple[int, int]:
    """The bytes a tensor's elements span in memory: ``[start, end)``."""
    last = sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True))
    return tensor.data_ptr(), tensor.data_ptr() + (last + 1) * tensor.element_size()


def torch_ties(state: Mapping[str, object], source: str, target: str) -> list[list[str]]:
    """The keys that are one tensor (the same memory, the same view), in groups of two or more.

    Raises:
        WeightsError: two keys are different views of overlapping memory (a slice or a transpose of
        one another): writing one would change the other.
    """
    views: dict[tuple, list[str]] = {}
    for key, t in state.items():
        if t.numel() and not t.is_meta:
            view = (str(t.device), t.dtype, t.data_ptr(), tuple(t.shape), tuple(t.stride()))
            views.setdefault(view, []).append(key)
    spans = sorted((view[0], *_extent(state[keys[0]]), keys[0]) for view, keys in views.items())
    reach = ("", 0, "")  # (device, the furthest end so far, whose)
    order = {key: index for index, key in enumerate(state)}
    for device, start, end, other in spans:
        if device == reach[0] and start < reach[1]:
            first, second = sorted((reach[2], other), key=order.get)
            raise WeightsError(
                f"{source}: keys {first!r} and {second!r} are different views of the same memory in {target} "
                "(a slice, transpose or reshape of one another), so writing one would change the other; "
                "nothing was written"
            )
        if device != reach[0] or end > reach[1]:
            reach = (device, end, other)
    return [keys for keys in views.values() if len(keys) > 1]


def _shown(value) -> str:
    value = np.asarray(value)
    if value.dtype.kind in "biu":
        return str(value.item())
    return str(complex(value)) if value.dtype.kind == "c" else f"{float(value):.6g}"


def _bits(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, order="C")
    return array.view(f"u{array.dtype.itemsize}") if array.dtype.kind != "b" else array


def require_ties_agree(
    groups: list[list[str]], values: Mapping[str, np.ndarray], source: str, target: str, what: str
) -> None:
    """WeightsError unless the keys of each group (one tensor or variable, ``what``) get the same
    values, bit for bit, in the target's dtype."""
    for keys in groups:
        first = values[keys[0]]
        for key in keys[1:]:
            differ = _bits(first) != _bits(values[key])
            if differ.any():
                index = tuple(int(i) for i in np.unravel_index(int(np.argmax(differ)), differ.shape))
                raise WeightsError(
                    f"{source}: keys {', '.join(repr(k) for k in keys)} are one {what} in {target} (tied "
                    f"weights) but get different values for {keys[0]!r} and {key!r}: {int(differ.sum())} of "
                    f"{differ.size} elements differ, the first at index {index}: {_shown(first[index])} vs "
                    f"{_shown(values[key][index])}; give them equal values, or untie them in the module"
                )


def write_torch(module, arrays: Mapping[str, np.ndarray], source: str) -> None:
    """Give every tensor of a torch module's ``state_dict`` its array (keyed by the module's keys, in
    the tensor's dtype and shape already), all or nothing; a buffer no Flax layer holds
    (``num_batches_tracked``) keeps its value when no array is given for it."""
    torch = _torch()
    target = describe_module(module)
    state = torch_state(module)
    require_writable_torch(state, source, target)
    require_ties_agree(torch_ties(state, source, target), arrays, source, target, "tensor")
    state = {key: tensor for key, tensor in state.items() if key in arrays or not torch_only(key)}
    values = {}
    for key, tensor in state.items():
        value = torch_of_numpy(arrays[key]).to(tensor.dtype)
        have, want = tuple(value.shape), tuple(tensor.shape)
        if have != want:  # require_fit saw to it: a last guard, before any write
            raise WeightsError(f"{source}: key {key!r} has shape {have}, expected {want} for {target}")
        values[key] = value
    with torch.no_grad():  # everything checked and converted above: these copies cannot fail half way
        for key, tensor in state.items():
            tensor.copy_(values[key])


def write_jax(
    entries: list[Entry], arrays: Mapping[str, np.ndarray], source: str, target: str, module=None
) -> None:
    """Give each entry's variable its array (torch layout, keyed by the entry's key), converted to the
    variable's layout and dtype, all or nothing; a variable at two paths must get one value.

    Two passes, one array at a time: the first converts every array and checks it (a value the dtype
    would change, tied keys that disagree) and keeps none; only then does the second convert and write
    each. A model is never held twice beside itself, and a failed copy still changes nothing.

    A ``module`` built by ``nnx.eval_shape`` (shapes and dtypes, no arrays) gets its arrays here,
    placed as its abstract variables' shardings say; every abstract variable must be among the entries.
    """
    if module is not None:
        require_abstract_written(module, entries, source, target)

    def converted_for(entry: Entry) -> np.ndarray:
        return np.asarray(entry.rule.from_torch(arrays[entry.key]), array_or_shape(entry.variable).dtype)

    shared: dict[int, list[str]] = {}
    for entry in entries:
        shared.setdefault(id(entry.variable), []).append(entry.key)
    tied = {key for keys in shared.values() if len(keys) > 1 for key in keys}
    held = {}
    for entry in entries:
        value = converted_for(entry)
        if entry.key in tied:
            held[entry.key] = value
        del value
    require_ties_agree([keys for keys in shared.values() if len(keys) > 1], held, source, target, "variable")
    del held
    for entry in entries:  # everything converted and checked above: these writes cannot fail half way
        value = converted_for(entry)
        array, raw = jax_of_numpy(value, value.dtype), entry.variable.get_raw_value()
        del value
        if is_abstract(raw):
            entry.variable.set_raw_value(_placed(array, raw.sharding))
        else:
            entry.variable[...] = array
        del array


def abstract_variables(module) -> dict[int, str]:
    """The variables ``module`` holds as shapes only (``nnx.eval_shape``), by id, with their paths."""
    return {
        id(node): dotted(*path)
        for path, node in nnx.iter_graph(module)
        if isinstance(node, nnx.Variable) and is_abstract(node.get_raw_value())
    }


def _built_abstract(target: str) -> str:
    return f"{target} was built abstract (nnx.eval_shape: shapes, no arrays)"


def require_abstract_readable(module, entries: list[Entry], source: str, target: str) -> None:
    """WeightsError where a torch tensor is made of several of an abstract module's variables (its
    shape is read from their values)."""
    packed = [entry.key for entry in entries if isinstance(entry.variable, Packed)]
    if packed and abstract_variables(module):
        raise WeightsError(
            f"{source}: {_built_abstract(target)}, and {packed[0]!r} is one tensor made of several of its "
            "variables, which cannot be read before they hold arrays; build the module with arrays (any "
            "init), then copy"
        )


def require_arrays(module, source: str, target: str) -> None:
    """WeightsError where ``module`` holds shapes only: the source of a copy or a file, or the model
    ``check``, ``locate`` and ``align`` run."""
    if abstract_variables(module):
        raise WeightsError(
            f"{source}: {_built_abstract(target)} and holds no weights; copy or load weights into it first"
        )


def require_abstract_written(module, entries: list[Entry], source: str, target: str) -> None:
    """WeightsError unless every variable ``module`` holds as a shape only is one the copy writes: one
    left so would fail the first call that reads it, far from here."""
    abstract = abstract_variables(module)
    meshed = [
        entry.key
        for entry in entries
        if id(entry.variable) in abstract and _on_abstract_mesh(entry.variable.get_raw_value().sharding)
    ]
    if meshed and jax.sharding.get_mesh().empty:
        raise WeightsError(
            f"{source}: {_built_abstract(target)} under a mesh, and {meshed[0]!r} is to be placed on its "
            "axes, but no mesh is set here; copy inside the same jax.set_mesh(...) as the build"
        )
    for entry in entries:
        abstract.pop(id(entry.variable), None)
    if abstract:
        left = sorted(abstract.values())
        more = f" and {len(left) - 3} more" if len(left) > 3 else ""
        raise WeightsError(
            f"{source}: {_built_abstract(target)}, and this copy gives no value to "
            f"{', '.join(map(repr, left[:3]))}{more} (no torch weight maps to them); build the module with "
            "arrays (any init), or give them values first"
        )


def _on_abstract_mesh(sharding) -> bool:
    """Whether ``sharding`` names axes of an abstract mesh (what ``nnx.eval_shape`` under a mesh leaves)."""
    return isinstance(getattr(sharding, "mesh", None), jax.sharding.AbstractMesh)


def _placed(array, sharding):
    """``array`` on the devices an abstract variable's ``sharding`` names: an abstract mesh's axes on
    the mesh ``jax.set_mesh`` set (``nnx.eval_shape`` under it leaves the abstract one)."""
    if sharding is None:
        return array
    if _on_abstract_mesh(sharding):
        sharding = jax.sharding.NamedSharding(jax.sharding.get_mesh(), sharding.spec)
    return jax.device_put(array, sharding)
