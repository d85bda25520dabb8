"""The configurations of ``crosscheck study``: which shapes, which implementations.

Each builder returns :class:`crosscheck.study.Config` objects whose implementations share one set
of weights (torch_ref's init, copied into jaxlin through :mod:`crosscheck.weights`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.cases import PLACEHOLDER_INIT
from crosscheck.study import Config, Impl, jit_module, peak_config  # noqa: F401 (the peak is a config too)
from crosscheck.weights import copy_torch_to_jax

FULL = {
    "heads": (1, 4, 8, 16, 32),
    "sizes": (32, 64, 128, 256, 512, 1024),
    "leading": ((32, 64), (4, 16)),  # (batch, windows)
    "pooled_lengths": (16, 256, 2048),
    "peak_n": 2048,
}
QUICK = {
    "heads": (4, 8),
    "sizes": (32, 64),
    "leading": ((4, 16),),
    "pooled_lengths": (16, 256),
    "peak_n": 512,
}
TARGETS = ((8, 64), (16, 128), (4, 512))  # (heads, in = out) at leading (32, 64)


def SWAP_LAST_TWO(a: np.ndarray) -> np.ndarray:  # noqa: N802 (used like a constant)
    """Channels last <-> channels first."""
    return np.swapaxes(a, -1, -2)


def HEADS_FIRST(a: np.ndarray) -> np.ndarray:  # noqa: N802
    """``(..., heads, in)`` -> ``(heads, ..., in)``."""
    return np.moveaxis(a, -2, 0)


def HEADS_LAST(a: np.ndarray) -> np.ndarray:  # noqa: N802
    """``(heads, ..., out)`` -> ``(..., heads, out)``."""
    return np.moveaxis(a, 0, -2)


def _hlo(fn, *args) -> Callable:
    return lambda: jax.jit(fn).lower(*args).compile().as_text()


def _module_hlo(call, shape) -> Callable:
    """The compiled HLO of a :func:`jaxlin.jitted` call on a float32 input of ``shape``."""
    return lambda: call.lower(jnp.zeros(shape, jnp.float32)).compile().as_text()


def _inputs(shape, device: str):
    """``make(seed, impl)``: one random float32 array, NumPy-made, in the impl's framework and layout."""

    def make(seed: int, impl: Impl):
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        x = np.ascontiguousarray(impl.to_layout(x)) if impl.to_layout else x
        if impl.framework == "jax":
            return (jnp.asarray(x),)
        return (torch.from_numpy(x).to(device),)

    return make


def _no_grad(module):
    def call(*inputs):
        with torch.no_grad():
            return module(*inputs)

    return call


def _pair(jax_module, torch_module, device: str):
    copy_torch_to_jax(torch_module, jax_module)
    return jax_module, torch_module.to(device)


