"""What ``crosscheck train`` writes: ``train.json`` and ``train.md`` with one PNG per optimizer, or for
the experiment ``experiment.json``, ``experiment.md`` and its PNG.

>>> _verdict({"passed": False, "first_failure": 3, "first_failure_tensor": "head.bias"})
'**FAIL** at step 3 (head.bias)'
"""

from __future__ import annotations

import os

import numpy as np

from crosscheck.reporting.documents import SCHEMA, write_documents
from crosscheck.reporting.environment import machine_line
from crosscheck.reporting.tables import markdown_table
from crosscheck.training import plots
from crosscheck.training.optimizers import matching_notes
from crosscheck.training.parity import Parity
from crosscheck.training.planted import DESCRIPTIONS
from crosscheck.training.trajectory import rule_record


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _loss_at(run, step: int) -> float | None:
    """The loss of the batch of update ``step`` (the first is 1), taken before that update."""
    return float(run.losses[step - 1]) if step else None


def parity_record(parity: Parity, dtype: str = "float32") -> dict:
    """One optimizer's result: configuration, how it is matched, the verdict, and every step."""
    d, runs = parity.divergence, parity.runs
    jax, torch = runs[f"jax-{dtype}"], runs[f"torch-{dtype}"]
    totals = d.totals()
    first = d.first_failure
    steps = []
    for index, step in enumerate(d.steps.tolist()):
        steps.append(
            {
                "step": step,
                "loss_jax": _loss_at(jax, step),
                "loss_torch": _loss_at(torch, step),
                "distance": float(totals["cross"][index]),
                "allowance": float(totals["allowance"][index]),
                "own_jax": float(totals["own_a"][index]),
                "own_torch": float(totals["own_b"][index]),
                "float64_distance": float(totals["float64"][index]),
                "ratio": _finite(d.ratio[index]),
                "float64_ratio": _finite(d.float64_ratio[index]),
                "passed": bool(d.passed[index]),
            }
        )
    return {
        "optimizer": parity.job.optimizer.record(),
        "model": parity.job.model.name,
        "plant": parity.job.plant,
        "matched": matching_notes(parity.job.optimizer),
        "passed": parity.passed,
        "first_failure": first,
        "first_failure_tensor": None
        if first is None
        else d.worst_key(int(np.flatnonzero(d.steps == first)[0])),
        "worst_ratio": _finite(d.ratio.max()),
        "worst_float64_ratio": _finite(d.float64_ratio.max()),
        "final_loss": {"jax": float(jax.losses[-1]), "torch": float(torch.losses[-1])},
        "accuracy": {"jax": jax.accuracy, "torch": torch.accuracy},
        "seconds": {name: run.seconds for name, run in runs.items()},
        "compile_seconds": {
            name: run.compile_seconds for name, run in runs.items() if run.framework == "jax"
        },
        "steps": steps,
    }


