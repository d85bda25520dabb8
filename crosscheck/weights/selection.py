r"""Which keys two models compare or copy: ``prefix=``, ``ignore=`` and ``strict=`` of ``check``,
``locate`` and the copies, with the meaning :func:`crosscheck.weights.transfer.load_weights` gives them.

Every key is named as in the whole torch model's ``state_dict``: a JAX key is its torch name after
``rename``, with the prefix in front. ``prefix="encoder."`` takes the torch model's submodule
``encoder`` (whole path pieces: ``"blocks.1"`` is ``blocks.1.*``, never ``blocks.10.*``);
``ignore=[r"num_batches_tracked$", r"^pooler\."]`` leaves out every key either model holds that a
regular expression finds (``re.search``), and a pattern that finds no key is an error (a typo must not
pass silently); ``strict=False`` lists the keys with no counterpart instead of failing.

>>> w, b = Spec((2, 3), "float32"), Spec((2,), "float32")
>>> chosen = select_keys({"weight": w, "bias": b}, {"weight": w}, prefix="body.", strict=False, ignore=None)
>>> chosen.paired, chosen.ignored, chosen.missing
(['weight'], [], ['body.bias'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from crosscheck.weights.fit import Spec, WeightsError, require_fit, whole_prefix
from crosscheck.weights.tree import torch_only

Ignore = str | Sequence[str] | None


@dataclass
class Copied:
    """What a copy between live modules did: ``ignored`` lists the torch model's keys left out (by
    ``ignore=``, by nature — ``num_batches_tracked`` — or, with ``strict=False``, having no JAX
    counterpart) and the JAX keys ``ignore=`` left out; ``missing`` the JAX model's keys the torch model
    lacks (``strict=False``), each left as it was. Keys are named as in the whole torch model.

    >>> Copied().ignored, Copied().missing
    ([], [])
    """

    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KeySelection:
    """``paired``: the keys both sides hold and compare (relative to the prefix); ``ignored`` and
    ``missing`` as :class:`Copied` names them (with the prefix)."""

    paired: list[str]
    ignored: list[str]
    missing: list[str]


def torch_part(torch_module, prefix: str, function: str):
    """The torch model's submodule at ``prefix`` (the whole model for ``""``).

    >>> import torch
    >>> torch_part(torch.nn.Sequential(torch.nn.Linear(2, 2)), "0.", "check")
    Linear(in_features=2, out_features=2, bias=True)

    Raises:
        WeightsError: no submodule there, naming the ones that are.
    """
    if not prefix:
        return torch_module
    if not isinstance(prefix, str):
        raise TypeError(f"{function}: prefix must be a string such as 'encoder.', got {prefix!r}")
    path = whole_prefix(prefix)[:-1]
    try:
        return torch_module.get_submodule(path)
    except AttributeError:
        children = [name for name, _ in torch_module.named_children()]
        shown = ", ".join(repr(name + ".") for name in children[:10]) or "none"
        raise WeightsError(
            f"{function}: prefix {prefix!r}: the torch model {type(torch_module).__name__} has no submodule "
            f"{path!r}; a prefix is whole path pieces of the torch model's keys (its children: {shown})"
        ) from None


def ignore_patterns(ignore: Ignore, function: str) -> list[re.Pattern]:
    """``ignore`` compiled: one regular expression, or a list of them.

    >>> [p.pattern for p in ignore_patterns(r"num_batches_tracked$", "check")]
    ['num_batches_tracked$']

    Raises:
        ValueError: a pattern that is not a string or does not compile, naming it.
    """
    if ignore is None:
        return []
    patterns = [ignore] if isinstance(ignore, str) else list(ignore)
    compiled = []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            raise ValueError(
                f"{function}: ignore[{index}] must be a regular expression (a str), got {pattern!r}"
            )
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(
                f"{function}: ignore[{index}] {pattern!r} is not a regular expression ({error})"
            ) from None
    return compiled


def _prefix_hint(jax_keys: list[str], torch_keys: list[str]) -> str:
    """``prefix='body.'`` when the torch keys under one prefix are exactly the JAX keys, else ``""``."""
    if not jax_keys:
        return ""
    first = jax_keys[0]
    for key in torch_keys:
        if key.endswith("." + first):
            candidate = key[: -len(first)]
            under = {k[len(candidate) :] for k in torch_keys if k.startswith(candidate)}
            if set(jax_keys) <= under:
                return f"prefix={candidate!r} takes the torch model's submodule {candidate[:-1]!r}"
    return ""


def select_keys(
    jax_specs: dict[str, Spec],
    torch_specs: dict[str, Spec],
    *,
    prefix: str,
    strict: bool,
    ignore: Ignore,
    source: str = "",
    target: str = "",
    function: str = "check",
    jax_is_source: bool = False,
    cast: bool | str = True,
) -> KeySelection:
    """The keys two modules share (both keyed relative to ``prefix``, torch names), checked to fit.

    Raises:
        WeightsError: under ``strict=True`` a key with no counterpart (the message says what to pass),
        an ``ignore`` pattern that finds no key, or a shape (or dtype, as ``cast`` says) that differs.
    """
    prefix = whole_prefix(prefix)
    patterns = ignore_patterns(ignore, function)
    named = [prefix + key for key in dict.fromkeys([*torch_specs, *jax_specs])]
    unused = [p.pattern for p in patterns if not any(p.search(key) for key in named)]
    if unused:
        raise WeightsError(
            f"{function}: ignore pattern{'s' if len(unused) > 1 else ''} {', '.join(map(repr, unused))} "
            f"found no key of either model; keys are named as in the torch model's state_dict "
            f"(e.g. {named[0] if named else 'weight'!r}), matched with re.search"
        )
    left_out = {key for key in named if any(p.search(key) for p in patterns)}
    ignored = [prefix + k for k in torch_specs if prefix + k in left_out]
    ignored += [prefix + k for k in jax_specs if prefix + k in left_out and k not in torch_specs]
    torch_kept = {k: s for k, s in torch_specs.items() if prefix + k not in left_out}
    jax_kept = {k: s for k, s in jax_specs.items() if prefix + k not in left_out}
    natural = [k for k in torch_kept if torch_only(k) and k not in jax_kept]  # num_batches_tracked
    ignored += [prefix + k for k in natural]
    torch_kept = {k: s for k, s in torch_kept.items() if k not in natural}
    missing = [k for k in jax_kept if k not in torch_kept]
    extra = [k for k in torch_kept if k not in jax_kept]
    if strict and (missing or extra):
        declared, expected = (jax_kept, torch_kept) if jax_is_source else (torch_kept, jax_kept)
        try:
            require_fit(source, declared, expected, target, cast=cast)
        except WeightsError as error:
            hints = [] if "strict=False" in str(error) else ["strict=False lists keys with no counterpart"]
            hints.append("ignore=[regex, ...] leaves keys out")
            hint = _prefix_hint(list(jax_kept), list(torch_kept))
            hints += [hint] if hint else []
            raise WeightsError(f"{error}; {'; '.join(hints)}") from None
    paired = [k for k in jax_kept if k in torch_kept]
    fitted = ({k: jax_kept[k] for k in paired}, {k: torch_kept[k] for k in paired})
    declared, expected = fitted if jax_is_source else fitted[::-1]
    require_fit(source, declared, expected, target, cast=cast)
    return KeySelection(paired, ignored + [prefix + k for k in extra], [prefix + k for k in missing])
