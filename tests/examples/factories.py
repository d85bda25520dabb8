"""module:factory targets for ``crosscheck locate`` in the tests: the ones shipped in
:mod:`examples.factories`."""

from examples.factories import (  # noqa: F401
    bert_port,
    bert_reference,
    decoder_port,
    decoder_reference,
    resnet_port,
    resnet_reference,
    vit_port,
    vit_reference,
)
