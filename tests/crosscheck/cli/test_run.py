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
import pytest
import torch

import crosscheck.suite.cases
import jaxlin
import torch_ref
from crosscheck.cli import common, options
from crosscheck.cli import main as cli_main
from crosscheck.reporting import documents
from crosscheck.reporting import run_report as report
from crosscheck.reporting.answer_lines import answer_lines
from crosscheck.runtime.ratio_intervals import paired_ratio
from crosscheck.suite import seed_shapes
from crosscheck.suite.cases import Case
from crosscheck.weights import save_weights

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

FAST = ["--cases", "linear,pointwise-matmul", "--repeats", "3", "--no-probe"]


class TransposedLinear(jaxlin.Linear):
    """The planted bug: ``x @ W`` where the layer should compute ``x @ W.T`` (square, so it runs)."""

    def __call__(self, x):
        return x @ self.kernel[...].T + self.bias[...][None, :]  # x is (batch, features)


def _broken(rngs, dtype):
    raise RuntimeError("this case cannot be built")


def _with_cases(monkeypatch, *extra: Case) -> None:
    real = crosscheck.suite.cases.all_cases()
    monkeypatch.setattr(
        crosscheck.suite.cases, "all_cases", lambda: real | {case.name: case for case in extra}
    )


def test_run_passes_and_writes_the_report(tmp_path, capsys):
    with_probe = [arg for arg in FAST if arg != "--no-probe"]
    assert cli_main(["run", *with_probe, "--out", str(tmp_path)]) == 0  # default: a check worker process
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["schema"] == 1
    sections = {"schema", "environment", "cases", "summary", "batch_probe", "answers", "timing", "run_id"}
    assert set(data) == sections
    assert documents.documents_match(tmp_path, "report")  # the JSON and the Markdown of one run
    env = data["environment"]
    assert {"versions", "device", "precision", "xla_flags", "git_commit", "command", "timestamp"} <= set(env)
    assert {"python", "jax", "jaxlib", "flax", "torch", "numpy"} <= set(env["versions"])
    assert (
        env["precision"]["mode"] == "pinned" and env["precision"]["jax_default_matmul_precision"] == "highest"
    )
    assert env["device"]["cpu_cores"] >= 1 and env["device"]["cpu_model"]
    assert data["summary"] == {
        "cases": 4, "passed": 4, "failed": 0, "skipped": 0, "probe_failed": 0, "timing_failed": 0
    }  # fmt: skip
    probed = data["batch_probe"]["records"]
    assert data["batch_probe"]["batch_sizes"] == [1, 2, 3, 4, 7, 8, 16, 32, 64, 128, 256]
    assert {(r["module"], r["mode"], r["dtype"]) for r in probed} == {
        (m, mode, d)
        for m in options.RUN_PROBES
        for mode in ("jax.jit", "torch")
        for d in ("float32", "bfloat16")
    }
    invariant = [r for r in probed if r["module"] == "batch-invariant-linear"]
    assert all(r["differing_batch_sizes"] == [] and r["fraction_bitwise_equal"] == 1 for r in invariant)
    assert [(c["name"], c["dtype"]) for c in data["cases"]] == [
        ("linear", "float32"),
        ("linear", "bfloat16"),
        ("pointwise-matmul", "float32"),
        ("pointwise-matmul", "bfloat16"),
    ]
    case = data["cases"][0]
    assert {"name", "dtype", "passed", "items"} <= set(case) and "timings" not in case  # timed apart
    item = case["items"][0]
    assert item["item"] == "output" and item["k"] > 0 and item["same_function"]["passed"]
    assert {"passed", "actual_bound_ratio", "expected_max_error"} <= set(item["rounding"])
    assert {i["item"] for i in case["items"]} >= {"output", "grads.weight", "grads.input"}
    entries = data["timing"]["entries"]  # the checked cases' computations, and the probe's fix
    assert [e["name"] for e in entries] == ["linear", "batch-invariant-linear", "pointwise-matmul"]
    for entry in entries:
        assert entry["shape"] == "(16, 1024, 256)→256" and entry["speed_ratio"] > 0
        for framework in ("jax", "torch"):
            assert set(entry["timings"][framework]) == {"forward", "dispatch"}  # no backward unless asked
            for timing in entry["timings"][framework].values():
                assert timing["repeats"] == 3 and timing["median_s"] > 0 and timing["compile_s"] > 0
                assert timing["spread_s"] >= 0
    assert [answer["question"] for answer in data["answers"]] == [
        "pooling",
        "pointwise",
        "batch_size",
        "per_head",
    ]
    markdown = (tmp_path / "report.md").read_text()
    assert "## Environment" in markdown and "| linear | float32 |" in markdown
    assert "## Speed at the seed shapes" in markdown and "| linear | (16, 1024, 256)→256 | 2 |" in markdown
    assert markdown.splitlines()[2].startswith("1. Pool before or after the linear layers?")
    assert (
        "## Batch-size probe" in markdown
        and "| batch-invariant-linear | torch_ref | torch | float32 | none |" in markdown
    )
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]  # no temporary file left
    out = capsys.readouterr().out
    assert "pointwise-matmul" in out and "4 cases: 4 passed, 0 failed; batch-size probe: 0 failed" in out
    first = [line for line in out.splitlines() if line.strip()][:4]
    assert [line[:3] for line in first] == ["1. ", "2. ", "3. ", "4. "]  # the summary starts with the answers
    assert "Why does a Linear's output change with the batch size? Rounding, not different math" in first[2]


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
    argv = [
        "run",
        "--cases",
        "wrong-*",
        "--dtype",
        "float32",
        "--workers",
        "0",
        "--repeats",
        "2",
        "--no-probe",
    ]
    assert cli_main([*argv, "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "wrong-transposed (float32): outputs in float64 (same function) are not close" in out
    assert "The failure occurred for item ['output']" in out
    assert "RuntimeError: this case cannot be built" in out
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["summary"] == {"cases": 2, "passed": 0, "failed": 2, "skipped": 0, "timing_failed": 0}
    transposed, raised = data["cases"]
    assert not transposed["passed"] and not transposed["items"][0]["same_function"]["passed"]
    assert transposed["failures"] and data["timing"]["entries"] == []  # no seed-shape entry computes them
    assert raised["error"] == "RuntimeError: this case cannot be built"
    assert "FAIL (same function, rounding)" in (tmp_path / "report.md").read_text()


def test_weights_load_where_they_fit_and_skip_elsewhere(tmp_path, capsys):
    path = tmp_path / "linear.safetensors"
    torch.manual_seed(1)
    save_weights(torch_ref.Linear(32, 8), path)
    argv = ["run", *FAST, "--dtype", "float32", "--workers", "0", "--weights", str(path)]
    assert cli_main([*argv, "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["summary"] == {"cases": 1, "passed": 1, "failed": 0, "skipped": 1, "timing_failed": 0}
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
    assert cli_main([*argv, "--out", str(tmp_path)] if argv else argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in (err if "'" in message else err.replace("'", ""))  # argparse >= 3.12 quotes choices


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="this machine has an accelerator")
def test_an_unavailable_gpu_exits_2(tmp_path, capsys):
    assert cli_main(["run", "--device", "gpu", "--out", str(tmp_path)]) == 2
    assert "--device gpu: not available here" in capsys.readouterr().err


def test_bad_weights_exit_2(tmp_path, capsys):
    missing = tmp_path / "missing.safetensors"
    assert cli_main(["run", "--weights", str(missing), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    assert cli_main(["run", "--weights", str(junk), "--out", str(tmp_path)]) == 2
    assert "not a safetensors file" in capsys.readouterr().err
    heads = tmp_path / "heads.safetensors"
    save_weights(torch_ref.PerHeadLinear(2, 3, 5), heads)
    assert cli_main(["run", "--cases", "linear", "--weights", str(heads), "--out", str(tmp_path)]) == 2
    assert "fits none of the selected cases (linear)" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_python_dash_m_help():
    done = subprocess.run(
        [sys.executable, "-m", "crosscheck", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert "--cases PATTERN" in done.stdout and "--precision {pinned,default}" in done.stdout


def test_a_weights_file_holding_nan_fails_the_case_and_says_so_in_the_summary_line(tmp_path, capsys):
    theirs = torch_ref.Linear(32, 8)
    with torch.no_grad():
        theirs.weight[0, 0] = float("nan")
    save_weights(theirs, tmp_path / "nan.safetensors")
    argv = [
        "run",
        "--cases",
        "linear",
        "--dtype",
        "float32",
        "--workers",
        "0",
        "--no-probe",
        "--repeats",
        "2",
    ]
    assert (
        cli_main([*argv, "--weights", str(tmp_path / "nan.safetensors"), "--out", str(tmp_path / "out")]) == 1
    )
    out = capsys.readouterr().out
    assert "1 cases: 0 passed, 1 failed; the weights file holds NaN/inf in weight (1)" in out
    assert "FAIL (" in out and "non-finite output" in out
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (
        data["weights"]["nonfinite"] == {"weight": 1} and "non-finite output" in data["cases"][0]["problems"]
    )


def test_an_output_directory_under_a_regular_file_is_refused_up_front(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert cli_main(["run", *FAST, "--out", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "cannot write there" in err and "Traceback" not in err


def test_an_output_directory_that_cannot_be_written_is_refused_up_front(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):  # what a read-only directory does to a non-root user
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(common.tempfile, "NamedTemporaryFile", refuse)
    assert cli_main(["run", *FAST, "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path}: cannot write there (Permission denied)" in capsys.readouterr().err


def test_when_the_report_cannot_be_written_at_the_end_the_summary_is_printed_and_the_exit_is_1(
    tmp_path, monkeypatch, capsys
):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_report", disk_full)
    assert cli_main(["run", *FAST, "--dtype", "float32", "--workers", "0", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "2 cases: 2 passed, 0 failed" in out and "pointwise-matmul" in out
    lines = [line for line in out.splitlines() if "could not write" in line]
    assert lines == [
        f"crosscheck: could not write the report to {tmp_path} (No space left on device); "
        "the summary above is all that was kept"
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seed", "-1"], "invalid seed '-1' (an integer from 0 to 4294967295)"),
        (["--seed", "99999999999"], "invalid seed '99999999999'"),
    ],
)
def test_bad_seeds_exit_2_at_parse_time(argv, message, tmp_path, capsys):
    assert cli_main(["run", *argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.skipif(any(d.platform == "tpu" for d in jax.devices()), reason="this machine has a TPU")
def test_an_unavailable_device_is_refused_before_the_output_directory_is_made(tmp_path, capsys):
    assert cli_main(["run", "--device", "tpu", "--out", str(tmp_path / "never")]) == 2
    assert "--device tpu: not available here" in capsys.readouterr().err and not (tmp_path / "never").exists()


def test_the_summary_starts_with_the_four_answers_measured_in_this_run(tmp_path, monkeypatch, capsys):
    for shapes, smaller in (
        (seed_shapes.LINEAR, {"batch": 2, "seq": 64}),
        (seed_shapes.POOLED, {"batch": 2, "seq": 256, "features": 64}),
        (seed_shapes.PER_HEAD, {"batch": 2, "windows": 16}),
    ):
        for key, value in smaller.items():
            monkeypatch.setitem(shapes, key, value)  # the same entries, quicker: timed in this process
    cases = "linear,pointwise-conv,pooled-output-linear-*,pooled-*-relu-full-literal,perhead-einsum-bmm,perhead-vmap-*"
    argv = ["run", "--cases", cases, "--dtype", "float32", "--repeats", "2", "--workers", "0"]
    assert cli_main([*argv, "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[:4] == answer_lines(data["answers"])  # printed first, from the report's own numbers
    pooling, pointwise, batch_size, per_head = data["answers"]
    timed = {e["name"]: e["timings"] for e in data["timing"]["entries"]}
    literal, first = (timed[f"pooled-output-linear-full-{order}"] for order in ("literal", "reorder"))
    for framework in ("jax", "torch"):  # paired round by round: the same rounds, the same interval
        rounds = [timings[framework]["forward"]["samples_s"] for timings in (literal, first)]
        assert pooling["speed"][framework] == paired_ratio(*rounds).as_dict() | {
            "times_s": [timings[framework]["forward"]["median_s"] for timings in (literal, first)]
        }
    assert pooling["linear"]["same_function"] and 0 <= pooling["linear"]["ratio"] < 1
    assert not pooling["relu"]["same_function"] and pooling["relu"]["ratio"] > 1e3  # relu: not the same
    assert pointwise["verdict"]["same_function"] and set(pointwise["speed"]) == {"jax", "torch"}
    assert (
        batch_size["modules"]["linear"]["passed"]
        and batch_size["modules"]["batch-invariant-linear"]["invariant"]
    )
    assert per_head["verdict"] == {"same_function": True, "ratio": per_head["verdict"]["ratio"], "entries": 4}
    assert {per_head["fastest"][f]["impl"] for f in ("jax", "torch")} <= {"einsum", "vmap", "bmm"}
    assert "(2, 256, 64) 64→64→16" in lines[0] and "pooling at the input is a different function" in lines[0]
    assert lines[1].startswith("2. Is Conv1d(kernel_size=1) the same as Linear? The same function (max diff")


def test_answers_say_what_this_run_did_not_measure(tmp_path, capsys):
    argv = [
        "run",
        "--cases",
        "collapse",
        "--dtype",
        "bfloat16",
        "--no-probe",
        "--repeats",
        "2",
        "--workers",
        "0",
    ]
    assert cli_main([*argv, "--out", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()][:4]
    assert "not checked in this run (needs pooled-output-linear-full-reorder" in lines[0]
    assert lines[0].endswith("Not timed in this run.")  # float32 is not among the dtypes: nothing timed
    assert lines[2] == "3. Why does a Linear's output change with the batch size? Not probed in this run."
    assert "Not checked in this run (needs perhead-*)" in lines[3]
    assert json.loads((tmp_path / "report.json").read_text())["timing"]["entries"] == []
