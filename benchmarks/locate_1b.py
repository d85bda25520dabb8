"""The whole process's peak memory and the job's wall time of one ``locate``/``check`` with gradients on a
Llama-style decoder of a given shape: issue 21's goal 1 at Llama-3.2-1B's shape.

    PYTHONPATH=. python benchmarks/locate_1b.py locate 2048 16 128256 8192     # 1.24 B, locate --grads
    PYTHONPATH=. python benchmarks/locate_1b.py check 2048 16 128256 8192      # check --grads
    PYTHONPATH=. python benchmarks/locate_1b.py forward 2048 16 128256 8192    # check without gradients

Arguments: the job (``locate``: ``locate(grads=True)``; ``check``: ``check(grads=True)``; anything else:
``check(grads=False)``), hidden size, layers, vocabulary, intermediate size. Heads: hidden / 64 query heads
(head_dim 64), hidden / 256 key/value heads; with 2048 16 128256 8192 that is Llama-3.2-1B's shape and
parameter count (1.24 B, 4.94 GB in float32), though with ``examples.decoder_port.Config``'s default RMSNorm
epsilon (1e-6) and rotary theta (10000), not the real model's (1e-5, 500000): the same memory and work.

How it differs from ``python -m benchmarks.scale --sizes decoder-1b --jobs locate-grads``: the peak here is
the **whole process's**, ``VmRSS`` sampled every 0.2 s by a thread from the process start, so it includes
building both models (torch reference, then the port) and ``copy_torch_to_jax``; scale.py's peak is
``VmHWM`` reset after the build. The wall time is the job alone (from after the copy to its return). No
unavoidable work follows (at 1 B its float64 pass alone needs ~20 GB). A sample every 0.2 s can miss a
shorter spike: the peak is a lower bound, within what 0.2 s of allocation can add.

The last line: ``JOB params …M weights … GB peak … GB ratio … wall …s (passed, first_failure, not judged)``
(for ``check``: ``passed``); ``locate`` also prints each row's progress with the resident memory then.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np


def rss() -> float:
    """Resident memory now, GB (``VmRSS``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1e6
    return 0.0


peak = [0.0]


def sampler() -> None:
    """Keep ``peak[0]`` at the most resident seen, sampled every 0.2 s."""
    while True:
        peak[0] = max(peak[0], rss())
        time.sleep(0.2)


def main(argv: list[str]) -> None:
    threading.Thread(target=sampler, daemon=True).start()  # before the heavy imports: the whole process
    from flax import nnx

    from crosscheck import check, copy_torch_to_jax, locate
    from examples.decoder_port import RENAME, Config, DecoderPort, reference

    job, hidden, layers, vocab, inter = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    cfg = Config(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=hidden // 64, num_key_value_heads=max(1, hidden // 256),
    )  # fmt: skip
    ref = reference(cfg)
    print("ref built", rss(), flush=True)
    port = DecoderPort(cfg, rngs=nnx.Rngs(0))
    print("port built", rss(), peak[0], flush=True)
    copy_torch_to_jax(ref, port, rename=RENAME)
    print("copied", rss(), peak[0], flush=True)
    n = sum(p.numel() for p in ref.parameters())
    ids = np.random.default_rng(0).integers(0, vocab, (1, 16)).astype(np.int32)
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - start
        print(f"  row {done}/{total} rss {rss():.2f} peak {peak[0]:.2f} t {elapsed:.0f}", flush=True)

    if job == "locate":
        result = locate(port, ref, ids, rename=RENAME, grads=True, progress=progress)
        ok = (result.passed, result.first_failure, len(result.not_judged))
    elif job == "check":
        ok = check(port, ref, ids, rename=RENAME, grads=True).passed
    else:
        ok = check(port, ref, ids, rename=RENAME, grads=False).passed
    wall = time.perf_counter() - start
    weights = n * 4 / 1e9
    print(
        f"{job} params {n / 1e6:.1f}M weights {weights:.2f} GB peak {peak[0]:.2f} GB "
        f"ratio {peak[0] / weights:.1f} wall {wall:.1f}s {ok}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
