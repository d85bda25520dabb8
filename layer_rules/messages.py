"""The error messages of jaxlin and torch_ref: one sentence each, written once for both.

Every message names the module and its configuration, the expected shape in axis words, the
actual shape, and the rule. Nothing here imports jax or torch, so torch_ref can use it without
pulling in a backend it does not need.

>>> require_features("Linear(in_features=4, out_features=2)", (3, 5), 4)
Traceback (most recent call last):
...
ValueError: Linear(in_features=4, out_features=2): expected input of shape (..., features=4), got (3, 5); features are taken from the last axis (axis -1) and axis -1 has 5, not 4.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def describe(name: str, **config: object) -> str:
    """``describe("Linear", in_features=4, out_features=2)`` -> ``"Linear(in_features=4, out_features=2)"``."""
    args = ", ".join(f"{key}={value!r}" for key, value in config.items())
    return f"{name}({args})"


def shape_str(shape: Iterable[int]) -> str:
    """A shape as Python prints a tuple: ``(32, 128)``, ``(5,)``, ``()``."""
    return str(tuple(int(size) for size in shape))


def require_positive(owner: str, **sizes: object) -> None:
    """Raise ValueError unless every size is a positive int (bools are not sizes)."""
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {size!r}.")


def require_choice(owner: str, arg: str, value: object, choices: Sequence[str]) -> None:
    """Raise ValueError listing the valid choices unless ``value`` is one of them."""
    if value not in choices:
        valid = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{owner}: {arg} must be one of {valid}, got {value!r}.")


def require_features(owner: str, shape: Sequence[int], in_features: int) -> None:
    """Raise ValueError unless the last axis (the features axis) has ``in_features`` entries."""
    if len(shape) == 0 or shape[-1] != in_features:
        found = "a scalar has no features axis" if len(shape) == 0 else f"axis -1 has {shape[-1]}"
        raise ValueError(
            f"{owner}: expected input of shape (..., features={in_features}), got {shape_str(shape)}; "
            f"features are taken from the last axis (axis -1) and {found}, not {in_features}."
        )


CAST_HINTS = {"jax": "x.astype(jnp.float32)", "torch": "x.to(torch.float32)"}
"""How each framework's user casts an input to float32, as the dtype errors suggest it."""

MASK_HINTS = {"jax": "mask.astype(bool)", "torch": "mask.bool()"}
"""How each framework's user turns a mask into booleans."""


def require_floating(owner: str, what: str, dtype: object, is_real_floating: bool, framework: str) -> None:
    """Raise TypeError unless an input holds real floating-point numbers (not integers, bools or complex).

    >>> require_floating("Linear(in_features=2, out_features=1)", "input", "int64", False, "torch")
    Traceback (most recent call last):
    ...
    TypeError: Linear(in_features=2, out_features=1): expected a real floating-point input, got dtype int64; cast it first, e.g. x.to(torch.float32).
    """
    if not is_real_floating:
        raise TypeError(
            f"{owner}: expected a real floating-point {what}, got dtype {dtype}; "
            f"cast it first, e.g. {CAST_HINTS[framework]}."
        )


def shape_error(
    owner: str, expected: str, shape: Sequence[int], rule: str, what: str = "input"
) -> ValueError:
    """The one-sentence shape error: module, expected shape in axis words, actual shape, rule."""
    return ValueError(f"{owner}: expected {what} of shape {expected}, got {shape_str(shape)}; {rule}.")


def require_channels(owner: str, shape: Sequence[int], in_features: int, *, channels_first: bool) -> None:
    """Validate a 1x1-convolution input: channels last ``(..., length, features)`` for jaxlin,
    channels first ``(batch, features, length)`` or ``(features, length)`` for torch_ref."""
    if channels_first:
        expected = f"(batch, features={in_features}, length) or (features={in_features}, length)"
        if len(shape) not in (2, 3):
            raise shape_error(
                owner,
                expected,
                shape,
                f"a 1x1 convolution takes a rank-2 or rank-3 input (channels first, as nn.Conv1d), not rank {len(shape)}",
            )
        if shape[-2] != in_features:
            raise shape_error(
                owner,
                expected,
                shape,
                f"features are taken from axis -2 (channels first, as nn.Conv1d) and axis -2 has {shape[-2]}, not {in_features}",
            )
        return
    expected = f"(..., length, features={in_features})"
    if len(shape) < 2:
        raise shape_error(
            owner,
            expected,
            shape,
            f"a 1x1 convolution needs a length axis and a features axis (channels last, as nnx.Conv), not rank {len(shape)}",
        )
    if shape[-1] != in_features:
        raise shape_error(
            owner,
            expected,
            shape,
            f"features are taken from the last axis (channels last, as nnx.Conv) and axis -1 has {shape[-1]}, not {in_features}",
        )


