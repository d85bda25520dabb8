"""The Wav2Vec2 classification head out of a whole save_pretrained checkpoint into jaxlin.PooledHead,
judged against Hugging Face's own head code on the same hidden states."""

import numpy as np
import pytest
from flax import nnx

pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

import jaxlin  # noqa: E402
from crosscheck import load_weights  # noqa: E402
from examples.speech_head import hf_head_run, jaxlin_head, judge, tiny_classifier  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = tiny_classifier()
    directory = tmp_path_factory.mktemp("wav2vec2")
    model.save_pretrained(directory)
    return model, directory / "model.safetensors"


def test_the_head_loads_from_the_whole_checkpoint_and_matches_hugging_faces_own_head(checkpoint):
    model, path = checkpoint
    head = jaxlin_head(model)
    loaded = load_weights(head, path, strict=False)
    assert loaded.ignored and all(key.startswith("wav2vec2.") for key in loaded.ignored)
    run = hf_head_run(model, np.random.default_rng(0).standard_normal((3, 4000)), [4000, 2500, 1000])
    assert run.mask.sum(axis=1).tolist()[0] > run.mask.sum(axis=1).tolist()[2] > 0  # padded frames are masked
    item = judge(head, run)
    assert item.passed, item.rounding.message("logits") + "\n" + item.same_function.message("logits")


def test_one_layer_of_it_loads_with_a_prefix(checkpoint):
    model, path = checkpoint
    classifier = jaxlin.Linear(model.config.classifier_proj_size, model.config.num_labels, rngs=nnx.Rngs(0))
    load_weights(classifier, path, prefix="classifier.", strict=False)
    assert np.array_equal(np.asarray(classifier.kernel[...]), model.classifier.weight.detach().numpy().T)
