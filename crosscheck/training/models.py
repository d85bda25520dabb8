"""The classifier of the training runs, in jaxlin layers and in torch_ref layers.

``encoder`` (``Linear`` or ``PointwiseConv``, features→hidden at every position) → ReLU → an optional
``MaxPool1d(2)`` over the positions → flatten → ``head`` (``Linear``, → classes). Both frameworks
take the same channels-last batches ``(batch, length, features)``; the torch model with a
``PointwiseConv`` encoder moves the channels first for ``Conv1d`` and back before flattening, so the
head's weight means the same thing in every variant and one set of weights fits them all.

>>> spec = ModelSpec("conv", pool=True)
>>> spec.name, spec.head_inputs
('conv-maxpool', 128)
>>> torch_model(spec, seed=0)(torch.zeros(3, 8, 32)).shape
torch.Size([3, 4])
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.suite.cases import PLACEHOLDER_INIT
from crosscheck.weights import numpy_of_torch, torch_of_numpy

LAYERS = ("linear", "conv")


@dataclass(frozen=True)
class ModelSpec:
    """Which classifier: the encoder ``layer`` (``"linear"`` or ``"conv"``, a ``PointwiseConv`` run
    with ``impl``), whether a max pool follows it, and the sizes.

    Shape:
        input ``(batch, length, features)`` -> logits ``(batch, classes)``.
    """

    layer: str = "linear"
    impl: str = "conv"
    pool: bool = False
    length: int = 8
    features: int = 32
    hidden: int = 32
    classes: int = 4

    def __post_init__(self):
        if self.layer not in LAYERS or self.impl not in ("conv", "matmul"):
            raise ValueError(
                f"ModelSpec(layer={self.layer!r}, impl={self.impl!r}): layer must be one of "
                f"{', '.join(LAYERS)} and impl 'conv' or 'matmul'."
            )
        if self.pool and self.length % 2:
            raise ValueError(
                f"ModelSpec(length={self.length}, pool=True): MaxPool1d(2) needs an even length, "
                f"got {self.length}."
            )

    @property
    def name(self) -> str:
        """``linear``, ``conv``, ``conv-maxpool``, ``conv-matmul`` (PointwiseConv on its matmul path)."""
        base = "linear" if self.layer == "linear" else ("conv" if self.impl == "conv" else "conv-matmul")
        return base + ("-maxpool" if self.pool else "")

    @property
    def head_inputs(self) -> int:
        return (self.length // 2 if self.pool else self.length) * self.hidden


def spec_named(name: str, **sizes) -> ModelSpec:
    """The spec a model name stands for (the inverse of :attr:`ModelSpec.name`).

    Raises:
        ValueError: a name that is none of them.

    >>> spec_named("conv-maxpool").pool
    True
    """
    base, pool = (name[: -len("-maxpool")], True) if name.endswith("-maxpool") else (name, False)
    layers = {"linear": ("linear", "conv"), "conv": ("conv", "conv"), "conv-matmul": ("conv", "matmul")}
    if base not in layers:
        raise ValueError(
            f"spec_named: unknown model {name!r}; choose from {', '.join(layers)}, each optionally "
            "followed by -maxpool."
        )
    return ModelSpec(*layers[base], pool, **sizes)


class Classifier(nnx.Module):
    """The jaxlin classifier; its parameters start as zeros and are loaded from a weights file.

    Shape:
        input ``(batch, length, features)`` -> logits ``(batch, classes)``.

    >>> import jax.numpy as jnp
    >>> Classifier(ModelSpec(), param_dtype=jnp.float32)(jnp.zeros((2, 8, 32))).shape
    (2, 4)
    """

    def __init__(self, spec: ModelSpec, *, param_dtype):
        rngs = nnx.Rngs(0)  # unused: the placeholder init draws nothing
        options = {"param_dtype": param_dtype, "rngs": rngs, **PLACEHOLDER_INIT}
        # Linear pinned to nnx.Linear's program: "PointwiseConv on its matmul path trains bitwise like
        # Linear" must hold at every batch size, also where impl="auto" would take the conv lowering
        # (the 2,000-example test set is 16,000 rows).
        if spec.layer == "linear":
            self.encoder = jaxlin.Linear(spec.features, spec.hidden, impl="matmul", **options)
        else:
            self.encoder = jaxlin.PointwiseConv(spec.features, spec.hidden, impl=spec.impl, **options)
        self.head = jaxlin.Linear(spec.head_inputs, spec.classes, impl="matmul", **options)
        self.pool = spec.pool

    def __call__(self, x: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.encoder(x))
        if self.pool:
            h = nnx.max_pool(h, window_shape=(2,), strides=(2,))
        return self.head(h.reshape(h.shape[0], -1))


class TorchClassifier(torch.nn.Module):
    """The torch_ref classifier, initialized as PyTorch initializes ``nn.Linear`` and ``nn.Conv1d``.

    Shape:
        input ``(batch, length, features)`` (channels last, as jaxlin) -> logits ``(batch, classes)``.
    """

    def __init__(self, spec: ModelSpec, *, dtype=None):
        super().__init__()
        self.spec = spec
        if spec.layer == "linear":
            self.encoder = torch_ref.Linear(spec.features, spec.hidden, dtype=dtype)
        else:
            self.encoder = torch_ref.PointwiseConv(spec.features, spec.hidden, impl=spec.impl, dtype=dtype)
        self.head = torch_ref.Linear(spec.head_inputs, spec.classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.layer == "conv":
            h = torch.relu(self.encoder(x.transpose(1, 2)))  # (batch, hidden, length), as Conv1d has it
        else:
            h = torch.relu(self.encoder(x)).transpose(1, 2)
        if self.spec.pool:
            h = F.max_pool1d(h, 2)
        return self.head(h.transpose(1, 2).flatten(1))


def jax_model(spec: ModelSpec, dtype: str) -> Classifier:
    """The jaxlin classifier with parameters in ``dtype`` (zeros until weights are loaded)."""
    return Classifier(spec, param_dtype=np.dtype(dtype))


def torch_model(spec: ModelSpec, *, dtype: str = "float32", seed: int | None = None) -> TorchClassifier:
    """The torch_ref classifier in ``dtype``, drawn under ``torch.manual_seed(seed)`` when given."""
    if seed is not None:
        torch.manual_seed(seed)
    return TorchClassifier(spec, dtype=getattr(torch, dtype))


def transplant(model: TorchClassifier, spec: ModelSpec) -> TorchClassifier:
    """A ``spec`` classifier holding exactly ``model``'s numbers: a Linear encoder's ``weight (out, in)``
    becomes a Conv1d's ``(out, in, 1)`` and back — the same init for another encoder layer.

    Raises:
        ValueError: the two specs differ in more than the encoder layer and its impl.
    """
    if replace(model.spec, layer=spec.layer, impl=spec.impl) != spec:
        raise ValueError(
            f"transplant: {model.spec} and {spec} differ in more than the encoder layer, so the weights "
            "do not carry over; only layer and impl may change."
        )
    state = {key: numpy_of_torch(t) for key, t in model.state_dict().items()}
    weight = state["encoder.weight"].reshape(spec.hidden, spec.features)
    state["encoder.weight"] = weight if spec.layer == "linear" else weight[..., None]
    target = TorchClassifier(spec, dtype=model.head.weight.dtype)
    target.load_state_dict({key: torch_of_numpy(value) for key, value in state.items()})
    return target
