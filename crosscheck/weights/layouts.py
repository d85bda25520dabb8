"""The registry of layouts: for each JAX layer type, how its parameters sit in the PyTorch layer it mirrors.

This is the only place that knows how two frameworks lay a parameter out. The exchange format is
PyTorch's ``state_dict`` (names and layouts), so the rules map a JAX leaf layer's variables to the
``state_dict`` entries of its PyTorch twin:

=======================  ================================  =================================
JAX layer                its variables                     the PyTorch layer's
=======================  ================================  =================================
jaxlin.Linear (+ Batch-  kernel ``(in, out)``, bias         torch_ref.Linear / nn.Linear:
InvariantLinear)                                           weight ``(out, in)``, bias
jaxlin.PointwiseConv     kernel ``(1, in, out)``, bias      torch_ref.PointwiseConv /
                                                           nn.Conv1d(k=1): ``(out, in, 1)``
jaxlin.PerHeadLinear     kernel ``(heads, in, out)``, bias  weight ``(heads, out, in)``, bias
nnx.Linear               kernel ``(in, out)``, bias         nn.Linear: weight ``(out, in)``
nnx.Conv                 kernel ``(k..., in, out)``, bias   nn.Conv1d/2d: ``(out, in, k...)``
nnx.LayerNorm            scale, bias (use_scale=False,      nn.LayerNorm: weight, bias
                         use_bias=False: absent)            (elementwise_affine, bias=False)
nnx.Embed                embedding ``(num, features)``      nn.Embedding: weight, the same
nnx.BatchNorm            scale, bias, mean, var             nn.BatchNorm1d/2d/3d: weight, bias,
                                                           running_mean, running_var (its
                                                           num_batches_tracked: no counterpart)
nnx.RMSNorm              scale                              nn.RMSNorm: weight (eps=None: the
                                                           input dtype's machine epsilon)
nnx.GroupNorm            scale, bias                        nn.GroupNorm: weight, bias (channels
                                                           first; num_groups in the notes)
nnx.ConvTranspose        kernel ``(k..., in, out)``, bias   nn.ConvTranspose1d/2d/3d: weight
                         (transpose_kernel=False: flipped   ``(in, out, k...)``, bias
                         in space; True: ``(k..., out,
                         in)``, unflipped)
nnx.PReLU                negative_slope ``()``              nn.PReLU(num_parameters=1): weight
                                                           ``(1,)``
nnx.LinearGeneral        kernel ``(in..., out...)``, bias   nn.Linear: weight ``(prod(out),
                         ``(out...)`` (batch_axis: none)    prod(in))``, bias ``(prod(out),)``
nnx.Einsum               kernel by its string, e.g.         nn.Linear: weight ``(N·H, D)``, bias
                         ``"BTD,NDH->BTNH"`` ``(N, D, H)``  ``(N·H,)`` (bias_shape ``(N, H)``)
nnx.MultiHeadAttention   query/key/value kernels ``(D, H,   nn.MultiheadAttention: in_proj_weight
                         hd)`` and biases ``(H, hd)``,      ``(3E, D)`` q; k; v on the rows,
                         out kernel ``(H, hd, out)``, bias  in_proj_bias ``(3E,)``, out_proj
                                                           weight ``(out, E)``, bias
nnx.LSTMCell             ii..io ``(in, H)``, hi..ho         nn.LSTMCell: weight_ih ``(4H, in)``
                         ``(H, H)`` kernels, hi..ho biases  gates i, f, g, o; weight_hh; bias_ih
                                                           + bias_hh = the Flax bias
nnx.GRUCell              dense_i ``(in, 3H)`` + bias,       nn.GRUCell: weight_ih ``(3H, in)``
                         dense_h ``(H, 3H)``                gates r, z, n; b_hn must be 0
nnx.SimpleCell           dense_i ``(in, H)`` + bias,        nn.RNNCell: weight_ih, weight_hh,
                         dense_h ``(H, H)``                 bias_ih + bias_hh = dense_i.bias
=======================  ================================  =================================

Containers (``PooledHead``, a user's model) have no rule: their leaves are mapped by attribute path
(:mod:`crosscheck.weights.tree`). :func:`register_layout` adds a rule for a user's own layer. The
rules of the later rows live by family (:mod:`~crosscheck.weights.layouts_norms`,
:mod:`~crosscheck.weights.layouts_conv`, :mod:`~crosscheck.weights.layouts_general`,
:mod:`~crosscheck.weights.layouts_attention`, :mod:`~crosscheck.weights.layouts_recurrent`), on the
dataclasses of :mod:`~crosscheck.weights.rules`; a rule that must see its module (an ``Einsum``'s
string) builds its parameter rules per instance with ``Layout.params_of``, and a rule that owns its
layer's children (attention's projections, a cell's gates) names them in ``ParamRule.parts``. A torch
layer of a class no rule lists maps when its parameter names and shapes fit, with a note.

>>> [rule.torch_name for rule in layout_of(jaxlin.PerHeadLinear(2, 3, 4, rngs=nnx.Rngs(0))).params]
['weight', 'bias']
"""

