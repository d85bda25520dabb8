"""XLA:CPU's options for dots on this machine, float32 and bfloat16, jax against torch (issue 23 item 3).

Usage:
    python docs/scripts/xla_cpu_flags.py [--quick] [--repeats N] [--out DIR]

Each XLA_FLAGS setting runs in its own Python process (XLA reads XLA_FLAGS when jax starts; an unknown
flag aborts jax there: that setting is recorded as "not accepted"). In each process, for float32 and
bfloat16, jax and torch are timed on the same shapes by crosscheck's timing engine (interleaved rounds:
jax's calls, a pause, torch's calls, round after round) and every ratio is the median of the per-round
ratios with its 95% bootstrap interval (:func:`crosscheck.runtime.ratio_intervals.paired_ratio`):

- plain GEMM ``(M, K) @ (K, N)`` written M×K×N: 2048×64×512, 2048×512×2048, 2048³, 2048×64×64;
- batched ``(H, 2048, D) @ (H, D, D)``: H8·D64, H16·D128, H4·D512 (``jnp.matmul`` / ``torch.bmm``);
- ``jaxlin.PerHeadLinear`` (impl loop, einsum, vmap; heads-last ``(32, 64, H, D)`` and heads-first
  ``(H, 32, 64, D)`` input) against the faster ``torch_ref.PerHeadLinear`` impl (bmm, vmap) on the same
  layout, at h8·64, h16·128, h4·512;
- ``BatchInvariantLinear`` / ``Linear`` at 4096×1024→1024 in each framework, and jax / torch Linear.

A setting whose compiled programs (every jax call of every case, both dtypes) are the very ones the
default compiles is recorded as such and not timed: timing the same programs again would measure noise.

Numerics: each jax output's first rows (first input set, every setting the same inputs and weights) are
kept, and the report gives each setting's greatest absolute difference from the default setting's.
The compiled program of the plain GEMM is recorded per setting and dtype (what the dot lowered to).

Writes ``DIR/<machine-slug>.json`` and ``.md`` (default DIR ``docs/results/xla-cpu-flags``): the CPU
model, cores, versions, the flags, the load average at start and end, the date. ``--quick``: tiny shapes
and 3 rounds, four settings, to try the script (under a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SETTINGS = (
    ("default", ""),
    ("ynn-off", "--xla_cpu_experimental_ynn_fusion_type="),
    ("ynn-dot", "--xla_cpu_experimental_ynn_fusion_type=dot"),
    ("ynn-dot-eltwise", "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise"),
    ("xnnpack", "--xla_cpu_use_xnnpack=true"),
    ("xnn-dot", "--xla_cpu_experimental_xnn_fusion_type=dot"),
    ("xnn-graph-greedy", "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY"),
    (
        "ynn-off+xnnpack",
        "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_xnnpack=true "
        "--xla_cpu_experimental_xnn_fusion_type=dot",
    ),
    ("onednn", "--xla_cpu_use_onednn=true"),
    ("onednn-custom-call", "--xla_cpu_experimental_onednn_custom_call=true"),
    ("onednn-fusion-dot", "--xla_cpu_experimental_onednn_fusion_type=dot"),
    (
        "ynn-off+onednn",
        "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_onednn=true "
        "--xla_cpu_experimental_onednn_custom_call=true --xla_cpu_experimental_onednn_fusion_type=dot",
    ),
    ("custom-matmul-tiling", "--xla_cpu_enable_custom_matmul_tiling=true"),
    ("no-fusion-emitters", "--xla_cpu_use_fusion_emitters=false"),
    ("strict-dot-conv-math", "--xla_cpu_strict_dot_conv_math=true"),
)
SAME = "same compiled programs as the default: not timed"
QUICK_SETTINGS = ("default", "ynn-off", "ynn-dot", "onednn", "custom-matmul-tiling")
DTYPES = ("float32", "bfloat16")
LEADING = (32, 64)  # (batch, windows) of the per-head input: 2048 rows
FULL_SHAPES = {
    "gemm": ((2048, 64, 512), (2048, 512, 2048), (2048, 2048, 2048), (2048, 64, 64)),
    "batched": ((8, 64), (16, 128), (4, 512)),  # (H, D) at 2048 rows
    "per_head": ((8, 64), (16, 128), (4, 512)),
    "invariant": ((4096, 1024, 1024),),
    "rows": 2048,
    "leading": LEADING,
}
QUICK_SHAPES = {
    "gemm": ((64, 16, 32), (64, 32, 32)),
    "batched": ((4, 16),),
    "per_head": ((4, 16),),
    "invariant": ((256, 64, 64),),
    "rows": 64,
    "leading": (4, 16),
}
KEPT_ROWS = 64  # rows of each jax output kept for the numerics comparison


@dataclass
class Case:
    """One comparison timed together: jax calls and torch calls on the same shapes and dtype."""

    name: str
    group: str
    jax: dict  # name -> (fn, make_args(i))
    torch: dict
    ratios: list = field(default_factory=list)  # (label, numerator key, denominator key or "best torch")
    note: str = ""


def _normal(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _maker(shapes, dtype: str, framework: str):
    """``make(i)``: the i-th input set (float32 normals rounded to ``dtype``) in ``framework``."""
    import jax.numpy as jnp
    import torch

    def make(i):
        arrays = [_normal(100 * i + n, shape) for n, shape in enumerate(shapes)]
        if framework == "jax":
            return tuple(jnp.asarray(a).astype(dtype) for a in arrays)
        return tuple(torch.from_numpy(a).to(getattr(torch, dtype)) for a in arrays)

    return make


def build_cases(shapes: dict, dtype: str) -> list[Case]:
    """Every comparison of one dtype at ``shapes`` (:data:`FULL_SHAPES` or :data:`QUICK_SHAPES`)."""
    import jax
    import jax.numpy as jnp
    import torch
    from flax import nnx

    import jaxlin
    import torch_ref
    from jaxlin import auto

    matmul = jax.jit(jnp.matmul)
    cases = []
    for m, k, n in shapes["gemm"]:
        operands = ((m, k), (k, n))
        cases.append(
            Case(
                f"GEMM {m}×{k}×{n}",
                "gemm",
                {"jnp.matmul": (matmul, _maker(operands, dtype, "jax"))},
                {"torch.matmul": (torch.matmul, _maker(operands, dtype, "torch"))},
                [("jax / torch", "jnp.matmul", "torch.matmul")],
            )
        )
    rows = shapes["rows"]
    for heads, size in shapes["batched"]:
        operands = ((heads, rows, size), (heads, size, size))
        cases.append(
            Case(
                f"batched H{heads}·D{size}",
                "batched",
                {"jnp.matmul": (matmul, _maker(operands, dtype, "jax"))},
                {"torch.bmm": (torch.bmm, _maker(operands, dtype, "torch"))},
                [("jax / torch", "jnp.matmul", "torch.bmm")],
            )
        )
    leading = shapes["leading"]
    for heads, size in shapes["per_head"]:
        for layout, head_axis, shape in (
            ("heads last", -2, (*leading, heads, size)),
            ("heads first", 0, (heads, *leading, size)),
        ):
            jax_calls, torch_calls = {}, {}
            for impl in ("loop", "einsum", "vmap"):
                module = jaxlin.PerHeadLinear(
                    heads, size, size, impl=impl, head_axis=head_axis, param_dtype=dtype, rngs=nnx.Rngs(0)
                )
                jax_calls[f"jaxlin {impl}"] = (jaxlin.jitted(module), _maker((shape,), dtype, "jax"))
            for impl in ("bmm", "vmap"):  # torch_ref's loop: 2-10x slower here, never the fastest
                torch_module = torch_ref.PerHeadLinear(
                    heads, size, size, impl=impl, head_axis=head_axis, dtype=getattr(torch, dtype)
                )
                torch_calls[f"torch_ref {impl}"] = (_no_grad(torch_module), _maker((shape,), dtype, "torch"))
            chosen = (
                "einsum" if head_axis == 0 else auto.fastest_per_head(heads, rows, size, size, backend="cpu")
            )
            cases.append(
                Case(
                    f"PerHeadLinear h{heads}·{size}, {layout}",
                    "per_head",
                    jax_calls,
                    torch_calls,
                    [(f"{name} / best torch_ref", name, "best torch") for name in jax_calls],
                    note=f"impl=auto takes {chosen}",
                )
            )
    for m, k, n in shapes["invariant"]:
        jax_calls, torch_calls = {}, {}
        for name, cls in (("Linear", jaxlin.Linear), ("BatchInvariantLinear", jaxlin.BatchInvariantLinear)):
            module = cls(k, n, param_dtype=dtype, rngs=nnx.Rngs(0))
            jax_calls[f"jaxlin {name}"] = (jaxlin.jitted(module), _maker(((m, k),), dtype, "jax"))
            torch_module = getattr(torch_ref, name)(k, n, dtype=getattr(torch, dtype))
            torch_calls[f"torch_ref {name}"] = (_no_grad(torch_module), _maker(((m, k),), dtype, "torch"))
        cases.append(
            Case(
                f"Linear {m}×{k}→{n}",
                "invariant",
                jax_calls,
                torch_calls,
                [
                    ("jax BatchInvariant / Linear", "jaxlin BatchInvariantLinear", "jaxlin Linear"),
                    ("torch BatchInvariant / Linear", "torch_ref BatchInvariantLinear", "torch_ref Linear"),
                    ("jax / torch Linear", "jaxlin Linear", "torch_ref Linear"),
                ],
            )
        )
    return cases


def _no_grad(module):
    import torch

    def call(*inputs):
        with torch.no_grad():
            return module(*inputs)

    return call


def _to_numpy(y) -> np.ndarray:
    if hasattr(y, "detach"):
        return y.detach().float().numpy()
    return np.asarray(y.astype("float32"))


def gemm_program(dtype: str) -> str:
    """The compiled program of a small plain GEMM in ``dtype`` under this process's XLA_FLAGS: its
    instructions in order (the study's :func:`~crosscheck.study.engine.program_outline`)."""
    import jax
    import jax.numpy as jnp

    from crosscheck.study.engine import program_outline

    a, b = jnp.ones((256, 64), dtype), jnp.ones((64, 128), dtype)
    return program_outline(jax.jit(jnp.matmul).lower(a, b).compile().as_text())


def run_case(case: Case, repeats: int) -> tuple[dict, dict]:
    """Time ``case`` (interleaved rounds) and return its record and its jax outputs' first rows."""
    import jax

    from crosscheck.runtime.ratio_intervals import paired_ratio
    from crosscheck.runtime.timing import measure, prepare

    prepared, kept = {}, {}
    for framework, calls in (("jax", case.jax), ("torch", case.torch)):
        sync = jax.block_until_ready if framework == "jax" else (lambda _: None)
        for name, (fn, make) in calls.items():
            prepared[name] = prepare(fn, make, sync=sync, group=framework)
            if framework == "jax":
                out = _to_numpy(fn(*prepared[name].argsets[0]))
                kept[name] = out.reshape(-1, out.shape[-1])[:KEPT_ROWS]
    timings = measure(prepared, repeats=repeats)
    medians = {name: t.median_s for name, t in timings.items()}
    best_torch = min(case.torch, key=medians.get)
    ratios = {}
    for label, top, bottom in case.ratios:
        bottom = best_torch if bottom == "best torch" else bottom
        interval = paired_ratio(timings[top].samples_s, timings[bottom].samples_s)
        ratios[label] = interval.as_dict() | {"denominator": bottom}
    record = {
        "case": case.name,
        "group": case.group,
        "median_ms": {name: 1e3 * value for name, value in medians.items()},
        "best_torch": best_torch,
        "ratios": ratios,
        "rounds": repeats,
    }
    if case.note:
        record["note"] = case.note
    return record, kept


def run_setting(shapes: dict, repeats: int, dtypes=DTYPES) -> tuple[list[dict], dict]:
    """Every case of every dtype under this process's XLA_FLAGS: records and kept output rows."""
    records, kept = [], {}
    for dtype in dtypes:
        for case in build_cases(shapes, dtype):
            record, outputs = run_case(case, repeats)
            records.append(record | {"dtype": dtype})
            kept |= {f"{dtype}|{case.name}|{name}": rows for name, rows in outputs.items()}
    return records, kept


def programs_fingerprint(shapes: dict, dtypes=DTYPES) -> str:
    """A hash of the compiled programs of every jax call of every case under this process's XLA_FLAGS:
    two settings with the same hash run the very same programs (timing them again measures noise)."""
    import hashlib

    digest = hashlib.sha256()
    for dtype in dtypes:
        for case in build_cases(shapes, dtype):
            for fn, make in case.jax.values():
                digest.update(_program_only(fn.lower(*make(0)).compile().as_text()).encode())
    return digest.hexdigest()


_LOCATION_TABLES = ("FileNames", "FunctionNames", "FileLocations", "StackFrames")


def _program_only(hlo_text: str) -> str:
    """Compiled HLO text without source locations (metadata, the file, function, location and
    stack-frame tables): the program alone. The tables name the call site that first traced the
    program, which a persistent compilation cache hands to every later caller.

    >>> _program_only('%d = f32[2] dot(%a), metadata={op_name="x" stack_frame_id=2}')
    '%d = f32[2] dot(%a)'
    >>> _program_only('HloModule m\\n\\nFileNames\\n1 "a.py"\\n\\nStackFrames\\n1 {id=1}\\n\\nENTRY %e')
    'HloModule m\\n\\nENTRY %e'
    """
    kept, in_table = [], False
    for line in hlo_text.splitlines():
        if line in _LOCATION_TABLES:
            in_table = True
        elif in_table and not line.strip():
            in_table = False
        elif not in_table:
            kept.append(re.sub(r",? ?metadata=\{[^}]*\}", "", line))
    return "\n".join(kept)


def _worker(args) -> None:
    import jax
    import torch

    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    programs = {dtype: gemm_program(dtype) for dtype in DTYPES}
    fingerprint = programs_fingerprint(shapes)
    versions = {"jax": jax.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    result = {"programs": programs, "versions": versions, "fingerprint": fingerprint}
    if args.same_as and Path(args.same_as).read_text() == fingerprint:
        Path(args.result).write_text(json.dumps(result | {"records": [], "status": SAME}))
        return
    records, kept = run_setting(shapes, args.repeats)
    np.savez(args.kept, **{key.replace("/", "÷"): value for key, value in kept.items()})
    Path(args.result).write_text(json.dumps(result | {"records": records, "status": "ok"}))


# ---------------------------------------------------------------- the parent: settings, tables


def machine() -> dict:
    """CPU model, cores, the cpu flags that matter for dots, load average."""
    model, flags = platform.processor(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
    except (OSError, AttributeError):
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "avx512_fp16")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "cpu_flags": [f for f in wanted if f in flags],
        "python": platform.python_version(),
    }


def machine_slug(info: dict) -> str:
    """``amd-epyc-2cores`` from the CPU model and core count.

    >>> machine_slug({"cpu": "AMD EPYC 9R14 96-Core Processor", "cores": 2})
    'amd-epyc-2cores'
    >>> machine_slug({"cpu": "Intel(R) Xeon(R) Platinum 8488C", "cores": 2})
    'intel-xeon-2cores'
    """
    words = re.sub(r"\(R\)|\(TM\)", "", info["cpu"]).lower().split()
    return f"{'-'.join(words[:2])}-{info['cores']}cores"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_settings(settings, *, quick: bool, repeats: int, workdir: Path) -> dict:
    """Each setting in its own process; returns per setting: flags, status, records, programs, kept rows."""
    results = {}
    for slug, flags in settings:
        env = dict(os.environ)
        env.pop("XLA_FLAGS", None)
        if flags:
            env["XLA_FLAGS"] = flags
        result, kept = workdir / f"{slug}.json", workdir / f"{slug}.npz"
        command = [sys.executable, __file__, "--worker", "--repeats", str(repeats)]
        command += ["--result", str(result), "--kept", str(kept)] + (["--quick"] if quick else [])
        if slug != "default" and "fingerprint" in results.get("default", {}):
            same_as = workdir / "default.fingerprint"
            same_as.write_text(results["default"]["fingerprint"])
            command += ["--same-as", str(same_as)]
        start = time.time()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        entry = {"flags": flags, "wall_s": round(time.time() - start, 1)}
        if done.returncode != 0:
            unknown = "Unknown flag" in done.stderr
            entry["status"] = "not accepted" if unknown else f"failed (exit {done.returncode})"
            entry["stderr"] = done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else []
        else:
            entry |= json.loads(result.read_text())
            if entry["status"] == "ok":
                with np.load(kept) as rows:
                    entry["kept"] = {key.replace("÷", "/"): rows[key] for key in rows.files}
        print(f"{slug}: {entry['status']} ({entry['wall_s']} s)", flush=True)
        results[slug] = entry
    return results


def differences(results: dict) -> None:
    """Each setting's greatest absolute difference from the default's outputs, per dtype, in place."""
    base = results.get("default", {}).get("kept", {})
    for entry in results.values():
        kept = entry.pop("kept", None)
        if kept is None or not base:
            continue
        diff, scale = {}, {}
        for key, rows in kept.items():
            dtype = key.split("|")[0]
            if key in base:
                gap = float(np.max(np.abs(rows.astype(np.float64) - base[key].astype(np.float64))))
                diff[dtype] = max(diff.get(dtype, 0.0), gap)
                scale[dtype] = max(scale.get(dtype, 0.0), float(np.max(np.abs(base[key]))))
        entry["max_abs_diff_vs_default"] = diff
        entry["max_abs_output"] = scale


def _cell(ratio: dict) -> str:
    low, high = ratio["interval"]
    return f"{ratio['ratio']:.2f} [{low:.2f}–{high:.2f}]"


def markdown(report: dict) -> str:
    """The report as Markdown: machine and command, the settings, then one table per dtype with a row
    per (case, ratio) and a column per accepted setting."""
    info, results = report["machine"], report["settings"]
    lines = [
        f"# XLA:CPU options for dots: {info['cpu']}, {info['cores']} cores",
        "",
        f"Command: `{report['command']}` · {report['date']} · wall {report['wall_s']:.0f} s · "
        f"load average at start {report['load_start']}, at end {report['load_end']} · "
        f"cpu flags {', '.join(info['cpu_flags'])} · Python {info['python']} · "
        + ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items()),
        "",
        "Each cell: median of the per-round ratios of times [95% bootstrap interval], "
        f"{report['repeats']} interleaved rounds, jax and torch in the same process; below 1 jax is faster. "
        "Torch is the yardstick in every process, so a setting that speeds jax lowers its column.",
        "",
        "| setting | XLA_FLAGS | status | float32 GEMM program | bfloat16 GEMM program "
        "| max abs diff vs default, float32 / bfloat16 (largest |output|) |",
        "|---|---|---|---|---|---|",
    ]
    for slug, entry in results.items():
        programs = entry.get("programs", {})
        diff = entry.get("max_abs_diff_vs_default", {})
        scale = entry.get("max_abs_output", {})
        diffs = " / ".join(f"{diff[d]:.3g} ({scale[d]:.3g})" if d in diff else "–" for d in DTYPES)
        lines.append(
            f"| {slug} | `{entry['flags'] or '(unset)'}` | {entry['status']} "
            f"| {programs.get('float32', '–')} | {programs.get('bfloat16', '–')} | {diffs} |"
        )
    accepted = [slug for slug, entry in results.items() if entry["status"] == "ok"]
    lines += ["", *against_default(results, accepted)]
    for dtype in DTYPES:
        lines += ["", f"## {dtype}", "", "| case | ratio | " + " | ".join(accepted) + " |"]
        lines.append("|---|---|" + "---|" * len(accepted))
        rows: dict = {}
        for slug in accepted:
            for record in results[slug]["records"]:
                if record["dtype"] != dtype:
                    continue
                for label, ratio in record["ratios"].items():
                    rows.setdefault((record["case"], label), {})[slug] = ratio
        for (case, label), cells in rows.items():
            values = " | ".join(_cell(cells[s]) if s in cells else "–" for s in accepted)
            lines.append(f"| {case} | {label} | {values} |")
        lines += ["", f"Medians (ms), {dtype}, default setting:", ""]
        for record in results.get("default", {}).get("records", []):
            if record["dtype"] == dtype:
                times = ", ".join(f"{k} {v:.3g}" for k, v in record["median_ms"].items())
                note = f" ({record['note']})" if "note" in record else ""
                lines.append(f"- {record['case']}: {times}{note}")
    return "\n".join(lines) + "\n"


