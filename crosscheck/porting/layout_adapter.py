"""A torch layer called as its JAX twin is: on the JAX call's positional arguments, in the JAX layout,
returning its outputs in the JAX layout. ``locate`` checks a row with gradients through it when the two
calls differ: activations laid out differently (NHWC against NCHW, split heads against merged
features), or a torch call with more arrays than the JAX one (a decoder layer given its mask and
rotary tables, which the JAX layer makes itself).

The torch call is replayed as it was captured: its first floating arrays (in order) are the JAX
call's floating arguments, moved from the JAX layout into torch's by :class:`Layout` (torch's own
``permute`` and ``reshape`` on a tensor, so gradients flow through the move), and the rest are the
captured values, as constants in the run's dtype; outputs are moved into the JAX layout the same way.
``check`` then sees equal shapes on both sides, and the input gradient comes back in the JAX layout.

>>> from crosscheck.porting.activation_layouts import assumed_layout
>>> conv = torch.nn.Conv2d(3, 4, 1)
>>> captured = ((torch.zeros(2, 3, 5, 6),), {})  # the torch call as it was: one NCHW input
>>> nhwc_in, nhwc_out = assumed_layout((2, 3, 5, 6), (2, 5, 6, 3)), assumed_layout((2, 4, 5, 6), (2, 5, 6, 4))
>>> adapted = InJaxLayout(conv, captured, [nhwc_in], [nhwc_out])
>>> tuple(adapted(torch.ones(2, 5, 6, 3)).shape), list(adapted.state_dict())
((2, 5, 6, 4), ['layer.weight', 'layer.bias'])
"""

from __future__ import annotations

import torch

from crosscheck.porting.activation_layouts import Layout

PREFIX = "layer."
"""Where the wrapped layer's weights sit in the adapter's ``state_dict``."""


class InJaxLayout(torch.nn.Module):
    """``layer`` called as the captured torch ``call`` (``(args, kwargs)``), its first floating arrays
    replaced by the floating positional arguments given, each moved by its layout in ``inputs``
    (torch -> JAX, or ``None``: as it is). Returns the first ``len(outputs)`` floating outputs, each moved
    by its layout: one tensor, or a tuple (torch's further outputs, such as attention weights the JAX
    layer does not return, are left out).

    Shape:
        each floating argument: ``inputs[i].jax_shape``; each floating output: ``outputs[i].jax_shape``.
    """

    def __init__(self, layer: torch.nn.Module, call: tuple[tuple, dict], inputs: list, outputs: list):
        super().__init__()
        self.layer, self.call = layer, call
        self.inputs, self.outputs = list(inputs), list(outputs)

    def forward(self, *args):
        given = [a for a in args if _is_floating(a)]
        dtype = given[0].dtype if given else torch.float64
        pairs = zip(given, self.inputs, strict=True)
        moved = iter([_moved(tensor, layout, Layout.to_torch) for tensor, layout in pairs])

        def fill(leaf: torch.Tensor) -> torch.Tensor:
            value = next(moved, None)
            return leaf.to(dtype) if value is None else value

        call_args, call_kwargs = each_floating(self.call, fill)
        outputs: list[torch.Tensor] = []
        each_floating(self.layer(*call_args, **call_kwargs), outputs.append)  # collects them, in order
        pairs = zip(outputs[: len(self.outputs)], self.outputs, strict=True)
        moved = [_moved(tensor, layout, Layout.to_jax) for tensor, layout in pairs]
        return moved[0] if len(moved) == 1 else tuple(moved)


def replayable(tree) -> bool:
    """Whether a captured call holds only tensors, plain values and containers of them (a cache object
    would be advanced by each of ``check``'s runs in turn)."""
    if tree is None or isinstance(tree, (torch.Tensor, bool, int, float, str)):
        return True
    if isinstance(tree, (tuple, list)):
        return all(replayable(value) for value in tree)
    if isinstance(tree, dict):
        return all(replayable(value) for value in tree.values())
    return False


def _is_floating(value) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _moved(tensor: torch.Tensor, layout: Layout | None, move) -> torch.Tensor:
    """``tensor`` moved by ``move`` (``Layout.to_jax`` or ``Layout.to_torch``), as it is without a layout."""
    return tensor if layout is None else move(layout, tensor)


def each_floating(tree, change):
    """``tree`` with ``change`` applied to each floating tensor, in order (dicts in their own order)."""
    if _is_floating(tree):
        return change(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(each_floating(value, change) for value in tree)
    if isinstance(tree, dict):
        return {key: each_floating(value, change) for key, value in tree.items()}
    return tree