from __future__ import annotations

import numpy as np
from flax import nnx

import jaxlin
from crosscheck.weights.layouts_attention import ATTENTION_LAYOUTS
from crosscheck.weights.layouts_conv import CONV_TRANSPOSE, conv_padding_notes
from crosscheck.weights.layouts_general import GENERAL_LAYOUTS
from crosscheck.weights.layouts_norms import NORM_LAYOUTS
from crosscheck.weights.layouts_recurrent import RECURRENT_LAYOUTS
from crosscheck.weights.rules import Layout, ParamRule, same, swap_last_two, use_registry

__all__ = ["Layout", "ParamRule", "known_layers", "layout_of", "register_layout", "same", "swap_last_two"]


def kernel_to_weight(a: np.ndarray) -> np.ndarray:
    """A convolution kernel ``(k..., in, out)`` (Flax) as a weight ``(out, in, k...)`` (PyTorch)."""
    spatial = a.ndim - 2
    return np.transpose(a, (spatial + 1, spatial, *range(spatial)))


def weight_to_kernel(a: np.ndarray) -> np.ndarray:
    """A convolution weight ``(out, in, k...)`` (PyTorch) as a kernel ``(k..., in, out)`` (Flax)."""
    return np.transpose(a, (*range(2, a.ndim), 1, 0))


WEIGHT_BIAS = (ParamRule("kernel", "weight", swap_last_two, swap_last_two), ParamRule("bias", "bias"))
CONV_WEIGHT_BIAS = (
    ParamRule("kernel", "weight", kernel_to_weight, weight_to_kernel),
    ParamRule("bias", "bias"),
)


def _layer_norm_notes(ours, theirs) -> list[str]:
    notes = []
    eps = getattr(theirs, "eps", None)
    if eps is not None and not np.isclose(ours.epsilon, eps, rtol=1e-6, atol=0):
        notes.append(f"epsilon {ours.epsilon:g} in Flax vs eps {eps:g} in PyTorch")
    if getattr(ours, "use_fast_variance", False):
        notes.append(
            "Flax computes the variance as E[x²] − E[x]² (use_fast_variance=True); PyTorch as E[(x − E[x])²]"
        )
    return notes


def _batch_norm_notes(ours, theirs) -> list[str]:
    notes = []
    eps = getattr(theirs, "eps", None)
    if eps is not None and not np.isclose(ours.epsilon, eps, rtol=1e-6, atol=0):
        notes.append(f"epsilon {ours.epsilon:g} in Flax vs eps {eps:g} in PyTorch")
    momentum = getattr(theirs, "momentum", None)
    if momentum is not None and not np.isclose(ours.momentum, 1 - momentum, rtol=1e-6, atol=1e-12):
        notes.append(
            f"momentum {ours.momentum:g} in Flax vs {momentum:g} in PyTorch (the same update needs "
            f"Flax momentum = 1 - PyTorch momentum = {1 - momentum:g}); only training updates read it"
        )
    return notes


