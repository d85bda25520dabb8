"""Time jaxlin.PointwiseConv impl="dot" vs impl="conv" along jax.jit over nnx.split state."""

import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlin

for shape, out in [((128, 8, 256), 32), ((64, 1024, 256), 256)]:
    x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
    res = {}
    for impl in ("dot", "conv"):
        graphdef, state = nnx.split(jaxlin.PointwiseConv(shape[-1], out, impl=impl, rngs=nnx.Rngs(0)))
        forward = jax.jit(lambda s, x, g=graphdef: nnx.merge(g, s)(x))
        forward(state, x).block_until_ready()
        times = []
        for _ in range(30):
            start = time.perf_counter()
            forward(state, x).block_until_ready()
            times.append(time.perf_counter() - start)
        res[impl] = np.median(times) * 1e3
    ratio = res["conv"] / res["dot"]
    print(shape, "->", out, {k: f"{v:.3f} ms" for k, v in res.items()}, f"conv/dot = {ratio:.2f}")
