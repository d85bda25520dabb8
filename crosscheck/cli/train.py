"""``crosscheck train``: one model trained in both frameworks from one weights file on one data stream,
judged step by step against each framework's own float64 run (:mod:`crosscheck.training`).

``--plant`` puts a known porting mistake into the JAX side, to see it caught; ``--experiment
conv-vs-linear`` runs the Conv1d-vs-Linear accuracy experiment over ``--seeds`` seeds instead.

Exit status: 0 when every step passes (the experiment: when its equivalence claims hold), 1 when one
fails or the outputs cannot be written, 2 for a usage error. ``--steps`` is at most
:data:`~crosscheck.training.choices.MAX_STEPS` (10,000): every step is kept in memory to be judged.

>>> from crosscheck.cli.parser import build_parser
>>> build_parser().parse_args(["train", "--optimizer", "adam,sgd"]).optimizer
['adam', 'sgd']
"""

from __future__ import annotations

import argparse
import os
import time

from crosscheck.cli import common, options
from crosscheck.training import choices


def optimizer_list(text: str) -> list[str]:
    """``"sgd,adam"`` as a list of known optimizers, each once."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    bad = [name for name in names if name not in choices.OPTIMIZERS] or ([] if names else [text])
    if bad:
        raise argparse.ArgumentTypeError(
            f"invalid optimizer {bad[0]!r} (choose from {', '.join(choices.OPTIMIZERS)}; "
            "several comma-separated)"
        )
    return names


def steps(text: str) -> int:
    """A count of training steps, 1 to :data:`crosscheck.training.choices.MAX_STEPS`."""
    return options.count(text, most=choices.MAX_STEPS, why=choices.STEPS_LIMIT_WHY)


def _number(text: str, *, least: float, strict: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > least if strict else value >= least) or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r} (a finite number {'>' if strict else '>='} {least:g})"
        )
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, least=0.0, strict=True)


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, least=0.0, strict=False)


def add_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train one model in both frameworks and judge every step against float64",
        description="Train the sparse-input classifier with jaxlin+optax and torch_ref+torch.optim from one "
        "weights file on one batch stream, and each again in float64; judge the distance between the "
        "frameworks at every step against the rounding each makes. Write DIR/train.{json,md} and one PNG "
        "per optimizer (or, with --experiment, DIR/experiment.{json,md,png}). Exit 1 when a step fails.",
    )
    default_optimizers = ",".join(choices.DEFAULT_OPTIMIZERS)
    train.add_argument(
        "--optimizer",
        type=optimizer_list,
        default=list(choices.DEFAULT_OPTIMIZERS),
        metavar="NAMES",
        help=f"{', '.join(choices.OPTIMIZERS)}; comma-separated (default: {default_optimizers})",
    )
    train.add_argument(
        "--steps",
        type=steps,
        metavar="N",
        help=f"training steps, at most {choices.MAX_STEPS} (default: {choices.DEFAULT_STEPS}; the "
        f"experiment: {choices.EXPERIMENT_STEPS}, a multiple of {choices.EXPERIMENT_RECORD_EVERY})",
    )
    train.add_argument(
        "--batch",
        type=options.count,
        default=choices.DEFAULT_BATCH,
        metavar="N",
        help=f"examples per step (default: {choices.DEFAULT_BATCH})",
    )
    train.add_argument(
        "--lr",
        type=positive_float,
        metavar="LR",
        help="peak learning rate of every optimizer (default: sgd 0.05, adam and adamw 0.003)",
    )
    train.add_argument(
        "--weight-decay",
        type=non_negative_float,
        metavar="WD",
        help="weight decay of the weights, never the biases (default: 1e-4; adamw 1e-2)",
    )
    train.add_argument(
        "--schedule",
        choices=choices.SCHEDULES,
        default="warmup-cosine",
        help="learning-rate schedule (default: warmup-cosine: a tenth warmup, cosine to 0)",
    )
    train.add_argument(
        "--model",
        choices=choices.MODELS,
        default="linear",
        help="the encoder: Linear, PointwiseConv (conv path), or that with MaxPool1d(2)",
    )
    train.add_argument(
        "--plant",
        choices=choices.PLANTS,
        default="none",
        help="a difference planted into the JAX side, to see it caught (default: none)",
    )
    train.add_argument(
        "--experiment",
        choices=choices.EXPERIMENTS,
        help="run the Conv1d-vs-Linear accuracy experiment instead: its own fixed setup, where --seeds, "
        "--steps and --out apply (a few minutes)",
    )
    train.add_argument(
        "--seeds",
        type=lambda text: options.count(text, least=2),
        default=choices.DEFAULT_SEEDS,
        metavar="N",
        help=f"seeds of the experiment (default: {choices.DEFAULT_SEEDS})",
    )
    train.add_argument(
        "--dtype",
        choices=choices.WORKING_DTYPES,
        default="float32",
        help="the working dtype, judged against float64 (default: float32)",
    )
    train.add_argument(
        "--seed", type=options.seed, default=0, help="seed for weights, data and batch order (default: 0)"
    )
    train.add_argument(
        "--out",
        default=choices.DEFAULT_OUT,
        metavar="DIR",
        help=f"output directory (default: {choices.DEFAULT_OUT})",
    )
    train.set_defaults(handler=command)


def command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck train``: see :func:`add_parser` for the options."""
    common.extra_or_exit("train", "matplotlib", "plot")  # the plots, written at the end
    started = time.perf_counter()
    # JAX and PyTorch load here, when the command runs, not for --help.
    from crosscheck.reporting.tables import print_table
    from crosscheck.training import experiment, outputs
    from crosscheck.training.data import SparseTask, batch_indices
    from crosscheck.training.models import spec_named
    from crosscheck.training.optimizers import OptimizerConfig
    from crosscheck.training.parity import train_pair, write_initial_weights
    from crosscheck.training.planted import plant_problem
    from crosscheck.training.runs import TORCH_THREADS, Job

    if args.experiment:
        steps = args.steps or choices.EXPERIMENT_STEPS
        if args.plant != "none":
            parser.error("--experiment runs honest pairs only; drop --plant")
        if steps % choices.EXPERIMENT_RECORD_EVERY:
            every = choices.EXPERIMENT_RECORD_EVERY
            parser.error(
                f"--steps {steps}: the experiment records every {every} steps; give a multiple of {every}"
            )
        common.out_dir_or_exit(parser, "--out", args.out)
        with common.session("pinned", "cpu") as session:
            bar = session.progress.add_task("experiment", total=args.seeds * experiment.runs_per_seed())
            advance = lambda: session.progress.advance(bar)  # noqa: E731
            record = experiment.conv_vs_linear(args.seeds, steps=steps, advance=advance)
        headers, rows = outputs.experiment_rows(record)
        print_table(common.console(), headers, rows, title=f"conv-vs-linear · {args.seeds} seeds")
        print("\n".join(f"{key}: {value}" for key, value in record["answers"].items()))
        write = lambda: outputs.write_experiment(args.out, session.environment(argv), record)  # noqa: E731
        paths = common.write_or_report(write, f"the experiment to {args.out}")
        listed = f" · written: {', '.join(paths)}" if paths else ""
        print(f"{args.seeds} seeds × {steps} steps in {record['seconds']:.0f} s{listed}")
        return 0 if experiment.experiment_passed(record) and paths is not None else 1
    steps, task = args.steps or choices.DEFAULT_STEPS, SparseTask(seed=args.seed)
    if args.batch > task.train:
        parser.error(f"--batch {args.batch}: the task has {task.train} training examples; give at most that")
    configs = [
        OptimizerConfig(name, lr=args.lr, steps=steps, weight_decay=args.weight_decay, schedule=args.schedule)
        for name in args.optimizer
    ]
    for config in configs:
        if problem := plant_problem(args.plant, config):
            parser.error(problem)
    common.out_dir_or_exit(parser, "--out", args.out)
    spec = spec_named(args.model)
    weights = os.path.join(args.out, "initial.safetensors")
    with common.session("pinned", "cpu") as session:
        write_initial_weights(spec, seed=args.seed, path=weights)
        data, rows = task.arrays(), batch_indices(task.train, args.batch, steps=steps, seed=args.seed)
        bar = session.progress.add_task("train", total=4 * len(configs))
        advance = lambda: session.progress.advance(bar)  # noqa: E731
        jobs = [Job(spec, config, args.plant) for config in configs]
        results = [train_pair(job, weights, data, rows, args.dtype, advance=advance) for job in jobs]
        records = [outputs.parity_record(result, args.dtype) for result in results]
    wall = time.perf_counter() - started
    facts = {"model": spec.name, "task": vars(task), "steps": steps, "batch": args.batch, "seed": args.seed}
    facts |= {"plant": args.plant, "weights": weights, "torch_threads": TORCH_THREADS, "wall_seconds": wall}
    document = outputs.train_document(session.environment(argv), records, **facts)
    headers, rows_out = outputs.summary_rows(records)
    print_table(common.console(), headers, rows_out, title=f"crosscheck train · plant {args.plant}")
    write = lambda: outputs.write_train(args.out, document)  # noqa: E731
    paths = common.write_or_report(write, f"the results to {args.out}")
    failed = sum(not r["passed"] for r in records)
    listed = f" · written: {', '.join(paths)}" if paths else ""
    print(f"{len(records)} optimizers × {steps} steps: {failed} failed · {wall:.1f} s{listed}")
    return 1 if failed or paths is None else 0
