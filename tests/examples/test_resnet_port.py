"""The ResNet port (own names, NHWC, nnx.Conv + nnx.BatchNorm) against transformers' ResNetModel:
the honest port passes both tiers with every gradient; each planted bug fails check; locate judges
every layer, except where an NCHW activation has the shape of the NHWC one (C = H = W: issue 20)."""

import pytest
from flax import nnx

pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")

from crosscheck import check, copy_torch_to_jax, locate  # noqa: E402
from examples.resnet_port import BUGS, RENAME, ResNetPort, example_inputs, reference, tiny_config  # noqa: E402

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

CONFIG = tiny_config()
X, X_TORCH = example_inputs(CONFIG)  # (2, 64, 64, 3) and (2, 3, 64, 64)


@pytest.fixture(scope="module")
def ref():
    return reference(CONFIG)


def _port(ref, bug=None):
    port = nnx.eval_shape(lambda: ResNetPort(CONFIG, rngs=nnx.Rngs(0), bug=bug))  # arrays: the copy's
    copied = copy_torch_to_jax(ref, port, rename=RENAME)  # num_batches_tracked: no twin, listed
    assert len(copied.ignored) == 6 and all(key.endswith("num_batches_tracked") for key in copied.ignored)
    return port


@pytest.fixture(scope="module")
def honest(ref):
    return _port(ref)


def test_the_honest_port_passes_both_tiers_with_every_gradient(ref, honest):
    result = check(honest, ref, X, torch_inputs=(X_TORCH,), rename=RENAME)
    assert result.passed, "\n".join(result.failures())
    # channels_first detected from the torch model: its output is NCHW, compared moved channels last
    assert [item.item for item in result.items[:2]] == ["output.last_hidden_state", "output.pooler_output"]
    assert result.items[-1].item == "grads.input"  # NHWC against NCHW, paired through the permutation
    assert len(result.items) == 2 + 18 + 1  # 6 convs, 6 BatchNorms' scale and bias, the input
    assert len(result.ignored) == 6 and not result.notes and not result.unpaired_torch


@pytest.mark.parametrize("bug", BUGS)
def test_each_planted_bug_fails_both_tiers_of_the_output_and_is_noted(ref, bug):
    result = check(_port(ref, bug), ref, X, torch_inputs=(X_TORCH,), rename=RENAME, grads=False)
    output = result.items[0]
    assert not result.passed and output.item == "output.last_hidden_state"
    assert not output.same_function.passed and not output.rounding.passed
    expected = {
        "bn-epsilon": ["stem.bn: epsilon 0.001 in Flax vs eps 1e-05 in PyTorch"],
        "stride-on-wrong-conv": [
            "stages.1.blocks.0.conv2: strides (2, 2) in Flax vs stride (1, 1) in PyTorch"
        ],
        "same-padding": [
            "stages.1.blocks.0.conv1: padding 'SAME' in Flax vs (1, 1) in PyTorch: the same function where "
            "every spatial size is odd (SAME's padding depends on the size); other sizes differ"
        ],
        "kernel-hw-swap": [],  # the kernel's use, not a setting: only the verdict shows it
    }[bug]
    assert all(note in result.notes for note in expected) and (expected or not result.notes)


def test_locate_judges_every_layer_of_the_honest_port_on_the_truth(ref, honest):
    result = locate(honest, ref, X, torch_inputs=(X_TORCH,), rename=RENAME)
    assert result.passed and result.first_failure is None, str(result)
    assert len(result.layers) == 19 and all(layer.inputs == "truth" for layer in result.layers)
    assert {"embedder.pooler", "encoder", "encoder.stages.1.layers.0.layer.0.activation"} <= set(
        result.torch_only
    )  # HF's containers and activation modules: functions or absent in the port


def test_locate_names_the_wrong_epsilon_at_the_first_batchnorm(ref):
    result = locate(_port(ref, "bn-epsilon"), ref, X, torch_inputs=(X_TORCH,), rename=RENAME)
    assert result.first_failure == "embedder.embedder.normalization"


def test_locate_judges_activations_whose_nchw_shape_is_the_nhwc_one_in_the_right_layout(ref, honest):
    """At 32x32 the stem gives (2, 8, 8, 8) in both layouts (C = H = W = 8): the layout is found from the
    values, so every honest row passes and names the channels move."""
    x, x_torch = example_inputs(CONFIG, size=32)
    result = locate(honest, ref, x, torch_inputs=(x_torch,), rename=RENAME)
    assert result.passed and result.first_failure is None and result.not_judged == [], str(result)
    conv = next(
        layer for layer in result.layers if layer.path == "encoder.stages.0.layers.0.layer.0.convolution"
    )
    assert "output: torch (2, 8, 8, 8) -> JAX (2, 8, 8, 8): axes (0, 2, 3, 1)" in conv.layouts
