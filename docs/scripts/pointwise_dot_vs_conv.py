import time, jax, jax.numpy as jnp, numpy as np
from flax import nnx
import jaxlin
for shape, out in [((128, 8, 256), 32), ((64, 1024, 256), 256)]:
    x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
    res = {}
    for impl in ("dot", "conv"):
        m = jaxlin.PointwiseConv(shape[-1], out, impl=impl, rngs=nnx.Rngs(0))
        g, s = nnx.split(m)
        f = jax.jit(lambda s, x: nnx.merge(g, s)(x))
        f(s, x).block_until_ready()
        ts = []
        for _ in range(30):
            t = time.perf_counter(); f(s, x).block_until_ready(); ts.append(time.perf_counter() - t)
        res[impl] = np.median(ts) * 1e3
    print(shape, "->", out, {k: f"{v:.3f} ms" for k, v in res.items()}, f"conv/dot = {res['conv']/res['dot']:.2f}")
