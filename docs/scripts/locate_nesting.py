"""How much work locate's design asks for beyond one model's: every matched layer runs alone on its own
input, so a layer inside three containers is computed four times. The *nesting factor* is the sum, over
the rows locate judges, of each row's parameters outside embedding tables (a lookup computes next to
nothing; a forward-only row counted at a third: a forward is about a third of a forward+backward), over
the model's own — a row's multiply-adds are its parameters' times the tokens — the multiple of the unavoidable
work (one forward+backward of the model per dtype and framework) that locate's runs alone cost, before
any overhead; analytic rows (``nn.Linear``) add a third float64 evaluation (their magnitudes) on the JAX
side.

    PYTHONPATH=. python docs/scripts/locate_nesting.py bert-small decoder-small bert-base decoder-medium

Prints one line per size: rows, rows with gradients, the nesting factor and the analytic rows' share.
"""

from __future__ import annotations

import sys

import torch

from benchmarks.sizes import SIZES
from crosscheck import locate


def _computing(module: torch.nn.Module) -> int:
    """Parameters outside embedding tables (tied ones once)."""
    tables = {id(p) for m in module.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in tables)


def nesting(size_name: str) -> dict:
    """Run ``locate(grads=True)`` at a named size and weigh its rows by parameters."""
    port, reference, inputs, torch_inputs, rename = SIZES[size_name].build()
    result = locate(port, reference, *inputs, torch_inputs=torch_inputs, rename=rename, grads=True,
                    progress=False)  # fmt: skip
    modules = dict(reference.named_modules())
    total = _computing(reference)
    weighted = analytic = 0.0
    with_grads = 0
    for layer in result.layers:
        count = _computing(modules[layer.path])
        gradients = any(item.item.startswith("grads.") for item in layer.items)
        with_grads += gradients
        weighted += count if gradients else count / 3
        if isinstance(modules[layer.path], torch.nn.Linear) and gradients:
            analytic += count
    return {"size": size_name, "rows": len(result.layers), "with_grads": with_grads,
            "nesting": weighted / total, "analytic": analytic / total}  # fmt: skip


if __name__ == "__main__":
    for name in sys.argv[1:] or ["bert-small", "decoder-small"]:
        row = nesting(name)
        print(f"{row['size']}: {row['rows']} rows, {row['with_grads']} with gradients, nesting factor "
              f"{row['nesting']:.2f}, analytic rows {row['analytic']:.2f} of the model")  # fmt: skip
