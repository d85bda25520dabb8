"""``crosscheck run``: exit statuses, messages, the report files and their atomic write.

Runs go through ``crosscheck.cli.main`` in-process on two small cases; one subprocess test checks
``python -m crosscheck``. A wrong module is a real one: a Linear that multiplies by its transposed
square kernel, registered as a case next to the real ones.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch

import crosscheck.cases
import jaxlin
import torch_ref
from crosscheck import cli, report
from crosscheck.cases import Case
from crosscheck.precision import describe_precision, precision_mode, ynn_fusion
from crosscheck.timing import time_call
from crosscheck.weights import save_weights

FAST = ["--cases", "linear,pointwise-dot-linear", "--repeats", "3", "--no-probe"]


class TransposedLinear(jaxlin.Linear):
    """The planted bug: ``x @ W`` where the layer should compute ``x @ W.T`` (square, so it runs)."""

    def __call__(self, x):
        return x @ self.kernel[...].T + self.bias[...][None, :]  # x is (batch, features)


def _broken(rngs, dtype):
    raise RuntimeError("this case cannot be built")


def _with_cases(monkeypatch, *extra: Case) -> None:
    real = crosscheck.cases.all_cases()
    monkeypatch.setattr(crosscheck.cases, "all_cases", lambda: real | {case.name: case for case in extra})


def test_run_passes_and_writes_the_report(tmp_path, capsys):
    with_probe = [arg for arg in FAST if arg != "--no-probe"]
    assert cli.main(["run", *with_probe, "--out", str(tmp_path)]) == 0  # default: a check worker process
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["schema"] == 1 and set(data) == {"schema", "environment", "cases", "summary", "batch_probe"}
    env = data["environment"]
    assert {"versions", "device", "precision", "xla_flags", "git_commit", "command", "timestamp"} <= set(env)
    assert {"python", "jax", "jaxlib", "flax", "torch", "numpy"} <= set(env["versions"])
    assert (
        env["precision"]["mode"] == "pinned" and env["precision"]["jax_default_matmul_precision"] == "highest"
    )
    assert env["device"]["cpu_cores"] >= 1 and env["device"]["cpu_model"]
    assert data["summary"] == {"cases": 4, "passed": 4, "failed": 0, "skipped": 0, "probe_failed": 0}
    probed = data["batch_probe"]["records"]
    assert data["batch_probe"]["batch_sizes"] == [1, 2, 3, 4, 7, 8, 16, 32, 64, 128, 256]
    assert {(r["module"], r["mode"], r["dtype"]) for r in probed} == {
        (m, mode, d) for m in cli.RUN_PROBES for mode in ("jax.jit", "torch") for d in ("float32", "bfloat16")
    }
    invariant = [r for r in probed if r["module"] == "batch-invariant-linear"]
    assert all(r["differing_batch_sizes"] == [] and r["fraction_bitwise_equal"] == 1 for r in invariant)
    assert [(c["name"], c["dtype"]) for c in data["cases"]] == [
        ("linear", "float32"), ("linear", "bfloat16"),
        ("pointwise-dot-linear", "float32"), ("pointwise-dot-linear", "bfloat16"),
    ]  # fmt: skip
    case = data["cases"][0]
    assert {"name", "dtype", "passed", "items", "timings", "speed_ratio"} <= set(case)
    item = case["items"][0]
    assert item["item"] == "output" and item["k"] > 0 and item["same_function"]["passed"]
    assert {"passed", "actual_bound_ratio", "expected_max_error"} <= set(item["rounding"])
    assert {i["item"] for i in case["items"]} >= {"output", "grads.weight", "grads.input"}
    for framework in ("jax", "torch"):
        for kind in ("forward", "forward_backward"):
            timing = case["timings"][framework][kind]
            assert timing["repeats"] == 3 and timing["median_s"] > 0 and timing["compile_s"] > 0
            assert timing["spread_s"] >= 0
    assert case["speed_ratio"] > 0
    markdown = (tmp_path / "report.md").read_text()
    assert "## Environment" in markdown and "| linear | float32 |" in markdown
    assert "## Batch-size probe" in markdown and "| batch-invariant-linear | torch_ref | torch | float32 | none |" in markdown
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]  # no temporary file left
    out = capsys.readouterr().out
    assert "pointwise-dot-linear" in out and "4 cases: 4 passed, 0 failed; batch-size probe: 0 failed" in out


def test_a_wrong_module_and_a_raising_case_fail_with_their_messages(tmp_path, monkeypatch, capsys):
    wrong = Case(
        "wrong-transposed",
        lambda rngs, dtype: TransposedLinear(16, 16, param_dtype=dtype, rngs=rngs),
        lambda dtype: torch_ref.Linear(16, 16, dtype=dtype),
        lambda rng: (rng.standard_normal((4, 16)),),
    )
    broken = Case(
        "wrong-broken", _broken, lambda dtype: torch_ref.Linear(4, 4, dtype=dtype), wrong.make_inputs
    )
    _with_cases(monkeypatch, wrong, broken)
    argv = ["run", "--cases", "wrong-*", "--dtype", "float32", "--workers", "0", "--repeats", "2", "--no-probe"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "wrong-transposed (float32): outputs in float64 (same function) are not close" in out
    assert "The failure occurred for item ['output']" in out
    assert "RuntimeError: this case cannot be built" in out
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["summary"] == {"cases": 2, "passed": 0, "failed": 2, "skipped": 0}
    transposed, raised = data["cases"]
    assert not transposed["passed"] and not transposed["items"][0]["same_function"]["passed"]
    assert transposed["failures"] and "timings" in transposed  # still timed
    assert raised["error"] == "RuntimeError: this case cannot be built"
    assert "FAIL (same function, rounding)" in (tmp_path / "report.md").read_text()


def test_weights_load_where_they_fit_and_skip_elsewhere(tmp_path, capsys):
    path = tmp_path / "linear.safetensors"
    torch.manual_seed(1)
    save_weights(torch_ref.Linear(32, 8), path)
    argv = ["run", *FAST, "--dtype", "float32", "--workers", "0", "--weights", str(path)]
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["summary"] == {"cases": 1, "passed": 1, "failed": 0, "skipped": 1}
    assert "does not fit" in data["cases"][1]["skipped"] and data["cases"][1]["passed"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--cases", "nonesuch-*"], "'nonesuch-*' matches no case; the cases are linear,"),
        (["run", "--cases", "linear,nope"], "pooled-{input,hidden,output}-{linear,relu}-{full,masked}"),
        (
            ["run", "--dtype", "float32,float8"],
            "invalid dtype 'float8' (choose from float32, bfloat16, float64",
        ),
        (["run", "--precision", "fast"], "invalid choice: fast (choose from pinned, default)"),
        (["run", "--device", "npu"], "invalid choice: npu (choose from auto, cpu, gpu, tpu)"),
        (["run", "--repeats", "0"], "invalid count '0'"),
        (["frobnicate"], "invalid choice: frobnicate"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_with_the_valid_choices(argv, message, tmp_path, capsys):
    assert cli.main([*argv, "--out", str(tmp_path)] if argv else argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in (err if "'" in message else err.replace("'", ""))  # argparse >= 3.12 quotes choices


def test_unavailable_device_and_bad_weights_exit_2(tmp_path, capsys):
    if jax.default_backend() == "cpu":
        assert cli.main(["run", "--device", "gpu", "--out", str(tmp_path)]) == 2
        assert "--device gpu: not available here" in capsys.readouterr().err
    missing = tmp_path / "missing.safetensors"
    assert cli.main(["run", "--weights", str(missing), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    assert cli.main(["run", "--weights", str(junk), "--out", str(tmp_path)]) == 2
    assert "not a safetensors file" in capsys.readouterr().err
    heads = tmp_path / "heads.safetensors"
    save_weights(torch_ref.PerHeadLinear(2, 3, 5), heads)
    assert cli.main(["run", "--cases", "linear", "--weights", str(heads), "--out", str(tmp_path)]) == 2
    assert "fits none of the selected cases (linear)" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def _report() -> dict:
    return report.build_report(
        {"command": "crosscheck run"}, [report.case_record("linear", "float32", error="x")]
    )


@pytest.mark.parametrize("crash", ["dumps", "fsync", "replace"])
def test_a_crash_while_writing_leaves_no_half_file(crash, tmp_path, monkeypatch):
    (tmp_path / "report.json").write_text('{"old": true}\n')  # a previous run's report survives whole

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    target = {"dumps": (report.json, "dumps"), "fsync": (os, "fsync"), "replace": (os, "replace")}[crash]
    monkeypatch.setattr(*target, boom)
    with pytest.raises(OSError, match="disk on fire"):
        report.write_report(tmp_path, _report())
    assert sorted(os.listdir(tmp_path)) == ["report.json"]
    assert (tmp_path / "report.json").read_text() == '{"old": true}\n'


def test_report_json_is_strict_even_with_infinite_metrics(tmp_path):
    tier = {"passed": False, "actual_bound_ratio": float("inf"), "actual_max_error": float("nan")}
    record = report.case_record("a", "float32", error="e")
    record["items"] = [
        {"item": "output", "k": 3, "same_function": tier, "rounding": tier, "cross_bound_ratio": 0.5}
    ]
    report.write_report(tmp_path, report.build_report({}, [record]))
    rounding = json.loads((tmp_path / "report.json").read_text())["cases"][0]["items"][0]["rounding"]
    assert rounding["actual_bound_ratio"] == "inf" and rounding["actual_max_error"] == "nan"
    assert "| a | float32 | inf× (nan) |" in (tmp_path / "report.md").read_text()


def test_case_selection_keeps_registry_order():
    names = list(crosscheck.cases.all_cases())
    assert cli.select_cases("collapse,linear", names) == ["linear", "collapse"]
    assert len(cli.select_cases("pooled-*-masked-*", names)) == 12
    assert cli.compact_names(["a-x", "a-y", "b"]) == "a-{x,y}, b"


def test_precision_modes_are_recorded_and_restored():
    before = (torch.get_float32_matmul_precision(), jax.config.jax_default_matmul_precision)
    torch.set_float32_matmul_precision("high")
    try:
        with precision_mode("pinned"):
            pinned = describe_precision("pinned")
        assert pinned["torch_float32_matmul_precision"] == "highest" and not pinned["torch_cudnn_allow_tf32"]
        assert torch.get_float32_matmul_precision() == "high"
        with precision_mode("default"):
            assert describe_precision("default")["torch_float32_matmul_precision"] == "high"
    finally:
        torch.set_float32_matmul_precision(before[0])
    assert jax.config.jax_default_matmul_precision == before[1]
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        describe_precision("fast")


def test_ynnpack_fusion_flag():
    off = "--xla_cpu_experimental_ynn_fusion_type="
    assert ynn_fusion(off) is False and ynn_fusion(f"--a=1 {off}dot") is True and ynn_fusion("") is True


def test_time_call_rotates_inputs_and_reports_the_first_call_apart():
    seen = []
    timing = time_call(lambda x: seen.append(float(x[0])), lambda i: (np.full(2, i + 1.0),), sync=lambda r: r,
                       repeats=4, warmup=1)  # fmt: skip
    assert seen == [1.0, 2.0, 1.0, 2.0, 3.0, 1.0] and timing.repeats == 4 and timing.compile_s > 0


def test_python_dash_m_help():
    done = subprocess.run(
        [sys.executable, "-m", "crosscheck", "run", "--help"], capture_output=True, text=True, timeout=120,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--cases PATTERN" in done.stdout and "--precision {pinned,default}" in done.stdout
