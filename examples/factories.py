"""Ready ``module:function`` factories for ``crosscheck locate``: each is a zero-argument callable that
returns one model (the port in Flax NNX, or its PyTorch reference) at the example's tiny configuration,
untrained, with seed 0.

    crosscheck locate --jax examples.factories:resnet_port --torch examples.factories:resnet_reference \\
        --align --input-shape 2,64,64,3

The references are Hugging Face models: they need the hf extra (``pip install -e '.[hf]'``).
"""

from __future__ import annotations

from flax import nnx


def bert_port():
    from examples.bert_port import BertEncoderPort, tiny_config

    return BertEncoderPort(tiny_config(), rngs=nnx.Rngs(0))


def bert_reference():
    from examples.bert_port import reference, tiny_config

    return reference(tiny_config())


def resnet_port():
    from examples.resnet_port import ResNetPort, tiny_config

    return ResNetPort(tiny_config(), rngs=nnx.Rngs(0))


def resnet_reference():
    from examples.resnet_port import reference, tiny_config

    return reference(tiny_config())


def decoder_port():
    from examples.decoder_port import DecoderPort, tiny_config

    return DecoderPort(tiny_config(), rngs=nnx.Rngs(0))


def decoder_reference():
    from examples.decoder_port import reference, tiny_config

    return reference(tiny_config())


def vit_port():
    from examples.vit_port import ViTPort, tiny_config

    return ViTPort(tiny_config(), rngs=nnx.Rngs(0))


def vit_reference():
    from examples.vit_port import reference, tiny_config

    return reference(tiny_config())
