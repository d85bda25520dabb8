"""N training steps in one framework and one dtype, from a weights file, on a stream of batches.

JAX: ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` stepped inside ``jax.lax.scan`` under one ``jax.jit``
(split once, ``nnx.merge`` inside the traced step), compiled once per configuration and reused for
every seed. torch: the usual loop, ``zero_grad``, ``backward``, ``step``, then ``scheduler.step()``.
float64 runs load the same file upcast (exact); a float32 JAX run is traced with 64-bit mode off, as
users run it, whatever the process's setting.

Both record the parameters in torch's ``state_dict`` names and layouts (the JAX side through
:func:`crosscheck.weights.torch_state_of_jax`) before the first step and after every ``every`` steps.

torch runs on one thread (restored afterwards): the layers are tiny, so a second thread only adds
synchronization — on this project's 2-core machine, shared with one other busy process, two threads
made each run about 17 times slower — and the trajectory then does not depend on the machine's
thread count.

>>> import tempfile, os
>>> from crosscheck.training.data import SparseTask, batch_indices
>>> from crosscheck.training.models import ModelSpec, torch_model
>>> from crosscheck.training.optimizers import OptimizerConfig
>>> from crosscheck.weights import save_weights
>>> path = os.path.join(tempfile.mkdtemp(), "init.safetensors")
>>> save_weights(torch_model(ModelSpec(), seed=0), path)
>>> data, rows = SparseTask(train=64, test=32).arrays(), batch_indices(64, 16, steps=4, seed=0)
>>> job = Job(ModelSpec(), OptimizerConfig("sgd", steps=4))
>>> a, b = run_jax(job, path, data, rows, "float32"), run_torch(job, path, data, rows, "float32")
>>> a.steps.tolist(), a.params["head.weight"].shape, bool(abs(a.losses - b.losses).max() < 1e-5)
([0, 1, 2, 3, 4], (5, 4, 256), True)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F
from flax import nnx

from crosscheck.training.data import Dataset
from crosscheck.training.models import ModelSpec, jax_model, torch_model
from crosscheck.training.optimizers import OptimizerConfig, optax_transform, torch_optimizer
from crosscheck.training.planted import plant_options
from crosscheck.weights import load_weights, numpy_of_torch, torch_of_numpy, torch_state_of_jax


@dataclass(frozen=True)
class Job:
    """What to train: the model, the optimizer, and the difference planted into the JAX side."""

    model: ModelSpec
    optimizer: OptimizerConfig
    plant: str = "none"


@dataclass
class Run:
    """One training run.

    Shape:
        ``steps (records,)``: the step after which each record was taken (0: the initial weights);
        ``params[key] (records, *torch shape)``; ``losses (steps,)``: each step's batch loss before its
        update, float64.
    """

    framework: str
    dtype: str
    steps: np.ndarray
    params: dict[str, np.ndarray]
    losses: np.ndarray
    accuracy: float
    seconds: float
    compile_seconds: float = 0.0


TORCH_THREADS = 1  # see the module docstring
_COMPILED: dict[tuple, tuple] = {}


def _loss(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def _programs(graphdef):
    """The jitted training scan and test-set prediction for a ``(model, optimizer)`` graph."""

    def step(state, rows, x, y):
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(_loss)(model, x[rows], y[rows])
        optimizer.update(model, grads)
        return nnx.split((model, optimizer))[1], loss

    def train(state, x, y, rows):  # rows (records, every, batch)
        def record(state, chunk):
            state, losses = jax.lax.scan(lambda s, r: step(s, r, x, y), state, chunk)
            return state, (losses, nnx.state(nnx.merge(graphdef, state)[0], nnx.Param))

        return jax.lax.scan(record, state, rows)

    def predict(state, x):
        return jnp.argmax(nnx.merge(graphdef, state)[0](x), axis=-1)

    return jax.jit(train), jax.jit(predict)


def _chunks(rows: np.ndarray, every: int) -> np.ndarray:
    if every < 1 or len(rows) % every:
        raise ValueError(f"record every={every}: must be >= 1 and divide the {len(rows)} steps.")
    return rows.reshape(len(rows) // every, every, rows.shape[-1])


def _torch_layout(model: nnx.Module, stacked) -> dict[str, np.ndarray]:
    """Records of a JAX model's parameters (leading axis: the record) in torch names and layouts."""
    count = len(jax.tree.leaves(stacked)[0])
    frames = []
    for index in range(count):
        nnx.update(model, jax.tree.map(lambda a, i=index: a[i], stacked))
        frames.append(torch_state_of_jax(model))
    return {key: np.stack([frame[key] for frame in frames]) for key in frames[0]}


