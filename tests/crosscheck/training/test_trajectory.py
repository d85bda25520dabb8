"""The per-step verdict: the triangle inequality's guarantee (runs whose float64 versions agree never
fail, however their rounding grows), different math caught, and its inputs checked."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crosscheck.training.trajectory import FACTOR, distances, diverge, rule_record, run_like

finite = st.floats(0.5, 1e3, width=64)  # a tensor with a scale, as every weight has


@given(
    truth=hnp.arrays(np.float64, (6, 5), elements=finite),
    noise_a=hnp.arrays(np.float64, (6, 5), elements=st.floats(-1, 1, width=64)),
    noise_b=hnp.arrays(np.float64, (6, 5), elements=st.floats(-1, 1, width=64)),
    scale=st.floats(1e-12, 1e2),
)
def test_runs_whose_float64_versions_agree_always_pass(truth, noise_a, noise_b, scale):
    a, b = run_like(truth + scale * noise_a), run_like(truth + scale * noise_b)
    result = diverge(a, b, run_like(truth), run_like(truth), "float32")
    assert result.passed.all() and result.first_failure is None
    assert (result.cross <= result.allowance).all()


@given(offset=st.floats(1e-5, 1e-1), step=st.integers(1, 5))
def test_different_math_fails_at_the_step_it_starts(offset, step):
    truth = np.linspace(1, 2, 7)[None, :] * np.ones((6, 1))
    other = truth * (1 + offset * (np.arange(6) >= step))[:, None]
    rounding = 1e-7 * np.ones((6, 1))
    result = diverge(run_like(truth + rounding), run_like(other), run_like(truth), run_like(other), "float32")
    assert result.first_failure == step and result.worst_key(step) == "weight"
    assert result.ratio[step] > 1 and result.float64_ratio[step] > 1


def test_a_difference_below_the_rounding_tier_is_caught_in_float64():
    truth = np.ones((3, 4))
    wobble = np.array([0.0, 1e-6, 1e-6])[:, None]
    other = truth + np.array([0.0, 1e-9, 1e-9])[:, None]  # 1e-9: inside float32 rounding, not float64's
    result = diverge(
        run_like(truth + wobble), run_like(other - wobble), run_like(truth), run_like(other), "float32"
    )
    assert result.ratio.max() <= 1 and result.float64_ratio[1] > 1 and result.first_failure == 1


def test_a_non_finite_value_never_passes():
    truth = np.ones((2, 3))
    broken = truth.copy()
    broken[1, 0] = np.nan
    result = diverge(run_like(broken), run_like(truth), run_like(truth), run_like(truth), "float32")
    assert result.passed.tolist() == [True, False]
    assert distances({"w": broken}, {"w": truth}, ["w"])[1, 0] == np.inf


def test_distances_are_l2_norms_per_record_and_totals_combine_tensors():
    a = {"w": np.array([[3.0, 4.0], [0.0, 0.0]]), "b": np.array([[1.0], [2.0]])}
    zero = {key: np.zeros_like(value) for key, value in a.items()}
    assert distances(a, zero, ["w", "b"]).tolist() == [[5.0, 1.0], [0.0, 2.0]]
    totals = diverge(run_like(a), run_like(zero), run_like(a), run_like(zero), "float32").totals()
    u = 2.0**-24
    assert totals["cross"].tolist() == pytest.approx([np.sqrt(26.0), 2.0])
    assert totals["allowance"].tolist() == pytest.approx([u * np.sqrt(26.0), 2 * u])
    assert rule_record("float32")["c"] == FACTOR == 2.0


def test_runs_that_do_not_line_up_are_refused():
    short, long = run_like(np.ones((2, 3))), run_like(np.ones((3, 3)))
    with pytest.raises(
        ValueError,
        match=r"diverge: the four runs must record the same parameter tensors at the same steps; got \['weight'\] at 2 steps",
    ):
        diverge(short, long, short, short, "float32")
