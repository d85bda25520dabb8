"""Fixed-shape tile products on CPU, each on one BLAS thread, spread over a pool of worker threads.

Calling a multithreaded BLAS matmul once per tile opens and joins one parallel region per tile, and
on shared cores a descheduled BLAS thread stalls every join: at (4096, 1024)→1024, 32 tiles of 128
rows as two-thread ``addmm`` calls took about 4× one plain ``F.linear`` on a loaded machine, the
same tiles as one-thread ``addmm`` calls on two workers about 0.9× (docs/batch-invariance.md). So
here every tile is a one-thread product: on worker threads whose own OpenMP and MKL counts are one
(``torch.get_num_threads()`` workers, each taking the next tile as it frees up), or one after the
other in the calling thread with its count set to one meanwhile. Either way a tile's bits do not
depend on which thread computed it, nor on how many tiles there are.

Shape:
    no shapes of its own; the tasks are the caller's.

>>> each_on_one_thread(lambda i: 10 * i, 3, parallel=True)
[0, 10, 20]
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
_LOCK = threading.Lock()  # one caller at a time changes its thread count or makes a pool
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


@contextlib.contextmanager
def one_blas_thread() -> Iterator[int]:
    """Set torch's intra-op (and its BLAS's) thread count to one; yield the count it had, restore it.

    Shape:
        no tensors.

    >>> with one_blas_thread() as before:
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    with _LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield before
        finally:
            torch.set_num_threads(before)


def plain_cpu(*tensors: torch.Tensor | None) -> bool:
    """Whether these tensors may be computed on worker threads: plain CPU tensors, eager mode.

    Worker threads do not inherit thread-local state beyond what :func:`each_on_one_thread` passes
    (grad and inference mode), so autocast, ``torch.compile`` tracing, ``torch.func`` transforms,
    tensor subclasses and dispatch or function modes keep the tiles in the calling thread.

    Shape:
        any tensors.

    >>> plain_cpu(torch.ones(2), None), plain_cpu(torch.ones(2).to("meta"))
    (True, False)
    """
    present = [t for t in tensors if t is not None]
    functorch = getattr(torch._C, "_functorch", None)
    return (
        all(t.device.type == "cpu" and type(t) in (torch.Tensor, torch.nn.Parameter) for t in present)
        and not any(functorch.is_functorch_wrapped_tensor(t) for t in present if functorch is not None)
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and torch._C._len_torch_dispatch_stack() == 0
        and not torch._C._is_torch_function_mode_enabled()
    )


def each_on_one_thread(task: Callable[[int], T], count: int, parallel: bool) -> Sequence[T]:
    """``[task(0), ..., task(count - 1)]``, every call with one BLAS thread.

    With ``parallel``, the calls run on ``torch.get_num_threads()`` worker threads (in the caller's
    grad and inference mode); otherwise one after the other in the calling thread.

    Shape:
        whatever ``task`` returns, ``count`` of them in order.

    >>> each_on_one_thread(lambda i: torch.get_num_threads() + i, 3, parallel=True)
    [1, 2, 3]
    """
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def in_callers_mode(index: int) -> T:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return task(index)

    workers = torch.get_num_threads()
    if parallel and workers > 1 and count > 1:
        return list(_pool(workers).map(in_callers_mode, range(count)))
    with one_blas_thread():
        return [task(index) for index in range(count)]


def _pool(workers: int) -> ThreadPoolExecutor:
    """One pool per process and size (a forked child must not reuse its parent's dead threads)."""
    key, default = (os.getpid(), workers), torch.get_num_threads()
    with _LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(workers, "torch_ref-tiles", _one_thread_worker, (default,))
        return _POOLS[key]


def _one_thread_worker(default: int) -> None:
    """Make this worker's OpenMP and MKL thread counts one, for good, and leave every other thread's.

    The counts belong to the thread, but ``torch.set_num_threads`` also records the process-wide
    count that a thread adopts on its first parallel op; so this thread adopts it first, then sets
    its own to one, and a short-lived thread sets the process-wide count back to ``default``.
    """
    torch.get_num_threads()  # this thread adopts the process-wide count now, not at a later op
    torch.set_num_threads(1)
    restore = threading.Thread(target=torch.set_num_threads, args=(default,))
    restore.start()
    restore.join()
