"""``check``: any JAX module against any torch module that holds the same weights, in two tiers.

For the output and every gradient (each parameter and the input):

- **same function** — both modules in float64 (parameters and inputs upcast exactly) must agree
  within what float64 rounding allows. Rounding noise there is ~5·10^8 times smaller than in
  float32, so a larger difference is different math, however small it looks in float32.
- **acceptable rounding** — in the working dtype, each framework's error against the float64
  truth (the torch module in float64) must be within its allowance.

Which allowance is the module's rule (:mod:`crosscheck.porting.verdicts`): the analytic bound for
jaxlin's layers and ``nnx.Linear`` (magnitudes from :func:`crosscheck.porting.magnitudes.magnitudes`,
reduction lengths from :func:`reduction_lengths`), the relative rule for anything else. NaN and inf
never pass unless ``equal_nan=True`` and every side, the truth included, has them at the same places.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
import torch
from flax import nnx

from crosscheck.porting.channels import Channels, channels_first_of
from crosscheck.porting.check_parts import (
    PreparedCheck,
    absolute_keywords,
    channels_of,
    drawn_cotangents,
    output_shapes,
)
from crosscheck.porting.evaluate import evaluate_torch, split_keywords
from crosscheck.porting.finishing import TorchRuns, finish_check, run_torch
from crosscheck.porting.fused import Request, evaluate_all
from crosscheck.porting.magnitudes import absolute, float64_view
from crosscheck.porting.model_pair import (
    chosen_gradients,
    differentiated_names,
    differentiated_paths,
    gradient_keys,
    require_models,
    require_same_weights,
    working_dtype,
)
from crosscheck.porting.modes import inference_mode
from crosscheck.porting.outputs import (
    is_floating_array,
    pair_paths,
)
from crosscheck.porting.progress import Report, layer_progress
from crosscheck.porting.reductions import reduction_lengths
from crosscheck.porting.sides import input_axes, side
from crosscheck.porting.streaming import fits_beside, is_large, memory_is_short, release_freed_memory
from crosscheck.porting.verdicts import (
    CaseResult,
    has_analytic_bound,
)
from crosscheck.weights.selection import Ignore, torch_part
from crosscheck.weights.tree import Rename, torch_twin

__all__ = ["check", "channels_first_of", "reduction_lengths", "require_same_weights", "working_dtype"]


def prepare_check(
    jax_module: nnx.Module,
    torch_module,
    *inputs,
    grads: bool = True,
    rename: Rename = None,
    channels_first: bool | str | Channels | None = None,
    equal_nan: bool = False,
    name: str = "",
    seed: int = 0,
    place=None,
    torch_inputs: tuple | None = None,
    jax_kwargs: dict | None = None,
    torch_kwargs: dict | None = None,
    strict: bool = True,
    prefix: str = "",
    ignore: Ignore = None,
    grads_of: Collection[str] | None = None,
) -> PreparedCheck:
    """The first half of :func:`check` (same arguments): weights checked to map and to hold the same
    values, inputs cast, the cotangents drawn and the JAX evaluations listed, to run alone or with other
    checks' (:func:`crosscheck.porting.fused.evaluate_all`). ``torch_module`` is the part already taken
    at ``prefix`` (:func:`check` takes it).

    Raises:
        TypeError: the arguments are not a Flax NNX module and a torch module, in that order; or the
        output holds something that is not an array.
        WeightsError: the two modules' weights do not map onto each other.
        ModelCallError: a model raised on the inputs.
    """
    require_models(jax_module, torch_module, "check")
    keys = {"prefix": prefix, "strict": strict, "ignore": ignore}
    match = require_same_weights(jax_module, torch_module, rename=rename, **keys)
    channels_first = channels_of(channels_first, torch_module, torch_inputs)
    dtype = working_dtype(jax_module, inputs)
    jax_side = side(inputs, jax_kwargs, dtype)
    split_keywords(jax_side.kwargs_work)  # a keyword the program cannot take: said before anything runs
    torch_side = side(inputs if torch_inputs is None else torch_inputs, torch_kwargs, dtype)
    axes = (
        tuple(range(np.ndim(inputs[0]))) if torch_inputs is None else input_axes(inputs[0], torch_inputs[0])
    )
    work_inputs, truth_inputs = jax_side.work, jax_side.truth
    title = name or f"{type(jax_module).__name__} vs {type(torch_module).__name__}"
    analytic = has_analytic_bound(jax_module)
    result = CaseResult(title, str(dtype), notes=match.notes, ignored=match.ignored,
                        differing_weights=match.differing, missing=match.missing)  # fmt: skip
    # a working run is in 64-bit mode as the port runs alone: where the user enabled it, or float64 work
    work_x64 = bool(jax.config.jax_enable_x64) or np.dtype(dtype) == np.float64
    with jax.enable_x64(work_x64):
        order, shapes = output_shapes(jax_module, work_inputs, jax_side.kwargs_work)
    pairs = None
    if len(order) > 1:
        with torch.no_grad():
            torch_paths = list(evaluate_torch(torch_module, torch_side.work, None, grads=False,
                                              channels_first=channels_first,
                                              kwargs=torch_side.kwargs_work).outputs)  # fmt: skip
        pairs, result.unpaired_jax, result.unpaired_torch = pair_paths(order, torch_paths)
    floating = [path for path in order if is_floating_array(shapes[path])]
    paired = floating if pairs is None else [j for j, _ in pairs if j in floating]
    drawn = paired[: 1 if pairs is None else None]
    cotangents = drawn_cotangents(seed, {path: shapes[path] for path in drawn})
    keys = select = torch_grads = None
    if grads and not cotangents:
        result.notes.append("no floating output: gradients not compared")
        grads = False
    if grads:
        keys = gradient_keys(jax_module, torch_module, rename, match.paired)
        if grads_of is not None:
            keys = chosen_gradients(keys, grads_of, torch_module, title)
            select, torch_grads = differentiated_paths(jax_module, keys, rename), differentiated_names(keys)
        result.frozen, result.tied = keys.frozen, keys.tied
    run = {"grads": grads, "rename": rename, "place": place, "select": select}
    # narrowing casts promoted (truth.py); the parameters widened in the program: no float64 copy of the
    # model on the host, and float64 gradients
    truth_run = {"kwargs": jax_side.kwargs_truth, "promote": True}
    with jax.enable_x64(True):
        requests = [
            Request(jax_module, work_inputs, cotangents, **run, kwargs=jax_side.kwargs_work, x64=work_x64),
            Request(float64_view(jax_module), truth_inputs, cotangents, **run, **truth_run, widen=grads),
        ]
        if analytic:
            size = absolute(jax_module, truth_inputs, cotangents)
            requests.append(
                Request(
                    *size,
                    grads=grads,
                    rename=rename,
                    kwargs=absolute_keywords(truth_run["kwargs"]),
                    promote=True,
                    select=select,
                )
            )
    return PreparedCheck(
        jax_module, torch_module, result, jax_side, torch_side, cotangents, requests, analytic,
        channels_first, grads, equal_nan, order, pairs, keys, axes, torch_grads,
    )  # fmt: skip


def check(
    jax_module: nnx.Module,
    torch_module,
    *inputs,
    grads: bool = True,
    rename: Rename = None,
    channels_first: bool | str | Channels | None = None,
    equal_nan: bool = False,
    name: str = "",
    seed: int = 0,
    place=None,
    torch_inputs: tuple | None = None,
    jax_kwargs: dict | None = None,
    torch_kwargs: dict | None = None,
    strict: bool = True,
    prefix: str = "",
    ignore: Ignore = None,
    grads_of: Collection[str] | None = None,
    progress: Report = False,
) -> CaseResult:
    """Compare any Flax NNX module with any torch module holding the same weights.

    ``inputs`` are NumPy arrays in the JAX module's layout (a mask is just another input; an integer
    first input, such as token ids, gets no gradient). ``rename`` maps the JAX module's weight names
    onto the torch module's (see :func:`crosscheck.weights.tree.renamed`); they are checked to map,
    key for key and shape for shape, before anything runs; weights whose values differ fail the check
    ("weights differ", naming each: copy them first).
    ``channels_first`` (:mod:`crosscheck.porting.channels`: ``True``, ``"input"``, ``"output"``,
    ``False``; ``None`` detects it from the torch module's first and last layers) moves the features
    axis of the first input to position 1 for torch (NHWC -> NCHW) and torch's outputs back.
    ``prefix="encoder."`` checks the JAX module against the torch module's submodule ``encoder`` (the
    one called; keys named in the result keep the prefix). ``ignore=[regex, ...]`` leaves out every key
    either model holds that a pattern finds (a pattern finding none is an error); ``strict=False`` lists
    keys with no counterpart (``result.ignored``: torch's; ``result.missing``: the JAX module's) instead
    of failing, and a parameter one side lacks is no gradient item. Each side may have its own call:
    ``torch_inputs`` replaces the inputs on the torch side (a channels-first input is then not guessed;
    the input gradients pair when the torch side's first input is an axis permutation of the JAX
    side's, NHWC against NCHW, found from the values), ``jax_kwargs`` / ``torch_kwargs`` add keyword
    arguments to one side (arrays, flags, sizes).
    Outputs are trees (tuples, dicts, a ``ModelOutput``, dataclasses): every array is compared,
    paired by path or else by position (unpaired ones are listed in the result), floating ones in
    two tiers, integer ones exactly; ``None`` is skipped. The working dtype is the
    JAX module's parameter dtype. Both models run in inference mode (torch ``.eval()``, Flax
    ``deterministic`` / ``use_running_average``) and are left exactly as they were: parameters,
    buffers, ``.grad``, modes, RNG state. Frozen torch parameters are listed (``result.frozen``), not
    compared; tied ones are compared once, each side summing its distinct parameters. A NaN or inf in
    an output or gradient fails its item ("non-finite output") unless ``equal_nan=True``: then
    non-finite values pass where both frameworks and the float64 truth hold the same one.
    ``place(inputs)`` puts the JAX side's inputs on devices (:func:`crosscheck.runtime.meshes.input_placer`
    shards them on a mesh); the torch module runs where it is. The JAX evaluations (working dtype,
    float64 truth, magnitudes) run as one compiled program (:mod:`crosscheck.porting.fused`); torch's two
    runs go on a second thread beside them where 30 times the model's parameter bytes fit in the memory
    the system has free (a larger model runs one side, then the other), and the items are judged two at
    a time where two of the largest item's worst case fit (the same results to the bit).
    ``progress``: its three phases (weights and inputs, the JAX runs, torch's runs and the verdicts) as
    a bar on standard error (``True``; ``None``: when it is a terminal), or ``progress(done, 3)``; none by
    default (a check inside a larger job says nothing of its own).

    Shape:
        inputs as the JAX module takes them.

    Raises:
        TypeError: the first argument is not a Flax NNX module or the second not a torch module.
        WeightsError: the two modules' weights do not map onto each other.
        ModelCallError: a model raised on the inputs.
        ValueError: ``grads_of`` names something that is not a parameter of the torch module.

    >>> import jaxlin, torch_ref
    >>> from crosscheck.weights import copy_torch_to_jax
    >>> theirs = torch_ref.Linear(8, 4)
    >>> ours = jaxlin.Linear(8, 4, rngs=nnx.Rngs(0))
    >>> copied = copy_torch_to_jax(theirs, ours)
    >>> check(ours, theirs, np.random.default_rng(0).standard_normal((3, 8))).passed
    True
    """
    require_models(jax_module, torch_module, "check")
    torch_module = torch_part(torch_module, prefix, "check")
    options = {"grads": grads, "rename": rename, "channels_first": channels_first, "equal_nan": equal_nan,
               "strict": strict, "prefix": prefix, "ignore": ignore, "grads_of": grads_of}  # fmt: skip
    sides = {"torch_inputs": torch_inputs, "jax_kwargs": jax_kwargs, "torch_kwargs": torch_kwargs}
    with torch_twin(torch_module.state_dict().keys()), inference_mode(jax_module, torch_module) as switched:
        with layer_progress(3, "check", progress) as advance:
            prepared = prepare_check(
                jax_module, torch_module, *inputs, name=name, seed=seed, place=place, **options, **sides
            )
            advance()
            evaluations, torch_runs = _evaluate_both(prepared, torch_module)
            advance()
            result = finish_check(prepared, evaluations, torch_runs)
            advance()
    result.switched = switched
    return result


def _evaluate_both(prepared: PreparedCheck, torch_module) -> tuple[list, TorchRuns | None]:
    """JAX's evaluations, and torch's runs beside them on a second thread where memory allows
    (:func:`crosscheck.porting.streaming.fits_beside`: both frameworks release the interpreter while
    they compute, so the wall time is nearer the longer side's than the sum). A large model runs JAX
    first and frees its float64 copies before torch's float64 run (``None``: finish_check runs torch)."""
    if _BESIDE.get() and fits_beside(torch_module):
        with ThreadPoolExecutor(1, thread_name_prefix="crosscheck-torch") as pool:
            # in the caller's context: what it set for the torch runs (locate's stand-ins) holds there too
            torch_runs = pool.submit(contextvars.copy_context().run, run_torch, prepared)
            evaluations = evaluate_all(prepared.requests)  # JAX's error first; the exit waits for torch
            done = torch_runs.result()
        prepared.requests.clear()
        return evaluations, done
    evaluations = evaluate_all(prepared.requests)
    prepared.requests.clear()  # the JAX float64 copies are freed before torch's float64 run
    if is_large(torch_module) and memory_is_short(torch_module):
        release_freed_memory()
    return evaluations, None


_BESIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("crosscheck_torch_beside_jax", default=True)


def runs_beside() -> bool:
    """Whether torch's runs go beside JAX's: memory to spare (outside :func:`one_after_the_other`)."""
    return _BESIDE.get()


@contextlib.contextmanager
def one_after_the_other(sequential: bool = True):
    """Within (when ``sequential``): every check runs JAX, then torch, whatever memory is free — what
    ``locate`` asks for its rows when the whole model does not fit twice over (a row's peak, not the
    row's own size, is what the machine must hold)."""
    token = _BESIDE.set(not sequential)
    try:
        yield
    finally:
        _BESIDE.reset(token)
