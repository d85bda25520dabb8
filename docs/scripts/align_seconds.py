"""Wall seconds of ``crosscheck.align`` on each real-architecture example (tiny random configs): the first
call in the process (JAX's eager operations compile then) and the median of 5 more, for a fresh port and
for one whose weights were copied first; then BERT at 12 layers and the decoder at 32, to see how it grows.

Run: ``PYTHONPATH=. python docs/scripts/align_seconds.py``
"""

import dataclasses
import importlib
import statistics
import time

from flax import nnx

from crosscheck import align, copy_torch_to_jax

EXAMPLES = [("bert_port", "BertEncoderPort"), ("resnet_port", "ResNetPort"), ("vit_port", None),
            ("decoder_port", "DecoderPort")]  # fmt: skip


def _inputs(module, config):
    if hasattr(module, "example_inputs"):
        ours, theirs = module.example_inputs(config)
        return (ours,), {"torch_inputs": (theirs,)}
    import numpy as np

    ids = np.random.default_rng(0).integers(1, config.vocab_size, (2, 16))
    return (ids, np.ones_like(ids)), {}


def _port_class(module, name):
    if name is not None:
        return getattr(module, name)
    return next(v for k, v in vars(module).items() if k.endswith("Port") and isinstance(v, type))


def seconds(module, cls, config, loaded: bool) -> tuple[float, float, int]:
    reference = module.reference(config)
    port = cls(config, rngs=nnx.Rngs(0))
    if loaded:
        copy_torch_to_jax(reference, port, rename=module.RENAME)
    args, sides = _inputs(module, config)
    start = time.perf_counter()
    found = align(port, reference, *args, **sides)
    first = time.perf_counter() - start
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        align(port, reference, *args, **sides)
        runs.append(time.perf_counter() - start)
    return first, statistics.median(runs), len(found.rows)


def main():
    print("| example | weights | rows | first call (s) | median of 5 (s) |\n|---|---|---|---|---|")
    for name, cls_name in EXAMPLES:
        try:
            module = importlib.import_module(f"examples.{name}")
        except ImportError:
            continue
        cls, config = _port_class(module, cls_name), module.tiny_config()
        for loaded in (False, True):
            first, median, rows = seconds(module, cls, config, loaded)
            print(f"| {name} | {'copied' if loaded else 'fresh'} | {rows} | {first:.2f} | {median:.2f} |")
    module = importlib.import_module("examples.bert_port")
    config = dataclasses.replace(module.tiny_config(), num_hidden_layers=12)
    first, median, rows = seconds(module, module.BertEncoderPort, config, False)
    print(f"| bert_port, 12 layers | fresh | {rows} | {first:.2f} | {median:.2f} |")
    module = importlib.import_module("examples.decoder_port")
    config = dataclasses.replace(module.tiny_config(), num_hidden_layers=32)
    first, median, rows = seconds(module, module.DecoderPort, config, False)
    print(f"| decoder_port, 32 layers | fresh | {rows} | {first:.2f} | {median:.2f} |")


if __name__ == "__main__":
    main()
