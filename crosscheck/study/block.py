"""The seed's whole per-head block, jitted as one program against PyTorch eager and ``torch.compile``.

``x (batch, windows, size) -> Linear(size, heads·size) -> split into heads -> heads independent
size→size linears with bias``: the question "how to calculate multiple linear layers in one pass"
asks about the second step, but a model runs both, and fusing them is what ``jax.jit`` offers over
eager PyTorch. Both frameworks hold one set of weights (torch_ref's init under seed 0, copied). Each
framework's two plain GEMMs of the block's shapes are timed beside it: the row's kernel parity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.study import names
from crosscheck.study.engine import Config, Impl, float32_traffic
from crosscheck.study.inputs import module_hlo, no_grad, random_inputs
from crosscheck.weights import copy_torch_to_jax


class JaxBlock(nnx.Module):
    """``Linear(size, heads·size)``, split into heads, then ``PerHeadLinear(heads, size, size)``.

    Shape:
        ``(..., size) -> (..., heads, size)``.

    >>> import jax.numpy as jnp
    >>> block = JaxBlock(2, 3, rngs=nnx.Rngs(0))
    >>> block(jnp.ones((4, 3))).shape
    (4, 2, 3)
    """

    def __init__(self, heads: int, size: int, *, impl: str = "auto", rngs: nnx.Rngs):
        self.project = jaxlin.Linear(size, heads * size, rngs=rngs)
        self.heads = jaxlin.PerHeadLinear(heads, size, size, impl=impl, rngs=rngs)

    def __call__(self, x):
        y = self.project(x)
        return self.heads(y.reshape(*y.shape[:-1], self.heads.num_heads, self.heads.in_features))


class TorchBlock(torch.nn.Module):
    """The same block from torch_ref's layers (``PerHeadLinear`` on ``torch.baddbmm``).

    Shape:
        ``(..., size) -> (..., heads, size)``.

    >>> TorchBlock(2, 3)(torch.ones(4, 3)).shape
    torch.Size([4, 2, 3])
    """

    def __init__(self, heads: int, size: int):
        super().__init__()
        self.project = torch_ref.Linear(size, heads * size)
        self.heads = torch_ref.PerHeadLinear(heads, size, size)

    def forward(self, x):
        y = self.project(x)
        return self.heads(y.unflatten(-1, (self.heads.num_heads, self.heads.in_features)))


def pair(heads: int, size: int, device: str, *, impl: str = "auto") -> tuple[JaxBlock, TorchBlock]:
    """A jaxlin block and a torch_ref block on one set of weights; the torch one on ``device``."""
    torch.manual_seed(0)
    theirs = TorchBlock(heads, size)
    ours = JaxBlock(heads, size, impl=impl, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    return ours, theirs.to(device)


def _magnitude(block: JaxBlock, rows: int, heads: int, size: int):
    """``|W2|·(|W1|·|x| + |b1|) + |b2|`` on the first 8 rows (float64): both layers' rounding scales."""
    w1, b1 = (np.abs(np.asarray(a, np.float64)) for a in (block.project.kernel[...], block.project.bias[...]))
    w2, b2 = (np.abs(np.asarray(a, np.float64)) for a in (block.heads.kernel[...], block.heads.bias[...]))

    def magnitude(inputs):
        x = np.abs(np.asarray(np.asarray(inputs[0]).reshape(rows, size)[:8], np.float64))
        hidden = (x @ w1 + b1).reshape(-1, heads, size)
        return np.einsum("rhi,hio->rho", hidden, w2) + b2

    return magnitude


def kernel_parity(block: JaxBlock, rows: int, device: str) -> list[Impl]:
    """Each framework's two plain GEMMs of the block's shapes on its kernels: ``(rows, size) @ (size,
    heads·size)``, then that output read heads-major as it lies (a free reshape, not the block's split)
    ``@ (heads, size, size)``. No bias, no copy: the backend's matmul cost of the block. A different
    function from the block (the second GEMM mixes rows across heads), so timed, not compared."""
    heads, size = block.heads.num_heads, block.heads.in_features
    w1, w2 = block.project.kernel[...], block.heads.kernel[...]
    to_rows = lambda x: x.reshape(rows, size)  # noqa: E731
    jax_gemms = jax.jit(lambda x, a, b: jnp.matmul(jnp.matmul(x, a).reshape(heads, rows, size), b))
    t1, t2 = (torch.from_numpy(np.array(w, np.float32)).to(device) for w in (w1, w2))

    def torch_gemms(x):
        with torch.no_grad():
            return torch.bmm(torch.mm(x, t1).view(heads, rows, size), t2)

    note = {"checked": False, "to_layout": to_rows}
    hlo = lambda: jax_gemms.lower(jnp.zeros((rows, size), jnp.float32), w1, w2).compile().as_text()  # noqa: E731
    return [
        Impl(names.JAX_BLOCK_GEMMS, "jax", lambda x: jax_gemms(x, w1, w2), hlo, **note),
        Impl(names.TORCH_BLOCK_GEMMS, "torch", torch_gemms, **note),
    ]


def block(heads: int, size: int, leading: tuple[int, int], device: str, *, compiled: bool) -> Config:
    """The block at ``heads`` × ``size`` on ``leading`` = (batch, windows) rows: jaxlin's default and
    its explicit impls through :func:`jaxlin.jitted`, torch_ref eager and, where asked, compiled."""
    rows, shape = int(np.prod(leading)), (*leading, size)
    impls, reference = [], None
    variants = [(names.JAXLIN_BLOCK, "auto")] + [(names.JAXLIN_BLOCK_IMPL[i], i) for i in ("einsum", "loop")]
    for name, impl in variants:
        ours, theirs = pair(heads, size, device, impl=impl)
        reference = reference or ours
        call = jaxlin.jitted(ours)
        impls.append(Impl(name, "jax", call, module_hlo(call, shape)))
    impls.append(Impl(names.TORCH_BLOCK, "torch", no_grad(theirs)))
    if compiled:
        impls.append(Impl(names.TORCH_COMPILE_BLOCK, "torch", no_grad(torch.compile(theirs))))
    impls += kernel_parity(reference, rows, device)
    flops = 2.0 * rows * size * heads * size * 2  # two matmuls of the same size
    weights = size * heads * size + heads * size + heads * size * (size + 1)
    return Config(
        names.BLOCK,
        f"h{heads} {size}→{heads}·{size}→{size} rows {rows}",
        {"heads": heads, "size": size, "rows": rows},
        flops,
        random_inputs(shape, device),
        impls,
        _magnitude(reference, rows, heads, size),
        k=2 * size + 2,
        checked_rows=lambda y: np.reshape(y, (rows, heads, size))[:8],
        traffic=float32_traffic(rows * size, weights, rows * heads * size),
    )
