"""Layout rules of the normalizations beyond LayerNorm and BatchNorm: ``nnx.RMSNorm`` ↔
``nn.RMSNorm`` and ``nnx.GroupNorm`` ↔ ``nn.GroupNorm`` (registered by
:mod:`crosscheck.weights.layouts`).

Their parameters are the same arrays under other names (``scale`` is ``weight``); what differs is
configuration the arrays cannot show, said in notes: the epsilon (``nn.RMSNorm(eps=None)`` takes the
input dtype's machine epsilon, Flax a fixed 1e-6 by default), GroupNorm's number of groups, and
Flax's fast variance.

>>> [rule.torch_name for rule in GROUP_NORM.params]
['weight', 'bias']
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from crosscheck.weights.rules import Layout, ParamRule, differs


def _dtype_name(theirs, ours) -> str:
    """The torch layer's parameter dtype as a NumPy name, else the Flax layer's."""
    weight = getattr(theirs, "weight", None)
    if weight is not None:
        return str(weight.dtype).removeprefix("torch.")
    return jnp.dtype(ours.param_dtype).name


def _fast_variance_note(ours) -> list[str]:
    if getattr(ours, "use_fast_variance", False):
        return [
            "Flax computes the variance as E[x²] − E[x]² (use_fast_variance=True); PyTorch as E[(x − E[x])²]"
        ]
    return []


def _torch_epsilon(theirs) -> tuple[str | None, float | None]:
    """The torch layer's epsilon and its attribute's name: ``eps`` (torch.nn), ``variance_epsilon``
    (Hugging Face's ``LlamaRMSNorm``, ``Qwen3RMSNorm``); ``(None, None)`` when it has neither."""
    for name in ("eps", "variance_epsilon"):
        if hasattr(theirs, name):
            return name, getattr(theirs, name)
    return None, None


def _rms_norm_notes(ours, theirs) -> list[str]:
    name, eps = _torch_epsilon(theirs)
    if name is None:
        return []
    if eps is None:
        dtype = _dtype_name(theirs, ours)
        dtypes = dict.fromkeys((dtype, "float64"))  # the working dtype, then the float64 truth's
        machine = ", ".join(f"{float(jnp.finfo(jnp.dtype(d)).eps):.3g} for {d}" for d in dtypes)
        return [
            f"epsilon {ours.epsilon:g} in Flax vs eps None in PyTorch (the input dtype's machine "
            f"epsilon: {machine})"
        ]
    return (
        [f"epsilon {ours.epsilon:g} in Flax vs {name} {eps:g} in PyTorch"]
        if differs(ours.epsilon, eps)
        else []
    )


def _group_norm_notes(ours, theirs) -> list[str]:
    notes = []
    groups = getattr(theirs, "num_groups", None)
    if groups is not None and groups != ours.num_groups:
        notes.append(f"num_groups {ours.num_groups} in Flax vs num_groups {groups} in PyTorch")
    eps = getattr(theirs, "eps", None)
    if eps is not None and differs(ours.epsilon, eps):
        notes.append(f"epsilon {ours.epsilon:g} in Flax vs eps {eps:g} in PyTorch")
    return notes + _fast_variance_note(ours)


RMS_NORM = Layout(
    "nnx.RMSNorm", (nnx.RMSNorm,), (ParamRule("scale", "weight"),), ("RMSNorm",), notes=_rms_norm_notes
)
GROUP_NORM = Layout(
    "nnx.GroupNorm",
    (nnx.GroupNorm,),
    (ParamRule("scale", "weight"), ParamRule("bias", "bias")),
    ("GroupNorm",),
    channels_first=True,
    notes=_group_norm_notes,
)
NORM_LAYOUTS = (RMS_NORM, GROUP_NORM)
