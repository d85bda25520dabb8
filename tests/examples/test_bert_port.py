"""The BERT port against Hugging Face's own BertModel: honest, it passes every layer and, end to end,
every gradient; planted bugs (a tanh GELU, a transposed projection, a wrong epsilon) are each located."""

from functools import partial

import jax
import numpy as np
import pytest
from flax import nnx

pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")

import jaxlin  # noqa: E402
from crosscheck import check, copy_torch_to_jax, locate  # noqa: E402
from examples.bert_port import RENAME, BertEncoderPort, reference, tiny_config  # noqa: E402

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

CONFIG = tiny_config()
IDS = np.random.default_rng(0).integers(0, CONFIG.vocab_size, (2, 16))
IDS[1, -3:] = CONFIG.pad_token_id  # padding tokens: their embedding row gets no gradient in PyTorch
MASK = (IDS != CONFIG.pad_token_id).astype(np.int64)


@pytest.fixture(scope="module")
def hf():
    return reference(CONFIG)


def _port(hf):
    port = nnx.eval_shape(lambda: BertEncoderPort(CONFIG, rngs=nnx.Rngs(0)))  # arrays: the copy's
    copy_torch_to_jax(hf, port, rename=RENAME)
    return port


def test_the_honest_port_passes_every_layer(hf):
    result = locate(_port(hf), hf, IDS, MASK, rename=RENAME)
    assert result.passed and result.first_failure is None, str(result)
    assert len(result.layers) == 35 and all(layer.inputs == "truth" for layer in result.layers)
    assert {"encoder.layer.1.intermediate.intermediate_act_fn", "embeddings.dropout"} <= set(
        result.torch_only
    )


def test_the_honest_port_passes_both_tiers_end_to_end_with_every_gradient(hf):
    result = check(_port(hf), hf, IDS, MASK, rename=RENAME)
    assert result.passed, "\n".join(result.failures())
    assert len(result.items) == 1 + len(
        hf.state_dict()
    )  # the output and every parameter (token ids: no gradient)


def test_a_tanh_gelu_in_one_feed_forward_is_located_there(hf):
    port = _port(hf)
    port.encoder.layer[1].intermediate.activation = partial(jax.nn.gelu, approximate=True)
    assert locate(port, hf, IDS, MASK, rename=RENAME).first_failure == "encoder.layer.1.intermediate"


class Transposed(jaxlin.Linear):
    """The planted bug: ``x @ W.T`` where the layer should compute ``x @ W``."""

    def __call__(self, x):
        return x @ self.kernel[...].T + self.bias[...][None, None]  # x: (batch, seq, features)


def test_a_transposed_attention_projection_is_located_there(hf):
    port = _port(hf)
    query = port.encoder.layer[0].attention.self_attention.query
    planted = Transposed(query.in_features, query.out_features, rngs=nnx.Rngs(0))
    planted.kernel[...], planted.bias[...] = query.kernel[...], query.bias[...]
    port.encoder.layer[0].attention.self_attention.query = planted
    assert locate(port, hf, IDS, MASK, rename=RENAME).first_failure == "encoder.layer.0.attention.self.query"


def test_a_layer_norm_with_the_wrong_epsilon_is_located_there_and_noted(hf):
    port = _port(hf)
    port.encoder.layer[0].output.LayerNorm.epsilon = 1e-5
    assert locate(port, hf, IDS, MASK, rename=RENAME).first_failure == "encoder.layer.0.output.LayerNorm"
    notes = check(port, hf, IDS, MASK, rename=RENAME, grads=False).notes
    assert "encoder.layer.0.output.LayerNorm: epsilon 1e-05 in Flax vs eps 1e-12 in PyTorch" in notes


def test_a_jaxlin_linear_subclass_checks_against_hf_bert_intermediate_with_rename(hf):
    class Intermediate(jaxlin.Linear):
        def __call__(self, x):
            return jax.nn.gelu(super().__call__(x), approximate=False)

    theirs = hf.encoder.layer[0].intermediate  # its parameters: dense.weight, dense.bias
    ours = Intermediate(CONFIG.hidden_size, CONFIG.intermediate_size, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours, rename={"weight": "dense.weight", "bias": "dense.bias"})
    x = np.random.default_rng(1).standard_normal((2, 5, CONFIG.hidden_size))
    result = check(ours, theirs, x, rename={"weight": "dense.weight", "bias": "dense.bias"})
    assert result.passed, "\n".join(result.failures())
