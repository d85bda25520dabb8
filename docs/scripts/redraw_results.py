"""Redraw the committed results' pictures (and the study's ``study.md``) from their committed JSON.

Usage:
    python docs/scripts/redraw_results.py [--study DIR ...] [--train DIR ...] [--roofline]

The full study takes 15-20 minutes and ``crosscheck train`` a few: when only the drawing changes,
this redraws from the measurements already committed, so the numbers in the pictures stay those of
the run each directory's ``study.md``/``train.md`` names (command, date, machine). Nothing is timed.
Defaults: ``docs/results/study-cpu`` and ``docs/results/training`` with its planted runs.

``--roofline`` also puts every study row against the roofline again, by the current rule
(:mod:`crosscheck.study.roofline`), and evaluates the targets again: the measurements are kept, what is
derived from them follows the rule. The cache size is read from this machine: run it only on the machine
that measured the study (``study.md`` names it).
"""

from __future__ import annotations

import argparse
import glob
import json
import os

from crosscheck.atomic import atomic_write
from crosscheck.study import outputs, parity, roofline, targets
from crosscheck.study.plots import draw
from crosscheck.training import plots as training_plots

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results")


def _goals(records: list[dict], committed: list[dict]) -> list[dict]:
    """The targets evaluated again from the records (adding what older results lack, such as which side
    of its limit meets a target), provided they agree with the committed ones on every committed key."""
    again = targets.evaluate(targets.TARGETS, records)
    same = len(again) == len(committed) and all(
        all(new.get(key) == value for key, value in old.items())
        for new, old in zip(again, committed, strict=True)
    )
    return again if same else committed


def against_the_roofline_again(document: dict, cache_bytes: int | None) -> None:
    """Every record's roofline fields, and the targets on the roofline, recomputed from the measurements
    (in place)."""
    derived = ("gflops", "gbps", "bound", "roofline_fraction", "above_roofline")
    for record in document["measurements"]:
        for key in derived:
            record.pop(key, None)
    roofline.annotate(document["measurements"], cache_bytes=cache_bytes)
    # only the roofline's targets: the others' intervals come from per-round times study.json leaves out
    again = {goal["target"]: goal for goal in targets.evaluate(targets.TARGETS, document["measurements"])}
    goals = document["targets"]
    document["targets"] = [again.get(g["target"], g) if "roofline" in g["name"] else g for g in goals]


def redraw_study(directory: str, *, again: bool = False) -> list[str]:
    """The study's PNGs and ``study.md`` from ``directory/study.json``; the files written. ``again``: the
    rows put against the roofline again first, and ``study.json`` rewritten with them."""
    path = os.path.join(directory, "study.json")
    with open(path) as file:
        document = json.load(file)
    if again:
        against_the_roofline_again(document, roofline.last_level_cache_bytes())
        atomic_write(path, json.dumps(document, indent=1, allow_nan=False) + "\n")
    records = document["measurements"]
    goals = _goals(records, document["targets"])
    rows = document.get("kernel_parity")  # the run's rows, with their intervals (none before issue 23)
    rows = None if rows is None else [parity.ParityRow.from_dict(row) for row in rows]
    drawn = draw(directory, records, roofline.limits(records), rows)
    quick = bool(document.get("quick"))
    text = outputs.markdown(document["environment"], records, goals, drawn, quick=quick, parity_rows=rows)
    atomic_write(os.path.join(directory, "study.md"), text)
    return [os.path.join(directory, name) for name in drawn] + [os.path.join(directory, "study.md")]


def redraw_training(directory: str) -> list[str]:
    """Every ``train-<optimizer>.png`` from ``directory/train.json``; the files written."""
    with open(os.path.join(directory, "train.json")) as file:
        document = json.load(file)
    written = []
    for record in document["optimizers"]:
        path = os.path.join(directory, f"train-{record['optimizer']['name']}.png")
        training_plots.plot_training(path, record)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", nargs="*", default=[os.path.join(RESULTS, "study-cpu")])
    training = [os.path.join(RESULTS, "training")] + sorted(
        glob.glob(os.path.join(RESULTS, "training", "planted-*"))
    )
    parser.add_argument("--train", nargs="*", default=training)
    parser.add_argument("--roofline", action="store_true", help="the study rows against the roofline again")
    args = parser.parse_args()
    for directory in args.study:
        print("\n".join(redraw_study(directory, again=args.roofline)))
    for directory in args.train:
        print("\n".join(redraw_training(directory)))


if __name__ == "__main__":
    main()
