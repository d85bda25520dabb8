"""The four answers of a run (``report["answers"]``, :mod:`crosscheck.suite.answers`) in words: one
line each, every number from the run. A part the run did not measure says so instead.

Speeds are ratios with their interval (:mod:`crosscheck.runtime.ratio_intervals`); "faster" and
"slower" only where the whole interval lies beyond 1 ± 5%, else "as fast (within noise)".

>>> conv = {"ratio": 1.3, "interval": [1.2, 1.4], "confidence": 0.95, "rounds": 10}
>>> answer = {"question": "pointwise", "verdict": {"same_function": True, "ratio": 0.0012},
...           "speed": {"torch": conv | {"times_s": [0.013, 0.01]}}, "shape": "(16, 1024, 256)→256"}
>>> print(line(answer))  # doctest: +NORMALIZE_WHITESPACE
Is Conv1d(kernel_size=1) the same as Linear? The same function (max diff 0.0012× the float64 bound).
At (16, 1024, 256)→256 it is 1.3× slower than Linear (95%: 1.2–1.4×) in torch_ref (nn.Conv1d); jaxlin
not timed in this run.
"""

from __future__ import annotations

from crosscheck.runtime.ratio_intervals import RatioInterval

FRAMEWORKS = {"jax": "jaxlin", "torch": "torch_ref"}