def per_head(heads: int, size: int, leading: tuple[int, int], device: str, *, compiled: bool) -> Config:
    """The seed's per-head linear: x ``(batch, windows, heads, size)`` -> ``(..., heads, size)``."""
    torch.manual_seed(0)
    mirror = torch_ref.PerHeadLinear(heads, size, size)
    shape = (*leading, heads, size)
    rows = int(np.prod(leading))
    impls = []
    for impl in ("einsum", "vmap", "loop"):
        layer = jaxlin.PerHeadLinear(heads, size, size, impl=impl, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT)
        module, _ = _pair(layer, mirror, device)
        call = jit_module(module)
        impls.append(Impl(f"jaxlin {impl}", "jax", call, _module_hlo(call, shape)))
    kernel, bias = module.kernel[...], module.bias[...]
    x0 = jnp.zeros(shape, jnp.float32)
    first, _ = _pair(
        jaxlin.PerHeadLinear(heads, size, size, head_axis=0, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT),
        mirror,
        device,
    )
    first_call = jit_module(first)
    first_shape = (heads, *leading, size)
    impls.append(
        Impl(
            "jaxlin einsum, heads-first input (head_axis=0)",
            "jax",
            first_call,
            _module_hlo(first_call, first_shape),
            to_layout=HEADS_FIRST,
            from_layout=HEADS_LAST,
        )
    )

    def per_head_fn(xh, k, b):
        return xh @ k + b[None, None]  # xh (batch, windows, in): broadcasting spelled out

    vmapped = jax.vmap(per_head_fn, in_axes=(2, 0, 0), out_axes=2)
    formulations = {
        "jax.vmap (pure function)": lambda x, k, b: vmapped(x, k, b),
        "einsum ...hi,hio->...ho": lambda x, k, b: jnp.einsum("...hi,hio->...ho", x, k) + b[None, None],
        "einsum hio,...hi->...ho": lambda x, k, b: jnp.einsum("hio,...hi->...ho", k, x) + b[None, None],
        "einsum heads-major hri,hio->hro": lambda x, k, b: jnp.moveaxis(
            jnp.einsum("hri,hio->hro", jnp.moveaxis(x.reshape(rows, heads, size), 1, 0), k) + b[:, None], 0, 1
        ).reshape(x.shape),
    }
    for name, fn in formulations.items():
        compiled_fn = jax.jit(fn)
        impls.append(
            Impl(name, "jax", lambda x, f=compiled_fn: f(x, kernel, bias), _hlo(fn, x0, kernel, bias))
        )
    impls.append(Impl("nnx.vmap stack (nnx.jit)", "jax", _nnx_stack(heads, size, kernel, bias)))
    for impl in ("bmm", "vmap", "loop"):
        torch.manual_seed(0)
        module = torch_ref.PerHeadLinear(heads, size, size, impl=impl).to(device)
        impls.append(Impl(f"torch_ref {impl}", "torch", _no_grad(module)))
    torch.manual_seed(0)
    module = torch_ref.PerHeadLinear(heads, size, size, head_axis=0).to(device)
    impls.append(
        Impl(
            "torch_ref bmm, heads-first input (head_axis=0)",
            "torch",
            _no_grad(module),
            to_layout=HEADS_FIRST,
            from_layout=HEADS_LAST,
        )
    )
    if compiled:
        torch.manual_seed(0)
        module = torch_ref.PerHeadLinear(heads, size, size, impl="bmm").to(device)
        impls.append(Impl("torch.compile(torch_ref bmm)", "torch", _no_grad(torch.compile(module))))

    label = f"h{heads} {size}→{size} rows {rows}"
    magnitude = _per_head_magnitude(kernel, bias, rows, heads, size)
    sizes = {"heads": heads, "size": size, "rows": rows}
    flops = 2.0 * rows * heads * size * size
    return Config(
        "per-head",
        label,
        sizes,
        flops,
        _inputs(shape, device),
        impls,
        magnitude,
        k=size + 1,
        checked_rows=lambda y: y.reshape(rows, heads, size)[:8],
    )


def _per_head_magnitude(kernel, bias, rows: int, heads: int, size: int):
    """``Σ|x||w| + |b|`` of the first 8 rows, float64."""
    w, b = np.abs(np.asarray(kernel, np.float64)), np.abs(np.asarray(bias, np.float64))

    def magnitude(inputs):
        x = np.abs(np.asarray(inputs[0], np.float64).reshape(rows, heads, size)[:8])
        return np.einsum("rhi,hio->rho", x, w) + b

    return magnitude


def _nnx_stack(heads: int, size: int, kernel, bias):
    """Per-head ``nnx.Linear`` layers made by ``nnx.split_rngs`` + ``nnx.vmap``, applied by ``nnx.vmap``
    under ``nnx.jit`` (the Flax documentation's pattern)."""

    @nnx.split_rngs(splits=heads)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return nnx.Linear(size, size, rngs=rngs)

    stack = create(nnx.Rngs(0))
    stack.kernel[...], stack.bias[...] = kernel, bias

    @nnx.jit
    def forward(stack, x):
        return nnx.vmap(lambda layer, xh: layer(xh), in_axes=(0, 2), out_axes=2)(stack, x)

    return lambda x: forward(stack, x)


def _linear_magnitude(kernel, bias, rows: int = 8):
    w, b = np.abs(np.asarray(kernel, np.float64)), np.abs(np.asarray(bias, np.float64))
    return lambda inputs: np.abs(np.asarray(inputs[0], np.float64).reshape(-1, w.shape[0])[:rows]) @ w + b


def _first_rows(features: int, rows: int = 8):
    return lambda y: y.reshape(-1, features)[:rows]