def summary_rows(records: list[dict]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The terminal table of ``crosscheck train``: headers and one row per optimizer."""
    headers = (
        "optimizer",
        "final loss jax",
        "final loss torch",
        "worst ratio",
        "worst float64 ratio",
        "verdict",
    )
    rows = [
        (
            r["optimizer"]["name"],
            f"{r['final_loss']['jax']:.5g}",
            f"{r['final_loss']['torch']:.5g}",
            _ratio(r["worst_ratio"]),
            _ratio(r["worst_float64_ratio"]),
            _verdict(r).replace("**", ""),
        )
        for r in records
    ]
    return headers, rows


def _ratio(value: float | None) -> str:
    return "inf" if value is None else f"{value:.3g}"


def experiment_rows(record: dict) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The terminal table of the experiment: accuracy per variant over the seeds."""
    headers = ("variant", "mean accuracy %", "std (points)", "95% CI of the mean %")
    rows = [
        (name, _percent(s["mean"]), _percent(s["std"]), "[{}, {}]".format(*map(_percent, s["interval"])))
        for name, s in record["summary"].items()
    ]
    return headers, rows


def _verdict(record: dict) -> str:
    if record["passed"]:
        return "pass"
    return f"**FAIL** at step {record['first_failure']} ({record['first_failure_tensor']})"


def train_markdown(document: dict, plot_names: list[str]) -> str:
    """``train.md``: the command and machine, the rule, one row per optimizer, how each is matched."""
    env, rule = document["environment"], document["rule"]
    lines = ["# crosscheck train", "", f"`{env.get('command')}` · {env.get('timestamp')}", ""]
    lines += [f"{machine_line(env)} · versions {env.get('versions')}", ""]
    lines += [
        f"Model `{document['model']}`, {document['steps']} steps of batch {document['batch']}, "
        f"seed {document['seed']}; plant: {document['plant']} ({DESCRIPTIONS[document['plant']]}). "
        f"torch on {document['torch_threads']} thread(s). Wall time {document['wall_seconds']:.1f} s.",
        "",
    ]
    lines += ["## Rule", "", f"- {rule['distance']}", f"- rounding tier: `{rule['rounding_tier']}`"]
    lines += [f"- same-function tier: `{rule['same_function_tier']}`", f"- {rule['step_passes']}", ""]
    rows = []
    for r in document["optimizers"]:
        ratio = lambda v: "–" if v is None else f"{v:.3g}"  # noqa: E731
        rows.append(
            (
                r["optimizer"]["name"],
                f"{r['final_loss']['jax']:.5g} / {r['final_loss']['torch']:.5g}",
                f"{r['accuracy']['jax']:.2%} / {r['accuracy']['torch']:.2%}",
                ratio(r["worst_ratio"]),
                ratio(r["worst_float64_ratio"]),
                _verdict(r),
            )
        )
    headers = (
        "optimizer",
        "final loss jax / torch",
        "test accuracy jax / torch",
        "worst ratio",
        "worst float64 ratio",
        "verdict",
    )
    lines += ["## Results", "", *markdown_table(headers, rows), ""]
    for r in document["optimizers"]:
        config = r["optimizer"]
        lines += [f"## {config['name']}", "", f"`{config}`", ""] + [f"- {note}" for note in r["matched"]]
        seconds = ", ".join(f"{name} {value:.2f} s" for name, value in r["seconds"].items())
        lines += [f"- time per run (JAX including compile): {seconds}", ""]
    lines += ["## Plots", ""] + [f"![{name}]({name})" for name in plot_names]
    return "\n".join(lines) + "\n"


def write_train(out_dir: str, document: dict) -> tuple[str, ...]:
    """Write the PNGs, ``train.json`` and ``train.md``; return their paths."""
    names = [
        plots.plot_training(os.path.join(out_dir, f"train-{r['optimizer']['name']}.png"), r)
        for r in document["optimizers"]
    ]
    paths = write_documents(out_dir, "train", document, train_markdown(document, names))
    return (*paths, *(os.path.join(out_dir, name) for name in names))


def train_document(environment: dict, records: list[dict], **facts) -> dict:
    """The ``train.json`` document: environment, rule, the run's facts and one record per optimizer."""
    return {
        "schema": SCHEMA,
        "environment": environment,
        "rule": rule_record("float32"),
        **facts,
        "optimizers": records,
    }


def _percent(value: float) -> str:
    return f"{100 * value:.2f}"


def experiment_markdown(document: dict, plot_name: str) -> str:
    """``experiment.md``: accuracies per variant, paired differences, the answers, the checks."""
    env, r = document["environment"], document["experiment"]
    lines = [
        "# crosscheck train --experiment conv-vs-linear",
        "",
        f"`{env.get('command')}` · {env.get('timestamp')}",
        "",
        f"{machine_line(env)} · versions {env.get('versions')}",
        "",
        f"{r['seeds']} seeds · task `{r['task']}` · `{r['optimizer']}`, batch {r['batch']} · "
        f"torch on {r['torch_threads']} thread(s) · {r['seconds']:.0f} s",
        "",
    ]
    rows = []
    for name, s in r["summary"].items():
        low, high = s["interval"]
        rows.append(
            (
                name,
                r["variants"][name],
                _percent(s["mean"]),
                _percent(s["std"]),
                f"{_percent(s['min'])} – {_percent(s['max'])}",
                f"[{_percent(low)}, {_percent(high)}]",
            )
        )
    headers = ("variant", "what", "mean accuracy %", "std (points)", "range %", "95% CI of the mean %")
    lines += ["## Test accuracy (torch, float32)", "", *markdown_table(headers, rows), ""]
    rows = []
    for name, d in r["differences"].items():
        low, high = d["interval"]
        rows.append(
            (
                name,
                f"{_percent(d['mean']):s}",
                _percent(d["std"]),
                f"[{_percent(low)}, {_percent(high)}]",
                f"{d['higher']} / {d['equal']} / {d['lower']}",
            )
        )
    headers = (
        "difference",
        "mean (points)",
        "std (points)",
        "95% CI (points)",
        "seeds higher / equal / lower",
    )
    lines += [
        "## Paired differences (same seed, same batches)",
        "",
        *markdown_table(headers, rows),
        "",
    ]
    lines += ["## Answers", ""] + [f"- `{key}`: {value}" for key, value in r["answers"].items()]
    lines += ["", f"![accuracy]({plot_name})", ""]
    return "\n".join(lines)


def write_experiment(out_dir: str, environment: dict, record: dict) -> tuple[str, ...]:
    """Write ``experiment.png``, ``experiment.json`` and ``experiment.md``; return their paths."""
    name = plots.plot_experiment(os.path.join(out_dir, "experiment.png"), record)
    document = {
        "schema": SCHEMA,
        "environment": environment,
        "rule": rule_record("float32"),
        "experiment": record,
    }
    paths = write_documents(out_dir, "experiment", document, experiment_markdown(document, name))
    return (*paths, os.path.join(out_dir, name))
