"""``crosscheck locate``: the first layer where a user's JAX port diverges from its PyTorch reference.

Both models come from ``module:function`` factories (importable from the current directory), get
one set of weights (``--weights FILE``, a safetensors ``state_dict``; else the torch model's own,
copied), and run on random inputs (``--input KIND:SHAPE``, repeatable, or ``--input-shape``).

Exit status: 0 when every layer passes, 1 when one fails, 2 for a usage error, in one line naming the
option: a factory that cannot be imported, raises, exits or returns no model of its framework
(:mod:`~crosscheck.cli.factories`); inputs that cannot be made (:mod:`~crosscheck.cli.inputs`: at most
1 GiB together) or that a model refuses when called on them once before the check; weights that do not fit.

>>> from crosscheck.cli.parser import build_parser
>>> argv = ["locate", "--jax", "a:b", "--torch", "c:d", "--input", "tokens=100:2,16"]
>>> args = build_parser().parse_args(argv)
>>> args.input[0].kind, args.input[0].shape, args.input[0].high
('tokens', (2, 16), 100)
"""

from __future__ import annotations

import argparse
import re

import numpy as np

from crosscheck.cli import common, options
from crosscheck.cli.inputs import MAX_INPUT_BYTES, byte_size, given, input_spec, shape_spec, specs_or_exit


def rename_spec(text: str) -> dict[str, str]:
    """``self_attention.=self.,layers.=layer.``: the JAX path pieces and the torch ones they stand for."""
    pairs = [part.partition("=") for part in text.split(",") if part.strip()]
    if not pairs or any(not old or not sep for old, sep, _ in pairs):
        raise argparse.ArgumentTypeError(f"invalid rename {text!r} (OLD=NEW pairs, comma-separated)")
    return {old: new for old, _, new in pairs}


def _aligned_or_exit(parser, align, jax_model, torch_model, inputs) -> list[tuple[str, str]]:
    """:func:`crosscheck.align`'s rules for the two models, its table printed; a usage error when nothing
    pairs."""
    try:
        proposal = align(jax_model, torch_model, *inputs)
    except ValueError as error:
        parser.error(f"--align: {common.flat(error)}")
    print(proposal)
    return proposal.rename


def _weights_source(args: argparse.Namespace) -> str:
    """The options the weights came through, for a message that they do not fit."""
    if args.weights:
        return f"--weights {args.weights}"
    if args.align:
        return "--align"
    if args.rename:
        return "--rename " + ",".join(f"{old}={new}" for old, new in args.rename.items())
    return f"--jax {args.jax} and --torch {args.torch}"


SHOWN_KEYS = 3
"""How many keys of each kind (missing, unexpected, expected) a key mismatch lists on the command line
before it counts the rest (the library's message lists 10)."""

_LIBRARY_HINTS = {  # the library's hints name its keyword arguments; the command line has options
    "; rename= maps names (a dict of path pieces, a list of (regex, replacement) pairs or a function)": "",
    "pass strict=False to ignore the others": "pass --no-strict to ignore the others",
    "; strict=False lists keys with no counterpart": "",
    "; ignore=[regex, ...] leaves keys out": "",
}


def renames_seen(message: str) -> list[str]:
    """``OLD=NEW`` path pieces that turn each missing key into the counterpart the message suggests.

    >>> renames_seen("missing keys 'a.self_attention.q.w' (perhaps 'a.self.q.w': same shape), "
    ...              "'b.self_attention.k.w' (perhaps 'b.self.k.w': same shape)")
    ['self_attention.=self.']
    """
    found = []
    for jax_key, torch_key in re.findall(r"'([^']+)' \(perhaps '([^']+)': same shape\)", message):
        a, b = jax_key.split("."), torch_key.split(".")
        while a and b and a[0] == b[0]:
            a, b = a[1:], b[1:]
        while a and b and a[-1] == b[-1]:
            a, b = a[:-1], b[:-1]
        if a and b and f"{'.'.join(a)}.={'.'.join(b)}." not in found:
            found.append(f"{'.'.join(a)}.={'.'.join(b)}.")
    return found


def _weights_message(args: argparse.Namespace, message: str) -> str:
    """The weights' misfit for the command line: the library's hints as options; for keys that do not
    match, what to pass — the renames the suggested counterparts imply, or ``--rename``/``--align``."""
    for hint, option in _LIBRARY_HINTS.items():
        message = message.replace(hint, option)
    if "missing key" not in message and "unexpected key" not in message:
        return message
    renames = [] if args.rename else renames_seen(message)  # after a --rename, the keys are its names
    if renames:
        tried = f"--rename {','.join(renames)}"
    elif args.rename and not args.align:
        tried = "another --rename (the keys above are named after it)"
    else:
        tried = "--rename OLD=NEW,... (JAX path pieces -> torch's)"
    align = "" if args.align else " or --align (finds the mapping from both models' calls)"
    return f"{message}; try {tried}{align}"