def pointwise(batch: int, length: int, n_in: int, n_out: int, device: str) -> Config:
    """A 1×1 convolution on ``(batch, length, in)`` (torch: ``(batch, in, length)``) against Linear."""
    torch.manual_seed(0)
    mirror = torch_ref.PointwiseConv(n_in, n_out)
    as_linear = torch_ref.Linear(n_in, n_out)
    with torch.no_grad():
        as_linear.weight.copy_(mirror.weight[:, :, 0]), as_linear.bias.copy_(mirror.bias)
    linear, _ = _pair(jaxlin.Linear(n_in, n_out, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT), as_linear, device)
    impls = [Impl("jaxlin Linear", "jax", jit_module(linear))]
    for impl in ("dot", "conv"):
        module, _ = _pair(
            jaxlin.PointwiseConv(n_in, n_out, impl=impl, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT), mirror, device
        )
        impls.append(Impl(f"jaxlin PointwiseConv {impl}", "jax", jit_module(module)))
    torch_linear = torch.nn.Linear(n_in, n_out).to(device)
    with torch.no_grad():
        torch_linear.weight.copy_(mirror.weight[:, :, 0]), torch_linear.bias.copy_(mirror.bias)
    impls.append(Impl("torch nn.Linear (channels last)", "torch", _no_grad(torch_linear)))
    channels_first = [  # what a user holding (batch, channels, length) data must write to use nn.Linear
        Impl(
            "torch nn.Linear on channels first (transpose, linear, transpose)",
            "torch",
            _no_grad(lambda x: torch_linear(x.transpose(-1, -2)).transpose(-1, -2)),
            to_layout=SWAP_LAST_TWO,
            from_layout=SWAP_LAST_TWO,
        )
    ]
    for impl in ("linear", "conv"):
        module = torch_ref.PointwiseConv(n_in, n_out, impl=impl).to(device)
        module.load_state_dict(mirror.state_dict())
        channels_first.append(
            Impl(
                f"torch_ref PointwiseConv {impl}",
                "torch",
                _no_grad(module),
                to_layout=SWAP_LAST_TWO,
                from_layout=SWAP_LAST_TWO,
            )
        )
    conv = torch.nn.Conv1d(n_in, n_out, 1).to(device)
    conv.load_state_dict(mirror.state_dict())
    channels_first.append(
        Impl("torch nn.Conv1d", "torch", _no_grad(conv), to_layout=SWAP_LAST_TWO, from_layout=SWAP_LAST_TWO)
    )
    kernel = np.asarray(linear.kernel[...])
    shape, label = (batch, length, n_in), f"({batch}, {length}, {n_in})→{n_out}"
    sizes = {"rows": batch * length, "size": n_in}
    flops = 2.0 * batch * length * n_in * n_out
    config = Config(
        "pointwise",
        label,
        sizes,
        flops,
        _inputs(shape, device),
        impls + channels_first,
        _linear_magnitude(kernel, linear.bias[...]),
        k=n_in + 1,
        checked_rows=_first_rows(n_out),
    )
    return config


def pooled(batch: int, length: int, features: int, device: str) -> list[Config]:
    """``PooledHead(pool_at="output")`` literal (reorder off) against pool-first (reorder on)."""
    configs = []
    torch.manual_seed(0)
    mirror = torch_ref.PooledHead(features, features, 16, pool_at="output")
    impls, jax_modules = [], []
    for reorder in (True, False):
        module, _ = _pair(
            jaxlin.PooledHead(
                features,
                features,
                16,
                pool_at="output",
                reorder=reorder,
                rngs=nnx.Rngs(0),
                **PLACEHOLDER_INIT,
            ),
            mirror,
            device,
        )
        jax_modules.append(module)
        impls.append(Impl(f"jaxlin reorder={reorder}", "jax", jit_module(module)))
    for reorder in (True, False):
        module = torch_ref.PooledHead(features, features, 16, pool_at="output", reorder=reorder).to(device)
        module.load_state_dict(mirror.state_dict())
        impls.append(Impl(f"torch_ref reorder={reorder}", "torch", _no_grad(module)))
    flops = 2.0 * batch * length * features * (features + 16)  # the literal order's work
    label = f"T={length} ({batch}, {length}, {features})"

    def magnitude(inputs):
        from crosscheck.evaluate import magnitudes

        return magnitudes(jax_modules[1], (np.asarray(inputs[0])[:2],), None, grads=False).output

    configs.append(
        Config(
            "pooled",
            label,
            {"rows": batch, "length": length, "size": features},
            flops,
            _inputs((batch, length, features), device),
            impls,
            magnitude,
            k=2 * features + 2 + length,
            checked_rows=lambda y: y[:2],
        )
    )
    return configs


