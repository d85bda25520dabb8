"""The locate() tables of docs/porting.md: the BERT port honest, then with each planted bug.

Usage: PYTHONPATH=. python docs/scripts/porting_tables.py   (needs the hf extra: pip install -e '.[hf]')

Prints Markdown: for each run the first failure and the table of every layer present in both models.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
from flax import nnx

import jaxlin
from crosscheck import check, copy_torch_to_jax, locate
from crosscheck.porting.locating import HEADERS
from crosscheck.reporting.tables import markdown_table
from examples.bert_port import RENAME, BertEncoderPort, reference, tiny_config

CONFIG = tiny_config()
IDS = np.random.default_rng(0).integers(0, CONFIG.vocab_size, (2, 16))
IDS[1, -3:] = CONFIG.pad_token_id
MASK = (IDS != CONFIG.pad_token_id).astype(np.int64)


class Transposed(jaxlin.Linear):
    def __call__(self, x):
        return x @ self.kernel[...].T + self.bias[...][None, None]


def tanh_gelu(port):
    port.encoder.layer[1].intermediate.activation = partial(jax.nn.gelu, approximate=True)


def transposed_query(port):
    query = port.encoder.layer[0].attention.self_attention.query
    planted = Transposed(query.in_features, query.out_features, rngs=nnx.Rngs(0))
    planted.kernel[...], planted.bias[...] = query.kernel[...], query.bias[...]
    port.encoder.layer[0].attention.self_attention.query = planted


def wrong_epsilon(port):
    port.encoder.layer[0].output.LayerNorm.epsilon = 1e-5


RUNS = (
    ("honest port", None),
    ("tanh GELU in layer 1's feed-forward", tanh_gelu),
    ("transposed query projection in layer 0", transposed_query),
    ("LayerNorm epsilon 1e-5 instead of 1e-12 in layer 0's output", wrong_epsilon),
)


def main() -> None:
    hf = reference(CONFIG)
    for title, plant in RUNS:
        port = BertEncoderPort(CONFIG, rngs=nnx.Rngs(0))
        copy_torch_to_jax(hf, port, rename=RENAME)
        if plant is not None:
            plant(port)
        result = locate(port, hf, IDS, MASK, rename=RENAME)
        first = "none" if result.first_failure is None else result.first_failure or "(model)"
        print(f"### {title}\n\nfirst_failure: `{first}`\n")
        print("\n".join(markdown_table(HEADERS, result.rows())))
        print(f"\nOnly in torch (judged inside their parents): {', '.join(result.torch_only)}\n")
    port = BertEncoderPort(CONFIG, rngs=nnx.Rngs(0))
    copy_torch_to_jax(hf, port, rename=RENAME)
    whole = check(port, hf, IDS, MASK, rename=RENAME)
    worst = max(item.rounding.metrics["cross_bound_ratio"] for item in whole.items)
    same = max(item.same_function.metrics["actual_bound_ratio"] for item in whole.items)
    print("### check() of the whole honest port, with gradients\n")
    print(
        f"passed: {whole.passed}; {len(whole.items)} items; worst same-function ratio {same:.2g}, "
        f"worst rounding ratio {worst:.2g}; notes: {whole.notes}"
    )


if __name__ == "__main__":
    main()
