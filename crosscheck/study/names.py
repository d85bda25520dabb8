"""The names of the study's studies and implementations: one constant each, used by the
configurations that measure them and by the targets that read them, so a rename cannot turn a
target into "not measured" (a test checks that every target names implementations the plan builds).
"""

BF16_PER_HEAD, BF16_LINEAR = "bf16-per-head", "bf16-linear"
PEAK, BANDWIDTH, PER_HEAD, BLOCK, POINTWISE, POOLED, INVARIANT, CALL_PATH, BIAS, SHARDED, LINEAR_ROWS = (
    "peak",
    "bandwidth",
    "per-head",
    "block",
    "pointwise",
    "pooled",
    "invariant",
    "call-path",
    "bias",
    "sharded",
    "linear-rows",
)

# per-head
JAXLIN_AUTO = "jaxlin auto (the default)"
JAXLIN_EINSUM, JAXLIN_VMAP, JAXLIN_LOOP = "jaxlin einsum", "jaxlin vmap", "jaxlin loop"
JAXLIN_HEADS_FIRST = "jaxlin einsum, heads-first input (head_axis=0)"
JAX_VMAP = "jax.vmap (pure function)"
EINSUM_NAIVE = "einsum ...hi,hio->...ho"
EINSUM_KERNEL_FIRST = "einsum hio,...hi->...ho"
EINSUM_HEADS_MAJOR = "einsum heads-major hri,hio->hro"
NNX_VMAP_STACK = "nnx.vmap stack (nnx.jit)"
TORCH_REF_BMM, TORCH_REF_VMAP, TORCH_REF_LOOP = "torch_ref bmm", "torch_ref vmap", "torch_ref loop"
TORCH_REF_BMM_HEADS_FIRST = "torch_ref bmm, heads-first input (head_axis=0)"
TORCH_COMPILE_BMM = "torch.compile(torch_ref bmm)"
# kernel parity: each framework's plain batched GEMM of the per-head row's shape, no bias, heads-major
JAX_BMM = "jax batched GEMM jnp.matmul (heads, rows, in) @ (heads, in, out), kernel parity"
TORCH_BMM = "torch.bmm (heads, rows, in) @ (heads, in, out), kernel parity"

# block: Linear(size, heads·size) -> split heads -> PerHeadLinear(heads, size, size)
JAXLIN_BLOCK = "jaxlin block (jaxlin.jitted, the defaults)"
JAXLIN_BLOCK_IMPL = {
    impl: f"jaxlin block, PerHeadLinear impl={impl}" for impl in ("einsum", "loop", "heads_major")
}
TORCH_BLOCK, TORCH_COMPILE_BLOCK = "torch_ref block (eager)", "torch.compile(torch_ref block)"
# kernel parity: the block's two GEMMs alone (projection, then a batched GEMM on its output read
# heads-major as it lies: no copy, no bias)
JAX_BLOCK_GEMMS = "jax GEMM then batched GEMM, no copy, kernel parity"
TORCH_BLOCK_GEMMS = "torch.mm then torch.bmm, no copy, kernel parity"
FLOAT32_GEMMS = frozenset({JAX_BMM, TORCH_BMM, JAX_BLOCK_GEMMS, TORCH_BLOCK_GEMMS})
"""The plain float32 GEMMs of the kernel-parity rows: evidence of the compute peak, as the peak shapes are."""

