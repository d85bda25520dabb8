"""Every planted bug of the three real ports (ResNet, ViT, Llama-style decoder; issue 20 item 6): `check`
fails, in the tier stated, and `locate(...).first_failure` is exactly the torch path of the module where
the bug was planted (a layer's configuration: that layer; a module's own code: that module). Each bug is
planted in an otherwise honest port whose weights are copied from the reference."""

import functools
import importlib

import pytest
from flax import nnx

pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")

from crosscheck import check, copy_torch_to_jax, locate  # noqa: E402

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

PORTS = {"resnet": ("resnet_port", "ResNetPort"), "vit": ("vit_port", "ViTPort"),
         "decoder": ("decoder_port", "DecoderPort")}  # fmt: skip
SMALL = {"resnet": {"batch": 1, "size": 48}, "vit": {"batch": 1}, "decoder": {"batch": 1, "seq": 8}}

BOTH, SAME_FUNCTION = "both tiers", "same function only"

# (example, bug, the tier check fails, the torch path of the module where the bug is planted)
CASES = [
    ("resnet", "bn-epsilon", BOTH, "embedder.embedder.normalization"),  # every BatchNorm: the stem's first
    ("resnet", "stride-on-wrong-conv", BOTH, "encoder.stages.1.layers.0.layer.0.convolution"),  # conv1's
    ("resnet", "same-padding", BOTH, "encoder.stages.1.layers.0.layer.0.convolution"),  # the stride-2 conv1
    ("resnet", "kernel-hw-swap", BOTH, "encoder.stages.0.layers.0.layer.1.convolution"),  # every conv2
    ("vit", "tanh-gelu", SAME_FUNCTION, "layers.0.mlp"),  # the activation: a function in the MLP's code
    ("vit", "cls-token-after-position", BOTH, "embeddings"),
    ("decoder", "rotary-half-swap", BOTH, "layers.0.self_attn"),  # the attention's own code
    ("decoder", "gqa-repeat-order", BOTH, "layers.0.self_attn"),
    ("decoder", "rmsnorm-one-plus", BOTH, "layers.0.input_layernorm"),  # every RMSNorm: the first
    ("decoder", "softmax-scale-over-d", BOTH, "layers.0.self_attn"),
]


def _id(case) -> str:
    return f"{case[0]}-{case[1]}"


@functools.cache
def _module(example: str):
    return importlib.import_module(f"examples.{PORTS[example][0]}")


@pytest.fixture(scope="module")
def references():
    """One reference and one input pair per example, built on first use and shared by its bugs."""
    built = {}

    def get(example: str):
        if example not in built:
            module = _module(example)
            config = module.tiny_config()
            built[example] = (module.reference(config), *module.example_inputs(config, **SMALL[example]))
        return built[example]

    return get


def _planted(references, example: str, bug: str):
    module = _module(example)
    ref, x, x_torch = references(example)
    port_class = getattr(module, PORTS[example][1])
    port = nnx.eval_shape(
        lambda: port_class(module.tiny_config(), rngs=nnx.Rngs(0), bug=bug)
    )  # the copy's arrays
    copy_torch_to_jax(ref, port, rename=module.RENAME)
    return port, ref, x, x_torch, module.RENAME


def test_every_planted_bug_is_listed_here():
    listed = {(_id(case)) for case in CASES}
    assert listed == {f"{example}-{bug}" for example in PORTS for bug in _module(example).BUGS}


@pytest.mark.parametrize(("example", "bug", "tier", "planted"), CASES, ids=[_id(case) for case in CASES])
def test_check_fails_and_locate_names_the_planted_module(references, example, bug, tier, planted):
    port, ref, x, x_torch, rename = _planted(references, example, bug)
    checked = check(port, ref, x, torch_inputs=(x_torch,), rename=rename, grads=False)
    output = checked.items[0]
    assert not checked.passed and output.item.startswith("output")
    assert not output.same_function.passed  # the float64 tier sees every bug
    assert output.rounding.passed == (tier == SAME_FUNCTION)  # the tanh GELU hides in float32 rounding
    located = locate(port, ref, x, torch_inputs=(x_torch,), rename=rename)
    assert not located.passed
    assert located.first_failure == planted, str(located)


def test_the_moved_stride_fails_at_conv1_for_its_shape_and_the_next_rows_say_why(references):
    """The moved stride: conv1, given the truth's input, returns 4x the values torch's returns (stride 1
    for 2): no layout makes those one, so the row fails and names both shapes; the BatchNorm after it cannot
    take the truth's input and is not judged; conv2 is judged on its own input and fails too."""
    port, ref, x, x_torch, rename = _planted(references, "resnet", "stride-on-wrong-conv")
    located = locate(port, ref, x, torch_inputs=(x_torch,), rename=rename)
    rows = {layer.path: layer for layer in located.layers}
    conv1 = rows["encoder.stages.1.layers.0.layer.0.convolution"]
    assert conv1.judged and not conv1.passed and conv1.inputs == "truth" and conv1.error is None
    assert "(1, 12, 12, 16) in JAX, (1, 16, 6, 6) in torch from the same input" in conv1.failure
    assert "FAIL: output has shape" in str(located)
    norm = rows["encoder.stages.1.layers.0.layer.0.normalization"]
    assert norm.error is not None and norm.inputs == "own" and not norm.judged
    conv2 = rows["encoder.stages.1.layers.0.layer.1.convolution"]
    assert conv2.error is None and not conv2.passed and conv2.inputs == "own"
    assert located.first_failure == "encoder.stages.1.layers.0.layer.0.convolution"
