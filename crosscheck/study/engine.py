"""The study's engine: check that a configuration's implementations agree, then time them together.

Every configuration holds implementations of one function on one set of weights. Each is called
once (trace, compile, one run, timed apart) and its output checked against the first
implementation's (within twice the float32 rounding allowance, on the first rows; the bfloat16 rows'
:attr:`Config.rounding_dtype` is bfloat16); for JAX
formulations the compiled HLO is searched for its dot instructions (``one_batched_dot``: exactly
one dot, with a batch dimension). Then all of them are timed by the harness's one engine
(:func:`crosscheck.runtime.timing.measure`: interleaved rounds, one framework at a time).
Each record carries its FLOPs, the bytes it must move at least and (in memory, not in ``study.json``)
every round's time, ``samples_s``, in round order: the records of one configuration ran side by side,
so :mod:`crosscheck.study.parity` pairs them into ratio intervals. :mod:`crosscheck.study.roofline`
turns them into GFLOP/s, GB/s and the fraction of the roofline measured in the same run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import numpy as np

from crosscheck.numerics import Bound
from crosscheck.runtime.devices import torch_sync
from crosscheck.runtime.timing import ROTATE, TIME_BUDGET_S, Prepared, measure, prepare


def dot_summary(hlo_text: str) -> tuple[int, bool]:
    """``(number of dot instructions, whether any has a batch dimension)`` in compiled HLO text.

    >>> dot_summary("%d = f32[4,8,8]{2,1,0} dot(%a, %b), lhs_batch_dims={0}, lhs_contracting_dims={2}")
    (1, True)
    """
    dots = [line for line in hlo_text.splitlines() if re.search(r"\bdot\(", line)]
    return len(dots), any("lhs_batch_dims" in line for line in dots)


_PLUMBING = {"parameter", "bitcast", "constant", "tuple", "get-tuple-element"}


def program_outline(hlo_text: str) -> str:
    r"""The instructions a compiled program runs, in order (fusions by name, no parameters or
    bitcasts): what fused and which copies remain.

    >>> text = "ENTRY %main {\n  %p = f32[2] parameter(0)\n  ROOT %copy_fusion.2 = f32[2] fusion(%p)\n}"
    >>> program_outline(text)
    'copy_fusion'
    """
    entry = hlo_text[hlo_text.find("ENTRY") :]
    steps = []
    for line in entry.splitlines()[1:]:
        found = re.match(r"\s*(?:ROOT )?%([\w.-]+) = \S+ ([\w-]+)\(", line)
        if line.startswith("}"):
            break
        if found and found.group(2) not in _PLUMBING:
            steps.append(re.sub(r"\.\d+$", "", found.group(1)))
    return " → ".join(steps)


@dataclass(frozen=True)
class Traffic:
    """The least memory traffic of one call, in bytes: inputs and weights read once, output written once.

    >>> Traffic(inputs=8, weights=4, outputs=2).moved, Traffic(inputs=8, weights=4, outputs=2).footprint(3)
    (14, 30)
    """

    inputs: float
    weights: float = 0.0
    outputs: float = 0.0
    same_inputs: bool = False  # every call gets the same input set (no rotation)

    @property
    def moved(self) -> float:
        return self.inputs + self.weights + self.outputs

    def footprint(self, input_sets: int) -> float:
        """What a timing loop rotating over ``input_sets`` inputs keeps touching."""
        return (1 if self.same_inputs else input_sets) * self.inputs + self.weights + self.outputs


def float32_traffic(inputs: float, weights: float = 0, outputs: float = 0) -> Traffic:
    """:class:`Traffic` of float32 arrays holding that many elements."""
    return Traffic(4.0 * inputs, 4.0 * weights, 4.0 * outputs)


@dataclass
class Impl:
    """One implementation: ``call(*inputs)`` returns an array or tensor; ``hlo()`` its compiled HLO.

    ``flops``/``traffic``: this formulation's own work where it does less than the configuration's
    (the pool-first head). ``checked=False``: a different function timed beside the others for scale
    (the bare mean under a pooled head), not compared with them.
    """

    name: str
    framework: str  # "jax" or "torch"
    call: Callable
    hlo: Callable[[], str] | None = None
    to_layout: Callable[[np.ndarray], np.ndarray] | None = None  # its input layout, from the common one
    from_layout: Callable[[np.ndarray], np.ndarray] | None = None  # its output, back to the common one
    flops: float | None = None
    traffic: Traffic | None = None
    checked: bool = True


@dataclass
class Config:
    """One point of a study: its label, sizes, FLOPs per call, inputs per framework, impls."""

    study: str
    label: str
    sizes: dict
    flops: float | None  # None: no roofline for these rows (bfloat16 ones: the run's peak is float32's)
    make_inputs: Callable[[int, Impl], tuple]  # (seed, impl) -> inputs in that impl's framework and layout
    impls: list[Impl]
    magnitude: Callable[[tuple], np.ndarray] | None = None  # |x|·|W| on the checked rows (float64)
    k: int = 1
    checked_rows: Callable[[np.ndarray], np.ndarray] = lambda y: y
    extra: dict = field(default_factory=dict)
    traffic: Traffic | None = None
    rounds: int | None = None  # fixed rounds where one slow call would leave the fast ones few samples
    rounding_dtype: str = "float32"  # the dtype whose rounding allowance the check applies


def _to_numpy(y) -> np.ndarray:
    if hasattr(y, "detach"):
        return y.detach().cpu().float().numpy()
    return np.asarray(y, np.float32)


def _sync(framework: str, torch_device: str) -> Callable:
    return jax.block_until_ready if framework == "jax" else torch_sync(torch_device)


def _checked_output(config: Config, impl: Impl, prepared: Prepared) -> np.ndarray:
    """The first input set's output, in the first implementation's layout, on the checked rows: a copy
    of those rows alone (a view would keep the whole output alive until the next implementation's)."""
    out = _to_numpy(impl.call(*prepared.argsets[0]))
    return np.array(config.checked_rows(impl.from_layout(out) if impl.from_layout else out))


def shared_inputs(make_inputs: Callable[[int, Impl], tuple]) -> Callable[[int, Impl], tuple]:
    """``make_inputs`` made once per input set where it says which sets are the same: a maker with a
    ``share_key(seed, impl)`` attribute (:func:`crosscheck.study.inputs.random_inputs`: seed, framework
    and layout; ``None`` for a set not to share) returns the very same arrays to every implementation
    whose key is equal, instead of a copy each (at per-head h32 1024→1024 on 2048 rows, 16
    implementations × 3 sets of 268 MB). Only for
    inputs that no implementation changes (jax arrays; the study's torch calls are forwards without
    autograd, which do not write to their input). The cache lives as long as the returned function:
    one :func:`run_config`. Other makers are returned as they are.

    >>> calls = []
    >>> def make(seed, impl):
    ...     calls.append(seed)
    ...     return (np.full(2, seed),)
    >>> make.share_key = lambda seed, impl: (seed, impl.framework)
    >>> shared = shared_inputs(make)
    >>> a, b = Impl("a", "jax", None), Impl("b", "jax", None)
    >>> shared(0, a)[0] is shared(0, b)[0], shared(1, a)[0] is shared(0, a)[0], calls
    (True, False, [0, 1])
    """
    key_of = getattr(make_inputs, "share_key", None)
    if key_of is None:
        return make_inputs
    made: dict = {}

    def make(seed: int, impl: Impl) -> tuple:
        key = key_of(seed, impl)
        if key is None:
            return make_inputs(seed, impl)
        if key not in made:
            made[key] = tuple(make_inputs(seed, impl))
        return made[key]

    return make


class _Reference:
    """The first implementation's output and the allowance every other one is judged by."""

    def __init__(self, config: Config, output: np.ndarray, inputs: tuple):
        self.output = output
        self.allowed = None
        if config.magnitude is not None:
            magnitude = config.magnitude(inputs)
            self.allowed = 2 * Bound(magnitude, config.k, config.rounding_dtype).allowed()

    def agrees(self, out: np.ndarray) -> bool:
        if out.shape != self.output.shape:
            return False
        if self.allowed is None:
            return bool(np.array_equal(out, self.output))
        return bool(np.all(np.abs(out.astype(np.float64) - self.output) <= self.allowed))


def run_config(
    config: Config, *, torch_device: str = "cpu", repeats: int | None = None, budget_s: float = TIME_BUDGET_S
) -> list[dict]:
    """Check every implementation against the first, then time them all, interleaved. One record each;
    an implementation that fails (on this device, say) is recorded with its error, not fatal."""
    records, prepared, reference = [], {}, None
    make_inputs = shared_inputs(config.make_inputs)
    for index, impl in enumerate(config.impls):
        record = {"study": config.study, "config": config.label, **config.sizes}
        record |= {"impl": impl.name, "framework": impl.framework} | _work(config, impl) | config.extra
        records.append(record)
        try:
            make = lambda i, impl=impl: make_inputs(i, impl)  # noqa: E731
            call = prepare(impl.call, make, sync=_sync(impl.framework, torch_device), group=impl.framework)
            record["compile_s"] = call.compile_s
            if impl.checked:
                out = _checked_output(config, impl, call)
                if reference is None:
                    reference = _Reference(config, out, call.argsets[0])
                record["equal"] = reference.agrees(out)
                if not record["equal"]:
                    record["error"] = "output differs from the first implementation beyond rounding"
            else:
                record["note"] = "another function, timed for scale; not compared"
            if impl.hlo is not None:
                text = impl.hlo()
                count, batched = dot_summary(text)
                record |= {"dots": count, "one_batched_dot": count == 1 and batched}
                record["program"] = program_outline(text)
            prepared[index] = call
        except Exception as error:  # an implementation that fails on this device is recorded, not fatal
            record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    rounds = repeats if repeats is not None else config.rounds
    for index, timing in measure(prepared, repeats=rounds, budget_s=budget_s).items() if prepared else ():
        records[index] |= {key: value for key, value in timing.as_dict().items() if key != "compile_s"}
        records[index]["samples_s"] = list(timing.samples_s)  # round by round: paired ratios need them
    return records


def _work(config: Config, impl: Impl) -> dict:
    """The FLOPs and least bytes of one call of ``impl`` (its own where it says, else the config's)."""
    work = {"flops": config.flops if impl.flops is None else impl.flops}
    traffic = impl.traffic or config.traffic
    if traffic is not None:
        work |= {"bytes": traffic.moved, "footprint_bytes": traffic.footprint(ROTATE)}
    return work