# bfloat16 (crosscheck.study.bfloat16): jaxlin's default against torch_ref's, a float32 reference first
JAXLIN_PER_HEAD_F32_REF = "jaxlin PerHeadLinear float32 (the check’s reference)"
JAXLIN_PER_HEAD_BF16 = "jaxlin PerHeadLinear auto (the default), bfloat16"
TORCH_REF_PER_HEAD_BF16 = {impl: f"torch_ref PerHeadLinear {impl}, bfloat16" for impl in ("bmm", "vmap")}
JAX_BMM_BF16 = "jax batched GEMM jnp.matmul, bfloat16, kernel parity"
TORCH_BMM_BF16 = "torch.bmm, bfloat16, kernel parity"
JAXLIN_LINEAR_F32_REF = "jaxlin Linear float32 (the check’s reference)"
JAXLIN_LINEAR_BF16 = "jaxlin Linear auto (the default), bfloat16"
TORCH_REF_LINEAR_BF16 = "torch_ref Linear, bfloat16"
JAX_MM_BF16 = "jax GEMM jnp.matmul, bfloat16, kernel parity"
TORCH_MM_BF16 = "torch.mm, bfloat16, kernel parity"
FLOAT32_REFERENCE = frozenset({JAXLIN_PER_HEAD_F32_REF, JAXLIN_LINEAR_F32_REF})
"""The float32 layers the bfloat16 rows are checked against (their inputs stay float32)."""

KERNEL_PARITY = {
    PER_HEAD: {"jax": JAX_BMM, "torch": TORCH_BMM},
    BLOCK: {"jax": JAX_BLOCK_GEMMS, "torch": TORCH_BLOCK_GEMMS},
    BF16_PER_HEAD: {"jax": JAX_BMM_BF16, "torch": TORCH_BMM_BF16},
    BF16_LINEAR: {"jax": JAX_MM_BF16, "torch": TORCH_MM_BF16},
}
"""Per study, each framework's plain GEMM of the row's shape: their ratio is the row's kernel parity."""
PARITY_IMPLS = frozenset(name for both in KERNEL_PARITY.values() for name in both.values())

# pointwise
JAXLIN_LINEAR = "jaxlin Linear"
JAXLIN_POINTWISE = {
    "auto": "jaxlin PointwiseConv auto (the default)",
    "matmul": "jaxlin PointwiseConv matmul",
    "conv": "jaxlin PointwiseConv conv",
}
TORCH_LINEAR_CHANNELS_LAST = "torch nn.Linear (channels last)"
TORCH_LINEAR_CHANNELS_FIRST = "torch nn.Linear on channels first (transpose, linear, transpose)"
TORCH_REF_POINTWISE = {"matmul": "torch_ref PointwiseConv matmul", "conv": "torch_ref PointwiseConv conv"}
TORCH_CONV1D = "torch nn.Conv1d"

# pooled
JAXLIN_REORDER = {True: "jaxlin reorder=True", False: "jaxlin reorder=False"}
TORCH_REF_REORDER = {True: "torch_ref reorder=True", False: "torch_ref reorder=False"}

# invariant
JAXLIN_INVARIANT, TORCH_INVARIANT = "jaxlin BatchInvariantLinear", "torch BatchInvariantLinear"
TORCH_LINEAR = "torch Linear"

# call-path
RAW_JIT = "raw jax.jit pure function"
RECOMMENDED = "jax.jit over nnx.split state (recommended)"
NNX_JIT, EAGER = "nnx.jit", "eager module call"

# bias
JAXLIN_BIAS = {True: "jaxlin Linear use_bias=True", False: "jaxlin Linear use_bias=False"}
TORCH_BIAS = {True: "torch nn.Linear bias=True", False: "torch nn.Linear bias=False"}

# peak and bandwidth
JAX_MATMUL, TORCH_MM = "jax matmul", "torch mm"
JAX_SUM, TORCH_SUM = "jax sum", "torch sum"
JAX_ADD_ONE, TORCH_ADD_ONE = "jax x + 1 (read and write)", "torch x + 1 (read and write)"
JAX_MEAN = "jnp.mean over the sequence (the bare mean, for scale)"


# sharded


def sharded_per_head(devices: int) -> str:
    """The heads-sharded PerHeadLinear over ``devices`` devices."""
    return f"jaxlin PerHeadLinear heads-sharded over {devices} device{'s' if devices > 1 else ''}"
