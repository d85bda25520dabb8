"""``python -m crosscheck.demo``: every variant in both frameworks on shared weights.

For each registered case the torch_ref module is initialized, its weights are copied into the
jaxlin module, both run on the same input, and the largest difference between them is printed
in float32 and in float64 (where rounding noise is ~5·10^8 times smaller, so what is left is
different math). ``crosscheck run`` is the full harness; this is the quick look.
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from flax import nnx  # noqa: E402

from crosscheck.cases import Case, all_cases  # noqa: E402
from crosscheck.weights import copy_torch_to_jax  # noqa: E402

DTYPES = {"float32": (jnp.float32, torch.float32), "float64": (jnp.float64, torch.float64)}


def run_case(case: Case, dtype: str, seed: int = 0) -> float:
    """Largest ``|jaxlin - torch_ref|`` over the output of ``case`` in ``dtype``."""
    jax_dtype, torch_dtype = DTYPES[dtype]
    torch.manual_seed(seed)
    torch_module = case.make_torch(torch_dtype)
    jax_module = case.make_jax(nnx.Rngs(seed), jax_dtype)
    copy_torch_to_jax(torch_module, jax_module)
    inputs = case.make_inputs(np.random.default_rng(seed))
    cast = tuple(a.astype(jax_dtype) if a.dtype.kind == "f" else a for a in inputs)
    y_jax = np.asarray(jax_module(*[jnp.asarray(a) for a in cast]))
    with torch.no_grad():
        y_torch = torch_module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in case.torch_inputs(cast)])
    y_torch = y_torch.numpy()
    if case.channels_first:
        y_torch = np.swapaxes(y_torch, -1, -2)
    return float(np.max(np.abs(y_jax.astype(np.float64) - y_torch.astype(np.float64))))


def main() -> int:
    print(f"jax {jax.__version__} · torch {torch.__version__} · backend {jax.default_backend()}")
    print(f"{'case':<40} {'max |Δ| float32':>16} {'max |Δ| float64':>16}")
    worst = 0.0
    for name, case in all_cases().items():
        f32, f64 = run_case(case, "float32"), run_case(case, "float64")
        worst = max(worst, f64)
        print(f"{name:<40} {f32:16.3e} {f64:16.3e}")
    print(f"largest float64 difference: {worst:.3e} (rounding noise only: the same functions)")
    return 0 if worst < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
