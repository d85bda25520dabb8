"""module:factory targets for ``crosscheck locate`` in the tests."""

from flax import nnx

from examples.bert_port import BertEncoderPort, reference, tiny_config


def bert_port() -> BertEncoderPort:
    return BertEncoderPort(tiny_config(), rngs=nnx.Rngs(0))


def bert_reference():
    return reference(tiny_config())


def resnet_port():
    from examples.resnet_port import ResNetPort
    from examples.resnet_port import tiny_config as resnet_config

    return ResNetPort(resnet_config(), rngs=nnx.Rngs(0))


def resnet_reference():
    from examples.resnet_port import reference as resnet_ref
    from examples.resnet_port import tiny_config as resnet_config

    return resnet_ref(resnet_config())


def decoder_port():
    from examples.decoder_port import DecoderPort
    from examples.decoder_port import tiny_config as decoder_config

    return DecoderPort(decoder_config(), rngs=nnx.Rngs(0))


def decoder_reference():
    from examples.decoder_port import reference as decoder_ref
    from examples.decoder_port import tiny_config as decoder_config

    return decoder_ref(decoder_config())


def vit_port():
    from examples.vit_port import ViTPort
    from examples.vit_port import tiny_config as vit_config

    return ViTPort(vit_config(), rngs=nnx.Rngs(0))


def vit_reference():
    from examples.vit_port import reference as vit_ref
    from examples.vit_port import tiny_config as vit_config

    return vit_ref(vit_config())
