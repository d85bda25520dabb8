"""align on the real-architecture examples: it reproduces each example's hand-written RENAME exactly, on
every module that holds weights, with the weights copied and without; the weights it copies are those the
hand-written table copies."""

import importlib

import jax
import numpy as np
import pytest
from flax import nnx

pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")

from crosscheck import align, check, copy_torch_to_jax  # noqa: E402
from crosscheck.weights.tree import renamed, submodules  # noqa: E402

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

EXAMPLES = {"bert_port": "BertEncoderPort", "resnet_port": "ResNetPort", "decoder_port": "DecoderPort",
            "vit_port": None}  # fmt: skip


def _example(name: str):
    try:
        module = importlib.import_module(f"examples.{name}")
    except ImportError:
        pytest.skip(f"examples/{name}.py is not there yet")
    cls = EXAMPLES[name] or next(
        k for k, v in vars(module).items() if k.endswith("Port") and isinstance(v, type)
    )
    config = module.tiny_config()
    if hasattr(module, "example_inputs"):
        ours, theirs = module.example_inputs(config)
        args, sides = (ours,), {"torch_inputs": (theirs,)}
    else:  # BERT: token ids and a mask, the same on both sides
        ids = np.random.default_rng(0).integers(1, config.vocab_size, (2, 16))
        args, sides = (ids, np.ones_like(ids)), {}
    return module, getattr(module, cls), config, args, sides


def _holding_weights(port) -> list[str]:
    return [p for p, m in submodules(port) if any(isinstance(v, nnx.Variable) for v in vars(m).values())]


def _to(path: str, rename) -> str:
    return renamed(path + ".", rename)[:-1] if path else ""


@pytest.fixture(scope="module", params=list(EXAMPLES))
def example(request):
    module, cls, config, args, sides = _example(request.param)
    return module, cls, config, module.reference(config), args, sides


@pytest.mark.parametrize("loaded", [False, True], ids=["fresh", "copied"])
def test_align_reproduces_the_hand_written_rename(example, loaded):
    module, cls, config, reference, args, sides = example
    port = cls(config, rngs=nnx.Rngs(0))
    if loaded:
        copy_torch_to_jax(reference, port, rename=module.RENAME)
    found = align(port, reference, *args, **sides)
    held = _holding_weights(port)
    assert held
    for path in held:
        assert found.mapping.get(path) == _to(path, module.RENAME), (path, str(found))
        assert _to(path, found.rename) == _to(path, module.RENAME), path
    flagged = [row.jax_path for row in found.ambiguous if row.jax_path in held]
    assert not flagged, str(found)  # where it cannot decide, the row would say so: none here
    assert not found.unmatched.jax, str(found)
    if loaded:
        how = {row.jax_path: row.how for row in found.rows}
        assert {how[p] for p in held} <= {"values", "order+kind+shape", "order+shape"}, str(found)


def test_the_rename_found_copies_the_weights_the_hand_written_one_copies(example):
    module, cls, config, reference, args, sides = example
    found = align(cls(config, rngs=nnx.Rngs(0)), reference, *args, **sides)
    by_hand, by_align = cls(config, rngs=nnx.Rngs(1)), cls(config, rngs=nnx.Rngs(2))
    copy_torch_to_jax(reference, by_hand, rename=module.RENAME)
    copy_torch_to_jax(reference, by_align, rename=found.rename)
    same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), nnx.state(by_hand), nnx.state(by_align))
    assert all(jax.tree.leaves(same))


def test_bert_says_how_each_layer_was_paired():
    module, cls, config, args, sides = _example("bert_port")
    reference = module.reference(config)
    port = cls(config, rngs=nnx.Rngs(0))
    found = align(port, reference, *args, **sides)
    how = {row.jax_path: row.how for row in found.rows}
    assert how["encoder.layer.0.attention.self_attention.query"] == "by name"  # q, k, v share their input
    assert how["encoder.layer.1.output.LayerNorm"] == "order+kind+shape"
    assert how["encoder.layer.0.attention.self_attention"] == "inferred from children"
    assert found.rename == [
        (r"^encoder\.layer\.(\d+)\.attention\.self_attention\.", r"encoder.layer.\1.attention.self.")
    ]
    copy_torch_to_jax(reference, port, rename=found.rename)
    assert check(port, reference, *args, rename=found.rename).passed