def run_jax(
    job: Job, weights: str | os.PathLike, data: Dataset, rows: np.ndarray, dtype: str, *, every=1
) -> Run:
    """Train the jaxlin model with optax for ``len(rows)`` steps (see the module docstring).

    Shape:
        ``rows (steps, batch)`` indices into ``data``'s training set; ``steps`` a multiple of ``every``.

    Raises:
        ValueError: ``every`` does not divide the steps.
    """
    chunks = _chunks(rows, every)
    with jax.enable_x64(dtype == "float64"):
        model = jax_model(job.model, dtype)
        load_weights(model, weights, cast=True)
        initial = torch_state_of_jax(model)
        tx = optax_transform(job.optimizer, **plant_options(job.plant, job.optimizer))
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
        graphdef, state = nnx.split((model, optimizer))
        x, y = jnp.asarray(data.x_train, dtype), jnp.asarray(data.y_train)
        key = (job, dtype, chunks.shape, x.shape, str(jax.config.jax_default_matmul_precision))
        compile_seconds, start = 0.0, time.perf_counter()
        if key not in _COMPILED:
            train, predict = _programs(graphdef)
            _COMPILED[key] = (train.lower(state, x, y, chunks).compile(), predict)
            compile_seconds = time.perf_counter() - start
        train, predict = _COMPILED[key]
        state, (losses, stacked) = jax.block_until_ready(train(state, x, y, chunks))
        seconds = time.perf_counter() - start
        labels = np.asarray(predict(state, jnp.asarray(data.x_test, dtype)))
        stacked, losses = jax.device_get((stacked, losses))
        params = _torch_layout(model, stacked)
    params = {key: np.concatenate([initial[key][None], value]) for key, value in params.items()}
    return Run(
        "jax",
        dtype,
        np.arange(len(chunks) + 1) * every,
        params,
        np.asarray(losses, np.float64).reshape(-1),
        float(np.mean(labels == data.y_test)),
        seconds,
        compile_seconds,
    )


def run_torch(
    job: Job, weights: str | os.PathLike, data: Dataset, rows: np.ndarray, dtype: str, *, every=1
) -> Run:
    """Train the torch_ref model with ``torch.optim`` for ``len(rows)`` steps (never planted).

    Shape:
        as :func:`run_jax`.
    """
    _chunks(rows, every)
    threads = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    try:
        return _torch_run(job, weights, data, rows, dtype, every)
    finally:
        torch.set_num_threads(threads)


def _torch_run(job: Job, weights, data: Dataset, rows: np.ndarray, dtype: str, every: int) -> Run:
    model = torch_model(job.model, dtype=dtype)
    load_weights(model, weights, cast=True)
    optimizer, scheduler = torch_optimizer(job.optimizer, model)
    x, y = torch_of_numpy(data.x_train.astype(dtype)), torch.from_numpy(data.y_train)
    snapshot = lambda: {key: numpy_of_torch(t) for key, t in model.state_dict().items()}  # noqa: E731
    records, losses = [snapshot()], []
    start = time.perf_counter()
    for step, batch in enumerate(torch.from_numpy(rows)):
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if (step + 1) % every == 0:
            records.append(snapshot())
    seconds = time.perf_counter() - start
    with torch.no_grad():
        labels = model(torch_of_numpy(data.x_test.astype(dtype))).argmax(-1).numpy()
    params = {key: np.stack([record[key] for record in records]) for key in records[0]}
    steps = np.arange(len(records)) * every
    return Run(
        "torch", dtype, steps, params, np.asarray(losses), float(np.mean(labels == data.y_test)), seconds
    )
