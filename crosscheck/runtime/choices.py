"""crosscheck's vocabulary and defaults, free of any framework import so that the command line
can offer them (and ``--help`` can print them) without loading JAX or PyTorch."""

DTYPES = ("float32", "bfloat16", "float64")
DEFAULT_DTYPES = ("float32", "bfloat16")
PRECISIONS = ("pinned", "default")
DEVICES = ("auto", "cpu", "gpu", "tpu")
PROBE_MODES = ("jax.jit", "eager", "torch")
RUN_PROBES = ("linear", "batch-invariant-linear")  # probed in `crosscheck run`; every module in `batch-probe`
TIMED_ROUNDS = 10  # rounds of timed calls per case in `crosscheck run`
DEFAULT_MAX_BATCH = 256  # the batch-size probe's largest batch
DEFAULT_REPEATS = 5  # the batch-size probe's calls of the largest batch (determinism)
