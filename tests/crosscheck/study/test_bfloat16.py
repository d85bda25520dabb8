"""The study's bfloat16 rows: every bfloat16 output agrees with the float32 reference within bfloat16
rounding, a wrong one does not, and each row has its kernel parity. No timing is asserted."""

import jax.numpy as jnp
import pytest

from crosscheck.study import bfloat16, names, parity
from crosscheck.study.engine import Impl, run_config


@pytest.mark.parametrize(
    "build",
    [
        lambda: bfloat16.per_head_bfloat16(2, 16, (2, 4), "cpu"),
        lambda: bfloat16.linear_bfloat16(8, 16, 32, "cpu"),
    ],
)
def test_bfloat16_rows_agree_with_float32_and_have_their_kernel_parity(build):
    config = build()
    records = run_config(config, repeats=2)
    assert [r.get("error") for r in records] == [None] * len(records)
    assert all(r["equal"] for r in records)
    assert records[0]["impl"] in names.FLOAT32_REFERENCE and all(r["flops"] is None for r in records)
    (row,) = parity.parity_rows(records)
    assert row.study == config.study and row.parity.rounds == 2
    assert row.torch in set(names.TORCH_REF_PER_HEAD_BF16.values()) | {names.TORCH_REF_LINEAR_BF16}


def test_the_inputs_are_bfloat16_except_the_float32_reference():
    config = bfloat16.per_head_bfloat16(2, 16, (2, 4), "cpu")
    reference, ours, torch_bmm = config.impls[:3]
    assert config.make_inputs(0, reference)[0].dtype == jnp.float32
    assert config.make_inputs(0, ours)[0].dtype == jnp.bfloat16
    assert str(config.make_inputs(0, torch_bmm)[0].dtype) == "torch.bfloat16"


def test_a_wrong_bfloat16_output_fails_the_check():
    config = bfloat16.per_head_bfloat16(2, 16, (2, 4), "cpu")
    right = config.impls[1].call
    config.impls[1] = Impl(config.impls[1].name, "jax", lambda x: -right(x))
    records = run_config(config, repeats=1)
    assert records[1]["equal"] is False and "beyond rounding" in records[1]["error"]
