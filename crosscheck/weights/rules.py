"""What a layout rule is: :class:`ParamRule` (one variable and its ``state_dict`` entry) and
:class:`Layout` (one JAX layer type's rule), with the simplest layout changes.

The registry of rules is :mod:`crosscheck.weights.layouts`; this module only defines their shape, so
the rule families (:mod:`~crosscheck.weights.layouts_norms`, :mod:`~crosscheck.weights.layouts_general`)
can build rules without importing the registry.

>>> rule = ParamRule("kernel", "weight", swap_last_two, swap_last_two)
>>> Layout("demo", (object,), (rule,)).rules_for(None)[0].torch_name
'weight'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def same(a: np.ndarray) -> np.ndarray:
    """The identity layout change (biases, norms, embeddings)."""
    return a


def swap_last_two(a: np.ndarray) -> np.ndarray:
    """``(..., in, out)`` <-> ``(..., out, in)``; its own inverse."""
    return np.swapaxes(a, -1, -2)


@dataclass(frozen=True)
class ParamRule:
    """One variable of a JAX layer and the ``state_dict`` entry it is: names and layout changes."""

    jax_name: str
    torch_name: str
    to_torch: Callable[[np.ndarray], np.ndarray] = same
    from_torch: Callable[[np.ndarray], np.ndarray] = same


@dataclass(frozen=True)
class Layout:
    """The rule of one JAX layer type: its variables, the PyTorch layers it mirrors, and what to say
    when a pair's configurations differ in a way the parameters cannot show (an epsilon, a padding).

    ``params`` serves every instance alike; a rule whose layout change depends on the instance (a
    ``LinearGeneral``'s feature shapes, an ``Einsum``'s string) sets ``params_of(module)`` instead,
    which builds the rules for that module: :meth:`rules_for` asks it first."""

    name: str
    jax_types: tuple[type, ...]
    params: tuple[ParamRule, ...]
    torch_types: tuple[str, ...] = ()  # class names, e.g. "Conv1d": torch need not be imported here
    channels_first: bool = False  # the PyTorch layer takes (batch, features, length)
    notes: Callable[[object, object], list[str]] | None = None  # (jax layer, torch layer) -> differences
    params_of: Callable[[object], tuple[ParamRule, ...]] | None = None  # module -> its own rules

    def rules_for(self, module) -> tuple[ParamRule, ...]:
        """The parameter rules of ``module`` (an instance of one of :attr:`jax_types`)."""
        return self.params_of(module) if self.params_of is not None else self.params


def differs(ours: float, theirs: float) -> bool:
    """Whether two epsilons (or momenta) differ beyond the rounding of their decimal spelling."""
    return not np.isclose(ours, theirs, rtol=1e-6, atol=0)
