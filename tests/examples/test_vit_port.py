"""The ViT port (own names, NHWC, a strided nnx.Conv patch embedding with its own cls/pos parameters,
nnx.MultiHeadAttention, exact GELU) against transformers' ViTModel: the honest port passes both tiers
with every gradient and every layer; each planted bug fails check, and locate names where."""

import pytest
from flax import nnx

pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")

from crosscheck import check, copy_torch_to_jax, locate  # noqa: E402
from examples.vit_port import BUGS, RENAME, ViTPort, example_inputs, reference, tiny_config  # noqa: E402

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

CONFIG = tiny_config()
X, X_TORCH = example_inputs(CONFIG)  # (2, 16, 16, 3) and (2, 3, 16, 16)


@pytest.fixture(scope="module")
def ref():
    return reference(CONFIG)


def _port(ref, bug=None):
    port = nnx.eval_shape(lambda: ViTPort(CONFIG, rngs=nnx.Rngs(0), bug=bug))  # arrays: the copy's
    copied = copy_torch_to_jax(ref, port, rename=RENAME)  # every key maps: no strict=False needed
    assert copied.ignored == [] and copied.missing == []
    return port


@pytest.fixture(scope="module")
def honest(ref):
    return _port(ref)


def test_the_honest_port_passes_both_tiers_with_every_gradient(ref, honest):
    result = check(honest, ref, X, torch_inputs=(X_TORCH,), rename=RENAME)
    assert result.passed, "\n".join(result.failures())
    assert len(result.items) == 1 + len(ref.state_dict()) + 1  # the output, every parameter, the input
    assert result.items[-1].item == "grads.input"  # NHWC against NCHW, paired through the permutation
    assert "torch: 1 float32 cast promoted in layers.0.attention (ViTAttention)" in result.truth_notes
    assert "JAX: 1 float32 cast promoted in blocks.0.attn (SelfAttention)" in result.truth_notes
    assert len(result.notes) == 5 and all("use_fast_variance=True" in note for note in result.notes)


def test_a_plain_multi_head_attention_maps_projection_by_projection_onto_hfs_linears(ref):
    """HF's ViT holds q_proj/k_proj/v_proj/o_proj, not torch.nn.MultiheadAttention's packed in_proj_weight:
    the packing rule stands aside and each projection maps by the LinearGeneral rule, so a plain
    nnx.MultiHeadAttention in the port needs no rule of its own."""
    port = ViTPort(CONFIG, rngs=nnx.Rngs(0))
    for block in port.blocks:
        block.attn = nnx.MultiHeadAttention(4, 32, decode=False, rngs=nnx.Rngs(0))
    copy_torch_to_jax(ref, port, rename=RENAME)
    result = check(port, ref, X, torch_inputs=(X_TORCH,), rename=RENAME, grads=False)
    assert result.passed, "\n".join(result.failures())


@pytest.mark.parametrize("bug", BUGS)
def test_each_planted_bug_fails_check(ref, bug):
    result = check(_port(ref, bug), ref, X, torch_inputs=(X_TORCH,), rename=RENAME, grads=False)
    (output,) = result.items
    assert not result.passed and not output.same_function.passed
    # the tanh GELU differs by 1e-7, the size of float32 rounding here: only the float64 tier sees it
    assert output.rounding.passed == (bug == "tanh-gelu")


def test_locate_judges_every_layer_of_the_honest_port_on_the_truth(ref, honest):
    result = locate(honest, ref, X, torch_inputs=(X_TORCH,), rename=RENAME)
    assert result.passed and result.first_failure is None, str(result)
    assert len(result.layers) == 26 and all(layer.inputs == "truth" for layer in result.layers)
    assert "layers.0.mlp.activation_fn" in result.torch_only  # GELU is a function in the port


def test_locate_names_the_tanh_gelu_at_the_first_feed_forward(ref):
    result = locate(_port(ref, "tanh-gelu"), ref, X, torch_inputs=(X_TORCH,), rename=RENAME)
    assert result.first_failure == "layers.0.mlp"  # its fc1 and fc2 pass: the activation between them
