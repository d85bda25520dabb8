"""The Llama-style decoder port (own names, nnx.Einsum projections with heads split, GQA, rotary,
SwiGLU, float32 RMSNorm) against transformers' LlamaModel. The acceptable-rounding tier passes every
item; the same-function tier fails by ~1e-11 only through LlamaRotaryEmbedding.inv_freq, a buffer
computed in float32 when the model was built (given the same float32 table, the port passes both)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")

import examples.decoder_port as decoder  # noqa: E402
from crosscheck import check, copy_torch_to_jax, locate  # noqa: E402
from examples.decoder_port import BUGS, RENAME, DecoderPort, example_inputs, reference, tiny_config  # noqa: E402

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

CONFIG = tiny_config()
IDS, TORCH_IDS = example_inputs(CONFIG)  # (2, 16) int32 for the port, int64 for torch


@pytest.fixture(scope="module")
def ref():
    return reference(CONFIG)  # eager attention; "sdpa" gives the same verdicts


def _port(ref, bug=None):
    port = nnx.eval_shape(lambda: DecoderPort(CONFIG, rngs=nnx.Rngs(0), bug=bug))  # arrays: the copy's
    copy_torch_to_jax(ref, port, rename=RENAME)  # every key maps: the inv_freq buffer is not persistent
    return port


@pytest.fixture(scope="module")
def honest(ref):
    return _port(ref)


@pytest.fixture(scope="module")
def checked(ref, honest):
    return check(honest, ref, IDS, torch_inputs=(TORCH_IDS,), rename=RENAME)


def test_the_honest_port_passes_both_tiers_with_every_gradient(checked):
    assert checked.passed, "\n".join(checked.failures())


def test_the_truth_says_what_it_promoted_and_which_float32_constant_it_holds(checked):
    assert len(checked.items) == 1 + 20  # the output and every parameter; token ids get no gradient
    output = checked.items[0]
    assert output.item == "output" and output.same_function.passed
    assert 1e-12 < output.same_function.metrics["rms_difference"] < 1e-10  # float32 rounding of inv_freq
    assert "u of float32, the truth's precision" in output.same_function.bound_text
    assert "torch: 2 float32 casts promoted in rotary_emb (LlamaRotaryEmbedding)" in checked.truth_notes
    assert "torch: 1 float32 cast promoted in layers.0.input_layernorm (LlamaRMSNorm)" in checked.truth_notes
    assert any(
        note.startswith("torch: buffer rotary_emb.inv_freq (float32, (4,)) is float32 data")
        for note in checked.truth_notes
    )
    assert any("LlamaRMSNorm has no layout rule; mapped as nnx.RMSNorm" in note for note in checked.notes)


def test_given_torchs_float32_rotary_table_the_port_passes_both_tiers(ref, honest, monkeypatch):
    table = ref.rotary_emb.inv_freq.numpy().astype(np.float64)  # [1, 0.1, 0.01, 0.001] rounded to float32

    def rotary(x, positions, theta, *, interleaved=False):
        angles = positions[:, None].astype(x.dtype) * jnp.asarray(table, x.dtype)[None, :]
        cos, sin = (f(angles)[None, :, None, :] for f in (jnp.cos, jnp.sin))
        first, second = jnp.split(x, 2, axis=-1)
        return jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)

    monkeypatch.setattr(decoder, "rotary", rotary)
    result = check(honest, ref, IDS, torch_inputs=(TORCH_IDS,), rename=RENAME, grads=False)
    assert result.passed, "\n".join(result.failures())


@pytest.mark.parametrize("bug", BUGS)
def test_each_planted_bug_fails_both_tiers_of_the_output(ref, bug):
    result = check(_port(ref, bug), ref, IDS, torch_inputs=(TORCH_IDS,), rename=RENAME, grads=False)
    (output,) = result.items
    assert not output.same_function.passed and not output.rounding.passed
    assert output.rounding.metrics["actual_rms_error"] > 1e-3  # against 1e-7 of honest float32 rounding


def test_locate_on_the_honest_port(ref, honest):
    """Every layer judged on the truth's input, the split-head projections through the layout change
    locate finds ((2, 16, 32) in torch, (2, 16, 4, 8) here); every row passes, the rotary table's float32
    rounding allowed where it reaches (the truth notes say so)."""
    result = locate(honest, ref, IDS, torch_inputs=(TORCH_IDS,), rename=RENAME)
    rows = {layer.path: layer for layer in result.layers}
    assert len(rows) == 27 and result.torch_only == [
        "rotary_emb",
        "layers.0.mlp.act_fn",
        "layers.1.mlp.act_fn",
    ]
    assert all(layer.inputs == "truth" and layer.error is None for layer in result.layers)
    assert result.passed and result.first_failure is None, str(result)
    assert (
        "output: torch (2, 16, 32) -> JAX (2, 16, 4, 8): split" in rows["layers.0.self_attn.q_proj"].layouts
    )
    assert any("inv_freq" in note for note in result.truth_notes)