def against_default(results: dict, accepted: list[str]) -> list[str]:
    """Per dtype and group of cases, each setting's jax/torch ratios over the default's (geometric mean
    over the group's ratios with jax on top; below 1: the setting made jax faster against torch)."""
    base = {
        (r["dtype"], r["case"], label): ratio["ratio"]
        for r in results.get("default", {}).get("records", [])
        for label, ratio in r["ratios"].items()
    }
    base_ms = {
        (r["dtype"], r["case"], name): ms
        for r in results.get("default", {}).get("records", [])
        for name, ms in r["median_ms"].items()
    }
    groups = list(dict.fromkeys(r["group"] for e in results.values() for r in e.get("records", [])))
    if not base or not groups:
        return []
    lines = [
        "Each setting against the default: geometric mean over a group's cases of (the setting's ratio / "
        "the default's), ratios with jax on top only; below 1 the setting made jax faster against torch. "
        "In brackets: the same for jax's own medians (setting / default, measured minutes apart in "
        "different processes, so without torch's yardstick).",
        "",
        "| dtype | group | " + " | ".join(accepted) + " |",
        "|---|---|" + "---|" * len(accepted),
    ]
    for dtype in DTYPES:
        for group in groups:
            cells = []
            for slug in accepted:
                logs = [
                    np.log(ratio["ratio"] / base[(dtype, r["case"], label)])
                    for r in results[slug]["records"]
                    if r["dtype"] == dtype and r["group"] == group
                    for label, ratio in r["ratios"].items()
                    if not label.startswith("torch") and (dtype, r["case"], label) in base
                ]
                own = [
                    np.log(ms / base_ms[(dtype, r["case"], name)])
                    for r in results[slug]["records"]
                    if r["dtype"] == dtype and r["group"] == group
                    for name, ms in r["median_ms"].items()
                    if name.startswith(("jnp", "jaxlin")) and (dtype, r["case"], name) in base_ms
                ]
                cell = f"{np.exp(np.mean(logs)):.2f}" if logs else "–"
                cells.append(f"{cell} ({np.exp(np.mean(own)):.2f})" if own else cell)
            lines.append(f"| {dtype} | {group} | " + " | ".join(cells) + " |")
    return lines


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """``<slug>.json`` and ``<slug>.md`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = machine_slug(report["machine"])
    json_path, md_path = out_dir / f"{slug}.json", out_dir / f"{slug}.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 3 rounds, four settings")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 12; quick 3)")
    parser.add_argument("--out", default="docs/results/xla-cpu-flags")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--kept", help=argparse.SUPPRESS)
    parser.add_argument("--same-as", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.repeats = args.repeats or (3 if args.quick else 12)
    if args.worker:
        _worker(args)
        return
    settings = [s for s in SETTINGS if not args.quick or s[0] in QUICK_SETTINGS]
    start, load_start = time.time(), load_average()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as workdir:
        results = run_settings(settings, quick=args.quick, repeats=args.repeats, workdir=Path(workdir))
    differences(results)
    versions = next((e["versions"] for e in results.values() if "versions" in e), {})
    command = "python docs/scripts/xla_cpu_flags.py " + " ".join(sys.argv[1:])
    report = {
        "machine": machine(),
        "command": command.strip(),
        "date": date,
        "wall_s": time.time() - start,
        "load_start": load_start,
        "load_end": load_average(),
        "repeats": args.repeats,
        "quick": args.quick,
        "versions": versions,
        "settings": results,
    }
    for path in write_report(report, Path(args.out)):
        print(path)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
