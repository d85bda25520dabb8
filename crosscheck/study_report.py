"""Run the study's configurations and write what it found: CSV, JSON, PNG plots, Markdown, targets.

The targets are the ratios issue 5 asks of jaxlin, each computed from measurements of one run.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable

from crosscheck.report import _atomic_write, _jsonable, write_documents

FIELDS = (
    "study",
    "config",
    "impl",
    "framework",
    "heads",
    "size",
    "rows",
    "length",
    "n",
    "flops",
    "median_s",
    "spread_s",
    "min_s",
    "max_s",
    "compile_s",
    "repeats",
    "gflops",
    "peak_fraction",
    "equal",
    "dots",
    "one_batched_dot",
    "error",
)


def plan(quick: bool, device: str, *, compiled: bool) -> list[tuple[str, Callable]]:
    """``(description, build)`` for every configuration; ``build()`` returns a Config or a list."""
    from crosscheck import study_configs as sc

    grid = sc.QUICK if quick else sc.FULL
    steps = [("GEMM peak", lambda: sc.peak_config(grid["peak_n"]))]
    for leading in grid["leading"]:
        for heads in grid["heads"]:
            for size in grid["sizes"]:
                target = leading == (32, 64) and (heads, size) in sc.TARGETS
                steps.append(
                    (
                        f"per-head h{heads} {size} {leading}",
                        lambda h=heads, s=size, lead=leading, t=target: sc.per_head(
                            h, s, lead, device, compiled=compiled and t
                        ),
                    )
                )
    seed_pointwise = (128, 8, 256, 32)
    for shape in [seed_pointwise] if quick else [seed_pointwise, (64, 1024, 256, 256)]:
        steps.append((f"pointwise {shape}", lambda sh=shape: sc.pointwise(*sh, device)))
    for length in grid["pooled_lengths"]:
        steps.append((f"pooled T={length}", lambda t=length: sc.pooled(16, t, 64 if quick else 512, device)))
    for shape in [(128, 256, 256)] if quick else [(128, 768, 768), (4096, 1024, 1024), (1, 768, 768)]:
        steps.append((f"invariant {shape}", lambda sh=shape: sc.invariant(*sh, device)))
    call = [(4, 32, (4, 16))] if quick else [(16, 64, (32, 64)), (8, 64, (32, 64))]
    for heads, size, leading in call:
        steps.append(
            (f"call path h{heads}", lambda h=heads, s=size, lead=leading: sc.call_path(h, s, lead, device))
        )
    bias_rows = 4096 if quick else 65536
    steps.append((f"bias ({bias_rows}, 256)", lambda: sc.bias(bias_rows, 256, device)))
    return steps


def run_plan(steps, *, torch_device: str, advance=None, repeats: int | None = None) -> list[dict]:
    """Build and run every configuration; a configuration that cannot be built is one error record."""
    from crosscheck.study import run_config

    records = []
    for description, build in steps:
        try:
            built = build()
            for config in built if isinstance(built, list) else [built]:
                records += run_config(config, torch_device=torch_device, repeats=repeats)
        except Exception as error:
            records.append(
                {
                    "study": description.split()[0],
                    "config": description,
                    "impl": "–",
                    "error": f"{type(error).__name__}: {error}",
                }
            )
        if advance is not None:
            advance()
    peak = max((r.get("gflops", 0) for r in records if r.get("study") == "peak"), default=0) or None
    for record in records:
        if peak and "gflops" in record:
            record["peak_fraction"] = record["gflops"] / peak
    return records


def _median(records, study: str, config_has: str | None, impl: str) -> float | None:
    for r in records:
        if r.get("study") == study and r.get("impl") == impl and "median_s" in r:
            if config_has is None or config_has in r["config"]:
                return r["median_s"]
    return None


def _fastest(records, study: str, config: str, framework: str, exclude=()) -> tuple[str, float] | None:
    """The fastest correct implementation of ``framework`` at ``config``, among those taking the
    common layout (a heads-first variant answers a different question) and not in ``exclude``."""
    found = [
        (r["median_s"], r["impl"])
        for r in records
        if r.get("study") == study
        and r["config"] == config
        and r.get("framework") == framework
        and "median_s" in r
        and r["impl"] not in exclude
        and "heads-first" not in r["impl"]
        and r.get("equal", True)
    ]
    return (min(found)[1], min(found)[0]) if found else None


def targets(records: list[dict]) -> list[dict]:
    """Each target: what it asks, the measured value, whether it is met (``None``: not measured)."""
    out = []

    def add(name: str, value: float | None, limit: float, *, at_least: bool = False, detail: str = ""):
        met = None if value is None else (value >= limit if at_least else value <= limit)
        out.append({"target": name, "value": value, "limit": limit, "met": met, "detail": detail})

    for heads, size in ((8, 64), (16, 128), (4, 512)):
        config = f"h{heads} {size}→{size} rows 2048"
        ours = _median(records, "per-head", config, "jaxlin einsum")
        best = _fastest(records, "per-head", config, "torch")
        add(
            f"PerHeadLinear default / fastest torch at {config}",
            ours / best[1] if ours and best else None,
            1.0,
            detail=f"fastest torch: {best[0]}" if best else "",
        )
        first = _median(records, "per-head", config, "jaxlin einsum, heads-first input (head_axis=0)")
        torch_first = _median(records, "per-head", config, "torch_ref bmm, heads-first input (head_axis=0)")
        add(
            f"PerHeadLinear default on heads-first input / torch_ref bmm on the same at {config}",
            first / torch_first if first and torch_first else None,
            1.0,
        )
    at = [
        r for r in records if r.get("config") == "h4 512→512 rows 2048" and r.get("impl") == "jaxlin einsum"
    ]
    add(
        "PerHeadLinear default, fraction of GEMM peak at h4 512→512 rows 2048",
        at[0].get("peak_fraction") if at else None,
        0.85,
        at_least=True,
    )
    worst, where = None, ""
    for config in {r["config"] for r in records if r.get("study") == "per-head"}:
        best = _fastest(records, "per-head", config, "jax", exclude=("jaxlin loop",))
        for impl in ("jaxlin einsum", "jaxlin vmap"):
            ours = _median(records, "per-head", config, impl)
            if best and ours and (worst is None or ours / best[1] > worst):
                worst, where = ours / best[1], f"{impl} at {config} vs {best[0]}"
    add(
        "worst jaxlin einsum/vmap / fastest JAX formulation (all per-head configs)", worst, 1.10, detail=where
    )
    for config in sorted({r["config"] for r in records if r.get("study") == "call-path"}):
        ours = _median(records, "call-path", config, "jax.jit over nnx.split state (recommended)")
        raw = _median(records, "call-path", config, "raw jax.jit pure function")
        add(f"recommended call path / raw jax.jit at {config}", ours / raw if ours and raw else None, 1.10)
    for config in sorted({r["config"] for r in records if r.get("study") == "pointwise"}):
        for ours, base in (
            ("jaxlin PointwiseConv dot", "jaxlin Linear"),
            (
                "torch_ref PointwiseConv linear",
                "torch nn.Linear on channels first (transpose, linear, transpose)",
            ),
        ):
            a, b = _median(records, "pointwise", config, ours), _median(records, "pointwise", config, base)
            add(f"{ours} / {base} at {config}", a / b if a and b else None, 1.05)
    for config in sorted({r["config"] for r in records if r.get("study") == "pooled"}):
        on, off = (_median(records, "pooled", config, f"jaxlin reorder={flag}") for flag in (True, False))
        if config.startswith("T=2048"):
            add(
                f"PooledHead reorder speed-up at {config}",
                off / on if on and off else None,
                30,
                at_least=True,
            )
    for config in sorted({r["config"] for r in records if r.get("study") == "bias"}):
        a = _median(records, "bias", config, "jaxlin Linear use_bias=True")
        b = _median(records, "bias", config, "jaxlin Linear use_bias=False")
        add(f"jaxlin Linear with bias / without at {config}", a / b if a and b else None, 1.10)
    for config in sorted({r["config"] for r in records if r.get("study") == "invariant"}):
        for ours, base in (
            ("jaxlin BatchInvariantLinear", "jaxlin Linear"),
            ("torch BatchInvariantLinear", "torch Linear"),
        ):
            a, b = _median(records, "invariant", config, ours), _median(records, "invariant", config, base)
            if not config.startswith("(1,"):
                add(f"{ours} / {base} at {config}", a / b if a and b else None, 1.3)
    return out


def csv_text(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def _ms(value) -> str:
    return "–" if value is None else f"{value * 1e3:.3g} ms"


def markdown(env: dict, records: list[dict], goals: list[dict], plots: list[str]) -> str:
    """``study.md``: environment, targets, then one table per study."""
    device = env.get("device", {})
    lines = [
        "# crosscheck study",
        "",
        f"`{env.get('command')}` · {env.get('timestamp')}",
        "",
        f"{device.get('cpu_model')} · {device.get('cpu_cores')} cores · jax {device.get('jax_backend')} "
        f"({device.get('jax_device')}) · torch {device.get('torch_device')} ({device.get('torch_threads')} "
        f"threads) · XLA_FLAGS={env.get('xla_flags') or '(unset)'} · versions {env.get('versions')}",
        "",
        "## Targets",
        "",
        "| target | measured | limit | met |",
        "|---|---|---|---|",
    ]
    for goal in goals:
        value = "–" if goal["value"] is None else f"{goal['value']:.3g}"
        met = {True: "yes", False: "**no**", None: "not measured"}[goal["met"]]
        detail = f" ({goal['detail']})" if goal["detail"] else ""
        lines.append(f"| {goal['target']}{detail} | {value} | {goal['limit']} | {met} |")
    for study in dict.fromkeys(r.get("study") for r in records):
        rows = [r for r in records if r.get("study") == study]
        lines += [
            "",
            f"## {study}",
            "",
            "| config | impl | median | spread | compile | GFLOP/s | % peak | one batched dot | equal |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            if "median_s" not in r:
                lines.append(f"| {r.get('config')} | {r.get('impl')} | {r.get('error', '–')} | | | | | | |")
                continue
            dot = {True: "yes", False: "no"}.get(r.get("one_batched_dot"), "–")
            peak = f"{r['peak_fraction']:.0%}" if r.get("peak_fraction") else "–"
            lines.append(
                f"| {r['config']} | {r['impl']} | {_ms(r['median_s'])} | {_ms(r['spread_s'])} | "
                f"{_ms(r['compile_s'])} | {r['gflops']:.3g} | {peak} | {dot} | {r.get('equal')} |"
            )
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def plot(out_dir: str, records: list[dict]) -> list[str]:
    """One PNG per study: time and % of peak per implementation; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for study in dict.fromkeys(r.get("study") for r in records if "median_s" in r):
        rows = [r for r in records if r.get("study") == study and "median_s" in r]
        figure, (time_axis, peak_axis) = plt.subplots(1, 2, figsize=(13, 5))
        configs = list(dict.fromkeys(r["config"] for r in rows))
        for impl in dict.fromkeys(r["impl"] for r in rows):
            points = [(configs.index(r["config"]), r) for r in rows if r["impl"] == impl]
            xs = [i for i, _ in points]
            time_axis.plot(xs, [r["median_s"] * 1e3 for _, r in points], marker="o", label=impl)
            peak_axis.plot(xs, [100 * r.get("peak_fraction", 0) for _, r in points], marker="o", label=impl)
        for axis, label in ((time_axis, "median time (ms, log)"), (peak_axis, "% of measured GEMM peak")):
            axis.set_xticks(range(len(configs)), configs, rotation=90, fontsize=6)
            axis.set_ylabel(label)
        time_axis.set_yscale("log")
        peak_axis.legend(fontsize=6, loc="best")
        figure.suptitle(f"crosscheck study: {study}")
        figure.tight_layout()
        name = f"study-{study}.png"
        figure.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(figure)
        names.append(name)
    return names


def write_outputs(out_dir: str, env: dict, records: list[dict], goals: list[dict]) -> list[str]:
    """``study.csv``, ``study.json``, ``study.md`` and the plots, in ``out_dir``; their paths."""
    os.makedirs(out_dir, exist_ok=True)
    plots = plot(out_dir, records)
    document = {"environment": env, "targets": goals, "measurements": records}
    paths = list(write_documents(out_dir, "study", _jsonable(document), markdown(env, records, goals, plots)))
    _atomic_write(os.path.join(out_dir, "study.csv"), csv_text(records))
    return paths + [os.path.join(out_dir, "study.csv")] + [os.path.join(out_dir, p) for p in plots]
