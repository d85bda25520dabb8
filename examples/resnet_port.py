"""A ResNet (basic blocks) in Flax NNX, written as a port author writes one, against Hugging Face's
``transformers.ResNetModel``.

The port keeps its own names and layout: images are NHWC, the stem is ``stem.conv``/``stem.bn``, the
residual blocks are ``stages.<i>.blocks.<j>.{conv1,bn1,conv2,bn2}`` and a projection shortcut is
``shortcut.{conv,bn}`` (timm's and torchvision's spelling, not Hugging Face's
``encoder.stages.<i>.layers.<j>.layer.<k>.{convolution,normalization}``). :data:`RENAME` is the
converter's table from the one to the other. Convolutions are ``nnx.Conv`` (no bias), normalizations
``nnx.BatchNorm`` reading their running statistics (``use_running_average=True``: the port is for
inference; ``model.train()`` switches them to batch statistics).

Four porting bugs can be planted (``bug=``): ``"bn-epsilon"`` (every BatchNorm with Keras' epsilon
1e-3 instead of PyTorch's 1e-5), ``"stride-on-wrong-conv"`` (a downsampling block that strides its
second 3x3 convolution instead of its first: ResNet v1.5 against v1, the same shapes, another function),
``"same-padding"`` (each block's first 3x3 convolution with ``padding="SAME"``: at stride 1 that is
PyTorch's ``padding=1``, at stride 2 on an even size it pads ``(0, 1)`` where PyTorch pads ``(1, 1)``:
the same shapes, the grid shifted by one pixel) and ``"kernel-hw-swap"`` (each block's second 3x3
convolution applies its kernel with height and width swapped, as a converter that transposes
``OIHW`` with ``(3, 2, 1, 0)`` instead of ``(2, 3, 1, 0)`` does: every shape as it was).

Shape:
    ``pixels (batch, height, width, channels)`` -> ``{"last_hidden_state": (batch, h', w', hidden[-1]),
    "pooler_output": (batch, 1, 1, hidden[-1])}``, ``h' = height / 32`` (rounded up) for two stages.

>>> config = tiny_config()
>>> port = ResNetPort(config, rngs=nnx.Rngs(0))
>>> out = port(jnp.zeros((2, 32, 32, 3)))
>>> out["last_hidden_state"].shape, out["pooler_output"].shape
((2, 4, 4, 16), (2, 1, 1, 16))
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

BUGS = ("bn-epsilon", "stride-on-wrong-conv", "same-padding", "kernel-hw-swap")
"""The planted bugs ``ResNetPort(..., bug=...)`` takes."""

_BLOCK, _LAYER = r"^stages\.(\d+)\.blocks\.(\d+)\.", r"encoder.stages.\1.layers.\2."
RENAME = [
    (r"^stem\.conv\.", "embedder.embedder.convolution."),
    (r"^stem\.bn\.", "embedder.embedder.normalization."),
    (r"^stem\.$", "embedder."),
    (_BLOCK + r"conv1\.", _LAYER + "layer.0.convolution."),
    (_BLOCK + r"bn1\.", _LAYER + "layer.0.normalization."),
    (_BLOCK + r"conv2\.", _LAYER + "layer.1.convolution."),
    (_BLOCK + r"bn2\.", _LAYER + "layer.1.normalization."),
    (_BLOCK + r"shortcut\.conv\.", _LAYER + "shortcut.convolution."),
    (_BLOCK + r"shortcut\.bn\.", _LAYER + "shortcut.normalization."),
    (_BLOCK + r"shortcut\.$", _LAYER + "shortcut."),
    (_BLOCK + "$", _LAYER),
    (r"^stages\.(\d+)\.$", r"encoder.stages.\1."),
]
"""The port's module paths onto ``transformers.ResNetModel``'s (weights and layers alike)."""


@dataclass(frozen=True)
class Config:
    """The sizes of a basic-block ResNet, as ``transformers.ResNetConfig`` names them."""

    num_channels: int = 3
    embedding_size: int = 8
    hidden_sizes: tuple[int, ...] = (8, 16)
    depths: tuple[int, ...] = (1, 1)
    downsample_in_first_stage: bool = False


def tiny_config() -> Config:
    """Two stages of one basic block each, 8 and 16 channels, an 8-channel stem."""
    return Config()


def hf_config(config: Config):
    """The ``transformers.ResNetConfig`` of ``config`` (basic blocks, ReLU)."""
    from transformers import ResNetConfig

    return ResNetConfig(
        num_channels=config.num_channels, embedding_size=config.embedding_size,
        hidden_sizes=list(config.hidden_sizes), depths=list(config.depths), layer_type="basic",
        hidden_act="relu", downsample_in_first_stage=config.downsample_in_first_stage,
    )  # fmt: skip


class HWSwappedConv(nnx.Conv):
    """The planted ``"kernel-hw-swap"``: an ``nnx.Conv`` that applies ``kernel`` with its height and width
    axes swapped (``(kh, kw, in, out)`` read as ``(kw, kh, in, out)``); square kernels keep every shape."""

    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = jnp.swapaxes(self.kernel[...], 0, 1)
        strides = (self.strides,) * 2 if isinstance(self.strides, int) else tuple(self.strides)
        return jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), strides, self.padding,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            precision=self.precision)  # fmt: skip


def _conv(cin: int, cout: int, kernel: int, stride: int, rngs: nnx.Rngs, *, padding=None, cls=nnx.Conv):
    pad = kernel // 2
    padding = ((pad, pad), (pad, pad)) if padding is None else padding
    return cls(cin, cout, (kernel, kernel), strides=stride, padding=padding, use_bias=False, rngs=rngs)


def _bn(features: int, bug: str | None, rngs: nnx.Rngs) -> nnx.BatchNorm:
    epsilon = 1e-3 if bug == "bn-epsilon" else 1e-5
    return nnx.BatchNorm(features, use_running_average=True, momentum=0.9, epsilon=epsilon, rngs=rngs)


class Stem(nnx.Module):
    """7x7 convolution, stride 2 -> BatchNorm -> ReLU -> 3x3 max pool, stride 2 (NHWC)."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        self.conv = _conv(config.num_channels, config.embedding_size, 7, 2, rngs)
        self.bn = _bn(config.embedding_size, bug, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.bn(self.conv(x)))
        return nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class Shortcut(nnx.Module):
    """A 1x1 projection and BatchNorm, where a block changes width or resolution."""

    def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs, bug: str | None = None):
        self.conv = _conv(cin, cout, 1, stride, rngs)
        self.bn = _bn(cout, bug, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.conv(x))


