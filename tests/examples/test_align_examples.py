"""align on the real-architecture examples: it reproduces each example's hand-written RENAME exactly, on
every module that holds weights, with its weights copied and without."""

import numpy as np
import pytest
from flax import nnx

pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")

from crosscheck import align, check, copy_torch_to_jax  # noqa: E402
from crosscheck.weights.tree import renamed, submodules  # noqa: E402
from examples import bert_port  # noqa: E402


def _holding_weights(port) -> list[str]:
    return [
        path
        for path, module in submodules(port)
        if any(isinstance(v, nnx.Variable) for v in vars(module).values())
    ]


def _reproduces(found, port, rename) -> None:
    for path in _holding_weights(port):
        by_hand = renamed(path + ".", rename)[:-1] if path else ""
        assert found.mapping.get(path) == by_hand, (path, found.mapping.get(path), by_hand)
        assert (renamed(path + ".", found.rename)[:-1] if path else "") == by_hand, path


@pytest.fixture(scope="module")
def bert():
    config = bert_port.tiny_config()
    ids = np.random.default_rng(0).integers(1, config.vocab_size, (2, 16))
    return config, bert_port.reference(config), (ids, np.ones_like(ids))


@pytest.mark.parametrize("loaded", [False, True], ids=["fresh", "loaded"])
def test_bert_rename_is_reproduced(bert, loaded):
    config, hf, inputs = bert
    port = bert_port.BertEncoderPort(config, rngs=nnx.Rngs(0))
    if loaded:
        copy_torch_to_jax(hf, port, rename=bert_port.RENAME)
    found = align(port, hf, *inputs)
    _reproduces(found, port, bert_port.RENAME)
    assert not found.ambiguous and not found.unmatched.jax and not found.unmatched.torch
    how = {row.jax_path: row.how for row in found.rows}
    assert how["encoder.layer.0.attention.self_attention.query"] == ("values" if loaded else "by name")
    assert how["encoder.layer.1.output.LayerNorm"] == "order+kind+shape"
    assert found.rename == [
        (r"^encoder\.layer\.(\d+)\.attention\.self_attention\.", r"encoder.layer.\1.attention.self.")
    ]
    if not loaded:
        copy_torch_to_jax(hf, port, rename=found.rename)
        assert check(port, hf, *inputs, rename=found.rename).passed