def seconds(value: float) -> str:
    """``"1.23 ms"``: a duration with its unit."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def _x(value: float) -> str:
    return f"{value:.3g}×"


def _interval(ratio: RatioInterval) -> str:
    """``"95%: 1.61–1.83×"``: the interval of the ratio as shown."""
    return f"{ratio.confidence:.0%}: {ratio.low:.3g}–{_x(ratio.high)}"


def _claim(interval: RatioInterval) -> tuple[str, str]:
    """The words of a ratio ``slow time / fast time`` and what backs them: ``("2× faster", "95%:
    1.8–2.2×")``, ``("1.3× slower", ...)`` or ``("as fast", "within noise, 95%: 0.97–1.08×")``."""
    if interval.side == 0:
        return "as fast", f"within noise, {_interval(interval)}"
    if interval.side == 1:
        return f"{_x(interval.ratio)} faster", _interval(interval)
    return f"{_x(1 / interval.ratio)} slower", _interval(interval.inverse())


def speed_words(ratio: dict) -> str:
    """A ratio ``slow time / fast time`` (:meth:`RatioInterval.as_dict`) in words: faster or slower
    (the second one) only when its whole interval lies beyond 1 ± 5%, else as fast within noise.

    >>> speed_words({"ratio": 2.0, "interval": [1.8, 2.2], "confidence": 0.95, "rounds": 5})
    '2× faster (95%: 1.8–2.2×)'
    >>> speed_words({"ratio": 0.5, "interval": [0.4, 0.6], "confidence": 0.95, "rounds": 5})
    '2× slower (95%: 1.67–2.5×)'
    >>> speed_words({"ratio": 1.1, "interval": [0.99, 1.2], "confidence": 0.95, "rounds": 5})
    'as fast (within noise, 95%: 0.99–1.2×)'
    """
    words, backing = _claim(RatioInterval.from_dict(ratio))
    return f"{words} ({backing})"


def _than(ratio: dict, reference: str) -> str:
    """``time / reference time`` as ``"1.3× slower than Linear (95%: ...)"``, or ``"as fast as Linear
    (within noise, 95%: 0.97–1.02× its time)"``."""
    interval = RatioInterval.from_dict(ratio)
    if interval.side == 0:
        return f"as fast as {reference} (within noise, {_interval(interval)} its time)"
    words, backing = _claim(interval.inverse())
    return f"{words} than {reference} ({backing})"


def _time_of(ratio: dict, reference: str) -> str:
    """``time / reference time`` as ``"1.6× Linear's time (95%: 1.5–1.7×)"``, or ``"Linear's time
    within noise (95%: ...)"``."""
    interval = RatioInterval.from_dict(ratio)
    if interval.side == 0:
        return f"{reference}'s time within noise ({_interval(interval)})"
    return f"{_x(interval.ratio)} {reference}'s time ({_interval(interval)})"


def _verdict(verdict: dict, what: str = "the same function") -> str:
    if verdict.get("missing"):
        names = verdict["missing"] if isinstance(verdict["missing"], list) else verdict["compared"]
        return f"Not checked in this run (needs {', '.join(dict.fromkeys(names))})"
    words = what if verdict["same_function"] else f"not {what}"
    return f"{words[0].upper()}{words[1:]} (max diff {verdict['ratio']:.2g}× the float64 bound)"


def _pooling(answer: dict) -> str:
    text = (
        "Pool before or after the linear layers? Without an activation: " + _verdict(answer["linear"]).lower()
    )
    relu = answer["relu"]
    if not relu.get("missing"):
        kind = "the same function" if relu["same_function"] else "a different function"
        text += f"; with relu between them, pooling at the input is {kind} ({relu['ratio']:.2g}× the bound)"
    speed = answer["speed"]
    if not speed:
        return text + ". Not timed in this run."
    parts = [
        f"{speed_words(s)} in {FRAMEWORKS[f]} ({seconds(s['times_s'][0])} → {seconds(s['times_s'][1])})"
        for f, s in speed.items()
    ]
    return text + f". Pooling first is {' and '.join(parts)} at {answer['shape']}."


def _pointwise(answer: dict) -> str:
    text = "Is Conv1d(kernel_size=1) the same as Linear? " + _verdict(answer["verdict"]) + "."
    speed, names = (
        answer["speed"],
        {"torch": "torch_ref (nn.Conv1d)", "jax": 'jaxlin (PointwiseConv impl="conv")'},
    )
    if not speed:
        return text + " Not timed in this run."
    parts = [f"{_than(speed[f], 'Linear')} in {names[f]}" for f in ("torch", "jax") if f in speed]
    missing = [FRAMEWORKS[f] for f in ("torch", "jax") if f not in speed]
    return (
        text
        + f" At {answer['shape']} it is {' and '.join(parts)}"
        + (f"; {', '.join(missing)} not timed in this run." if missing else ".")
    )


def _sizes(sizes: list[int]) -> str:
    return f"{sizes[0]}–{sizes[-1]}" if len(sizes) > 2 else ", ".join(map(str, sizes))


def _batch_size(answer: dict) -> str:
    text = "Why does a Linear's output change with the batch size? "
    linear, invariant = (answer["modules"].get(name) for name in ("linear", "batch-invariant-linear"))
    if linear is None:
        text += "Not probed in this run"
    elif linear["invariant"]:
        text += "No difference seen here: every row came out bitwise the same at every batch size tried"
    else:
        kind = "rounding, not different math" if linear["passed"] else "by more than rounding"
        text += f"{kind[0].upper()}{kind[1:]}: rows differ from the row alone at batch sizes "
        text += (
            f"{_sizes(linear['differing_batch_sizes'])} by at most {linear['max_error_over_allowance']:.2g}× "
        )
        text += "the rounding allowance"
    if invariant is not None:
        same = (
            "gave the same bits at every batch size tried"
            if invariant["invariant"]
            else "CHANGED with the batch size"
        )
        text += f"; BatchInvariantLinear {same}"
    speed = answer["speed"]
    if speed:
        parts = [f"{_time_of(s, 'Linear')} in {FRAMEWORKS[f]}" for f, s in speed.items()]
        text += f", at {' and '.join(parts)} at {answer['shape']}"
    return text + "."


def _per_head(answer: dict) -> str:
    verdict = answer["verdict"]
    text = "h independent per-head linear layers in one pass? "
    if verdict.get("missing"):
        text += _verdict(verdict) + "."
    else:
        kind = "the same function" if verdict["same_function"] else "NOT all the same function"
        text += f"jaxlin's einsum, vmap and loop and torch_ref's bmm, vmap and loop are {kind} "
        text += f"(worst {verdict['ratio']:.2g}× the float64 bound over {verdict['entries']} checks)."
    fastest = answer["fastest"]
    if set(fastest) != {"jax", "torch"} or not answer.get("speed"):
        return text + " Not timed in this run."
    jax, torch = (_fastest(fastest[f]) for f in ("jax", "torch"))
    interval = RatioInterval.from_dict(answer["speed"])
    words, backing = _claim(interval)
    than = "as" if interval.side == 0 else "than"
    return text + (
        f" At {answer['shape']} jaxlin's fastest, {jax}, is {words} ({backing}) {than} torch_ref's fastest, "
        f"{torch}."
    )


def _fastest(fastest: dict) -> str:
    """``"einsum (15.1 ms)"``, or with others within noise of it ``"vmap, einsum (within noise; vmap
    11.9 ms)"``."""
    tied = fastest.get("within_noise") or [fastest["impl"]]
    if len(tied) == 1:
        return f"{fastest['impl']} ({seconds(fastest['time_s'])})"
    return f"{', '.join(tied)} (within noise; {fastest['impl']} {seconds(fastest['time_s'])})"


WRITERS = {"pooling": _pooling, "pointwise": _pointwise, "batch_size": _batch_size, "per_head": _per_head}


def line(answer: dict) -> str:
    """One answer in words."""
    return WRITERS[answer["question"]](answer)


def answer_lines(answers: list[dict]) -> list[str]:
    """``"1. ..."`` to ``"4. ..."``: every answer of the run, numbered."""
    return [f"{i}. {line(answer)}" for i, answer in enumerate(answers, 1)]