class BasicBlock(nnx.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; the first 3x3 convolution strides."""

    def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs, bug: str | None = None):
        first, second = (1, stride) if bug == "stride-on-wrong-conv" else (stride, 1)
        same = "SAME" if bug == "same-padding" else None  # the planted bug: SAME is (0, 1) at stride 2
        self.conv1 = _conv(cin, cout, 3, first, rngs, padding=same)
        self.bn1 = _bn(cout, bug, rngs)
        swapped = HWSwappedConv if bug == "kernel-hw-swap" else nnx.Conv  # the planted bug
        self.conv2 = _conv(cout, cout, 3, second, rngs, cls=swapped)
        self.bn2 = _bn(cout, bug, rngs)
        projects = cin != cout or stride != 1
        self.shortcut = Shortcut(cin, cout, stride, rngs=rngs, bug=bug) if projects else None

    def __call__(self, x: jax.Array) -> jax.Array:
        residual = x if self.shortcut is None else self.shortcut(x)
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        return jax.nn.relu(self.bn2(self.conv2(h)) + residual)


class Stage(nnx.Module):
    def __init__(self, cin: int, cout: int, depth: int, stride: int, *, rngs: nnx.Rngs, bug=None):
        self.blocks = nnx.List(
            [BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, rngs=rngs, bug=bug)
             for i in range(depth)]
        )  # fmt: skip

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return x


class ResNetPort(nnx.Module):
    """``transformers.ResNetModel`` (basic blocks) in Flax NNX, channels last.

    Returns a dict with Hugging Face's output names: the last stage's features
    ``(batch, h, w, channels)`` and their global average ``(batch, 1, 1, channels)``.
    """

    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        if bug not in (None, *BUGS):
            raise ValueError(f"bug must be one of {BUGS} or None; got {bug!r}")
        self.stem = Stem(config, rngs=rngs, bug=bug)
        widths = (config.embedding_size, *config.hidden_sizes)
        first_stride = 2 if config.downsample_in_first_stage else 1
        self.stages = nnx.List(
            [Stage(widths[i], widths[i + 1], depth, first_stride if i == 0 else 2, rngs=rngs, bug=bug)
             for i, depth in enumerate(config.depths)]
        )  # fmt: skip

    def __call__(self, pixels: jax.Array) -> dict[str, jax.Array]:
        x = self.stem(pixels)
        for stage in self.stages:
            x = stage(x)
        return {"last_hidden_state": x, "pooler_output": jnp.mean(x, axis=(1, 2), keepdims=True)}


def reference(config: Config, seed: int = 0):
    """``transformers.ResNetModel`` at ``config``, random under ``torch.manual_seed(seed)``, in eval
    mode, float32; every BatchNorm given random affine parameters and running statistics, as a trained
    checkpoint has them (fresh ones are 0 and 1, which would hide a wrong epsilon or statistic)."""
    import torch
    from transformers import ResNetModel

    torch.manual_seed(seed)
    model = ResNetModel(hf_config(config)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


def example_inputs(config: Config, seed: int = 0, *, batch: int = 2, size: int = 64):
    """``(pixels NHWC for the port, pixels NCHW for the reference)``: the same random image.

    >>> jax_in, torch_in = example_inputs(tiny_config())
    >>> jax_in.shape, torch_in.shape
    ((2, 64, 64, 3), (2, 3, 64, 64))
    """
    nhwc = np.random.default_rng(seed).standard_normal((batch, size, size, config.num_channels))
    return nhwc.astype(np.float32), np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)).astype(np.float32)