def add_parser(commands) -> None:
    locate = commands.add_parser(
        "locate",
        help="the first layer where a JAX port diverges from its PyTorch reference",
        description="Build both models from module:function factories, give them one set of weights, run "
        "them on random inputs and judge every submodule present in both on its own float64-truth input; "
        "print the table and write DIR/locate.json and DIR/locate.md. Exit 1 when a layer fails.",
    )
    locate.add_argument("--jax", required=True, metavar="MODULE:FACTORY", help="builds the Flax NNX model")
    locate.add_argument("--torch", required=True, metavar="MODULE:FACTORY", help="builds the PyTorch model")
    locate.add_argument(
        "--weights", metavar="FILE", help="a safetensors state_dict for both (default: torch's own)"
    )
    names = locate.add_mutually_exclusive_group()
    names.add_argument("--rename", type=rename_spec, metavar="OLD=NEW,...", help="JAX path pieces -> torch's")
    names.add_argument(
        "--align",
        action="store_true",
        help="find the mapping of module paths from both models' calls (crosscheck.align) and print it",
    )
    locate.add_argument(
        "--prefix", default="", metavar="PATH.", help="the torch model's submodule the JAX model ports"
    )
    locate.add_argument(
        "--ignore", action="append", metavar="REGEX", help="leave out keys it finds (re.search), repeatable"
    )
    locate.add_argument(
        "--no-strict", dest="strict", action="store_false", help="list keys with no counterpart, not fail"
    )
    locate.add_argument(
        "--input",
        action="append",
        type=input_spec,
        metavar="KIND:SHAPE",
        help="a random input, repeatable: normal:2,16,64, tokens=VOCAB:2,16 or mask:2,16 (all together: at "
        f"most {byte_size(MAX_INPUT_BYTES)})",
    )
    locate.add_argument(
        "--input-shape",
        type=shape_spec,
        metavar="SHAPE",
        help="one normal input of this shape, e.g. 2,16,64 (the same as --input normal:2,16,64)",
    )
    locate.add_argument("--seed", type=options.seed, default=0, help="seed for the inputs (default: 0)")
    locate.add_argument(
        "--device", choices=options.DEVICES, default="auto", help="where to run (default: auto)"
    )
    locate.add_argument(
        "--out",
        default=options.DEFAULT_OUT,
        metavar="DIR",
        help=f"output directory (default: {options.DEFAULT_OUT})",
    )
    locate.set_defaults(handler=command)  # fmt: skip


def command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck locate``: see :func:`add_parser` for the options."""
    # JAX and PyTorch load here, when the command runs, not for --help.
    import jax

    from crosscheck.cli import factories
    from crosscheck.porting.align import align
    from crosscheck.porting.evaluate import ModelCallError
    from crosscheck.porting.locating import locate
    from crosscheck.reporting import documents, locate_report
    from crosscheck.weights import WeightsError, copy_torch_to_jax, fit, load_weights
    from crosscheck.weights.selection import torch_part

    specs = specs_or_exit(parser, args)
    device = common.jax_device_or_exit(parser, args.device)
    common.out_dir_or_exit(parser, "--out", args.out)
    jax_model = factories.built_or_exit(parser, "--jax", args.jax)
    torch_model = factories.built_or_exit(parser, "--torch", args.torch)
    keys = {"prefix": args.prefix, "strict": args.strict, "ignore": args.ignore}
    try:
        part = torch_part(torch_model, args.prefix, "locate")
    except WeightsError as error:
        parser.error(f"--prefix {args.prefix}: {common.flat(error)}")
    rng = np.random.default_rng(args.seed)
    inputs = [spec.make(rng) for spec in specs]
    with jax.default_device(device):
        factories.inputs_fit_or_exit(parser, jax_model, part, inputs, given(specs))
    if args.align:
        args.rename = _aligned_or_exit(parser, align, jax_model, part, inputs)
    shown, fit.SHOWN = fit.SHOWN, SHOWN_KEYS  # a short line: a few keys of each kind, then counts
    try:
        if args.weights:
            load_weights(torch_model, args.weights)
        if args.weights and keys == {"prefix": "", "strict": True, "ignore": None}:
            load_weights(jax_model, args.weights, rename=args.rename)
        else:  # the file's values through the torch model, with its prefix, strictness and ignores
            copy_torch_to_jax(torch_model, jax_model, rename=args.rename, **keys)
    except (WeightsError, TypeError) as error:
        message = _weights_message(args, common.flat(error))
        parser.error(f"{_weights_source(args)}: the weights do not fit: {message}")
    finally:
        fit.SHOWN = shown
    torch_model.eval()
    refused = None
    with common.session("pinned", args.device) as session:
        task = session.progress.add_task("locate", total=1)
        try:
            result = locate(
                jax_model, torch_model, *inputs, rename=args.rename, name=f"{args.jax} vs {args.torch}",
                progress=lambda done, total: session.progress.update(task, completed=done, total=total),
                **keys,
            )  # fmt: skip
        except ModelCallError as error:  # a refusal the single call above did not meet
            session.progress.remove_task(task)  # no bar left on standard error above the one line
            refused = error
    if refused is not None:
        parser.error(f"{given(specs)}: {common.flat(refused)}")
    env = session.environment(argv)
    locate_report.print_locate(common.console(), result, title=env["command"])
    document = {"schema": documents.SCHEMA, "environment": env, "locate": locate_report.locate_record(result)}
    markdown = locate_report.render_locate(env, result)
    write = lambda: documents.write_documents(args.out, "locate", document, markdown)  # noqa: E731
    paths = common.write_or_report(write, f"the locate report to {args.out}")
    failed = sum(1 for layer in result.layers if not layer.passed)
    first = locate_report.first_failure_text(result)
    listed = f" · report: {', '.join(paths)}" if paths else ""
    print(f"{len(result.layers)} layers: {failed} failed; first failure: {first}{listed}")
    return 1 if failed or paths is None else 0
