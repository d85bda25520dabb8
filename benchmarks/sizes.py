"""The named sizes of :mod:`benchmarks.scale`: the BERT example and the Llama-style decoder example, each
a pair (the Flax NNX port, its ``transformers`` original with the port's weights copied from it) and the
inputs both are called on.

>>> sorted(SIZES)[:3]
['bert-base', 'bert-large', 'bert-mini']
>>> SIZES["decoder-1b"].tokens
(1, 16)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

BERT = {
    "bert-tiny": dict(),  # the example's tiny_config: 2 layers, hidden 64, vocabulary 100
    "bert-mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "bert-small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "bert-base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(
        num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096
    ),
}
"""BERT sizes beyond the tiny one use BERT's vocabulary (30522) and 512 positions."""

DECODER = {
    "decoder-tiny": dict(),  # the example's tiny_config: 2 layers, hidden 32, vocabulary 100
    "decoder-small": dict(
        num_hidden_layers=4, hidden_size=512, num_attention_heads=8, num_key_value_heads=2,
        intermediate_size=2048, vocab_size=32000,
    ),
    "decoder-medium": dict(
        num_hidden_layers=6, hidden_size=1024, num_attention_heads=16, num_key_value_heads=4,
        intermediate_size=4096, vocab_size=32000,
    ),
    "decoder-1b": None,  # examples.decoder_port.llama_3_2_1b_config()
}  # fmt: skip
"""Decoder sizes: head_dim 64 beyond the tiny one (hidden / query heads), as Llama's."""


@dataclass(frozen=True)
class Size:
    """One named size: its family ("bert" or "decoder"), its config, and the ``(batch, seq)`` of its
    token ids."""

    name: str
    family: str
    config: object
    tokens: tuple[int, int]

    def example(self):
        """``(the example's module, its port class)``."""
        if self.family == "bert":
            from examples import bert_port

            return bert_port, bert_port.BertEncoderPort
        from examples import decoder_port

        return decoder_port, decoder_port.DecoderPort

    def build_reference(self):
        """The ``transformers`` original, built at seed 0, in eval mode, float32."""
        return self.example()[0].reference(self.config)

    def build(self):
        """``(port, reference, inputs, torch_inputs, rename)``: the port built abstract (``nnx.eval_shape``,
        as docs/porting.md advises) and given its weights by a copy from the reference."""
        from flax import nnx

        from crosscheck import copy_torch_to_jax

        example, port_class = self.example()
        reference = example.reference(self.config)
        port = nnx.eval_shape(lambda: port_class(self.config, rngs=nnx.Rngs(0)))
        copy_torch_to_jax(reference, port, rename=example.RENAME)
        inputs, torch_inputs = self.inputs()
        return port, reference, inputs, torch_inputs, example.RENAME

    def inputs(self) -> tuple[tuple, tuple]:
        """Token ids (and BERT's mask, the last 3 tokens of the last row padding), for each side."""
        batch, seq = self.tokens
        ids = np.random.default_rng(0).integers(1, self.config.vocab_size, (batch, seq))
        if self.family == "decoder":
            return (ids.astype(np.int32),), (ids.astype(np.int64),)
        ids[-1, -3:] = self.config.pad_token_id
        mask = (ids != self.config.pad_token_id).astype(np.int64)
        return (ids, mask), (ids, mask)


def _sizes() -> dict[str, Size]:
    from examples import bert_port, decoder_port

    sizes = {}
    for name, fields in BERT.items():
        real = dict(vocab_size=30522, max_position_embeddings=512) if fields else {}
        config = replace(bert_port.tiny_config(), **real, **fields)
        sizes[name] = Size(name, "bert", config, (2, 16) if not fields else (2, 128))
    for name, fields in DECODER.items():
        if fields is None:
            config = decoder_port.llama_3_2_1b_config()
        else:
            config = replace(decoder_port.tiny_config(), **fields)
        sizes[name] = Size(name, "decoder", config, (1, 16))
    return sizes


SIZES = _sizes()
"""Every named size, by name."""