def _embed_notes(ours, theirs) -> list[str]:
    padding = getattr(theirs, "padding_idx", None)
    if padding is None:
        return []
    return [f"padding_idx={padding} in PyTorch: that row gets no gradient; nnx.Embed has no padding index"]


def _conv_notes(ours, theirs) -> list[str]:
    spatial = len(ours.kernel_size)
    notes = []
    if hasattr(theirs, "padding"):
        notes += conv_padding_notes(ours, theirs)
    for flax_name, torch_name in (("strides", "stride"), ("kernel_dilation", "dilation")):
        flax_value, torch_value = getattr(ours, flax_name) or 1, getattr(theirs, torch_name, None)
        flax_value = (flax_value,) * spatial if isinstance(flax_value, int) else tuple(flax_value)
        if torch_value is not None and flax_value != tuple(torch_value):
            notes.append(f"{flax_name} {flax_value} in Flax vs {torch_name} {tuple(torch_value)} in PyTorch")
    return notes


_REGISTRY: list[Layout] = [
    Layout("jaxlin.PerHeadLinear", (jaxlin.PerHeadLinear,), WEIGHT_BIAS, ("PerHeadLinear",)),
    Layout(
        "jaxlin.PointwiseConv",
        (jaxlin.PointwiseConv,),
        CONV_WEIGHT_BIAS,
        ("PointwiseConv", "Conv1d"),
        channels_first=True,
    ),
    Layout("jaxlin.Linear", (jaxlin.Linear,), WEIGHT_BIAS, ("Linear", "BatchInvariantLinear")),
    Layout("nnx.Linear", (nnx.Linear,), WEIGHT_BIAS, ("Linear",)),
    Layout("nnx.Conv", (nnx.Conv,), CONV_WEIGHT_BIAS, ("Conv1d", "Conv2d", "Conv3d"), True, _conv_notes),
    Layout(
        "nnx.LayerNorm",
        (nnx.LayerNorm,),
        (ParamRule("scale", "weight"), ParamRule("bias", "bias")),
        ("LayerNorm",),
        notes=_layer_norm_notes,
    ),
    Layout(
        "nnx.BatchNorm",
        (nnx.BatchNorm,),
        (
            ParamRule("scale", "weight"),
            ParamRule("bias", "bias"),
            ParamRule("mean", "running_mean"),
            ParamRule("var", "running_var"),
        ),  # fmt: skip
        ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
        notes=_batch_norm_notes,
    ),
    Layout(
        "nnx.Embed", (nnx.Embed,), (ParamRule("embedding", "weight"),), ("Embedding",), notes=_embed_notes
    ),
    *NORM_LAYOUTS,
    CONV_TRANSPOSE,
    *GENERAL_LAYOUTS,
    *ATTENTION_LAYOUTS,
    *RECURRENT_LAYOUTS,
]


def register_layout(layout: Layout) -> None:
    """Add a rule for a JAX layer type; it is tried before the built-in ones (so a subclass can
    override its base class's rule)."""
    _REGISTRY.insert(0, layout)


def layout_of(module) -> Layout | None:
    """The first registered rule whose JAX types ``module`` is an instance of, or ``None``."""
    return next((layout for layout in _REGISTRY if isinstance(module, layout.jax_types)), None)


def known_layers() -> list[str]:
    """The names of every registered rule, for messages."""
    return [layout.name for layout in _REGISTRY]


def registered() -> tuple[Layout, ...]:
    """Every registered rule, in the order :func:`layout_of` tries them.

    >>> "nnx.MultiHeadAttention" in [layout.name for layout in registered()]
    True
    """
    return tuple(_REGISTRY)


use_registry(registered)
