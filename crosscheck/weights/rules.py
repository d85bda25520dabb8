"""What a layout rule is: :class:`ParamRule` (one ``state_dict`` entry and the JAX variable, or
variables, it is) and :class:`Layout` (one JAX layer type's rule), with the simplest layout changes.

The registry of rules is :mod:`crosscheck.weights.layouts`; this module only defines their shape, so
the rule families (:mod:`~crosscheck.weights.layouts_norms`, :mod:`~crosscheck.weights.layouts_general`,
:mod:`~crosscheck.weights.layouts_attention`, :mod:`~crosscheck.weights.layouts_recurrent`) can build
rules without importing the registry.

A rule may own its layer's children: a ``ParamRule`` with ``parts`` packs the variables at those
dotted paths below the layer into one ``state_dict`` entry (torch's ``in_proj_weight`` is Flax's
``query``, ``key`` and ``value`` kernels), read and written through a :class:`Packed` stand-in.

>>> rule = ParamRule("kernel", "weight", swap_last_two, swap_last_two)
>>> Layout("demo", (object,), (rule,)).rules_for(None)[0].torch_name
'weight'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import nnx


def same(a: np.ndarray) -> np.ndarray:
    """The identity layout change (biases, norms, embeddings)."""
    return a


def swap_last_two(a: np.ndarray) -> np.ndarray:
    """``(..., in, out)`` <-> ``(..., out, in)``; its own inverse."""
    return np.swapaxes(a, -1, -2)


class Packed(nnx.Param):
    """A stand-in ``nnx.Param`` for one ``state_dict`` entry made of other variables: ``read()`` gives
    its value (e.g. three kernels stacked), ``write(value)`` gives the variables their parts. It is in
    no module's graph; copies, files and gradients read and write it like any variable.

    Shape:
        whatever ``read`` returns, e.g. ``(3, in, heads, head_dim)`` for stacked q, k, v kernels.

    >>> a, b = nnx.Param(jnp.zeros(2)), nnx.Param(jnp.ones(2))
    >>> both = stacked((a, b))
    >>> both[...].shape
    (2, 2)
    >>> both[...] = jnp.full((2, 2), 7.0)
    >>> float(a[0]), float(b[1])
    (7.0, 7.0)
    """

    __slots__ = ("_read", "_write")

    def __init__(self, read: Callable[[], object], write: Callable[[object], None]):
        super().__init__(np.zeros((), np.float32))  # a placeholder: the value lives in the parts
        object.__setattr__(self, "_read", read)
        object.__setattr__(self, "_write", write)

    def get_value(self, *, index=...):
        value = self._read()
        return value if index is ... else value[index]

    def set_value(self, value, *, index=...):
        if index is not ...:
            value = self._read().at[index].set(value)
        self._write(value)


def stacked(variables) -> Packed:
    """One :class:`Packed` over equally shaped ``variables``: their values stacked on a new axis 0.

    Shape:
        ``(len(variables), *variable.shape)``.

    >>> stacked([nnx.Param(jnp.zeros((2, 3))) for _ in range(4)])[...].shape
    (4, 2, 3)
    """
    variables = tuple(variables)

    def write(value):
        for index, variable in enumerate(variables):
            variable[...] = value[index]

    return Packed(lambda: jnp.stack([v[...] for v in variables]), write)


def variable_at(module, path: str):
    """The attribute at a dotted ``path`` below ``module`` (``"query.kernel"``, ``"layers.0.bias"``),
    or ``None`` where any step is missing.

    >>> layer = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    >>> variable_at(layer, "kernel").shape, variable_at(layer, "missing.kernel")
    ((2, 3), None)
    """
    node = module
    for name in path.split("."):
        if node is None:
            return None
        node = (
            node[int(name)]
            if name.isdigit() and isinstance(node, (list, tuple, nnx.List))
            else (getattr(node, name, None))
        )
    return node


@dataclass(frozen=True)
class ParamRule:
    """One ``state_dict`` entry of a JAX layer's twin and the JAX variable it is: names and layout changes.

    ``parts``: the variables below the layer (dotted paths) this entry packs, stacked on a new axis 0
    before ``to_torch`` (so ``from_torch`` returns them stacked; one part is that variable itself);
    ``jax_name`` then only names them in messages. ``proxy(module, shared)`` builds the variable
    itself (``shared``: one dict per layer and plan, for rules that share state, such as two torch
    biases summed into one Flax bias)."""

    jax_name: str
    torch_name: str
    to_torch: Callable[[np.ndarray], np.ndarray] = same
    from_torch: Callable[[np.ndarray], np.ndarray] = same
    parts: tuple[str, ...] = ()
    proxy: Callable[[object, dict], nnx.Variable | None] | None = None

    @property
    def claims(self) -> tuple[str, ...]:
        """The variables (dotted paths below the layer) this entry maps, so none is left unmapped."""
        return self.parts or (self.jax_name,)

    def variable_of(self, module, shared: dict):
        """The variable this entry reads and writes in ``module``, or ``None`` when it is absent (a
        layer built without a bias)."""
        if self.proxy is not None:
            return self.proxy(module, shared)
        if not self.parts:
            return getattr(module, self.jax_name, None)
        found = [variable_at(module, part) for part in self.parts]
        if any(v is None for v in found):
            return None
        return found[0] if len(found) == 1 else stacked(found)


_REGISTRY: list[Callable[[], tuple[Layout, ...]]] = [tuple]  # the rules the notes consult


def use_registry(registered: Callable[[], tuple[Layout, ...]]) -> None:
    """Let the notes consult ``registered()`` (:mod:`crosscheck.weights.layouts` passes its registry,
    which imports this module) to say which rule a torch class belongs to.

    >>> use_registry(lambda: ())  # no rule: every unlisted torch class "has no layout rule"
    >>> from crosscheck.weights import layouts
    >>> use_registry(layouts.registered)
    """
    _REGISTRY[0] = registered


def _twin_names(theirs) -> list[str]:
    return [cls.__name__ for cls in type(theirs).__mro__]


def _type_note(layout: Layout, ours, theirs) -> list[str]:
    """A note when ``theirs`` is no class of ``layout.torch_types`` (nor a subclass of one): mapped by
    its parameter names and shapes alone, which the check already found to fit."""
    if not layout.torch_types or set(_twin_names(theirs)) & set(layout.torch_types):
        return []
    name = type(theirs).__name__
    owners = [other.name for other in _REGISTRY[0]() if set(_twin_names(theirs)) & set(other.torch_types)]
    state = theirs.state_dict() if callable(getattr(theirs, "state_dict", None)) else {}
    names = [rule.torch_name for rule in layout.rules_for(ours) if rule.torch_name in state]
    shapes = ", ".join(f"{name} {tuple(state[name].shape)}" for name in names)
    said = f"is the twin of {owners[0]}, not of {layout.name}" if owners else "has no layout rule"
    return [f"torch {name} {said}; mapped as {layout.name} by its parameter names and shapes ({shapes})"]


@dataclass(frozen=True)
class Layout:
    """The rule of one JAX layer type: its variables, the PyTorch layers it mirrors, and what to say
    when a pair's configurations differ in a way the parameters cannot show (an epsilon, a padding).

    ``params`` serves every instance alike; a rule whose layout change depends on the instance (a
    ``LinearGeneral``'s feature shapes, an ``Einsum``'s string) sets ``params_of(module)`` instead,
    which builds the rules for that module: :meth:`rules_for` asks it first.

    ``notes(ours, theirs)`` also says when the torch layer is no class of ``torch_types``: a torch
    module of another class (a user's ``MyRMSNorm``, transformers' ``LlamaRMSNorm``) maps when its
    parameter names and shapes are those the rule expects, and the pair is noted, never refused."""

    name: str
    jax_types: tuple[type, ...]
    params: tuple[ParamRule, ...]
    torch_types: tuple[str, ...] = ()  # class names, e.g. "Conv1d": torch need not be imported here
    channels_first: bool = False  # the PyTorch layer takes (batch, features, length)
    notes: Callable[[object, object], list[str]] | None = None  # (jax layer, torch layer) -> differences
    params_of: Callable[[object], tuple[ParamRule, ...]] | None = None  # module -> its own rules

    def __post_init__(self):
        own = getattr(self.notes, "own_notes", self.notes)  # dataclasses.replace passes ours back

        def notes(ours, theirs) -> list[str]:
            return _type_note(self, ours, theirs) + (own(ours, theirs) if own is not None else [])

        notes.own_notes = own
        object.__setattr__(self, "notes", notes)

    def rules_for(self, module) -> tuple[ParamRule, ...]:
        """The parameter rules of ``module`` (an instance of one of :attr:`jax_types`)."""
        return self.params_of(module) if self.params_of is not None else self.params


def differs(ours: float, theirs: float) -> bool:
    """Whether two epsilons (or momenta) differ beyond the rounding of their decimal spelling."""
    return not np.isclose(ours, theirs, rtol=1e-6, atol=0)