def require_heads(owner: str, shape: Sequence[int], num_heads: int, in_features: int, head_axis: int) -> int:
    """Validate a per-head input ``(..., heads, features)``; return ``head_axis`` as a non-negative index."""
    expected = (
        f"(..., heads={num_heads}, features={in_features}) with heads on axis -2"
        if head_axis == -2
        else f"(..., features={in_features}) with heads={num_heads} on axis {head_axis}"
    )
    if len(shape) < 2:
        raise shape_error(
            owner,
            expected,
            shape,
            f"a per-head input needs a heads axis and a features axis, not rank {len(shape)}",
        )
    if not -len(shape) <= head_axis < len(shape):
        raise shape_error(
            owner,
            expected,
            shape,
            f"head_axis={head_axis} is out of range for a rank-{len(shape)} input; {_valid_axes(len(shape))}",
        )
    if head_axis % len(shape) == len(shape) - 1:
        raise shape_error(
            owner,
            expected,
            shape,
            f"head_axis={head_axis} is the features axis of a rank-{len(shape)} input; {_valid_axes(len(shape))}",
        )
    if shape[-1] != in_features:
        rule = f"features are taken from the last axis and axis -1 has {shape[-1]}, not {in_features}"
        if shape[-1] == num_heads:
            rule += f"; axis -1 has num_heads={num_heads}, so the heads look last: put the heads axis at head_axis and the features last"
        raise shape_error(owner, expected, shape, rule)
    if shape[head_axis] != num_heads:
        hint = ""
        others = [axis - len(shape) for axis in range(len(shape) - 1) if shape[axis] == num_heads]
        if others:
            hint = f" (axis {others[-1]} has {num_heads}: move it to axis {head_axis} or pass head_axis={others[-1]})"
        raise shape_error(
            owner,
            expected,
            shape,
            f"heads are taken from head_axis={head_axis}, which has {shape[head_axis]}, not {num_heads}; put the heads axis at head_axis{hint}",
        )
    return head_axis % len(shape)


def require_pool_axis(owner: str, shape: Sequence[int], in_features: int, axis: int) -> int:
    """Validate a pooled input ``(..., seq, ..., features)``; return ``axis`` as a non-negative index."""
    expected = f"(..., seq, features={in_features}) with seq on axis {axis}"
    if len(shape) < 2:
        raise shape_error(
            owner,
            expected,
            shape,
            f"pooling needs a sequence axis besides the features axis, not rank {len(shape)}",
        )
    if isinstance(axis, bool) or not isinstance(axis, int) or not -len(shape) <= axis < len(shape):
        raise shape_error(
            owner,
            expected,
            shape,
            f"axis={axis!r} is out of range for a rank-{len(shape)} input; {_valid_axes(len(shape))}",
        )
    if axis % len(shape) == len(shape) - 1:
        raise shape_error(
            owner,
            expected,
            shape,
            f"axis={axis} is the features axis (the last axis); pool over a sequence axis such as -2",
        )
    if shape[-1] != in_features:
        raise shape_error(
            owner,
            expected,
            shape,
            f"features are taken from the last axis and axis -1 has {shape[-1]}, not {in_features}",
        )
    return axis % len(shape)


def require_mask(
    owner: str,
    x_shape: Sequence[int],
    mask_shape: Sequence[int],
    mask_dtype: object,
    kind: str,
    framework: str,
) -> None:
    """A mask has the input's shape without the features axis and is boolean or integer.

    ``kind`` is ``"bool"``, ``"integer"`` or anything else (refused). An integer mask counts every
    nonzero entry as a real position, as Hugging Face's ``attention_mask`` of 0s and 1s does.
    """
    if tuple(mask_shape) != tuple(x_shape[:-1]):
        raise shape_error(
            owner,
            f"{shape_str(x_shape[:-1])}",
            mask_shape,
            f"a mask has the input's shape {shape_str(x_shape)} without the features axis",
            what="mask",
        )
    if kind not in ("bool", "integer"):
        raise TypeError(
            f"{owner}: expected a boolean mask (True = a real position) or an integer one (nonzero = a real "
            f"position), got dtype {mask_dtype}; pass {MASK_HINTS[framework]}."
        )


def require_axis_arg(owner: str, arg: str, value: object) -> None:
    """A constructor's axis argument is an int that does not name the features axis (-1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value == -1:
        raise ValueError(
            f"{owner}: {arg} must be an integer naming an axis other than the features axis (-1), got {value!r}."
        )


def require_callable(owner: str, arg: str, value: object) -> None:
    """Raise TypeError unless ``value`` is None or callable (an activation such as relu)."""
    if value is not None and not callable(value):
        raise TypeError(f"{owner}: {arg} must be a callable such as relu, or None, got {value!r}.")


def _valid_axes(rank: int) -> str:
    """``"valid axes are 0..1 or -3..-2"``: every axis of a rank-``rank`` input but the features axis."""
    if rank == 2:
        return "the only valid axis is 0 (or -2)"
    return f"valid axes are 0..{rank - 2} or {-rank}..-2"