def invariant(rows: int, n_in: int, n_out: int, device: str) -> Config:
    """``BatchInvariantLinear`` against ``Linear`` with the same weights, both frameworks."""
    torch.manual_seed(0)
    mirror = torch_ref.Linear(n_in, n_out)
    impls = []
    for cls in (jaxlin.Linear, jaxlin.BatchInvariantLinear):
        module, _ = _pair(cls(n_in, n_out, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT), mirror, device)
        impls.append(Impl(f"jaxlin {cls.__name__}", "jax", jit_module(module)))
    for cls in (torch.nn.Linear, torch_ref.BatchInvariantLinear):
        module = cls(n_in, n_out).to(device)
        module.load_state_dict(mirror.state_dict())
        impls.append(Impl(f"torch {cls.__name__}", "torch", _no_grad(module)))
    kernel = np.asarray(mirror.weight.detach()).T
    sizes, flops = {"rows": rows, "size": n_in}, 2.0 * rows * n_in * n_out
    return Config(
        "invariant",
        f"({rows}, {n_in})→{n_out}",
        sizes,
        flops,
        _inputs((rows, n_in), device),
        impls,
        _linear_magnitude(kernel, mirror.bias.detach()),
        k=n_in + 1,
        checked_rows=_first_rows(n_out),
    )


def call_path(heads: int, size: int, leading: tuple[int, int], device: str) -> Config:
    """One PerHeadLinear called four ways: eagerly, ``nnx.jit``, ``jax.jit`` over ``nnx.split`` state
    (jaxlin's recommendation) and a raw ``jax.jit`` pure function with the same math."""
    del device
    module = jaxlin.PerHeadLinear(heads, size, size, rngs=nnx.Rngs(0))
    kernel, bias = module.kernel[...], module.bias[...]
    rows = int(np.prod(leading))

    @nnx.jit
    def nnx_call(module, x):
        return module(x)

    def raw(x, k, b):  # PerHeadLinear's default formulation, written out
        y = jnp.einsum("hri,hio->hro", jnp.moveaxis(x.reshape(rows, heads, size), 1, 0), k) + b[:, None]
        return jnp.moveaxis(y, 0, 1).reshape(x.shape)

    raw_jit = jax.jit(raw)
    impls = [
        Impl("raw jax.jit pure function", "jax", lambda x: raw_jit(x, kernel, bias)),
        Impl("jax.jit over nnx.split state (recommended)", "jax", jit_module(module)),
        Impl("nnx.jit", "jax", lambda x: nnx_call(module, x)),
        Impl("eager module call", "jax", module),
    ]
    shape = (*leading, heads, size)
    sizes = {"heads": heads, "size": size, "rows": rows}
    return Config(
        "call-path",
        f"h{heads} {size}→{size} rows {rows}",
        sizes,
        2.0 * rows * heads * size * size,
        _inputs(shape, "cpu"),
        impls,
        _per_head_magnitude(kernel, bias, rows, heads, size),
        k=size + 1,
        checked_rows=lambda y: y.reshape(rows, heads, size)[:8],
    )


def bias(rows: int, features: int, device: str) -> Config:
    """jaxlin ``Linear`` with and without a bias (and torch's, for scale) at a tall shape."""
    torch.manual_seed(0)
    mirror = torch_ref.Linear(features, features)
    with_bias, _ = _pair(
        jaxlin.Linear(features, features, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT), mirror, device
    )
    without = jaxlin.Linear(features, features, use_bias=False, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT)
    without.kernel[...] = with_bias.kernel[...]
    impls = [
        Impl("jaxlin Linear use_bias=True", "jax", jit_module(with_bias)),
        Impl("jaxlin Linear use_bias=False", "jax", jit_module(without)),
    ]
    for use in (True, False):
        module = torch.nn.Linear(features, features, bias=use).to(device)
        with torch.no_grad():
            module.weight.copy_(mirror.weight)
            if use:
                module.bias.copy_(mirror.bias)
        impls.append(Impl(f"torch nn.Linear bias={use}", "torch", _no_grad(module)))
    return Config(
        "bias",
        f"({rows}, {features})→{features}",
        {"rows": rows, "size": features},
        2.0 * rows * features * features,
        _inputs((rows, features), device),
        impls,
        None,
        checked_rows=lambda y: y[:0],
        extra={"note": "outputs differ by the bias; not compared"},
    )
