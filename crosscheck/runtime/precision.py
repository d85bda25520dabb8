"""Matmul precision modes for a run, and the record of what was in force.

Two modes:

- ``"pinned"`` (the default of ``crosscheck run``): JAX under
  ``jax.default_matmul_precision("highest")``; torch with TF32 off
  (``torch.backends.cuda.matmul.allow_tf32 = False``, ``torch.backends.cudnn.allow_tf32 = False``)
  and ``torch.set_float32_matmul_precision("highest")``. Every setting is restored on exit.
- ``"default"``: both frameworks as they come, so the report measures what users get out of the box
  (on GPUs, TF32 or bfloat16 passes for float32 matmuls). The settings are only recorded.

XLA flags matter too: on CPU, jaxlib 0.10 fuses dots through YNNPACK unless ``XLA_FLAGS`` carries
``--xla_cpu_experimental_ynn_fusion_type=`` with an empty value; :func:`describe_precision` records
which applies.

>>> with precision_mode("pinned"):
...     describe_precision("pinned")["jax_default_matmul_precision"]
'highest'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import jax
import torch

from crosscheck.runtime.choices import PRECISIONS

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def _check_mode(mode: str) -> None:
    if mode not in PRECISIONS:
        raise ValueError(f"precision_mode: unknown mode {mode!r}; choose one of {', '.join(PRECISIONS)}.")


@contextlib.contextmanager
def precision_mode(mode: str) -> Iterator[None]:
    """Run the body with matmul precision ``"pinned"`` (highest, no TF32) or the frameworks' ``"default"``.

    >>> import torch
    >>> with precision_mode("pinned"):
    ...     torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    ('highest', False)
    >>> torch.backends.cudnn.allow_tf32  # restored
    True
    """
    _check_mode(mode)
    if mode == "default":
        yield
        return
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.get_float32_matmul_precision(),
    )
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        with jax.default_matmul_precision("highest"):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
        torch.set_float32_matmul_precision(saved[2])


def ynn_fusion(xla_flags: str | None = None) -> bool | None:
    """Whether XLA:CPU's YNNPACK dot fusion is on: ``None`` off the CPU backend.

    ``--xla_cpu_experimental_ynn_fusion_type=`` with an empty value turns it off; anything else (or
    no flag) leaves jaxlib 0.10's default, on.

    >>> ynn_fusion("--xla_cpu_experimental_ynn_fusion_type="), ynn_fusion("--xla_foo=1")
    (False, True)
    """
    if jax.default_backend() != "cpu":
        return None
    flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    value = None
    for flag in flags.split():
        name, _, rest = flag.partition("=")
        if name == YNN_FLAG:
            value = rest  # the last occurrence wins, as in XLA's own parser
    return value is None or value.strip("'\"") != ""


def describe_precision(mode: str) -> dict[str, object]:
    """What governs matmul precision right now, for the report (call it inside :func:`precision_mode`).

    Keys: ``mode``, ``jax_default_matmul_precision`` (``None`` = JAX's default),
    ``torch_float32_matmul_precision``, ``torch_cuda_matmul_allow_tf32``, ``torch_cudnn_allow_tf32``,
    ``xla_flags``, ``xla_cpu_ynn_fusion`` (``None`` off CPU), ``backend``.

    >>> sorted(describe_precision("default"))[:3]
    ['backend', 'jax_default_matmul_precision', 'mode']
    """
    _check_mode(mode)
    precision = jax.config.jax_default_matmul_precision
    return {
        "mode": mode,
        "jax_default_matmul_precision": None if precision is None else str(precision),
        "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch_cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "torch_cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "xla_cpu_ynn_fusion": ynn_fusion(),
        "backend": jax.default_backend(),
    }
