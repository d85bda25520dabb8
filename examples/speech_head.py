"""The classification head of Hugging Face's Wav2Vec2 (and Whisper) audio classifiers, as a
``jaxlin.PooledHead``.

``Wav2Vec2ForSequenceClassification`` ends in ``projector`` (Linear), a mean over the frames that
are not padding, and ``classifier`` (Linear): ``PooledHead(pool_at="hidden")`` with no activation,
whose parameters carry the very names ``projector.*`` and ``classifier.*``. So the head loads
straight out of the whole ``save_pretrained`` checkpoint with ``strict=False`` (the encoder's keys
are ignored and listed), and a single layer of it with ``prefix="classifier."``.

:func:`hf_head_run` runs the Hugging Face model itself and keeps what enters its projector and what
leaves its classifier, so the jaxlin head is judged against Hugging Face's own head code.

Shape:
    hidden states ``(batch, frames, hidden)``, frame mask ``(batch, frames)`` -> logits ``(batch, labels)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import jax
import numpy as np
import torch
from flax import nnx

import jaxlin
from crosscheck.porting.checking import reduction_lengths
from crosscheck.porting.magnitudes import float64_jax, magnitudes
from crosscheck.porting.verdicts import Evidence, judge_analytic


def tiny_classifier(seed: int = 0):
    """A random-config ``Wav2Vec2ForSequenceClassification`` (hidden 32, projector 24, 3 labels), in
    eval mode."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification  # the hf extra

    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 2), conv_kernel=(10, 3), num_feat_extract_layers=2, classifier_proj_size=24,
        num_labels=3, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    torch.manual_seed(seed)
    return Wav2Vec2ForSequenceClassification(config).eval()


def jaxlin_head(model, *, rngs: nnx.Rngs | None = None) -> jaxlin.PooledHead:
    """A ``jaxlin.PooledHead`` of the model's head sizes (its weights come from ``load_weights``)."""
    config = model.config
    sizes = (config.hidden_size, config.classifier_proj_size, config.num_labels)
    return jaxlin.PooledHead(*sizes, pool_at="hidden", rngs=rngs or nnx.Rngs(0))


@dataclass
class HeadRun:
    """What the Hugging Face head saw and gave: in the model's dtype, and in float64 on the same input
    (the truth)."""

    hidden: np.ndarray  # what entered the projector
    mask: np.ndarray  # the frames that are not padding, boolean
    logits: np.ndarray
    logits64: np.ndarray


def _head_io(model, audio, attention_mask, replace=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's projector input, frame mask and logits; ``replace``: the projector input to use instead."""
    seen = {}

    def keep(module, args):
        seen["hidden"] = args[0].clone()
        return None if replace is None else (replace,)

    handle = model.projector.register_forward_pre_hook(keep)
    try:
        with torch.no_grad():
            logits = model(audio, attention_mask=attention_mask).logits
    finally:
        handle.remove()
    hidden = seen["hidden"] if replace is None else replace
    mask = model._get_feature_vector_attention_mask(
        hidden.shape[1], attention_mask
    )  # Hugging Face's frame mask
    return hidden.numpy(), mask.numpy().astype(bool), logits.numpy()


def hf_head_run(model, audio: np.ndarray, lengths: list[int]) -> HeadRun:
    """Run the whole Hugging Face model on ``audio`` ``(batch, samples)`` with the given unpadded lengths;
    then its float64 copy, whose head is handed the very hidden states the working model's head saw."""
    attention_mask = torch.zeros(audio.shape, dtype=torch.long)
    for row, length in enumerate(lengths):
        attention_mask[row, :length] = 1
    hidden, mask, logits = _head_io(model, torch.from_numpy(audio.astype(np.float32)), attention_mask)
    double = copy.deepcopy(model).double()
    replace = torch.from_numpy(hidden.astype(np.float64))
    _, _, logits64 = _head_io(double, torch.from_numpy(audio.astype(np.float64)), attention_mask, replace)
    return HeadRun(hidden, mask, logits, logits64)


def judge(head: jaxlin.PooledHead, run: HeadRun):
    """Both tiers for ``head`` against Hugging Face's head on the same input: same function (both in
    float64) and acceptable rounding (both in float32 against the float64 truth), analytic bound."""
    with jax.enable_x64(True):
        hidden64 = run.hidden.astype(np.float64)
        ours = np.asarray(head(run.hidden, run.mask))
        ours64 = np.asarray(float64_jax(head)(hidden64, run.mask))
        size = magnitudes(head, (hidden64, run.mask), None, grads=False).output
    k = reduction_lengths(head, run.hidden.shape)["output"]
    return judge_analytic("logits", Evidence(ours, run.logits, ours64, run.logits64), size, k, "float32")
