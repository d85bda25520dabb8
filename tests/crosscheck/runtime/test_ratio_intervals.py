"""Ratios of paired rounds and their bootstrap intervals: properties over samples (no timing here)."""

import math

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

from crosscheck.runtime.ratio_intervals import (
    SAME_SPEED,
    RatioInterval,
    fastest_within_noise,
    paired_ratio,
    side_of,
)

SECONDS = st.floats(min_value=1e-6, max_value=10.0, allow_nan=False)


@st.composite
def paired_rounds(draw, min_rounds: int = 2):
    """Two calls' seconds per round, ``(rounds,)`` each, from the same rounds."""
    rounds = draw(st.integers(min_value=min_rounds, max_value=40))
    pair = st.lists(SECONDS, min_size=rounds, max_size=rounds)
    return draw(pair), draw(pair)


@given(paired_rounds())
def test_the_interval_holds_the_ratio_and_the_same_samples_give_the_same_interval(rounds):
    top, bottom = rounds
    ratio = paired_ratio(top, bottom)
    assert ratio.low <= ratio.ratio * (1 + 1e-12) and ratio.ratio <= ratio.high * (1 + 1e-12)
    assert ratio == paired_ratio(list(top), list(bottom)) and ratio.rounds == len(top)
    per_round = np.asarray(top) / np.asarray(bottom)
    assert per_round.min() * (1 - 1e-12) <= ratio.low and ratio.high <= per_round.max() * (1 + 1e-12)


@given(paired_rounds())
def test_turning_a_ratio_around_turns_its_side_around(rounds):
    top, bottom = rounds
    forward, backward = paired_ratio(top, bottom), paired_ratio(bottom, top)
    assert forward.side == -backward.side
    assert backward.ratio == pytest.approx(1 / forward.ratio, rel=1e-9)
    assert (backward.low, backward.high) == pytest.approx((1 / forward.high, 1 / forward.low), rel=1e-9)


@given(paired_rounds(), st.lists(st.floats(min_value=0.1, max_value=10.0), min_size=40, max_size=40))
def test_a_load_that_hits_both_calls_of_a_round_alike_changes_nothing(rounds, load):
    top, bottom = rounds
    loaded = [np.asarray(side) * np.asarray(load[: len(side)]) for side in (top, bottom)]
    alone, under_load = paired_ratio(top, bottom), paired_ratio(*loaded)
    assert under_load.ratio == pytest.approx(alone.ratio, rel=1e-9)
    assert (under_load.low, under_load.high) == pytest.approx((alone.low, alone.high), rel=1e-9)


@given(st.floats(min_value=0.01, max_value=100.0), st.integers(min_value=2, max_value=30))
def test_without_noise_the_interval_is_the_ratio_and_the_side_follows_five_percent(ratio, rounds):
    interval = paired_ratio([ratio] * rounds, [1.0] * rounds)
    assert interval.low == pytest.approx(ratio) and interval.high == pytest.approx(ratio)
    expected = 1 if ratio > SAME_SPEED else -1 if ratio < 1 / SAME_SPEED else 0
    assert interval.side == expected


def test_a_claim_needs_the_whole_interval_beyond_five_percent():
    assert side_of(1.06, 3.0) == 1 and side_of(1.04, 3.0) == 0
    assert side_of(0.2, 0.95) == -1 and side_of(0.2, 0.96) == 0
    assert paired_ratio([1.0], [2.0]) == RatioInterval(0.5, 0.0, math.inf, 1)  # one round: no claim
    assert paired_ratio([1.0], [2.0]).side == 0


def test_rounds_that_do_not_pair_are_refused():
    with pytest.raises(ValueError, match=r"the same timed rounds, got \(3,\) and \(2,\) samples"):
        paired_ratio([1.0, 1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="paired_ratio"):
        paired_ratio([], [])


@given(paired_rounds())
def test_the_interval_survives_the_json_of_a_report(rounds):
    ratio = paired_ratio(*rounds)
    assert RatioInterval.from_dict(ratio.as_dict()) == ratio
    inverse = ratio.inverse()
    assert inverse.low == pytest.approx(1 / ratio.high) and inverse.high == pytest.approx(1 / ratio.low)


def test_the_fastest_set_holds_every_call_within_noise_of_the_fastest():
    rng = np.random.default_rng(0)
    noise = rng.lognormal(0, 0.05, size=(3, 10))
    samples = {"einsum": 12.0 * noise[0], "vmap": 12.2 * noise[1], "loop": 30.0 * noise[2]}
    assert sorted(fastest_within_noise(samples)) == ["einsum", "vmap"]
    assert fastest_within_noise({"alone": [1.0, 2.0]}) == ["alone"]
