"""Implementations of one framework and layout share their input sets within a configuration (one copy
per seed, not one per implementation: the full study's memory), and every implementation still gets
exactly the values it got from its own copy. No timing is asserted (DESIGN.md)."""

import hashlib

import numpy as np
import torch

from crosscheck.runtime import timing
from crosscheck.study import engine, inputs
from crosscheck.study.engine import Config, Impl, run_config
from crosscheck.study.inputs import heads_first, heads_last, random_inputs
from crosscheck.study.per_head import per_head

TIMED = {"median_s", "spread_s", "min_s", "max_s", "compile_s", "samples_s"}


def _digest(x) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(x)).tobytes()).hexdigest()


def _prepared_argsets(monkeypatch, config: Config) -> dict[str, list[tuple]]:
    """Run ``config`` (1 round) and return each implementation's prepared input sets."""
    seen = {}

    def spy(fn, make_args, **options):
        found = real(fn, make_args, **options)
        seen[fn] = found.argsets
        return found

    real = timing.prepare
    monkeypatch.setattr(engine, "prepare", spy)
    records = run_config(config, repeats=1)
    assert [r["impl"] for r in records if "error" in r] == []
    return {impl.name: seen[impl.call] for impl in config.impls}


def test_per_head_inputs_are_shared_per_seed_framework_and_layout_with_the_values_of_their_own(monkeypatch):
    monkeypatch.setattr(inputs, "SHARE_FROM_BYTES", 0)  # the study shares from 64 MiB a set
    config = per_head(4, 32, (2, 4), "cpu", compiled=False)
    argsets = _prepared_argsets(monkeypatch, config)
    groups: dict[tuple, list[Impl]] = {}
    for impl in config.impls:
        groups.setdefault((impl.framework, impl.to_layout), []).append(impl)
    assert len(groups) == 6 < len(config.impls)  # jax and torch: common, heads-first, heads-major GEMM
    for seed in range(timing.ROTATE):
        for members in groups.values():
            first = argsets[members[0].name][seed][0]
            for impl in members:
                shared = argsets[impl.name][seed][0]
                assert shared is first  # one array for the whole group
                own = config.make_inputs(seed, impl)[0]  # what this impl made for itself before
                assert type(shared) is type(own) and shared.shape == own.shape
                assert _digest(shared) == _digest(own)
    for impl in config.impls:  # distinct sets per seed
        assert len({_digest(args[0]) for args in argsets[impl.name]}) == timing.ROTATE


def _stub(make) -> Config:
    w = np.random.default_rng(0).standard_normal((3, 5, 2)).astype(np.float32)
    tw = torch.from_numpy(w.copy())
    calls: list[tuple[str, str]] = []

    def logged(name, fn):
        def call(x):
            calls.append((name, _digest(x)))
            return fn(x)

        return call

    impls = [
        Impl("jax", "jax", logged("jax", lambda x: np.einsum("bhi,hio->bho", np.asarray(x), w))),
        Impl("jax twice", "jax", logged("jax twice", lambda x: np.einsum("bhi,hio->bho", np.asarray(x), w))),
        Impl(
            "jax heads first",
            "jax",
            logged("jax heads first", lambda x: np.einsum("hbi,hio->hbo", np.asarray(x), w)),
            to_layout=heads_first,
            from_layout=heads_last,
        ),
        Impl("torch", "torch", logged("torch", lambda x: torch.einsum("bhi,hio->bho", x, tw))),
        Impl(
            "torch wrong", "torch", logged("torch wrong", lambda x: torch.einsum("bhi,hio->bho", x, tw) + 1)
        ),
    ]
    magnitude = lambda inputs: np.einsum("bhi,hio->bho", np.abs(np.asarray(inputs[0], np.float64)), abs(w))  # noqa: E731
    config = Config("stub", "b4 h3 5→2", {"rows": 4}, 120.0, make, impls, magnitude, k=5)
    return config, calls


def test_small_input_sets_are_not_shared():
    small, large = random_inputs((4, 3, 5), "cpu"), random_inputs((16, 2**20), "cpu")
    impl = Impl("a", "jax", None)
    assert small.share_key(0, impl) is None and large.share_key(0, impl) == (0, "jax", None)
    shared = engine.shared_inputs(small)
    assert shared(0, impl)[0] is not shared(0, impl)[0]


def test_records_and_each_calls_inputs_are_the_same_shared_or_not(monkeypatch):
    monkeypatch.setattr(inputs, "SHARE_FROM_BYTES", 0)
    make = random_inputs((4, 3, 5), "cpu")
    shared, shared_calls = _stub(make)
    alone, alone_calls = _stub(lambda seed, impl: make(seed, impl))  # no share_key: one copy each
    assert engine.shared_inputs(alone.make_inputs) is alone.make_inputs
    records = [
        [{k: v for k, v in r.items() if k not in TIMED} for r in run_config(config, repeats=4)]
        for config in (shared, alone)
    ]
    assert records[0] == records[1]
    assert [r["equal"] for r in records[0]] == [True, True, True, True, False]
    assert shared_calls == alone_calls  # every call, in order, saw the same values
