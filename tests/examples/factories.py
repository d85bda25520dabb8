"""module:factory targets for ``crosscheck locate`` in the tests."""

from flax import nnx

from examples.bert_port import BertEncoderPort, reference, tiny_config


def bert_port() -> BertEncoderPort:
    return BertEncoderPort(tiny_config(), rngs=nnx.Rngs(0))


def bert_reference():
    return reference(tiny_config())
